"""The screens of the hosted reference app, built from its state on every read.

Each screen is a view tree (``ui_model``) made from the app's control API (backup status,
chat list, messages). The little UI state a phone app keeps itself is added: which screen is
open, the text typed into the restore field, the recovery key while its screen is shown. Taps run
the matching control request. Long operations (turning backups on, a new key, restore, turning
backups off) run on the app's own worker thread while the screen shows a progress line.

Resource ids (all ``<package>:id/<name>``), by screen:

* main: ``toolbar_title``, ``open_backups``, ``open_restore``, ``chat_list`` with ``chat_row``
  (``chat_title``, ``chat_unread``), ``not_registered``;
* chat: ``conversation_title``, ``message_list`` with ``message_row`` (``message_author``,
  ``message_direction``, ``message_timestamp``, ``message_body``, ``message_view_once``,
  ``message_expires_in``, ``message_expire_start``, ``message_quote``, ``message_reactions``,
  ``message_deleted``, and ``attachment_row`` with ``attachment_name``, ``attachment_type``,
  ``attachment_size``, ``attachment_state``, ``attachment_sha256``);
* backups: ``backup_state``, ``backup_tier``, ``last_backup``, ``next_backup``,
  ``backup_time``, ``backup_error``, ``backup_progress``, ``enable_backups``, ``back_up_now``,
  ``change_tier``, ``regenerate_key``, ``disable_backups``;
* plan choice: ``tier_free``, ``tier_paid``; confirmations: ``dialog_title``, ``confirm``,
  ``cancel``; key (FLAG_SECURE): ``recovery_key``, ``key_saved``, ``key_progress``;
* restore: ``recovery_key_input``, ``restore_button``, ``restore_progress``,
  ``restore_error_title``, ``restore_error``, ``restore_done``, ``restore_continue``;
* any screen: ``error_message`` after a refused action.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import quote
from typing import TYPE_CHECKING, Any

from harness.android.double.apps import IntentSpec
from harness.android.double.reference_control import AppGone, AppRejected
from harness.android.double.ui_model import Screen, UiNode

if TYPE_CHECKING:
    from harness.android.double.reference_host import ReferenceAppRuntime

log = logging.getLogger(__name__)

TIER_LABELS = {"free": "Free", "paid": "Paid"}
RESTORE_ERROR_TITLES = {
    "invalid-key": "Invalid recovery key",
    "incorrect-key": "Incorrect recovery key",
    "corrupt": "Backup could not be read",
    "missing": "No backup found",
    "network": "Network error",
    "not-registered": "Not registered",
}
RESTORE_TIMEOUT_S = 120.0


class ReferenceUi:
    """Navigation state and screen construction for one hosted reference app."""

    def __init__(self, runtime: ReferenceAppRuntime) -> None:
        self.runtime = runtime
        self.package = runtime.package
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.current = "main"
            self.chat: str | None = None
            self.tier_purpose = "enable"
            self.shown_key: str | None = None
            self.busy: str | None = None
            self.error: str | None = None
            self.restore_input = ""
            self.restore_outcome: dict[str, Any] | None = None

    def rid(self, name: str) -> str:
        return f"{self.package}:id/{name}"

    # Navigation -------------------------------------------------------------------------------
    def on_launch(self, intent: IntentSpec) -> None:
        activity = (intent.component or "").split("/", 1)[-1]
        with self._lock:
            if self.busy:
                return  # an operation is running: relaunching brings its screen back
            self.error = None
            if activity.endswith(".BackupsActivity"):
                self.go("backups")
            elif activity.endswith(".RestoreActivity"):
                self.go("restore")
            else:
                self.go("main")

    def go(self, screen: str) -> None:
        with self._lock:
            if self.current == "recovery_key" and screen != "recovery_key":
                self.shown_key = None  # the key is shown once, then only a new one can be made
            if screen == "restore" and self.current != "restore":
                self.restore_input, self.restore_outcome = "", None
            self.current = screen
            self.error = None

    def back(self) -> bool:
        with self._lock:
            if self.busy:
                return True
            parents = {"chat": "main", "backups": "main", "restore": "main", "choose_tier": "backups",
                       "recovery_key": "backups", "confirm_disable": "backups", "confirm_regenerate": "backups"}
            parent = parents.get(self.current)
            if parent is None:
                return False
            self.go(parent)
            return True

    # Screens ------------------------------------------------------------------------------------
    def screen(self) -> Screen:
        with self._lock:
            current = self.current
        builders: dict[str, Callable[[], tuple[list[UiNode], bool]]] = {
            "main": self._main, "chat": self._chat, "backups": self._backups, "choose_tier": self._choose_tier,
            "recovery_key": self._recovery_key, "confirm_disable": self._confirm_disable,
            "confirm_regenerate": self._confirm_regenerate, "restore": self._restore,
        }
        try:
            children, secure = builders[current]()
        except (AppGone, AppRejected) as error:
            children, secure = [self._text("anr_message", f"{self.package} isn't responding: {error}")], False
        if self.error:
            children.append(self._text("error_message", self.error))
        activity = {"backups": ".BackupsActivity", "restore": ".RestoreActivity", "chat": ".ConversationActivity"}
        return Screen(self.package, activity.get(current, ".MainActivity"),
                      UiNode(class_name="android.widget.FrameLayout", resource_id=self.rid("content"),
                             children=children), secure=secure)

    def _main(self) -> tuple[list[UiNode], bool]:
        health = self.runtime.request("GET", "/health", timeout=10)
        children = [self._text("toolbar_title", "Chats"),
                    self._button("open_backups", "Backups", lambda: self.go("backups")),
                    self._button("open_restore", "Restore from backup", lambda: self.go("restore"))]
        if not health.get("registered"):
            children.append(self._text("not_registered", "Not registered"))
            return children, False
        rows = []
        for chat in self.runtime.request("GET", "/chats", timeout=30)["chats"]:
            title = chat["title"]
            rows.append(UiNode(class_name="android.widget.LinearLayout", resource_id=self.rid("chat_row"),
                               clickable=True, on_click=lambda title=title: self._open_chat(title),
                               children=[self._text("chat_title", title),
                                         self._text("chat_unread", str(chat.get("unread", 0)))]))
        children.append(UiNode(class_name="androidx.recyclerview.widget.RecyclerView",
                               resource_id=self.rid("chat_list"), scrollable=True, children=rows))
        return children, False

    def _open_chat(self, title: str) -> None:
        with self._lock:
            self.chat = title
            self.go("chat")

    def _chat(self) -> tuple[list[UiNode], bool]:
        title = self.chat or ""
        messages = self.runtime.request("GET", f"/messages?chat={quote(title)}", timeout=120)["messages"]
        rows = [self._message_row(message) for message in messages]
        return [self._text("conversation_title", title),
                UiNode(class_name="androidx.recyclerview.widget.RecyclerView", resource_id=self.rid("message_list"),
                       scrollable=True, children=rows)], False

    def _message_row(self, message: dict[str, Any]) -> UiNode:
        children = [self._text("message_author", message["author"]),
                    self._text("message_direction", message["direction"]),
                    self._text("message_timestamp", str(message["sent_at_ms"]))]
        optional = [
            ("message_body", message.get("text")),
            ("message_view_once", "View-once media" if message.get("view_once") else None),
            ("message_expires_in", _number(message.get("expires_in_ms"))),
            ("message_expire_start", _number(message.get("expire_start_ms"))),
            ("message_quote", message.get("quote_text")),
            ("message_reactions", " ".join(message.get("reactions") or []) or None),
            ("message_deleted", "This message was deleted" if message.get("deleted") else None),
        ]
        children += [self._text(name, value) for name, value in optional if value is not None]
        for attachment in message.get("attachments") or []:
            fields = [
                ("attachment_name", attachment.get("file_name")),
                ("attachment_type", attachment.get("content_type")),
                ("attachment_size", str(attachment.get("size", 0))),
                ("attachment_state", "available" if attachment.get("available") else "unavailable"),
                ("attachment_sha256", attachment.get("sha256")),
            ]
            children.append(UiNode(class_name="android.widget.LinearLayout", resource_id=self.rid("attachment_row"),
                                   children=[self._text(name, value) for name, value in fields if value is not None]))
        return UiNode(class_name="android.widget.LinearLayout", resource_id=self.rid("message_row"), children=children)

    def _backups(self) -> tuple[list[UiNode], bool]:
        status = self.runtime.request("GET", "/backups/status", timeout=10)
        children = [self._text("toolbar_title", "Backups"),
                    self._text("backup_state", "On" if status["enabled"] else "Off")]
        if self.busy == "disabling":
            children.append(self._text("backup_progress", "Turning off backups…"))
            return children, False
        if not status["enabled"]:
            children.append(self._button("enable_backups", "Turn on backups", lambda: self._choose("enable")))
            return children, False
        hour, minute = status.get("backup_hour"), status.get("backup_minute")
        children += [
            self._text("backup_tier", TIER_LABELS.get(status["tier"] or "", "Unknown")),
            self._text("last_backup", _number(status.get("last_backup_ms")) or "Never"),
            self._text("next_backup", _number(status.get("next_backup_ms")) or "Not scheduled"),
            self._text("backup_time", f"{hour:02d}:{minute:02d}" if hour is not None and minute is not None else "Not set"),
        ]
        if status.get("error"):
            children.append(self._text("backup_error", status["error"]))
        if status.get("running"):
            children.append(self._text("backup_progress", "Backing up…"))
        children += [
            self._button("back_up_now", "Back up now", self._back_up_now, enabled=not status.get("running")),
            self._button("change_tier", "Change plan", lambda: self._choose("change")),
            self._button("regenerate_key", "Create new recovery key", lambda: self.go("confirm_regenerate")),
            self._button("disable_backups", "Turn off and delete backup", lambda: self.go("confirm_disable")),
        ]
        return children, False

    def _choose_tier(self) -> tuple[list[UiNode], bool]:
        return [self._text("dialog_title", "Choose your backup plan"),
                self._button("tier_free", "Free", lambda: self._tier_chosen("free")),
                self._button("tier_paid", "Paid", lambda: self._tier_chosen("paid"))], False

    def _recovery_key(self) -> tuple[list[UiNode], bool]:
        if self.busy in ("enabling", "regenerating"):
            return [self._text("key_progress", "Creating your recovery key…")], True
        children = [self._text("dialog_title", "Your recovery key")]
        if self.shown_key:
            children += [self._text("recovery_key", self.shown_key),
                         self._button("key_saved", "Continue", lambda: self.go("backups"))]
        return children, True

    def _confirm_disable(self) -> tuple[list[UiNode], bool]:
        return [self._text("dialog_title", "Turn off backups and delete your backup?"),
                self._button("confirm", "Turn off", self._disable),
                self._button("cancel", "Cancel", lambda: self.go("backups"))], False

    def _confirm_regenerate(self) -> tuple[list[UiNode], bool]:
        return [self._text("dialog_title", "Create a new recovery key?"),
                self._button("confirm", "Continue", self._regenerate),
                self._button("cancel", "Cancel", lambda: self.go("backups"))], False

    def _restore(self) -> tuple[list[UiNode], bool]:
        children = [self._text("toolbar_title", "Restore from backup")]
        if self.busy == "restoring":
            children.append(self._text("restore_progress", "Restoring…"))
            return children, False
        outcome = self.restore_outcome
        if outcome is not None and outcome.get("ok"):
            children += [self._text("restore_done", f"Restore complete: {outcome.get('chat_items', 0)} messages"),
                         self._button("restore_continue", "Continue", lambda: self.go("main"))]
            return children, False
        if outcome is not None:
            kind = str(outcome.get("error_kind") or "")
            children += [self._text("restore_error_title", RESTORE_ERROR_TITLES.get(kind, "Restore failed")),
                         self._text("restore_error", str(outcome.get("error") or ""))]
        children += [
            UiNode(class_name="android.widget.EditText", resource_id=self.rid("recovery_key_input"),
                   text=self.restore_input, focusable=True, clickable=True, on_set_text=self._type_key),
            self._button("restore_button", "Restore", self._start_restore),
        ]
        return children, False

    # Actions ------------------------------------------------------------------------------------
    def _choose(self, purpose: str) -> None:
        with self._lock:
            self.tier_purpose = purpose
            self.go("choose_tier")

    def _tier_chosen(self, tier: str) -> None:
        if self.tier_purpose == "change":
            self._call(lambda: self.runtime.request("POST", "/backups/tier", {"tier": tier}), then="backups")
            return
        self._in_background("enabling", "recovery_key",
                            lambda: self.runtime.request("POST", "/backups/enable", {"tier": tier}, timeout=120),
                            self._show_key)

    def _regenerate(self) -> None:
        self._in_background("regenerating", "recovery_key",
                            lambda: self.runtime.request("POST", "/backups/regenerate-key", timeout=180),
                            self._show_key)

    def _show_key(self, reply: dict[str, Any]) -> None:
        self.shown_key = str(reply["recovery_key"])

    def _disable(self) -> None:
        self._in_background("disabling", "backups",
                            lambda: self.runtime.request("POST", "/backups/disable", timeout=180), None)

    def _back_up_now(self) -> None:
        self._call(lambda: self.runtime.request("POST", "/backups/run", {"wait": False}, timeout=10), then=None)

    def _type_key(self, text: str) -> None:
        with self._lock:
            self.restore_input = text

    def _start_restore(self) -> None:
        entry = self.restore_input
        self.restore_outcome = None

        def restore() -> dict[str, Any]:
            return self.runtime.request("POST", "/restore", {"recovery_key": entry, "timeout_s": RESTORE_TIMEOUT_S},
                                        timeout=RESTORE_TIMEOUT_S + 15)

        self._in_background("restoring", "restore", restore, lambda reply: setattr(self, "restore_outcome", reply))

    def _call(self, request: Callable[[], Any], then: str | None) -> None:
        try:
            request()
        except (AppGone, AppRejected) as error:
            with self._lock:
                self.error = str(error)
            return
        if then:
            self.go(then)

    def _in_background(self, busy: str, screen: str, request: Callable[[], Any],
                       done: Callable[[dict[str, Any]], None] | None) -> None:
        with self._lock:
            if self.busy:
                return
            self.go(screen)
            self.busy = busy

        def work() -> None:
            try:
                reply = request()
            except (AppGone, AppRejected) as error:
                with self._lock:
                    self.busy = None
                    if screen == "recovery_key":
                        self.current = "backups"
                    self.error = str(error)
                return
            with self._lock:
                if done is not None:
                    done(reply)
                self.busy = None

        self.runtime.worker.submit(work)

    # Nodes --------------------------------------------------------------------------------------
    def _text(self, name: str, text: str) -> UiNode:
        return UiNode(class_name="android.widget.TextView", resource_id=self.rid(name), text=text)

    def _button(self, name: str, text: str, action: Callable[[], None], *, enabled: bool = True) -> UiNode:
        return UiNode(class_name="android.widget.Button", resource_id=self.rid(name), text=text, clickable=True,
                      enabled=enabled, on_click=action)


def _number(value: Any) -> str | None:
    return None if value is None else str(value)
