"""The people and chats of a scenario, indexed by id, with their cross-reference checks."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from harness.scenario_source import SourceMap
from harness.timespec import parse_duration

SELF = "self"

# Namespace of the ACIs generated for people without one: uuid5(namespace, name). Any fixed
# UUID works; this one is uuid5(NAMESPACE_URL, "backup-harness:scenario-aci").
ACI_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "backup-harness:scenario-aci")


def derive_aci(name: str) -> str:
    """Return the deterministic ACI (a UUID string) the harness gives a person called ``name``."""
    return str(uuid.uuid5(ACI_NAMESPACE, name))


def parse_timer(value: int | str | None) -> int | None:
    """Return a disappearing timer in ms, or None when it is absent, ``off`` or zero."""
    if value is None or value == "off":
        return None
    return parse_duration(value) or None


def message_timer(message: dict[str, Any], chat_timer_ms: int | None) -> int | None:
    """Return a message's timer: its own ``expires_in``, else the chat's (never for updates)."""
    if "expires_in" in message:
        return parse_timer(message["expires_in"])
    return None if message.get("kind") == "update" else chat_timer_ms


@dataclasses.dataclass(frozen=True)
class ChatInfo:
    id: str
    with_id: str
    kind: str  # "contact" or "group"
    title: str
    members: frozenset[str]  # contact ids of the other participants (never "self")
    timer_ms: int | None


@dataclasses.dataclass
class Directory:
    self_name: str
    contacts: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    chats: dict[str, ChatInfo]


def _check_people(document: dict[str, Any], source: SourceMap) -> dict[str, dict[str, Any]]:
    contacts: dict[str, dict[str, Any]] = {}
    acis: dict[str, str] = {}
    numbers: dict[str, str] = {}
    self_entry = document["self"]
    acis[(self_entry.get("aci") or derive_aci(self_entry["name"])).lower()] = "self"
    if "e164" in self_entry:
        numbers[self_entry["e164"]] = "self"

    for index, contact in enumerate(document.get("recipients", {}).get("contacts", [])):
        path = ("recipients", "contacts", index)
        contact_id = contact["id"]
        if contact_id == SELF:
            raise source.error(path + ("id",), "'self' is reserved for the account owner; pick another id")
        if contact_id in contacts:
            raise source.error(path + ("id",), f"duplicate contact id {contact_id!r}")
        aci = (contact.get("aci") or derive_aci(contact["name"])).lower()
        if aci in acis:
            where = "given explicitly" if "aci" in contact else f"derived from the name {contact['name']!r}"
            raise source.error(
                path + ("aci",) if "aci" in contact else path + ("name",),
                f"ACI {aci} ({where}) is already used by {acis[aci]!r}; give each person a distinct ACI or name",
            )
        acis[aci] = contact_id
        number = contact.get("e164")
        if number is not None:
            if number in numbers:
                raise source.error(path + ("e164",), f"phone number {number} is already used by {numbers[number]!r}")
            numbers[number] = contact_id
        contacts[contact_id] = {**contact, "aci": aci}
    return contacts


def _check_groups(
    document: dict[str, Any], contacts: dict[str, dict[str, Any]], source: SourceMap
) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for index, group in enumerate(document.get("recipients", {}).get("groups", [])):
        path = ("recipients", "groups", index)
        group_id = group["id"]
        if group_id == SELF or group_id in contacts or group_id in groups:
            raise source.error(path + ("id",), f"id {group_id!r} is already used by a contact, a group or the account owner")
        seen: set[str] = set()
        for member_index, member in enumerate(group["members"]):
            member_path = path + ("members", member_index)
            if member == SELF:
                raise source.error(member_path, "the account owner is always a member; remove 'self'")
            if member not in contacts:
                raise source.error(member_path, f"unknown contact {member!r}; list it under recipients.contacts")
            if member in seen:
                raise source.error(member_path, f"contact {member!r} is listed twice")
            seen.add(member)
        groups[group_id] = group
    return groups


def _check_chats(
    document: dict[str, Any],
    contacts: dict[str, dict[str, Any]],
    groups: dict[str, dict[str, Any]],
    source: SourceMap,
) -> dict[str, ChatInfo]:
    chats: dict[str, ChatInfo] = {}
    recipients_with_chat: set[str] = set()
    for index, chat in enumerate(document["chats"]):
        path = ("chats", index)
        with_id = chat["with"]
        chat_id = chat.get("id", with_id)
        if chat_id in chats:
            raise source.error(path + ("id",), f"duplicate chat id {chat_id!r}")
        if with_id in recipients_with_chat:
            raise source.error(path + ("with",), f"{with_id!r} already has a chat; a recipient has one chat")
        if with_id in contacts:
            kind, title, members = "contact", contacts[with_id]["name"], frozenset([with_id])
        elif with_id in groups:
            kind, title, members = "group", groups[with_id]["title"], frozenset(groups[with_id]["members"])
        else:
            raise source.error(path + ("with",), f"unknown recipient {with_id!r}; list it under recipients")
        recipients_with_chat.add(with_id)
        chats[chat_id] = ChatInfo(chat_id, with_id, kind, title, members, parse_timer(chat.get("expires_in")))
    return chats


def build_directory(document: dict[str, Any], source: SourceMap) -> Directory:
    """Index people, groups and chats; raise ScenarioError for a bad id or reference."""
    contacts = _check_people(document, source)
    groups = _check_groups(document, contacts, source)
    chats = _check_chats(document, contacts, groups, source)
    return Directory(document["self"]["name"], contacts, groups, chats)
