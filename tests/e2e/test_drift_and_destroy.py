"""Scenarios c and g: drift made by hand is shown and repaired; destroy removes only ours, in order."""

from __future__ import annotations

from sandbox.graph import EXCHANGE_ONLINE_APP_ID, POP_ROLE_ID
from tests.e2e.harness import Project

IMAP_ROLE_ID = "5e5addcd-3e8d-4e90-baf5-964efab2b20a"


def _changed_resources(document: dict[str, object]) -> dict[str, str]:
    """``{resource name: op}`` of every step that changes something (the stack itself left out)."""
    steps = document.get("steps") or []
    assert isinstance(steps, list)
    return {
        step["urn"].rsplit("::", 1)[-1]: step["op"]
        for step in steps
        if step["op"] not in ("same", "read")
        and not step["urn"].endswith("pulumi:pulumi:Stack::pop3-oauth-drift")
    }


def test_drift_in_entra_and_exchange_is_shown_and_repaired(project: Project) -> None:
    project.init_stack("drift")
    project.up()
    graph, exchange, tenant = project.microsoft.graph, project.microsoft.exchange, project.tenant
    outputs = project.outputs()
    sp_object_id, client_id = outputs["servicePrincipalObjectId"], outputs["clientId"]
    [app] = graph.find_applications(tenant.tenant_id, "POP3APP")
    drifted_mailbox = tenant.mailboxes[1]

    exchange.revoke(tenant.tenant_id, drifted_mailbox, sp_object_id)
    graph.set_required_resource_access(
        tenant.tenant_id,
        app.object_id,
        [{"resourceAppId": EXCHANGE_ONLINE_APP_ID, "resourceAccess": [{"id": IMAP_ROLE_ID, "type": "Role"}]}],
    )

    shown = project.preview("--refresh", "--json", check=False)
    changes = _changed_resources(shown.json())
    assert "pop3-app" in changes, shown.describe()
    assert "pop3-mailbox-access" in changes, shown.describe()
    # The refresh in a preview changes nothing: the fakes still show the drift.
    assert exchange.rights(tenant.tenant_id, drifted_mailbox, sp_object_id) == set()

    project.up("--refresh")
    assert "FullAccess" in exchange.rights(tenant.tenant_id, drifted_mailbox, sp_object_id)
    [repaired] = graph.find_applications(tenant.tenant_id, "POP3APP")
    assert repaired.required_resource_access == [
        {"resourceAppId": EXCHANGE_ONLINE_APP_ID, "resourceAccess": [{"id": POP_ROLE_ID, "type": "Role"}]}
    ]
    assert project.outputs()["clientId"] == client_id
    project.preview("--refresh", "--expect-no-changes")


def test_destroy_removes_only_what_the_stack_created_in_order(project: Project) -> None:
    project.init_stack("teardown")
    project.up()
    graph, exchange, tenant = project.microsoft.graph, project.microsoft.exchange, project.tenant
    outputs = project.outputs()
    sp_object_id = outputs["servicePrincipalObjectId"]
    graph_writes, exchange_writes = len(graph.writes), len(exchange.writes)

    project.pulumi("destroy", "--yes", "--stack", project.stack)

    removed = [w for w in exchange.writes[exchange_writes:] if w.tenant_id == tenant.tenant_id]
    assert [w.cmdlet for w in removed] == [
        *(["Remove-MailboxPermission"] * len(tenant.mailboxes)),
        "Remove-ServicePrincipal",
    ]
    deletes = list(graph.writes[graph_writes:])
    assert deletes, "nothing was deleted in Entra"
    assert all(write.seq > removed[-1].seq for write in deletes), "an Entra object went before Exchange"
    assert graph.find_applications(tenant.tenant_id, "POP3APP") == []
    assert graph.service_principal_of(tenant.tenant_id, outputs["clientId"]) is None
    # Microsoft's own service principals and the mailboxes stay.
    assert graph.service_principal_of(tenant.tenant_id, EXCHANGE_ONLINE_APP_ID) is not None
    for mailbox in tenant.mailboxes:
        assert exchange.rights(tenant.tenant_id, mailbox, sp_object_id) == set()
        assert exchange.mailbox(tenant.tenant_id, mailbox).address == mailbox
    assert exchange.service_principal(tenant.tenant_id, sp_object_id) is None

    after = len(graph.writes), len(exchange.writes)
    again = project.pulumi("destroy", "--yes", "--stack", project.stack)
    assert (len(graph.writes), len(exchange.writes)) == after, again.describe()
