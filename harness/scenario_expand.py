"""Expanding message lists: literal messages and ``repeat`` generators, one message at a time.

A generator entry describes ``repeat`` messages with one template. Message ``k`` (from 0) is
the template with each ``cycle`` field set to ``values[k % len(values)]``, then updated with
``variants[k % len(variants)]``, and with ``{n}`` (``k + 1``) and ``{i}`` (``k``) replaced in
every string. Its sent time is ``start + k * interval``. Nothing here builds the whole list:
callers iterate.

Messages without an ``id`` get one from their position, starting with ``_`` so it cannot
collide with a written id: ``_7`` for entry 7 of the list, ``_7.42`` for message 42 of the
generator at entry 7. Lists added by step ``s`` use the prefix ``_step<s>-``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any


def is_generator(entry: dict[str, Any]) -> bool:
    return "repeat" in entry


def entry_size(entry: dict[str, Any]) -> int:
    return entry["repeat"] if is_generator(entry) else 1


def _substitute(value: Any, number: str, index: str) -> Any:
    if isinstance(value, str):
        if "{" not in value:
            return value
        return value.replace("{n}", number).replace("{i}", index)
    if isinstance(value, dict):
        return {key: _substitute(item, number, index) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, number, index) for item in value]
    return value


def cycle_period(generator: dict[str, Any]) -> int:
    """Return after how many messages the cycled values and variants repeat."""
    lengths = [len(values) for values in generator.get("cycle", {}).values()]
    if "variants" in generator:
        lengths.append(len(generator["variants"]))
    return min(math.lcm(*lengths) if lengths else 1, generator["repeat"])


def template_variant(generator: dict[str, Any], k: int) -> dict[str, Any]:
    """Return the template of message ``k`` with its cycle values and variant, before substitution."""
    variant = dict(generator["message"])
    for field, values in generator.get("cycle", {}).items():
        variant[field] = values[k % len(values)]
    variants = generator.get("variants")
    if variants:
        variant.update(variants[k % len(variants)])
    return variant


def generated_message(generator: dict[str, Any], k: int) -> dict[str, Any]:
    """Return message ``k`` of a generator (without its sent time)."""
    return _substitute(template_variant(generator, k), str(k + 1), str(k))


def auto_id(prefix: str, entry_index: int, k: int | None) -> str:
    return f"{prefix}{entry_index}" if k is None else f"{prefix}{entry_index}.{k + 1}"


def iter_entries(
    entries: list[dict[str, Any]], prefix: str = "_"
) -> Iterator[tuple[int, int | None, str, dict[str, Any]]]:
    """Yield ``(entry_index, k, message_id, message)`` for every message, lazily.

    ``k`` is None for a literal message and the position inside its generator otherwise.
    """
    for entry_index, entry in enumerate(entries):
        if not is_generator(entry):
            yield entry_index, None, entry.get("id") or auto_id(prefix, entry_index, None), entry
            continue
        for k in range(entry["repeat"]):
            message = generated_message(entry, k)
            message_id = message.get("id") or auto_id(prefix, entry_index, k)
            yield entry_index, k, message_id, message


def iter_ids(entries: list[dict[str, Any]], prefix: str = "_") -> Iterator[tuple[int, str, str]]:
    """Yield ``(entry_index, message_id, chat_id)`` without building message dicts."""
    for entry_index, entry in enumerate(entries):
        if not is_generator(entry):
            yield entry_index, entry.get("id") or auto_id(prefix, entry_index, None), entry["chat"]
            continue
        template_id = entry["message"].get("id")
        chat = entry["message"]["chat"]
        for k in range(entry["repeat"]):
            if template_id is None:
                yield entry_index, auto_id(prefix, entry_index, k), chat
            else:
                yield entry_index, _substitute(template_id, str(k + 1), str(k)), chat
