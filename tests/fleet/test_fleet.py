"""The fleet report: states, exit codes, parallelism, isolation, output formats, secrecy."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from components.settings import program_clock
from popctl import cli, fleet, values
from popctl.commands import fleet as fleet_command
from popctl.consoles import Consoles
from popctl.errors import Exit
from popctl.previews import PreviewError
from tests.fleet.conftest import (
    NOW,
    SECRET_VALUE,
    ScriptedRunner,
    drift_document,
    outputs_document,
    pending_document,
    write_recorded,
)

FIXED_NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
WAIT = 10.0


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def by_stack(document: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(row["stack"]): row for row in document}


def test_recorded_fleet_reports_each_state(recorded_fleet, fixed_now, capsys):
    code, out, err = run_cli(["fleet", "--recorded", str(recorded_fleet), "--json", "--no-progress"], capsys)

    rows = by_stack(json.loads(out))
    assert code == int(Exit.UNCHECKED) == 3
    assert sorted(rows) == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert {stack: row["status"] for stack, row in rows.items()} == {
        "alpha": "in-sync",
        "bravo": "drift",
        "charlie": "pending",
        "delta": "error",
        "echo": "expiring",
    }
    assert rows["bravo"]["drift"] == [
        {
            "resource": "pop3-app",
            "type": "azuread:index/application:Application",
            "urn": "urn:pulumi:bravo::pop3-oauth::pop3-oauth:tenant:Pop3Tenant"
            "$azuread:index/application:Application::pop3-app",
            "op": "update",
            "properties": ["displayName"],
        },
        {
            "resource": "pop3-fullaccess-edi@x.de",
            "type": "pulumi-python:dynamic/exchange:MailboxPermission",
            "urn": "urn:pulumi:bravo::pop3-oauth::pop3-oauth:tenant:Pop3Tenant"
            "$pulumi-python:dynamic/exchange:MailboxPermission::pop3-fullaccess-edi@x.de",
            "op": "update",
            "properties": ["accessRights"],
        },
        {
            "resource": "pop3-secret-1",
            "type": "azuread:index/applicationPassword:ApplicationPassword",
            "urn": "urn:pulumi:bravo::pop3-oauth::pop3-oauth:tenant:Pop3Tenant"
            "$azuread:index/applicationPassword:ApplicationPassword::pop3-secret-1",
            "op": "delete",
            "properties": [],
        },
    ]
    assert rows["charlie"]["pending"] == [
        {
            "resource": "pop3-secret-2",
            "type": "azuread:index/applicationPassword:ApplicationPassword",
            "urn": "urn:pulumi:charlie::pop3-oauth::pop3-oauth:tenant:Pop3Tenant"
            "$azuread:index/applicationPassword:ApplicationPassword::pop3-secret-2",
            "op": "replace",
            "properties": ["endDate", "rotateWhenChanged"],
        }
    ]
    assert rows["delta"]["errors"] == [
        "refresh: ARM_CLIENT_ID is not set: no credentials for tenant",
        "preview: ARM_CLIENT_ID is not set: no credentials for tenant",
    ]
    assert rows["delta"]["tenantId"] == "delta-tenant-id"
    echo_secrets = rows["echo"]["secrets"]
    assert echo_secrets == [
        {
            "keyId": "99999999-hand-made-0000-000000000000",
            "displayName": "POP3 secret (portal)",
            "managed": False,
            "status": "adopted",
            "expiresAt": "2025-03-15T00:00:00Z",
            "expiresInDays": 13,
            "expiring": True,
            "lastSignInAt": None,
        },
        {
            "keyId": "00000000-aaaa-bbbb-cccc-00000000echo",
            "displayName": "pop3-secret-0",
            "managed": True,
            "status": "current",
            "expiresAt": "2025-09-01T00:00:00Z",
            "expiresInDays": 183,
            "expiring": False,
            "lastSignInAt": None,
        },
    ]
    assert rows["echo"]["expiring"] is True
    assert rows["alpha"]["expiring"] is False
    assert err == ""


def test_json_shape_is_one_object_per_tenant(recorded_fleet, fixed_now, capsys):
    _, out, _ = run_cli(["fleet", "--recorded", str(recorded_fleet), "--json", "--stack", "alpha"], capsys)

    document = json.loads(out)
    assert isinstance(document, list)
    assert len(document) == 1
    assert set(document[0]) == {
        "stack",
        "status",
        "tenantId",
        "drift",
        "pending",
        "secrets",
        "expiring",
        "errors",
        "durationSeconds",
        "nextSecretRotationAt",
        "signInActivity",
        "revokesInUse",
    }


@pytest.mark.parametrize(
    ("stacks", "expected"),
    [
        (["alpha"], 0),
        (["alpha", "bravo"], 1),
        (["charlie"], 1),
        (["echo"], 1),
        (["alpha", "bravo", "delta"], 3),
        (["delta"], 3),
    ],
)
def test_exit_codes_and_error_precedence(recorded_fleet, fixed_now, capsys, stacks, expected):
    argv = ["fleet", "--recorded", str(recorded_fleet), "--json"]
    for stack in stacks:
        argv += ["--stack", stack]

    code, _, _ = run_cli(argv, capsys)

    assert code == expected


def test_expiry_window_follows_the_option(recorded_fleet, fixed_now, capsys):
    argv = ["fleet", "--recorded", str(recorded_fleet), "--json", "--stack", "echo"]

    assert run_cli([*argv, "--expiry-days", "14"], capsys)[0] == 1
    assert run_cli([*argv, "--expiry-days", "13"], capsys)[0] == 0


def test_missing_recording_is_an_error_row_not_a_crash(tmp_path, fixed_now, capsys):
    write_recorded(tmp_path, "lonely", refresh={"steps": []})

    code, out, _ = run_cli(["fleet", "--recorded", str(tmp_path), "--json"], capsys)

    (row,) = json.loads(out)
    assert code == 3
    assert row["errors"] == [
        "outputs: no recorded outputs result (outputs.json) for stack 'lonely'",
        "preview: no recorded preview result (preview.json) for stack 'lonely'",
    ]


def test_stack_without_secrets_output_is_an_error(fixed_now):
    runner = ScriptedRunner(outputs={"new": {"tenantId": "t"}})

    (report,) = fleet.run_fleet(["new"], runner, now=FIXED_NOW)

    assert report.status == "error"
    assert report.errors == ("outputs: the stack has no 'secrets' output (not deployed yet?)",)


def test_table_lists_every_tenant_and_never_a_secret(recorded_fleet, fixed_now, capsys):
    code, out, err = run_cli(["fleet", "--recorded", str(recorded_fleet), "--no-progress"], capsys)

    assert code == 3
    for stack, status in [
        ("alpha", "in-sync"),
        ("bravo", "drift"),
        ("charlie", "pending"),
        ("delta", "error"),
    ]:
        assert stack in out
        assert status in out
    assert "update pop3-app: displayName" in out
    assert "replace pop3-secret-2: endDate," in out
    assert "99999999 13d! (hand-made)" in out
    assert "5 tenants: 1 in-sync, 1 drift, 1 pending, 1 expiring, 1 error" in out
    assert "example" not in out
    assert SECRET_VALUE not in out + err


def test_json_never_contains_a_secret(recorded_fleet, fixed_now, capsys):
    _, out, err = run_cli(["fleet", "--recorded", str(recorded_fleet), "--json"], capsys)

    assert SECRET_VALUE not in out + err
    assert "clientSecret" not in out


def test_progress_goes_to_stderr_not_into_json(recorded_fleet):
    stdout, stderr = io.StringIO(), io.StringIO()
    context = cli.Context(consoles=Consoles(out=stdout, err=stderr))

    cli.main(["fleet", "--recorded", str(recorded_fleet), "--json"], context=context)

    assert len(json.loads(stdout.getvalue())) == 5


def test_render_table_marks_states():
    reports = fleet.run_fleet(
        ["ok", "drifted"],
        ScriptedRunner(refresh={"drifted": drift_document("drifted")}),
        now=FIXED_NOW,
    )
    buffer = io.StringIO()

    fleet_command.render_table(reports, Console(file=buffer, width=200), 30)

    text = buffer.getvalue()
    assert "ok" in text
    assert "in-sync" in text
    assert "delete pop3-secret-1" in text
    assert "2 tenants: 1 in-sync, 1 drift" in text


def test_workers_run_concurrently():
    workers = 4
    barrier = threading.Barrier(workers, timeout=WAIT)
    runner = ScriptedRunner(before=lambda stack: barrier.wait() if stack.startswith("b") else None)
    stacks = [f"b{index}" for index in range(workers)]

    reports = fleet.run_fleet(stacks, runner, workers=workers, now=FIXED_NOW, tenant_timeout=WAIT * 3)

    assert [report.status for report in reports] == ["in-sync"] * workers


def test_concurrency_never_exceeds_workers():
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow(stack: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.005)
        with lock:
            running -= 1

    stacks = [f"t{index}" for index in range(24)]
    reports = fleet.run_fleet(stacks, ScriptedRunner(before=slow), workers=3, now=FIXED_NOW)

    assert [report.stack for report in reports] == stacks
    assert 1 <= peak <= 3


def test_raising_runner_is_isolated_to_its_tenant():
    runner = ScriptedRunner(
        outputs={"broken": RuntimeError("runner bug")},
        preview={"other": PreviewError("stack 'other' not found")},
    )

    reports = fleet.run_fleet(["good", "broken", "other"], runner, workers=2, now=FIXED_NOW)

    assert [report.status for report in reports] == ["in-sync", "error", "error"]
    assert reports[1].errors == ("unexpected RuntimeError: runner bug",)
    assert reports[2].errors == ("preview: stack 'other' not found",)
    assert fleet.exit_status(reports) == 3


def test_hanging_tenant_times_out_without_hiding_the_others():
    release = threading.Event()
    runner = ScriptedRunner(before=lambda stack: release.wait(WAIT) if stack == "stuck" else None)
    started = time.monotonic()
    try:
        reports = fleet.run_fleet(
            ["first", "stuck", "last"], runner, workers=2, now=FIXED_NOW, tenant_timeout=0.2
        )
    finally:
        release.set()

    assert time.monotonic() - started < WAIT / 2
    assert [report.status for report in reports] == ["in-sync", "error", "in-sync"]
    assert reports[1].errors == ("timed out after 0.2 s",)


def test_every_stack_is_checked_once_even_when_many_fail():
    stacks = [f"s{index}" for index in range(20)]
    failures = {stack: PreviewError("boom") for stack in stacks[::2]}
    runner = ScriptedRunner(refresh=failures)

    reports = fleet.run_fleet(stacks, runner, workers=5, now=FIXED_NOW)

    assert [report.stack for report in reports] == stacks
    assert sorted(stack for kind, stack in runner.calls if kind == "refresh") == sorted(stacks)
    assert [report.status for report in reports] == ["error", "in-sync"] * 10


def test_observer_sees_every_tenant_start_and_finish():
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    class Recorder:
        def started(self, stack: str) -> None:
            with lock:
                seen.append(("start", stack))

        def finished(self, report: fleet.TenantReport) -> None:
            with lock:
                seen.append(("finish", report.stack))

    fleet.run_fleet(["a", "b", "c"], ScriptedRunner(), workers=2, now=FIXED_NOW, observer=Recorder())

    assert sorted(seen) == sorted([(kind, s) for s in "abc" for kind in ("start", "finish")])


def test_pending_and_drift_together_report_drift_first():
    runner = ScriptedRunner(
        refresh={"both": drift_document("both")},
        preview={"both": pending_document("both")},
    )

    (report,) = fleet.run_fleet(["both"], runner, now=FIXED_NOW)

    assert report.status == "drift"
    assert [change.name for change in report.pending] == ["pop3-secret-2"]


def test_discover_stacks_skips_example_and_other_files(tmp_path):
    for name in ("Pulumi.example.yaml", "Pulumi.contoso.yaml", "Pulumi.fabrikam-de.yaml", "notes.txt"):
        (tmp_path / name).write_text("config: {}\n")

    assert fleet.discover_stacks(tmp_path) == ["contoso", "fabrikam-de"]
    assert fleet.discover_stacks(tmp_path / "missing") == []


def test_cli_runner_is_used_without_recorded(tmp_path, monkeypatch, capsys):
    (tmp_path / "Pulumi.yaml").write_text("name: pop3-oauth\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.example.yaml").write_text("config: {}\n")
    (tmp_path / "stacks" / "Pulumi.contoso.yaml").write_text("config: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    monkeypatch.setenv("POP3_OAUTH_NOW", NOW)

    code, out, _ = run_cli(["fleet", "--json"], capsys)

    (row,) = json.loads(out)
    assert code == 3
    assert row["stack"] == "contoso"
    assert row["errors"][0] == "outputs: the pulumi CLI is not on PATH"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--stack", "../etc"], "is not a stack name"),
        (["--timeout", "0"], "--timeout must be a positive number"),
        (["--stack", "nowhere"], "no stacks/Pulumi.<stack>.yaml"),
    ],
)
def test_usage_errors_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    (tmp_path / "Pulumi.yaml").write_text("name: pop3-oauth\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.contoso.yaml").write_text("config: {}\n")
    monkeypatch.chdir(tmp_path)

    code, _, err = run_cli(["fleet", *argv], capsys)

    assert code == 2
    assert message in err


def test_empty_fleet_is_a_usage_error(tmp_path, capsys):
    code, _, err = run_cli(["fleet", "--project-dir", str(tmp_path)], capsys)

    assert code == 2
    assert "no stacks to check" in err


def test_malformed_now_override_is_a_usage_error(recorded_fleet, monkeypatch, capsys):
    monkeypatch.setenv("POP3_OAUTH_NOW", "yesterday")

    code, _, err = run_cli(["fleet", "--recorded", str(recorded_fleet)], capsys)

    assert code == 2
    assert "POP3_OAUTH_NOW must be an RFC 3339 time" in err


def test_now_override_needs_an_offset():
    with pytest.raises(ValueError, match="RFC 3339 time with offset"):
        program_clock({"POP3_OAUTH_NOW": "2025-03-01T12:00:00"})
    assert program_clock({"POP3_OAUTH_NOW": "2025-03-01T13:00:00+01:00"}) == FIXED_NOW


def test_malformed_secret_entry_names_the_output():
    with pytest.raises(ValueError, match=r"outputs\.secrets\[0\]\.expiresAt is not an RFC 3339 time"):
        fleet.secret_expiries({"secrets": [{"keyId": "k", "expiresAt": "soon"}]}, FIXED_NOW, 30)


@given(
    offset=st.integers(min_value=-10 * 86400, max_value=400 * 86400),
    window=st.integers(min_value=0, max_value=365),
)
def test_expiry_days_round_down_and_window_is_inclusive(offset, window):
    expires = FIXED_NOW + timedelta(seconds=offset)
    outputs = {"secrets": [{"keyId": "k", "expiresAt": expires.isoformat(), "managed": True}]}

    (secret,) = fleet.secret_expiries(outputs, FIXED_NOW, window)

    assert secret.expires_in_days == offset // 86400
    assert secret.expiring == (offset <= window * 86400)


def test_secret_expiries_are_sorted_and_hand_made_flagged():
    outputs = outputs_document(
        "x", "2025-06-01T00:00:00Z", "2025-04-01T00:00:00Z", hand_made="2025-05-01T00:00:00Z"
    )

    secrets = fleet.secret_expiries(outputs, FIXED_NOW, 30)

    assert [secret.expires_at.month for secret in secrets] == [4, 5, 6]
    assert [secret.managed for secret in secrets] == [True, False, True]


def test_a_retiring_slot_close_to_expiry_is_listed_but_not_a_warning():
    soon = (FIXED_NOW + timedelta(days=3)).isoformat()
    later = (FIXED_NOW + timedelta(days=200)).isoformat()
    outputs = outputs_document("x", later, later, soon)

    secrets = fleet.secret_expiries(outputs, FIXED_NOW, 30)

    assert [(s.status, s.expires_in_days, s.expiring) for s in secrets] == [
        ("retiring", 3, False),
        ("current", 200, False),
        ("previous", 200, False),
    ]
    current_soon = outputs_document("x", soon, later, later)
    assert [s.expiring for s in fleet.secret_expiries(current_soon, FIXED_NOW, 30)] == [True, False, False]


def test_find_project_dir_walks_up(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: pop3-oauth\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)

    assert values.find_project_dir(nested) == tmp_path
    assert values.find_project_dir(Path("/")) == Path("/")
