"""``MailboxAccess``'s provider: FullAccess on the configured mailboxes, keyed by the mailbox each names.

The provider is pickled by reference (``components.exchange.mailbox_access.MailboxAccessProvider``): keep
the module path and the class name. It keeps nothing on ``self``; see ``components.exchange.providers``
for the client registry and the checks it shares with the other Exchange providers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components.exchange.claims import claim_entries, claim_mailbox
from components.exchange.providers import (
    changed_keys,
    check_cloud,
    check_guid,
    exchange_client,
    folded,
    is_unknown,
    permission_check,
    registered_principal,
    require_pop_mailbox,
    same,
)
from components.settings import is_mailbox
from mscloud.clouds import DEFAULT_CLOUD
from mscloud.exchange import ExchangeClient
from mscloud.mailboxes import Mailbox, resolve, resolve_all
from mscloud.permissions import Principal, principal_of, rights_on


class MailboxAccessProvider(ResourceProvider):
    """``Add-MailboxPermission`` for the set of configured mailboxes, keyed by the mailbox each names.

    Inputs: ``tenant_id``, ``user`` (the service principal's object id), ``app_id``, ``mailboxes``
    (addresses), ``access_rights`` (default ``["FullAccess"]``), ``cloud``. Outputs: the same keys plus
    ``entries``, one per configured mailbox: ``address`` (as configured), ``mailbox_id`` (its immutable id,
    :mod:`mscloud.mailboxes`), ``primary_address`` (live), ``access_rights`` (live) and
    ``granted_by_stack`` (True when this resource added the rights, False when it found them in place).
    The id is ``<tenant>:<user>`` in lower case.

    Every change is one ``update`` that first grants what is missing and only then takes away what the
    stack granted on mailboxes no longer configured, so no mailbox that stays configured is without its
    rights at any moment; another address of the same mailbox changes nothing in Exchange. Entries found
    in place are never removed. Addresses are resolved and checked (exist, two addresses of one mailbox,
    POP enabled) before the first change.
    """

    REPLACE_KEYS = ("tenant_id", "user", "cloud")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            *check_guid(news, "tenant_id", "the tenant (directory) id"),
            *check_guid(news, "user", "the service principal's object id"),
            *check_guid(news, "app_id", "the application (client) id"),
            *check_cloud(news),
            *self._check_mailboxes(news.get("mailboxes")),
        ]
        return permission_check(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = exchange_client(props["tenant_id"], props["cloud"])
        resolved = self._resolve(client, props, checked=set())
        principal = registered_principal(client, props["user"], props["app_id"])
        entries = [
            self._grant(client, props, principal, address, mailbox, previous=None)
            for address, mailbox in resolved.items()
        ]
        return CreateResult(self._id(props), self._outputs(props, entries))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = exchange_client(props["tenant_id"], props["cloud"])
        principal = principal_of(props["user"], client.get_service_principal(props["user"]), props["app_id"])
        entries = []
        for entry in props.get("entries") or ():
            mailbox = resolve(client, entry["mailbox_id"]) or resolve(client, entry["address"])
            if mailbox is None or mailbox.id != entry["mailbox_id"]:
                continue
            held = rights_on(client, mailbox.primary_address, principal)
            if held:
                entries.append(
                    {**entry, "primary_address": mailbox.primary_address, "access_rights": sorted(held)}
                )
        outputs = self._outputs(props, entries)
        claim_entries(outputs)
        return ReadResult(id_, outputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_keys(olds, news, self.REPLACE_KEYS)
        claim_entries(olds)
        entries = olds.get("entries") or []
        mailboxes, rights = news.get("mailboxes"), news.get("access_rights")
        changes = (
            bool(replaces)
            or is_unknown(mailboxes)
            or is_unknown(rights)
            or not same(olds.get("app_id"), news.get("app_id"))
            or folded(mailboxes) != folded([entry["address"] for entry in entries])
            or any(folded(entry["access_rights"]) != folded(rights) for entry in entries)
        )
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = exchange_client(news["tenant_id"], news["cloud"])
        previous = {entry["mailbox_id"]: entry for entry in olds.get("entries") or ()}
        resolved = self._resolve(client, news, checked=set(previous))
        principal = registered_principal(client, news["user"], news["app_id"])
        entries = [
            self._grant(client, news, principal, address, mailbox, previous=previous.get(mailbox.id))
            for address, mailbox in resolved.items()
        ]
        kept = {mailbox.id for mailbox in resolved.values()}
        wanted = set(news["access_rights"])
        for mailbox_id, entry in previous.items():
            if not entry["granted_by_stack"]:
                continue
            surplus = (
                set(entry["access_rights"])
                if mailbox_id not in kept
                else set(entry["access_rights"]) - wanted
            )
            if surplus:
                self._revoke(client, news["user"], entry, sorted(surplus))
        return UpdateResult(self._outputs(news, entries))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        client = exchange_client(props["tenant_id"], props["cloud"])
        for entry in props.get("entries") or ():
            if entry["granted_by_stack"]:
                self._revoke(client, props["user"], entry, entry["access_rights"])

    @staticmethod
    def _check_mailboxes(mailboxes: object) -> list[CheckFailure]:
        if is_unknown(mailboxes):
            return []
        if not isinstance(mailboxes, list | tuple) or not mailboxes:
            return [
                CheckFailure(
                    "mailboxes", "mailboxes must be a non-empty list of addresses like edi@contoso.com"
                )
            ]
        failures, seen = [], dict[str, str]()
        for mailbox in mailboxes:
            if is_unknown(mailbox):
                continue
            if not (isinstance(mailbox, str) and is_mailbox(mailbox)):
                failures.append(
                    CheckFailure(
                        "mailboxes",
                        f"mailboxes must hold e-mail addresses like edi@contoso.com, got {mailbox!r}",
                    )
                )
            elif mailbox.lower() in seen:
                failures.append(
                    CheckFailure("mailboxes", f"mailboxes lists {seen[mailbox.lower()]} and {mailbox} twice")
                )
            else:
                seen[mailbox.lower()] = mailbox
        return failures

    @staticmethod
    def _resolve(
        client: ExchangeClient, props: Mapping[str, Any], *, checked: set[str]
    ) -> dict[str, Mailbox]:
        """Each address with its mailbox; every mailbox not in ``checked`` must have POP enabled."""
        resolved = resolve_all(client, props["mailboxes"], tenant_id=props["tenant_id"])
        for mailbox in resolved.values():
            if mailbox.id not in checked:
                require_pop_mailbox(client, props["tenant_id"], mailbox.primary_address)
        return resolved

    @staticmethod
    def _grant(
        client: ExchangeClient,
        props: Mapping[str, Any],
        principal: Principal,
        address: str,
        mailbox: Mailbox,
        *,
        previous: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """Make sure the principal holds the wanted rights on ``mailbox``; the entry to record for it."""
        claim_mailbox(props["tenant_id"], props["user"], mailbox)
        wanted = set(props["access_rights"])
        held = rights_on(client, mailbox.primary_address, principal)
        granted = bool(previous and previous["granted_by_stack"])
        if not wanted <= held:
            client.add_mailbox_permission(
                mailbox.primary_address,
                props["user"],
                sorted(wanted - held),
                visible=lambda: wanted <= rights_on(client, mailbox.primary_address, principal),
            )
            held |= wanted
            granted = True
        return {
            "address": address,
            "mailbox_id": mailbox.id,
            "primary_address": mailbox.primary_address,
            "access_rights": sorted(held & wanted) if granted else sorted(held),
            "granted_by_stack": granted,
        }

    @staticmethod
    def _revoke(client: ExchangeClient, user: str, entry: Mapping[str, Any], rights: list[str]) -> None:
        mailbox = resolve(client, entry["mailbox_id"])
        if mailbox is not None:
            client.remove_mailbox_permission(mailbox.primary_address, user, rights)

    @staticmethod
    def _id(props: Mapping[str, Any]) -> str:
        return f"{props['tenant_id']}:{props['user']}".lower()

    @staticmethod
    def _outputs(props: Mapping[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "tenant_id": props["tenant_id"],
            "cloud": props.get("cloud", DEFAULT_CLOUD),
            "user": props["user"],
            "app_id": props["app_id"],
            "mailboxes": list(props["mailboxes"]),
            "access_rights": list(props["access_rights"]),
            "entries": entries,
        }
