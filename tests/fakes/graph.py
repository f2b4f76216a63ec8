"""A fake of the Microsoft Graph ``v1.0`` endpoints that ``popctl adopt`` reads.

Endpoints (``GET`` only):

- ``/v1.0/applications?$filter=appId eq '..'`` or ``displayName eq '..'`` (``$select`` honoured)
- ``/v1.0/servicePrincipals?$filter=appId eq '..'``
- ``/v1.0/servicePrincipals/{id}/appRoleAssignments``

Bearer tokens are checked against an :class:`tests.fakes.entra.EntraFake`: signature, expiry, audience
(:attr:`GraphFake.base_url` or ``https://graph.microsoft.com``) and an application role that can read
applications; the tenant is the token's ``tid``. Password credentials are returned as Graph does: metadata,
a ``hint`` (first characters of the value) and ``secretText: null``.

Typical use::

    graph = GraphFake(entra)
    with HttpsServer(graph.handle, certs) as server:
        graph.base_url = server.base_url
        app = graph.add_application(TENANT, "POP3APP", pop_role=True)
        sp = graph.add_service_principal(TENANT, app.app_id)
        graph.faults.throttle_next = 1
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt

from tests.fakes.entra import EntraFake
from tests.fakes.tls import HttpRequest, HttpResponse

EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
POP_ROLE_ID = "cb842b43-da6e-4506-86fe-bb12199c656d"
READ_ROLES = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"})
FILTER = re.compile(r"^(?P<field>appId|displayName) eq '(?P<value>(?:[^']|'')*)'$")


@dataclass
class GraphFaults:
    """``throttle_next`` answers 429 with ``Retry-After: retry_after``; ``page_size`` pages collections."""

    throttle_next: int = 0
    retry_after: int = 1
    page_size: int = 0


@dataclass
class FakeApplication:
    object_id: str
    app_id: str
    display_name: str
    sign_in_audience: str = "AzureADMyOrg"
    required_resource_access: list[dict[str, Any]] = field(default_factory=list)
    password_credentials: list[dict[str, Any]] = field(default_factory=list)

    def add_password(self, display_name: str, end: str, value: str) -> str:
        """Record a client secret as Graph shows it (no value, a three-character hint); returns the key id."""
        key_id = str(uuid.uuid4())
        self.password_credentials.append(
            {
                "keyId": key_id,
                "displayName": display_name,
                "startDateTime": "2024-06-01T09:30:00Z",
                "endDateTime": end,
                "hint": value[:3],
                "secretText": None,
                "customKeyIdentifier": None,
            }
        )
        return key_id


@dataclass
class FakeGraphServicePrincipal:
    object_id: str
    app_id: str
    display_name: str
    app_roles: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeAssignment:
    assignment_id: str
    principal_id: str
    resource_id: str
    app_role_id: str


@dataclass
class FakeDirectory:
    applications: dict[str, FakeApplication] = field(default_factory=dict)
    service_principals: dict[str, FakeGraphServicePrincipal] = field(default_factory=dict)
    assignments: list[FakeAssignment] = field(default_factory=list)


class GraphFake:
    """In-memory directory per tenant. Thread-safe; serve :meth:`handle` with ``HttpsServer``."""

    def __init__(self, entra: EntraFake) -> None:
        self.entra = entra
        self.base_url = ""
        self.faults = GraphFaults()
        self.tenants: dict[str, FakeDirectory] = {}
        self.requests: Counter[str] = Counter()
        self.paths: list[str] = []
        self._lock = threading.RLock()

    def directory(self, tenant_id: str) -> FakeDirectory:
        with self._lock:
            return self.tenants.setdefault(tenant_id.lower(), FakeDirectory())

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
        self.directory(tenant_id).applications[app.object_id] = app
        return app

    def add_service_principal(
        self,
        tenant_id: str,
        app_id: str,
        display_name: str = "",
        app_roles: list[dict[str, Any]] | None = None,
    ) -> FakeGraphServicePrincipal:
        principal = FakeGraphServicePrincipal(
            str(uuid.uuid4()), app_id, display_name or app_id, app_roles or []
        )
        self.directory(tenant_id).service_principals[principal.object_id] = principal
        return principal

    def add_exchange_online(self, tenant_id: str) -> FakeGraphServicePrincipal:
        roles: list[dict[str, Any]] = [
            {"id": POP_ROLE_ID, "value": "POP.AccessAsApp", "allowedMemberTypes": ["Application"]},
            {"id": "5e5addcd-3e8d-4e90-baf5-964efab2b20a", "value": "IMAP.AccessAsApp"},
        ]
        return self.add_service_principal(
            tenant_id, EXCHANGE_ONLINE_APP_ID, "Office 365 Exchange Online", roles
        )

    def grant(self, tenant_id: str, principal_id: str, resource_id: str, app_role_id: str) -> FakeAssignment:
        """Admin consent: assign ``app_role_id`` of ``resource_id`` to ``principal_id``."""
        assignment = FakeAssignment(
            str(uuid.uuid4()).replace("-", "")[:22] + "AAAA", principal_id, resource_id, app_role_id
        )
        self.directory(tenant_id).assignments.append(assignment)
        return assignment

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Serve one HTTP request (the ``HttpsServer`` handler)."""
        with self._lock:
            self.requests[request.path] += 1
            self.paths.append(request.path)
            if self.faults.throttle_next > 0:
                self.faults.throttle_next -= 1
                return _error(
                    429, "TooManyRequests", "Too many requests", {"Retry-After": str(self.faults.retry_after)}
                )
        tenant_id, denied = self._authorize(request)
        if denied is not None:
            return denied
        if request.method != "GET":
            return _error(405, "Request_BadRequest", "Only GET is served by this fake")
        parts = request.path.strip("/").split("/")
        if not parts or parts[0] != "v1.0":
            return _error(404, "Request_ResourceNotFound", "Unknown API version")
        with self._lock:
            directory = self.directory(tenant_id)
            if parts[1:] == ["applications"]:
                return self._collection(
                    request, [self._application(app) for app in directory.applications.values()]
                )
            if parts[1:] == ["servicePrincipals"]:
                items = [self._principal(sp) for sp in directory.service_principals.values()]
                return self._collection(request, items)
            if len(parts) == 4 and parts[1] == "servicePrincipals" and parts[3] == "appRoleAssignments":
                if parts[2] not in directory.service_principals:
                    return _error(404, "Request_ResourceNotFound", f"Resource '{parts[2]}' does not exist")
                items = [self._assignment(a) for a in directory.assignments if a.principal_id == parts[2]]
                return self._collection(request, items)
        return _error(404, "Request_ResourceNotFound", f"No route for {request.path}")

    def _authorize(self, request: HttpRequest) -> tuple[str, HttpResponse | None]:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return "", _error(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = jwt.decode(
                header[len("Bearer ") :],
                self.entra.public_key_pem,
                algorithms=["RS256"],
                audience=[self.base_url, "https://graph.microsoft.com"],
            )
        except jwt.PyJWTError:
            return "", _error(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if not READ_ROLES & set(claims.get("roles") or []):
            return "", _error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        return str(claims.get("tid", "")).lower(), None

    def _collection(self, request: HttpRequest, items: list[dict[str, Any]]) -> HttpResponse:
        flt = request.query.get("$filter", [None])[0]
        if flt is not None:
            match = FILTER.match(flt)
            if match is None:
                return _error(400, "Request_UnsupportedQuery", f"Unsupported query: {flt}")
            wanted = match["value"].replace("''", "'")
            items = [item for item in items if str(item.get(match["field"])) == wanted]
        select = request.query.get("$select", [None])[0]
        if select is not None:
            keys = set(select.split(","))
            items = [{key: value for key, value in item.items() if key in keys} for item in items]
        skip = int(request.query.get("$skiptoken", ["0"])[0])
        size = self.faults.page_size or len(items) or 1
        page = items[skip : skip + size]
        payload: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#collection",
            "value": page,
        }
        if skip + size < len(items):
            query = "&".join(f"{k}={v[0]}" for k, v in request.query.items() if k != "$skiptoken")
            payload["@odata.nextLink"] = f"{self.base_url}{request.path}?{query}&$skiptoken={skip + size}"
        return _json(200, payload)

    @staticmethod
    def _application(app: FakeApplication) -> dict[str, Any]:
        return {
            "id": app.object_id,
            "appId": app.app_id,
            "displayName": app.display_name,
            "signInAudience": app.sign_in_audience,
            "requiredResourceAccess": app.required_resource_access,
            "passwordCredentials": app.password_credentials,
            "keyCredentials": [],
        }

    @staticmethod
    def _principal(principal: FakeGraphServicePrincipal) -> dict[str, Any]:
        return {
            "id": principal.object_id,
            "appId": principal.app_id,
            "displayName": principal.display_name,
            "appRoles": principal.app_roles,
            "servicePrincipalType": "Application",
        }

    @staticmethod
    def _assignment(assignment: FakeAssignment) -> dict[str, Any]:
        return {
            "id": assignment.assignment_id,
            "appRoleId": assignment.app_role_id,
            "principalId": assignment.principal_id,
            "principalType": "ServicePrincipal",
            "resourceId": assignment.resource_id,
            "createdDateTime": "2024-06-01T09:31:00Z",
        }


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(
        status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    inner = {
        "date": "2025-03-01T12:00:00",
        "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4()),
    }
    return _json(status, {"error": {"code": code, "message": message, "innerError": inner}}, headers)
