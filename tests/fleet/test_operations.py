"""``popctl fleet`` as a service: secrets in use, ``--calendar`` (iCalendar) and ``--metrics`` (Prometheus).

Recorded tenants (the engine's documents plus Graph's credential sign-in report, ``signins.json``) are read
exactly as ``fleet --recorded`` reads them; the files are parsed back with the libraries that wrote them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from prometheus_client.parser import text_string_to_metric_families

from popctl import cli
from tests.fleet.conftest import (
    NOW,
    SECRET_VALUE,
    drift_document,
    in_sync_document,
    outputs_document,
    pending_document,
    write_recorded,
)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def outputs(stack: str, *expires_at: str, next_rotation: str = "2025-04-10T00:00:00Z") -> dict[str, Any]:
    document = outputs_document(stack, *expires_at)
    document["nextSecretRotationAt"] = next_rotation
    return document


def activity(*entries: tuple[str, str | None]) -> dict[str, object]:
    """The beta report's shape: one entry per credential (and resource)."""
    return {
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#reports/appCredentialSignInActivities",
        "value": [
            {
                "id": f"activity-{index}",
                "keyId": key_id,
                "keyType": "clientSecret",
                "keyUsage": "verify",
                "appId": "11111111-2222-3333-4444-555555555555",
                "credentialOrigin": "application",
                "signInActivity": {"lastSignInDateTime": last, "lastSignInRequestId": "r"} if last else None,
            }
            for index, (key_id, last) in enumerate(entries)
        ],
    }


@pytest.fixture
def fleet_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """rota: a rotation due that would revoke slot 2, used two days ago; calm: in sync, its secrets never
    used; nolic: a tenant whose report is refused; drifty: drifted, nothing recorded about sign-ins."""
    monkeypatch.setenv("POP3_OAUTH_NOW", NOW)
    root = tmp_path / "recorded"
    rota = outputs("rota", "2025-09-01T00:00:00Z", "2025-06-01T00:00:00Z", "2025-03-20T00:00:00Z")
    write_recorded(
        root, "rota", refresh=in_sync_document("rota"), preview=pending_document("rota"), outputs=rota
    )
    keys = [str(secret["keyId"]) for secret in rota["secrets"]]
    (root / "rota" / "signins.json").write_text(
        json.dumps(activity((keys[0], "2025-02-28T00:00:00Z"), (keys[2].upper(), "2025-02-27T00:00:00Z")))
    )
    write_recorded(
        root,
        "calm",
        refresh=in_sync_document("calm"),
        preview=in_sync_document("calm"),
        outputs=outputs("calm"),
    )
    (root / "calm" / "signins.json").write_text(json.dumps(activity()))
    write_recorded(
        root,
        "nolic",
        refresh=in_sync_document("nolic"),
        preview=in_sync_document("nolic"),
        outputs=outputs("nolic"),
    )
    (root / "nolic" / "signins.json").write_text(
        json.dumps({"error": "the operator's identity needs AuditLog.Read.All (and the tenant Entra ID P1)"})
    )
    write_recorded(
        root,
        "drifty",
        refresh=drift_document("drifty"),
        preview=in_sync_document("drifty"),
        outputs=outputs("drifty"),
    )
    return root


def test_a_rotation_that_revokes_a_secret_in_use_is_flagged(
    fleet_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["fleet", "--recorded", str(fleet_dir), "--json", "--no-progress"], capsys)

    rows = {row["stack"]: row for row in json.loads(out)}
    assert code == 1
    rota = rows["rota"]
    assert rota["status"] == "pending"
    assert rota["signInActivity"] == "read"
    slot_two = next(secret for secret in rota["secrets"] if secret["status"] == "retiring")
    assert rota["revokesInUse"] == [slot_two["keyId"]]
    assert slot_two["lastSignInAt"] == "2025-02-27T00:00:00Z"
    current = next(secret for secret in rota["secrets"] if secret["status"] == "current")
    assert current["lastSignInAt"] == "2025-02-28T00:00:00Z"
    assert rows["calm"]["revokesInUse"] == [] and rows["calm"]["signInActivity"] == "read"
    assert rows["nolic"]["status"] == "in-sync"
    assert rows["nolic"]["signInActivity"].startswith("the operator's identity needs AuditLog.Read.All")
    assert rows["drifty"]["signInActivity"] == "not recorded"
    assert err.count("AuditLog.Read.All") == 1
    assert "not shown for nolic:" in err


def test_a_secret_used_longer_ago_than_in_use_days_is_not_flagged(
    fleet_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fleet", "--recorded", str(fleet_dir), "--json", "--stack", "rota", "--in-use-days", "1"]
    _, out, _ = run_cli(argv, capsys)

    assert json.loads(out)[0]["revokesInUse"] == []


def test_the_table_tells_the_operator_to_switch_the_erp_first(
    fleet_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run_cli(["fleet", "--recorded", str(fleet_dir), "--stack", "rota", "--no-progress"], capsys)

    assert "switch the ERP" in out and "used 2025-02-27" in out


def test_no_sign_ins_reads_no_activity(fleet_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "fleet",
        "--recorded",
        str(fleet_dir),
        "--json",
        "--no-sign-ins",
        "--stack",
        "rota",
        "--stack",
        "nolic",
    ]
    _, out, err = run_cli(argv, capsys)

    rows = json.loads(out)
    assert {row["signInActivity"] for row in rows} == {"not asked"}
    assert all(row["revokesInUse"] == [] for row in rows)
    assert "AuditLog" not in err


def calendar_events(path: Path) -> dict[str, Any]:
    calendar = Calendar.from_ical(path.read_bytes())
    return {str(event["uid"]): event for event in calendar.walk("VEVENT")}


def test_calendar_has_a_rotation_per_tenant_and_an_event_per_secret(
    fleet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fleet.ics"
    run_cli(["fleet", "--recorded", str(fleet_dir), "--no-progress", "--calendar", str(path)], capsys)

    events = calendar_events(path)
    rotations = sorted(uid for uid in events if uid.startswith("rotation-"))
    assert rotations == [
        f"rotation-{stack}-tenant-id@pop3-oauth" for stack in ("calm", "drifty", "nolic", "rota")
    ]
    assert len(events) - len(rotations) == 3 + 1 + 1 + 1
    rotation = events["rotation-rota-tenant-id@pop3-oauth"]
    assert rotation.decoded("dtstart").isoformat() == "2025-04-10"
    assert "python -m popctl handoff --stack rota --show-secret" in str(rotation["description"])
    for secret in outputs_document("rota", "2025-09-01T00:00:00Z", "2025-06-01T00:00:00Z")["secrets"]:
        expiry = events[f"secret-{secret['keyId']}@pop3-oauth"]
        assert expiry.decoded("dtstart").isoformat() == secret["expiresAt"][:10]
        assert "popctl handoff --stack rota" in str(expiry["description"])
    assert SECRET_VALUE.encode() not in path.read_bytes()


def test_a_rerun_updates_the_events_under_the_same_uids(
    fleet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fleet.ics"
    argv = [
        "fleet",
        "--recorded",
        str(fleet_dir),
        "--no-progress",
        "--stack",
        "calm",
        "--calendar",
        str(path),
    ]
    run_cli(argv, capsys)
    first = calendar_events(path)
    write_recorded(fleet_dir, "calm", outputs=outputs("calm", next_rotation="2025-10-07T00:00:00Z"))
    monkeypatch.setenv("POP3_OAUTH_NOW", "2025-04-11T00:00:00Z")
    run_cli(argv, capsys)
    second = calendar_events(path)

    assert set(first) == set(second)
    rotation = second["rotation-calm-tenant-id@pop3-oauth"]
    assert rotation.decoded("dtstart").isoformat() == "2025-10-07"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fleet.ics")] == []


def samples(path: Path) -> dict[tuple[str, str], float]:
    text = path.read_text(encoding="utf-8")
    return {
        (sample.name, sample.labels["stack"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_one_sample_per_tenant_in_the_exposition_format(
    fleet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pop3oauth.prom"
    run_cli(["fleet", "--recorded", str(fleet_dir), "--no-progress", "--metrics", str(path)], capsys)

    values = samples(path)
    assert values[("pop3oauth_drift", "drifty")] == 1 and values[("pop3oauth_drift", "calm")] == 0
    assert values[("pop3oauth_pending_changes", "rota")] == 1
    assert values[("pop3oauth_pending_changes", "calm")] == 0
    assert values[("pop3oauth_check_error", "rota")] == 0
    assert values[("pop3oauth_revokes_secret_in_use", "rota")] == 1
    # rota's earliest secret the ERP may use is slot 1's (2025-06-01); slot 2 is retiring.
    assert values[("pop3oauth_secret_expiry_seconds", "rota")] == (92 * 86400 - 12 * 3600)
    assert values[("pop3oauth_check_timestamp_seconds", "calm")] == 1740830400.0
    assert SECRET_VALUE not in path.read_text(encoding="utf-8")
    assert "# TYPE pop3oauth_drift gauge" in path.read_text(encoding="utf-8")


def test_an_unchecked_tenant_reports_a_check_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POP3_OAUTH_NOW", NOW)
    root = tmp_path / "recorded"
    write_recorded(
        root,
        "broken",
        refresh={"error": "no credentials"},
        preview={"error": "no credentials"},
        outputs=outputs("broken"),
    )
    path = tmp_path / "fleet.prom"

    code, _, _ = run_cli(["fleet", "--recorded", str(root), "--no-progress", "--metrics", str(path)], capsys)

    assert code == 3
    assert samples(path)[("pop3oauth_check_error", "broken")] == 1


@pytest.mark.parametrize(
    ("option", "name", "message"),
    [
        ("--metrics", "fleet.txt", "--metrics must name a .prom file"),
        ("--calendar", "fleet.txt", "--calendar must name a .ics file"),
        ("--calendar", "missing/fleet.ics", "--calendar must name a .ics file in an existing directory"),
    ],
)
def test_bad_file_options_are_usage_errors(
    fleet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, name: str, message: str
) -> None:
    code, _, err = run_cli(["fleet", "--recorded", str(fleet_dir), option, str(tmp_path / name)], capsys)

    assert code == 2
    assert message in err
