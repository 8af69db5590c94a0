"""Error types shared by every layer of the harness.

Each error carries a one-line message for the user: what failed, on which value, and what to
do next. The CLI prints that line and exits with the error's ``exit_code``; it never prints a
traceback for these. Messages must never contain a recovery key or a derived key.
"""


class HarnessError(Exception):
    """Base class of every error the harness reports to a user."""

    exit_code = 2


class UsageError(HarnessError):
    """A command-line value or an input file is invalid."""


class RecoveryKeyError(UsageError, ValueError):
    """A recovery key entry breaks one of the format rules (length, alphabet)."""


class ArchiveError(HarnessError):
    """An archive cannot be read. Maps to exit code 2."""


class MacMismatchError(ArchiveError):
    """The archive MAC does not match: wrong recovery key, wrong ACI or token, or tampering."""


class TruncatedArchiveError(ArchiveError):
    """The archive ends before a structure it announced is complete."""


class NotABackupError(ArchiveError):
    """The input is not a backup archive or frame stream at all."""


class UnsupportedVersionError(ArchiveError):
    """The archive uses a container or format version this harness does not know."""


class ArchiveTooLargeError(ArchiveError):
    """Decompression would exceed the configured expansion limit (a gzip bomb guard)."""


class MalformedFrameError(ArchiveError):
    """A frame in the decrypted stream is not valid protobuf or has an impossible length."""


class ScenarioError(UsageError):
    """A scenario file is malformed; the message names the file, line and field."""


class InfrastructureError(HarnessError):
    """The test infrastructure failed (device, adb, stub server, libsignal bridge).

    Reports keep these apart from failed checks: an infrastructure error tells nothing about
    whether the app under test is correct.
    """

    exit_code = 3


class DeviceError(InfrastructureError):
    """A device or emulator is missing, offline or not responding."""


class StubServerError(InfrastructureError):
    """The stub backup server did not start, or its admin API did not respond."""


class BridgeError(InfrastructureError):
    """The Node helper that runs libsignal's zkgroup failed or died."""
