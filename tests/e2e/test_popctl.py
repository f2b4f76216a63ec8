"""Scenario e: ``popctl verify``, ``handoff`` and ``fleet`` on a deployed stack, the real CLI behind them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from sandbox import dovecot as dovecot_fake
from sandbox.dovecot import DovecotServer
from tests.e2e.harness import Project, engine_required, leaked

MAILBOX = "edi@verify.test"


@pytest.fixture
def deployed(new_project: Callable[..., Project]) -> Project:
    """One mailbox: the test Dovecot maps the login name to the token's ``upn`` claim (see fakes/dovecot)."""
    project = new_project(mailboxes=(MAILBOX,))
    project.init_stack("verify")
    project.up()
    return project


@pytest.fixture
def dovecot(deployed: Project) -> Iterator[DovecotServer]:
    reason = dovecot_fake.unavailable_reason()
    if reason is not None:
        if engine_required():
            pytest.fail(f"POP3_OAUTH_REQUIRE_ENGINE is set and Dovecot is missing: {reason}")
        pytest.skip(reason)
    microsoft, tenant = deployed.microsoft, deployed.tenant
    client_id = deployed.outputs()["clientId"]
    app = microsoft.entra.apps[(tenant.tenant_id, client_id)]
    app.extra_claims["upn"] = MAILBOX
    server = DovecotServer(
        cert_pem=microsoft.certificates.server_cert,
        key_pem=microsoft.certificates.server_key,
        issuer=microsoft.entra.issuer_template.format(tenant=tenant.tenant_id),
    )
    server.add_key(microsoft.entra.kid, microsoft.entra.public_key_pem, azp=client_id)
    server.start()
    yield server
    server.stop()


def test_verify_logs_in_with_the_stacks_own_secret(deployed: Project, dovecot: DovecotServer) -> None:
    run = deployed.popctl(
        "verify",
        "--stack",
        deployed.stack,
        "--pop3-host",
        "127.0.0.1",
        "--pop3-port",
        str(dovecot.port),
        "--ca-file",
        str(deployed.microsoft.certificates.ca_bundle),
        "--json",
        check=False,
    )
    assert run.code == 0, run.describe()
    assert '"ok": true' in run.stdout
    assert MAILBOX in run.stdout
    assert leaked(run.output, deployed.microsoft.secret_values()) == []


def test_handoff_prints_the_erp_settings_and_the_secret_only_when_asked(deployed: Project) -> None:
    outputs = deployed.outputs(show_secrets=True)
    sheet = deployed.popctl("handoff", "--stack", deployed.stack)
    assert deployed.tenant.tenant_id in sheet.stdout
    assert outputs["clientId"] in sheet.stdout
    assert MAILBOX in sheet.stdout
    assert leaked(sheet.output, deployed.microsoft.secret_values()) == []
    shown = deployed.popctl("handoff", "--stack", deployed.stack, "--show-secret")
    assert outputs["clientSecret"] in shown.stdout


def test_fleet_reports_in_sync_then_drift(deployed: Project) -> None:
    report = deployed.popctl("fleet", "--json", "--no-progress", check=False)
    assert report.code == 0, report.describe()
    [tenant] = report.json()
    assert tenant["stack"] == deployed.stack
    assert tenant["status"] == "in-sync", report.describe()
    assert tenant["errors"] == []
    assert len(tenant["secrets"]) == 3
    assert all(
        isinstance(secret["expiresInDays"], int) and secret["expiresInDays"] > 0
        for secret in tenant["secrets"]
    )

    sp_object_id = deployed.outputs()["servicePrincipalObjectId"]
    deployed.microsoft.exchange.revoke(deployed.tenant.tenant_id, MAILBOX, sp_object_id)
    drifted = deployed.popctl("fleet", "--json", "--no-progress", check=False)
    assert drifted.code != 0
    [tenant] = drifted.json()
    assert tenant["status"] == "drift", drifted.describe()
    assert [change["resource"] for change in tenant["drift"]] == ["pop3-mailbox-access"]
