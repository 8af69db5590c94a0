"""Canaries: unique strings planted in a scenario so a leak scan can prove none escape in the clear.

``plant_canaries`` writes a fresh random string into message bodies, earlier revisions,
captions, file names and attachment bytes (through the attachment ``embed`` field) and
returns a ``CanarySet`` that records where each one went. ``encodings`` lists the byte forms a
value can take on the wire (hex, base64 at every alignment, URL encoding, UTF-16 and the
grouped forms used to display recovery keys), and ``scan_for`` searches recorded bytes for
them, also inside gzip, zlib and raw deflate streams.

Canaries are test data, not secrets: reports may print them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import logging
import random
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from harness.scenario import Scenario
from harness.scenario_directory import ChatInfo, Directory
from harness.scenario_expand import is_generator

log = logging.getLogger(__name__)

CANARY_PREFIX = "canary"
CANARY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
CANARY_RANDOM_LENGTH = 18  # about 93 bits, so two runs never plant the same string

KIND_TEXT = "text"
KIND_EDIT = "edit"
KIND_CAPTION = "caption"
KIND_FILE_NAME = "file_name"
KIND_ATTACHMENT_BYTES = "attachment_bytes"
KIND_CONTACT_NAME = "contact_name"
KIND_GROUP_TITLE = "group_title"
DEFAULT_KINDS = frozenset({KIND_TEXT, KIND_EDIT, KIND_CAPTION, KIND_FILE_NAME, KIND_ATTACHMENT_BYTES})
ALL_KINDS = DEFAULT_KINDS | {KIND_CONTACT_NAME, KIND_GROUP_TITLE}

# The shortest encoded form worth searching for; shorter ones match random data too often.
MIN_NEEDLE_LENGTH = 8
DEFAULT_MAX_INFLATED_BYTES = 256 * 1024 * 1024
_INFLATE_CHUNK = 1 << 16
_ZLIB_HEADERS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")


@dataclasses.dataclass(frozen=True)
class Canary:
    """One planted string and where it went."""

    value: str
    kind: str  # one of the KIND_* names
    path: str  # the scenario field, e.g. "messages[3].attachments[0].caption"
    message_id: str | None = None

    def describe(self) -> str:
        owner = f" (message {self.message_id})" if self.message_id else ""
        return f"{self.kind} canary at {self.path}{owner}"


@dataclasses.dataclass(frozen=True)
class Match:
    """One occurrence of a needle.

    ``container`` is "raw" or the chain of streams inflated to find it ("gzip@120/zlib@0");
    ``offset`` counts in that container. When several labels share the same bytes (base64 and
    base64url often do), ``label`` is the first and ``aliases`` lists the others.
    """

    label: str
    offset: int
    container: str = "raw"
    aliases: tuple[str, ...] = ()


class CanarySet:
    """The canaries of one planting, with the byte forms to search for."""

    def __init__(self, canaries: Iterable[Canary] = ()) -> None:
        self._canaries: list[Canary] = list(canaries)
        self._by_value = {canary.value: canary for canary in self._canaries}

    def add(self, canary: Canary) -> None:
        self._canaries.append(canary)
        self._by_value[canary.value] = canary

    def __iter__(self) -> Iterator[Canary]:
        return iter(self._canaries)

    def __len__(self) -> int:
        return len(self._canaries)

    def __contains__(self, value: object) -> bool:
        return value in self._by_value

    def values(self) -> list[str]:
        return [canary.value for canary in self._canaries]

    def get(self, value: str) -> Canary | None:
        return self._by_value.get(value)

    def needles(self) -> dict[str, bytes]:
        """Return every encoded form of every canary, labelled ``<value>/<encoding>``."""
        table: dict[str, bytes] = {}
        for canary in self._canaries:
            for encoding, needle in encodings(canary.value).items():
                table[f"{canary.value}/{encoding}"] = needle
        return table

    def describe(self, match: Match) -> str:
        """Return one sentence for a leak finding: which canary, in which form, where."""
        value, _, encoding = match.label.partition("/")
        canary = self._by_value.get(value)
        planted = canary.describe() if canary else f"canary {value}"
        inside = "" if match.container == "raw" else f" inside {match.container}"
        return f"{planted} found as {encoding or 'bytes'} at offset {match.offset}{inside}"

    def to_json(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(canary) for canary in self._canaries]


# Encodings ------------------------------------------------------------------------------------
def _base64_middles(raw: bytes, alphabet: str) -> dict[str, bytes]:
    """Return the base64 characters that depend only on ``raw`` when it starts at each alignment.

    Inside a longer base64 blob, ``raw`` starts at byte offset 0, 1 or 2 modulo 3. Character
    ``j`` of the encoding covers bits ``6j`` to ``6j + 6``; only characters whose bits lie wholly
    inside ``raw`` are the same whatever bytes surround it.
    """
    encode = base64.b64encode if alphabet == "base64" else base64.urlsafe_b64encode
    forms = {}
    for shift in range(3):
        encoded = encode(b"\x00" * shift + raw + b"\x00\x00")
        first = -(-8 * shift // 6)  # ceil
        last = 8 * (shift + len(raw)) // 6
        forms[f"{alphabet}-shift{shift}"] = encoded[first:last]
    return forms


def _grouped_forms(text: str) -> dict[str, bytes]:
    compact = "".join(text.split())
    groups = [compact[index : index + 4] for index in range(0, len(compact), 4)]
    forms = {}
    for case_name, case in (("upper", str.upper), ("lower", str.lower)):
        forms[case_name] = case(compact).encode("utf-8")
        forms[f"{case_name}-grouped-space"] = case(" ".join(groups)).encode("utf-8")
        forms[f"{case_name}-grouped-dash"] = case("-".join(groups)).encode("utf-8")
    return forms


def encodings(value: str | bytes) -> dict[str, bytes]:
    """Return the byte forms in which ``value`` could appear in recorded data, by name.

    Forms shorter than MIN_NEEDLE_LENGTH bytes are left out. Grouped and case forms (groups
    of 4, as recovery keys are displayed) apply only to text. Several names may map to the
    same bytes; ``scan_for`` searches each distinct byte string once.
    """
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    text: str | None
    try:
        text = value if isinstance(value, str) else raw.decode("ascii")
    except UnicodeDecodeError:
        text = None

    forms: dict[str, bytes] = {"utf8": raw}
    if text is not None and text.isprintable():
        forms.update(_grouped_forms(text))
    forms["hex-lower"] = binascii.hexlify(raw)
    forms["hex-upper"] = binascii.hexlify(raw).upper()
    forms["base64"] = base64.b64encode(raw)
    forms["base64-nopad"] = base64.b64encode(raw).rstrip(b"=")
    forms["base64url"] = base64.urlsafe_b64encode(raw)
    forms["base64url-nopad"] = base64.urlsafe_b64encode(raw).rstrip(b"=")
    forms.update(_base64_middles(raw, "base64"))
    forms.update(_base64_middles(raw, "base64url"))
    forms["url-percent"] = urllib.parse.quote_from_bytes(raw, safe="").encode("ascii")
    forms["url-plus"] = urllib.parse.quote_plus(raw, safe="").encode("ascii")
    if text is not None:
        forms["utf16-le"] = text.encode("utf-16-le")
        forms["utf16-be"] = text.encode("utf-16-be")
    return {name: form for name, form in forms.items() if len(form) >= MIN_NEEDLE_LENGTH}


# Scanning ---------------------------------------------------------------------------------------
def _inflate(data: bytes, start: int, wbits: int, limit: int) -> bytes | None:
    """Inflate the stream at ``data[start:]``; return what came out before an error, if anything."""
    inflater = zlib.decompressobj(wbits)
    output = bytearray()
    position = start
    try:
        while position < len(data) and not inflater.eof and len(output) < limit:
            chunk = memoryview(data)[position : position + _INFLATE_CHUNK]
            output += inflater.decompress(chunk, limit - len(output))
            position += len(chunk)
            while inflater.unconsumed_tail and len(output) < limit:
                output += inflater.decompress(inflater.unconsumed_tail, limit - len(output))
    except zlib.error:
        pass
    if len(output) >= limit:
        log.warning("stopped inflating the stream at offset %d after %d bytes (limit)", start, limit)
    return bytes(output) or None


def _positions(data: bytes, marker: bytes) -> Iterator[int]:
    position = data.find(marker)
    while position != -1:
        yield position
        position = data.find(marker, position + 1)


def _streams(data: bytes, limit: int) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, inflated bytes)`` for every compressed stream found in ``data``."""
    for position in _positions(data, b"\x1f\x8b\x08"):
        inflated = _inflate(data, position, 16 + zlib.MAX_WBITS, limit)
        if inflated:
            yield f"gzip@{position}", inflated
    for header in _ZLIB_HEADERS:
        for position in _positions(data, header):
            inflated = _inflate(data, position, zlib.MAX_WBITS, limit)
            if inflated:
                yield f"zlib@{position}", inflated
    if data and not data.startswith(b"\x1f\x8b"):
        inflated = _inflate(data, 0, -zlib.MAX_WBITS, limit)
        if inflated:
            yield "deflate@0", inflated


def _find_all(data: bytes, grouped: Mapping[bytes, list[str]], container: str) -> list[Match]:
    matches = []
    for needle, labels in grouped.items():
        position = data.find(needle)
        while position != -1:
            matches.append(Match(labels[0], position, container, tuple(labels[1:])))
            position = data.find(needle, position + 1)
    return matches


def scan_for(
    haystack: bytes,
    needles: Mapping[str, bytes] | Iterable[bytes],
    *,
    max_depth: int = 2,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
) -> list[Match]:
    """Return every occurrence of every needle in ``haystack`` and in the streams it contains.

    ``needles`` maps labels to byte strings (``CanarySet.needles()``), or is a plain iterable
    of byte strings, which are then their own labels (as hex). Compressed streams are tried at
    each gzip magic, at each zlib header and as raw deflate at the start. Streams inside
    inflated data are tried too, up to ``max_depth`` levels of nesting. Each inflation stops
    after ``max_inflated_bytes``.
    """
    table = dict(needles) if isinstance(needles, Mapping) else {bytes(n).hex(): bytes(n) for n in needles}
    grouped: dict[bytes, list[str]] = {}
    for label, needle in table.items():
        if needle:
            grouped.setdefault(bytes(needle), []).append(label)

    matches: list[Match] = []
    pending = [("raw", bytes(haystack), 0)]
    while pending:
        container, data, depth = pending.pop()
        matches.extend(_find_all(data, grouped, container))
        if depth >= max_depth:
            continue
        for name, inflated in _streams(data, max_inflated_bytes):
            inner = name if container == "raw" else f"{container}/{name}"
            pending.append((inner, inflated, depth + 1))
    matches.sort(key=lambda match: (match.container, match.offset, match.label))
    return matches


# Planting ----------------------------------------------------------------------------------------
class _Planter:
    def __init__(self, rng: random.Random, kinds: frozenset[str]) -> None:
        self.rng = rng
        self.kinds = kinds
        self.canaries = CanarySet()

    def new_value(self) -> str:
        while True:
            suffix = "".join(self.rng.choice(CANARY_ALPHABET) for _ in range(CANARY_RANDOM_LENGTH))
            value = CANARY_PREFIX + suffix
            if value not in self.canaries:
                return value

    def plant(self, kind: str, path: str, message_id: str | None) -> str | None:
        if kind not in self.kinds:
            return None
        value = self.new_value()
        self.canaries.add(Canary(value, kind, path, message_id))
        return value

    def plant_attachment(self, attachment: dict[str, Any], path: str, message_id: str | None) -> None:
        if "caption" in attachment:
            value = self.plant(KIND_CAPTION, f"{path}.caption", message_id)
            if value:
                attachment["caption"] = f"{attachment['caption']} {value}"
        if "file_name" in attachment:
            value = self.plant(KIND_FILE_NAME, f"{path}.file_name", message_id)
            if value:
                stem, dot, extension = attachment["file_name"].rpartition(".")
                attachment["file_name"] = f"{stem}-{value}.{extension}" if dot and stem else f"{attachment['file_name']}-{value}"
        if "embed" not in attachment and attachment["size"] >= len(CANARY_PREFIX) + CANARY_RANDOM_LENGTH:
            value = self.plant(KIND_ATTACHMENT_BYTES, f"{path}.embed", message_id)
            if value:
                attachment["embed"] = value

    def plant_message(self, message: dict[str, Any], path: str, message_id: str | None) -> None:
        if message.get("text"):
            value = self.plant(KIND_TEXT, f"{path}.text", message_id)
            if value:
                message["text"] = f"{message['text']} {value}"
        for index, edit in enumerate(message.get("edits", [])):
            value = self.plant(KIND_EDIT, f"{path}.edits[{index}]", message_id)
            if value and isinstance(edit, str):
                message["edits"][index] = f"{edit} {value}"
            elif value:
                edit["text"] = f"{edit['text']} {value}"
        for index, attachment in enumerate(message.get("attachments", [])):
            self.plant_attachment(attachment, f"{path}.attachments[{index}]", message_id)

    def plant_list(self, entries: list[dict[str, Any]], path: str) -> None:
        for index, entry in enumerate(entries):
            if is_generator(entry):
                # One canary per template field: every generated message carries the same one.
                template_id = entry["message"].get("id")
                self.plant_message(entry["message"], f"{path}[{index}].message", template_id)
            else:
                self.plant_message(entry, f"{path}[{index}]", entry.get("id"))


def plant_canaries(
    scenario: Scenario, rng: random.Random, kinds: Iterable[str] = DEFAULT_KINDS
) -> tuple[Scenario, CanarySet]:
    """Return a copy of ``scenario`` with canaries planted, and the set that lists them.

    Each message text, earlier revision, caption and file name gets its own canary appended
    (file names keep their extension), and each attachment large enough gets one written into
    its bytes. A generator's template gets one canary per field, shared by every message it
    produces. ``kinds`` narrows or widens the places (``ALL_KINDS`` adds contact names and
    group titles). Ids and references stay as they were, so the copy is still valid.
    """
    kinds = frozenset(kinds)
    unknown = kinds - ALL_KINDS
    if unknown:
        raise ValueError(f"unknown canary kinds {sorted(unknown)}; use {sorted(ALL_KINDS)}")
    document = copy.deepcopy(dict(scenario))
    planter = _Planter(rng, kinds)

    recipients = document.get("recipients", {})
    for index, contact in enumerate(recipients.get("contacts", [])):
        value = planter.plant(KIND_CONTACT_NAME, f"recipients.contacts[{index}].name", None)
        if value:
            contact.setdefault("aci", _original_aci(scenario, contact["id"]))
            contact["name"] = f"{contact['name']} {value}"
    for index, group in enumerate(recipients.get("groups", [])):
        value = planter.plant(KIND_GROUP_TITLE, f"recipients.groups[{index}].title", None)
        if value:
            group["title"] = f"{group['title']} {value}"

    planter.plant_list(document["messages"], "messages")
    for index, step in enumerate(document.get("steps", [])):
        if "add_messages" in step:
            planter.plant_list(step["add_messages"], f"steps[{index}].add_messages")

    log.info("planted %d canaries in scenario %s", len(planter.canaries), scenario.name)
    return _rebuild(scenario, document), planter.canaries


def _original_aci(scenario: Scenario, contact_id: str) -> str:
    """Keep a renamed contact's ACI: without an explicit one it is derived from the old name."""
    return scenario.directory.contacts[contact_id]["aci"]


def _rebuild(scenario: Scenario, document: dict[str, Any]) -> Scenario:
    """Return the planted document as a Scenario whose directory reflects new names and titles."""
    contacts = {
        contact["id"]: {**contact, "aci": contact.get("aci") or scenario.directory.contacts[contact["id"]]["aci"]}
        for contact in document.get("recipients", {}).get("contacts", [])
    }
    groups = {group["id"]: group for group in document.get("recipients", {}).get("groups", [])}
    chats = {}
    for chat_id, chat in scenario.directory.chats.items():
        title = contacts[chat.with_id]["name"] if chat.kind == "contact" else groups[chat.with_id]["title"]
        chats[chat_id] = ChatInfo(chat.id, chat.with_id, chat.kind, title, chat.members, chat.timer_ms)
    directory = Directory(scenario.directory.self_name, contacts, groups, chats)
    return Scenario(document, scenario.path, None, directory)
