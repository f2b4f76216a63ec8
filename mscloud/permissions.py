"""Who holds which right on a mailbox: the principal rules and the FullAccess rule, written once.

The Exchange provider (``components.exchange.providers``), ``popctl verify --admin`` and ``popctl adopt``
all decide with these functions.

**Principal.** Exchange knows an Entra service principal through its registration (``New-ServicePrincipal``),
which ``Get-ServicePrincipal`` shows with ``Identity``, ``ObjectId``, ``AppId`` and ``DisplayName``. The
registration points at the object id in ``ObjectId`` (else ``Identity``). A permission entry may name the
principal in ``User`` by any of those; names compare case-insensitively. A registration that points at
another object id is another principal to Exchange, so its names are not the principal's.

**Rights.** An Allow entry for the principal grants its rights, explicit or inherited alike; any Deny entry
for the principal takes the rights it names away, whatever grants them. So the principal holds FullAccess
when an Allow entry for it grants FullAccess and no Deny entry for it names FullAccess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FULL_ACCESS = "FullAccess"
ACCESS_RIGHTS = {
    right.lower(): right
    for right in (
        FULL_ACCESS,
        "ReadPermission",
        "ChangePermission",
        "ChangeOwner",
        "DeleteItem",
        "ExternalAccount",
    )
}
"""The mailbox access rights Add-MailboxPermission takes, by their lower-case name."""

REGISTRATION_NAMES = ("Identity", "ObjectId", "AppId", "DisplayName")


def canonical_right(right: str) -> str:
    """``right`` spelt as Exchange spells it (``fullaccess`` -> ``FullAccess``); unknown rights as given."""
    return ACCESS_RIGHTS.get(right.lower(), right)


def registered_object_id(registration: Mapping[str, Any]) -> str:
    """The Entra object id an Exchange registration points at: ``ObjectId``, else ``Identity``."""
    return str(registration.get("ObjectId") or registration.get("Identity") or "")


def points_at(registration: Mapping[str, Any], object_id: str) -> bool:
    """Whether the registration points at ``object_id`` (case-insensitively)."""
    return registered_object_id(registration).lower() == object_id.lower()


def principal_names(object_id: str | None, registration: Mapping[str, Any] | None, *also: str) -> set[str]:
    """The names under which Exchange may show the service principal ``object_id`` in ``User``, as given.

    Its object id, the ids in ``also`` (such as the app id), and the names of ``registration`` when that
    points at ``object_id``; when ``object_id`` is not known, the registration is taken at its word.
    """
    names = {name for name in (object_id, *also) if name}
    if registration is not None and (object_id is None or points_at(registration, object_id)):
        names |= {str(registration[key]) for key in REGISTRATION_NAMES if registration.get(key)}
    return names


def held_rights(entries: Iterable[Mapping[str, Any]], names: Iterable[str]) -> set[str]:
    """The rights a principal known by ``names`` holds, by the rule in the module docstring.

    ``entries`` are permission entries as ``ExchangeClient.get_mailbox_permissions`` returns them
    (``AccessRights`` a list of str, ``Deny`` a bool). Rights come back spelt canonically.
    """
    folded = {name.lower() for name in names}
    granted: set[str] = set()
    denied: set[str] = set()
    for entry in entries:
        if str(entry.get("User") or "").lower() in folded:
            rights = {canonical_right(str(right)) for right in entry.get("AccessRights") or ()}
            (denied if entry.get("Deny") is True else granted).update(rights)
    return granted - denied


def holds_full_access(entries: Iterable[Mapping[str, Any]], names: Iterable[str]) -> bool:
    """Whether the principal known by ``names`` holds FullAccess (:func:`held_rights`)."""
    return FULL_ACCESS in held_rights(entries, names)
