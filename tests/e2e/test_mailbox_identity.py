"""Mailboxes are what addresses name: no `pulumi up` ever leaves a configured mailbox without FullAccess.

The Exchange fake logs every moment a principal loses FullAccess on a mailbox, by any means
(``ExchangeFake.losses``); these scenarios read that log, not the provider's word.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.harness import Project, checkout
from tests.e2e.test_upgrade import FIRST_RELEASE

EDI, EAB = "edi@contoso.test", "eab@contoso.test"


def _exchange_writes(project: Project, since: int) -> list[tuple[str, str]]:
    tenant_id = project.tenant.tenant_id.lower()
    return [
        (write.cmdlet, str(write.parameters.get("Identity")))
        for write in project.microsoft.exchange.writes[since:]
        if write.tenant_id == tenant_id
    ]


def test_renames_domain_changes_aliases_reorders_removals_and_additions(project: Project) -> None:
    exchange, tenant_id = project.microsoft.exchange, project.tenant.tenant_id
    edi = exchange.mailbox(tenant_id, EDI)
    edi.aliases.add("edi@contoso-alt.test")
    project.init_stack("identity")
    project.up()
    user = project.outputs()["servicePrincipalObjectId"]
    since = len(exchange.writes)

    project.configure({"mailboxes": [EAB, EDI]})  # a reorder
    project.up()
    assert _exchange_writes(project, since) == []

    project.configure({"mailboxes": [EDI, EAB, "edi@contoso-alt.test"]})  # an alias beside its primary
    refused = project.up(check=False)
    assert refused.code != 0
    assert "lists edi@contoso.test and edi@contoso-alt.test, two addresses of one mailbox" in refused.output
    assert _exchange_writes(project, since) == []

    exchange.readdress_mailbox(tenant_id, EDI, "edi@contoso-neu.test")  # a domain change in Exchange
    project.configure({"mailboxes": ["edi@contoso-neu.test", EAB]})
    project.up()
    exchange.readdress_mailbox(tenant_id, "edi@contoso-neu.test", "auftraege@contoso-neu.test")  # a rename
    project.configure({"mailboxes": ["auftraege@contoso-neu.test", EAB]})
    project.up()
    project.configure({"mailboxes": ["edi@contoso-alt.test", EAB]})  # the alias instead of the primary
    project.up()
    assert _exchange_writes(project, since) == [], "another address of the same mailbox changed Exchange"
    assert exchange.losses(tenant_id) == []

    lager = exchange.add_mailbox(tenant_id, "lager@contoso.test")
    project.configure({"mailboxes": ["edi@contoso-alt.test", EAB, lager.address]})  # an addition
    project.up()
    assert _exchange_writes(project, since) == [("Add-MailboxPermission", lager.address)]

    project.configure({"mailboxes": ["edi@contoso-alt.test", lager.address]})  # a removal
    project.up()
    assert [loss.address for loss in exchange.losses(tenant_id)] == [EAB]
    for kept in (edi.address, lager.address):
        assert exchange.rights(tenant_id, kept, user) == {"FullAccess"}
    project.preview("--refresh", "--expect-no-changes")


def test_destroy_removes_what_the_stack_granted_and_leaves_what_it_found(project: Project) -> None:
    exchange, tenant_id = project.microsoft.exchange, project.tenant.tenant_id
    project.init_stack("found")
    project.up()
    user = project.outputs()["servicePrincipalObjectId"]
    third = exchange.add_mailbox(tenant_id, "lager@contoso.test")
    exchange.grant(tenant_id, third.address, user, {"FullAccess"})  # granted by hand before it is configured
    project.configure({"mailboxes": [EDI, EAB, third.address]})
    project.up()
    [access] = [r for r in project.state_resources() if r["type"].endswith("exchange:MailboxAccess")]
    recorded = {e["address"]: e["granted_by_stack"] for e in access["outputs"]["entries"]}
    assert recorded == {EDI: True, EAB: True, third.address: False}

    project.pulumi("destroy", "--yes", "--stack", project.stack)

    removed = [(w.cmdlet, w.parameters.get("Identity")) for w in exchange.writes if w.tenant_id == tenant_id]
    assert ("Remove-MailboxPermission", third.address) not in removed
    assert {loss.address for loss in exchange.losses(tenant_id)} == {EDI, EAB}


def test_a_stack_of_per_mailbox_resources_moves_to_mailbox_access_without_a_moment_without_access(
    new_project: Callable[..., Project], tmp_path: Path
) -> None:
    old = checkout(FIRST_RELEASE, tmp_path / "first-release")
    project = new_project(source=old)
    exchange, tenant_id = project.microsoft.exchange, project.tenant.tenant_id
    project.init_stack("moved")
    project.up()
    assert {r["type"].rsplit(":", 1)[-1] for r in project.state_resources()} >= {"MailboxPermission"}
    since = len(exchange.writes)

    project.install_code()
    project.up()

    assert _exchange_writes(project, since) == [], "the move changed Exchange"
    assert exchange.losses(tenant_id) == []
    types = [r["type"].rsplit(":", 1)[-1] for r in project.state_resources()]
    assert "MailboxPermission" not in types and types.count("MailboxAccess") == 1
    project.preview("--refresh", "--expect-no-changes")
