"""Backup credentials through the libsignal bridge: issue, receive, present, verify, sign."""

from __future__ import annotations

import os

import pytest

from harness.keys import derive_backup_id, derive_backup_id_private_key, derive_backup_id_public_key
from libsignal_bridge import Bridge
from libsignal_bridge.zk import (
    LEVEL_FREE,
    LEVEL_PAID,
    TYPE_MEDIA,
    TYPE_MESSAGES,
    ZkClient,
    ZkInvalidInputError,
    ZkServer,
    ZkVerificationError,
    read_presentation,
)

pytestmark = pytest.mark.oracle

DAY = 86400
# A UTC midnight (2024-10-24) used as the redemption day throughout.
REDEMPTION_DAY = 20020 * DAY

# libsignal's account-keys test vector: backup key and ACI with their messages backup id.
VECTOR_BACKUP_KEY = bytes.fromhex("ea26a2ddb5dba5ef9e34e1b8dea1f5ae7f255306a6d2d883e542306eaa9fe985")
VECTOR_ACI = bytes.fromhex("659aa5f4a28dfcc11ea1b997537a3d95")
VECTOR_BACKUP_ID = bytes.fromhex("8a624fbc45379043f39f1391cddc5fe8")


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as running:
        yield running


@pytest.fixture(scope="module")
def server(bridge):
    return ZkServer(bridge, ZkServer.generate_secret_params(bridge))


@pytest.fixture(scope="module")
def client(bridge, server):
    return ZkClient(bridge, server.public_params())


def _credential(server, client, backup_key, aci, level=LEVEL_FREE, credential_type=TYPE_MESSAGES):
    context, request = client.create_request_context(backup_key, aci)
    response = server.issue(request, REDEMPTION_DAY, level, credential_type)
    return client.receive(context, response, REDEMPTION_DAY)


def test_full_flow_reveals_issued_values(server, client):
    backup_key, aci = os.urandom(32), os.urandom(16)
    credential = _credential(server, client, backup_key, aci, LEVEL_PAID, TYPE_MEDIA)

    verified = server.verify_presentation(client.present(credential), REDEMPTION_DAY + 3600)

    assert verified.backup_id == derive_backup_id(backup_key, aci)
    assert verified.level == LEVEL_PAID
    assert verified.credential_type == TYPE_MEDIA


def test_credential_info_matches_issue(server, client):
    backup_key, aci = os.urandom(32), os.urandom(16)
    credential = _credential(server, client, backup_key, aci, LEVEL_FREE, TYPE_MESSAGES)

    info = client.credential_info(credential)

    assert info.backup_id == derive_backup_id(backup_key, aci)
    assert info.level == LEVEL_FREE
    assert info.credential_type == TYPE_MESSAGES


def test_backup_id_matches_libsignal_vector(server, client):
    credential = _credential(server, client, VECTOR_BACKUP_KEY, VECTOR_ACI)

    assert client.credential_info(credential).backup_id == VECTOR_BACKUP_ID
    assert derive_backup_id(VECTOR_BACKUP_KEY, VECTOR_ACI) == VECTOR_BACKUP_ID


def test_backup_id_key_pair_matches_libsignal(client):
    backup_key, aci = os.urandom(32), os.urandom(16)
    private_key = derive_backup_id_private_key(backup_key, aci)

    assert client.public_key(private_key) == derive_backup_id_public_key(backup_key, aci)


def test_presentations_are_fresh(server, client):
    credential = _credential(server, client, os.urandom(32), os.urandom(16))

    assert client.present(credential) != client.present(credential)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-DAY - 1, False),
        (-DAY, True),
        (0, True),
        (2 * DAY, True),
        (2 * DAY + 1, False),
    ],
)
def test_redemption_window_edges(server, client, offset, accepted):
    credential = _credential(server, client, os.urandom(32), os.urandom(16))
    presentation = client.present(credential)
    now = REDEMPTION_DAY + offset

    if accepted:
        assert server.verify_presentation(presentation, now).level == LEVEL_FREE
    else:
        with pytest.raises(ZkVerificationError) as raised:
            server.verify_presentation(presentation, now)
        assert not isinstance(raised.value, ZkInvalidInputError)


def test_other_backup_id_revealed(server, client):
    aci = os.urandom(16)
    first_key, second_key = os.urandom(32), os.urandom(32)
    first = server.verify_presentation(client.present(_credential(server, client, first_key, aci)), REDEMPTION_DAY)
    second = server.verify_presentation(client.present(_credential(server, client, second_key, aci)), REDEMPTION_DAY)

    assert second.backup_id == derive_backup_id(second_key, aci)
    assert second.backup_id != first.backup_id


def test_other_server_rejects_presentation(bridge, server, client):
    other_server = ZkServer(bridge, ZkServer.generate_secret_params(bridge))
    presentation = client.present(_credential(server, client, os.urandom(32), os.urandom(16)))

    with pytest.raises(ZkVerificationError):
        other_server.verify_presentation(presentation, REDEMPTION_DAY)


def test_read_presentation_without_verifying(bridge, server, client):
    backup_key, aci = os.urandom(32), os.urandom(16)
    presentation = client.present(_credential(server, client, backup_key, aci, LEVEL_PAID, TYPE_MEDIA))

    info = read_presentation(bridge, presentation)

    assert info.backup_id == derive_backup_id(backup_key, aci)
    assert info.credential_type == TYPE_MEDIA


def test_signature_verifies(server, client):
    private_key = os.urandom(32)
    public_key = client.public_key(private_key)
    message = b"presentation bytes"

    signature = client.sign(private_key, message)

    assert len(public_key) == 33
    assert public_key[0] == 0x05
    assert len(signature) == 64
    assert server.verify_signature(public_key, message, signature) is True


def test_bad_signature_rejected(server, client):
    private_key = os.urandom(32)
    public_key = client.public_key(private_key)
    message = b"presentation bytes"
    signature = client.sign(private_key, message)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    other_public_key = client.public_key(os.urandom(32))

    assert server.verify_signature(public_key, message + b"!", signature) is False
    assert server.verify_signature(public_key, message, flipped) is False
    assert server.verify_signature(public_key, message, signature[:10]) is False
    assert server.verify_signature(other_public_key, message, signature) is False


def test_malformed_public_key_rejected(server):
    with pytest.raises(ZkInvalidInputError, match="public_key"):
        server.verify_signature(b"\x06" + bytes(32), b"message", bytes(64))
    with pytest.raises(ZkInvalidInputError, match="33 bytes"):
        server.verify_signature(bytes(32), b"message", bytes(64))


def test_receive_with_wrong_backup_key_fails(server, client):
    aci = os.urandom(16)
    _, request = client.create_request_context(os.urandom(32), aci)
    wrong_context, _ = client.create_request_context(os.urandom(32), aci)
    response = server.issue(request, REDEMPTION_DAY, LEVEL_FREE, TYPE_MESSAGES)

    with pytest.raises(ZkVerificationError):
        client.receive(wrong_context, response, REDEMPTION_DAY)


def test_receive_for_other_day_fails(server, client):
    context, request = client.create_request_context(os.urandom(32), os.urandom(16))
    response = server.issue(request, REDEMPTION_DAY, LEVEL_FREE, TYPE_MESSAGES)

    with pytest.raises(ZkVerificationError):
        client.receive(context, response, REDEMPTION_DAY + DAY)


def test_request_context_is_deterministic(client):
    backup_key, aci = os.urandom(32), os.urandom(16)

    first_context, _ = client.create_request_context(backup_key, aci)
    second_context, _ = client.create_request_context(backup_key, aci)

    assert first_context == second_context


def test_malformed_inputs_rejected(server, client):
    with pytest.raises(ZkInvalidInputError, match="presentation"):
        server.verify_presentation(b"not a presentation", REDEMPTION_DAY)
    with pytest.raises(ZkInvalidInputError, match="request"):
        server.check_request(b"not a request")
    with pytest.raises(ZkInvalidInputError, match="request"):
        server.issue(b"not a request", REDEMPTION_DAY, LEVEL_FREE, TYPE_MESSAGES)
    with pytest.raises(ZkInvalidInputError, match="backup_key"):
        client.create_request_context(bytes(31), bytes(16))
    with pytest.raises(ZkInvalidInputError, match="aci"):
        client.create_request_context(bytes(32), bytes(15))


def test_issue_rejects_unknown_level_and_type(server, client):
    _, request = client.create_request_context(os.urandom(32), os.urandom(16))

    server.check_request(request)
    with pytest.raises(ZkInvalidInputError, match="level"):
        server.issue(request, REDEMPTION_DAY, 202, TYPE_MESSAGES)
    with pytest.raises(ZkInvalidInputError, match="credential_type"):
        server.issue(request, REDEMPTION_DAY, LEVEL_FREE, 3)


def test_server_repr_hides_secret(bridge):
    secret = ZkServer.generate_secret_params(bridge)
    server = ZkServer(bridge, secret)

    assert "hidden" in repr(server)
    assert secret.hex()[:16] not in repr(server)
