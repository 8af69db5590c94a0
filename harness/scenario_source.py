"""Reading a scenario's YAML while keeping where each value sits in the file.

The scenario is parsed through PyYAML's node tree (``yaml.compose``) so that every JSON path
(``("messages", 3, "expires_in")``) maps to the line and column of its value and of its key.
Errors then point at the line the user has to fix.

Scalars follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults: only ``true`` and ``false``
are booleans (``off``, ``no`` and ``yes`` stay strings) and timestamps stay strings, so
``expires_in: off`` and ``sent: 2025-03-01T02:00:00Z`` reach the schema as written.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ScenarioError

JsonPath = tuple[str | int, ...]


class _ScenarioLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and no implicit timestamps."""


_ScenarioLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ScenarioLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclasses.dataclass(frozen=True)
class Mark:
    """A 1-based line and column in the scenario file."""

    line: int
    column: int


@dataclasses.dataclass
class SourceMap:
    """Start positions (line and column) of every JSON path of a parsed document."""

    path: Path
    values: dict[JsonPath, Mark]
    keys: dict[JsonPath, Mark]

    def mark(self, json_path: JsonPath, *, key: bool = False) -> Mark:
        """Return the mark of the value (or of its key), or of the nearest enclosing value."""
        table = self.keys if key else self.values
        probe = tuple(json_path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Mark(1, 1))

    def error(self, json_path: JsonPath, problem: str, *, key: bool = False) -> ScenarioError:
        """Build the one-line error ``file:line:col: path: problem``."""
        mark = self.mark(json_path, key=key)
        where = format_path(json_path)
        prefix = f"{self.path}:{mark.line}:{mark.column}: "
        return ScenarioError(prefix + (f"{where}: {problem}" if where else problem))


def format_path(json_path: JsonPath) -> str:
    """Return ``("messages", 3, "text")`` as ``messages[3].text``."""
    text = ""
    for part in json_path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _mark_of(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _index_nodes(node: yaml.Node, json_path: JsonPath, source: SourceMap) -> None:
    source.values[json_path] = _mark_of(node)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = json_path + (str(key_node.value),)
            source.keys[child] = _mark_of(key_node)
            _index_nodes(value_node, child, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_nodes(item, json_path + (index,), source)


def _check_duplicate_keys(node: yaml.Node, json_path: JsonPath, source: SourceMap) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            name = str(key_node.value)
            child = json_path + (name,)
            if name in seen:
                mark = _mark_of(key_node)
                raise ScenarioError(
                    f"{source.path}:{mark.line}:{mark.column}: {format_path(child)}: "
                    f"field {name!r} appears twice in the same mapping; keep one"
                )
            seen.add(name)
            _check_duplicate_keys(value_node, child, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(item, json_path + (index,), source)


def read_yaml(path: str | Path) -> tuple[Any, SourceMap]:
    """Parse a scenario file; return the plain document and its source map.

    Raises ScenarioError for a missing file, invalid YAML, duplicate keys or YAML features a
    scenario does not use (anchors are fine, custom tags are not).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: scenario file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: cannot read the scenario file: {error}") from None

    source = SourceMap(path, {}, {})
    loader = _ScenarioLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError(f"{path}:1:1: the scenario file is empty")
        _check_duplicate_keys(node, (), source)
        document = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise ScenarioError(f"{path}:{line}:{column}: invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: invalid YAML: {error}") from None
    finally:
        loader.dispose()

    _index_nodes(node, (), source)
    return document, source
