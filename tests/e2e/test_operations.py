"""Operating it like a service under the real engine: ``popctl preflight`` before and after the first
``pulumi up``, and ``popctl fleet --calendar/--metrics`` with the secrets' last sign-ins on a deployed
stack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from icalendar import Calendar
from prometheus_client.parser import text_string_to_metric_families

from popctl.preflight import EXCHANGE_ADMINISTRATOR
from sandbox.tenants import GRAPH_ROLES
from tests.e2e.harness import Project, leaked

MAILBOX = "edi@operations.test"


def allow(project: Project, *graph_roles: str) -> None:
    """Give the deployer more Graph application permissions (its tokens carry them from now on)."""
    microsoft, deployer = project.microsoft, project.tenant.deployer
    for audience in (microsoft.graph_url, microsoft.graph_url + "/"):
        deployer.roles[audience] = [*GRAPH_ROLES, *graph_roles]


def test_preflight_is_ready_before_and_after_the_first_up_and_finds_the_app_for_another_stack(
    new_project: Callable[..., Project],
) -> None:
    project = new_project(mailboxes=(MAILBOX,))
    project.init_stack("preflight", settings={"secretRotationDays": 60, "maxSecretLifetimeDays": 180})
    allow(project, "Policy.Read.All")
    tables = project.microsoft.graph.tenant_tables
    tables.give_role(
        project.tenant.tenant_id,
        project.tenant.deployer.object_id,
        "Exchange Administrator",
        EXCHANGE_ADMINISTRATOR,
    )

    before = project.popctl("preflight", "--stack", "preflight", "--json", check=False)

    assert before.code == 0, before.describe()
    assert before.json()["ready"] is True
    project.up()
    again = project.popctl("preflight", "--stack", "preflight", "--json", check=False)
    assert again.code == 0, again.describe()
    own = {check["check"]: check for check in again.json()["checks"]}["existing-app"]
    assert "stack preflight's own app" in own["detail"]
    tenant = ("--tenant-id", project.tenant.tenant_id, "--mailbox", MAILBOX)
    after = project.popctl("preflight", *tenant, "--json", check=False)  # as for a new stack beside it
    checks = {check["check"]: check for check in after.json()["checks"]}
    assert after.code == 1, after.describe()
    assert checks["existing-app"]["cause"] == "app-exists"
    assert checks["existing-app"]["existingApps"]
    assert leaked(before.output + again.output + after.output, project.microsoft.secret_values()) == []


def test_fleet_writes_calendar_and_metrics_with_the_secrets_last_sign_ins(
    new_project: Callable[..., Project], tmp_path: Path
) -> None:
    project = new_project(mailboxes=(MAILBOX,))
    project.init_stack("operations")
    project.up()
    outputs = project.outputs()
    current = next(secret for secret in outputs["secrets"] if secret["status"] == "current")
    allow(project, "AuditLog.Read.All")
    project.microsoft.graph.tenant_tables.record_sign_in(
        project.tenant.tenant_id, outputs["clientId"], current["keyId"], "2026-11-30T00:00:00Z"
    )
    calendar, metrics = tmp_path / "fleet.ics", tmp_path / "fleet.prom"

    report = project.popctl(
        "fleet",
        "--json",
        "--no-progress",
        "--calendar",
        str(calendar),
        "--metrics",
        str(metrics),
        check=False,
    )

    assert report.code == 0, report.describe()
    [tenant] = report.json()
    assert tenant["signInActivity"] == "read"
    used = {secret["keyId"]: secret["lastSignInAt"] for secret in tenant["secrets"]}
    assert used[current["keyId"]] == "2026-11-30T00:00:00Z"
    events = {str(event["uid"]): event for event in Calendar.from_ical(calendar.read_bytes()).walk("VEVENT")}
    rotation = events[f"rotation-{project.tenant.tenant_id}@pop3-oauth"]
    assert rotation.decoded("dtstart").isoformat() == outputs["nextSecretRotationAt"][:10]
    assert f"popctl handoff --stack {project.stack} --show-secret" in str(rotation["description"])
    assert {f"secret-{secret['keyId']}@pop3-oauth" for secret in outputs["secrets"]} <= set(events)
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.read_text(encoding="utf-8"))
        for sample in family.samples
    }
    assert samples["pop3oauth_drift"] == 0 and samples["pop3oauth_pending_changes"] == 0
    assert samples["pop3oauth_check_error"] == 0 and samples["pop3oauth_revokes_secret_in_use"] == 0
    assert samples["pop3oauth_secret_expiry_seconds"] > 0
    files = calendar.read_text(encoding="utf-8") + metrics.read_text(encoding="utf-8")
    assert leaked(report.output + files, project.microsoft.secret_values()) == []
