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

**Which entries are the principal's.** Entries are read with ``Get-MailboxPermission -User <object id>``,
so Exchange itself resolves the principal and answers its entries only: there an entry counts when its
``User`` is one of the principal's names, the display name included. When Exchange refuses the filter, or
evidently ignored it (it answered entries of other users), the whole list is read and an entry counts only
when its ``User`` is the object id or the app id: a display name alone may be a second "POP3APP" or an
orphaned entry, and is never taken for ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mscloud.exchange import ExchangeNotFound

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

REGISTRATION_IDS = ("Identity", "ObjectId", "AppId")
REGISTRATION_NAMES = (*REGISTRATION_IDS, "DisplayName")


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


class PermissionReader(Protocol):
    def get_mailbox_permissions(self, mailbox: str, user: str | None = None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Principal:
    """A service principal as Exchange may show it: ``ids`` (object id, app id, the registration's ids)
    identify it anywhere; ``names`` add the display name, trusted only in a filtered answer."""

    object_id: str
    ids: frozenset[str]
    names: frozenset[str]


def principal_of(object_id: str, registration: Mapping[str, Any] | None, *also: str) -> Principal:
    """The principal ``object_id`` with the ids in ``also`` (the app id) and, when ``registration``
    points at it, the registration's ids and display name."""
    ids = {name for name in (object_id, *also) if name}
    names = set(ids)
    if registration is not None and points_at(registration, object_id):
        ids |= {str(registration[key]) for key in REGISTRATION_IDS if registration.get(key)}
        names |= ids | ({str(registration["DisplayName"])} if registration.get("DisplayName") else set())
    return Principal(object_id, frozenset(ids), frozenset(names))


def rights_on(reader: PermissionReader, mailbox: str, principal: Principal) -> set[str]:
    """The rights ``principal`` holds on ``mailbox``, read as the module docstring says.

    A refused filter answers not found (:class:`~mscloud.exchange.ExchangeNotFound`); the whole list is
    read then, and that raises ExchangeNotFound when the mailbox itself is missing.
    """
    try:
        entries: list[dict[str, Any]] | None = reader.get_mailbox_permissions(
            mailbox, user=principal.object_id
        )
    except ExchangeNotFound:
        entries = None
    names = {name.lower() for name in principal.names}
    if entries is not None and all(str(entry.get("User") or "").lower() in names for entry in entries):
        return held_rights(entries, principal.names)
    return held_rights(reader.get_mailbox_permissions(mailbox), principal.ids)


def holds_full_access(reader: PermissionReader, mailbox: str, principal: Principal) -> bool:
    """Whether ``principal`` holds FullAccess on ``mailbox`` (:func:`rights_on`, :func:`held_rights`)."""
    return FULL_ACCESS in rights_on(reader, mailbox, principal)
