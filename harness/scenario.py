"""Conversation scenarios: load, validate and resolve the YAML files of fixtures/scenarios/.

``load_scenario(path)`` returns a validated ``Scenario`` (the document as plain data).
``resolve(scenario, now_ms)`` turns it into a ``ResolvedScenario`` whose times are absolute
epoch milliseconds and whose messages come from a lazy ``MessageStream``; targets load that.
docs/scenarios.md describes the format.

Validation runs in three passes, each raising ``ScenarioError`` with ``file:line:col: path:
problem`` on the first problem it finds: YAML syntax and duplicate keys, the JSON Schema
(harness/schemas/scenario.schema.json), then the references the schema cannot express.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness.scenario_checks import check_references
from harness.scenario_directory import SELF, Directory, build_directory, derive_aci
from harness.scenario_expand import entry_size
from harness.scenario_resolve import MessageStream, ResolveContext
from harness.scenario_schema import check_schema, scenario_schema
from harness.scenario_source import SourceMap, read_yaml
from harness.timespec import parse_absolute_time, parse_duration

__all__ = [
    "SELF",
    "MessageStream",
    "ResolvedScenario",
    "Scenario",
    "attachment_bytes",
    "derive_aci",
    "iter_attachment_bytes",
    "load_scenario",
    "resolve",
    "scenario_schema",
    "thumbnail_bytes",
    "validate_scenario_file",
]

log = logging.getLogger(__name__)

# Byte offset of an attachment's ``embed`` text (smaller when the file is too short for it).
EMBED_OFFSET = 64
THUMBNAIL_SIZE = 2048


class Scenario(dict):
    """A validated scenario document. Keys and values are exactly as the YAML file wrote them."""

    def __init__(self, document: dict[str, Any], path: Path, source: SourceMap | None, directory: Directory):
        super().__init__(document)
        self.path = path
        self.source = source
        self.directory = directory

    @property
    def name(self) -> str:
        return self["name"]

    def message_count(self) -> int:
        """Return the number of messages of the main list, generators expanded, without expanding."""
        return sum(entry_size(entry) for entry in self["messages"])


class ResolvedScenario(dict):
    """A scenario with absolute times and filled-in defaults; the form a target loads.

    Keys: name, description, now_ms, self, contacts, groups, chats, messages (a
    MessageStream), steps (each with ``action`` and ``clock_ms``).
    """

    def iter_messages(self) -> Iterator[dict[str, Any]]:
        return iter(self["messages"])


def validate_scenario_file(path: str | Path) -> Scenario:
    """Validate a scenario file and return it; raise ScenarioError naming file, line and field."""
    path = Path(path)
    document, source = read_yaml(path)
    check_schema(document, source)
    directory = build_directory(document, source)
    check_references(document, directory, source)
    log.debug("scenario %s is valid (%d messages)", path, sum(entry_size(e) for e in document["messages"]))
    return Scenario(document, path, source, directory)


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (see ``validate_scenario_file``)."""
    return validate_scenario_file(path)


def _resolve_steps(scenario: Scenario, now_ms: int, context: ResolveContext) -> list[dict[str, Any]]:
    clock_ms = now_ms
    steps = []
    for index, step in enumerate(scenario.get("steps", [])):
        resolved: dict[str, Any]
        if "advance" in step:
            delta_ms = parse_duration(step["advance"])
            clock_ms += delta_ms
            resolved = {"action": "advance", "delta_ms": delta_ms}
        elif "set" in step:
            clock_ms = parse_absolute_time(step["set"])
            resolved = {"action": "set"}
        elif "backup" in step:
            resolved = {"action": "backup"}
        elif "add_messages" in step:
            stream = MessageStream(step["add_messages"], clock_ms, context, prefix=f"_step{index}-")
            resolved = {"action": "add_messages", "messages": stream}
        elif "delete_messages" in step:
            resolved = {"action": "delete_messages", "ids": list(step["delete_messages"])}
        else:
            expect = step["expect"]
            resolved = {"action": "expect", "present": list(expect.get("present", [])), "absent": list(expect.get("absent", []))}
        resolved["clock_ms"] = clock_ms
        if "note" in step:
            resolved["note"] = step["note"]
        steps.append(resolved)
    return steps


def resolve(scenario: Scenario, now_ms: int | None = None) -> ResolvedScenario:
    """Resolve every relative time against ``now_ms`` and fill in defaults.

    ``now_ms`` defaults to the scenario's ``now`` field, then to the current time. Steps move
    the scenario clock: messages a step adds are resolved against the clock at that step.
    """
    if now_ms is None:
        now_ms = parse_absolute_time(scenario["now"]) if "now" in scenario else int(time.time() * 1000)
    directory = scenario.directory
    context = ResolveContext(scenario.name, directory)
    owner = scenario["self"]
    return ResolvedScenario(
        name=scenario.name,
        description=scenario.get("description", ""),
        now_ms=now_ms,
        self={"name": owner["name"], "aci": (owner.get("aci") or derive_aci(owner["name"])).lower(), "e164": owner.get("e164")},
        contacts=[
            {"id": contact["id"], "name": contact["name"], "aci": contact["aci"], "e164": contact.get("e164")}
            for contact in directory.contacts.values()
        ],
        groups=[
            {"id": group["id"], "title": group["title"], "members": list(group["members"])}
            for group in directory.groups.values()
        ],
        chats=[
            {
                "id": chat.id,
                "with": chat.with_id,
                "kind": chat.kind,
                "title": chat.title,
                "members": sorted(chat.members),
                "expires_in_ms": chat.timer_ms,
            }
            for chat in directory.chats.values()
        ],
        messages=MessageStream(scenario["messages"], now_ms, context),
        steps=_resolve_steps(scenario, now_ms, context),
    )


# Attachment content ------------------------------------------------------------------------
def _keystream(seed: str) -> Any:
    key = hashlib.sha256(seed.encode("utf-8")).digest()
    return Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16)).encryptor()


def iter_attachment_bytes(attachment: dict[str, Any], chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """Yield the deterministic bytes of a resolved attachment in chunks.

    The bytes are an AES-256-CTR keystream keyed by SHA-256 of the seed, so the same seed gives
    the same file everywhere. An ``embed`` text is written into them at byte
    ``min(EMBED_OFFSET, size - len(embed))``.
    """
    size = attachment["size"]
    embed = (attachment.get("embed") or "").encode("utf-8")
    embed_at = min(EMBED_OFFSET, size - len(embed))
    stream = _keystream(attachment["seed"])
    position = 0
    while position < size:
        length = min(chunk_size, size - position)
        chunk = bytearray(stream.update(b"\x00" * length))
        start = max(embed_at, position)
        end = min(embed_at + len(embed), position + length)
        if embed and start < end:
            chunk[start - position : end - position] = embed[start - embed_at : end - embed_at]
        yield bytes(chunk)
        position += length


def attachment_bytes(attachment: dict[str, Any]) -> bytes:
    """Return the whole content of a resolved attachment (see ``iter_attachment_bytes``)."""
    return b"".join(iter_attachment_bytes(attachment))


def thumbnail_bytes(attachment: dict[str, Any]) -> bytes | None:
    """Return the deterministic thumbnail of a resolved attachment, or None when it has none."""
    if not attachment["thumbnail"]:
        return None
    return _keystream(attachment["seed"] + ":thumbnail").update(b"\x00" * THUMBNAIL_SIZE)
