"""Validating a scenario document against harness/schemas/scenario.schema.json.

jsonschema finds every violation. This module picks the one that comes first in the file and
rewrites it as a sentence that names the field and the fix. A schema node may carry an
``x-error`` keyword: the hint shown after the offending value when that node fails
("'25x' is not a duration like 24h or 86400000ms").
"""

from __future__ import annotations

import difflib
import functools
import json
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from harness.errors import ScenarioError
from harness.scenario_source import JsonPath, SourceMap

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@functools.cache
def scenario_schema() -> dict[str, Any]:
    """Return the scenario JSON Schema (draft 2020-12)."""
    text = resources.files("harness").joinpath("schemas/scenario.schema.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(scenario_schema())


@functools.cache
def _definition_validator(name: str) -> jsonschema.Draft202012Validator:
    schema = {"$defs": scenario_schema()["$defs"], "$ref": f"#/$defs/{name}"}
    return jsonschema.Draft202012Validator(schema)


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _TYPE_WORDS["object" if isinstance(value, dict) else "array"]
    if value is None:
        return "an empty value"
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."


def _innermost(error: ValidationError) -> ValidationError:
    """Follow anyOf/oneOf/allOf context to the most useful error unless a hint is attached."""
    while error.context and "x-error" not in error.schema:
        error = best_match(error.context)
    return error


def _describe(error: ValidationError) -> tuple[JsonPath, str, bool]:
    """Return (path, sentence, point_at_key) for one validation error."""
    path: JsonPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance

    if "x-error" in schema:
        return path, f"{_show(value)} {schema['x-error']}", False
    if error.validator == "type":
        wanted = error.validator_value
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        words = " or ".join(_TYPE_WORDS.get(name, name) for name in names)
        return path, f"expected {words}, got {_show(value)}", False
    if error.validator == "enum":
        options = ", ".join(str(option) for option in error.validator_value)
        return path, f"{_show(value)} is not one of: {options}", False
    if error.validator == "const":
        return path, f"{_show(value)} is not allowed here; write {_show(error.validator_value)}", False
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in value]
        return path, f"missing required field {missing[0]!r}", False
    if error.validator == "additionalProperties":
        known = list(schema.get("properties", {}))
        extra = [name for name in value if name not in known][0]
        close = difflib.get_close_matches(str(extra), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "known fields: " + ", ".join(known)
        return path + (extra,), f"unknown field {extra!r} ({hint})", True
    if error.validator == "propertyNames":
        allowed = ", ".join(error.validator_value.get("enum", []))
        return path, f"field {_show(value)} cannot be cycled (allowed: {allowed})", False
    if error.validator == "minItems":
        return path, f"needs at least {error.validator_value} item(s)", False
    if error.validator == "minProperties":
        return path, "must not be empty", False
    if error.validator == "minLength":
        return path, "must not be empty", False
    if error.validator == "minimum":
        return path, f"{_show(value)} is below the minimum {error.validator_value}", False
    return path, error.message, False


def _position(error: tuple[JsonPath, str, bool], source: SourceMap) -> tuple[int, int]:
    mark = source.mark(error[0], key=error[2])
    return mark.line, mark.column


def check_schema(document: Any, source: SourceMap) -> None:
    """Raise ScenarioError for the first schema violation in file order."""
    problems = [_describe(_innermost(error)) for error in _validator().iter_errors(document)]
    if not problems:
        return
    problems.sort(key=lambda problem: _position(problem, source))
    path, sentence, at_key = problems[0]
    error = source.error(path, sentence, key=at_key)
    if len(problems) > 1:
        others = len(problems) - 1
        error = ScenarioError(f"{error} ({others} more problem{'s' if others > 1 else ''} after it)")
    raise error


def check_value(schema_ref: str, value: Any, path: JsonPath, source: SourceMap) -> None:
    """Validate one value against a ``$defs`` entry of the scenario schema."""
    errors = list(_definition_validator(schema_ref).iter_errors(value))
    if not errors:
        return
    inner_path, sentence, at_key = _describe(_innermost(errors[0]))
    raise source.error(path + inner_path, sentence, key=at_key)
