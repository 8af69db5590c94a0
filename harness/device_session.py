"""Building blocks of the device-suite fixtures: settings, the stub handle, the clock, the recorder.

The pytest plugin (``harness.pytest_plugin``) builds these objects on request, so this module
is imported only when a test requests a device fixture.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.artifacts import ArtifactFolder
from harness.errors import InfrastructureError, StubServerError, UsageError
from harness.stub_client import StubAdmin
from harness.targets.base import Account, LogPosition, StubEndpoints, Target
from harness.traffic import RecordedRequest

log = logging.getLogger(__name__)

# Backup levels of the stub's accounts: FREE 200, PAID 201 (Signal-Server BackupLevel).
LEVEL_FREE = 200
LEVEL_PAID = 201


@dataclasses.dataclass(frozen=True)
class SuiteSettings:
    """The plugin options that decide how the suite runs; no secrets."""

    target: str = "reference"
    policy: str = "android"
    defects: tuple[str, ...] = ()
    scenario: Path | None = None
    stub_admin_url: str | None = None
    corpus: Path | None = None
    serial: str | None = None
    adb_server: str = "127.0.0.1:5037"
    apk: Path | None = None
    profile: str | None = None
    pcap: Path | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> SuiteSettings:
        def path(name: str) -> Path | None:
            value = config.getoption(name, None)
            return Path(value) if value else None

        settings = cls(
            target=config.getoption("target"),
            policy=config.getoption("policy"),
            defects=tuple(config.getoption("defect")),
            scenario=path("scenario"),
            stub_admin_url=config.getoption("stub_admin_url"),
            corpus=path("corpus"),
            serial=config.getoption("serial"),
            adb_server=config.getoption("adb_server"),
            apk=path("apk"),
            profile=config.getoption("profile"),
            pcap=path("pcap"),
        )
        if settings.defects and settings.target != "reference":
            raise UsageError("--defect applies to the reference app only; drop it or use --target reference")
        if settings.pcap is not None:
            if settings.target != "android":
                raise UsageError("--pcap needs --target android (the emulator's -tcpdump file)")
            if not settings.pcap.is_file():
                raise UsageError(f"--pcap {settings.pcap}: file not found; pass the file the emulator's "
                                 "-tcpdump option writes")
        return settings


@dataclasses.dataclass
class StubHandle:
    """A running stub server: its app-facing URL and its admin client."""

    url: str
    admin_url: str
    admin: StubAdmin


@contextlib.contextmanager
def open_stub(settings: SuiteSettings, data_dir: Path) -> Iterator[StubHandle]:
    """Connect to the stub given by ``--stub-admin-url``, or start one for the session."""
    if settings.stub_admin_url:
        admin = StubAdmin(settings.stub_admin_url)
        info = admin.info()
        try:
            yield StubHandle(info["url"], settings.stub_admin_url, admin)
        finally:
            admin.close()
        return
    from harness.stub_process import StubProcess

    with StubProcess.start(data_dir=data_dir) as process:
        yield StubHandle(process.url, process.admin_url, process.admin)


def reset_stub(stub: StubHandle) -> None:
    """Remove every account, backup, object, fault and recording, and reset the clock."""
    stub.admin.reset()


class Recorder:
    """The stub's recorded requests, read through its admin API.

    Creating a recorder tags the following recordings with ``label`` (a stub marker).
    ``position()`` returns the id of the newest recording, so a caller can later ask for the
    requests made after that point (``requests(since_id=...)``).
    """

    def __init__(self, stub: StubHandle, label: str | None = None) -> None:
        self.stub = stub
        self.start_id = stub.admin.set_marker(label)

    def position(self) -> int:
        return self.stub.admin.set_marker(self.stub.admin.marker())

    def records(self, since_id: int | None = None, plane: str | None = None) -> list[dict[str, Any]]:
        """Return the raw JSON records after ``since_id`` (default: since the module began)."""
        start = self.start_id if since_id is None else since_id
        return self.stub.admin.recordings(since_id=start, plane=plane, limit=1_000_000)

    def requests(self, since_id: int | None = None, plane: str | None = None) -> list[RecordedRequest]:
        """Return the recorded requests, each with its body, after ``since_id``."""
        result = []
        for record in self.records(since_id, plane):
            body = b""
            if (record.get("request_body") or {}).get("stored"):
                body = self.stub.admin.request_body(int(record["id"]))
            result.append(RecordedRequest.from_record(record, body))
        return result


class SuiteClock:
    """The simulated time of the stub server and the target, moved together.

    The stub moves first, so a job the target starts after a jump meets a server that is
    already on the new day.
    """

    def __init__(self, stub: StubHandle, target: Target) -> None:
        self.stub = stub
        self.target = target

    def now_ms(self) -> int:
        return self.target.clock_ms()

    def set(self, epoch_ms: int, timezone: str | None = None) -> None:
        self.stub.admin.set_clock(now=epoch_ms / 1000)
        self.target.set_clock(epoch_ms, timezone)

    def advance(self, delta_ms: int) -> None:
        if delta_ms < 0:
            raise ValueError(f"the clock only moves forward; got {delta_ms} ms")
        self.stub.admin.advance_clock(delta_ms / 1000)
        self.target.advance_clock(delta_ms)

    def stub_now_ms(self) -> int:
        try:
            return int(self.stub.admin.now() * 1000)
        except (KeyError, ValueError) as error:
            raise StubServerError(f"stub clock reply not understood: {error}") from None


# Targets ---------------------------------------------------------------------------------


def build_target(settings: SuiteSettings, work_dir: Path) -> Target:
    """Create (but do not start) the target the options name."""
    if settings.target == "reference":
        from harness.targets.reference import ReferenceTarget

        return ReferenceTarget(work_dir, defects=settings.defects, policy=settings.policy)
    from harness.targets.android import AndroidTarget  # built by the Android target's owner

    return AndroidTarget(
        serial=settings.serial,
        adb_server=settings.adb_server,
        apk=settings.apk,
        profile=settings.profile,
        work_dir=work_dir,
        pcap=settings.pcap,
    )


def stub_endpoints(stub: StubHandle) -> StubEndpoints:
    params = base64.b64encode(stub.admin.zk_public_params()).decode("ascii")
    return StubEndpoints(url=stub.url, zk_public_params=params)


@contextlib.contextmanager
def open_target(settings: SuiteSettings, stub: StubHandle, work_dir: Path) -> Iterator[Target]:
    """Install and start the target, set its clock to the stub's and point it at the stub."""
    target = build_target(settings, work_dir)
    try:
        target.install()
        target.start()
        target.set_clock(int(stub.admin.now() * 1000), "UTC")
        target.point_at(stub_endpoints(stub))
        yield target
    finally:
        target.close()


def new_account(stub: StubHandle, tier: str) -> Account:
    """Register a fresh account at the stub; a paid tier gets backup level 201."""
    aci = str(uuid.uuid4())
    password = secrets.token_urlsafe(12)
    e164 = "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))
    stub.admin.register_account(aci, password, e164, backup_level=LEVEL_PAID if tier == "paid" else LEVEL_FREE)
    return Account(aci=aci, e164=e164, device_id=1, password=password)


# Per-test artifacts ------------------------------------------------------------------------

# Recording fields worth keeping in an artifact (bodies are referenced by hash only).
# How deep archive_summaries looks into fixture values (dicts, lists, plain objects).
MAX_SEARCH_DEPTH = 4
TRAFFIC_FIELDS = ("id", "time", "plane", "method", "path", "query", "headers", "status", "request_body", "faults", "outcome")


@dataclasses.dataclass(frozen=True)
class CaptureStart:
    record_id: int | None
    log_position: LogPosition | None


def start_capture(stub: StubHandle | None, target: Target | None, test_name: str) -> CaptureStart:
    """Mark where a test begins in the target's log.

    The stub is not asked: its recordings are fetched only for a failing test, and then from
    the start of the module (the stub is reset per module), so passing tests cost no request.
    """
    position = target.log_position() if target is not None else None
    return CaptureStart(None, position)


def capture_test_artifacts(
    folder: ArtifactFolder,
    stub: StubHandle | None,
    target: Target | None,
    start: CaptureStart,
    *,
    failed: bool = False,
    funcargs: dict[str, Any] | None = None,
) -> None:
    """Save what helps to understand a test; an infrastructure failure is logged only.

    Every device test keeps the app log lines written during its call. A failing test also
    gets the module's recorded traffic, the whole app log and every archive summary found
    among its fixture values. It also gets what ``Target.capture_artifacts`` writes (on a
    device: the screenshot, the window dump and the logcat), as ``target-<name>`` files.
    """
    funcargs = funcargs or {}
    try:
        if target is not None and start.log_position is not None:
            lines = target.read_log(None if failed else start.log_position)
            folder.save_text("app-log.txt", "".join(line.text + "\n" for line in lines))
        if not failed:
            return
        if stub is not None:
            records = stub.admin.recordings(limit=100_000)
            traffic = [{name: record.get(name) for name in TRAFFIC_FIELDS} for record in records]
            folder.save_json("traffic.json", traffic)
        for name, summary in archive_summaries(funcargs):
            folder.save_json(f"archive-summary-{name}.json", summary)
    except InfrastructureError as error:
        log.warning("could not save the artifacts of %s: %s", folder.path.name, error)
    if failed and target is not None:
        save_target_artifacts(folder, target)


def save_target_artifacts(folder: ArtifactFolder, target: Target) -> list[Path]:
    """Save what ``target.capture_artifacts`` writes into ``folder``, as ``target-<name>`` files.

    The target writes into a temporary folder first, so every file then passes through the
    folder's secret redaction, as the suite's own artifacts do. A capture that fails is
    logged only, because it must not hide the test's failure.
    """
    saved: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="harness-target-artifacts-") as temporary:
        root = Path(temporary)
        try:
            target.capture_artifacts(root)
        except (InfrastructureError, OSError) as error:
            log.warning("the %s target could not capture the artifacts of %s: %s", target.name,
                        folder.path.name, error)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                name = "target-" + "-".join(path.relative_to(root).parts)
                saved.append(folder.save_bytes(name, path.read_bytes()))
    return saved


def archive_summaries(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """Find decrypted-archive views (objects with ``to_json`` and ``findings``) among fixture values."""
    found = []

    def visit(name: str, value: Any, depth: int) -> None:
        if hasattr(value, "to_json") and hasattr(value, "findings") and hasattr(value, "items"):
            found.append((name, value.to_json()))
        elif depth >= MAX_SEARCH_DEPTH:
            return
        elif isinstance(value, dict):
            for key, inner in value.items():
                visit(f"{name}-{key}", inner, depth + 1)
        elif isinstance(value, (list, tuple)):
            for index, inner in enumerate(value):
                visit(f"{name}-{index}", inner, depth + 1)
        elif type(value).__module__ not in ("builtins",) and hasattr(value, "__dict__") and not isinstance(value, type):
            for key, inner in vars(value).items():
                visit(f"{name}-{key}", inner, depth + 1)

    for name, value in values.items():
        visit(name, value, 0)
    return found[:20]
