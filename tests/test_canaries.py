"""Canaries: planting into scenarios, encoded forms, and scanning raw and compressed data."""

from __future__ import annotations

import base64
import gzip
import json
import random
import urllib.parse
import zlib
from pathlib import Path

import pytest

from harness.canaries import (
    ALL_KINDS,
    KIND_ATTACHMENT_BYTES,
    KIND_CAPTION,
    KIND_CONTACT_NAME,
    KIND_EDIT,
    KIND_FILE_NAME,
    KIND_TEXT,
    CanarySet,
    Match,
    encodings,
    plant_canaries,
    scan_for,
)
from harness.scenario import attachment_bytes, load_scenario, resolve

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
NOW = 1_740_830_400_000
CANARY = "canaryq7x2m9k4b8z1w5r3t6"
RECOVERY_KEY = "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6a7b8c9d0e1f2"


def noise(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def prose(rng: random.Random, words: int) -> bytes:
    """Compressible filler, so deflate codes it instead of storing it verbatim."""
    vocabulary = [b"backup", b"chat", b"item", b"frame", b"media", b"tier", b"daily", b"key"]
    return b" ".join(rng.choice(vocabulary) for _ in range(words))


def labels(matches: list[Match]) -> set[str]:
    found = set()
    for match in matches:
        found.add(match.label)
        found.update(match.aliases)
    return found


# encodings() ----------------------------------------------------------------------------------------
def test_encodings_lists_every_form():
    forms = encodings(CANARY)
    expected = {
        "utf8", "upper", "upper-grouped-space", "upper-grouped-dash", "lower-grouped-space",
        "lower-grouped-dash", "hex-lower", "hex-upper", "base64", "base64-nopad", "base64url",
        "base64url-nopad", "base64-shift0", "base64-shift1", "base64-shift2", "base64url-shift0",
        "base64url-shift1", "base64url-shift2", "url-percent", "url-plus", "utf16-le", "utf16-be",
    }
    assert expected <= set(forms)


def test_grouped_forms_of_recovery_key():
    forms = encodings(RECOVERY_KEY)
    groups = [RECOVERY_KEY[index : index + 4] for index in range(0, 64, 4)]
    assert forms["upper-grouped-space"] == " ".join(groups).upper().encode()
    assert forms["upper-grouped-dash"] == "-".join(groups).upper().encode()
    assert forms["upper"] == RECOVERY_KEY.upper().encode()


def test_encodings_of_binary_value_skip_text_forms():
    value = bytes(range(200, 232))
    forms = encodings(value)
    assert forms["utf8"] == value
    assert forms["hex-lower"] == value.hex().encode()
    assert "upper-grouped-space" not in forms
    assert "utf16-le" not in forms


def test_short_forms_left_out():
    forms = encodings("abc")
    assert all(len(form) >= 8 for form in forms.values())


def _independent_forms(value: str, rng: random.Random) -> dict[str, bytes]:
    """Encode ``value`` inside surrounding data the way real traffic would, not via encodings()."""
    raw = value.encode()
    groups = [value[index : index + 4] for index in range(0, len(value), 4)]
    forms = {
        "utf8": b"prefix " + raw + b" suffix",
        "upper": b"KEY=" + value.upper().encode(),
        "upper-grouped-space": b'{"key":"' + " ".join(groups).upper().encode() + b'"}',
        "upper-grouped-dash": b"<" + "-".join(groups).upper().encode() + b">",
        "lower-grouped-space": b"[" + " ".join(groups).encode() + b"]",
        "lower-grouped-dash": b"[" + "-".join(groups).encode() + b"]",
        "hex-lower": (noise(rng, 7) + raw + noise(rng, 9)).hex().encode(),
        "hex-upper": (noise(rng, 7) + raw + noise(rng, 9)).hex().upper().encode(),
        "url-percent": urllib.parse.quote("text with spaces/" + value + "?&", safe="").encode(),
        "url-plus": urllib.parse.urlencode({"q": "a b " + value + " c"}).encode(),
        "utf16-le": ("\u00e9t\u00e9 " + value + " x").encode("utf-16-le"),
        "utf16-be": ("\u00e9t\u00e9 " + value + " x").encode("utf-16-be"),
    }
    for shift in range(3):
        blob = noise(rng, 30 + shift) + raw + noise(rng, 31)
        forms[f"base64-shift{shift}"] = base64.b64encode(blob)
        forms[f"base64url-shift{shift}"] = base64.urlsafe_b64encode(blob).rstrip(b"=")
    return forms


@pytest.mark.parametrize("shift", [0, 1, 2])
def test_base64_found_at_each_alignment(shift):
    rng = random.Random(shift)
    for prefix_length in range(shift, 60, 3):
        blob = noise(rng, prefix_length) + CANARY.encode() + noise(rng, rng.randrange(0, 40))
        for encode, name in ((base64.b64encode, "base64"), (base64.urlsafe_b64encode, "base64url")):
            haystack = b"data:" + encode(blob) + b"\n"
            assert f"{name}-shift{shift}" in labels(scan_for(haystack, encodings(CANARY)))


def test_each_form_found_inside_larger_blob():
    rng = random.Random(7)
    for name, embedded in _independent_forms(CANARY, rng).items():
        haystack = noise(rng, 5000) + embedded + noise(rng, 5000)
        assert name in labels(scan_for(haystack, encodings(CANARY))), name


def test_each_encoding_found_inside_gzip():
    rng = random.Random(8)
    needles = {f"{CANARY}/{name}": form for name, form in encodings(CANARY).items()}
    for name, form in encodings(CANARY).items():
        stream = gzip.compress(noise(rng, 3000) + form + noise(rng, 3000))
        haystack = noise(rng, 10_000) + stream + noise(rng, 2000)
        matches = scan_for(haystack, needles)
        inside = [m for m in matches if m.container.startswith("gzip@")]
        assert f"{CANARY}/{name}" in labels(inside), name


def test_gzip_offset_and_container_reported():
    rng = random.Random(9)
    stream = gzip.compress(b"hello " + CANARY.encode())
    haystack = noise(rng, 1234).replace(b"\x1f\x8b", b"xx") + stream
    matches = [m for m in scan_for(haystack, {"c": CANARY.encode()}) if m.container != "raw"]
    assert matches == [Match("c", 6, "gzip@1234")]


def test_found_inside_zlib_at_start_and_in_middle():
    rng = random.Random(10)
    payload = prose(rng, 800) + CANARY.encode() + prose(rng, 800)
    at_start = scan_for(zlib.compress(payload), {"c": CANARY.encode()})
    assert [m.container for m in at_start] == ["zlib@0"]
    middle = scan_for(b"POST /x HTTP/1.1\r\n\r\n" + zlib.compress(payload, 9), {"c": CANARY.encode()})
    assert [m.container for m in middle] == ["zlib@20"]


def test_found_inside_raw_deflate_at_start():
    rng = random.Random(11)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = compressor.compress(noise(rng, 500) + CANARY.encode() * 3) + compressor.flush()
    matches = scan_for(stream, {"c": CANARY.encode()})
    assert {m.container for m in matches} == {"deflate@0"}
    assert len(matches) == 3


def test_found_inside_nested_streams():
    inner = zlib.compress(b"secret: " + CANARY.encode())
    outer = gzip.compress(b"wrapper " + inner)
    matches = scan_for(b"HEAD" + outer, {"c": CANARY.encode()})
    assert [m.container for m in matches] == ["gzip@4/zlib@8"]


def test_found_in_second_gzip_member():
    first = gzip.compress(b"nothing here")
    second = gzip.compress(CANARY.encode())
    matches = scan_for(first + second, {"c": CANARY.encode()})
    assert [m.container for m in matches] == [f"gzip@{len(first)}"]


def test_truncated_gzip_still_searched():
    rng = random.Random(12)
    stream = gzip.compress(CANARY.encode() + prose(rng, 100_000))
    matches = scan_for(stream[: len(stream) // 2], {"c": CANARY.encode()})
    assert [m.container for m in matches] == ["gzip@0"]


def test_inflation_limit_stops_bomb():
    bomb = gzip.compress(b"\x00" * 5_000_000 + CANARY.encode())
    assert scan_for(bomb, {"c": CANARY.encode()}, max_inflated_bytes=1_000_000) == []
    assert len(scan_for(bomb, {"c": CANARY.encode()})) == 1


def test_no_false_positive_on_random_data():
    rng = random.Random(13)
    canaries = [f"canary{rng.getrandbits(90):023x}" for _ in range(20)]
    needles = {f"{value}/{name}": form for value in canaries for name, form in encodings(value).items()}
    haystack = noise(rng, 4 * 1024 * 1024)
    haystack += gzip.compress(noise(rng, 100_000)) + zlib.compress(noise(rng, 100_000))
    assert scan_for(haystack, needles) == []


def test_plain_iterable_needles_labelled_by_hex():
    matches = scan_for(b"xx" + CANARY.encode(), [CANARY.encode()])
    assert matches == [Match(CANARY.encode().hex(), 2)]


def test_all_occurrences_reported():
    haystack = CANARY.encode() + b"--" + CANARY.encode()
    assert [m.offset for m in scan_for(haystack, {"c": CANARY.encode()})] == [0, len(CANARY) + 2]


# plant_canaries() ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def daily_life():
    return load_scenario(SCENARIOS / "daily-life.yaml")


def test_plant_covers_every_place(daily_life):
    planted, canaries = plant_canaries(daily_life, random.Random(1))
    kinds = {canary.kind for canary in canaries}
    assert {KIND_TEXT, KIND_EDIT, KIND_CAPTION, KIND_FILE_NAME, KIND_ATTACHMENT_BYTES} <= kinds
    assert len(set(canaries.values())) == len(canaries)
    messages = list(resolve(planted, NOW)["messages"])
    texts = json.dumps(messages)
    for canary in canaries:
        if canary.kind == KIND_ATTACHMENT_BYTES:
            continue
        assert canary.value in texts, canary
    embedded = [a for m in messages for a in m["attachments"] if a["embed"]]
    assert len(embedded) == sum(1 for c in canaries if c.kind == KIND_ATTACHMENT_BYTES)
    for attachment in embedded:
        assert attachment["embed"].encode() in attachment_bytes(attachment)


def test_plant_keeps_original_and_references(daily_life):
    before = json.dumps(daily_life, sort_keys=True)
    planted, canaries = plant_canaries(daily_life, random.Random(2))
    assert json.dumps(daily_life, sort_keys=True) == before
    original = list(resolve(daily_life, NOW)["messages"])
    changed = list(resolve(planted, NOW)["messages"])
    assert [m["id"] for m in original] == [m["id"] for m in changed]
    assert [m["quote"] for m in original] == [m["quote"] for m in changed]
    file_names = [a["file_name"] for m in changed for a in m["attachments"] if a["file_name"]]
    assert all(name.rsplit(".", 1)[1] in ("jpg", "pdf", "mp4") for name in file_names)
    located = canaries.get(canaries.values()[0])
    assert located.path.startswith("messages[")
    assert located.message_id == "bob-hello"


def test_plant_is_deterministic_per_seed(daily_life):
    first = plant_canaries(daily_life, random.Random(3))[1].values()
    again = plant_canaries(daily_life, random.Random(3))[1].values()
    other = plant_canaries(daily_life, random.Random(4))[1].values()
    assert first == again
    assert not set(first) & set(other)


def test_plant_names_keeps_acis(daily_life):
    planted, canaries = plant_canaries(daily_life, random.Random(5), kinds=ALL_KINDS)
    before = resolve(daily_life, NOW)
    after = resolve(planted, NOW)
    assert [c["aci"] for c in before["contacts"]] == [c["aci"] for c in after["contacts"]]
    names = [canary for canary in canaries if canary.kind == KIND_CONTACT_NAME]
    assert len(names) == 3
    titles = {chat["title"] for chat in after["chats"]}
    assert all(any(canary.value in title for title in titles) for canary in names)


def test_plant_generator_once(tmp_path):
    planted, canaries = plant_canaries(load_scenario(SCENARIOS / "large-chat.yaml"), random.Random(6))
    assert len(canaries) == 1
    value = canaries.values()[0]
    stream = resolve(planted, NOW)["messages"]
    first = next(iter(stream))
    assert first["text"].endswith(value)
    assert canaries.get(value).path == "messages[0].message.text"


def test_plant_rejects_unknown_kind(daily_life):
    with pytest.raises(ValueError, match="unknown canary kinds"):
        plant_canaries(daily_life, random.Random(1), kinds={"everything"})


def test_leak_scan_end_to_end(daily_life):
    planted, canaries = plant_canaries(daily_life, random.Random(7))
    messages = list(resolve(planted, NOW)["messages"])
    attachment = next(a for m in messages for a in m["attachments"] if a["embed"])
    leaked_text = next(c for c in canaries if c.kind == KIND_TEXT)
    body = json.dumps({"note": base64.b64encode(b"x" + leaked_text.value.encode()).decode()}).encode()
    recording = b"PUT /upload HTTP/1.1\r\n\r\n" + gzip.compress(attachment_bytes(attachment)) + body
    matches = scan_for(recording, canaries.needles())
    values = {match.label.split("/")[0] for match in matches}
    assert values == {attachment["embed"], leaked_text.value}
    sentences = [canaries.describe(match) for match in matches]
    assert any("found as base64-shift1" in sentence or "found as base64url-shift1" in sentence for sentence in sentences)
    assert any("inside gzip@" in sentence for sentence in sentences)


def test_canary_set_json():
    canaries = CanarySet()
    assert len(canaries) == 0
    planted = plant_canaries(load_scenario(SCENARIOS / "view-once.yaml"), random.Random(8))[1]
    rows = planted.to_json()
    assert rows and set(rows[0]) == {"value", "kind", "path", "message_id"}
