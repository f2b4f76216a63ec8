"""``azuread:index/getClientConfig:getClientConfig`` (upstream: ``client_config_data_source.go``).

The identity the provider signs in as: ``tenantId`` and ``clientId`` from the provider configuration,
``objectId`` the signed-in principal's object id, ``id`` upstream's ``<tenant>-<client>-<object>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.engine.azuread.common import Context

TOKEN = "azuread:index/getClientConfig:getClientConfig"


def invoke(ctx: Context, _args: Mapping[str, Any]) -> dict[str, Any]:
    graph = ctx.graph
    tenant_id, client_id = graph.settings.tenant_id, graph.settings.client_id
    object_id = graph.caller_object_id()
    return {
        "tenantId": tenant_id,
        "clientId": client_id,
        "objectId": object_id,
        "id": f"{tenant_id}-{client_id}-{object_id}",
    }
