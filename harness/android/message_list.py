"""Read every chat's messages off the screen, following the profile's ``read_message_list``.

For each chat title on the chat list: open the chat, read the message rows from window dumps
(scrolling when the profile asks for it, until no new row appears), and go back. A row's
fields come from its own nodes, apart from its attachment rows, which give the attachments.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from xml.etree import ElementTree

from harness.android import hierarchy
from harness.android.actions import ActionRunner, StepContext, convert
from harness.android.errors import ProfileMismatchError
from harness.targets.base import VisibleAttachment, VisibleMessage

log = logging.getLogger(__name__)

MESSAGE_FIELDS = {field.name for field in dataclasses.fields(VisibleMessage)} - {"chat", "attachments"}
ATTACHMENT_FIELDS = {field.name for field in dataclasses.fields(VisibleAttachment)}
DEFAULT_MAX_SWIPES = 200


def read_visible_messages(runner: ActionRunner) -> list[VisibleMessage]:
    spec = runner.profile.message_list
    _check_names(runner, spec)
    runner.run_steps("read_message_list", spec.get("open") or [], {})
    context = StepContext("read_message_list", runner.base_variables())
    root = hierarchy.parse_dump(runner.ui.dump_hierarchy())
    titles = list(dict.fromkeys(node.get("text", "") for node in
                                hierarchy.find_all(root, runner.fill(spec["chats"], context))))
    messages: list[VisibleMessage] = []
    for title in titles:
        runner.run_steps("open_chat", spec["open_chat"], {"chat": title})
        messages += _read_chat(runner, spec, title, context)
        runner.run_steps("close_chat", spec.get("close_chat") or [], {"chat": title})
    log.info("read %d messages in %d chats from the screen of %s", len(messages), len(titles), runner.device.serial)
    return messages


def _check_names(runner: ActionRunner, spec: dict[str, Any]) -> None:
    unknown = set(spec["fields"]) - MESSAGE_FIELDS
    unknown |= set(spec.get("attachment_fields") or {}) - ATTACHMENT_FIELDS
    if unknown:
        raise ProfileMismatchError(f"app profile {runner.profile.path.name}: read_message_list names unknown "
                                   f"field(s) {', '.join(sorted(unknown))}")


def _read_chat(runner: ActionRunner, spec: dict[str, Any], title: str, context: StepContext) -> list[VisibleMessage]:
    row_selector = runner.fill(spec["row"], context)

    def read_rows() -> list[VisibleMessage]:
        root = hierarchy.parse_dump(runner.ui.dump_hierarchy())
        return [_row(runner, spec, row, title, context) for row in hierarchy.find_all(root, row_selector)]

    scroll = spec.get("scroll")
    if not scroll:
        return read_rows()
    # A scrolled list shows overlapping pages: rows already read are recognised by their
    # content and time, and the end is reached when a page brings nothing new.
    collected: dict[tuple[Any, ...], VisibleMessage] = {}
    for _ in range(int(scroll.get("max_swipes", DEFAULT_MAX_SWIPES)) + 1):
        new = 0
        for message in read_rows():
            key = (message.sent_at_ms, message.author, message.direction, message.text)
            if key not in collected:
                collected[key] = message
                new += 1
        if new == 0:
            break
        runner.ui.swipe(str(scroll.get("direction", "up")))
    return sorted(collected.values(), key=lambda message: message.sent_at_ms)


def _row(runner: ActionRunner, spec: dict[str, Any], row: ElementTree.Element, title: str,
         context: StepContext) -> VisibleMessage:
    attachment_selector = runner.fill(spec.get("attachment_row"), context) if spec.get("attachment_row") else None
    values: dict[str, Any] = {}
    for name, field in spec["fields"].items():
        raw = hierarchy.first_text(row, runner.fill(field["selector"], context), exclude=attachment_selector)
        values[name] = _required(convert(raw, field), field, name, title)
    attachments = []
    if attachment_selector:
        for node in hierarchy.find_all(row, attachment_selector):
            item = {}
            for name, field in (spec.get("attachment_fields") or {}).items():
                raw = hierarchy.first_text(node, runner.fill(field["selector"], context))
                item[name] = _required(convert(raw, field), field, name, title)
            attachments.append(VisibleAttachment(file_name=item.get("file_name"), content_type=item.get("content_type"),
                                                 size=int(item.get("size") or 0), available=bool(item.get("available")),
                                                 sha256=item.get("sha256")))
    values.setdefault("view_once", False)
    values.setdefault("deleted", False)
    values["reactions"] = tuple(values.get("reactions") or ())
    return VisibleMessage(chat=title, attachments=tuple(attachments), **values)


def _required(value: Any, field: dict[str, Any], name: str, title: str) -> Any:
    if value is None and field.get("required"):
        raise ProfileMismatchError(f"a message row in chat {title!r} has no {name}; check the profile's "
                                   "read_message_list selectors against a window dump")
    return value
