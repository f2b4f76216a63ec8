"""A small, read-only Microsoft Graph client (``popctl adopt`` reads a hand-made set-up with it).

Tokens come from a :class:`mscloud.http.TokenSource` with the cloud's Graph scope, so the same ``ARM_*``
credentials or delegated sign-in as the Exchange client apply. ``POP3_OAUTH_GRAPH_URL`` moves the endpoint
(through :meth:`mscloud.clouds.Cloud.with_overrides`). The HTTP core (:mod:`mscloud.http`) gives one
session, explicit timeouts, the one retry policy and ``@odata.nextLink`` paging restricted to the Graph
host; errors carry status, Graph's error code and request id but never a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack
from urllib.parse import quote, urlsplit

from mscloud.clouds import Cloud
from mscloud.errors import Pop3OAuthError
from mscloud.http import HttpCore, Reply, TokenSource, Transport

API_VERSION = "v1.0"
BETA = "beta"


class GraphError(Pop3OAuthError):
    """A Graph request failed. ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "", request_id: str = "") -> None:
        parts = [f"HTTP {status}"] if status else []
        parts += [code] if code else []
        parts += [f"request id {request_id}"] if request_id else []
        super().__init__(message + (f" [{', '.join(parts)}]" if status or request_id else ""))
        self.status = status
        self.code = code
        self.request_id = request_id


class GraphNotFound(GraphError):
    """The object does not exist (404)."""


class GraphAccessDenied(GraphError):
    """401/403: the credential lacks a Graph permission such as Application.Read.All."""


class GraphClient:
    """Reads directory objects in one tenant through Microsoft Graph ``v1.0``.

    ``transport`` (:class:`mscloud.http.Transport`): ``max_retry_seconds`` (default 60) bounds the time
    spent waiting out throttling per call; ``clock`` and ``sleep`` are injectable so tests do not wait.
    """

    def __init__(
        self, tenant_id: str, cloud: Cloud, tokens: TokenSource, **transport: Unpack[Transport]
    ) -> None:
        self.tenant_id = tenant_id
        self.cloud = cloud
        self.base_url = f"{cloud.graph_url}/{API_VERSION}"
        self._http = HttpCore(tokens, tenant_id, cloud, cloud.graph_scope, **transport)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``GET {graph}/v1.0/{path}`` and return the JSON object."""
        return self._get(f"{self.base_url}/{path.lstrip('/')}", params)

    def get_all(
        self, path: str, params: Mapping[str, str] | None = None, *, version: str = API_VERSION
    ) -> list[dict[str, Any]]:
        """All items of a collection, following ``@odata.nextLink`` (only to the Graph host);
        ``version`` is ``v1.0`` or ``beta``."""
        url = f"{self.cloud.graph_url}/{version}/{path.lstrip('/')}"
        return self._http.pages(
            url, lambda link, first: self._get(link, params if first else None), _PathFailures(url)
        )

    def applications(
        self, *, client_id: str | None = None, display_name: str | None = None
    ) -> list[dict[str, Any]]:
        """App registrations whose ``appId`` or ``displayName`` equals the given value."""
        if client_id is not None:
            flt = f"appId eq '{_odata_string(client_id)}'"
        elif display_name is not None:
            flt = f"displayName eq '{_odata_string(display_name)}'"
        else:
            raise ValueError("give client_id or display_name")
        select = (
            "id,appId,displayName,signInAudience,requiredResourceAccess,passwordCredentials,"
            "createdDateTime,tags"
        )
        return self.get_all("applications", {"$filter": flt, "$select": select})

    def service_principal_by_app_id(self, app_id: str) -> dict[str, Any] | None:
        """The tenant's service principal (enterprise application) of ``app_id``, or None."""
        found = self.get_all(
            "servicePrincipals",
            {"$filter": f"appId eq '{_odata_string(app_id)}'", "$select": "id,appId,displayName,appRoles"},
        )
        return found[0] if found else None

    def app_role_assignments(self, service_principal_id: str) -> list[dict[str, Any]]:
        """The app roles granted to ``service_principal_id`` (admin consent for application permissions)."""
        return self.get_all(f"servicePrincipals/{quote(service_principal_id, safe='')}/appRoleAssignments")

    def directory_roles_of(self, principal_id: str | None) -> list[dict[str, Any]]:
        """The directory roles the service principal ``principal_id`` holds, directly or through groups
        (``None``: the signed-in user, ``/me``), each with ``displayName`` and ``roleTemplateId``."""
        owner = "me" if principal_id is None else f"servicePrincipals/{quote(principal_id, safe='')}"
        return self.get_all(f"{owner}/transitiveMemberOf/microsoft.graph.directoryRole")

    def default_app_management_policy(self) -> dict[str, Any]:
        """The tenant-wide ``policies/defaultAppManagementPolicy`` (``isEnabled``,
        ``applicationRestrictions``)."""
        return self.get("policies/defaultAppManagementPolicy")

    def app_management_policies(self) -> list[dict[str, Any]]:
        """The custom ``policies/appManagementPolicies`` (``isEnabled``, ``restrictions``)."""
        return self.get_all("policies/appManagementPolicies")

    def policy_applies_to(self, policy_id: str) -> list[dict[str, Any]]:
        """The applications and service principals a custom app-management policy is assigned to."""
        return self.get_all(f"policies/appManagementPolicies/{quote(policy_id, safe='')}/appliesTo")

    def credential_sign_in_activities(self, app_id: str) -> list[dict[str, Any]]:
        """The beta ``reports/appCredentialSignInActivities`` of ``app_id``'s credentials (one entry per
        credential and resource, with ``keyId`` and ``signInActivity.lastSignInDateTime``)."""
        return self.get_all(
            "reports/appCredentialSignInActivities",
            {"$filter": f"appId eq '{_odata_string(app_id)}'"},
            version=BETA,
        )

    def _get(self, url: str, params: Mapping[str, str] | None) -> dict[str, Any]:
        failures = _PathFailures(url)
        reply = self._http.send(
            "GET",
            url,
            failures,
            replayable=True,
            headers=lambda _token: {"Accept": "application/json"},
            params=params,
        )
        try:
            payload = reply.json()
        except ValueError:
            raise GraphError(f"Graph answered {failures.path} with something other than JSON") from None
        if not isinstance(payload, dict):
            raise GraphError(f"Graph answered {failures.path} with JSON that is not an object")
        return payload


class _PathFailures:
    """How the failures of one Graph request are named (:class:`mscloud.http.Failures`)."""

    def __init__(self, url: str) -> None:
        self.path = urlsplit(url).path

    def no_answer(self, url: str, error: Exception, request_id: str) -> Exception:
        return GraphError(f"Graph request to {self.path} failed: {type(error).__name__}")

    def failed(self, reply: Reply) -> Exception:
        code, message, request_id = "", "", reply.request_id
        try:
            body = reply.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            code = str(error.get("code", ""))
            message = str(error.get("message", ""))
            inner = error.get("innerError") or error.get("innererror") or {}
            if isinstance(inner, dict):
                request_id = str(inner.get("request-id") or inner.get("client-request-id") or request_id)
        text = f"Graph GET {self.path}: {message or reply.reason or 'request failed'}"
        if reply.status == 404:
            return GraphNotFound(text, status=reply.status, code=code, request_id=request_id)
        if reply.status in (401, 403):
            hint = " (the credential needs Application.Read.All or an equivalent directory role)"
            return GraphAccessDenied(text + hint, status=reply.status, code=code, request_id=request_id)
        return GraphError(text, status=reply.status, code=code, request_id=request_id)

    def throttled(self, failure: Exception) -> bool:
        return False

    def outcome_unknown(self, failure: Exception) -> Exception | None:
        return None

    def exhausted(self, failure: Exception, attempts: int, budget: float) -> Exception:
        return failure

    def refused_link(self, message: str) -> Exception:
        return GraphError(message)


def _odata_string(value: str) -> str:
    return value.replace("'", "''")
