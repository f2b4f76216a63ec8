"""Which mailboxes a ``MailboxAccess`` holds, noted in this provider process.

A stack deployed with the first release's per-mailbox ``MailboxPermission`` resources moves to one
``MailboxAccess`` on its next ``pulumi up``: the engine creates (or diffs) the MailboxAccess while the
program runs and deletes the old resources afterwards, all in one dynamic-provider process. The
MailboxAccess notes here each mailbox it holds (its id and every address), and the old resource's delete
leaves a noted mailbox's entry alone. ``pulumi destroy`` of a stack not moved yet notes nothing, so its
deletes remove the entries as before.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from mscloud.mailboxes import Mailbox

_claims: dict[tuple[str, str], set[str]] = {}
_claims_lock = threading.Lock()


def claim_mailbox(tenant_id: str, user: str, mailbox: Mailbox) -> None:
    """Note in this provider process that a MailboxAccess holds ``mailbox`` for ``user``."""
    with _claims_lock:
        _claims.setdefault((tenant_id.lower(), user.lower()), set()).update({mailbox.id, *mailbox.addresses})


def claim_entries(outputs: Mapping[str, Any]) -> None:
    """Note the mailboxes of a MailboxAccess's recorded entries (its diff and read run before deletes)."""
    with _claims_lock:
        held = _claims.setdefault((str(outputs["tenant_id"]).lower(), str(outputs["user"]).lower()), set())
        for entry in outputs.get("entries") or ():
            held |= {str(entry["mailbox_id"]).lower(), str(entry["address"]).lower()}
            held.add(str(entry.get("primary_address") or entry["address"]).lower())


def claimed(tenant_id: str, user: str) -> set[str]:
    """The mailbox ids and addresses (lower case) a MailboxAccess of this process holds for ``user``."""
    with _claims_lock:
        return set(_claims.get((tenant_id.lower(), user.lower()), ()))
