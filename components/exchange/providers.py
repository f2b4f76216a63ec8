"""Dynamic providers for the Exchange Online registration and the first release's per-mailbox permission,
and what every Exchange provider shares (the client registry, input checks, the POP precondition).

``MailboxAccessProvider``, the mailbox permissions the program declares, is in
``components.exchange.mailbox_access``.

Providers construct without arguments and keep nothing on ``self``: the pickled provider is a bare class
reference to this module, so its path and the class names stay as they are. Credentials are read at call
time (``mscloud.auth``), and Exchange clients (``mscloud.exchange``) live in a process-wide registry keyed by
tenant and cloud, shared by the host's worker threads. Who holds which right on a mailbox is decided by
``mscloud.permissions``, the rules ``popctl`` applies too.

In ``diff``/``update``/``read``/``delete`` the ``olds``/``props`` are the stored *outputs* (the live values of
the last create, update or refresh), so ``diff`` compares live state with the new inputs and drift shows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
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
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN

from components.exchange.claims import claimed
from components.settings import is_mailbox
from mscloud.auth import shared_token_source
from mscloud.clouds import CLOUDS, DEFAULT_CLOUD, get_cloud
from mscloud.errors import Pop3OAuthError
from mscloud.exchange import ExchangeClient, ExchangeNotFound
from mscloud.ids import is_guid
from mscloud.mailboxes import no_such_mailbox, resolve
from mscloud.permissions import (
    ACCESS_RIGHTS,
    FULL_ACCESS,
    Principal,
    canonical_right,
    principal_of,
    registered_object_id,
    rights_on,
)

PRINCIPAL_LAG_ENV = "POP3_OAUTH_PRINCIPAL_LAG_SECONDS"
DEFAULT_PRINCIPAL_LAG_SECONDS = 120.0

_clients: dict[tuple[str, Any], ExchangeClient] = {}
_clients_lock = threading.Lock()


class ExchangeProviderError(Pop3OAuthError):
    """A precondition in the tenant is not met; the message says what to do."""


def exchange_client(tenant_id: str, cloud_name: str) -> ExchangeClient:
    """The process-wide client for this tenant and cloud, with the current endpoint overrides applied."""
    cloud = get_cloud(cloud_name).with_overrides()
    key = (tenant_id.lower(), cloud)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = ExchangeClient(
                tenant_id, cloud, shared_token_source(), principal_lag_seconds=principal_lag_seconds()
            )
        return client


def principal_lag_seconds(environ: Mapping[str, str] | None = None) -> float:
    """How long an Add-MailboxPermission waits for a new service principal to replicate:
    ``POP3_OAUTH_PRINCIPAL_LAG_SECONDS`` (tests shorten it), else 120 s."""
    value = (os.environ if environ is None else environ).get(PRINCIPAL_LAG_ENV, "").strip()
    if not value:
        return DEFAULT_PRINCIPAL_LAG_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ExchangeProviderError(f"{PRINCIPAL_LAG_ENV} must be a number of seconds >= 0 (got {value!r})")
    return seconds


def is_unknown(value: object) -> bool:
    """Whether a value is not known yet (a preview): the host hands over ``Unknown`` objects, tests the
    wire sentinel."""
    return value is UNKNOWN or isinstance(value, Unknown)


def same(a: object, b: object) -> bool:
    """Ids and addresses compare case-insensitively; an unknown value never equals anything."""
    if is_unknown(a) or is_unknown(b):
        return False
    return str(a).lower() == str(b).lower()


def changed_keys(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    return [key for key in keys if not same(olds.get(key), news.get(key))]


def check_guid(props: Mapping[str, Any], key: str, what: str) -> list[CheckFailure]:
    value = props.get(key)
    if is_unknown(value) or (isinstance(value, str) and is_guid(value)):
        return []
    return [
        CheckFailure(
            key, f"{key} must be {what} as a GUID like 00000000-0000-0000-0000-000000000000, got {value!r}"
        )
    ]


def check_cloud(props: Mapping[str, Any]) -> list[CheckFailure]:
    value = props.get("cloud", DEFAULT_CLOUD)
    if is_unknown(value) or (isinstance(value, str) and value in CLOUDS):
        return []
    return [CheckFailure("cloud", f"cloud must be one of {', '.join(sorted(CLOUDS))}, got {value!r}")]


def check_rights(rights: object) -> list[CheckFailure]:
    """``access_rights`` must be a non-empty list of the rights Add-MailboxPermission takes."""
    if is_unknown(rights):
        return []
    valid = ", ".join(sorted(ACCESS_RIGHTS.values()))
    if not isinstance(rights, list | tuple) or not rights:
        return [CheckFailure("access_rights", f"access_rights must be a non-empty list of: {valid}")]
    unknown = [right for right in rights if not is_unknown(right) and str(right).lower() not in ACCESS_RIGHTS]
    if unknown:
        return [CheckFailure("access_rights", f"unknown access rights {unknown}; valid: {valid}")]
    return []


def canonical_rights(rights: object) -> object:
    """Known rights spelt as Exchange spells them, sorted and unique; unknowns left as they are."""
    if not isinstance(rights, list | tuple) or any(is_unknown(right) for right in rights):
        return rights
    return sorted({canonical_right(str(right)) for right in rights})


def permission_check(news: Mapping[str, Any], failures: list[CheckFailure]) -> CheckResult:
    """A permission resource's check: ``cloud`` defaulted, ``access_rights`` checked and spelt canonically."""
    rights = news.get("access_rights", [FULL_ACCESS])
    inputs = {**news, "cloud": news.get("cloud", DEFAULT_CLOUD), "access_rights": canonical_rights(rights)}
    return CheckResult(inputs, [*failures, *check_rights(rights)])


def registered_principal(client: ExchangeClient, user: str, *also: str) -> Principal:
    """The service principal ``user`` as Exchange registered it (``also``: its app id); fails with the
    remedy when Exchange has no registration of it."""
    registration = client.get_service_principal(user)
    if registration is None:
        raise ExchangeProviderError(
            f"Service principal {user} is not registered in Exchange (New-ServicePrincipal): create the "
            "ServicePrincipalRegistration first (depends_on), and pass the service principal's object id "
            "as user."
        )
    return principal_of(user, registration, *also)


def require_pop_mailbox(client: ExchangeClient, tenant_id: str, mailbox: str) -> None:
    """Fail with the remedy unless ``mailbox`` exists and has POP enabled (Get-CASMailbox)."""
    settings = client.get_cas_mailbox(mailbox)
    if settings is None:
        raise ExchangeProviderError(no_such_mailbox(mailbox, tenant_id))
    if not settings["PopEnabled"]:
        raise ExchangeProviderError(
            f"POP3 is disabled for mailbox {mailbox}: enable it with "
            f"`Set-CASMailbox -Identity {mailbox} -PopEnabled $true` (or in the Exchange admin center: "
            "Recipients > Mailboxes > the mailbox > Email apps > POP3), then run pulumi up again."
        )


class ServicePrincipalRegistrationProvider(ResourceProvider):
    """``New-ServicePrincipal``: registers the app's Entra service principal in Exchange Online.

    Inputs: ``tenant_id``, ``app_id`` (client id), ``object_id`` (the *service principal's* object id,
    never the app registration's), ``display_name``, ``cloud``. Outputs: the same keys with live values.
    The id is the lower-case object id. Only the display name can change in place.
    """

    REPLACE_KEYS = ("tenant_id", "app_id", "object_id", "cloud")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            *check_guid(news, "tenant_id", "the tenant (directory) id"),
            *check_guid(news, "app_id", "the application (client) id"),
            *check_guid(news, "object_id", "the service principal's (enterprise application's) object id"),
            *check_cloud(news),
        ]
        name = news.get("display_name")
        if not is_unknown(name) and not (isinstance(name, str) and name.strip() and len(name) <= 256):
            failures.append(
                CheckFailure(
                    "display_name", "display_name must be a non-empty string of at most 256 characters"
                )
            )
        return CheckResult({**news, "cloud": news.get("cloud", DEFAULT_CLOUD)}, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = exchange_client(props["tenant_id"], props["cloud"])
        live = client.get_service_principal(props["object_id"]) or self._absent_or_fail(client, props)
        if not same(live.get("AppId"), props["app_id"]):
            raise ExchangeProviderError(
                f"Exchange already has object id {props['object_id']} registered "
                f"for app {live.get('AppId')}, "
                f"not {props['app_id']}: check object_id, or remove that registration with "
                f"Remove-ServicePrincipal -Identity {props['object_id']}"
            )
        if live.get("DisplayName") != props["display_name"]:
            client.set_service_principal(props["object_id"], props["display_name"])
            live = {**live, "DisplayName": props["display_name"]}
        return CreateResult(props["object_id"].lower(), self._outputs(props, live))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        live = exchange_client(props["tenant_id"], props["cloud"]).get_service_principal(id_)
        if live is None:
            return ReadResult(None, {})
        return ReadResult(id_, self._outputs(props, live))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_keys(olds, news, self.REPLACE_KEYS)
        renamed = olds.get("display_name") != news.get("display_name") or is_unknown(news.get("display_name"))
        return DiffResult(changes=bool(replaces) or renamed, replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        exchange_client(news["tenant_id"], news["cloud"]).set_service_principal(id_, news["display_name"])
        return UpdateResult(
            {**self._outputs(news, {}), "app_id": olds["app_id"], "object_id": olds["object_id"]}
        )

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = exchange_client(props["tenant_id"], props["cloud"])
        live = client.get_service_principal(id_)
        if live is not None and same(live.get("AppId"), props["app_id"]):
            client.remove_service_principal(id_)

    @staticmethod
    def _absent_or_fail(client: ExchangeClient, props: Mapping[str, Any]) -> dict[str, Any]:
        """Create the registration, unless the app is already registered under another object id."""
        other = client.get_service_principal(props["app_id"])
        if other is not None:
            raise ExchangeProviderError(
                f"App {props['app_id']} is already registered in Exchange "
                f"with object id {other.get('ObjectId')}, "
                f"not {props['object_id']}. That is usually the app registration's object id instead of the "
                "enterprise application's: remove it with "
                f"Remove-ServicePrincipal -Identity {other.get('ObjectId')} "
                "and run pulumi up again."
            )
        return client.new_service_principal(props["app_id"], props["object_id"], props["display_name"])

    @staticmethod
    def _outputs(props: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "tenant_id": props["tenant_id"],
            "cloud": props.get("cloud", DEFAULT_CLOUD),
            "app_id": live.get("AppId", props.get("app_id")),
            "object_id": registered_object_id(live) or props.get("object_id"),
            "display_name": live.get("DisplayName", props.get("display_name")),
        }


class MailboxPermissionProvider(ResourceProvider):
    """``Add-MailboxPermission``: gives the service principal access rights (FullAccess) on one mailbox.

    Inputs: ``tenant_id``, ``mailbox`` (address), ``user`` (the service principal's object id),
    ``access_rights`` (default ``["FullAccess"]``), ``cloud``. Outputs: the same keys with live values, plus
    ``principal_names`` (how Exchange may show the principal in ``User``: object id, app id, display name).
    The id is ``<mailbox>:<user>`` in lower case.

    Access rights change in place (Add-/Remove-MailboxPermission for the difference): a replacement would
    revoke FullAccess before granting it again and break POP3 logins in between.
    """

    REPLACE_KEYS = ("tenant_id", "mailbox", "user", "cloud")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            *check_guid(news, "tenant_id", "the tenant (directory) id"),
            *check_guid(news, "user", "the service principal's object id"),
            *check_cloud(news),
        ]
        mailbox = news.get("mailbox")
        if not is_unknown(mailbox) and not (isinstance(mailbox, str) and is_mailbox(mailbox)):
            failures.append(
                CheckFailure(
                    "mailbox", f"mailbox must be an e-mail address like edi@contoso.com, got {mailbox!r}"
                )
            )
        return permission_check(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = exchange_client(props["tenant_id"], props["cloud"])
        require_pop_mailbox(client, props["tenant_id"], props["mailbox"])
        principal = registered_principal(client, props["user"])
        wanted = set(props["access_rights"])
        held = rights_on(client, props["mailbox"], principal)
        if not wanted <= held:
            client.add_mailbox_permission(
                props["mailbox"],
                props["user"],
                sorted(wanted - held),
                visible=lambda: wanted <= rights_on(client, props["mailbox"], principal),
            )
            held |= wanted
        return CreateResult(self._id(props), self._outputs(props, held, set(principal.names)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = exchange_client(props["tenant_id"], props["cloud"])
        user = props["user"]
        # The names recorded at create save a Get-ServicePrincipal; outside a filtered answer only the
        # object id counts (mscloud.permissions), and the registration is read when nothing was found.
        principal = Principal(
            user, frozenset({user}), frozenset({user, *(props.get("principal_names") or ())})
        )
        try:
            held = rights_on(client, props["mailbox"], principal)
            if not held:
                principal = principal_of(user, client.get_service_principal(user))
                held = rights_on(client, props["mailbox"], principal)
        except ExchangeNotFound:
            held = set()
        if not held:
            return ReadResult(None, {})
        return ReadResult(id_, self._outputs(props, held, set(principal.names)))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_keys(olds, news, self.REPLACE_KEYS)
        rights = news.get("access_rights")
        regranted = is_unknown(rights) or folded(olds.get("access_rights")) != folded(rights)
        return DiffResult(changes=bool(replaces) or regranted, replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = exchange_client(news["tenant_id"], news["cloud"])
        wanted, held = set(news["access_rights"]), set(olds.get("access_rights") or ())
        if wanted - held:
            client.add_mailbox_permission(news["mailbox"], news["user"], sorted(wanted - held))
        if held - wanted:
            client.remove_mailbox_permission(news["mailbox"], news["user"], sorted(held - wanted))
        return UpdateResult(self._outputs(news, wanted, set(olds.get("principal_names") or ())))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Remove the rights - unless a :class:`MailboxAccessProvider` took this mailbox over in this run.

        The program declares no MailboxPermission since MailboxAccess replaced it, so this runs when a
        stack moves to MailboxAccess (the MailboxAccess, created or diffed earlier in the same ``pulumi
        up``, holds the entry now and must keep it) or on ``pulumi destroy`` of a stack not moved yet.
        """
        client = exchange_client(props["tenant_id"], props["cloud"])
        if self._taken_over(client, props):
            return
        client.remove_mailbox_permission(
            props["mailbox"], props["user"], props.get("access_rights") or [FULL_ACCESS]
        )

    @staticmethod
    def _taken_over(client: ExchangeClient, props: Mapping[str, Any]) -> bool:
        """Whether a MailboxAccess of this provider process holds this mailbox for this user."""
        held = claimed(props["tenant_id"], props["user"])
        if not held:
            return False
        if props["mailbox"].lower() in held:
            return True
        mailbox = resolve(client, props["mailbox"])
        return mailbox is not None and mailbox.id in held

    @staticmethod
    def _id(props: Mapping[str, Any]) -> str:
        return f"{props['mailbox']}:{props['user']}".lower()

    @staticmethod
    def _outputs(props: Mapping[str, Any], held: set[str], names: set[str]) -> dict[str, Any]:
        return {
            "tenant_id": props["tenant_id"],
            "cloud": props.get("cloud", DEFAULT_CLOUD),
            "mailbox": props["mailbox"],
            "user": props["user"],
            "access_rights": sorted(held),
            "principal_names": sorted(names),
        }


def folded(values: object) -> set[str]:
    """A list's items in lower case, as a set (anything else: empty)."""
    return {str(value).lower() for value in values} if isinstance(values, list | tuple) else set()
