"""``azuread:index/servicePrincipal:ServicePrincipal``, after upstream's ``service_principal_resource.go``.

Create refuses an application that already has a service principal (unless ``useExisting``), posts with a
temporary ``TERRAFORM_UPDATE_<uuid>`` description and the caller bound as first owner - retrying while
Graph does not see the application yet - then patches the real description (retrying on 404 until the new
object has replicated), fixes the owners and reads. Delete waits for five 404s.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from tests.engine.azuread.common import (
    Context,
    StandInError,
    app_role_ids,
    app_roles,
    delete_and_wait,
    deprecated_features,
    feature_tags,
    finish_owners,
    object_path,
    owners_for_create,
    parse_object_path,
    permission_scope_ids,
    permission_scopes,
    read_live,
    reconcile_owners,
    text,
)
from tests.engine.azuread.graph import GraphError, on_not_found, quote
from tests.engine.azuread.spec import Field, Kind, ResourceSpec, all_uuids, is_uuid, one_of

TOKEN = "azuread:index/servicePrincipal:ServicePrincipal"
COLLECTION = "servicePrincipals"
SSO_MODES = ("notSupported", "oidc", "password", "saml")

SPEC = ResourceSpec(
    TOKEN,
    fields=(
        Field("clientId", Kind.STRING, required=True, force_new=True, validators=(is_uuid,)),
        Field("accountEnabled", Kind.BOOL, default=True),
        Field("alternativeNames", Kind.STRING_SET),
        Field("appRoleAssignmentRequired", Kind.BOOL),
        Field("description", Kind.STRING),
        Field("loginUrl", Kind.STRING),
        Field("notes", Kind.STRING),
        Field("notificationEmailAddresses", Kind.STRING_SET),
        Field("owners", Kind.STRING_SET, validators=(all_uuids,)),
        Field("preferredSingleSignOnMode", Kind.STRING, validators=(one_of(*SSO_MODES),)),
        Field("tags", Kind.STRING_SET, computed=True),
        Field("useExisting", Kind.BOOL),
    ),
    unsupported=frozenset({"featureTags", "features", "samlSingleSignOn"}),
)
COMPUTED = (
    "appRoleIds",
    "appRoles",
    "applicationTenantId",
    "displayName",
    "featureTags",
    "features",
    "homepageUrl",
    "logoutUrl",
    "oauth2PermissionScopeIds",
    "oauth2PermissionScopes",
    "objectId",
    "redirectUris",
    "samlMetadataUrl",
    "servicePrincipalNames",
    "signInAudience",
    "type",
)
APP_NOT_REPLICATED = "of the service principal does not reference a valid application object"
BACKING_APP_NOT_LOCAL = (
    "the backing application of the service principal being created must in the local tenant"
)


def resource_id(object_id: str) -> str:
    return object_path(COLLECTION, object_id)


def parse_id(value: str) -> str:
    return parse_object_path(COLLECTION, value)


def create(ctx: Context, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    graph = ctx.graph
    client_id = str(inputs["clientId"])
    existing = graph.list("/servicePrincipals", {"$filter": f"appId eq '{quote(client_id)}'"})
    if len(existing) > 1:
        raise StandInError(
            f"Could not list existing service principals: unexpected number of service principals returned "
            f"(expected: 1, received: {len(existing)})"
        )
    if existing:
        object_id = str(existing[0].get("id") or "")
        if inputs.get("useExisting"):
            return resource_id(object_id), update(ctx, object_id, {}, inputs)
        raise StandInError(
            f"A resource with the ID {resource_id(object_id)!r} already exists - to be managed by Pulumi "
            f"this resource needs to be imported: pulumi import {TOKEN} <name> {resource_id(object_id)} "
            "(or set useExisting)"
        )
    binds, extra, remove_caller = owners_for_create(graph, inputs.get("owners"))
    body = {
        **_body(inputs),
        "appId": client_id,
        "description": f"TERRAFORM_UPDATE_{uuid.uuid4()}",
        "owners@odata.bind": binds,
    }
    created = graph.post("/servicePrincipals", body, retry_if=_application_not_replicated)
    object_id = str(created.get("id") or "")
    if not object_id:
        raise StandInError("Bad API response: object ID returned for service principal is nil")
    graph.patch(
        f"/servicePrincipals/{object_id}",
        {"description": inputs.get("description") or None},
        retry_if=on_not_found,
    )
    finish_owners(graph, COLLECTION, object_id, extra, remove_caller)
    outputs = read(ctx, object_id, inputs, just_created=True)
    if outputs is None:
        raise StandInError(f"service principal {object_id} disappeared right after it was created")
    return resource_id(object_id), outputs


def read(
    ctx: Context, object_id: str, state: Mapping[str, Any], *, just_created: bool = False
) -> dict[str, Any] | None:
    """Live outputs, or None when the service principal is gone (404)."""
    live = read_live(ctx.graph, COLLECTION, object_id, "samlMetadataUrl", just_created=just_created)
    if live is None:
        return None
    result = outputs(live.body, live.beta)
    result["owners"] = live.owners
    result["useExisting"] = state.get("useExisting")
    return result


def update(ctx: Context, object_id: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
    graph = ctx.graph
    changed = SPEC.changes(olds, news)
    inputs = SPEC.effective(olds, news)
    graph.patch(
        f"/servicePrincipals/{object_id}", {**_body(inputs), "description": inputs.get("description") or None}
    )
    if "owners" in changed:
        reconcile_owners(graph, COLLECTION, object_id, inputs.get("owners"))
    found = read(ctx, object_id, inputs)
    if found is None:
        raise StandInError(f"service principal {object_id} was not found after updating it")
    return found


def delete(ctx: Context, object_id: str, state: Mapping[str, Any]) -> None:
    if state.get("useExisting"):
        # Upstream deletes an adopted principal too, but neither fails nor waits when that does not work.
        with suppress(GraphError):
            ctx.graph.delete(f"/{COLLECTION}/{object_id}")
        return
    delete_and_wait(ctx.graph, COLLECTION, object_id, f"service principal {object_id}")


def preview(news: dict[str, Any], olds: dict[str, Any] | None) -> dict[str, Any]:
    return SPEC.preview(news, olds, COMPUTED)


def outputs(principal: Mapping[str, Any], beta: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs shared by the resource and ``getServicePrincipal``, from Graph's service principal."""
    roles = principal.get("appRoles") or []
    scopes = principal.get("oauth2PermissionScopes") or []
    tags = list(principal.get("tags") or [])
    app_id = text(principal.get("appId"))
    saml = principal.get("samlSingleSignOnSettings")
    return {
        "accountEnabled": bool(principal.get("accountEnabled")),
        "alternativeNames": list(principal.get("alternativeNames") or []),
        "appRoleAssignmentRequired": bool(principal.get("appRoleAssignmentRequired")),
        "appRoleIds": app_role_ids(roles),
        "appRoles": app_roles(roles),
        "applicationTenantId": text(principal.get("appOwnerOrganizationId")),
        "clientId": app_id,
        "description": text(principal.get("description")),
        "displayName": text(principal.get("displayName")),
        "featureTags": feature_tags(tags),
        "features": deprecated_features(tags),
        "homepageUrl": text(principal.get("homepage")),
        "loginUrl": text(principal.get("loginUrl")),
        "logoutUrl": text(principal.get("logoutUrl")),
        "notes": text(principal.get("notes")),
        "notificationEmailAddresses": list(principal.get("notificationEmailAddresses") or []),
        "oauth2PermissionScopeIds": permission_scope_ids(scopes),
        "oauth2PermissionScopes": permission_scopes(scopes),
        "objectId": text(principal.get("id")),
        "preferredSingleSignOnMode": text(principal.get("preferredSingleSignOnMode")),
        "redirectUris": list(principal.get("replyUrls") or []),
        "samlMetadataUrl": text(beta.get("samlMetadataUrl")),
        "samlSingleSignOn": {"relayState": text(saml.get("relayState"))}
        if isinstance(saml, Mapping)
        else None,
        "servicePrincipalNames": [
            name
            for name in principal.get("servicePrincipalNames") or []
            if str(name).lower() != app_id.lower()
        ],
        "signInAudience": text(principal.get("signInAudience")),
        "tags": tags,
        "type": text(principal.get("servicePrincipalType")),
    }


def _body(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "accountEnabled": bool(inputs.get("accountEnabled", True)),
        "alternativeNames": list(inputs.get("alternativeNames") or []),
        "appRoleAssignmentRequired": bool(inputs.get("appRoleAssignmentRequired")),
        "loginUrl": inputs.get("loginUrl") or None,
        "notes": inputs.get("notes") or None,
        "notificationEmailAddresses": list(inputs.get("notificationEmailAddresses") or []),
        "preferredSingleSignOnMode": inputs.get("preferredSingleSignOnMode") or None,
        "tags": list(inputs.get("tags") or []),
    }


def _application_not_replicated(error: GraphError) -> bool:
    return error.matches(400, APP_NOT_REPLICATED) or error.matches(403, BACKING_APP_NOT_LOCAL)
