"""The preview seam: parsing the engine's JSON, the recorded runner, and the CLI runner against a fake CLI."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from popctl.previews import (
    CliPreviewRunner,
    PreviewError,
    RecordedPreviewRunner,
    ResourceChange,
    engine_failure_reason,
    parse_engine_document,
)
from tests.fleet.conftest import (
    APPLICATION,
    drift_document,
    in_sync_document,
    outputs_document,
    pending_document,
    urn,
    write_recorded,
)


def test_in_sync_document_has_no_changes():
    assert parse_engine_document(in_sync_document("s")).changes == ()


def test_refresh_steps_report_changed_outputs_and_deletions():
    changes = parse_engine_document(drift_document("s")).changes

    assert [(change.name, change.op, change.properties) for change in changes] == [
        ("pop3-app", "update", ("displayName",)),
        ("pop3-fullaccess-edi@x.de", "update", ("accessRights",)),
        ("pop3-secret-1", "delete", ()),
    ]


def test_refresh_step_with_equal_outputs_is_no_drift():
    state = {"outputs": {"displayName": "POP3"}}
    document = {
        "steps": [
            {"op": "refresh", "urn": urn("s", APPLICATION, "pop3-app"), "oldState": state, "newState": state}
        ]
    }

    assert parse_engine_document(document).changes == ()


def test_replace_reasons_are_used_when_there_is_no_detailed_diff():
    document = {
        "steps": [
            {"op": "replace", "urn": urn("s", APPLICATION, "pop3-app"), "replaceReasons": ["signInAudience"]}
        ]
    }

    (change,) = parse_engine_document(document).changes

    assert change.properties == ("signInAudience",)


def test_nested_paths_collapse_to_top_level_properties():
    (change,) = parse_engine_document(pending_document("s")).changes

    assert change.op == "replace"
    assert change.properties == ("endDate", "rotateWhenChanged")


def test_create_without_detail_is_reported():
    document = {"steps": [{"op": "create", "urn": urn("s", APPLICATION, "pop3-app")}]}

    assert parse_engine_document(document).changes == (
        ResourceChange(urn("s", APPLICATION, "pop3-app"), "create", ()),
    )


def test_root_stack_resource_is_ignored():
    document = {
        "steps": [{"op": "update", "urn": urn("s", "pulumi:pulumi:Stack", "pop3-oauth-s", parent=None)}]
    }

    assert parse_engine_document(document).changes == ()


def test_top_level_resource_type_and_name():
    change = ResourceChange(urn("s", "pulumi:providers:azuread", "pop3-azuread", parent=None), "update", ())

    assert change.type == "pulumi:providers:azuread"
    assert change.name == "pop3-azuread"


@pytest.mark.parametrize(
    "document",
    [[], {"steps": "nope"}, {"steps": [{"op": "update"}]}, {"steps": [42]}],
)
def test_malformed_documents_raise_preview_error(document):
    with pytest.raises(PreviewError):
        parse_engine_document(document)


def test_failure_reason_prefers_error_diagnostics():
    stdout = json.dumps(
        {
            "diagnostics": [
                {"severity": "info", "message": "ignored"},
                {"severity": "error", "message": "could not acquire token: AADSTS7000215\n"},
            ]
        }
    )

    assert engine_failure_reason(stdout, "noise\nlast line", 255) == "could not acquire token: AADSTS7000215"
    assert (
        engine_failure_reason("not json", "first\nerror: no stack named 'x'", 255)
        == "error: no stack named 'x'"
    )
    assert engine_failure_reason("", "", 7) == "pulumi exited with 7"
    assert len(engine_failure_reason("", "x" * 2000, 1)) == 500


def test_recorded_runner_reads_the_layout(tmp_path):
    write_recorded(
        tmp_path,
        "contoso",
        refresh=drift_document("contoso"),
        preview=in_sync_document("contoso"),
        outputs=outputs_document("contoso"),
    )
    (tmp_path / "stray-file.json").write_text("{}")
    runner = RecordedPreviewRunner(tmp_path)

    assert runner.stacks() == ["contoso"]
    assert len(runner.refresh_preview("contoso").changes) == 3
    assert runner.preview("contoso").changes == ()
    assert runner.outputs("contoso")["tenantId"] == "contoso-tenant-id"
    assert RecordedPreviewRunner(tmp_path / "missing").stacks() == []


def test_recorded_error_and_unreadable_files(tmp_path):
    write_recorded(tmp_path, "s", refresh={"error": "AADSTS700016: application not found"}, outputs=[1, 2])
    (tmp_path / "s" / "preview.json").write_text("{not json")
    runner = RecordedPreviewRunner(tmp_path)

    with pytest.raises(PreviewError, match=r"^AADSTS700016: application not found$"):
        runner.refresh_preview("s")
    with pytest.raises(PreviewError, match="recorded preview result for stack 's' is unreadable"):
        runner.preview("s")
    with pytest.raises(PreviewError, match="recorded outputs are not an object"):
        runner.outputs("s")


FAKE_PULUMI = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "cwd": os.getcwd()}}) + "\\n")
mode = os.environ.get("FAKE_PULUMI_MODE", "ok")
if mode == "sleep":
    time.sleep(30)
if mode == "fail":
    error = {{"severity": "error", "message": "no credentials: ARM_CLIENT_ID unset"}}
    print(json.dumps({{"diagnostics": [error]}}))
    sys.exit(255)
if mode == "garbage":
    print("Previewing update")
    sys.exit(0)
documents = json.loads(os.environ["FAKE_PULUMI_DOCUMENTS"])
print(json.dumps(documents["refreshed" if "--refresh" in args else args[0]]))
"""


@pytest.fixture
def fake_pulumi(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(FAKE_PULUMI.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    refreshed = drift_document("contoso")
    refreshed["steps"] = [*refreshed["steps"], *pending_document("contoso")["steps"]]
    documents = {
        "refreshed": refreshed,
        "preview": pending_document("contoso"),
        "stack": {"tenantId": "t", "clientSecret": "[secret]", "secrets": []},
    }
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.setenv("FAKE_PULUMI_DOCUMENTS", json.dumps(documents))
    project = tmp_path / "project"
    project.mkdir()
    return project, log


def logged_calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_cli_runner_runs_the_documented_commands(fake_pulumi):
    project, log = fake_pulumi
    runner = CliPreviewRunner(project, timeout=20)

    drift = runner.refresh_preview("contoso").changes
    assert len(drift) == 3 and "pop3-secret-2" not in [change.name for change in drift], "pending, not drift"
    assert [change.name for change in runner.preview("contoso").changes] == ["pop3-secret-2"]
    assert runner.outputs("contoso")["clientSecret"] == "[secret]"

    tail = ["--stack", "contoso", "--non-interactive", "--color", "never"]
    assert logged_calls(log) == [
        {"args": ["preview", "--refresh", "--json", *tail], "cwd": str(project)},
        {"args": ["preview", "--json", *tail], "cwd": str(project)},
        {"args": ["stack", "output", "--json", *tail], "cwd": str(project)},
    ]


def test_cli_runner_reports_engine_errors(fake_pulumi, monkeypatch):
    project, _ = fake_pulumi
    monkeypatch.setenv("FAKE_PULUMI_MODE", "fail")

    with pytest.raises(PreviewError, match=r"^'pulumi preview' failed: no credentials: ARM_CLIENT_ID unset$"):
        CliPreviewRunner(project, timeout=20).preview("contoso")


def test_cli_runner_rejects_output_that_is_not_json(fake_pulumi, monkeypatch):
    project, _ = fake_pulumi
    monkeypatch.setenv("FAKE_PULUMI_MODE", "garbage")

    with pytest.raises(PreviewError, match="printed no JSON"):
        CliPreviewRunner(project, timeout=20).refresh_preview("contoso")


def test_cli_runner_bounds_each_run(fake_pulumi, monkeypatch):
    project, _ = fake_pulumi
    monkeypatch.setenv("FAKE_PULUMI_MODE", "sleep")

    with pytest.raises(PreviewError, match=r"'pulumi preview' timed out after 0\.5 s"):
        CliPreviewRunner(project, timeout=0.5).refresh_preview("contoso")


def test_cli_runner_without_pulumi_on_path(tmp_path):
    runner = CliPreviewRunner(tmp_path, environ={"PATH": str(tmp_path)})

    with pytest.raises(PreviewError, match="the pulumi CLI is not on PATH"):
        runner.outputs("contoso")
