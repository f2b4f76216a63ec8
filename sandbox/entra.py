"""A fake of the Entra ID (Azure AD) v2.0 token service, good enough for msal and for POP3 tests.

Endpoints, per tenant id in the path:

- ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` (also ``/{tenant}/.well-known/...``)
- ``GET  /{tenant}/discovery/v2.0/keys`` (JWKS with the signing key)
- ``POST /{tenant}/oauth2/v2.0/token``: ``client_credentials`` (``client_secret`` or ``client_assertion``),
  ``urn:ietf:params:oauth:grant-type:device_code`` and ``refresh_token``
- ``POST /{tenant}/oauth2/v2.0/devicecode``
- ``GET  /github-actions/idtoken?audience=...`` (GitHub Actions' OIDC token service: bearer
  :attr:`EntraFake.github_request_token`, token subject :attr:`EntraFake.github_subject`)

Typical use::

    entra = EntraFake()
    with HttpsServer(entra.handle, certs) as server:
        entra.base_url = server.base_url
        entra.add_tenant(TENANT)
        app = entra.add_app(TENANT, secrets={"s3cret": None},
                            roles={"https://outlook.office365.com": ["POP.AccessAsApp"]},
                            extra_claims={"upn": "edi@contoso.com"})
        ... msal / POP3 client with authority f"{server.base_url}/{TENANT}" ...
        entra.requests["token"]   # how many token requests were served

Tokens are RS256 JWTs (header ``typ: JWT`` and ``kid``) signed with :attr:`EntraFake.signing_key`;
:attr:`EntraFake.public_key_pem` and :attr:`EntraFake.kid` let a resource server verify them.
Errors have Entra's JSON shape (``error``, ``error_description`` starting ``AADSTSnnnn:``,
``error_codes``, ``trace_id``, ``correlation_id``, ``timestamp``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.tls import HttpRequest, HttpResponse

EXCHANGE_RESOURCE = "https://outlook.office365.com"
EXO_POWERSHELL_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
DELEGATED_ADMIN_SCOPE = "AdminApi.AccessAsUser.All"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GITHUB_OIDC_PATH = "/github-actions/idtoken"


@dataclass
class FakeApp:
    """A confidential client registered in one tenant. Mutate fields freely between requests.

    ``secrets`` maps a secret value to its expiry (epoch seconds) or ``None`` (never expires).
    ``roles`` maps a resource (``https://outlook.office365.com``) to the app roles put in its tokens.
    ``certificates`` holds PEM certificates whose keys may sign a ``client_assertion``.
    ``federated_subjects`` are ``sub`` values of federated (OIDC) tokens
    from :meth:`EntraFake.federated_token`
    that this app accepts as ``client_assertion``.
    ``lifetime`` is the token lifetime in seconds (negative issues already-expired tokens);
    ``audience``/``issuer`` override those claims; ``extra_claims`` are merged into every token.
    """

    tenant_id: str
    client_id: str
    object_id: str
    secrets: dict[str, float | None] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    certificates: list[bytes] = field(default_factory=list)
    federated_subjects: set[str] = field(default_factory=set)
    lifetime: int = 3600
    audience: str | None = None
    issuer: str | None = None
    extra_claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class _DeviceFlow:
    tenant_id: str
    client_id: str
    scope: str
    user_code: str
    upn: str | None = None
    user_object_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class EntraFake:
    """In-memory Entra ID. Thread-safe; serve :meth:`handle` with :class:`sandbox.tls.HttpsServer`.

    Set :attr:`base_url` to the server's URL before the first request (discovery documents use it).
    :attr:`clock` (epoch seconds, ``time.time`` unless replaced) dates every token and decides every expiry
    here and in the Graph and Exchange fakes, which check tokens with :meth:`verify_token`; the sandbox
    moves it to rehearse a rotation.
    """

    def __init__(
        self,
        *,
        issuer_template: str = "https://login.microsoftonline.com/{tenant}/v2.0",
        signing_key: rsa.RSAPrivateKey | None = None,
        federation_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.base_url = ""
        self.clock: Callable[[], float] = time.time
        self.issuer_template = issuer_template
        self.signing_key = signing_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = hashlib.sha256(self.public_key_pem).hexdigest()[:32]
        self.federation_key = federation_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.github_request_token = secrets.token_urlsafe(16)
        self.github_subject = "repo:example/pop3-oauth:ref:refs/heads/main"
        self.requests: Counter[str] = Counter()
        self.tenants: set[str] = set()
        self.apps: dict[tuple[str, str], FakeApp] = {}
        self.public_clients: set[str] = {EXO_POWERSHELL_CLIENT_ID}
        self.fail_next_token_requests = 0
        self.delay_next_token_requests = 0
        self.delay_seconds = 0.0
        self._device_flows: dict[str, _DeviceFlow] = {}
        self._refresh_tokens: dict[str, _DeviceFlow] = {}
        self._lock = threading.Lock()

    @property
    def public_key_pem(self) -> bytes:
        """The token signing key's public half (``SubjectPublicKeyInfo`` PEM)."""
        return self.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def add_tenant(self, tenant_id: str) -> None:
        self.tenants.add(tenant_id.lower())

    def add_app(
        self,
        tenant_id: str,
        client_id: str | None = None,
        *,
        object_id: str | None = None,
        secrets: dict[str, float | None] | None = None,
        roles: dict[str, list[str]] | None = None,
        **overrides: Any,
    ) -> FakeApp:
        """Register a confidential client; ``object_id`` is its service principal's id (``oid`` claim)."""
        app = FakeApp(
            tenant_id=tenant_id.lower(),
            client_id=client_id or str(uuid.uuid4()),
            object_id=object_id or str(uuid.uuid4()),
            secrets=dict(secrets or {}),
            roles=dict(roles or {}),
            **overrides,
        )
        self.add_tenant(tenant_id)
        self.apps[(app.tenant_id, app.client_id.lower())] = app
        return app

    def federated_token(
        self, subject: str, *, audience: str = FEDERATED_AUDIENCE, lifetime: int = 600
    ) -> str:
        """An OIDC token from a fake external issuer (a CI system) for ``client_assertion`` use."""
        now = int(self.clock())
        claims: dict[str, Any] = {"iss": "https://token.actions.example", "sub": subject, "aud": audience}
        claims |= {"iat": now, "nbf": now, "exp": now + lifetime}
        return jwt.encode(claims, self.federation_key, algorithm="RS256")

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            return [flow.user_code for flow in self._device_flows.values() if flow.upn is None]

    def approve_device_code(self, user_code: str, upn: str) -> None:
        """Act as the administrator who enters ``user_code`` and signs in as ``upn``."""
        with self._lock:
            for flow in self._device_flows.values():
                if flow.user_code == user_code:
                    flow.upn = upn
                    return
        raise KeyError(user_code)

    def issue_token(self, app: FakeApp, resource: str) -> str:
        """An app-only access token for ``app`` and ``resource``, as the token endpoint would issue."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": app.issuer or self.issuer_template.format(tenant=app.tenant_id),
            "aud": app.audience or resource,
            "tid": app.tenant_id,
            "appid": app.client_id,
            "azp": app.client_id,
            "oid": app.object_id,
            "sub": app.object_id,
            "roles": list(app.roles.get(resource, [])),
            "iat": now,
            "nbf": now - 5 if app.lifetime > 0 else now + app.lifetime - 60,
            "exp": now + app.lifetime,
            "ver": "2.0",
        }
        claims |= app.extra_claims
        return self._sign(claims)

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Serve one HTTP request (the :class:`sandbox.tls.HttpsServer` handler)."""
        if request.path == GITHUB_OIDC_PATH:
            self._count("github-oidc")
            return self._github_oidc(request)
        parts = request.path.strip("/").split("/")
        tenant = parts[0].lower() if parts else ""
        tail = "/".join(parts[1:])
        if tail in ("v2.0/.well-known/openid-configuration", ".well-known/openid-configuration"):
            self._count("discovery")
            return self._discovery(tenant)
        if tail == "discovery/v2.0/keys":
            self._count("keys")
            return _json(200, {"keys": [self.jwk()]})
        if request.method == "POST" and tail == "oauth2/v2.0/devicecode":
            self._count("devicecode")
            return self._device_code(tenant, request.form())
        if request.method == "POST" and tail == "oauth2/v2.0/token":
            self._count("token")
            return self._token(tenant, request.form())
        return _json(404, {"error": "not_found"})

    def verify_token(
        self, token: str, audience: str | Sequence[str], *, require: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The claims of ``token`` if this service signed it for ``audience`` and, by :attr:`clock`, it is
        valid now (``nbf``, ``iat`` and ``exp``, no leeway); else raises the ``jwt.PyJWTError`` saying why."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self.public_key_pem,
            algorithms=["RS256"],
            audience=audience,
            options={
                "require": ["exp", *require],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
        now = self.clock()
        if float(claims["exp"]) <= now:
            raise jwt.ExpiredSignatureError("Signature has expired")
        if float(claims.get("nbf", now)) > now or float(claims.get("iat", now)) > now:
            raise jwt.ImmatureSignatureError("The token is not yet valid")
        return claims

    def jwk(self) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.signing_key.public_key()))
        return {**data, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def _count(self, endpoint: str) -> None:
        with self._lock:
            self.requests[endpoint] += 1

    def _github_oidc(self, request: HttpRequest) -> HttpResponse:
        if request.headers.get("authorization") != f"Bearer {self.github_request_token}":
            return _json(401, {"message": "Bad credentials"})
        audience = request.query.get("audience", [FEDERATED_AUDIENCE])[0]
        return _json(200, {"value": self.federated_token(self.github_subject, audience=audience)})

    def _discovery(self, tenant: str) -> HttpResponse:
        if tenant not in self.tenants:
            return _aadsts(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{self.base_url}/{tenant}"
        return _json(
            200,
            {
                "issuer": self.issuer_template.format(tenant=tenant),
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
            },
        )

    def _token(self, tenant: str, form: dict[str, str]) -> HttpResponse:
        fault = self._take_fault()
        if fault is not None:
            return fault
        if tenant not in self.tenants:
            return _aadsts(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            return self._client_credentials(tenant, form)
        if grant == DEVICE_CODE_GRANT:
            return self._device_code_token(form)
        if grant == "refresh_token":
            return self._refresh(form)
        return _aadsts(
            400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
        )

    def _take_fault(self) -> HttpResponse | None:
        with self._lock:
            fail = self.fail_next_token_requests > 0
            self.fail_next_token_requests -= int(fail)
            delay = self.delay_next_token_requests > 0
            self.delay_next_token_requests -= int(delay)
        if delay:
            time.sleep(self.delay_seconds)
        if fail:
            return _aadsts(
                500, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again."
            )
        return None

    def _client_credentials(self, tenant: str, form: dict[str, str]) -> HttpResponse:
        client_id = form.get("client_id", "").lower()
        app = self.apps.get((tenant, client_id))
        if app is None:
            return _aadsts(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        failure = self._authenticate(app, form)
        if failure is not None:
            return failure
        resource = _resource_of(form.get("scope", ""))
        if resource is None:
            return _aadsts(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
        return _json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": max(app.lifetime, 0),
                "ext_expires_in": max(app.lifetime, 0),
                "access_token": self.issue_token(app, resource),
            },
        )

    def _authenticate(self, app: FakeApp, form: dict[str, str]) -> HttpResponse | None:
        if "client_secret" in form:
            secret = form["client_secret"]
            if secret not in app.secrets:
                return _aadsts(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the "
                    "client secret value, not the client secret ID, "
                    f"for a secret added to app '{app.client_id}'.",
                )
            expiry = app.secrets[secret]
            if expiry is not None and expiry <= self.clock():
                return _aadsts(
                    401,
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{app.client_id}' are expired.",
                )
            return None
        if form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE and "client_assertion" in form:
            if self._assertion_valid(app, form["client_assertion"]):
                return None
            return _aadsts(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        return _aadsts(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )

    def _assertion_valid(self, app: FakeApp, assertion: str) -> bool:
        try:
            claims = jwt.decode(
                assertion, self.federation_key.public_key(), algorithms=["RS256"], audience=FEDERATED_AUDIENCE
            )
        except jwt.PyJWTError:
            claims = None
        if claims is not None:
            return claims.get("sub") in app.federated_subjects
        for pem in app.certificates:
            public_pem = (
                x509.load_pem_x509_certificate(pem)
                .public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            )
            try:
                claims = jwt.decode(
                    assertion, public_pem, algorithms=["RS256", "PS256"], options={"verify_aud": False}
                )
            except jwt.PyJWTError:
                continue
            return bool(claims.get("iss") == app.client_id and claims.get("sub") == app.client_id)
        return False

    def _device_code(self, tenant: str, form: dict[str, str]) -> HttpResponse:
        if tenant not in self.tenants:
            return _aadsts(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        client_id = form.get("client_id", "")
        if client_id not in self.public_clients:
            return _aadsts(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found.",
            )
        device_code = secrets.token_urlsafe(24)
        user_code = secrets.token_hex(4).upper()
        with self._lock:
            self._device_flows[device_code] = _DeviceFlow(tenant, client_id, form.get("scope", ""), user_code)
        uri = f"{self.base_url}/devicelogin"
        return _json(
            200,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": uri,
                "expires_in": 900,
                "interval": 1,
                "message": f"To sign in, use a web browser to open the page {uri} "
                f"and enter the code {user_code}.",
            },
        )

    def _device_code_token(self, form: dict[str, str]) -> HttpResponse:
        with self._lock:
            flow = self._device_flows.get(form.get("device_code", ""))
            if flow is not None and flow.upn is not None:
                del self._device_flows[form["device_code"]]
        if flow is None:
            return _aadsts(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid.",
            )
        if flow.upn is None:
            return _aadsts(
                400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending."
            )
        return self._delegated_tokens(flow)

    def _refresh(self, form: dict[str, str]) -> HttpResponse:
        with self._lock:
            flow = self._refresh_tokens.get(form.get("refresh_token", ""))
        if flow is None:
            return _aadsts(
                400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired."
            )
        return self._delegated_tokens(flow, scope=form.get("scope"))

    def _delegated_tokens(self, flow: _DeviceFlow, scope: str | None = None) -> HttpResponse:
        assert flow.upn is not None
        resource = _resource_of(scope or flow.scope) or EXCHANGE_RESOURCE
        now = int(self.clock())
        common: dict[str, Any] = {
            "tid": flow.tenant_id,
            "oid": flow.user_object_id,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 3600,
        }
        access = {
            **common,
            "iss": self.issuer_template.format(tenant=flow.tenant_id),
            "aud": resource,
            "appid": flow.client_id,
            "upn": flow.upn,
            "unique_name": flow.upn,
            "scp": DELEGATED_ADMIN_SCOPE,
            "sub": flow.user_object_id,
        }
        id_token = {
            **common,
            "iss": self.issuer_template.format(tenant=flow.tenant_id),
            "aud": flow.client_id,
            "sub": flow.user_object_id,
            "preferred_username": flow.upn,
            "name": flow.upn,
        }
        refresh_token = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[refresh_token] = flow
        client_info = {"uid": flow.user_object_id, "utid": flow.tenant_id}
        return _json(
            200,
            {
                "token_type": "Bearer",
                "scope": f"{resource}/{DELEGATED_ADMIN_SCOPE}",
                "expires_in": 3600,
                "access_token": self._sign(access),
                "refresh_token": refresh_token,
                "id_token": self._sign(id_token),
                "client_info": base64.urlsafe_b64encode(json.dumps(client_info).encode())
                .decode()
                .rstrip("="),
            },
        )

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.signing_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )


def self_signed_certificate(common_name: str = "pop3-oauth-test") -> tuple[bytes, bytes]:
    """A throw-away client certificate for ``client_assertion`` tests: (certificate PEM, private key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now.replace(year=now.year + 1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _resource_of(scope: str) -> str | None:
    for item in scope.split():
        if item.endswith("/.default"):
            return item[: -len("/.default")]
        if item.startswith("https://") and "/" in item[len("https://") :]:
            return item.rsplit("/", 1)[0]
    return None


def _json(status: int, payload: dict[str, Any]) -> HttpResponse:
    return HttpResponse(
        status, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8"}
    )


def _aadsts(status: int, error: str, code: int, text: str) -> HttpResponse:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    description = f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"
    return _json(
        status,
        {
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
        },
    )
