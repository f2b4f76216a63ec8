"""``azuread:index/getServicePrincipal:getServicePrincipal`` (upstream: ``service_principal_data_source.go``).

Exactly one of ``clientId``, ``displayName`` or ``objectId`` selects the service principal: by object id a
GET, otherwise a ``$filter`` list (a display name must match exactly one). The result also carries ``id``
(``/servicePrincipals/{objectId}``) and ``samlSingleSignOns`` (a list, unlike the resource's block).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.engine.azuread import service_principal
from tests.engine.azuread.common import Context, StandInError, beta_select
from tests.engine.azuread.graph import GraphError, quote

TOKEN = "azuread:index/getServicePrincipal:getServicePrincipal"
SELECTORS = ("clientId", "displayName", "objectId")


def failures(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    given = [name for name in SELECTORS if args.get(name)]
    if len(given) == 1:
        return []
    reason = (
        "only one of `clientId,displayName,objectId` can be specified, but `"
        + ",".join(given)
        + "` were specified."
        if given
        else "one of `clientId,displayName,objectId` must be specified"
    )
    return [(name, reason) for name in (given or SELECTORS[:1])]


def invoke(ctx: Context, args: Mapping[str, Any]) -> dict[str, Any]:
    principal = _find(ctx, args)
    object_id = str(principal.get("id") or "")
    if not object_id:
        raise StandInError("Bad API Response: API returned service principal with nil object ID")
    beta = beta_select(ctx.graph, f"/servicePrincipals/{object_id}", "samlMetadataUrl")
    result = service_principal.outputs(principal, beta)
    saml = result.pop("samlSingleSignOn")
    result["samlSingleSignOns"] = [saml] if saml else []
    result["id"] = service_principal.resource_id(object_id)
    return result


def _find(ctx: Context, args: Mapping[str, Any]) -> dict[str, Any]:
    graph = ctx.graph
    if args.get("objectId"):
        object_id = str(args["objectId"])
        try:
            return graph.get(f"/servicePrincipals/{object_id}")
        except GraphError as error:
            if error.status == 404:
                raise StandInError(f"object_id: /servicePrincipals/{object_id} was not found") from error
            raise
    if args.get("displayName"):
        name = str(args["displayName"])
        flt = f"displayName eq '{quote(name)}'"
        found = graph.list("/servicePrincipals", {"$filter": flt})
        if not found:
            raise StandInError(
                f"Service principal not found: no service principals found matching filter: {flt!r}"
            )
        if len(found) > 1:
            raise StandInError(f"Multiple service principals found matching filter: {flt!r}")
        for candidate in found:
            if str(candidate.get("displayName", "")).lower() == name.lower():
                return candidate
        raise StandInError("No service principal found")
    client_id = str(args["clientId"])
    for candidate in graph.list("/servicePrincipals", {"$filter": f"appId eq '{quote(client_id)}'"}):
        if str(candidate.get("appId", "")).lower() == client_id.lower():
            return candidate
    raise StandInError(f"No service principal found for client ID {client_id!r}")
