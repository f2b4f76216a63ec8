"""Which client secrets the ERP really uses: the last sign-in of each credential, as Entra reports it.

Microsoft Graph's ``reports/appCredentialSignInActivities`` (beta, global cloud only, Entra ID P1, permission
``AuditLog.Read.All``; reported per day) lists one entry per credential and resource with the credential's
``keyId`` and ``signInActivity.lastSignInDateTime``. :func:`last_sign_ins` reduces it to the latest sign-in
per key id. A tenant where the report cannot be read raises :class:`SignInsUnavailable`, whose text says
why once and is safe to show; callers carry on without the dates.

A :data:`SignInReader` is the seam ``popctl fleet`` and ``popctl handoff`` take: :func:`graph_reader` asks
Graph with the operator's credentials, :func:`recorded_reader` reads ``<dir>/<stack>/signins.json`` (the
report's own JSON) beside ``fleet --recorded``'s other documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mscloud.errors import Pop3OAuthError
from popctl.values import rfc3339

REPORT_PERMISSION = "AuditLog.Read.All"
RECORDED_FILE = "signins.json"

SignInReader = Callable[[str, Mapping[str, Any]], Mapping[str, datetime | None] | None]
"""``(stack, outputs) -> {keyId: last sign-in or None}``; None when nothing is known and nothing to say.
Raises :class:`SignInsUnavailable` when the activity cannot be read."""


class SignInsUnavailable(Pop3OAuthError):
    """The tenant's credential sign-in activity cannot be read; the message says why and what would help."""


def last_sign_ins(entries: Iterable[Mapping[str, Any]]) -> dict[str, datetime | None]:
    """The latest ``signInActivity.lastSignInDateTime`` per ``keyId`` (lower case); None: never seen.

    Raises ValueError naming the entry when a date is not RFC 3339.
    """
    latest: dict[str, datetime | None] = {}
    for index, entry in enumerate(entries):
        key_id = str(entry.get("keyId") or "").lower()
        if not key_id:
            continue
        activity = entry.get("signInActivity")
        raw = activity.get("lastSignInDateTime") if isinstance(activity, Mapping) else None
        moment = rfc3339(raw, f"appCredentialSignInActivities[{index}]") if isinstance(raw, str) else None
        known = latest.get(key_id)
        latest[key_id] = max((m for m in (known, moment) if m is not None), default=None)
    return latest


def graph_reader(stack: str, outputs: Mapping[str, Any]) -> Mapping[str, datetime | None]:
    """The activity of the stack's app, read from Graph with the operator's ``ARM_*`` credentials or the
    ``popctl login`` sign-in (:func:`mscloud.auth.shared_token_source`)."""
    from mscloud.auth import shared_token_source
    from mscloud.clouds import CLOUDS, DEFAULT_CLOUD, get_cloud
    from mscloud.graph import GraphAccessDenied, GraphClient, GraphError

    tenant_id, client_id = outputs.get("tenantId"), outputs.get("clientId")
    cloud = outputs.get("cloud") or DEFAULT_CLOUD
    if not isinstance(tenant_id, str) or not isinstance(client_id, str):
        raise SignInsUnavailable("the stack has no tenantId/clientId output (not deployed yet?)")
    if cloud != DEFAULT_CLOUD or cloud not in CLOUDS:
        raise SignInsUnavailable(
            f"Entra reports credential sign-in activity only in the global cloud, not in {cloud}"
        )
    client = GraphClient(tenant_id, get_cloud(cloud).with_overrides(), shared_token_source())
    try:
        entries = client.credential_sign_in_activities(client_id)
    except GraphAccessDenied as denied:
        if "premium" in denied.code.lower():
            raise SignInsUnavailable(
                "the tenant has no Entra ID P1 (premium license), which the credential sign-in report needs"
            ) from None
        raise SignInsUnavailable(
            f"reading reports/appCredentialSignInActivities was refused: the operator's identity needs "
            f"{REPORT_PERMISSION} (and the tenant Entra ID P1)"
        ) from None
    except Pop3OAuthError as error:
        reason = str(error) if isinstance(error, GraphError) else f"no Graph token: {error}"
        raise SignInsUnavailable(f"reports/appCredentialSignInActivities: {reason}") from None
    finally:
        client.close()
    try:
        return last_sign_ins(entries)
    except ValueError as error:
        raise SignInsUnavailable(str(error)) from None


def recorded_reader(directory: Path) -> SignInReader:
    """A reader of ``directory/<stack>/signins.json`` (``{"value": [...]}`` as Graph answers, or
    ``{"error": "..."}`` for a tenant whose report could not be read); None where there is no file."""

    def read(stack: str, outputs: Mapping[str, Any]) -> Mapping[str, datetime | None] | None:
        path = directory / stack / RECORDED_FILE
        if not path.is_file():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SignInsUnavailable(f"{path} cannot be read: {error}") from None
        if isinstance(document, dict) and isinstance(document.get("error"), str):
            raise SignInsUnavailable(document["error"])
        entries = document.get("value") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise SignInsUnavailable(f'{path} has no "value" list')
        try:
            return last_sign_ins(entry for entry in entries if isinstance(entry, dict))
        except ValueError as error:
            raise SignInsUnavailable(str(error)) from None

    return read
