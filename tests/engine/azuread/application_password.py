"""``azuread:index/applicationPassword:ApplicationPassword`` (upstream: ``application_password_resource.go``).

Every argument forces replacement; there is no update and no import (upstream has no importer). Create and
delete hold the application's lock, as upstream does: Graph loses concurrent credential changes. Create
posts ``addPassword`` and polls the application until the new key id shows five times in a row; the secret
text from that answer is the ``value`` output, which only ever leaves as a secret. Delete posts
``removePassword`` and polls until the key id is gone five times in a row.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.engine.azuread.common import CONSISTENT_READS, Context, StandInError, text
from tests.engine.azuread.graph import GraphError
from tests.engine.azuread.spec import Field, Kind, ResourceSpec, application_id, is_uuid, not_empty, rfc3339

TOKEN = "azuread:index/applicationPassword:ApplicationPassword"
DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def duration(value: Any) -> str | None:
    """Validates ``endDateRelative``: a Go duration in hours, minutes and seconds (``240h``, ``2400h30m``)."""
    if not isinstance(value, str) or DURATION.sub("", value) != "" or not value:
        return f"expected a duration such as 240h or 2400h30m, got {value!r}"
    return None


SPEC = ResourceSpec(
    TOKEN,
    fields=(
        Field("applicationId", Kind.STRING, required=True, force_new=True, validators=(application_id,)),
        Field("displayName", Kind.STRING, force_new=True, computed=True),
        Field("startDate", Kind.STRING, force_new=True, computed=True, validators=(rfc3339,)),
        Field("endDate", Kind.STRING, force_new=True, computed=True, validators=(rfc3339,)),
        Field(
            "endDateRelative",
            Kind.STRING,
            force_new=True,
            validators=(not_empty, duration),
        ),
        Field("rotateWhenChanged", Kind.STRING_MAP, force_new=True),
    ),
    conflicts=(("endDate", "endDateRelative"),),
)
COMPUTED = ("keyId", "value")


def resource_id(object_id: str, key_id: str) -> str:
    """Upstream's ``parse.NewCredentialID(objectId, "password", keyId)``: ``{objectId}/password/{keyId}``."""
    return f"{object_id}/password/{key_id}"


def parse_id(value: str) -> tuple[str, str]:
    parts = value.split("/")
    if len(parts) != 3 or parts[1] != "password" or is_uuid(parts[0]) or is_uuid(parts[2]):
        raise StandInError(
            f"parsing password credential with ID {value!r}: expected {{objectId}}/password/{{keyId}}"
        )
    return parts[0], parts[2]


def create(ctx: Context, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    graph = ctx.graph
    object_id = str(inputs["applicationId"]).rsplit("/", 1)[-1]
    credential = _credential(inputs)
    with ctx.application_locks.hold(object_id):
        try:
            graph.get(f"/applications/{object_id}")
        except GraphError as error:
            if error.status == 404:
                raise StandInError(f"application_id: /applications/{object_id} was not found") from error
            raise
        added = graph.post(f"/applications/{object_id}/addPassword", {"passwordCredential": credential})
        key_id = text(added.get("keyId"))
        secret_text = text(added.get("secretText"))
        if not key_id:
            raise StandInError(
                f"API error adding password for /applications/{object_id}: nil or empty keyId received"
            )
        if not secret_text:
            raise StandInError(
                f"API error adding password for /applications/{object_id}: nil or empty password received"
            )
        graph.wait_until(
            lambda: _credential_of(graph.get(f"/applications/{object_id}"), key_id) is not None,
            f"password credential {key_id} to appear in application {object_id}",
            consecutive=CONSISTENT_READS,
        )
    outputs = read(ctx, object_id, key_id, {**inputs, "value": secret_text})
    if outputs is None:
        raise StandInError(f"password credential {key_id} disappeared right after it was created")
    return resource_id(object_id, key_id), outputs


def read(ctx: Context, object_id: str, key_id: str, state: Mapping[str, Any]) -> dict[str, Any] | None:
    """Live outputs, or None when the application or the credential is gone.

    ``value`` cannot be read back from Graph: it is kept from ``state``, as are the arguments Graph does
    not store (``rotateWhenChanged``, ``endDateRelative``).
    """
    try:
        app = ctx.graph.get(f"/applications/{object_id}")
    except GraphError as error:
        if error.status == 404:
            return None
        raise
    credential = _credential_of(app, key_id)
    if credential is None:
        return None
    return {
        "applicationId": f"/applications/{object_id}",
        "displayName": _display_name(credential),
        "endDate": text(credential.get("endDateTime")),
        "endDateRelative": state.get("endDateRelative"),
        "keyId": key_id,
        "rotateWhenChanged": state.get("rotateWhenChanged"),
        "startDate": text(credential.get("startDateTime")),
        "value": text(state.get("value")),
    }


def delete(ctx: Context, object_id: str, key_id: str) -> None:
    graph = ctx.graph
    with ctx.application_locks.hold(object_id):
        graph.post(f"/applications/{object_id}/removePassword", {"keyId": key_id})
        graph.wait_until(
            lambda: _credential_of(graph.get(f"/applications/{object_id}"), key_id) is None,
            f"the removal of password credential {key_id} from application {object_id}",
            consecutive=CONSISTENT_READS,
        )


def preview(news: dict[str, Any], olds: dict[str, Any] | None) -> dict[str, Any]:
    return SPEC.preview(news, olds, COMPUTED)


def _credential(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream's ``PasswordCredentialForResource``: only the given fields, dates re-formatted as RFC 3339."""
    credential: dict[str, Any] = {}
    if inputs.get("displayName"):
        credential["displayName"] = inputs["displayName"]
    if inputs.get("startDate"):
        credential["startDateTime"] = _rfc3339(str(inputs["startDate"]))
    if inputs.get("endDate"):
        credential["endDateTime"] = _rfc3339(str(inputs["endDate"]))
    elif inputs.get("endDateRelative"):
        credential["endDateTime"] = _rfc3339(
            (datetime.now(UTC) + _duration(str(inputs["endDateRelative"]))).isoformat()
        )
    return credential


def _credential_of(app: Mapping[str, Any], key_id: str) -> dict[str, Any] | None:
    for credential in app.get("passwordCredentials") or []:
        if str(credential.get("keyId", "")).lower() == key_id.lower():
            return dict(credential)
    return None


def _display_name(credential: Mapping[str, Any]) -> str:
    if credential.get("displayName") is not None:
        return text(credential["displayName"])
    identifier = credential.get("customKeyIdentifier")
    if identifier:
        try:
            return base64.b64decode(str(identifier)).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise StandInError(f"display_name: parsing CustomKeyIdentifier: {error}") from error
    return ""


def _rfc3339(value: str) -> str:
    moment = datetime.fromisoformat(value.replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.replace(microsecond=0)
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def _duration(value: str) -> timedelta:
    seconds = {"h": 3600.0, "m": 60.0, "s": 1.0}
    return timedelta(seconds=sum(float(n) * seconds[unit] for n, unit in DURATION.findall(value)))
