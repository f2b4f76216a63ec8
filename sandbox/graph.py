"""A fake of Microsoft Graph's directory API for ``popctl``, the azuread provider and the tests, over HTTPS.

Routes, each under ``/v1.0`` and ``/beta`` alike. ``{app}`` is ``applications/{id}`` or
``applications(appId='{appId}')``, ``{sp}`` ``servicePrincipals/{id}`` or ``servicePrincipals(appId='..')``:

- ``GET /metadata/endpoints?api-version=2022-09-01`` (no token; ``2019-05-01`` answers the same document in
  a list): the cloud metadata the azuread provider reads when ``ARM_METADATA_HOSTNAME`` names this server,
  see :meth:`GraphFake.metadata_document`
- ``GET|POST /applications``; ``GET|PATCH|DELETE /{app}``; ``POST /{app}/addPassword``,
  ``POST /{app}/removePassword``
- ``GET /{app}/owners``, ``POST /{app}/owners/$ref``, ``DELETE /{app}/owners/{ownerId}/$ref``
- ``GET|POST /servicePrincipals``; ``GET|PATCH|DELETE /{sp}``; the same three owner routes under ``/{sp}``
- ``GET|POST /{sp}/appRoleAssignedTo`` (``{sp}`` is the resource), ``GET|DELETE /{sp}/appRoleAssignedTo/{id}``
- ``GET|POST /{sp}/appRoleAssignments`` (``{sp}`` is the principal),
  ``GET|DELETE /{sp}/appRoleAssignments/{id}``
- ``GET /directoryObjects/{id}``, ``POST /directoryObjects/getByIds``
- the tenant-wide routes of :mod:`sandbox.graph_tenant` (:attr:`GraphFake.tenant_tables`): app-management
  policies, directory roles of principals, the credential sign-in report

Collections take ``$filter`` (``{property} eq '..'`` and ``startswith({property},'..')`` joined by
``and``/``or``, quotes doubled inside strings, compared without regard to case as the directory does),
``$select``, ``$top`` and ``$count=true``; ``ConsistencyLevel: eventual`` is accepted and not needed. Single
objects take ``$select``.

Every other request needs ``Authorization: Bearer <jwt>`` signed by the :class:`~sandbox.entra.EntraFake`
with audience :attr:`GraphFake.base_url` or ``https://graph.microsoft.com`` (either with a trailing slash);
the tenant is the token's ``tid``, the caller its ``oid``, the permissions its ``roles`` (and ``scp`` words).
Reads need Application.Read.All, Application.ReadWrite.All, Directory.Read.All or
Application.ReadWrite.OwnedBy; writes to applications and service principals need Application.ReadWrite.All,
or Application.ReadWrite.OwnedBy to create one or to change one the caller owns; app role assignments need
AppRoleAssignment.ReadWrite.All or Application.ReadWrite.All. Refusals are 403
``Authorization_RequestDenied``; every error has Graph's envelope ``{"error": {"code", "message",
"innerError": {"date", "request-id", "client-request-id"}}}``, every answer those two headers.

Faults (:attr:`GraphFake.faults`, a :class:`GraphFaults`): ``throttle_next`` answers that many requests 429
with ``Retry-After: retry_after``; ``page_size`` pages collections with ``@odata.nextLink``;
``consistency_reads = N`` gives every object created over HTTP while it is positive N requests that do not
see it: direct addressing answers 404 ``Request_ResourceNotFound``, collections leave it out, and each such
request uses up one. Only requests whose method is in ``consistency_methods`` (``{"GET"}`` unless changed)
count; the azuread provider detects replication by retrying a ``PATCH`` on 404, so add ``"PATCH"`` to
exercise that path.

Side effects on the Entra fake: every secret from ``addPassword`` becomes a client secret of the app's
:class:`~sandbox.entra.FakeApp` (created when missing, ``oid`` = the service principal's object id, else
the application's) until its ``endDateTime``; ``removePassword`` and deleting the application take it away.
App role assignments to a service principal put the role's ``value`` into that app's tokens for each
``https://`` service principal name of the resource (``https://outlook.office365.com`` for Exchange Online),
as Entra derives a token's ``roles`` from the assignments. :attr:`GraphFake.issued_secrets` lists every value
ever issued, :attr:`GraphFake.writes` every successful write (:class:`GraphWrite`, ``seq`` from
:func:`time.monotonic_ns` like the Exchange fake's log). Test helpers that change state by hand (drift)
write neither log.

Choices where Graph's documentation is silent or the fake simplifies:

- ``POST /applications`` does not add the caller as an owner: the v1.0 "Create application" page documents
  no implicit owner, and the azuread provider binds the caller itself through ``owners@odata.bind`` and
  removes it again afterwards ("by default, no owners are assigned"). Owners come only from
  ``owners@odata.bind`` and ``owners/$ref``; they may be users and service principals.
- The calling principal exists in its tenant: the first request with an unknown ``oid`` adds a service
  principal (``appId`` = the token's ``appid``), or a user for a delegated token, because a real tenant
  always holds the caller's own object and the provider binds it as an owner.
- ``DELETE /applications/{id}`` deletes only the application (and its secrets in the Entra fake); its
  service principal and the assignments stay, nothing goes to deleted items.
- A service principal copies ``displayName``, ``appRoles`` and the OAuth2 scopes of its application once,
  when it is created. ``signInAudience`` defaults to ``AzureADandPersonalMicrosoftAccount`` as in Graph's
  example.
- ``passwordCredentials`` cannot be written with POST or PATCH (Graph: "use addPassword"); ``addPassword``
  without ``endDateTime`` lasts two years, Graph's default.
- Messages follow Graph's where known; "not found" reads ``Resource '{id}' does not exist``. Duplicate
  assignments answer 400 ``Request_BadRequest`` "Permission being assigned already exists on the object",
  as Graph does; a missing principal 400 "Not a valid reference update." (the provider retries on it).

Typical use::

    graph = GraphFake(entra)
    with HttpsServer(graph.handle, certs) as server:
        graph.base_url = server.base_url
        exchange_online = graph.seed_tenant(TENANT)     # and Microsoft Graph's principal
        app = graph.add_application(TENANT, "POP3APP", pop_role=True)
        sp = graph.add_service_principal(TENANT, app.app_id)
        graph.faults.consistency_reads = 2
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import secrets
import string
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlencode

import jwt

from sandbox.entra import EXCHANGE_RESOURCE, EntraFake, FakeApp
from sandbox.graph_tenant import TenantTables
from sandbox.tls import HttpRequest, HttpResponse

EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
POP_ROLE_ID = "cb842b43-da6e-4506-86fe-bb12199c656d"
IMAP_ROLE_ID = "5e5addcd-3e8d-4e90-baf5-964efab2b20a"
GRAPH_RESOURCE = "https://graph.microsoft.com"
METADATA_PATH = "/metadata/endpoints"
API_VERSIONS = ("v1.0", "beta")

READ_ALL = "Application.Read.All"
WRITE_ALL = "Application.ReadWrite.All"
OWNED_BY = "Application.ReadWrite.OwnedBy"
ASSIGN_ALL = "AppRoleAssignment.ReadWrite.All"
READ_ROLES = frozenset({READ_ALL, WRITE_ALL, "Directory.Read.All", OWNED_BY})
ASSIGNMENT_ROLES = frozenset({ASSIGN_ALL, WRITE_ALL})

APPLICATION_TYPE = "#microsoft.graph.application"
SERVICE_PRINCIPAL_TYPE = "#microsoft.graph.servicePrincipal"
USER_TYPE = "#microsoft.graph.user"
OWNERS_BIND = "owners@odata.bind"

ADDRESS = re.compile(r"^(?P<kind>applications|servicePrincipals)(?:\(appId='(?P<app_id>(?:[^']|'')*)'\))?$")
CLAUSE_EQ = re.compile(r"^(?P<field>\w+) eq (?P<value>'(?:[^']|'')*'|true|false|null)$")
CLAUSE_STARTSWITH = re.compile(r"^startswith\((?P<field>\w+), ?'(?P<value>(?:[^']|'')*)'\)$")
REFERENCE = re.compile(r"directoryObjects/(?P<id>[^/?#]+)$")
SECRET_ALPHABET = string.ascii_letters + string.digits + "~._-"
PASSWORD_LIFETIME = timedelta(days=730)


@dataclass
class GraphFaults:
    """Switchable misbehaviour; see the module docstring. ``reset()`` restores these defaults."""

    throttle_next: int = 0
    retry_after: int = 1
    page_size: int = 0
    consistency_reads: int = 0
    consistency_methods: frozenset[str] = frozenset({"GET"})


@dataclass(frozen=True)
class GraphWrite:
    """One successful write: ``seq`` is :func:`time.monotonic_ns` at the time, ``path`` without the query."""

    seq: int
    method: str
    path: str
    object_kind: str
    object_id: str


@dataclass
class FakeApplication:
    """An app registration. The typed fields are Graph's properties of the same name; ``properties`` holds
    every other property as a client wrote it. ``pending_reads`` is the eventual-consistency budget left."""

    object_id: str
    app_id: str
    display_name: str
    sign_in_audience: str = "AzureADMyOrg"
    required_resource_access: list[dict[str, Any]] = field(default_factory=list)
    password_credentials: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    app_roles: list[dict[str, Any]] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    created_date_time: str = "2024-06-01T09:29:00Z"
    properties: dict[str, Any] = field(default_factory=dict)
    pending_reads: int = 0
    secret_values: dict[str, str] = field(default_factory=dict, repr=False)

    def add_password(
        self, display_name: str, end: str, value: str, start: str = "2024-06-01T09:30:00Z"
    ) -> str:
        """Record a client secret made by hand, as Graph shows it (a three-character hint, no value); returns
        the key id. Unlike ``addPassword`` this does not make the value a credential in the Entra fake."""
        key_id = str(uuid.uuid4())
        self.password_credentials.append(_password_credential(key_id, display_name, start, end, value[:3]))
        return key_id


@dataclass
class FakeGraphServicePrincipal:
    """A service principal; like :class:`FakeApplication`, typed fields plus ``properties``."""

    object_id: str
    app_id: str
    display_name: str
    app_roles: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    account_enabled: bool = True
    app_role_assignment_required: bool = False
    service_principal_names: list[str] = field(default_factory=list)
    oauth2_permission_scopes: list[dict[str, Any]] = field(default_factory=list)
    app_owner_organization_id: str | None = None
    sign_in_audience: str = "AzureADMyOrg"
    owners: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    pending_reads: int = 0


@dataclass
class FakeAssignment:
    """An app role assignment: ``principal_id`` holds role ``app_role_id`` of resource ``resource_id``."""

    assignment_id: str
    principal_id: str
    resource_id: str
    app_role_id: str
    created_date_time: str = "2024-06-01T09:31:00Z"
    pending_reads: int = 0


@dataclass
class FakeUser:
    object_id: str
    user_principal_name: str
    display_name: str


@dataclass
class FakeDirectory:
    """One tenant's objects, keyed by (lower-case) object id."""

    domain: str = "contoso.onmicrosoft.com"
    applications: dict[str, FakeApplication] = field(default_factory=dict)
    service_principals: dict[str, FakeGraphServicePrincipal] = field(default_factory=dict)
    assignments: list[FakeAssignment] = field(default_factory=list)
    users: dict[str, FakeUser] = field(default_factory=dict)


class _Replicated(Protocol):
    pending_reads: int


class _GraphError(Exception):
    """A refusal, raised anywhere below :meth:`GraphFake.handle` and answered in Graph's error envelope."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class _Call:
    request: HttpRequest
    version: str
    segments: list[str]
    tenant_id: str
    caller_id: str
    permissions: frozenset[str]
    directory: FakeDirectory

    @property
    def method(self) -> str:
        return self.request.method


_Target = FakeApplication | FakeGraphServicePrincipal
_Access = Literal["read", "write", "create", "assign"]
_Handler = Callable[["GraphFake", _Call, _Target, "re.Match[str]"], HttpResponse]


class GraphFake:
    """In-memory directory per tenant. Thread-safe (one lock); serve :meth:`handle` with ``HttpsServer``.

    Set :attr:`base_url` to the server's URL before the first request; :attr:`login_endpoint` defaults to the
    Entra fake's ``base_url``.
    """

    def __init__(self, entra: EntraFake) -> None:
        self.entra = entra
        self.base_url = ""
        self.login_endpoint = ""
        self.faults = GraphFaults()
        self.tenants: dict[str, FakeDirectory] = {}
        self.requests: Counter[str] = Counter()
        self.paths: list[str] = []
        self.writes: list[GraphWrite] = []
        self.issued_secrets: list[str] = []
        self.tenant_tables = TenantTables()
        self._entra_apps_created: set[tuple[str, str]] = set()
        self._lock = threading.RLock()

    # -- test-side helpers -------------------------------------------------------------------------------

    def directory(self, tenant_id: str) -> FakeDirectory:
        with self._lock:
            return self.tenants.setdefault(tenant_id.lower(), FakeDirectory())

    def reset(self) -> None:
        """Forget every tenant, the logs, counters and faults, and take back what went into the Entra fake."""
        with self._lock:
            for tenant_id, directory in self.tenants.items():
                for assignment in directory.assignments:
                    self._sync_token_roles(tenant_id, directory, assignment, add=False)
                for app in directory.applications.values():
                    self._forget_credentials(tenant_id, app)
            self.tenants.clear()
            self.requests.clear()
            self.paths.clear()
            self.writes.clear()
            self.issued_secrets.clear()
            self.tenant_tables.reset()
            self.faults = GraphFaults()

    def seed_tenant(
        self, tenant_id: str, domain: str = "contoso.onmicrosoft.com"
    ) -> FakeGraphServicePrincipal:
        """A realistic empty tenant, known to the Entra fake too: Microsoft's Graph and Exchange Online
        principals. Returns Exchange Online's, the resource of the POP consent."""
        with self._lock:
            self.directory(tenant_id).domain = domain
            self.entra.add_tenant(tenant_id)
            self.add_microsoft_graph(tenant_id)
            return self.add_exchange_online(tenant_id)

    def add_application(
        self,
        tenant_id: str,
        display_name: str,
        *,
        app_id: str | None = None,
        pop_role: bool = True,
        extra_access: list[dict[str, Any]] | None = None,
        sign_in_audience: str = "AzureADMyOrg",
    ) -> FakeApplication:
        """An app registration made by hand, requesting POP.AccessAsApp unless ``pop_role`` is false."""
        access = [
            {"resourceAppId": EXCHANGE_ONLINE_APP_ID, "resourceAccess": [{"id": POP_ROLE_ID, "type": "Role"}]}
        ]
        app = FakeApplication(
            object_id=str(uuid.uuid4()),
            app_id=app_id or str(uuid.uuid4()),
            display_name=display_name,
            sign_in_audience=sign_in_audience,
            required_resource_access=(access if pop_role else []) + list(extra_access or []),
        )
        with self._lock:
            self.directory(tenant_id).applications[app.object_id] = app
        return app

    def add_service_principal(
        self,
        tenant_id: str,
        app_id: str,
        display_name: str = "",
        app_roles: list[dict[str, Any]] | None = None,
    ) -> FakeGraphServicePrincipal:
        """A service principal made by hand; app roles default to those of the tenant's application."""
        with self._lock:
            directory = self.directory(tenant_id)
            app = _application_by_app_id(directory, app_id)
            principal = FakeGraphServicePrincipal(
                str(uuid.uuid4()),
                app_id,
                display_name or app_id,
                copy.deepcopy(app.app_roles) if app_roles is None and app else list(app_roles or []),
                service_principal_names=[app_id],
                app_owner_organization_id=tenant_id.lower(),
            )
            directory.service_principals[principal.object_id] = principal
            self._principal_created(tenant_id.lower(), principal)
            return principal

    def add_exchange_online(self, tenant_id: str) -> FakeGraphServicePrincipal:
        """Office 365 Exchange Online's service principal (Microsoft's app, so no application object)."""
        return self._first_party(
            tenant_id,
            EXCHANGE_ONLINE_APP_ID,
            "Office 365 Exchange Online",
            [
                _app_role(POP_ROLE_ID, "POP.AccessAsApp", "POP.AccessAsApp"),
                _app_role(IMAP_ROLE_ID, "IMAP.AccessAsApp", "IMAP.AccessAsApp"),
                _app_role(
                    "dc50a0fb-09a3-484d-be87-e023b12c6440", "Exchange.ManageAsApp", "Manage Exchange As App"
                ),
                _app_role(
                    "dc890d15-9560-4a4c-9b7f-a736ec74ec40", "full_access_as_app", "Use Exchange Web Services"
                ),
            ],
            [
                EXCHANGE_RESOURCE,
                "https://outlook.office.com",
                "https://ps.outlook.com",
                "outlook.office365.com",
            ],
        )

    def add_microsoft_graph(self, tenant_id: str) -> FakeGraphServicePrincipal:
        """Microsoft Graph's service principal with the application permissions this project touches."""
        return self._first_party(
            tenant_id,
            MICROSOFT_GRAPH_APP_ID,
            "Microsoft Graph",
            [
                _app_role("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", READ_ALL, "Read all applications"),
                _app_role(
                    "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", WRITE_ALL, "Read and write all applications"
                ),
                _app_role(
                    "18a4783c-866b-4cc7-a460-3d5e5662c884",
                    OWNED_BY,
                    "Manage apps that this app creates or owns",
                ),
                _app_role("06b708a9-e830-4db3-a914-8e69da51d44f", ASSIGN_ALL, "Manage app permission grants"),
                _app_role(
                    "7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Directory.Read.All", "Read directory data"
                ),
                _app_role(
                    "df021288-bdef-4463-88db-98f22de89214", "User.Read.All", "Read all users' full profiles"
                ),
            ],
            [GRAPH_RESOURCE, f"{GRAPH_RESOURCE}/", "https://canary.graph.microsoft.com"],
            scopes=[
                {
                    "adminConsentDescription": "Allows users to sign-in to the app, and allows the app to "
                    "read the profile of signed-in users.",
                    "adminConsentDisplayName": "Sign in and read user profile",
                    "id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
                    "isEnabled": True,
                    "type": "User",
                    "value": "User.Read",
                }
            ],
        )

    def add_user(self, tenant_id: str, upn: str, display_name: str = "") -> str:
        """A user (for owners and assignments); returns its object id."""
        user = FakeUser(str(uuid.uuid4()), upn, display_name or upn.split("@")[0])
        with self._lock:
            self.directory(tenant_id).users[user.object_id] = user
        return user.object_id

    def grant(self, tenant_id: str, principal_id: str, resource_id: str, app_role_id: str) -> FakeAssignment:
        """Admin consent given by hand: assign ``app_role_id`` of ``resource_id`` to ``principal_id``."""
        assignment = FakeAssignment(
            _assignment_id(principal_id), principal_id.lower(), resource_id.lower(), app_role_id.lower()
        )
        with self._lock:
            directory = self.directory(tenant_id)
            directory.assignments.append(assignment)
            self._sync_token_roles(tenant_id.lower(), directory, assignment, add=True)
        return assignment

    def remove_assignment(self, tenant_id: str, assignment_id: str) -> None:
        """Withdraw an app role assignment by hand (consent revoked in the portal)."""
        with self._lock:
            directory = self.directory(tenant_id)
            assignment = next(a for a in directory.assignments if a.assignment_id == assignment_id)
            directory.assignments.remove(assignment)
            self._sync_token_roles(tenant_id.lower(), directory, assignment, add=False)

    def add_password(
        self, tenant_id: str, object_id: str, display_name: str | None = None, end: str | None = None
    ) -> dict[str, Any]:
        """What ``addPassword`` does, without HTTP: returns the credential including ``secretText``."""
        with self._lock:
            return self._issue_password(
                tenant_id.lower(), self.application(tenant_id, object_id), display_name, None, end
            )

    def application(self, tenant_id: str, object_id: str) -> FakeApplication:
        with self._lock:
            return self.directory(tenant_id).applications[object_id.lower()]

    def find_applications(self, tenant_id: str, display_name: str) -> list[FakeApplication]:
        with self._lock:
            apps = self.directory(tenant_id).applications.values()
            return [app for app in apps if app.display_name == display_name]

    def service_principal(self, tenant_id: str, object_id: str) -> FakeGraphServicePrincipal:
        with self._lock:
            return self.directory(tenant_id).service_principals[object_id.lower()]

    def service_principal_of(self, tenant_id: str, app_id: str) -> FakeGraphServicePrincipal | None:
        with self._lock:
            return _principal_by_app_id(self.directory(tenant_id), app_id)

    def assignments_of(self, tenant_id: str, principal_id: str) -> list[FakeAssignment]:
        with self._lock:
            return [
                a for a in self.directory(tenant_id).assignments if a.principal_id == principal_id.lower()
            ]

    def set_required_resource_access(
        self, tenant_id: str, object_id: str, value: list[dict[str, Any]]
    ) -> None:
        """Change an application's API permissions by hand."""
        with self._lock:
            self.application(tenant_id, object_id).required_resource_access = copy.deepcopy(value)

    def metadata_document(self) -> dict[str, Any]:
        """The ``2022-09-01`` cloud metadata (go-azure-sdk ``sdk/internal/metadata``) pointing at the fakes.

        ``identityProvider: AAD`` and ``tenant: common`` keep the SDK off its Azure Stack path; the login
        endpoint has no trailing slash because the SDK appends ``/{tenant}/oauth2/v2.0/token`` to it.
        """
        graph = f"{self.base_url}/"
        return {
            "name": "AzureCloud",
            "portal": "https://portal.azure.com",
            "authentication": {
                "loginEndpoint": (self.login_endpoint or self.entra.base_url).rstrip("/"),
                "audiences": [graph],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "graphAudience": "https://graph.windows.net/",
            "graph": "https://graph.windows.net/",
            "suffixes": {
                "acrLoginServer": "azurecr.io",
                "keyVaultDns": "vault.azure.net",
                "sqlServerHostname": "database.windows.net",
                "storage": "core.windows.net",
                "mhsmDns": "managedhsm.azure.net",
            },
            "resourceManager": graph,
            "microsoftGraphResourceId": graph,
        }

    # -- HTTP --------------------------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Serve one HTTP request (the ``HttpsServer`` handler)."""
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        try:
            response = self._serve(request)
        except _GraphError as error:
            inner = {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            }
            body = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
            response = _json(error.status, body, error.headers)
        headers = {**response.headers, "request-id": request_id, "client-request-id": client_request_id}
        return HttpResponse(response.status, response.body, headers)

    def _serve(self, request: HttpRequest) -> HttpResponse:
        with self._lock:
            self.requests[request.path] += 1
            self.paths.append(request.path)
            if request.path == METADATA_PATH:
                return self._metadata(request)
            if self.faults.throttle_next > 0:
                self.faults.throttle_next -= 1
                raise _GraphError(
                    429, "TooManyRequests", "Too many requests", {"Retry-After": str(self.faults.retry_after)}
                )
        claims = self._claims(request)
        segments = [unquote(segment) for segment in request.path.strip("/").split("/")]
        if len(segments) < 2 or segments[0] not in API_VERSIONS:
            raise _GraphError(400, "BadRequest", f"Invalid version or resource: {request.path}")
        with self._lock:
            call = self._call(request, segments, claims)
            return self._route(call)

    def _metadata(self, request: HttpRequest) -> HttpResponse:
        version = request.query.get("api-version", [""])[0]
        if version == "2022-09-01":
            return _json(200, self.metadata_document())
        if version == "2019-05-01":
            return HttpResponse(200, json.dumps([self.metadata_document()]).encode(), _JSON_HEADERS)
        raise _GraphError(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid.")

    def _claims(self, request: HttpRequest) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        audiences = [self.base_url, f"{self.base_url}/", GRAPH_RESOURCE, f"{GRAPH_RESOURCE}/"]
        try:
            claims = self.entra.verify_token(header[len("Bearer ") :], audiences)
        except jwt.PyJWTError:
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.") from None
        return claims

    def _call(self, request: HttpRequest, segments: list[str], claims: dict[str, Any]) -> _Call:
        tenant_id = str(claims.get("tid", "")).lower()
        permissions = set(claims.get("roles") or []) | set(str(claims.get("scp", "")).split())
        directory = self.directory(tenant_id)
        caller_id = str(claims.get("oid", "")).lower()
        if caller_id and _directory_object(directory, caller_id) is None:
            self._register_caller(directory, caller_id, claims)
        return _Call(
            request, segments[0], segments[1:], tenant_id, caller_id, frozenset(permissions), directory
        )

    @staticmethod
    def _register_caller(directory: FakeDirectory, caller_id: str, claims: dict[str, Any]) -> None:
        upn = claims.get("upn") or claims.get("preferred_username")
        if "scp" in claims and upn:
            directory.users[caller_id] = FakeUser(caller_id, str(upn), str(upn))
            return
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        if app_id and _principal_by_app_id(directory, app_id) is None:
            directory.service_principals[caller_id] = FakeGraphServicePrincipal(
                caller_id, app_id, app_id, service_principal_names=[app_id]
            )

    def _route(self, call: _Call) -> HttpResponse:
        tenant_wide = self.tenant_tables.route(self, call)
        if tenant_wide is not None:
            return tenant_wide
        head, rest = call.segments[0], call.segments[1:]
        if head == "directoryObjects":
            return self._directory_objects(call, rest)
        address = ADDRESS.match(head)
        if address is None:
            raise _GraphError(400, "Request_BadRequest", f"Resource not found for the segment '{head}'.")
        kind, app_id = address["kind"], address["app_id"]
        if app_id is None and not rest:
            return self._collection_route(call, kind)
        key, rest = (rest[0], rest[1:]) if app_id is None else (app_id.replace("''", "'"), rest)
        route, match = _find_route(kind, call.method, "/".join(rest))
        _require(call, route.access)
        target = self._lookup(call, kind, key) if app_id is None else self._lookup_by_app_id(call, kind, key)
        if (
            route.access == "write"
            and WRITE_ALL not in call.permissions
            and call.caller_id not in target.owners
        ):
            raise _denied()
        return route.handler(self, call, target, match)

    def _collection_route(self, call: _Call, kind: str) -> HttpResponse:
        directory = call.directory
        if call.method == "GET":
            _require(call, "read")
            if kind == "applications":
                apps = list(directory.applications.values())
                return self._collection(
                    call, "applications", [(a, self._application_json(call, a)) for a in apps]
                )
            principals = list(directory.service_principals.values())
            items = [(p, self._principal_json(directory, p)) for p in principals]
            return self._collection(call, "servicePrincipals", items)
        if call.method == "POST":
            _require(call, "create")
            if kind == "applications":
                return self._create_application(call)
            return self._create_service_principal(call)
        raise _method_not_allowed()

    def _lookup(self, call: _Call, kind: str, object_id: str) -> _Target:
        objects: dict[str, FakeApplication] | dict[str, FakeGraphServicePrincipal] = (
            call.directory.applications if kind == "applications" else call.directory.service_principals
        )
        target = objects.get(object_id.lower())
        if target is None or not self._visible(call, target):
            raise _not_found(object_id)
        return target

    def _lookup_by_app_id(self, call: _Call, kind: str, app_id: str) -> _Target:
        if kind == "applications":
            target: _Target | None = _application_by_app_id(call.directory, app_id)
        else:
            target = _principal_by_app_id(call.directory, app_id)
        if target is None or not self._visible(call, target):
            raise _not_found(app_id)
        return target

    def _visible(self, call: _Call, obj: _Replicated) -> bool:
        """Whether this request sees ``obj`` (uses up one unit of its eventual-consistency budget if not)."""
        if obj.pending_reads > 0 and call.method in self.faults.consistency_methods:
            obj.pending_reads -= 1
            return False
        return True

    def _now(self) -> datetime:
        """Now by the Entra fake's clock (which the sandbox moves)."""
        return datetime.fromtimestamp(self.entra.clock(), UTC)

    def _log(self, call: _Call, kind: str, object_id: str) -> None:
        self.writes.append(GraphWrite(time.monotonic_ns(), call.method, call.request.path, kind, object_id))

    # -- collections -------------------------------------------------------------------------------------

    def _collection(
        self, call: _Call, context: str, entries: Iterable[tuple[_Replicated | None, dict[str, Any]]]
    ) -> HttpResponse:
        query = call.request.query
        flt = query.get("$filter", [None])[0]
        matches = _filter(flt) if flt is not None else None
        items = [
            item
            for obj, item in entries
            if (matches is None or matches(item)) and (obj is None or self._visible(call, obj))
        ]
        total = len(items)
        items = [_select(item, query) for item in items]
        skip = _integer(query.get("$skiptoken", ["0"])[0], "$skiptoken")
        sizes = [
            size
            for size in (_integer(query.get("$top", ["0"])[0], "$top"), self.faults.page_size)
            if size > 0
        ]
        size = min(sizes) if sizes else max(total, 1)
        payload: dict[str, Any] = {"@odata.context": self._context(call, context)}
        if query.get("$count", [""])[0].lower() == "true":
            payload["@odata.count"] = total
        payload["value"] = items[skip : skip + size]
        if skip + size < total:
            params = {key: values[0] for key, values in query.items() if key != "$skiptoken"}
            params["$skiptoken"] = str(skip + size)
            payload["@odata.nextLink"] = f"{self.base_url}{call.request.path}?{urlencode(params)}"
        return _json(200, payload)

    def _context(self, call: _Call, context: str) -> str:
        return f"{self.base_url}/{call.version}/$metadata#{context}"

    def _entity(self, call: _Call, context: str, item: dict[str, Any], status: int = 200) -> HttpResponse:
        return _json(
            status, {"@odata.context": self._context(call, context), **_select(item, call.request.query)}
        )

    # -- applications and service principals ------------------------------------------------------------

    def _create_application(self, call: _Call) -> HttpResponse:
        body = _body(call)
        display_name = body.get("displayName")
        if not isinstance(display_name, str) or not display_name:
            raise _GraphError(400, "Request_BadRequest", "Property 'displayName' is required.")
        owners = self._bound_owners(call, body)
        app = FakeApplication(
            object_id=str(uuid.uuid4()),
            app_id=str(uuid.uuid4()),
            display_name=display_name,
            sign_in_audience="AzureADandPersonalMicrosoftAccount",
            owners=owners,
            created_date_time=_timestamp(self._now()),
            pending_reads=self.faults.consistency_reads,
        )
        _write_application(app, body)
        call.directory.applications[app.object_id] = app
        self._log(call, "application", app.object_id)
        return self._entity(call, "applications/$entity", self._application_json(call, app), 201)

    def _create_service_principal(self, call: _Call) -> HttpResponse:
        body = _body(call)
        app_id = body.get("appId")
        if not isinstance(app_id, str) or not app_id:
            raise _GraphError(400, "Request_BadRequest", "Property 'appId' is required.")
        directory = call.directory
        app = _application_by_app_id(directory, app_id)
        if app is None or not self._visible(call, app):
            raise _GraphError(
                400,
                "Request_BadRequest",
                f"The appId '{app_id}' of the service principal does not reference a valid application "
                "object.",
            )
        if _principal_by_app_id(directory, app_id) is not None:
            raise _GraphError(
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                "The service principal cannot be created, updated, or restored because the service principal "
                f"name {app_id} is already in use.",
            )
        api = app.properties.get("api")
        scopes = api.get("oauth2PermissionScopes", []) if isinstance(api, dict) else []
        identifier_uris = app.properties.get("identifierUris") or []
        principal = FakeGraphServicePrincipal(
            object_id=str(uuid.uuid4()),
            app_id=app.app_id,
            display_name=app.display_name,
            app_roles=copy.deepcopy(app.app_roles),
            service_principal_names=[app.app_id, *identifier_uris],
            oauth2_permission_scopes=copy.deepcopy(scopes),
            app_owner_organization_id=call.tenant_id,
            sign_in_audience=app.sign_in_audience,
            owners=self._bound_owners(call, body),
            pending_reads=self.faults.consistency_reads,
        )
        _write_principal(principal, {key: value for key, value in body.items() if key != "appId"})
        directory.service_principals[principal.object_id] = principal
        self._principal_created(call.tenant_id, principal)
        self._log(call, "servicePrincipal", principal.object_id)
        return self._entity(
            call, "servicePrincipals/$entity", self._principal_json(directory, principal), 201
        )

    def _bound_owners(self, call: _Call, body: dict[str, Any]) -> list[str]:
        references = body.get(OWNERS_BIND, [])
        if not isinstance(references, list):
            raise _GraphError(400, "Request_BadRequest", f"'{OWNERS_BIND}' must be a list of URLs.")
        owners: list[str] = []
        for reference in references:
            owner_id = self._owner_reference(call, reference)
            if owner_id not in owners:
                owners.append(owner_id)
        return owners

    def _owner_reference(self, call: _Call, reference: object) -> str:
        """The id in ``https://{any host}/{version}/directoryObjects/{id}``, checked to be a user or an SP."""
        match = REFERENCE.search(reference) if isinstance(reference, str) else None
        if match is None:
            raise _GraphError(400, "Request_BadRequest", f"Invalid object identifier '{reference}'.")
        owner_id = match["id"].lower()
        owner = _directory_object(call.directory, owner_id)
        if owner is None:
            raise _not_found(owner_id)
        if isinstance(owner, FakeApplication):
            raise _GraphError(
                400,
                "Request_BadRequest",
                "Unsupported referenced-object resource identifier for link property 'owners'.",
            )
        return owner_id

    def _get_object(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        if isinstance(target, FakeApplication):
            return self._entity(call, "applications/$entity", self._application_json(call, target))
        return self._entity(call, "servicePrincipals/$entity", self._principal_json(call.directory, target))

    def _patch_object(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        body = {key: value for key, value in _body(call).items() if "@" not in key}
        if isinstance(target, FakeApplication):
            _write_application(target, body)
            self._log(call, "application", target.object_id)
        else:
            _write_principal(target, body)
            self._log(call, "servicePrincipal", target.object_id)
        return _no_content()

    def _delete_object(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        directory = call.directory
        if isinstance(target, FakeApplication):
            del directory.applications[target.object_id]
            self._forget_credentials(call.tenant_id, target)
            self._log(call, "application", target.object_id)
        else:
            involved = [
                a for a in directory.assignments if target.object_id in (a.principal_id, a.resource_id)
            ]
            for assignment in involved:
                self._sync_token_roles(call.tenant_id, directory, assignment, add=False)
                directory.assignments.remove(assignment)
            del directory.service_principals[target.object_id]
            self._principal_deleted(call.tenant_id, target)
            self._log(call, "servicePrincipal", target.object_id)
        holders: list[_Target] = [*directory.applications.values(), *directory.service_principals.values()]
        for holder in holders:
            if target.object_id in holder.owners:
                holder.owners.remove(target.object_id)
        return _no_content()

    def _add_password_route(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        assert isinstance(target, FakeApplication)
        credential = _body(call).get("passwordCredential") or {}
        if not isinstance(credential, dict):
            raise _GraphError(400, "Request_BadRequest", "'passwordCredential' must be an object.")
        issued = self._issue_password(
            call.tenant_id,
            target,
            credential.get("displayName"),
            credential.get("startDateTime"),
            credential.get("endDateTime"),
        )
        self._log(call, "application", target.object_id)
        return _json(
            200, {"@odata.context": self._context(call, "microsoft.graph.passwordCredential"), **issued}
        )

    def _remove_password_route(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        assert isinstance(target, FakeApplication)
        key_id = str(_body(call).get("keyId", "")).lower()
        credential = next((c for c in target.password_credentials if c["keyId"].lower() == key_id), None)
        if credential is None:
            raise _GraphError(
                404, "Request_ResourceNotFound", f"No password credential found with keyId '{key_id}'."
            )
        target.password_credentials.remove(credential)
        value = target.secret_values.pop(credential["keyId"], None)
        entra_app = self.entra.apps.get((call.tenant_id, target.app_id.lower()))
        if value is not None and entra_app is not None:
            entra_app.secrets.pop(value, None)
        self._log(call, "application", target.object_id)
        return _no_content()

    def _issue_password(
        self,
        tenant_id: str,
        app: FakeApplication,
        display_name: object,
        start: object,
        end: object,
    ) -> dict[str, Any]:
        starts = _parse_time(start, "startDateTime") if start else self._now()
        ends = _parse_time(end, "endDateTime") if end else starts + PASSWORD_LIFETIME
        value = _new_secret()
        key_id = str(uuid.uuid4())
        name = display_name if isinstance(display_name, str) else None
        credential = _password_credential(key_id, name, _timestamp(starts), _timestamp(ends), value[:3])
        app.password_credentials.append(credential)
        app.secret_values[key_id] = value
        self.issued_secrets.append(value)
        self._entra_app(tenant_id, app).secrets[value] = ends.timestamp()
        return {**credential, "secretText": value}

    def _list_owners(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        items = []
        for owner_id in target.owners:
            owner = _directory_object(call.directory, owner_id)
            if owner is not None:
                items.append((None, self._directory_object_json(call, owner)))
        return self._collection(call, "directoryObjects", items)

    def _add_owner(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        owner_id = self._owner_reference(call, _body(call).get("@odata.id"))
        if owner_id in target.owners:
            raise _GraphError(
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the following modified properties: "
                "'owners'.",
            )
        target.owners.append(owner_id)
        self._log(call, _kind(target), target.object_id)
        return _no_content()

    def _remove_owner(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        owner_id = match["item"].lower()
        if owner_id not in target.owners:
            raise _GraphError(
                404,
                "Request_ResourceNotFound",
                "One or more removed object references do not exist for the following modified properties: "
                "'owners'.",
            )
        target.owners.remove(owner_id)
        self._log(call, _kind(target), target.object_id)
        return _no_content()

    # -- app role assignments ----------------------------------------------------------------------------

    def _assignments_at(
        self, call: _Call, principal: FakeGraphServicePrincipal, side: str
    ) -> list[FakeAssignment]:
        attribute = "resource_id" if side == "appRoleAssignedTo" else "principal_id"
        return [a for a in call.directory.assignments if getattr(a, attribute) == principal.object_id]

    def _list_assignments(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        assert isinstance(target, FakeGraphServicePrincipal)
        entries = [
            (a, self._assignment_json(call.directory, a))
            for a in self._assignments_at(call, target, match["side"])
        ]
        return self._collection(call, f"servicePrincipals('{target.object_id}')/{match['side']}", entries)

    def _find_assignment(self, call: _Call, target: _Target, match: re.Match[str]) -> FakeAssignment:
        assert isinstance(target, FakeGraphServicePrincipal)
        wanted = match["item"]
        for assignment in self._assignments_at(call, target, match["side"]):
            if assignment.assignment_id == wanted and self._visible(call, assignment):
                return assignment
        raise _not_found(wanted)

    def _get_assignment(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        assignment = self._find_assignment(call, target, match)
        context = f"servicePrincipals('{target.object_id}')/{match['side']}/$entity"
        return self._entity(call, context, self._assignment_json(call.directory, assignment))

    def _delete_assignment(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        assignment = self._find_assignment(call, target, match)
        call.directory.assignments.remove(assignment)
        self._sync_token_roles(call.tenant_id, call.directory, assignment, add=False)
        self._log(call, "appRoleAssignment", assignment.assignment_id)
        return _no_content()

    def _create_assignment(self, call: _Call, target: _Target, match: re.Match[str]) -> HttpResponse:
        assert isinstance(target, FakeGraphServicePrincipal)
        body = _body(call)
        directory = call.directory
        principal_id = str(body.get("principalId", "")).lower()
        resource_id = str(body.get("resourceId", "")).lower()
        app_role_id = str(body.get("appRoleId", "")).lower()
        fixed, given = (
            ("resourceId", resource_id)
            if match["side"] == "appRoleAssignedTo"
            else ("principalId", principal_id)
        )
        if given != target.object_id:
            raise _GraphError(
                400, "Request_BadRequest", f"'{fixed}' must be the service principal in the request URL."
            )
        resource = directory.service_principals.get(resource_id)
        principal = _directory_object(directory, principal_id)
        if (
            resource is None
            or isinstance(principal, FakeApplication | None)
            or not self._visible(call, resource)
            or (isinstance(principal, FakeGraphServicePrincipal) and not self._visible(call, principal))
        ):
            raise _GraphError(400, "Request_BadRequest", "Not a valid reference update.")
        if app_role_id not in {str(role.get("id", "")).lower() for role in resource.app_roles}:
            raise _GraphError(
                400,
                "Request_BadRequest",
                f"Permission being assigned was not found on application '{resource.app_id}'.",
            )
        for existing in directory.assignments:
            if (existing.principal_id, existing.resource_id, existing.app_role_id) == (
                principal_id,
                resource_id,
                app_role_id,
            ):
                raise _GraphError(
                    400, "Request_BadRequest", "Permission being assigned already exists on the object"
                )
        assignment = FakeAssignment(
            _assignment_id(principal_id),
            principal_id,
            resource_id,
            app_role_id,
            created_date_time=_timestamp(self._now()),
            pending_reads=self.faults.consistency_reads,
        )
        directory.assignments.append(assignment)
        self._sync_token_roles(call.tenant_id, directory, assignment, add=True)
        self._log(call, "appRoleAssignment", assignment.assignment_id)
        context = f"servicePrincipals('{target.object_id}')/{match['side']}/$entity"
        return self._entity(call, context, self._assignment_json(directory, assignment), 201)

    # -- directory objects -------------------------------------------------------------------------------

    def _directory_objects(self, call: _Call, rest: list[str]) -> HttpResponse:
        _require(call, "read")
        if rest == ["getByIds"] and call.method == "POST":
            body = _body(call)
            ids = body.get("ids") or []
            types = {str(kind).lower() for kind in body.get("types") or []}
            items = []
            for object_id in ids if isinstance(ids, list) else []:
                obj = _directory_object(call.directory, str(object_id).lower())
                if obj is not None and (not types or _kind(obj).lower() in types):
                    items.append(self._directory_object_json(call, obj))
            return _json(200, {"@odata.context": self._context(call, "directoryObjects"), "value": items})
        if len(rest) == 1 and call.method == "GET":
            obj = _directory_object(call.directory, rest[0].lower())
            if obj is None or (not isinstance(obj, FakeUser) and not self._visible(call, obj)):
                raise _not_found(rest[0])
            return self._entity(call, "directoryObjects/$entity", self._directory_object_json(call, obj))
        raise _method_not_allowed()

    def _directory_object_json(self, call: _Call, obj: FakeUser | _Target) -> dict[str, Any]:
        if isinstance(obj, FakeUser):
            return {
                "@odata.type": USER_TYPE,
                "id": obj.object_id,
                "displayName": obj.display_name,
                "userPrincipalName": obj.user_principal_name,
                "mail": obj.user_principal_name,
                "accountEnabled": True,
            }
        if isinstance(obj, FakeApplication):
            return {"@odata.type": APPLICATION_TYPE, **self._application_json(call, obj)}
        return {"@odata.type": SERVICE_PRINCIPAL_TYPE, **self._principal_json(call.directory, obj)}

    # -- rendering ---------------------------------------------------------------------------------------

    @staticmethod
    def _application_json(call: _Call, app: FakeApplication) -> dict[str, Any]:
        return {
            "id": app.object_id,
            "deletedDateTime": None,
            "appId": app.app_id,
            "applicationTemplateId": None,
            "createdDateTime": app.created_date_time,
            "description": None,
            "displayName": app.display_name,
            "groupMembershipClaims": None,
            "identifierUris": [],
            "isDeviceOnlyAuthSupported": None,
            "isFallbackPublicClient": None,
            "notes": app.notes,
            "publisherDomain": call.directory.domain,
            "serviceManagementReference": None,
            "signInAudience": app.sign_in_audience,
            "tags": app.tags,
            "tokenEncryptionKeyId": None,
            "addIns": [],
            "api": {
                "acceptMappedClaims": None,
                "knownClientApplications": [],
                "oauth2PermissionScopes": [],
                "preAuthorizedApplications": [],
                "requestedAccessTokenVersion": None,
            },
            "appRoles": app.app_roles,
            "info": _INFO,
            "keyCredentials": [],
            "optionalClaims": None,
            "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
            "passwordCredentials": app.password_credentials,
            "publicClient": {"redirectUris": []},
            "requiredResourceAccess": app.required_resource_access,
            "spa": {"redirectUris": []},
            "web": {
                "homePageUrl": None,
                "logoutUrl": None,
                "redirectUris": [],
                "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
                "redirectUriSettings": [],
            },
            **app.properties,
        }

    @staticmethod
    def _principal_json(directory: FakeDirectory, principal: FakeGraphServicePrincipal) -> dict[str, Any]:
        app = _application_by_app_id(directory, principal.app_id)
        return {
            "id": principal.object_id,
            "deletedDateTime": None,
            "accountEnabled": principal.account_enabled,
            "alternativeNames": [],
            "appDisplayName": app.display_name if app else principal.display_name,
            "appDescription": None,
            "appId": principal.app_id,
            "applicationTemplateId": None,
            "appOwnerOrganizationId": principal.app_owner_organization_id,
            "appRoleAssignmentRequired": principal.app_role_assignment_required,
            "description": None,
            "disabledByMicrosoftStatus": None,
            "displayName": principal.display_name,
            "homepage": None,
            "loginUrl": None,
            "logoutUrl": None,
            "notes": principal.notes,
            "notificationEmailAddresses": [],
            "preferredSingleSignOnMode": None,
            "preferredTokenSigningKeyThumbprint": None,
            "replyUrls": [],
            "servicePrincipalNames": principal.service_principal_names,
            "servicePrincipalType": "Application",
            "signInAudience": principal.sign_in_audience,
            "tags": principal.tags,
            "tokenEncryptionKeyId": None,
            "samlSingleSignOnSettings": None,
            "addIns": [],
            "appRoles": principal.app_roles,
            "info": _INFO,
            "keyCredentials": [],
            "oauth2PermissionScopes": principal.oauth2_permission_scopes,
            "passwordCredentials": [],
            "resourceSpecificApplicationPermissions": [],
            "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
            **principal.properties,
        }

    @staticmethod
    def _assignment_json(directory: FakeDirectory, assignment: FakeAssignment) -> dict[str, Any]:
        principal = _directory_object(directory, assignment.principal_id)
        resource = directory.service_principals.get(assignment.resource_id)
        return {
            "id": assignment.assignment_id,
            "deletedDateTime": None,
            "appRoleId": assignment.app_role_id,
            "createdDateTime": assignment.created_date_time,
            "principalDisplayName": principal.display_name if principal else None,
            "principalId": assignment.principal_id,
            "principalType": "User" if isinstance(principal, FakeUser) else "ServicePrincipal",
            "resourceDisplayName": resource.display_name if resource else None,
            "resourceId": assignment.resource_id,
        }

    # -- the Entra side ----------------------------------------------------------------------------------

    def _first_party(
        self,
        tenant_id: str,
        app_id: str,
        display_name: str,
        roles: list[dict[str, Any]],
        names: list[str],
        scopes: list[dict[str, Any]] | None = None,
    ) -> FakeGraphServicePrincipal:
        with self._lock:
            directory = self.directory(tenant_id)
            existing = _principal_by_app_id(directory, app_id)
            if existing is not None:
                return existing
            principal = FakeGraphServicePrincipal(
                str(uuid.uuid4()),
                app_id,
                display_name,
                roles,
                service_principal_names=[app_id, *names],
                oauth2_permission_scopes=list(scopes or []),
                app_owner_organization_id=MICROSOFT_TENANT_ID,
                sign_in_audience="AzureADMultipleOrgs",
            )
            directory.service_principals[principal.object_id] = principal
            return principal

    def _entra_app(self, tenant_id: str, app: FakeApplication) -> FakeApp:
        """The Entra fake's client for ``app``, created (with the roles its assignments give) when missing."""
        key = (tenant_id, app.app_id.lower())
        entra_app = self.entra.apps.get(key)
        if entra_app is None:
            directory = self.directory(tenant_id)
            principal = _principal_by_app_id(directory, app.app_id)
            entra_app = self.entra.add_app(
                tenant_id, app.app_id, object_id=principal.object_id if principal else app.object_id
            )
            self._entra_apps_created.add(key)
            for assignment in directory.assignments:
                if principal is not None and assignment.principal_id == principal.object_id:
                    self._sync_token_roles(tenant_id, directory, assignment, add=True)
        return entra_app

    def _principal_created(self, tenant_id: str, principal: FakeGraphServicePrincipal) -> None:
        key = (tenant_id, principal.app_id.lower())
        if key in self._entra_apps_created:
            self.entra.apps[key].object_id = principal.object_id

    def _principal_deleted(self, tenant_id: str, principal: FakeGraphServicePrincipal) -> None:
        key = (tenant_id, principal.app_id.lower())
        app = _application_by_app_id(self.directory(tenant_id), principal.app_id)
        if key in self._entra_apps_created and app is not None:
            self.entra.apps[key].object_id = app.object_id

    def _forget_credentials(self, tenant_id: str, app: FakeApplication) -> None:
        key = (tenant_id, app.app_id.lower())
        entra_app = self.entra.apps.get(key)
        if entra_app is not None:
            for value in app.secret_values.values():
                entra_app.secrets.pop(value, None)
        if key in self._entra_apps_created:
            self.entra.apps.pop(key, None)
            self._entra_apps_created.discard(key)

    def _sync_token_roles(
        self,
        tenant_id: str,
        directory: FakeDirectory,
        assignment: FakeAssignment,
        *,
        add: bool,
    ) -> None:
        """Put the assigned role's value into (or take it out of) the principal's tokens for the resource."""
        principal = directory.service_principals.get(assignment.principal_id)
        resource = directory.service_principals.get(assignment.resource_id)
        if principal is None or resource is None:
            return
        entra_app = self.entra.apps.get((tenant_id, principal.app_id.lower()))
        role = next(
            (r for r in resource.app_roles if str(r.get("id", "")).lower() == assignment.app_role_id), None
        )
        if entra_app is None or role is None:
            return
        audiences = [name for name in resource.service_principal_names if name.startswith("https://")]
        if resource.app_id == MICROSOFT_GRAPH_APP_ID and self.base_url:
            audiences.append(self.base_url)
        for audience in audiences:
            values = entra_app.roles.setdefault(audience, [])
            if add and role["value"] not in values:
                values.append(role["value"])
            elif not add and role["value"] in values:
                values.remove(role["value"])


@dataclass(frozen=True)
class _Route:
    kinds: frozenset[str]
    method: str
    pattern: re.Pattern[str]
    access: _Access
    handler: _Handler


_BOTH = frozenset({"applications", "servicePrincipals"})
_APPS = frozenset({"applications"})
_SPS = frozenset({"servicePrincipals"})
_SIDE = r"(?P<side>appRoleAssignedTo|appRoleAssignments)"
_ROUTES = [
    _Route(_BOTH, "GET", re.compile(r""), "read", GraphFake._get_object),
    _Route(_BOTH, "PATCH", re.compile(r""), "write", GraphFake._patch_object),
    _Route(_BOTH, "DELETE", re.compile(r""), "write", GraphFake._delete_object),
    _Route(_APPS, "POST", re.compile(r"addPassword"), "write", GraphFake._add_password_route),
    _Route(_APPS, "POST", re.compile(r"removePassword"), "write", GraphFake._remove_password_route),
    _Route(_BOTH, "GET", re.compile(r"owners"), "read", GraphFake._list_owners),
    _Route(_BOTH, "POST", re.compile(r"owners/\$ref"), "write", GraphFake._add_owner),
    _Route(_BOTH, "DELETE", re.compile(r"owners/(?P<item>[^/]+)/\$ref"), "write", GraphFake._remove_owner),
    _Route(_SPS, "GET", re.compile(_SIDE), "read", GraphFake._list_assignments),
    _Route(_SPS, "POST", re.compile(_SIDE), "assign", GraphFake._create_assignment),
    _Route(_SPS, "GET", re.compile(_SIDE + r"/(?P<item>[^/]+)"), "read", GraphFake._get_assignment),
    _Route(_SPS, "DELETE", re.compile(_SIDE + r"/(?P<item>[^/]+)"), "assign", GraphFake._delete_assignment),
]
_JSON_HEADERS = {"Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"}
_INFO = {
    "logoUrl": None,
    "marketingUrl": None,
    "privacyStatementUrl": None,
    "supportUrl": None,
    "termsOfServiceUrl": None,
}
_APPLICATION_FIELDS = {
    "displayName": "display_name",
    "signInAudience": "sign_in_audience",
    "requiredResourceAccess": "required_resource_access",
    "tags": "tags",
    "notes": "notes",
    "appRoles": "app_roles",
}
_PRINCIPAL_FIELDS = {
    "displayName": "display_name",
    "tags": "tags",
    "notes": "notes",
    "accountEnabled": "account_enabled",
    "appRoleAssignmentRequired": "app_role_assignment_required",
}
_READ_ONLY = frozenset({"id", "appId", "createdDateTime", "publisherDomain", "passwordCredentials"})


def _find_route(kind: str, method: str, rest: str) -> tuple[_Route, re.Match[str]]:
    path_known = False
    for route in _ROUTES:
        match = route.pattern.fullmatch(rest)
        if kind in route.kinds and match is not None:
            path_known = True
            if route.method == method:
                return route, match
    if path_known:
        raise _method_not_allowed()
    raise _GraphError(
        400, "Request_BadRequest", f"Resource not found for the segment '{rest.split('/')[0]}'."
    )


def _require(call: _Call, access: _Access) -> None:
    granted = call.permissions
    allowed = {
        "read": bool(READ_ROLES & granted),
        "write": bool({WRITE_ALL, OWNED_BY} & granted),
        "create": bool({WRITE_ALL, OWNED_BY} & granted),
        "assign": bool(ASSIGNMENT_ROLES & granted),
    }[access]
    if not allowed:
        raise _denied()


def _write_application(app: FakeApplication, body: dict[str, Any]) -> None:
    _write(app, body, _APPLICATION_FIELDS)


def _write_principal(principal: FakeGraphServicePrincipal, body: dict[str, Any]) -> None:
    _write(principal, body, _PRINCIPAL_FIELDS)


def _write(target: _Target, body: dict[str, Any], typed: dict[str, str]) -> None:
    """Merge ``body``'s top-level properties into ``target``, annotations (``owners@odata.bind``) aside."""
    for key in body:
        if key in _READ_ONLY:
            raise _GraphError(400, "Request_BadRequest", f"Property '{key}' is read-only and cannot be set.")
    if "displayName" in body and (not isinstance(body["displayName"], str) or not body["displayName"]):
        raise _GraphError(400, "Request_BadRequest", "Property 'displayName' must be a non-empty string.")
    for key, value in body.items():
        if "@" in key:
            continue
        if key in typed:
            setattr(target, typed[key], copy.deepcopy(value))
        else:
            target.properties[key] = copy.deepcopy(value)


def _filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """``$filter``: ``eq`` and ``startswith`` clauses, ``and`` binding tighter than ``or``."""
    alternatives = [[_clause(clause) for clause in _split(part, " and ")] for part in _split(text, " or ")]
    return lambda item: any(all(clause(item) for clause in clauses) for clauses in alternatives)


def _split(text: str, word: str) -> list[str]:
    """Split at ``word`` outside string literals (a doubled quote toggles twice, so it stays inside)."""
    parts: list[str] = []
    quoted, start, index = False, 0, 0
    while index < len(text):
        if text[index] == "'":
            quoted = not quoted
        elif not quoted and text.startswith(word, index):
            parts.append(text[start:index].strip())
            index += len(word)
            start = index
            continue
        index += 1
    parts.append(text[start:].strip())
    return parts


def _clause(text: str) -> Callable[[dict[str, Any]], bool]:
    equal = CLAUSE_EQ.match(text)
    if equal is not None:
        name, literal = equal["field"], equal["value"]
        if literal in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[literal]
            return lambda item: item.get(name) is constant
        wanted = literal[1:-1].replace("''", "'").casefold()
        return lambda item: isinstance(item.get(name), str) and item[name].casefold() == wanted
    prefix = CLAUSE_STARTSWITH.match(text)
    if prefix is not None:
        name, start = prefix["field"], prefix["value"].replace("''", "'").casefold()
        return lambda item: isinstance(item.get(name), str) and item[name].casefold().startswith(start)
    raise _GraphError(400, "Request_UnsupportedQuery", f"Unsupported Query: {text}")


def _select(item: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
    select = query.get("$select", [None])[0]
    if select is None:
        return item
    keys = {key.strip() for key in select.split(",")}
    return {key: value for key, value in item.items() if key in keys or key == "@odata.type"}


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _GraphError(
            400, "Request_BadRequest", f"Invalid value '{text}' for query option '{name}'."
        ) from None


def _body(call: _Call) -> dict[str, Any]:
    if not call.request.body:
        return {}
    try:
        body = json.loads(call.request.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
            "valid JSON format.",
        )
    return body


def _application_by_app_id(directory: FakeDirectory, app_id: str) -> FakeApplication | None:
    return next((a for a in directory.applications.values() if a.app_id.lower() == app_id.lower()), None)


def _principal_by_app_id(directory: FakeDirectory, app_id: str) -> FakeGraphServicePrincipal | None:
    principals = directory.service_principals.values()
    return next((p for p in principals if p.app_id.lower() == app_id.lower()), None)


def _directory_object(directory: FakeDirectory, object_id: str) -> FakeUser | _Target | None:
    return (
        directory.users.get(object_id)
        or directory.service_principals.get(object_id)
        or directory.applications.get(object_id)
    )


def _kind(obj: FakeUser | _Target) -> str:
    if isinstance(obj, FakeUser):
        return "user"
    return "application" if isinstance(obj, FakeApplication) else "servicePrincipal"


def _app_role(role_id: str, value: str, display_name: str) -> dict[str, Any]:
    return {
        "allowedMemberTypes": ["Application"],
        "description": display_name,
        "displayName": display_name,
        "id": role_id,
        "isEnabled": True,
        "origin": "Application",
        "value": value,
    }


def _password_credential(
    key_id: str, display_name: str | None, start: str, end: str, hint: str
) -> dict[str, Any]:
    return {
        "customKeyIdentifier": None,
        "displayName": display_name,
        "endDateTime": end,
        "hint": hint,
        "keyId": key_id,
        "secretText": None,
        "startDateTime": start,
    }


def _new_secret() -> str:
    """A 40-character secret shaped like Entra's: three characters, a digit, ``Q~``, 34 more."""
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    tail = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(34))
    return f"{head}{secrets.choice(string.digits)}Q~{tail}"


def _assignment_id(principal_id: str) -> str:
    """Graph's assignment ids are 43 URL-safe base64 characters that begin with the principal's GUID bytes."""
    try:
        principal = uuid.UUID(principal_id).bytes_le
    except ValueError:
        principal = uuid.uuid4().bytes_le
    return base64.urlsafe_b64encode(principal + os.urandom(16)).rstrip(b"=").decode()


def _parse_time(value: object, name: str) -> datetime:
    text = value if isinstance(value, str) else ""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _GraphError(
            400,
            "Request_BadRequest",
            f"Invalid value specified for property '{name}' of resource 'PasswordCredential'.",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _timestamp(moment: datetime) -> str:
    """Graph's format: UTC, ``Z``, seven fraction digits when there is a fraction."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}0Z" if moment.microsecond else f"{text}Z"


def _not_found(object_id: str) -> _GraphError:
    return _GraphError(404, "Request_ResourceNotFound", f"Resource '{object_id}' does not exist")


def _denied() -> _GraphError:
    return _GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _method_not_allowed() -> _GraphError:
    return _GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri.")


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode(), {**_JSON_HEADERS, **(headers or {})})


def _no_content() -> HttpResponse:
    return HttpResponse(204)
