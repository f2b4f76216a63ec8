"""Tenant-wide Graph routes of the fake (for ``popctl preflight``, ``fleet`` and ``handoff``): app-management
policies, directory roles of principals, and the credential sign-in report.

Kept beside :mod:`sandbox.graph`, which hands every request here first (:meth:`TenantTables.route`); a
request that is none of these falls through to it. Routes, under ``/v1.0`` and ``/beta`` unless noted:

- ``GET /policies/defaultAppManagementPolicy``, ``GET /policies/appManagementPolicies``,
  ``GET /policies/appManagementPolicies/{id}``, ``GET /policies/appManagementPolicies/{id}/appliesTo``:
  need ``Policy.Read.All`` (or ``Policy.ReadWrite.ApplicationConfiguration``). A tenant starts with the
  default policy disabled and without restrictions, as Entra ships it.
- ``GET /me/transitiveMemberOf/microsoft.graph.directoryRole`` (a delegated caller's own roles: any
  delegated token) and ``GET /servicePrincipals/{id}/transitiveMemberOf/microsoft.graph.directoryRole``
  (needs one of Graph's read permissions, as other reads of the fake): the ``directoryRole`` objects
  (``id``, ``displayName``, ``roleTemplateId``) given with :meth:`TenantTables.give_role`.
- ``GET /beta/reports/appCredentialSignInActivities`` (``$filter=appId eq '..'``): needs
  ``AuditLog.Read.All`` or ``Directory.Read.All``; a tenant without Entra ID P1
  (:meth:`TenantTables.without_premium`) answers 403
  ``Authentication_RequestFromNonPremiumTenantOrB2CTenant``; ``/v1.0`` answers 400 (a beta-only segment).

Shapes follow Graph's resource pages (``tenantAppManagementPolicy``, ``appManagementPolicy``,
``passwordCredentialConfiguration``, ``appCredentialSignInActivity``); tests fill the tables directly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.graph import GraphFake, _Call
    from sandbox.tls import HttpResponse

POLICY_READ = frozenset({"Policy.Read.All", "Policy.ReadWrite.ApplicationConfiguration"})
REPORT_READ = frozenset({"AuditLog.Read.All", "Directory.Read.All"})
PRINCIPAL_READ = frozenset(
    {
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Application.ReadWrite.OwnedBy",
    }
)
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"
_ROLES_OF = re.compile(
    r"^servicePrincipals/(?P<id>[^/]+)/transitiveMemberOf/microsoft\.graph\.directoryRole$"
)
_POLICY = re.compile(r"^policies/appManagementPolicies/(?P<id>[^/]+)(?P<applies>/appliesTo)?$")


def password_restriction(
    restriction_type: str,
    *,
    max_lifetime: str | None = None,
    state: str = "enabled",
    created_after: str = "2019-01-01T00:00:00Z",
    exempt_attribute: str | None = None,
) -> dict[str, Any]:
    """One ``passwordCredentialConfiguration``; ``exempt_attribute`` adds an ``excludeActors`` custom
    security attribute exemption (``Set/Attribute`` eq ``value``)."""
    entry: dict[str, Any] = {
        "restrictionType": restriction_type,
        "state": state,
        "maxLifetime": max_lifetime,
        "restrictForAppsCreatedAfterDateTime": created_after,
        "excludeActors": None,
    }
    if exempt_attribute is not None:
        entry["excludeActors"] = {
            "customSecurityAttributes": [
                {
                    "@odata.type": "#microsoft.graph.customSecurityAttributeStringValueExemption",
                    "id": exempt_attribute,
                    "operator": "equals",
                    "value": "true",
                }
            ]
        }
    return entry


@dataclass
class TenantTables:
    """Per-tenant policies, directory roles and credential sign-in activity; :meth:`route` serves them."""

    default_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    applies_to: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    sign_ins: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    non_premium: set[str] = field(default_factory=set)

    def reset(self) -> None:
        for table in (self.default_policies, self.policies, self.applies_to, self.roles, self.sign_ins):
            table.clear()
        self.non_premium.clear()

    # -- test-side helpers -------------------------------------------------------------------------------

    def restrict_default(self, tenant_id: str, *restrictions: dict[str, Any], enabled: bool = True) -> None:
        """Set the tenant's default policy's ``applicationRestrictions.passwordCredentials``."""
        policy = self._default(tenant_id.lower())
        policy["isEnabled"] = enabled
        policy["applicationRestrictions"]["passwordCredentials"] = list(restrictions)

    def add_policy(
        self, tenant_id: str, name: str, *restrictions: dict[str, Any], applies_to: list[str]
    ) -> str:
        """A custom policy assigned to the given application object ids; returns its id."""
        policy_id = str(uuid.uuid4())
        self.policies.setdefault(tenant_id.lower(), []).append(
            {
                "id": policy_id,
                "displayName": name,
                "description": name,
                "isEnabled": True,
                "restrictions": {"passwordCredentials": list(restrictions), "keyCredentials": []},
            }
        )
        self.applies_to[policy_id] = list(applies_to)
        return policy_id

    def give_role(self, tenant_id: str, principal_id: str, display_name: str, template_id: str) -> None:
        """Make ``principal_id`` (a user or service principal) hold a directory role."""
        self.roles.setdefault((tenant_id.lower(), principal_id.lower()), []).append(
            {
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{template_id}")),
                "displayName": display_name,
                "description": display_name,
                "roleTemplateId": template_id,
            }
        )

    def record_sign_in(self, tenant_id: str, app_id: str, key_id: str, last: str | None) -> None:
        """One ``appCredentialSignInActivity`` entry (a client secret used at ``last``, None: never)."""
        self.sign_ins.setdefault(tenant_id.lower(), []).append(
            {
                "id": str(uuid.uuid4()),
                "keyId": key_id,
                "keyType": "clientSecret",
                "keyUsage": "verify",
                "appId": app_id,
                "appObjectId": None,
                "servicePrincipalObjectId": None,
                "resourceId": "00000002-0000-0ff1-ce00-000000000000",
                "credentialOrigin": "application",
                "createdDateTime": "2026-01-01T00:00:00Z",
                "expirationDateTime": None,
                "signInActivity": {"lastSignInDateTime": last, "lastSignInRequestId": str(uuid.uuid4())}
                if last
                else None,
            }
        )

    def without_premium(self, tenant_id: str) -> None:
        """The tenant lacks Entra ID P1: the sign-in report is refused."""
        self.non_premium.add(tenant_id.lower())

    # -- serving -----------------------------------------------------------------------------------------

    def route(self, fake: GraphFake, call: _Call) -> HttpResponse | None:
        """The answer to ``call`` when it is one of this module's routes, else None."""
        from sandbox.graph import _GraphError

        path = "/".join(call.segments)
        handlers: list[tuple[Callable[[str], bool], Callable[[], HttpResponse]]] = [
            (lambda p: p == "policies/defaultAppManagementPolicy", lambda: self._default_policy(fake, call)),
            (lambda p: p == "policies/appManagementPolicies", lambda: self._policies(fake, call)),
            (lambda p: bool(_POLICY.match(p)), lambda: self._policy(fake, call, path)),
            (
                lambda p: p == "me/transitiveMemberOf/microsoft.graph.directoryRole",
                lambda: self._my_roles(fake, call),
            ),
            (lambda p: bool(_ROLES_OF.match(p)), lambda: self._roles_of(fake, call, path)),
            (lambda p: p == "reports/appCredentialSignInActivities", lambda: self._sign_ins(fake, call)),
        ]
        for matches, handler in handlers:
            if matches(path):
                if call.method != "GET":
                    raise _GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed.")
                return handler()
        return None

    def _default(self, tenant_id: str) -> dict[str, Any]:
        return self.default_policies.setdefault(
            tenant_id,
            {
                "id": DEFAULT_POLICY_ID,
                "displayName": "Default app management tenant policy",
                "description": "Default tenant policy that enforces app management restrictions.",
                "isEnabled": False,
                "applicationRestrictions": {"passwordCredentials": [], "keyCredentials": []},
                "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []},
            },
        )

    def _default_policy(self, fake: GraphFake, call: _Call) -> HttpResponse:
        _require(call, POLICY_READ)
        return fake._entity(
            call, "policies/defaultAppManagementPolicy/$entity", self._default(call.tenant_id)
        )

    def _policies(self, fake: GraphFake, call: _Call) -> HttpResponse:
        _require(call, POLICY_READ)
        items = [(None, policy) for policy in self.policies.get(call.tenant_id, [])]
        return fake._collection(call, "policies/appManagementPolicies", items)

    def _policy(self, fake: GraphFake, call: _Call, path: str) -> HttpResponse:
        from sandbox.graph import _not_found

        _require(call, POLICY_READ)
        match = _POLICY.match(path)
        assert match is not None
        policy = next((p for p in self.policies.get(call.tenant_id, []) if p["id"] == match["id"]), None)
        if policy is None:
            raise _not_found(match["id"])
        if not match["applies"]:
            return fake._entity(call, "policies/appManagementPolicies/$entity", policy)
        directory = call.directory
        objects = []
        for object_id in self.applies_to.get(policy["id"], []):
            app = directory.applications.get(object_id.lower())
            if app is not None:
                objects.append(
                    (
                        None,
                        {
                            "@odata.type": "#microsoft.graph.application",
                            "id": app.object_id,
                            "appId": app.app_id,
                            "displayName": app.display_name,
                        },
                    )
                )
        return fake._collection(call, "directoryObjects", objects)

    def _my_roles(self, fake: GraphFake, call: _Call) -> HttpResponse:
        from sandbox.graph import _GraphError

        if call.caller_id not in call.directory.users:
            raise _GraphError(
                400, "Request_BadRequest", "/me request is only valid with delegated authentication flow."
            )
        return self._roles(fake, call, call.caller_id)

    def _roles_of(self, fake: GraphFake, call: _Call, path: str) -> HttpResponse:
        from sandbox.graph import _not_found

        _require(call, PRINCIPAL_READ)
        match = _ROLES_OF.match(path)
        assert match is not None
        principal_id = match["id"].lower()
        if principal_id not in call.directory.service_principals:
            raise _not_found(principal_id)
        return self._roles(fake, call, principal_id)

    def _roles(self, fake: GraphFake, call: _Call, principal_id: str) -> HttpResponse:
        roles = self.roles.get((call.tenant_id, principal_id), [])
        return fake._collection(call, "directoryObjects", [(None, dict(role)) for role in roles])

    def _sign_ins(self, fake: GraphFake, call: _Call) -> HttpResponse:
        from sandbox.graph import _GraphError

        if call.version != "beta":
            raise _GraphError(
                400, "BadRequest", "Resource not found for the segment 'appCredentialSignInActivities'."
            )
        _require(call, REPORT_READ)
        if call.tenant_id in self.non_premium:
            raise _GraphError(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        entries = [(None, dict(entry)) for entry in self.sign_ins.get(call.tenant_id, [])]
        return fake._collection(call, "reports/appCredentialSignInActivities", entries)


def _require(call: _Call, permissions: frozenset[str]) -> None:
    from sandbox.graph import _denied

    if not permissions & call.permissions:
        raise _denied()
