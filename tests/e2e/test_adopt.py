"""Scenario f: ``popctl adopt`` brings a hand-made set-up under a stack; nothing is re-created.

The set-up is made the way the manual guide does it, through the fakes' own APIs; then the commands
``popctl adopt`` prints are run as printed (only the secrets provider placeholder is filled in).
"""

from __future__ import annotations

import shlex
from typing import Any

import requests

from sandbox.admin import TenantAdmin
from sandbox.graph import EXCHANGE_ONLINE_APP_ID, POP_ROLE_ID
from sandbox.tenants import Tenant
from tests.e2e.harness import Project, tenant_admin

PROGRAM_OWNED = ("pop3-app", "pop3-sp", "pop3-pop-consent")


def _hand_made(admin: TenantAdmin, tenant: Tenant) -> dict[str, Any]:
    """The manual guide: app POP3APP, POP.AccessAsApp, consent, a secret, New-ServicePrincipal, FullAccess."""
    app = admin.graph(
        "POST",
        "/applications",
        {
            "displayName": "POP3APP",
            "signInAudience": "AzureADMyOrg",
            "requiredResourceAccess": [
                {
                    "resourceAppId": EXCHANGE_ONLINE_APP_ID,
                    "resourceAccess": [{"id": POP_ROLE_ID, "type": "Role"}],
                }
            ],
        },
    )
    secret = admin.graph(
        "POST",
        f"/applications/{app['id']}/addPassword",
        {
            "passwordCredential": {
                "displayName": "POP3 for Concept Office",
                "endDateTime": "2028-06-01T00:00:00Z",
            }
        },
    )
    principal = admin.graph("POST", "/servicePrincipals", {"appId": app["appId"]})
    consent = admin.graph(
        "POST",
        f"/servicePrincipals/{tenant.exchange_online_object_id}/appRoleAssignedTo",
        {
            "principalId": principal["id"],
            "resourceId": tenant.exchange_online_object_id,
            "appRoleId": POP_ROLE_ID,
        },
    )
    admin.exchange(
        "New-ServicePrincipal", {"AppId": app["appId"], "ObjectId": principal["id"], "DisplayName": "POP3APP"}
    )
    for mailbox in tenant.mailboxes:
        admin.exchange(
            "Add-MailboxPermission",
            {"Identity": mailbox, "User": principal["id"], "AccessRights": ["FullAccess"]},
        )
    return {"app": app, "secret": secret["secretText"], "principal": principal, "consent": consent}


def _printed_commands(output: str) -> list[list[str]]:
    commands = []
    for line in output.splitlines():
        text = line.split("#", 1)[0].strip()
        if text.startswith("pulumi "):
            commands.append(shlex.split(text.replace("<your secrets provider>", "passphrase")))
    return commands


def _signs_in(project: Project, client_id: str, secret: str) -> bool:
    response = requests.post(
        f"{project.microsoft.entra_url}/{project.tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "https://outlook.office365.com/.default",
        },
        verify=str(project.microsoft.certificates.ca_bundle),
        timeout=30,
    )
    return response.status_code == 200


def test_adopt_then_import_and_up_recreates_nothing(project: Project) -> None:
    graph, exchange, tenant = project.microsoft.graph, project.microsoft.exchange, project.tenant
    made = _hand_made(tenant_admin(project.microsoft, tenant), tenant)
    app, principal = made["app"], made["principal"]
    project.stack = "adopted"

    mailbox_flags = [flag for mailbox in tenant.mailboxes for flag in ("--mailbox", mailbox)]
    adopt = project.popctl(
        "adopt",
        "--tenant-id",
        tenant.tenant_id,
        "--display-name",
        "POP3APP",
        "--stack",
        "adopted",
        *mailbox_flags,
    )
    commands = _printed_commands(adopt.stdout)
    assert [command[:2] for command in commands] == [
        ["pulumi", "stack"],
        ["pulumi", "up"],
        ["pulumi", "import"],
        ["pulumi", "preview"],
        ["pulumi", "up"],
    ], adopt.stdout
    init, bootstrap, import_, preview, up = commands

    project.run([*init, "--non-interactive"])
    project.run([*bootstrap, "--non-interactive"])
    project.run([*import_, "--yes", "--non-interactive"] if "--yes" not in import_ else import_)

    planned = project.run([*preview, "--json", "--non-interactive"]).json()
    # `preview --json` lists only the steps that do something; an unchanged resource has none.
    ops = {step["urn"].rsplit("::", 1)[-1]: step["op"] for step in planned["steps"]}
    for name in PROGRAM_OWNED:
        assert ops.get(name, "same") in ("same", "update"), planned

    project.run([*up, "--yes", "--non-interactive"])

    assert [a.object_id for a in graph.find_applications(tenant.tenant_id, "POP3APP")] == [app["id"]]
    adopted_principal = graph.service_principal_of(tenant.tenant_id, app["appId"])
    assert adopted_principal is not None
    assert adopted_principal.object_id == principal["id"]
    assert [c.assignment_id for c in graph.assignments_of(tenant.tenant_id, principal["id"])] == [
        made["consent"]["id"]
    ]
    registration = exchange.service_principal(tenant.tenant_id, principal["id"])
    assert registration is not None
    for mailbox in tenant.mailboxes:
        assert "FullAccess" in exchange.rights(tenant.tenant_id, mailbox, principal["id"])
    assert _signs_in(project, app["appId"], made["secret"])

    outputs = project.outputs()
    assert outputs["clientId"] == app["appId"]
    assert [s["status"] for s in outputs["secrets"] if not s["managed"]] == ["adopted"]
    project.preview("--expect-no-changes")
