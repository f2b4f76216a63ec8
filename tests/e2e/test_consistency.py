"""Microsoft's eventual consistency: new objects that do not show at once, on both sides, under the engine.

The azuread provider polls until a new object reads back, the Exchange providers wait until a grant is
visible and repeat an Add-MailboxPermission while the new service principal replicates; a first
``pulumi up`` of a new tenant must succeed anyway, and leave nothing to change. A lag beyond the bound
fails with what to do, and grants nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.exchange.providers import PRINCIPAL_LAG_ENV
from sandbox.exchange import ExchangeFaults
from sandbox.graph import GraphFaults
from tests.e2e.harness import Project


@pytest.fixture
def lagging(project: Project) -> Iterator[Project]:
    graph, exchange = project.microsoft.graph, project.microsoft.exchange
    graph.faults.consistency_reads = 2
    graph.faults.consistency_methods = frozenset({"GET", "PATCH"})
    exchange.faults.replication_lag_reads = 2
    exchange.faults.principal_lag_adds = 2
    yield project
    graph.faults = GraphFaults()
    exchange.faults = ExchangeFaults()


def test_a_first_up_succeeds_while_new_objects_do_not_show_at_once(lagging: Project) -> None:
    lagging.init_stack("lagging")
    lagging.up()
    tenant, exchange = lagging.tenant, lagging.microsoft.exchange
    outputs = lagging.outputs()
    principal = outputs["servicePrincipalObjectId"]
    adds = [p for cmdlet, p in exchange.calls if cmdlet == "Add-MailboxPermission" and p["User"] == principal]
    assert len(adds) == len(tenant.mailboxes) + 2, "the two Adds refused while the principal replicated"
    assert lagging.microsoft.graph.find_applications(tenant.tenant_id, "POP3APP")
    for mailbox in tenant.mailboxes:
        assert "FullAccess" in exchange.rights(tenant.tenant_id, mailbox, outputs["servicePrincipalObjectId"])
    lagging.microsoft.graph.faults = GraphFaults()
    lagging.microsoft.exchange.faults = ExchangeFaults()
    lagging.preview("--refresh", "--expect-no-changes")


def test_a_principal_lag_beyond_the_bound_fails_clearly_and_grants_nothing(project: Project) -> None:
    tenant, exchange = project.tenant, project.microsoft.exchange
    exchange.faults.principal_lag_adds = 1000
    project.env[PRINCIPAL_LAG_ENV] = "3"
    try:
        project.init_stack("replicating")
        failed = project.up(check=False)
    finally:
        exchange.faults = ExchangeFaults()
    assert failed.code != 0, failed.describe()
    [principal] = exchange.tenant(tenant.tenant_id).service_principals.values()
    assert f"Exchange still does not know service principal {principal.object_id}" in failed.output
    assert f"on mailbox {tenant.mailboxes[0]} was not granted" in failed.output, failed.describe()
    for mailbox in tenant.mailboxes:
        assert exchange.rights(tenant.tenant_id, mailbox, principal.object_id) == set()
    assert "wait a few minutes and run `pulumi up` again" in failed.output
    types = {resource["type"] for resource in project.state_resources()}
    assert "pulumi-python:dynamic/exchange:MailboxPermission" not in types

    principal.unknown_to_adds = 0  # replicated at last: the remedy the message gives works
    project.up()
    for mailbox in tenant.mailboxes:
        assert "FullAccess" in exchange.rights(tenant.tenant_id, mailbox, principal.object_id)
