"""Unlinkability: archive-plane requests (zero-knowledge routes and the CDN) carry no account
credentials or identifiers, account-plane requests never reveal a backup id, no request mixes
the two kinds of auth, and credentials are fetched ahead of time.

The module backs up twice and runs the keep-alive refresh, so every archive route a daily
backup uses is in the recording, then checks each recorded request.
"""

from __future__ import annotations

import pytest

from device_support import backup_id_of, describe_findings, media_backup_id_of, read_archive, download_archive
from harness.traffic import (
    AccountIdentity,
    check_account_plane,
    check_archive_plane,
    check_credential_prefetch,
    check_fresh_presentations,
    check_mixed_auth,
)


@pytest.fixture(scope="module")
def run(recorder, stub, target, account, recovery_key, scenario_override, tmp_path_factory):
    """The requests of two backups; the backups' outcomes are checked by the first test."""
    from device_support import resolved_scenario

    target.load_scenario(resolved_scenario("daily-life", target.clock_ms(), scenario_override))
    results = [target.back_up_now(), target.back_up_now()]
    backup_ids = {"messages backup id": backup_id_of(recovery_key, account.aci)}
    if all(result.ok for result in results):
        path = download_archive(stub, recovery_key, account.aci, tmp_path_factory.mktemp("unlink") / "archive.bin")
        media_root_key = read_archive(target, path, recovery_key, account.aci).info.media_root_key
        backup_ids["media backup id"] = media_backup_id_of(media_root_key, account.aci)
    identity = AccountIdentity(account.aci, account.e164, account.device_id, account.password)
    return {"results": results, "requests": recorder.requests(), "identity": identity, "backup_ids": backup_ids}


def test_backups_complete(run):
    for number, result in enumerate(run["results"], start=1):
        assert result.ok, f"backup {number} failed: {result.error}"


def test_archive_plane_was_used(run):
    planes = {request.plane for request in run["requests"]}
    assert {"account", "archive", "cdn"} <= planes, f"recorded planes {sorted(planes)}: a plane is missing"


def test_archive_plane_has_no_account_credentials(run):
    findings = [f for f in check_archive_plane(run["requests"], run["identity"]) if f.rule == "unlinkability.account-auth"]
    assert not findings, describe_findings(findings)


def test_archive_plane_has_no_identifiers(run):
    findings = [f for f in check_archive_plane(run["requests"], run["identity"]) if f.rule == "unlinkability.identifier"]
    assert not findings, describe_findings(findings)


def test_no_request_mixes_auth(run):
    findings = check_mixed_auth(run["requests"])
    assert not findings, describe_findings(findings)


def test_presentations_never_reused(run):
    findings = check_fresh_presentations(run["requests"])
    assert not findings, describe_findings(findings)


def test_account_plane_hides_backup_id(run):
    findings = check_account_plane(run["requests"], run["backup_ids"])
    assert not findings, describe_findings(findings)


def test_credentials_fetched_ahead(run):
    fetches = [r for r in run["requests"] if (r.method, r.path) == ("GET", "/v1/archives/auth")]
    assert fetches, "no credential fetch (GET /v1/archives/auth) was recorded"
    findings = check_credential_prefetch(run["requests"])
    assert not findings, describe_findings(findings)


def test_upload_form_states_archive_size(run):
    """Each upload form request names the exact size of the archive uploaded next."""
    forms = [r for r in run["requests"] if (r.method, r.path) == ("GET", "/v1/archives/upload/form")]
    assert forms, "no upload form request was recorded"
    uploads = [r for r in run["requests"] if r.method == "PATCH" and r.path.endswith("/messageBackup")]
    for form in forms:
        values = form.query_values().get("uploadLength")
        assert values, f"{form.location()}: no uploadLength query parameter"
        following = next((upload for upload in uploads if upload.id > form.id), None)
        if following is not None and following.header("upload-length") is not None:
            assert int(values[0]) == int(following.header("upload-length")), (
                f"{form.location()}: uploadLength={values[0]}, but request #{following.id} uploaded "
                f"{following.header('upload-length')} bytes"
            )
