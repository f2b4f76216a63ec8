"""Scenario h: secret rotation under the real engine, the program's clock moved with ``POP3_OAUTH_NOW``.

The rotation issue (#9) redesigns the schedule's memory; these scenarios are the harness it proves itself
on. What the current design gets wrong under the real engine is recorded as strict xfails, so the day it
is fixed the suite says so.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import requests
import yaml

from components.settings import to_rfc3339
from tests.e2e.harness import ROOT, SECRET_MASK, Project, leaked

PASSWORD_TYPE = "azuread:index/applicationPassword:ApplicationPassword"


def _moment(text: str, delta: timedelta = timedelta()) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")) + delta
    return to_rfc3339(moment)


def _password_steps(document: dict[str, object]) -> dict[str, str]:
    steps = document.get("steps") or []
    assert isinstance(steps, list)
    return {
        step["urn"].rsplit("::", 1)[-1]: step["op"]
        for step in steps
        if f"${PASSWORD_TYPE}::" in step["urn"] or step["urn"].endswith(f"::{PASSWORD_TYPE}")
    }


def _signs_in(project: Project, secret: str) -> bool:
    response = requests.post(
        f"{project.microsoft.entra_url}/{project.tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": project.outputs()["clientId"],
            "client_secret": secret,
            "scope": "https://outlook.office365.com/.default",
        },
        verify=str(project.microsoft.certificates.ca_bundle),
        timeout=30,
    )
    return response.status_code == 200


@pytest.fixture
def rotating(project: Project) -> Project:
    project.init_stack("rotation", settings={"secretRotationDays": 30})
    project.up(env={"POP3_OAUTH_NOW": "2026-12-01T08:00:00Z"})
    return project


def test_a_due_rotation_replaces_exactly_one_secret_and_keeps_the_previous_valid(rotating: Project) -> None:
    first = rotating.outputs(show_secrets=True)
    due = _moment(first["nextSecretRotationAt"], timedelta(hours=1))
    before = _moment(first["nextSecretRotationAt"], -timedelta(hours=1))

    # `preview --json` lists only the steps that do something.
    quiet = rotating.preview("--json", env={"POP3_OAUTH_NOW": before}).json()
    assert set(_password_steps(quiet).values()) <= {"same"}, quiet

    planned = rotating.preview("--json", env={"POP3_OAUTH_NOW": due}).json()
    replaced = [name for name, op in _password_steps(planned).items() if op == "replace"]
    assert len(replaced) == 1, planned

    rotating.up(env={"POP3_OAUTH_NOW": due})
    second = rotating.outputs(show_secrets=True)
    assert second["clientSecret"] != first["clientSecret"]
    assert _signs_in(rotating, second["clientSecret"])
    assert _signs_in(rotating, first["clientSecret"]), "the secret the ERP still uses was revoked"
    key_ids = {secret["keyId"] for secret in first["secrets"]} & {s["keyId"] for s in second["secrets"]}
    assert len(key_ids) == 2


def test_schedule_outputs_and_password_inputs_stay_plain_from_the_second_update_on(rotating: Project) -> None:
    rotating.up(env={"POP3_OAUTH_NOW": "2026-12-02T08:00:00Z"})
    outputs = rotating.outputs()
    for name in ("secrets", "clientSecretExpiresAt", "nextSecretRotationAt", "secretSchedule"):
        assert outputs[name] != SECRET_MASK, name
    assert outputs["clientSecret"] == SECRET_MASK
    passwords = [r for r in rotating.state_resources() if r["type"] == PASSWORD_TYPE]
    assert len(passwords) == 3
    for password in passwords:
        secret_inputs = [name for name, value in password["inputs"].items() if _is_secret(value)]
        assert secret_inputs == [], password["urn"]
        assert [name for name, value in password["outputs"].items() if _is_secret(value)] == ["value"]


def _is_secret(value: object) -> bool:
    return isinstance(value, dict) and "4dabf18193072939515e22adb298388d" in value


def _key_ids(project: Project) -> list[str]:
    [app] = project.microsoft.graph.find_applications(project.tenant.tenant_id, "POP3APP")
    return sorted(credential["keyId"] for credential in app.password_credentials)


def test_a_clock_behind_the_last_run_changes_nothing_and_says_so(rotating: Project) -> None:
    due = _moment(rotating.outputs()["nextSecretRotationAt"], timedelta(hours=1))
    rotating.up(env={"POP3_OAUTH_NOW": due})
    key_ids = _key_ids(rotating)
    behind = rotating.up(env={"POP3_OAUTH_NOW": "2026-12-01T08:00:00Z"})
    assert "behind the schedule's last recorded run" in behind.output
    assert _key_ids(rotating) == key_ids
    rotating.preview("--expect-no-changes", env={"POP3_OAUTH_NOW": "2026-12-01T08:00:00Z"})


@pytest.mark.parametrize(("before", "after"), [(30, 180), (180, 30)])
def test_a_period_change_keeps_every_secret_until_the_planned_date(
    project: Project, before: int, after: int
) -> None:
    project.init_stack("period", settings={"secretRotationDays": before})
    project.up(env={"POP3_OAUTH_NOW": "2026-12-01T08:00:00Z"})
    planned = project.outputs()["nextSecretRotationAt"]
    key_ids = _key_ids(project)

    project.configure({"secretRotationDays": after})
    project.up(env={"POP3_OAUTH_NOW": max("2026-12-01T08:00:00Z", _moment(planned, -timedelta(minutes=30)))})
    assert _key_ids(project) == key_ids, "a change of the period replaced a secret"
    outputs = project.outputs()
    assert outputs["nextSecretRotationAt"] == planned
    assert outputs["secretSchedule"]["periodDays"] == after

    due = _moment(planned, timedelta(hours=1))
    planned_run = project.preview("--json", env={"POP3_OAUTH_NOW": due}).json()
    assert [op for op in _password_steps(planned_run).values() if op != "same"] == ["replace"]
    project.up(env={"POP3_OAUTH_NOW": due})
    assert len(set(_key_ids(project)) & set(key_ids)) == 2
    renewed = project.outputs()
    assert renewed["nextSecretRotationAt"] == _moment(planned, timedelta(days=after))


def test_force_rotation_revokes_every_secret_and_cannot_be_lowered(rotating: Project) -> None:
    old = rotating.outputs(show_secrets=True)
    old_names = {secret["displayName"] for secret in old["secrets"]}
    old_values = list(rotating.microsoft.graph.issued_secrets)
    rotating.configure({"forceRotation": 1})
    rotating.up(env={"POP3_OAUTH_NOW": "2026-12-03T08:00:00Z"})
    new = rotating.outputs(show_secrets=True)
    assert not set(_key_ids(rotating)) & {secret["keyId"] for secret in old["secrets"]}
    assert not {secret["displayName"] for secret in new["secrets"]} & old_names
    assert len({secret["displayName"] for secret in new["secrets"]}) == 3
    assert not any(_signs_in(rotating, value) for value in old_values), "a leaked secret still works"
    assert _signs_in(rotating, new["clientSecret"])

    writes = len(rotating.microsoft.graph.writes) + len(rotating.microsoft.exchange.writes)
    rotating.configure({"forceRotation": 0})
    lowered = rotating.up(env={"POP3_OAUTH_NOW": "2026-12-04T08:00:00Z"}, check=False)
    assert lowered.code != 0
    assert "pop3-oauth:forceRotation was lowered from 1 to 0" in lowered.output
    assert len(rotating.microsoft.graph.writes) + len(rotating.microsoft.exchange.writes) == writes


def test_a_lost_schedule_record_is_rebuilt_without_renewing_a_secret(rotating: Project) -> None:
    key_ids = _key_ids(rotating)
    before = rotating.outputs()
    # Lose the record as a hand-edited or damaged state would: gone, and no longer a dependency.
    document = json.loads(rotating.export())
    resources = document["deployment"]["resources"]
    [lost] = [r for r in resources if r["urn"].endswith("::pop3-secret-slot-1")]
    for resource in resources:
        resource["dependencies"] = [d for d in resource.get("dependencies") or [] if d != lost["urn"]]
        resource["propertyDependencies"] = {
            name: [d for d in urns if d != lost["urn"]]
            for name, urns in (resource.get("propertyDependencies") or {}).items()
        }
    document["deployment"]["resources"] = [r for r in resources if r is not lost]
    state_file = rotating.root / "damaged.json"
    state_file.write_text(json.dumps(document))
    rotating.pulumi("stack", "import", "--file", str(state_file), "--stack", rotating.stack)
    inside_the_period = _moment(before["nextSecretRotationAt"], -timedelta(minutes=30))
    rotating.up(env={"POP3_OAUTH_NOW": inside_the_period})
    assert _key_ids(rotating) == key_ids
    after = rotating.outputs()
    assert after["nextSecretRotationAt"] == before["nextSecretRotationAt"]
    assert after["secretSchedule"] == before["secretSchedule"]


def _rotate_workflow_step(name: str) -> str:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "rotate.yml").read_text())
    step = next(s for s in workflow["jobs"]["rotate"]["steps"] if str(s.get("name", "")).startswith(name))
    return str(step["run"])


def test_the_rotate_workflow_and_the_fleet_report_see_a_due_rotation(rotating: Project) -> None:
    due = {"POP3_OAUTH_NOW": _moment(rotating.outputs()["nextSecretRotationAt"], timedelta(hours=1))}
    report = rotating.popctl("fleet", "--json", "--no-progress", env=due, check=False)
    [tenant] = report.json()
    assert tenant["status"] == "pending", report.describe()
    replaced = [c for c in tenant["pending"] if c["type"] == PASSWORD_TYPE]
    assert [c["op"] for c in replaced] == ["replace"], tenant["pending"]

    # The workflow's own steps, on the real CLI's plain outputs: before, pulumi up, after, compare.
    workdir = rotating.directory
    (workdir / "before.json").write_text(
        rotating.pulumi("stack", "output", "secrets", "--json", "--stack", rotating.stack).stdout
    )
    rotating.up(env=due)
    (workdir / "after.json").write_text(
        rotating.pulumi("stack", "output", "secrets", "--json", "--stack", rotating.stack).stdout
    )
    summary = rotating.root / "summary.md"
    compare = _rotate_workflow_step("Compare key ids")
    rotating.run(["bash", "-c", compare], env={"STACK": rotating.stack, "GITHUB_STEP_SUMMARY": str(summary)})
    record = json.loads((workdir / "rotation.json").read_text())
    assert len(record["new"]) == 1 and len(record["retired"]) == 1
    assert f"python -m popctl handoff --stack {rotating.stack} --show-secret" in summary.read_text()
    assert leaked(summary.read_text(), rotating.microsoft.secret_values()) == []
