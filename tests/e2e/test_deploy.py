"""Scenarios a and b: a first ``pulumi up`` of a new tenant, what it creates, what it outputs, no false drift.

One stack is deployed once for this module (the scenarios only read it).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from components.outputs import OUTPUT_NAMES, SECRET_OUTPUTS
from sandbox.engine import Engine
from sandbox.graph import EXCHANGE_ONLINE_APP_ID, POP_ROLE_ID
from tests.e2e.harness import SECRET_MASK, Microsoft, Project, leaked

# The documented outputs: the contract, which tests/unit/test_program.py checks against an explicit list.
PLAIN_OUTPUTS = set(OUTPUT_NAMES) - SECRET_OUTPUTS
# How `pulumi stack export` marks a secret value (the engine's secret signature).
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


@pytest.fixture(scope="module")
def deployed(engine: Engine, microsoft: Microsoft, tmp_path_factory: pytest.TempPathFactory) -> Project:
    tenant = microsoft.new_tenant()
    project = Project(tmp_path_factory.mktemp("deployed"), engine, microsoft, tenant)
    project.init_stack("mueller-sanitaetshaus")
    project.up()
    return project


def _stack_outputs_in_state(project: Project) -> dict[str, Any]:
    for resource in project.state_resources():
        if resource["type"] == "pulumi:pulumi:Stack":
            outputs = resource.get("outputs") or {}
            assert isinstance(outputs, dict)
            return outputs
    raise AssertionError("no stack resource in the state")


def _revealed(value: Any) -> Any:
    """A value of ``pulumi stack export --show-secrets``: secrets come as ``{sig, plaintext: <JSON>}``."""
    if isinstance(value, dict) and SECRET_SIGNATURE in value:
        return json.loads(value["plaintext"])
    return value


def _is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIGNATURE) == "1b47061264138c4ac30d75fd1eb44270"


def test_every_object_of_the_mapping_table_exists_and_is_linked(deployed: Project) -> None:
    graph, exchange, tenant = deployed.microsoft.graph, deployed.microsoft.exchange, deployed.tenant
    outputs = deployed.outputs()
    client_id, sp_object_id = outputs["clientId"], outputs["servicePrincipalObjectId"]

    [app] = graph.find_applications(tenant.tenant_id, "POP3APP")
    assert app.app_id == client_id
    assert app.sign_in_audience == "AzureADMyOrg"
    assert app.required_resource_access == [
        {"resourceAppId": EXCHANGE_ONLINE_APP_ID, "resourceAccess": [{"id": POP_ROLE_ID, "type": "Role"}]}
    ]
    principal = graph.service_principal_of(tenant.tenant_id, client_id)
    assert principal is not None
    assert principal.object_id == sp_object_id
    assert principal.object_id != app.object_id

    consents = graph.assignments_of(tenant.tenant_id, sp_object_id)
    assert [(c.resource_id, c.app_role_id) for c in consents] == [
        (tenant.exchange_online_object_id, POP_ROLE_ID)
    ]

    key_ids = sorted(credential["keyId"] for credential in app.password_credentials)
    assert key_ids == sorted(secret["keyId"] for secret in outputs["secrets"])
    assert len(key_ids) == 3

    registration = exchange.service_principal(tenant.tenant_id, sp_object_id)
    assert registration is not None
    assert registration.app_id == client_id
    assert exchange.service_principal(tenant.tenant_id, app.object_id) is None
    for mailbox in tenant.mailboxes:
        assert "FullAccess" in exchange.rights(tenant.tenant_id, mailbox, sp_object_id)


def test_outputs_are_as_documented_and_secret_only_where_documented(deployed: Project) -> None:
    masked = deployed.outputs()
    assert set(masked) == SECRET_OUTPUTS | PLAIN_OUTPUTS
    for name in SECRET_OUTPUTS:
        assert masked[name] == SECRET_MASK
    for name in PLAIN_OUTPUTS:
        assert masked[name] != SECRET_MASK
    in_state = _stack_outputs_in_state(deployed)
    assert {name for name, value in in_state.items() if _is_secret(value)} == SECRET_OUTPUTS

    tenant = deployed.tenant
    assert masked["tenantId"] == tenant.tenant_id
    assert masked["mailboxes"] == list(tenant.mailboxes)
    assert masked["pop3Host"] == "outlook.office365.com"
    assert masked["pop3Port"] == 995
    assert (
        masked["tokenEndpoint"] == f"https://login.microsoftonline.com/{tenant.tenant_id}/oauth2/v2.0/token"
    )
    assert masked["tokenScope"] == "https://outlook.office365.com/.default"
    assert masked["authorityHost"] == "https://login.microsoftonline.com"
    assert masked["cloud"] == "public"
    statuses = sorted(secret["status"] for secret in masked["secrets"])
    assert statuses == ["current", "previous", "retiring"]
    [current] = [secret for secret in masked["secrets"] if secret["status"] == "current"]
    assert current["expiresAt"] == masked["clientSecretExpiresAt"]
    assert masked["nextSecretRotationAt"] < masked["clientSecretExpiresAt"]


def test_concept_office_output_matches_what_the_fakes_hold(deployed: Project) -> None:
    microsoft, tenant = deployed.microsoft, deployed.tenant
    sheet = deployed.outputs(show_secrets=True)["conceptOffice"]
    assert sheet == {
        "tenantId": tenant.tenant_id,
        "clientId": deployed.outputs()["clientId"],
        "clientSecret": sheet["clientSecret"],
        "pop3Host": "outlook.office365.com",
        "pop3Port": 995,
        "useTls": True,
        "mailboxes": list(tenant.mailboxes),
    }
    assert sheet["clientSecret"] in microsoft.graph.issued_secrets
    # The secret the ERP is given really signs in (the fake Entra accepts exactly the issued secrets).
    response = requests.post(
        f"{microsoft.entra_url}/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sheet["clientId"],
            "client_secret": sheet["clientSecret"],
            "scope": "https://outlook.office365.com/.default",
        },
        verify=str(microsoft.certificates.ca_bundle),
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_state_holds_no_secret_in_plaintext(deployed: Project) -> None:
    microsoft = deployed.microsoft
    values = [*microsoft.secret_values(), deployed.tenant.deployer_secret]
    assert microsoft.graph.issued_secrets
    assert leaked(deployed.export(), values) == []


def test_pickled_providers_hold_no_secret(deployed: Project) -> None:
    """The dynamic resources' ``__provider`` blob (decrypted here) carries no secret or token."""
    document = json.loads(
        deployed.pulumi("stack", "export", "--show-secrets", "--stack", deployed.stack).stdout
    )
    blobs = [
        base64.b64decode(_revealed(resource["inputs"]["__provider"]))
        for resource in document["deployment"]["resources"]
        if resource["type"].startswith("pulumi-python:dynamic")
    ]
    assert len(blobs) == 3 + 1 + len(deployed.tenant.mailboxes)  # secret slots, registration, mailboxes
    values = [
        value.encode() for value in (*deployed.microsoft.secret_values(), deployed.tenant.deployer_secret)
    ]
    assert [value[:4] for blob in blobs for value in values if value in blob] == []


def test_preview_right_after_up_shows_no_changes(deployed: Project) -> None:
    deployed.preview("--expect-no-changes")


def test_refresh_right_after_up_finds_no_drift(deployed: Project) -> None:
    deployed.pulumi("refresh", "--preview-only", "--expect-no-changes", "--stack", deployed.stack)
