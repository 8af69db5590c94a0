"""The shared state of one stub server: config, clock, records, objects, keys, faults."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from server_stub.cdn_tokens import CdnTokens
from server_stub.clock import Clock
from server_stub.config import StubConfig
from server_stub.errors import StubError
from server_stub.faults import FaultRegistry
from server_stub.objects import ObjectStore
from server_stub.recorder import RecordingStore
from server_stub.storage import Database
from server_stub.uploads import UploadManager
from server_stub.zk_service import ZkService, load_cdn_secret

log = logging.getLogger(__name__)

CLOCK_SETTING = "clock"


@dataclass
class StubState:
    config: StubConfig
    clock: Clock
    db: Database
    objects: ObjectStore
    uploads: UploadManager
    tokens: CdnTokens
    zk: ZkService
    faults: FaultRegistry
    recordings: RecordingStore
    app_url: str = ""
    admin_url: str = ""
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def open(cls, config: StubConfig) -> StubState:
        data_dir = Path(config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(data_dir / "stub.sqlite")
        clock = Clock()
        saved_clock = db.get_setting(CLOCK_SETTING)
        if saved_clock:
            clock.restore(saved_clock)
        objects = ObjectStore(data_dir)
        objects.clear_temp()
        tokens = CdnTokens(load_cdn_secret(data_dir), clock, config.cdn_token_max_age_seconds)
        return cls(
            config=config,
            clock=clock,
            db=db,
            objects=objects,
            uploads=UploadManager(data_dir, db, objects, clock, config.tus_upload_expiry_seconds),
            tokens=tokens,
            zk=ZkService(data_dir),
            faults=FaultRegistry(),
            recordings=RecordingStore(data_dir, config.store_response_bodies_up_to),
        )

    def save_clock(self) -> None:
        self.db.set_setting(CLOCK_SETTING, self.clock.state())

    def take_permit(self, name: str, subject: str, cost: float = 1.0) -> None:
        """Take a rate-limit permit or raise 429 with Retry-After."""
        limit = self.config.rate_limits[name]
        wait = self.db.take_permits(name, subject, cost, limit.bucket_size, limit.regen_seconds, self.clock.now())
        if wait > 0:
            retry_after = max(1, int(wait + 0.999))
            raise StubError(429, f"rate limit {name} exceeded", {"Retry-After": str(retry_after)})

    def close(self) -> None:
        self.zk.close()
        self.recordings.close()
        self.db.close()
