"""Who owns the app: every deploying identity stays an owner, beside the configured ones.

The azuread provider (the stand-in follows upstream) binds the caller as owner at create and removes it
unless configured, and on update removes every owner not configured; the program lists the configured
owners plus every identity recorded in ``pop3-deployers``.
"""

from __future__ import annotations

import secrets

from sandbox.entra import EXCHANGE_RESOURCE, FakeApp
from sandbox.exchange import MANAGE_AS_APP
from tests.e2e.harness import Project

LEAST_PRIVILEGE = ["Application.ReadWrite.OwnedBy", "AppRoleAssignment.ReadWrite.All"]


def _deployer(project: Project, graph_roles: list[str]) -> tuple[FakeApp, str]:
    microsoft = project.microsoft
    secret = "deployer~" + secrets.token_urlsafe(24)
    app = microsoft.entra.add_app(
        project.tenant.tenant_id,
        secrets={secret: None},
        roles={
            microsoft.graph_url: graph_roles,
            microsoft.graph_url + "/": graph_roles,
            EXCHANGE_RESOURCE: [MANAGE_AS_APP],
        },
    )
    return app, secret


def _run_as(project: Project, deployer: FakeApp, secret: str) -> None:
    project.env.update(ARM_CLIENT_ID=deployer.client_id, ARM_CLIENT_SECRET=secret)


def _owners(project: Project) -> tuple[set[str], set[str]]:
    graph, tenant_id = project.microsoft.graph, project.tenant.tenant_id
    [app] = graph.find_applications(tenant_id, "POP3APP")
    principal = graph.service_principal_of(tenant_id, app.app_id)
    assert principal is not None
    return {o.lower() for o in app.owners}, {o.lower() for o in principal.owners}


def _owner_removals(project: Project, since: int) -> list[str]:
    return [
        w.path
        for w in project.microsoft.graph.writes[since:]
        if w.method == "DELETE" and "/owners/" in w.path
    ]


def test_a_least_privilege_deploying_identity_keeps_managing_what_it_created(project: Project) -> None:
    deployer, secret = _deployer(project, LEAST_PRIVILEGE)
    _run_as(project, deployer, secret)
    project.init_stack("owned-by")
    project.up()
    assert _owners(project) == ({deployer.object_id}, {deployer.object_id})

    project.configure({"tags": ["customer:mueller"]})  # an update of the app and its service principal
    project.up()

    [app] = project.microsoft.graph.find_applications(project.tenant.tenant_id, "POP3APP")
    assert "customer:mueller" in app.tags
    project.preview("--refresh", "--expect-no-changes")


def test_alternating_identities_never_remove_each_others_ownership(project: Project) -> None:
    operator = (project.tenant.deployer, project.tenant.deployer_secret)
    ci = _deployer(project, ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"])
    colleague = project.microsoft.graph.add_user(project.tenant.tenant_id, "it-admin@mueller.test")
    project.init_stack("alternating", settings={"owners": [colleague]})
    project.up()
    first = len(project.microsoft.graph.writes)

    for deployer, secret in (ci, operator, ci):
        _run_as(project, deployer, secret)
        project.up()

    everyone = {colleague, operator[0].object_id, ci[0].object_id}
    assert _owners(project) == (everyone, everyone)
    assert _owner_removals(project, first) == []
    project.preview("--refresh", "--expect-no-changes")


def test_without_deployers_owning_the_app_only_the_configured_owners_stay(project: Project) -> None:
    colleague = project.microsoft.graph.add_user(project.tenant.tenant_id, "it-admin@mueller.test")
    project.init_stack("configured-only", settings={"owners": [colleague], "deployersOwnApp": "false"})
    project.up()

    assert _owners(project) == ({colleague}, {colleague})
    assert not [r for r in project.state_resources() if r["type"].endswith("owners:DeployingIdentities")]
