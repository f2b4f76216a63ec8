"""A fake of the Exchange Online admin endpoint ``POST /adminapi/beta/{tenant}/InvokeCommand``.

It keeps per-tenant state (service principals, mailboxes with ``PopEnabled``, mailbox permissions), answers
every cmdlet of ``/work/shared/reference/exchange-online.md`` and can misbehave in each documented way
(see :class:`ExchangeFaults`). Bearer tokens are checked against an :class:`sandbox.entra.EntraFake`:
signature, audience ``https://outlook.office365.com``, tenant, expiry, and either the app role
``Exchange.ManageAsApp`` (app-only, anchor ``APP:SystemMailbox{...}@tenant``) or the scope
``AdminApi.AccessAsUser.All`` (delegated, anchor ``UPN:<upn>``); otherwise 401/403.

Typical use::

    exchange = ExchangeFake(entra)
    with HttpsServer(exchange.handle, certs) as server:
        exchange.base_url = server.base_url
        exchange.add_mailbox(TENANT, "edi@contoso.com")
        exchange.faults.throttle_next = 2
        ...
        exchange.requests["InvokeCommand"], exchange.cmdlets["Get-MailboxPermission"]
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt

from sandbox.entra import DELEGATED_ADMIN_SCOPE, EXCHANGE_RESOURCE, EntraFake
from sandbox.tls import HttpRequest, HttpResponse

MANAGE_AS_APP = "Exchange.ManageAsApp"
APP_ANCHOR = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"
NOT_FOUND_CLASS = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"


@dataclass
class ExchangeFaults:
    """Switchable misbehaviour; counters count down per InvokeCommand request.

    - ``throttle_next``: answer 429 with ``Retry-After: retry_after`` (seconds).
    - ``unavailable_next``: answer ``unavailable_status`` (503 or 504) without executing the cmdlet;
      ``unavailable_after_execute_next``: execute the cmdlet, then answer 503 anyway (outcome unknown).
    - ``lying_gzip``: 401/403 bodies are NUL bytes labelled ``Content-Encoding: gzip``.
    - ``not_found_status`` (404/400/500) and ``not_found_style``: ``pipe`` (``errId|Class|text``),
      ``json`` (details message is itself JSON) or ``plain`` (text only, no class).
    - ``replication_lag_reads``: an object created by New-/Add- stays invisible to that many Get- reads.
    - ``principal_lag_adds``: a service principal registered by New-ServicePrincipal while it is set is
      "couldn't be found" (ManagementObjectNotFoundException) for that many Add-MailboxPermission naming it
      as ``User``, as while Exchange replicates a new principal.
    - ``page_size``: Get- results are paged with ``@odata.nextLink``; ``next_link_base`` overrides its host.
    - ``annotations``: objects carry ``@odata.type`` and ``X@odata.type`` annotation keys.
    - ``access_rights_shape``: ``list``, ``string`` (``"FullAccess, ReadPermission"``)
      or ``object`` (``{"value": [...]}``).
    - ``permission_user``: what Get-MailboxPermission shows as ``User`` for a service principal.
    - ``remove_response``: ``empty-value``, ``empty-body`` or ``204``.
    """

    throttle_next: int = 0
    retry_after: int = 1
    unavailable_next: int = 0
    unavailable_status: int = 503
    unavailable_after_execute_next: int = 0
    lying_gzip: bool = True
    not_found_status: int = 404
    not_found_style: Literal["pipe", "json", "plain"] = "pipe"
    replication_lag_reads: int = 0
    principal_lag_adds: int = 0
    page_size: int = 0
    next_link_base: str | None = None
    annotations: bool = True
    access_rights_shape: Literal["list", "string", "object"] = "list"
    permission_user: Literal["display_name", "object_id", "app_id"] = "display_name"
    remove_response: Literal["empty-value", "empty-body", "204"] = "empty-value"


@dataclass(frozen=True)
class AccessLoss:
    """FullAccess of ``user`` (a service principal object id) on mailbox ``guid`` went away at ``seq``."""

    seq: int
    tenant_id: str
    guid: str
    address: str
    user: str


@dataclass(frozen=True)
class ExchangeWrite:
    """A cmdlet that changed something; ``seq`` is ``time.monotonic_ns()`` (the Graph fake's clock too)."""

    seq: int
    tenant_id: str
    cmdlet: str
    parameters: dict[str, Any]


@dataclass
class FakeServicePrincipal:
    app_id: str
    object_id: str
    display_name: str
    invisible_reads: int = 0
    unknown_to_adds: int = 0


@dataclass
class FakeMailbox:
    """A mailbox: ``address`` is its primary SMTP address, ``aliases`` its other ones; ``guid`` its
    ExchangeGuid and ``directory_id`` its ExternalDirectoryObjectId never change."""

    address: str
    pop_enabled: bool = True
    permissions: dict[str, set[str]] = field(default_factory=dict)
    invisible_reads: dict[str, int] = field(default_factory=dict)
    aliases: set[str] = field(default_factory=set)
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    directory_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    recipient_type: str = "UserMailbox"

    def known_as(self, identity: str) -> bool:
        """Whether ``identity`` names this mailbox (an address, the ExchangeGuid or the directory id)."""
        wanted = identity.lower()
        return wanted in {self.address.lower(), self.guid, self.directory_id} | {
            alias.lower() for alias in self.aliases
        }


@dataclass
class FakeTenant:
    service_principals: dict[str, FakeServicePrincipal] = field(default_factory=dict)
    mailboxes: dict[str, FakeMailbox] = field(default_factory=dict)


class CmdletError(Exception):
    def __init__(
        self, status: int, text: str, exception_class: str = "System.InvalidOperationException"
    ) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.exception_class = exception_class


class ExchangeFake:
    """In-memory Exchange Online admin API. Thread-safe; serve :meth:`handle` with ``HttpsServer``.

    Set :attr:`base_url` to the server's URL before the first request (paging links use it).
    ``requests`` counts ``InvokeCommand`` requests (pages included); ``cmdlets`` counts per cmdlet;
    ``writes`` logs every cmdlet that succeeded and was not a ``Get-`` (for ordering checks);
    ``access_losses`` every moment a service principal lost FullAccess on a mailbox, by any means.
    """

    def __init__(self, entra: EntraFake) -> None:
        self.entra = entra
        self.base_url = ""
        self.faults = ExchangeFaults()
        self.tenants: dict[str, FakeTenant] = {}
        self.requests: Counter[str] = Counter()
        self.cmdlets: Counter[str] = Counter()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.writes: list[ExchangeWrite] = []
        self.access_losses: list[AccessLoss] = []
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.RLock()

    def counts(self) -> dict[str, int]:
        """HTTP requests served so far: ``token`` (by the EntraFake) and ``InvokeCommand``."""
        return {"token": self.entra.requests["token"], "InvokeCommand": self.requests["InvokeCommand"]}

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.cmdlets.clear()
            self.calls.clear()
            self.entra.requests.clear()

    def tenant(self, tenant_id: str) -> FakeTenant:
        with self._lock:
            return self.tenants.setdefault(tenant_id.lower(), FakeTenant())

    def add_mailbox(
        self,
        tenant_id: str,
        address: str,
        *,
        pop_enabled: bool = True,
        aliases: Iterable[str] = (),
        recipient_type: str = "UserMailbox",
    ) -> FakeMailbox:
        mailbox = FakeMailbox(
            address=address, pop_enabled=pop_enabled, aliases=set(aliases), recipient_type=recipient_type
        )
        self.tenant(tenant_id).mailboxes[mailbox.guid] = mailbox
        return mailbox

    def mailbox(self, tenant_id: str, identity: str) -> FakeMailbox:
        """The mailbox ``identity`` (any of its addresses or ids) names; KeyError when there is none."""
        for mailbox in self.tenant(tenant_id).mailboxes.values():
            if mailbox.known_as(identity):
                return mailbox
        raise KeyError(identity)

    def readdress_mailbox(self, tenant_id: str, identity: str, new_address: str) -> FakeMailbox:
        """Out of band: make ``new_address`` the primary address; the old one stays as an alias."""
        mailbox = self.mailbox(tenant_id, identity)
        mailbox.aliases = (mailbox.aliases | {mailbox.address}) - {new_address}
        mailbox.address = new_address
        return mailbox

    def add_service_principal(self, tenant_id: str, app_id: str, object_id: str, display_name: str) -> None:
        """Register a service principal out of band (as an administrator with PowerShell would)."""
        principal = FakeServicePrincipal(app_id, object_id, display_name)
        self.tenant(tenant_id).service_principals[object_id.lower()] = principal

    def remove_service_principal(self, tenant_id: str, object_id: str) -> None:
        """Out-of-band deletion."""
        del self.tenant(tenant_id).service_principals[object_id.lower()]

    def recreate_service_principal(self, tenant_id: str, object_id: str, new_object_id: str) -> None:
        """Out of band: delete the registration and register the same app under another object id."""
        old = self.tenant(tenant_id).service_principals.pop(object_id.lower())
        self.add_service_principal(tenant_id, old.app_id, new_object_id, old.display_name)

    def service_principal(self, tenant_id: str, object_id: str) -> FakeServicePrincipal | None:
        return self.tenant(tenant_id).service_principals.get(object_id.lower())

    def grant(self, tenant_id: str, mailbox: str, user: str, rights: set[str]) -> None:
        """Out of band: give ``user`` (a service principal object id) ``rights`` on ``mailbox``."""
        self.mailbox(tenant_id, mailbox).permissions.setdefault(user.lower(), set()).update(rights)

    def revoke(self, tenant_id: str, mailbox: str, user: str) -> None:
        """Out of band: remove ``user``'s whole access control entry from ``mailbox``."""
        found = self.mailbox(tenant_id, mailbox)
        held = found.permissions.pop(user.lower(), set())
        self._note_loss(tenant_id, found, user, held, set())

    def rights(self, tenant_id: str, mailbox: str, user: str) -> set[str]:
        return set(self.mailbox(tenant_id, mailbox).permissions.get(user.lower(), set()))

    def losses(self, tenant_id: str) -> list[AccessLoss]:
        """Every loss of FullAccess in ``tenant_id`` so far, oldest first."""
        with self._lock:
            return [loss for loss in self.access_losses if loss.tenant_id == tenant_id.lower()]

    def _note_loss(
        self, tenant_id: str, mailbox: FakeMailbox, user: str, before: set[str], after: set[str]
    ) -> None:
        if "FullAccess" in before and "FullAccess" not in after:
            self.access_losses.append(
                AccessLoss(
                    time.monotonic_ns(), tenant_id.lower(), mailbox.guid, mailbox.address, user.lower()
                )
            )

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Serve one HTTP request (the ``HttpsServer`` handler)."""
        parts = request.path.strip("/").split("/")
        if (
            request.method != "POST"
            or len(parts) != 4
            or parts[:2] != ["adminapi", "beta"]
            or parts[3] != "InvokeCommand"
        ):
            return _json(404, {"error": {"code": "NotFound", "message": "No such endpoint"}})
        tenant_id = parts[2].lower()
        with self._lock:
            self.requests["InvokeCommand"] += 1
        denied = self._authorize(request, tenant_id)
        if denied is not None:
            return denied
        skip = request.query.get("$skiptoken", [None])[0]
        if skip is not None:
            return self._page(tenant_id, skip)
        try:
            envelope = json.loads(request.body)["CmdletInput"]
            cmdlet, parameters = envelope["CmdletName"], dict(envelope.get("Parameters") or {})
        except (ValueError, KeyError, TypeError):
            return _json(400, {"error": {"code": "BadRequest", "message": "Invalid CmdletInput"}})
        with self._lock:
            self.cmdlets[cmdlet] += 1
            self.calls.append((cmdlet, parameters))
            early = self._early_fault()
            if early is not None:
                return early
            try:
                result = self._execute(self.tenant(tenant_id), cmdlet, parameters)
            except CmdletError as error:
                return self._error(error)
            if not cmdlet.startswith("Get-"):
                self.writes.append(ExchangeWrite(time.monotonic_ns(), tenant_id, cmdlet, dict(parameters)))
            if self.faults.unavailable_after_execute_next > 0:
                self.faults.unavailable_after_execute_next -= 1
                return _json(503, {"error": {"code": "ServiceUnavailable", "message": "Service Unavailable"}})
            return self._success(tenant_id, cmdlet, result)

    def _authorize(self, request: HttpRequest, tenant_id: str) -> HttpResponse | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return self._denied(401, "Missing bearer token")
        try:
            claims = jwt.decode(
                header[len("Bearer ") :],
                self.entra.public_key_pem,
                algorithms=["RS256"],
                audience=EXCHANGE_RESOURCE,
                options={"require": ["exp", "tid"]},
            )
        except jwt.PyJWTError as error:
            return self._denied(401, f"Invalid token: {type(error).__name__}")
        if str(claims["tid"]).lower() != tenant_id:
            return self._denied(401, "Token issued for another tenant")
        anchor = request.headers.get("x-anchormailbox", "")
        if "scp" in claims:
            if DELEGATED_ADMIN_SCOPE not in str(claims["scp"]).split():
                return self._denied(403, "Delegated token lacks AdminApi.AccessAsUser.All")
            if anchor.lower() != f"upn:{claims.get('upn', '')}".lower():
                return _json(
                    400, {"error": {"code": "BadRequest", "message": "X-AnchorMailbox does not match"}}
                )
            return None
        if MANAGE_AS_APP not in claims.get("roles", []):
            return self._denied(403, "The role Exchange.ManageAsApp is missing")
        if anchor.lower() != f"{APP_ANCHOR}{tenant_id}".lower():
            return _json(400, {"error": {"code": "BadRequest", "message": "X-AnchorMailbox does not match"}})
        return None

    def _denied(self, status: int, text: str) -> HttpResponse:
        if self.faults.lying_gzip:
            return HttpResponse(
                status, b"\x00" * 16, {"Content-Encoding": "gzip", "Content-Type": "text/html"}
            )
        return _json(
            status, {"error": {"code": "Unauthorized" if status == 401 else "Forbidden", "message": text}}
        )

    def _early_fault(self) -> HttpResponse | None:
        faults = self.faults
        if faults.throttle_next > 0:
            faults.throttle_next -= 1
            body = {
                "error": {"code": "TooManyRequests", "message": "Too many requests. Retry after some time."}
            }
            response = _json(429, body)
            response.headers = {
                **response.headers,
                "Retry-After": str(faults.retry_after),
                "Rate-Limit-Remaining": "0",
            }
            return response
        if faults.unavailable_next > 0:
            faults.unavailable_next -= 1
            return _json(
                faults.unavailable_status, {"error": {"code": "ServiceUnavailable", "message": "Busy"}}
            )
        return None

    def _execute(self, tenant: FakeTenant, cmdlet: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        handlers = {
            "New-ServicePrincipal": self._new_service_principal,
            "Get-ServicePrincipal": self._get_service_principal,
            "Set-ServicePrincipal": self._set_service_principal,
            "Remove-ServicePrincipal": self._remove_service_principal,
            "Add-MailboxPermission": self._add_mailbox_permission,
            "Get-MailboxPermission": self._get_mailbox_permission,
            "Remove-MailboxPermission": self._remove_mailbox_permission,
            "Get-CASMailbox": self._get_cas_mailbox,
            "Get-Mailbox": self._get_mailbox,
        }
        if cmdlet not in handlers:
            raise CmdletError(400, f"The term '{cmdlet}' is not recognized as the name of a cmdlet.")
        return handlers[cmdlet](tenant, parameters)

    def _not_found(self, what: str) -> CmdletError:
        return CmdletError(
            self.faults.not_found_status,
            f"The operation couldn't be performed because object '{what}' couldn't be found on "
            "'AM0PR01A001DC01.EURPR01A001.prod.outlook.com'.",
            NOT_FOUND_CLASS,
        )

    def _find_principal(
        self, tenant: FakeTenant, identity: str, *, visible_only: bool
    ) -> FakeServicePrincipal:
        wanted = identity.lower()
        for principal in tenant.service_principals.values():
            names = {principal.object_id.lower(), principal.app_id.lower(), principal.display_name.lower()}
            if wanted in names:
                if visible_only and principal.invisible_reads > 0:
                    principal.invisible_reads -= 1
                    break
                return principal
        raise self._not_found(identity)

    def _new_service_principal(self, tenant: FakeTenant, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        app_id, object_id = str(parameters["AppId"]), str(parameters["ObjectId"])
        for principal in tenant.service_principals.values():
            if principal.app_id.lower() == app_id.lower() or principal.object_id.lower() == object_id.lower():
                raise CmdletError(400, f"A service principal with AppId '{app_id}' already exists.")
        display_name = str(parameters.get("DisplayName") or app_id)
        principal = FakeServicePrincipal(
            app_id,
            object_id,
            display_name,
            self.faults.replication_lag_reads,
            self.faults.principal_lag_adds,
        )
        tenant.service_principals[object_id.lower()] = principal
        return [self._principal_object(principal)]

    def _get_service_principal(self, tenant: FakeTenant, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        identity = parameters.get("Identity")
        if identity is None:
            return [
                self._principal_object(p)
                for p in tenant.service_principals.values()
                if p.invisible_reads == 0
            ]
        return [self._principal_object(self._find_principal(tenant, str(identity), visible_only=True))]

    def _set_service_principal(self, tenant: FakeTenant, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        principal = self._find_principal(tenant, str(parameters["Identity"]), visible_only=False)
        principal.display_name = str(parameters["DisplayName"])
        return []

    def _remove_service_principal(
        self, tenant: FakeTenant, parameters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        principal = self._find_principal(tenant, str(parameters["Identity"]), visible_only=False)
        del tenant.service_principals[principal.object_id.lower()]
        return []

    def _mailbox(self, tenant: FakeTenant, identity: str) -> FakeMailbox:
        for mailbox in tenant.mailboxes.values():
            if mailbox.known_as(identity):
                return mailbox
        raise self._not_found(identity)

    def _get_mailbox(self, tenant: FakeTenant, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        mailbox = self._mailbox(tenant, str(parameters["Identity"]))
        return [
            {
                "Identity": mailbox.address.split("@")[0],
                "Name": mailbox.address.split("@")[0],
                "DisplayName": mailbox.address.split("@")[0].upper(),
                "PrimarySmtpAddress": mailbox.address,
                "EmailAddresses": [
                    f"SMTP:{mailbox.address}",
                    *(f"smtp:{a}" for a in sorted(mailbox.aliases)),
                ],
                "ExchangeGuid": mailbox.guid,
                "ExternalDirectoryObjectId": mailbox.directory_id,
                "Guid": str(uuid.uuid5(uuid.NAMESPACE_OID, mailbox.guid)),
                "RecipientTypeDetails": mailbox.recipient_type,
            }
        ]

    def _add_mailbox_permission(self, tenant: FakeTenant, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        mailbox = self._mailbox(tenant, str(parameters["Identity"]))
        principal = self._find_principal(tenant, str(parameters["User"]), visible_only=False)
        if principal.unknown_to_adds > 0:
            principal.unknown_to_adds -= 1
            raise self._not_found(str(parameters["User"]))
        rights = parameters.get("AccessRights") or ["FullAccess"]
        rights = [rights] if isinstance(rights, str) else list(rights)
        key = principal.object_id.lower()
        mailbox.permissions.setdefault(key, set()).update(rights)
        mailbox.invisible_reads[key] = self.faults.replication_lag_reads
        return [self._entry(mailbox, self._user_label(principal), mailbox.permissions[key])]

    def _get_mailbox_permission(self, tenant: FakeTenant, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        mailbox = self._mailbox(tenant, str(parameters["Identity"]))
        entries = [
            self._entry(mailbox, "NT AUTHORITY\\SELF", {"FullAccess", "ReadPermission"}),
            self._entry(mailbox, "EURPR01A001\\Organization Management", {"FullAccess"}, inherited=True),
        ]
        wanted = str(parameters.get("User", "")).lower()
        for key, rights in mailbox.permissions.items():
            if mailbox.invisible_reads.get(key, 0) > 0:
                mailbox.invisible_reads[key] -= 1
                continue
            principal = tenant.service_principals.get(key)
            label = self._user_label(principal) if principal else key
            names = {key, label.lower()} | ({principal.app_id.lower()} if principal else set())
            if not wanted or wanted in names:
                entries.append(self._entry(mailbox, label, rights))
        return entries if not wanted else entries[2:]

    def _remove_mailbox_permission(
        self, tenant: FakeTenant, parameters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        mailbox = self._mailbox(tenant, str(parameters["Identity"]))
        user = str(parameters["User"])
        principal = next(
            (
                p
                for p in tenant.service_principals.values()
                if user.lower() in {p.object_id.lower(), p.app_id.lower()}
            ),
            None,
        )
        key = principal.object_id.lower() if principal else user.lower()
        rights = parameters.get("AccessRights") or []
        rights = {rights} if isinstance(rights, str) else set(rights)
        held = mailbox.permissions.get(key, set())
        before = set(held)
        if not held & rights:
            raise CmdletError(
                400,
                f'Can\'t remove the access control entry on the object "{mailbox.address}" for account '
                f'"{user}" because the ACE doesn\'t exist on the object.',
            )
        held -= rights
        if not held:
            mailbox.permissions.pop(key, None)
        tenant_id = next(tid for tid, known in self.tenants.items() if known is tenant)
        self._note_loss(tenant_id, mailbox, key, before, held)
        return []

    def _get_cas_mailbox(self, tenant: FakeTenant, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        mailbox = self._mailbox(tenant, str(parameters["Identity"]))
        return [
            {
                "Identity": mailbox.address.split("@")[0],
                "PrimarySmtpAddress": mailbox.address,
                "PopEnabled": mailbox.pop_enabled,
                "ImapEnabled": True,
                "PopUseProtocolDefaults": True,
            }
        ]

    def _user_label(self, principal: FakeServicePrincipal) -> str:
        if self.faults.permission_user == "object_id":
            return principal.object_id
        if self.faults.permission_user == "app_id":
            return principal.app_id
        return principal.display_name

    def _principal_object(self, principal: FakeServicePrincipal) -> dict[str, Any]:
        return {
            "Identity": principal.object_id,
            "ObjectId": principal.object_id,
            "AppId": principal.app_id,
            "DisplayName": principal.display_name,
            "Name": principal.object_id,
            "Guid": str(uuid.uuid5(uuid.NAMESPACE_URL, principal.object_id)),
        }

    def _entry(
        self, mailbox: FakeMailbox, user: str, rights: set[str], *, inherited: bool = False
    ) -> dict[str, Any]:
        ordered = sorted(rights)
        shape = self.faults.access_rights_shape
        access: Any = (
            ordered if shape == "list" else ", ".join(ordered) if shape == "string" else {"value": ordered}
        )
        return {
            "Identity": mailbox.address.split("@")[0],
            "User": user,
            "AccessRights": access,
            "IsInherited": inherited,
            "Deny": False,
            "InheritanceType": "All",
        }

    def _annotate(self, item: dict[str, Any]) -> dict[str, Any]:
        if not self.faults.annotations:
            return item
        annotated: dict[str, Any] = {"@odata.type": "#Exchange.GenericHashTable"}
        for key, value in item.items():
            annotated[key] = value
            if isinstance(value, list):
                annotated[f"{key}@odata.type"] = "#Collection(String)"
        return annotated

    def _success(self, tenant_id: str, cmdlet: str, result: list[dict[str, Any]]) -> HttpResponse:
        if cmdlet.startswith("Remove-"):
            if self.faults.remove_response == "204":
                return HttpResponse(204)
            if self.faults.remove_response == "empty-body":
                return HttpResponse(200)
        items = [self._annotate(item) for item in result]
        size = self.faults.page_size
        if size and len(items) > size and cmdlet.startswith("Get-"):
            return self._paged(tenant_id, items, size)
        return _json(200, self._envelope(tenant_id, items, None))

    def _paged(self, tenant_id: str, items: list[dict[str, Any]], size: int) -> HttpResponse:
        token = uuid.uuid4().hex
        self._pages[token] = items[size:]
        return _json(200, self._envelope(tenant_id, items[:size], token))

    def _page(self, tenant_id: str, token: str) -> HttpResponse:
        with self._lock:
            rest = self._pages.pop(token, None)
            if rest is None:
                return _json(400, {"error": {"code": "BadRequest", "message": "Invalid skip token"}})
            size = self.faults.page_size or len(rest)
            if len(rest) > size:
                return self._paged(tenant_id, rest, size)
            return _json(200, self._envelope(tenant_id, rest, None))

    def _envelope(
        self, tenant_id: str, items: list[dict[str, Any]], next_token: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/adminapi/beta/$metadata#Collection(GenericHashTable)",
            "@adminapi.warnings": [],
            "value": items,
        }
        if next_token is not None:
            base = self.faults.next_link_base or self.base_url
            body["@odata.nextLink"] = (
                f"{base}/adminapi/beta/{tenant_id}/InvokeCommand?$skiptoken={next_token}"
            )
        return body

    def _error(self, error: CmdletError) -> HttpResponse:
        error_id = uuid.uuid4().hex[:8].upper()
        style = self.faults.not_found_style if error.exception_class == NOT_FOUND_CLASS else "pipe"
        if style == "json":
            detail = json.dumps(
                {"ErrorId": error_id, "ExceptionClass": error.exception_class, "Message": error.text}
            )
        elif style == "plain":
            detail = error.text
        else:
            detail = f"{error_id}|{error.exception_class}|{error.text}"
        body = {
            "error": {
                "code": "InternalServerError" if error.status >= 500 else "BadRequest",
                "message": "Error executing cmdlet",
                "details": [{"code": "Context", "target": "", "message": detail}],
                "innererror": {
                    "message": "Error executing cmdlet",
                    "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                },
            }
        }
        return _json(error.status, body)


def _json(status: int, payload: dict[str, Any]) -> HttpResponse:
    return HttpResponse(
        status, json.dumps(payload).encode(), {"Content-Type": "application/json; odata.metadata=minimal"}
    )
