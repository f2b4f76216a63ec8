"""Microsoft's eventual consistency: new objects that do not show at once, on both sides, under the engine.

The azuread provider polls until a new object reads back, the Exchange providers wait until a grant is
visible; a first ``pulumi up`` of a new tenant must succeed anyway, and leave nothing to change.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import Project
from tests.fakes.exchange import ExchangeFaults
from tests.fakes.graph import GraphFaults


@pytest.fixture
def lagging(project: Project) -> Iterator[Project]:
    graph, exchange = project.microsoft.graph, project.microsoft.exchange
    graph.faults.consistency_reads = 2
    graph.faults.consistency_methods = frozenset({"GET", "PATCH"})
    exchange.faults.replication_lag_reads = 2
    yield project
    graph.faults = GraphFaults()
    exchange.faults = ExchangeFaults()


def test_a_first_up_succeeds_while_new_objects_do_not_show_at_once(lagging: Project) -> None:
    lagging.init_stack("lagging")
    lagging.up()
    tenant, exchange = lagging.tenant, lagging.microsoft.exchange
    outputs = lagging.outputs()
    assert lagging.microsoft.graph.find_applications(tenant.tenant_id, "POP3APP")
    for mailbox in tenant.mailboxes:
        assert "FullAccess" in exchange.rights(tenant.tenant_id, mailbox, outputs["servicePrincipalObjectId"])
    lagging.microsoft.graph.faults = GraphFaults()
    lagging.microsoft.exchange.faults = ExchangeFaults()
    lagging.preview("--refresh", "--expect-no-changes")
