"""Planted defects: switchable bugs that the test suite must catch.

Each defect is a real class of backup bug. It is switched on at start (``--defect NAME``,
repeatable) and changes one behaviour of the app; the code that plants it checks
``defects.active(NAME)`` at the spot where a real client could get it wrong.
"""

from __future__ import annotations

from collections.abc import Iterable

# Name -> one-line description of the planted behaviour.
DEFECTS: dict[str, str] = {
    "plaintext-upload": "uploads the frame stream unencrypted and uncompressed instead of the archive",
    "static-iv": "encrypts every archive with the same fixed AES-CBC IV",
    "bad-mac": "writes an archive whose MAC does not match its content",
    "key-to-server": "sends the recovery key to the server in a header of the upload form request",
    "key-to-log": "writes the recovery key into the app log when it is created",
    "keeps-view-once-media": "exports view-once messages with their attachment and uploads that media",
    "keeps-short-timers": "keeps messages whose disappearing timer is 24 hours or less (and skips validation)",
    "ignores-time-left": "keeps messages that disappear within 24 hours of the backup (and skips validation)",
    "over-excludes": "drops every disappearing message, even those with plenty of time left",
    "appends-instead-of-replace": "adds the previous archive's chat items to each new archive",
    "stale-snapshot": "re-uploads the first exported archive instead of a fresh snapshot",
    "keeps-deleted": "keeps deleted messages, and the content of remotely deleted ones, in the archive",
    "media-window-30-days": "drops free-tier attachment locators uploaded more than 30 days before the backup",
    "skips-thumbnails": "copies attachments to the media tier on the paid tier but never their thumbnails",
    "restore-ignores-mac": "restores an archive without checking its MAC",
    "partial-restore-on-error": "writes restored frames straight into the message store and leaves them after an error",
    "account-auth-on-archive-routes": "sends the account's Basic auth on zero-knowledge archive routes",
    "account-auth-on-cdn": "sends the account's Basic auth on CDN uploads and reads",
    "fetch-credentials-every-call": "fetches backup credentials right before every anonymous request",
    "reuse-presentation": "sends one credential presentation on every request of a day (linkable)",
    "skip-media-refresh": "refreshes only the messages backup id, also on the paid tier",
    "omit-upload-length": "asks for the upload form without uploadLength",
    "sign-media-with-messages-key": "signs media requests with the messages backup-id key",
    "commits-before-restore": "commits a backup id (PUT /v1/archives/backupid) while restoring",
    "key-in-settings": "writes the recovery key in plain text to a settings file in the data directory",
    "no-refresh": "never sends the daily keep-alive refresh",
    "rotation-keeps-media-key": "keeps the old media root key when the recovery key is regenerated",
    "no-jitter": "schedules the daily backup exactly on the slot, without jitter",
    "schedule-in-utc": "computes the daily backup time in UTC instead of the device's time zone",
    "new-backup-id-each-day": "commits a new backup id (a new key it never shows) for each day's backup",
    "rotation-keeps-archive-key": "keeps encrypting archives with the old recovery key after the key is regenerated",
    "rotation-keeps-backup-id": "keeps uploading under the old backup id after the recovery key is regenerated",
    "rotation-deletes-old-backup": "deletes the old backup before the archive for the new recovery key is uploaded",
    "media-tier-on-free": "copies attachments to the media tier on the free tier too",
    "expired-media-shown-available": "saves an empty file for an attachment that failed to download, so it shows as available",
    "swapped-media-keys": "swaps hmacKey and encryptionKey in the attachment copy requests to the media tier",
    "restore-fails-on-missing-media": "fails the whole restore when one attachment cannot be downloaded",
    "free-tier-media-locator": "writes a media-tier CDN number into free-tier attachment locators",
    "filename-in-upload-form": "sends each attachment's file name in the query of the attachment upload form request",
    "logs-message-text": "writes the text of every new message into the app log",
    "keeps-plaintext-export": "leaves the unencrypted frame stream of each backup in the cache folder",
    "archive-key-ignores-aci": "encrypts the archive with a key derived from an all-zero ACI, without a forward-secrecy token",
    "chat-timer-on-untimed": "applies the chat's disappearing timer to messages sent with the timer turned off",
    "view-once-quote-keeps-attachment": "writes quotes of view-once messages as normal quotes with the quoted attachment",
    "copies-excluded-media": "copies every attachment on the device to the media tier, also view-once and excluded ones",
    "locator-without-cdn-number": "writes transit-tier locators without transitCdnNumber (and skips validation)",
    "wrong-key-reported-as-corrupt": "reports a wrong recovery key as a damaged backup",
    "no-key-format-check": "skips the recovery key format check and reports a malformed entry as a wrong key",
    "traceback-in-restore-error": "shows the whole traceback as the error when the backup download breaks off",
    "missing-reported-as-network": "reports a missing backup as a network error",
    "caches-missing-backup": "remembers a 'no backup' answer and fails every later restore without asking the server",
    "restore-drops-reactions": "restores messages without their reactions",
    "aci-on-archive-routes": "sends the account's ACI in a header of zero-knowledge archive requests",
    "zk-auth-on-account-routes": "adds a credential presentation to the account-authenticated attachment upload form request",
    "backup-id-on-account-routes": "sends the messages backup id in the query of the credential fetch",
}


class UnknownDefectError(ValueError):
    """A defect name that is not in ``DEFECTS``."""

    def __init__(self, name: str):
        valid = ", ".join(sorted(DEFECTS))
        super().__init__(f"unknown defect {name!r}; valid names: {valid}")
        self.name = name


class Defects:
    """The set of defects switched on for this run."""

    def __init__(self, names: Iterable[str] = ()):
        chosen = list(dict.fromkeys(names))
        for name in chosen:
            if name not in DEFECTS:
                raise UnknownDefectError(name)
        self._names = frozenset(chosen)
        self._order = tuple(chosen)

    def active(self, name: str) -> bool:
        """Return whether defect ``name`` is switched on (a typo in the app is a bug: raise)."""
        if name not in DEFECTS:
            raise UnknownDefectError(name)
        return name in self._names

    @property
    def names(self) -> tuple[str, ...]:
        return self._order

    def __repr__(self) -> str:
        return f"Defects({list(self._order)!r})"


def describe_all() -> str:
    """Return one line per defect: its name and what it plants."""
    width = max(len(name) for name in DEFECTS)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in sorted(DEFECTS.items()))
