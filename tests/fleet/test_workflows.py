"""The scheduled GitHub Actions workflows: structure, OIDC, backend, secrecy, the stack list they derive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    on: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return on


def step_named(job: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(step for step in job["steps"] if str(step.get("name", "")).startswith(prefix))


@pytest.fixture(params=["drift.yml", "rotate.yml"])
def workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_scheduled_with_oidc_and_no_stored_credentials(workflow):
    assert triggers(workflow)["schedule"][0]["cron"]
    assert "workflow_dispatch" in triggers(workflow)
    assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
    env = workflow["env"]
    assert env["ARM_USE_OIDC"] == "true"
    assert env["AZURE_KEYVAULT_AUTH_VIA_CLI"] == "true"
    text = yaml.safe_dump(workflow)
    for forbidden in ("ARM_CLIENT_SECRET", "PULUMI_CONFIG_PASSPHRASE", "--show-secrets", "secrets."):
        assert forbidden not in text


def test_matrix_comes_from_the_stack_list_job(workflow):
    jobs = workflow["jobs"]
    matrix_job = next(job for name, job in jobs.items() if name != "stacks" and "strategy" in job)
    assert matrix_job["needs"] == "stacks"
    assert matrix_job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    assert matrix_job["strategy"]["fail-fast"] is False
    assert matrix_job["concurrency"] == {
        "group": "pulumi-stack-${{ matrix.stack }}",
        "cancel-in-progress": False,
    }
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert jobs["stacks"]["outputs"]["stacks"] == "${{ steps.list.outputs.stacks }}"


def test_backend_is_azure_blob_and_secrets_use_key_vault(workflow):
    job = next(job for name, job in workflow["jobs"].items() if "strategy" in job)
    login = step_named(job, "Log in to the state backend")["run"]
    assert "azblob://*)" in login
    assert 'pulumi login "$PULUMI_BACKEND_URL"' in login
    assert "azurekeyvault://" in step_named(job, "Stack secrets are encrypted")["run"]
    azure = next(step for step in job["steps"] if str(step.get("uses", "")).startswith("azure/login@"))
    assert set(azure["with"]) == {"client-id", "tenant-id", "allow-no-subscriptions"}


def run_stack_list(workflow: dict[str, Any], directory: Path, only: str = "") -> list[str]:
    script = workflow["jobs"]["stacks"]["steps"][1]["run"]
    body = script.split("<<'PY' >> \"$GITHUB_OUTPUT\"\n", 1)[1].rsplit("PY", 1)[0]
    completed = subprocess.run(
        [sys.executable, "-c", body],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
        env={"ONLY": only, "PATH": ""},
    )
    key, _, value = completed.stdout.strip().partition("=")
    assert key == "stacks"
    names: list[str] = json.loads(value)
    return names


def test_stack_list_excludes_the_example(workflow, tmp_path):
    (tmp_path / "stacks").mkdir()
    for name in ("Pulumi.example.yaml", "Pulumi.fabrikam.yaml", "Pulumi.contoso-de.yaml", "README.md"):
        (tmp_path / "stacks" / name).write_text("config: {}\n")

    assert run_stack_list(workflow, tmp_path) == ["contoso-de", "fabrikam"]


def test_rotation_can_be_limited_to_one_stack(tmp_path):
    (tmp_path / "stacks").mkdir()
    for name in ("Pulumi.fabrikam.yaml", "Pulumi.contoso.yaml"):
        (tmp_path / "stacks" / name).write_text("config: {}\n")

    assert run_stack_list(load("rotate.yml"), tmp_path, only="contoso") == ["contoso"]


def test_drift_job_fails_with_the_fleet_exit_code():
    job = load("drift.yml")["jobs"]["drift"]
    check = step_named(job, "Check")["run"]
    assert 'popctl fleet --stack "$STACK"' in check
    assert "--json --no-progress" in check
    assert 'exit "$code"' in check
    assert "$GITHUB_STEP_SUMMARY" in check


def test_rotation_never_prints_secret_values_and_summarises_new_key_ids(tmp_path):
    job = load("rotate.yml")["jobs"]["rotate"]
    up = step_named(job, "pulumi up")["run"]
    assert "--suppress-outputs" in up
    assert "--yes" in up
    before = step_named(job, "Secret key ids before")["run"]
    after = step_named(job, "Secret key ids after")["run"]
    assert "pulumi stack output secrets --json" in before
    assert "pulumi stack output secrets --json" in after

    compare = step_named(job, "Compare key ids")["run"]
    code = compare.split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    secret_value = "Zq8~must-never-appear"
    old = {"keyId": "old-key", "expiresAt": "2025-05-01T00:00:00Z", "managed": True}
    new = {"keyId": "new-key", "expiresAt": "2025-09-01T00:00:00Z", "managed": True}
    hand = {"keyId": "hand", "expiresAt": "2025-04-01T00:00:00Z", "managed": False}
    (tmp_path / "before.json").write_text(json.dumps([old, hand]))
    (tmp_path / "after.json").write_text(json.dumps([old, new, hand]))
    summary = tmp_path / "summary.md"
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        check=True,
        env={
            "STACK": "contoso",
            "GITHUB_STEP_SUMMARY": str(summary),
            "PATH": "",
            "UNUSED": secret_value,
            "PYTHONPATH": str(ROOT),  # the step runs in the checkout, where components/ is importable
        },
    )

    assert json.loads((tmp_path / "rotation.json").read_text()) == {
        "stack": "contoso",
        "new": [{"keyId": "new-key", "expiresAt": "2025-09-01T00:00:00Z"}],
        "retired": [],
    }
    assert summary.read_text() == (
        "- **contoso** got a new secret: `new-key` (expires 2025-09-01T00:00:00Z); hand it over with "
        "`python -m popctl handoff --stack contoso --show-secret`\n"
    )
    assert secret_value not in summary.read_text()


def test_rotation_summary_job_lists_tenants_for_handoff(tmp_path):
    workflow = load("rotate.yml")
    job = workflow["jobs"]["summary"]
    assert job["needs"] == "rotate"
    assert job["if"].startswith("always()")
    script = step_named(job, "Job summary")["run"]
    code = script.split("<<'PY' >> \"$GITHUB_STEP_SUMMARY\"\n", 1)[1].rsplit("PY", 1)[0]
    for stack, new in (("contoso", [{"keyId": "k1", "expiresAt": "x"}]), ("fabrikam", [])):
        folder = tmp_path / "rotations" / f"rotation-{stack}"
        folder.mkdir(parents=True)
        (folder / "rotation.json").write_text(json.dumps({"stack": stack, "new": new, "retired": []}))

    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )

    assert (
        "- **contoso**: `k1`; hand over with `python -m popctl handoff --stack contoso --show-secret` "
        "(on your machine)" in completed.stdout
    )
    assert "fabrikam" not in completed.stdout
    assert "2 stacks updated, 1 with a new secret." in completed.stdout
