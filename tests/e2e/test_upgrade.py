"""A stack deployed by the first release moves to today's schedule memory without renewing a secret.

The first release kept the rotation schedule in a stack output read back through a reference to its own
stack; today one ``SecretSlot`` record per slot keeps it in the stack's state. The first ``pulumi up`` after
the upgrade creates the records, which take the existing secrets over from what Entra lists.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from components.settings import to_rfc3339
from tests.e2e.harness import SECRET_MASK, Project, checkout

# The first release (schedule in a self-StackReference), with its Pulumi.yaml made valid YAML.
FIRST_RELEASE = "73e4f60bd07d42b9948212d19dc1805fc506b6a2"
DEPLOYED_AT = "2026-12-01T08:00:00Z"
PASSWORD_CALLS = ("addPassword", "removePassword")


def _moment(text: str, delta: timedelta) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")) + delta
    return to_rfc3339(moment)


def _password_writes(project: Project, since: int) -> list[str]:
    return [w.path for w in project.microsoft.graph.writes[since:] if w.path.endswith(PASSWORD_CALLS)]


def test_the_first_releases_stack_keeps_its_secrets_and_its_schedule(
    new_project: Callable[..., Project], tmp_path: Path
) -> None:
    old = checkout(FIRST_RELEASE, tmp_path / "first-release")
    project = new_project(source=old)
    project.init_stack("upgraded", settings={"secretRotationDays": 30})
    clock = {"POP3_OAUTH_NOW": DEPLOYED_AT}
    project.up(env=clock)
    project.up(env=clock)  # the first release's second run reads its recorded schedule back
    before = project.outputs(show_secrets=True)
    [app] = project.microsoft.graph.find_applications(project.tenant.tenant_id, "POP3APP")
    key_ids = sorted(c["keyId"] for c in app.password_credentials)

    project.install_code()
    writes = len(project.microsoft.graph.writes)
    project.up(env=clock)

    assert _password_writes(project, writes) == [], "the upgrade replaced a secret"
    [app] = project.microsoft.graph.find_applications(project.tenant.tenant_id, "POP3APP")
    assert sorted(c["keyId"] for c in app.password_credentials) == key_ids
    after = project.outputs()
    for name in ("secrets", "clientSecretExpiresAt", "nextSecretRotationAt", "secretSchedule"):
        assert after[name] != SECRET_MASK, name
    assert after["nextSecretRotationAt"] == before["nextSecretRotationAt"]
    assert after["clientSecretExpiresAt"] == before["clientSecretExpiresAt"]
    assert project.outputs(show_secrets=True)["clientSecret"] == before["clientSecret"]
    assert not [r for r in project.state_resources() if r["type"] == "pulumi:pulumi:StackReference"]
    project.preview("--expect-no-changes", env=clock)
    project.pulumi("refresh", "--preview-only", "--expect-no-changes", "--stack", project.stack)

    # The schedule goes on where the first release's would have: one new secret at its planned date.
    due = {"POP3_OAUTH_NOW": _moment(before["nextSecretRotationAt"], timedelta(hours=1))}
    writes = len(project.microsoft.graph.writes)
    project.up(env=due)
    assert sorted(_password_writes(project, writes)) == [
        f"/v1.0/applications/{app.object_id}/addPassword",
        f"/v1.0/applications/{app.object_id}/removePassword",
    ]
    assert project.outputs(show_secrets=True)["clientSecret"] != before["clientSecret"]
