"""``azuread:index/application:Application``, after upstream's ``application_resource.go``.

Create posts the application with the caller bound as first owner, then patches the display name to a
temporary ``TERRAFORM_UPDATE_<uuid>`` and back - the patch retries on 404/409 until the new object has
replicated - adds the owners beyond twenty, removes the caller unless configured, and reads. Update patches
and, when the owners changed, removes every owner that is not configured. Delete waits for five 404s.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from tests.engine.azuread.common import (
    Context,
    StandInError,
    app_role_ids,
    app_roles,
    delete_and_wait,
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
from tests.engine.azuread.graph import GraphError, quote
from tests.engine.azuread.spec import (
    Field,
    Kind,
    ResourceSpec,
    all_uuids,
    max_items,
    max_length,
    not_empty,
    one_of,
)
from tests.engine.azuread.values import Properties

TOKEN = "azuread:index/application:Application"
COLLECTION = "applications"
SIGN_IN_AUDIENCES = (
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
)
INFO_URLS = {
    "marketingUrl": "marketingUrl",
    "privacyStatementUrl": "privacyStatementUrl",
    "supportUrl": "supportUrl",
    "termsOfServiceUrl": "termsOfServiceUrl",
}

SPEC = ResourceSpec(
    TOKEN,
    fields=(
        Field("displayName", Kind.STRING, required=True, validators=(not_empty,)),
        Field("description", Kind.STRING, validators=(max_length(1024),)),
        Field("notes", Kind.STRING),
        Field("tags", Kind.STRING_SET, computed=True),
        Field(
            "signInAudience", Kind.STRING, default="AzureADMyOrg", validators=(one_of(*SIGN_IN_AUDIENCES),)
        ),
        Field("owners", Kind.STRING_SET, validators=(max_items(100), all_uuids)),
        Field("requiredResourceAccesses", Kind.ACCESS_SET),
        Field("identifierUris", Kind.STRING_SET),
        Field("serviceManagementReference", Kind.STRING),
        Field("deviceOnlyAuthEnabled", Kind.BOOL),
        Field("fallbackPublicClientEnabled", Kind.BOOL),
        Field("preventDuplicateNames", Kind.BOOL, default=False),
        *(Field(name, Kind.STRING) for name in INFO_URLS),
    ),
    unsupported=frozenset(
        {
            "api",
            "appRoles",
            "featureTags",
            "groupMembershipClaims",
            "logoImage",
            "oauth2PostResponseRequired",
            "optionalClaims",
            "password",
            "publicClient",
            "singlePageApplication",
            "templateId",
            "web",
        }
    ),
)
COMPUTED = (
    "api",
    "appRoleIds",
    "appRoles",
    "clientId",
    "disabledByMicrosoft",
    "featureTags",
    "groupMembershipClaims",
    "logoUrl",
    "oauth2PermissionScopeIds",
    "oauth2PostResponseRequired",
    "objectId",
    "publicClient",
    "publisherDomain",
    "singlePageApplication",
    "templateId",
    "web",
)


def resource_id(object_id: str) -> str:
    return object_path(COLLECTION, object_id)


def parse_id(value: str) -> str:
    return parse_object_path(COLLECTION, value)


def create(ctx: Context, inputs: Properties) -> tuple[str, Properties]:
    graph = ctx.graph
    display_name = str(inputs["displayName"])
    if inputs.get("preventDuplicateNames"):
        _refuse_duplicate(ctx, display_name, own_id=None)
    binds, extra, remove_caller = owners_for_create(graph, inputs.get("owners"))
    body = {**_body(inputs, include_sets=True), "owners@odata.bind": binds}
    created = graph.post("/applications", body)
    object_id = str(created.get("id") or "")
    if not object_id:
        raise StandInError("Bad API response: object ID returned for application is nil/empty")
    for name in (f"TERRAFORM_UPDATE_{uuid.uuid4()}", display_name):
        graph.patch(f"/applications/{object_id}", {"displayName": name}, retry_if=_replicating)
    finish_owners(graph, COLLECTION, object_id, extra, remove_caller)
    outputs = read(ctx, object_id, inputs, just_created=True)
    if outputs is None:
        raise StandInError(f"application {object_id} disappeared right after it was created")
    return resource_id(object_id), outputs


def read(
    ctx: Context, object_id: str, state: Mapping[str, Any], *, just_created: bool = False
) -> Properties | None:
    """Live outputs, or None when the application is gone (404)."""
    live = read_live(ctx.graph, COLLECTION, object_id, "oauth2RequirePostResponse", just_created=just_created)
    return None if live is None else outputs(live.body, live.owners, live.beta, state)


def update(ctx: Context, object_id: str, olds: Properties, news: Properties) -> Properties:
    graph = ctx.graph
    changed = SPEC.changes(olds, news)
    inputs = SPEC.effective(olds, news)
    with ctx.application_locks.hold(object_id):
        if inputs.get("preventDuplicateNames"):
            _refuse_duplicate(ctx, str(inputs["displayName"]), own_id=object_id)
        body = _body(inputs, include_sets=False)
        for name, graph_name in (
            ("requiredResourceAccesses", "requiredResourceAccess"),
            ("identifierUris", "identifierUris"),
        ):
            if name in changed:
                body[graph_name] = _body(inputs, include_sets=True)[graph_name]
        graph.patch(f"/applications/{object_id}", body)
        if "owners" in changed:
            reconcile_owners(graph, COLLECTION, object_id, inputs.get("owners"))
    found = read(ctx, object_id, inputs)
    if found is None:
        raise StandInError(f"application {object_id} was not found after updating it")
    return found


def delete(ctx: Context, object_id: str) -> None:
    delete_and_wait(ctx.graph, COLLECTION, object_id, f"application {object_id}")


def preview(news: Properties, olds: Properties | None) -> Properties:
    outputs = SPEC.preview(news, olds, COMPUTED)
    tags = outputs.get("tags")
    outputs["featureTags"] = (
        feature_tags(tags)
        if isinstance(tags, list) and all(isinstance(t, str) for t in tags)
        else outputs.get("featureTags")
    )
    return outputs


def outputs(
    app: Mapping[str, Any], owners: list[str], beta: Mapping[str, Any], state: Mapping[str, Any]
) -> Properties:
    """The resource's outputs from Graph's application, as upstream's read sets them."""
    info = app.get("info") or {}
    api = app.get("api") or {}
    tags = list(app.get("tags") or [])
    roles = app.get("appRoles") or []
    scopes = api.get("oauth2PermissionScopes") or []
    return {
        "api": _api(api) if app.get("api") is not None else None,
        "appRoleIds": app_role_ids(roles),
        "appRoles": app_roles(roles),
        "clientId": text(app.get("appId")),
        "description": text(app.get("description")),
        "deviceOnlyAuthEnabled": bool(app.get("isDeviceOnlyAuthSupported")),
        "disabledByMicrosoft": text(app.get("disabledByMicrosoftStatus")),
        "displayName": text(app.get("displayName")),
        "fallbackPublicClientEnabled": bool(app.get("isFallbackPublicClient")),
        "featureTags": feature_tags(tags),
        "groupMembershipClaims": _claims(app.get("groupMembershipClaims")),
        "identifierUris": list(app.get("identifierUris") or []),
        "logoImage": text(state.get("logoImage")),
        "logoUrl": text(info.get("logoUrl")),
        **{name: text(info.get(graph_name)) for name, graph_name in INFO_URLS.items()},
        "notes": text(app.get("notes")),
        "oauth2PermissionScopeIds": permission_scope_ids(scopes),
        "oauth2PostResponseRequired": bool(beta.get("oauth2RequirePostResponse")),
        "objectId": text(app.get("id")),
        "owners": owners,
        "preventDuplicateNames": bool(state.get("preventDuplicateNames")),
        "publicClient": _redirects(app.get("publicClient")),
        "publisherDomain": text(app.get("publisherDomain")),
        "requiredResourceAccesses": [
            {
                "resourceAppId": text(access.get("resourceAppId")),
                "resourceAccesses": [
                    {"id": text(item.get("id")), "type": text(item.get("type"))}
                    for item in access.get("resourceAccess") or []
                ],
            }
            for access in app.get("requiredResourceAccess") or []
        ],
        "serviceManagementReference": text(app.get("serviceManagementReference")),
        "signInAudience": text(app.get("signInAudience")),
        "singlePageApplication": _redirects(app.get("spa")),
        "tags": tags,
        "templateId": text(app.get("applicationTemplateId")),
        "web": _web(app.get("web")),
    }


def _body(inputs: Mapping[str, Any], *, include_sets: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": inputs.get("description") or None,
        "displayName": inputs["displayName"],
        "info": {graph_name: inputs.get(name) or None for name, graph_name in INFO_URLS.items()},
        "isDeviceOnlyAuthSupported": bool(inputs.get("deviceOnlyAuthEnabled")),
        "isFallbackPublicClient": bool(inputs.get("fallbackPublicClientEnabled")),
        "notes": inputs.get("notes") or None,
        "serviceManagementReference": inputs.get("serviceManagementReference") or None,
        "signInAudience": inputs.get("signInAudience") or "AzureADMyOrg",
        "tags": list(inputs.get("tags") or []),
    }
    if include_sets:
        body["identifierUris"] = list(inputs.get("identifierUris") or [])
        body["requiredResourceAccess"] = [
            {
                "resourceAppId": access["resourceAppId"],
                "resourceAccess": [
                    {"id": item["id"], "type": item["type"]} for item in access.get("resourceAccesses") or []
                ],
            }
            for access in inputs.get("requiredResourceAccesses") or []
        ]
    return body


def _replicating(error: GraphError) -> bool:
    """Upstream's ``applicationUpdateRetryFunc``: 404 and 409 mean the new object has not replicated."""
    return error.status in (404, 409) or error.matches(
        400, "Permission (scope or role) cannot be deleted or updated unless disabled first"
    )


def _refuse_duplicate(ctx: Context, display_name: str, own_id: str | None) -> None:
    """Upstream's apply-time check (create and update): any other application with this display name
    fails the operation before it writes anything, with ``tf.ImportAsDuplicateError``'s text."""
    found = ctx.graph.list("/applications", {"$filter": f"displayName eq '{quote(display_name)}'"})
    for app in found:
        if own_id is None or str(app.get("id")) != own_id:
            raise StandInError(
                f'An existing "azuread_application" with name "{display_name}" (ID: "{app.get("id")}") was '
                "found and `prevent_duplicate_names` was specified. To be managed via Terraform, this "
                "resource needs to be imported into the State. Please see the resource documentation for "
                '"azuread_application" for more information.'
            )


def _claims(value: Any) -> list[str]:
    if not value:
        return []
    return [claim.strip() for claim in str(value).split(",") if claim.strip() and claim.strip() != "None"]


def _redirects(block: Any) -> dict[str, Any] | None:
    if not isinstance(block, Mapping):
        return None
    return {"redirectUris": list(block.get("redirectUris") or [])}


def _web(block: Any) -> dict[str, Any] | None:
    if not isinstance(block, Mapping):
        return None
    grant = block.get("implicitGrantSettings") or {}
    return {
        "homepageUrl": text(block.get("homePageUrl")),
        "implicitGrant": {
            "accessTokenIssuanceEnabled": bool(grant.get("enableAccessTokenIssuance")),
            "idTokenIssuanceEnabled": bool(grant.get("enableIdTokenIssuance")),
        },
        "logoutUrl": text(block.get("logoutUrl")),
        "redirectUris": list(block.get("redirectUris") or []),
    }


def _api(api: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "knownClientApplications": list(api.get("knownClientApplications") or []),
        "mappedClaimsEnabled": bool(api.get("acceptMappedClaims")),
        "oauth2PermissionScopes": permission_scopes(api.get("oauth2PermissionScopes")),
        "requestedAccessTokenVersion": api.get("requestedAccessTokenVersion") or 1,
    }
