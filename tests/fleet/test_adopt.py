"""``popctl adopt`` against HTTPS fakes of Entra, Graph and Exchange: complete and broken hand-made setups."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.settings import AdoptedSecret, parse_adopted_secret
from popctl import cli
from sandbox.graph import POP_ROLE_ID, FakeApplication, FakeGraphServicePrincipal
from tests.fleet.conftest import HAND_MADE_SECRET, MAILBOX, TENANT, MicrosoftFakes

STACK = "contoso"
SECOND_MAILBOX = "buchhaltung@contoso.de"


@dataclass
class HandMade:
    app: FakeApplication
    principal: FakeGraphServicePrincipal
    exchange_online: FakeGraphServicePrincipal
    secret_key_id: str
    consent_id: str | None


def hand_made(
    fakes: MicrosoftFakes,
    *,
    registration: str | None = "service-principal",
    consent: bool = True,
    pop_enabled: bool = True,
    full_access: bool = True,
) -> HandMade:
    """The seed guide's manual steps, done by hand, optionally wrong or incomplete."""
    exchange_online = fakes.graph.add_exchange_online(TENANT)
    app = fakes.graph.add_application(TENANT, "POP3APP")
    key_id = app.add_password("Concept Office", "2026-01-31T10:15:30.1234567Z", HAND_MADE_SECRET)
    app.add_password("first try", "2024-12-01T00:00:00Z", "Old8Q~expired-secret")
    principal = fakes.graph.add_service_principal(TENANT, app.app_id, "POP3APP")
    admin = fakes.graph.add_user(TENANT, "it-admin@contoso.de")
    app.owners.append(admin)
    principal.owners.extend([admin, fakes.graph.add_user(TENANT, "partner@it-dienstleister.de")])
    consent_id = None
    if consent:
        consent_id = fakes.graph.grant(
            TENANT, principal.object_id, exchange_online.object_id, POP_ROLE_ID
        ).assignment_id
    for mailbox in (MAILBOX, SECOND_MAILBOX):
        fakes.exchange.add_mailbox(TENANT, mailbox, pop_enabled=pop_enabled or mailbox != MAILBOX)
    if registration == "service-principal":
        fakes.exchange.add_service_principal(TENANT, app.app_id, principal.object_id, "POP3APP")
        if full_access:
            fakes.exchange.grant(TENANT, MAILBOX, principal.object_id, {"FullAccess"})
    elif registration == "app-object-id":
        fakes.exchange.add_service_principal(TENANT, app.app_id, app.object_id, "POP3APP")
        fakes.exchange.grant(TENANT, MAILBOX, app.object_id, {"FullAccess"})
    return HandMade(app, principal, exchange_online, key_id, consent_id)


def adopt(project: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    argv = [
        "adopt",
        "--tenant-id",
        TENANT,
        "--stack",
        STACK,
        "--mailbox",
        MAILBOX,
        "--mailbox",
        SECOND_MAILBOX,
        "--project-dir",
        str(project),
        *extra,
    ]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text("name: pop3-oauth\nruntime: python\nstackConfigDir: stacks\n")
    return root


def stack_text(project: Path) -> str:
    return (project / "stacks" / f"Pulumi.{STACK}.yaml").read_text()


def import_document(project: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((project / f"import-{STACK}.json").read_text())
    return document


COMPONENT_URN = "urn:pulumi:contoso::pop3-oauth::pop3-oauth:tenant:Pop3Tenant::pop3"
PROVIDER_URN = (
    "urn:pulumi:contoso::pop3-oauth::pop3-oauth:tenant:Pop3Tenant$pulumi:providers:azuread::pop3-azuread"
)


def test_complete_hand_made_setup(microsoft, project, capsys):
    setup = hand_made(microsoft)

    code, output = adopt(project, capsys, "--client-id", setup.app.app_id)

    assert code == 0, output
    assert stack_text(project) == (
        f"# Written by `popctl adopt` from the hand-made app {setup.app.app_id} (POP3APP).\n"
        "# adoptedSecrets: hand-made client secrets, kept and reported until they expire, never managed.\n"
        "# owners: who owns the app or its service principal today, kept by every pulumi up.\n"
        "config:\n"
        f'  pop3-oauth:tenantId: "{TENANT}"\n'
        '  pop3-oauth:appDisplayName: "POP3APP"\n'
        "  pop3-oauth:mailboxes:\n"
        f'    - "{MAILBOX}"\n'
        f'    - "{SECOND_MAILBOX}"\n'
        "  pop3-oauth:owners:\n"
        f'    - "{setup.app.owners[0]}"\n'
        f'    - "{setup.principal.owners[1]}"\n'
        "  pop3-oauth:adoptedSecrets:\n"
        f'    - "{setup.secret_key_id} 2026-01-31T10:15:30Z Concept Office"\n'
    )
    config = yaml.safe_load(stack_text(project))["config"]
    (entry,) = config["pop3-oauth:adoptedSecrets"]
    assert parse_adopted_secret(entry) == AdoptedSecret(
        setup.secret_key_id, datetime(2026, 1, 31, 10, 15, 30, tzinfo=UTC), "Concept Office"
    )
    assert config["pop3-oauth:mailboxes"] == [MAILBOX, SECOND_MAILBOX]
    assert import_document(project) == {
        "nameTable": {"pop3": COMPONENT_URN, "pop3-azuread": PROVIDER_URN},
        "resources": [
            {
                "type": "azuread:index/application:Application",
                "name": "pop3-app",
                "id": f"/applications/{setup.app.object_id}",
                "parent": "pop3",
                "provider": "pop3-azuread",
            },
            {
                "type": "azuread:index/servicePrincipal:ServicePrincipal",
                "name": "pop3-sp",
                "id": f"/servicePrincipals/{setup.principal.object_id}",
                "parent": "pop3",
                "provider": "pop3-azuread",
            },
            {
                "type": "azuread:index/appRoleAssignment:AppRoleAssignment",
                "name": "pop3-pop-consent",
                "id": f"/servicePrincipals/{setup.exchange_online.object_id}"
                f"/appRoleAssignedTo/{setup.consent_id}",
                "parent": "pop3",
                "provider": "pop3-azuread",
            },
        ],
    }
    assert f"- mailbox {MAILBOX}: the service principal has FullAccess" in output
    assert f"! mailbox {SECOND_MAILBOX}: the service principal has no FullAccess" in output
    assert "pulumi up grants it (pop3-mailbox-access)" in output
    assert "- Exchange registration: points at the service principal" in output
    assert "(1 finding(s) need attention, marked !)" in output
    assert f"--target '{COMPONENT_URN}' --target '{PROVIDER_URN}'" in output


def test_no_secret_value_or_hint_is_read_or_written(microsoft, project, capsys):
    setup = hand_made(microsoft)

    _, output = adopt(project, capsys, "--client-id", setup.app.app_id)

    written = output + stack_text(project) + json.dumps(import_document(project))
    for forbidden in (
        HAND_MADE_SECRET,
        HAND_MADE_SECRET[:3],
        "Old8Q",
        "secretText",
        '"hint"',
        "deployer~secret",
    ):
        assert forbidden not in written


def test_expired_hand_made_secret_is_reported_not_recorded(microsoft, project, capsys):
    setup = hand_made(microsoft)
    expired = setup.app.password_credentials[1]["keyId"]

    _, output = adopt(project, capsys, "--client-id", setup.app.app_id)

    assert f"client secret {expired}: hand-made, already expired" in output
    assert expired not in stack_text(project)


def test_exchange_registration_with_the_app_object_id(microsoft, project, capsys):
    setup = hand_made(microsoft, registration="app-object-id")

    code, output = adopt(project, capsys, "--client-id", setup.app.app_id)

    assert code == 0
    assert (
        f"! Exchange registration: points at {setup.app.object_id}, "
        "the app registration's object id (the classic mistake)"
    ) in output
    assert f"`Remove-ServicePrincipal -Identity {setup.app.object_id}`" in output
    assert f"! mailbox {MAILBOX}: the service principal has no FullAccess" in output
    assert len(import_document(project)["resources"]) == 3


def test_missing_consent_is_left_to_pulumi_up(microsoft, project, capsys):
    setup = hand_made(microsoft, consent=False)

    code, output = adopt(project, capsys, "--client-id", setup.app.app_id)

    assert code == 0
    assert [resource["name"] for resource in import_document(project)["resources"]] == ["pop3-app", "pop3-sp"]
    assert "! admin consent: missing: POP.AccessAsApp is not granted to the service principal" in output
    assert "pulumi up grants it (creates pop3-pop-consent)" in output


def test_pop_disabled_is_reported(microsoft, project, capsys):
    setup = hand_made(microsoft, pop_enabled=False)

    code, output = adopt(project, capsys, "--client-id", setup.app.app_id)

    assert code == 0
    assert f"! mailbox {MAILBOX}: POP3 is disabled" in output
    assert f"`Set-CASMailbox -Identity {MAILBOX} -PopEnabled $true`" in output


def test_missing_exchange_registration_and_service_principal(microsoft, project, capsys):
    exchange_online = microsoft.graph.add_exchange_online(TENANT)
    app = microsoft.graph.add_application(TENANT, "POP3APP")
    microsoft.exchange.add_mailbox(TENANT, MAILBOX)
    microsoft.exchange.add_mailbox(TENANT, SECOND_MAILBOX)

    code, output = adopt(project, capsys, "--display-name", "POP3APP")

    assert code == 0
    assert exchange_online.object_id not in json.dumps(import_document(project))
    assert [resource["name"] for resource in import_document(project)["resources"]] == ["pop3-app"]
    assert "! service principal: missing" in output
    assert "! Exchange registration: missing (New-ServicePrincipal was not run for this app)" in output
    assert "pop3-oauth:adoptedSecrets" not in stack_text(project)
    assert app.app_id in stack_text(project)


def test_differing_app_properties_are_reported(microsoft, project, capsys):
    microsoft.graph.add_exchange_online(TENANT)
    graph_read = {
        "resourceAppId": "00000003-0000-0000-c000-000000000000",
        "resourceAccess": [{"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"}],
    }
    app = microsoft.graph.add_application(
        TENANT, "POP3APP", pop_role=False, extra_access=[graph_read], sign_in_audience="AzureADMultipleOrgs"
    )
    microsoft.exchange.add_mailbox(TENANT, MAILBOX)
    microsoft.exchange.add_mailbox(TENANT, SECOND_MAILBOX)

    code, output = adopt(project, capsys, "--client-id", app.app_id)

    assert code == 0
    assert "! sign-in audience: AzureADMultipleOrgs (the program declares AzureADMyOrg)" in output
    assert "not a replace" in output
    assert (
        "! API permission: POP.AccessAsApp (Office 365 Exchange Online, Application) is not requested"
        in output
    )
    assert (
        "! API permissions: also requests Scope e1fe6dd8-ba31-4d61-89e7-88639da4683d of "
        "00000003-0000-0000-c000-000000000000"
    ) in output


def test_app_not_found_writes_nothing(microsoft, project, capsys):
    microsoft.graph.add_exchange_online(TENANT)

    code, output = adopt(project, capsys, "--client-id", "12345678-1234-1234-1234-123456789012")

    assert code == 1
    assert "cannot adopt: no app registration with client id 12345678-1234-1234-1234-123456789012" in output
    assert list((project / "stacks").iterdir()) == []
    assert not (project / f"import-{STACK}.json").exists()


def test_several_apps_with_the_display_name(microsoft, project, capsys):
    microsoft.graph.add_exchange_online(TENANT)
    first = microsoft.graph.add_application(TENANT, "POP3APP")
    second = microsoft.graph.add_application(TENANT, "POP3APP")

    code, output = adopt(project, capsys, "--display-name", "POP3APP")

    assert code == 1
    assert "2 app registrations match display name 'POP3APP'" in output
    assert first.app_id in output
    assert second.app_id in output
    assert "name one with --client-id" in output


def test_tenant_without_exchange_online(microsoft, project, capsys):
    app = microsoft.graph.add_application(TENANT, "POP3APP")

    code, output = adopt(project, capsys, "--client-id", app.app_id)

    assert code == 1
    assert "has no Office 365 Exchange Online service principal" in output


def test_graph_access_denied_is_reported_without_tokens(microsoft, project, capsys):
    setup = hand_made(microsoft)
    microsoft.entra.apps[(TENANT, "0a0b0c0d-1111-2222-3333-444455556666")].roles[microsoft.graph_url] = []

    code, output = adopt(project, capsys, "--client-id", setup.app.app_id)

    assert code == 1
    assert "Insufficient privileges" in output
    assert "Application.Read.All" in output
    assert "eyJ" not in output


def test_existing_stack_file_needs_force(microsoft, project, capsys):
    setup = hand_made(microsoft)
    (project / "stacks" / f"Pulumi.{STACK}.yaml").write_text("config: {}\n")

    code, output = adopt(project, capsys, "--client-id", setup.app.app_id)
    assert code == 2
    assert "pass --force to overwrite" in output

    code, _ = adopt(project, capsys, "--client-id", setup.app.app_id, "--force")
    assert code == 0
    assert "POP3APP" in stack_text(project)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tenant-id", "contoso.onmicrosoft.com", "--client-id", TENANT], "--tenant-id must be a GUID"),
        (["--tenant-id", TENANT, "--client-id", "POP3APP"], "--client-id must be a GUID"),
        (
            ["--tenant-id", TENANT, "--display-name", "X", "--mailbox", "nobody"],
            "--mailbox must be an e-mail",
        ),
    ],
)
def test_usage_errors(project, capsys, argv, message):
    full = ["adopt", "--stack", STACK, "--mailbox", MAILBOX, "--project-dir", str(project), *argv]
    try:
        code = cli.main(full)
    except SystemExit as exit_:
        code = int(exit_.code or 0)

    assert code == 2
    assert message in capsys.readouterr().err
