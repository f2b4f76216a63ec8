"""Which mailbox an address names: the immutable identity the Exchange resources and ``popctl`` key on.

A mailbox has one primary SMTP address and any number of aliases, and an address can change (a rename, a
new domain) while the mailbox stays the same. So a configured address is resolved once per operation with
``Get-Mailbox`` to a :class:`Mailbox` whose ``id`` never changes: the ExchangeGuid, else the
ExternalDirectoryObjectId, else the object's Guid (the reference notes do not confirm which of them the
REST endpoint always returns; the first present wins, and ids compare in lower case). Cmdlets are then
called with the primary address Exchange just gave, which every cmdlet accepts as ``Identity``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mscloud.errors import Pop3OAuthError
from mscloud.exchange import ExchangeReader

ID_FIELDS = ("ExchangeGuid", "ExternalDirectoryObjectId", "Guid")
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
POP_MAILBOX_TYPES = ("UserMailbox", "SharedMailbox")


class MailboxError(Pop3OAuthError):
    """A configured address names no mailbox, or two configured addresses name the same one."""


@dataclass(frozen=True)
class Mailbox:
    """A resolved mailbox: its immutable ``id``, its primary address now, every SMTP address it has and its
    ``RecipientTypeDetails`` (empty when Exchange did not say)."""

    id: str
    primary_address: str
    addresses: frozenset[str]
    recipient_type: str


def mailbox_of(record: Mapping[str, Any], asked: str) -> Mailbox:
    """The :class:`Mailbox` a ``Get-Mailbox`` record describes (``asked`` is the address looked up)."""
    primary = str(record.get("PrimarySmtpAddress") or record.get("WindowsEmailAddress") or asked)
    identity = next(
        (
            str(record[key]).lower()
            for key in ID_FIELDS
            if record.get(key) and str(record[key]).lower() != EMPTY_GUID
        ),
        primary.lower(),
    )
    addresses = {primary.lower(), asked.lower()} | set(smtp_addresses(record.get("EmailAddresses")))
    return Mailbox(identity, primary, frozenset(addresses), str(record.get("RecipientTypeDetails") or ""))


def smtp_addresses(value: object) -> list[str]:
    """The SMTP addresses of an ``EmailAddresses`` value (``SMTP:``/``smtp:`` prefixed), in lower case."""
    items = value if isinstance(value, list | tuple) else str(value or "").split(",") if value else []
    found = []
    for item in items:
        text = str(item).strip()
        prefix, _, address = text.partition(":")
        if address and prefix.lower() == "smtp":
            found.append(address.lower())
    return found


def resolve(reader: ExchangeReader, address: str) -> Mailbox | None:
    """The mailbox ``address`` names, or None when Exchange knows no such mailbox."""
    record = reader.get_mailbox(address)
    return None if record is None else mailbox_of(record, address)


def no_such_mailbox(address: str, tenant_id: str) -> str:
    """What to say when Exchange knows no mailbox of ``address``."""
    return (
        f"Mailbox {address} does not exist in tenant {tenant_id}: check the address in the stack's "
        "`mailboxes` setting (an address of a user or shared mailbox)."
    )


def resolve_all(reader: ExchangeReader, addresses: Iterable[str], *, tenant_id: str) -> dict[str, Mailbox]:
    """Each configured address with its mailbox, in the given order.

    Raises :class:`MailboxError` before anything is changed when an address names no mailbox, or when two
    addresses name one mailbox (naming both, since one of them must go from ``mailboxes``).
    """
    resolved: dict[str, Mailbox] = {}
    seen: dict[str, str] = {}
    for address in addresses:
        mailbox = resolve(reader, address)
        if mailbox is None:
            raise MailboxError(no_such_mailbox(address, tenant_id))
        if mailbox.id in seen:
            raise MailboxError(
                f"`mailboxes` lists {seen[mailbox.id]} and {address}, two addresses of one mailbox "
                f"({mailbox.primary_address}): keep one of them."
            )
        seen[mailbox.id] = address
        resolved[address] = mailbox
    return resolved
