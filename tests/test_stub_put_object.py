"""The stub admin route that plants an object (used to restore crafted archives)."""

import pytest

from harness.errors import StubServerError
from harness.stub_process import StubProcess


@pytest.fixture(scope="module")
def stub():
    with StubProcess.start() as process:
        yield process


def test_put_object_round_trip(stub):
    stub.admin.put_object("backups/dirA/messageBackup", b"archive" * 1000)
    assert stub.admin.object_bytes("backups/dirA/messageBackup") == b"archive" * 1000


def test_put_object_replaces(stub):
    stub.admin.put_object("backups/dirB/messageBackup", b"old")
    stub.admin.put_object("backups/dirB/messageBackup", b"new")
    assert stub.admin.object_bytes("backups/dirB/messageBackup") == b"new"


def test_put_object_invalid_path_rejected(stub):
    with pytest.raises(StubServerError, match="400"):
        stub.admin.put_object("backups/bad.name/messageBackup", b"x")
