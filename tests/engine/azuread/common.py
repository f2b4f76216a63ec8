"""What the resources share: call context, per-application locks, owners, upstream's flatteners."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.engine.azuread.graph import GraphClient, GraphError, RetryIf, on_not_found
from tests.engine.azuread.spec import is_uuid

# Upstream adds at most 20 owners (the caller first) in the create request and the rest one by one.
OWNERS_IN_CREATE = 20
# upstream's pluginsdk.StateChangeConf ContinuousTargetOccurence for deletions and new passwords
CONSISTENT_READS = 5


class StandInError(Exception):
    """A failure the engine should show as a plain message (no traceback)."""


class KeyedLocks:
    """One lock per key, like upstream's ``tf.LockByName`` on ``azuread_application``."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key.lower(), threading.Lock())
        with lock:
            yield


@dataclass
class Context:
    """What a resource operation needs: the Graph client and the application locks of this process."""

    graph: GraphClient
    application_locks: KeyedLocks = field(default_factory=KeyedLocks)


def owners_for_create(graph: GraphClient, owners: Iterable[str] | None) -> tuple[list[str], list[str], bool]:
    """(``owners@odata.bind`` URLs, owners to add afterwards, whether to remove the caller afterwards).

    Upstream always binds the calling principal first so it can manage the new object, and removes it
    again at the end unless the configuration lists it.
    """
    caller = graph.caller_object_id()
    binds = [graph.directory_object_url(caller)]
    extra: list[str] = []
    remove_caller = True
    for owner in owners or []:
        if owner.lower() == caller.lower():
            remove_caller = False
            continue
        if len(binds) < OWNERS_IN_CREATE:
            binds.append(graph.directory_object_url(owner))
        else:
            extra.append(owner)
    return binds, extra, remove_caller


def finish_owners(
    graph: GraphClient, collection: str, object_id: str, extra: list[str], remove_caller: bool
) -> None:
    for owner in extra:
        add_owner(graph, collection, object_id, owner)
    if remove_caller:
        remove_owner(graph, collection, object_id, graph.caller_object_id())


def list_owners(
    graph: GraphClient, collection: str, object_id: str, retry_if: RetryIf | None = None
) -> list[str]:
    return [str(item["id"]) for item in graph.list(f"/{collection}/{object_id}/owners", retry_if=retry_if)]


def add_owner(graph: GraphClient, collection: str, object_id: str, owner: str) -> None:
    graph.post(f"/{collection}/{object_id}/owners/$ref", {"@odata.id": graph.directory_object_url(owner)})


def remove_owner(graph: GraphClient, collection: str, object_id: str, owner: str) -> None:
    graph.delete(f"/{collection}/{object_id}/owners/{owner}/$ref")


def reconcile_owners(
    graph: GraphClient, collection: str, object_id: str, desired: Iterable[str] | None
) -> None:
    """Upstream's update: add the configured owners that are missing, remove every other owner."""
    wanted = list(desired or [])
    existing = list_owners(graph, collection, object_id)
    for owner in [o for o in wanted if o not in existing]:
        add_owner(graph, collection, object_id, owner)
    for owner in [o for o in existing if o not in wanted]:
        remove_owner(graph, collection, object_id, owner)


def exists(graph: GraphClient, path: str) -> bool:
    """Whether ``GET path`` finds the object (404: no)."""
    try:
        graph.get(path)
    except GraphError as error:
        if error.status == 404:
            return False
        raise
    return True


def object_path(collection: str, object_id: str) -> str:
    """Upstream's resource id of a directory object: ``/{collection}/{objectId}``."""
    return f"/{collection}/{object_id}"


def parse_object_path(collection: str, value: str) -> str:
    """The object id in ``/{collection}/{objectId}``, or upstream's parse error."""
    prefix = f"/{collection}/"
    object_id = value[len(prefix) :] if value.startswith(prefix) else ""
    if not object_id or "/" in object_id or is_uuid(object_id) is not None:
        raise StandInError(f"parsing ID {value!r}: expected /{collection}/{{objectId}}")
    return object_id


@dataclass(frozen=True)
class LiveObject:
    """What upstream reads of an application or service principal: the object, its beta extra, its owners."""

    body: dict[str, Any]
    beta: dict[str, Any]
    owners: list[str]


def read_live(
    graph: GraphClient, collection: str, object_id: str, beta_property: str, *, just_created: bool = False
) -> LiveObject | None:
    """Read ``/{collection}/{object_id}`` as upstream does; None when it is gone (404). Right after a create
    a 404 is retried (the directory replicates)."""
    path = f"/{collection}/{object_id}"
    retry = on_not_found if just_created else None
    try:
        body = graph.get(path, retry_if=retry)
    except GraphError as error:
        if error.status == 404:
            return None
        raise
    beta = beta_select(graph, path, beta_property, retry)
    return LiveObject(body, beta, list_owners(graph, collection, object_id, retry))


def delete_and_wait(graph: GraphClient, collection: str, object_id: str, what: str) -> None:
    """Delete the object, then poll until it reads as gone several times in a row (upstream's wait)."""
    path = f"/{collection}/{object_id}"
    graph.delete(path)
    graph.wait_until(lambda: not exists(graph, path), f"the deletion of {what}", consecutive=CONSISTENT_READS)


def beta_select(
    graph: GraphClient, path: str, select: str, retry_if: RetryIf | None = None
) -> dict[str, Any]:
    """Upstream's extra read of one property through the beta API (``$select``)."""
    return graph.get(path, {"$select": select}, version="beta", retry_if=retry_if)


def app_roles(roles: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "allowedMemberTypes": list(role.get("allowedMemberTypes") or []),
            "description": role.get("description") or "",
            "displayName": role.get("displayName") or "",
            "enabled": bool(role.get("isEnabled")),
            "id": role.get("id") or "",
            "value": role.get("value") or "",
        }
        for role in roles or []
    ]


def app_role_ids(roles: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """Role value -> role id, for roles that have both (upstream's ``FlattenAppRoleIDs``)."""
    return {str(r["value"]): str(r["id"]) for r in roles or [] if r.get("value") and r.get("id")}


def permission_scopes(scopes: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "adminConsentDescription": scope.get("adminConsentDescription") or "",
            "adminConsentDisplayName": scope.get("adminConsentDisplayName") or "",
            "enabled": bool(scope.get("isEnabled")),
            "id": scope.get("id") or "",
            "type": scope.get("type") or "",
            "userConsentDescription": scope.get("userConsentDescription") or "",
            "userConsentDisplayName": scope.get("userConsentDisplayName") or "",
            "value": scope.get("value") or "",
        }
        for scope in scopes or []
    ]


def permission_scope_ids(scopes: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(s["value"]): str(s["id"]) for s in scopes or [] if s.get("value") and s.get("id")}


FEATURE_TAGS = {
    "windowsazureactivedirectorycustomsinglesignonapplication": "customSingleSignOn",
    "windowsazureactivedirectoryintegratedapp": "enterprise",
    "windowsazureactivedirectorygalleryapplicationnonprimaryv1": "gallery",
    "hideapp": "hide",
}
DEPRECATED_FEATURES = {
    "customSingleSignOn": "customSingleSignOnApp",
    "enterprise": "enterpriseApplication",
    "gallery": "galleryApplication",
}


def feature_tags(tags: Iterable[str] | None) -> list[dict[str, bool]]:
    """Upstream's ``FlattenFeatures(tags, false)``: one block of four flags read from the tags."""
    found = {FEATURE_TAGS[t.lower()] for t in tags or [] if t.lower() in FEATURE_TAGS}
    return [{flag: flag in found for flag in ("customSingleSignOn", "enterprise", "gallery", "hide")}]


def deprecated_features(tags: Iterable[str] | None) -> list[dict[str, bool]]:
    """Upstream's ``FlattenFeatures(tags, true)`` for the deprecated ``features`` block."""
    current = feature_tags(tags)[0]
    block = {new: current[old] for old, new in DEPRECATED_FEATURES.items()}
    block["visibleToUsers"] = not current["hide"]
    return [block]


def text(value: Any) -> str:
    return "" if value is None else str(value)
