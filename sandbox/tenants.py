"""A customer tenant in the fakes: what a freshly provisioned Microsoft 365 tenant holds for pop3-oauth.

:func:`seed_tenant` makes one in an Entra, a Graph and an Exchange fake: Microsoft's own service principals
(Microsoft Graph, Office 365 Exchange Online with POP.AccessAsApp), the mailboxes with POP enabled, and a
deploying identity - an app with a client secret holding the Graph permissions the azuread provider needs
and Exchange.ManageAsApp, as docs/permissions.md asks of a real tenant. The end-to-end tests and the sandbox
both start from it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.entra import EXCHANGE_RESOURCE, EntraFake, FakeApp
from sandbox.exchange import MANAGE_AS_APP, ExchangeFake
from sandbox.graph import GraphFake

GRAPH_ROLES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")
EXCHANGE_ADMINISTRATOR_ROLE = "29232cdf-9323-42fd-ade2-1d097af3e4de"
"""The directory role template a deploying identity holds for the Exchange side (docs/permissions.md)."""


@dataclass(frozen=True)
class Tenant:
    """A customer tenant in all three fakes, with the deploying identity (app-only, client secret)."""

    tenant_id: str
    deployer: FakeApp
    deployer_secret: str
    mailboxes: tuple[str, ...]
    exchange_online_object_id: str


def seed_tenant(
    entra: EntraFake,
    graph: GraphFake,
    exchange: ExchangeFake,
    graph_url: str,
    mailboxes: Sequence[str],
    *,
    tenant_id: str | None = None,
    domain: str = "contoso.onmicrosoft.com",
) -> Tenant:
    """A fresh tenant (a new id unless given) whose Graph is reached at ``graph_url``."""
    tenant_id = tenant_id or str(uuid.uuid4())
    exchange_online = graph.seed_tenant(tenant_id, domain)
    secret = "deployer~" + secrets.token_urlsafe(24)
    deployer = entra.add_app(
        tenant_id,
        secrets={secret: None},
        roles={
            graph_url: list(GRAPH_ROLES),
            graph_url + "/": list(GRAPH_ROLES),
            EXCHANGE_RESOURCE: [MANAGE_AS_APP],
        },
    )
    exchange.tenant(tenant_id)
    for mailbox in mailboxes:
        exchange.add_mailbox(tenant_id, mailbox)
    return Tenant(tenant_id, deployer, secret, tuple(mailboxes), exchange_online.object_id)
