"""``azuread:index/appRoleAssignment:AppRoleAssignment``, as upstream's ``app_role_assignment_resource.go``.

Every argument forces replacement; there is no update. Create checks that the resource service principal
exists, then posts to its ``appRoleAssignedTo`` (retrying on 404 and on "Not a valid reference update",
which mean the principal has not replicated yet). Delete does not wait.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tests.engine.azuread.common import Context, StandInError, text
from tests.engine.azuread.graph import GraphError, on_not_found
from tests.engine.azuread.spec import Field, Kind, ResourceSpec, is_uuid

TOKEN = "azuread:index/appRoleAssignment:AppRoleAssignment"

SPEC = ResourceSpec(
    TOKEN,
    fields=(
        Field("appRoleId", Kind.STRING, required=True, force_new=True, validators=(is_uuid,)),
        Field("principalObjectId", Kind.STRING, required=True, force_new=True, validators=(is_uuid,)),
        Field("resourceObjectId", Kind.STRING, required=True, force_new=True, validators=(is_uuid,)),
    ),
)
COMPUTED = ("principalDisplayName", "principalType", "resourceDisplayName")


def resource_id(resource_object_id: str, assignment_id: str) -> str:
    return f"/servicePrincipals/{resource_object_id}/appRoleAssignedTo/{assignment_id}"


def parse_id(value: str) -> tuple[str, str]:
    match = re.fullmatch(r"/servicePrincipals/([^/]+)/appRoleAssignedTo/([^/]+)", value)
    if match is None or is_uuid(match.group(1)) is not None:
        raise StandInError(
            f"parsing ID {value!r}: expected /servicePrincipals/{{resourceObjectId}}/appRoleAssignedTo/{{id}}"
        )
    return match.group(1), match.group(2)


def create(ctx: Context, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    graph = ctx.graph
    resource = str(inputs["resourceObjectId"])
    try:
        graph.get(f"/servicePrincipals/{resource}")
    except GraphError as error:
        if error.status == 404:
            raise StandInError(
                f"Service principal not found for resource (Object ID: {resource!r}): {error}"
            ) from error
        raise
    created = graph.post(
        f"/servicePrincipals/{resource}/appRoleAssignedTo",
        {
            "appRoleId": inputs["appRoleId"],
            "principalId": inputs["principalObjectId"],
            "resourceId": resource,
        },
        retry_if=_principal_not_replicated,
    )
    assignment_id = text(created.get("id"))
    created_resource = text(created.get("resourceId"))
    if not assignment_id or not created_resource:
        raise StandInError("Bad API response: the app role assignment came back without id or resourceId")
    outputs = read(ctx, created_resource, assignment_id, just_created=True)
    if outputs is None:
        raise StandInError(f"app role assignment {assignment_id} disappeared right after it was created")
    return resource_id(created_resource, assignment_id), outputs


def read(
    ctx: Context, resource_object_id: str, assignment_id: str, *, just_created: bool = False
) -> dict[str, Any] | None:
    try:
        found = ctx.graph.get(
            f"/servicePrincipals/{resource_object_id}/appRoleAssignedTo/{assignment_id}",
            retry_if=on_not_found if just_created else None,
        )
    except GraphError as error:
        if error.status == 404:
            return None
        raise
    return {
        "appRoleId": text(found.get("appRoleId")),
        "principalDisplayName": text(found.get("principalDisplayName")),
        "principalObjectId": text(found.get("principalId")),
        "principalType": text(found.get("principalType")),
        "resourceDisplayName": text(found.get("resourceDisplayName")),
        "resourceObjectId": text(found.get("resourceId")),
    }


def delete(ctx: Context, resource_object_id: str, assignment_id: str) -> None:
    ctx.graph.delete(f"/servicePrincipals/{resource_object_id}/appRoleAssignedTo/{assignment_id}")


def preview(news: dict[str, Any], olds: dict[str, Any] | None) -> dict[str, Any]:
    return SPEC.preview(news, olds, COMPUTED)


def _principal_not_replicated(error: GraphError) -> bool:
    return error.status == 404 or error.matches(400, "Not a valid reference update")
