"""``popctl preflight`` against the Entra, Graph and Exchange fakes: each check's ok, problem and
not-checked verdicts, the exit codes, ``--stack``, and that no token or secret is printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mscloud.auth import shared_token_source
from popctl import cli
from popctl.preflight import EXCHANGE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, iso_duration_days
from sandbox.entra import FakeApp
from sandbox.graph_tenant import password_restriction
from tests.fleet.conftest import DEPLOYER_ID, DEPLOYER_SECRET, MAILBOX, TENANT, MicrosoftFakes

SHARED = "eab@contoso.de"


@dataclass
class Tenant:
    fakes: MicrosoftFakes
    deployer: FakeApp

    def set_graph_roles(self, *roles: str) -> None:
        self.deployer.roles[self.fakes.graph_url] = list(roles)
        shared_token_source().clear()

    def set_exchange_roles(self, *roles: str) -> None:
        self.deployer.roles["https://outlook.office365.com"] = list(roles)
        shared_token_source().clear()


@pytest.fixture
def tenant(microsoft: MicrosoftFakes) -> Tenant:
    """A tenant ready for the first deploy: Exchange Online, two POP-enabled mailboxes (one shared), the
    deployer with the Graph permissions, Policy.Read.All and the Exchange Administrator role."""
    microsoft.graph.seed_tenant(TENANT)
    microsoft.exchange.add_mailbox(TENANT, MAILBOX)
    microsoft.exchange.add_mailbox(TENANT, SHARED, recipient_type="SharedMailbox")
    deployer = microsoft.entra.apps[(TENANT, DEPLOYER_ID)]
    microsoft.graph.tenant_tables.give_role(
        TENANT, deployer.object_id, "Exchange Administrator", EXCHANGE_ADMINISTRATOR
    )
    world = Tenant(microsoft, deployer)
    world.set_graph_roles("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Policy.Read.All")
    return world


def preflight(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any], str]:
    argv = ["preflight", "--tenant-id", TENANT, "--mailbox", MAILBOX, "--mailbox", SHARED, "--json", *extra]
    code = cli.main(argv)
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert DEPLOYER_SECRET not in text
        assert "eyJ" not in text
    return code, json.loads(captured.out), captured.err


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["check"]: check for check in document["checks"]}


def test_a_ready_tenant_passes_every_check(tenant: Tenant, capsys: pytest.CaptureFixture[str]) -> None:
    code, document, _ = preflight(capsys)

    checks = by_name(document)
    assert code == 0, document
    assert document["ready"] is True
    assert list(checks) == [
        "graph-permissions",
        "exchange-role",
        "exchange-online",
        f"mailbox {MAILBOX}",
        f"mailbox {SHARED}",
        "secret-policy",
        "existing-app",
    ]
    assert {check["status"] for check in checks.values()} == {"ok"}
    assert checks[f"mailbox {SHARED}"]["recipientTypeDetails"] == "SharedMailbox"
    assert "Exchange Administrator" in checks["exchange-role"]["detail"]
    assert tenant.fakes.graph.writes == [] and tenant.fakes.exchange.writes == []


def test_missing_graph_permission_and_exchange_role_are_named(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.set_graph_roles("Application.ReadWrite.All", "Policy.Read.All", "Directory.Read.All")
    tenant.fakes.graph.tenant_tables.roles.clear()

    code, document, _ = preflight(capsys)

    checks = by_name(document)
    assert code == 1
    assert checks["graph-permissions"]["cause"] == "graph-permission-missing"
    assert "AppRoleAssignment.ReadWrite.All" in checks["graph-permissions"]["remedy"]
    assert checks["exchange-role"]["cause"] == "exchange-role-missing"
    assert "Exchange Administrator" in checks["exchange-role"]["remedy"]


def test_a_global_administrator_app_passes_without_the_graph_permissions(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.set_graph_roles("Application.Read.All", "Policy.Read.All")
    tables = tenant.fakes.graph.tenant_tables
    tables.roles.clear()
    tables.give_role(TENANT, tenant.deployer.object_id, "Global Administrator", GLOBAL_ADMINISTRATOR)

    code, document, _ = preflight(capsys)

    assert code == 0, document
    assert "Global Administrator" in by_name(document)["graph-permissions"]["detail"]


def test_no_exchange_manage_as_app_is_a_problem(tenant: Tenant, capsys: pytest.CaptureFixture[str]) -> None:
    tenant.set_exchange_roles()

    code, document, _ = preflight(capsys)

    check = by_name(document)["exchange-role"]
    assert code == 3  # the mailboxes cannot be read without the role either
    assert check["cause"] == "exchange-role-missing" and "Exchange.ManageAsApp" in check["detail"]


def test_a_tenant_without_exchange_online_is_found(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tenant.fakes.graph.directory(TENANT)
    exchange_sp = tenant.fakes.graph.service_principal_of(TENANT, "00000002-0000-0ff1-ce00-000000000000")
    assert exchange_sp is not None
    del directory.service_principals[exchange_sp.object_id]

    code, document, _ = preflight(capsys)

    assert code == 1
    assert by_name(document)["exchange-online"]["cause"] == "exchange-online-missing"


def test_mailbox_problems_each_have_a_cause(tenant: Tenant, capsys: pytest.CaptureFixture[str]) -> None:
    tenant.fakes.exchange.mailbox(TENANT, MAILBOX).pop_enabled = False
    tenant.fakes.exchange.mailbox(TENANT, SHARED).recipient_type = "RoomMailbox"

    code, document, _ = preflight(capsys, "--mailbox", "nobody@contoso.de")

    checks = by_name(document)
    assert code == 1
    assert checks[f"mailbox {MAILBOX}"]["cause"] == "pop-disabled"
    assert "Set-CASMailbox" in checks[f"mailbox {MAILBOX}"]["remedy"]
    assert checks[f"mailbox {SHARED}"]["cause"] == "mailbox-wrong-type"
    assert checks["mailbox nobody@contoso.de"]["cause"] == "mailbox-not-found"


def test_a_lifetime_policy_shorter_than_the_secrets_gives_the_largest_period(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.fakes.graph.tenant_tables.restrict_default(
        TENANT,
        password_restriction("passwordLifetime", max_lifetime="P365D"),
        password_restriction("customPasswordAddition"),
    )

    code, document, _ = preflight(capsys)

    check = by_name(document)["secret-policy"]
    assert code == 1
    assert check["cause"] == "secret-lifetime-too-long"
    assert check["maxLifetimeDays"] == 365 and check["largestRotationDays"] == 121
    assert check["secretLifetimeDays"] == 540
    assert "maxSecretLifetimeDays to 365" in check["remedy"] and "at most 121" in check["remedy"]


def test_restrictions_disabled_or_for_later_apps_do_not_apply(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.fakes.graph.tenant_tables.restrict_default(
        TENANT,
        password_restriction("passwordAddition", state="disabled"),
        password_restriction("passwordLifetime", max_lifetime="P90D", created_after="2099-01-01T00:00:00Z"),
    )

    code, document, _ = preflight(capsys)

    assert code == 0, document
    assert by_name(document)["secret-policy"]["status"] == "ok"


def test_blocked_secrets_name_the_exemption_to_ask_for(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.fakes.graph.tenant_tables.restrict_default(
        TENANT, password_restriction("passwordAddition", exempt_attribute="AppPolicy/SecretsAllowed")
    )

    code, document, _ = preflight(capsys)

    check = by_name(document)["secret-policy"]
    assert code == 1
    assert check["cause"] == "secrets-blocked"
    assert "AppPolicy/SecretsAllowed equals true" in check["remedy"]


def test_a_policy_that_fits_is_ok_and_asks_to_record_it(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.fakes.graph.tenant_tables.restrict_default(
        TENANT, password_restriction("passwordLifetime", max_lifetime="P600D")
    )

    code, document, _ = preflight(capsys)

    check = by_name(document)["secret-policy"]
    assert code == 0
    assert "pulumi config set pop3-oauth:maxSecretLifetimeDays 600" in check["detail"]


def test_a_custom_policy_on_the_existing_app_counts(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tenant.fakes.graph.add_application(TENANT, "POP3APP", pop_role=True)
    tenant.fakes.graph.tenant_tables.add_policy(
        TENANT,
        "EDI apps",
        password_restriction("passwordLifetime", max_lifetime="P180D"),
        applies_to=[app.object_id],
    )

    code, document, _ = preflight(capsys)

    checks = by_name(document)
    assert code == 1
    assert checks["secret-policy"]["cause"] == "secret-lifetime-too-long"
    assert "EDI apps" in checks["secret-policy"]["detail"]
    assert checks["existing-app"]["cause"] == "app-exists"
    assert "popctl adopt" in checks["existing-app"]["remedy"]
    assert checks["existing-app"]["existingApps"] == [app.object_id]


def test_without_policy_read_the_policy_check_is_not_made(
    tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.set_graph_roles("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")

    code, document, _ = preflight(capsys)

    check = by_name(document)["secret-policy"]
    assert code == 3
    assert check["status"] == "not-checked" and check["permission"] == "Policy.Read.All"
    assert document["notChecked"] == 1


def test_the_stack_supplies_the_settings(
    tenant: Tenant, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: pop3-oauth\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.mueller.yaml").write_text(
        f"config:\n  pop3-oauth:tenantId: {TENANT}\n  pop3-oauth:mailboxes:\n    - {MAILBOX}\n"
        "  pop3-oauth:secretRotationDays: 60\n  pop3-oauth:maxSecretLifetimeDays: 180\n"
    )
    tenant.fakes.graph.tenant_tables.restrict_default(
        TENANT, password_restriction("passwordLifetime", max_lifetime="P180D")
    )

    code = cli.main(["preflight", "--stack", "mueller", "--project-dir", str(tmp_path), "--json"])
    document = json.loads(capsys.readouterr().out)

    assert code == 0, document
    assert [check["check"] for check in document["checks"]][3] == f"mailbox {MAILBOX}"
    assert by_name(document)["secret-policy"]["secretLifetimeDays"] == 180


def test_the_text_report_shows_cause_and_remedy(tenant: Tenant, capsys: pytest.CaptureFixture[str]) -> None:
    tenant.fakes.exchange.mailbox(TENANT, MAILBOX).pop_enabled = False

    code = cli.main(["preflight", "--tenant-id", TENANT, "--mailbox", MAILBOX])
    out = capsys.readouterr().out

    assert code == 1
    assert f"FAIL mailbox {MAILBOX}: POP is disabled" in out
    assert "cause: pop-disabled" in out and "remedy: Set-CASMailbox" in out
    assert "OK   exchange-online" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["preflight", "--mailbox", MAILBOX], "give --tenant-id and at least one --mailbox"),
        (["preflight", "--tenant-id", "contoso", "--mailbox", MAILBOX], "--tenant-id must be a GUID"),
        (["preflight", "--tenant-id", TENANT, "--mailbox", "not-an-address"], "--mailbox must be an e-mail"),
        (["preflight", "--stack", "absent", "--project-dir", "/nonexistent"], "does not exist"),
    ],
)
def test_usage_errors_come_before_any_call(
    microsoft: MicrosoftFakes, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = cli.main(argv)

    assert code == 2
    assert message in capsys.readouterr().err
    assert microsoft.graph.paths == [] and microsoft.entra.requests["token"] == 0


def test_iso_durations() -> None:
    assert iso_duration_days("P365D") == 365
    assert iso_duration_days("P90DT23H59M") == 90
    with pytest.raises(ValueError, match="ISO 8601"):
        iso_duration_days("365 days")


def test_without_credentials_nothing_is_checked_and_it_says_how_to_sign_in(
    tenant: Tenant, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARM_CLIENT_ID")
    monkeypatch.delenv("ARM_CLIENT_SECRET")
    shared_token_source().clear()

    code, document, _ = preflight(capsys)

    assert code == 3
    assert {check["status"] for check in document["checks"]} == {"not-checked"}
    assert "popctl login" in by_name(document)["graph-permissions"]["remedy"]


def test_the_stacks_own_app_is_not_taken_for_a_twin(
    tenant: Tenant, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.contoso.yaml").write_text(
        f'config:\n  pop3-oauth:tenantId: "{TENANT}"\n  pop3-oauth:mailboxes:\n    - "{MAILBOX}"\n'
    )
    ours = tenant.fakes.graph.add_application(TENANT, "POP3APP", pop_role=True)
    ours.tags = ["pop3-oauth", "pop3-oauth-stack:contoso"]
    stack = ("--stack", "contoso", "--project-dir", str(tmp_path))

    _, document, _ = preflight(capsys, *stack)
    assert by_name(document)["existing-app"]["status"] == "ok"
    assert "stack contoso's own app" in by_name(document)["existing-app"]["detail"]

    tenant.fakes.graph.add_application(TENANT, "POP3APP", pop_role=True)  # a hand-made twin beside it
    _, document, _ = preflight(capsys, *stack)
    assert by_name(document)["existing-app"]["cause"] == "app-exists"
