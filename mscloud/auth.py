"""Access tokens for Exchange Online (and Microsoft Graph) from msal: the process-wide token source.

Credential sources, read from the environment at call time and in this order, mirror the azuread provider's:

1. ``ARM_CLIENT_ID`` + ``ARM_CLIENT_SECRET``;
2. ``ARM_CLIENT_ID`` + ``ARM_CLIENT_CERTIFICATE_PATH`` (PKCS#12, or PEM with key and certificate)
   [+ ``ARM_CLIENT_CERTIFICATE_PASSWORD``];
3. ``ARM_CLIENT_ID`` + ``ARM_USE_OIDC=true`` with ``ARM_OIDC_TOKEN``, ``ARM_OIDC_TOKEN_FILE_PATH`` or the
   GitHub Actions variables (``ACTIONS_ID_TOKEN_REQUEST_URL``/``_TOKEN``,
   or ``ARM_OIDC_REQUEST_URL``/``_TOKEN``);
4. otherwise a delegated administrator sign-in from the msal token cache at ``$POP3_OAUTH_TOKEN_CACHE``
   (default ``~/.config/pop3-oauth/msal-token-cache.json``), filled beforehand by :func:`device_code_login`.

The tenant is always the caller's (the resource's), never ``ARM_TENANT_ID``. Tokens are cached per process
and shared across threads; no token or secret ever appears in an exception message or a log record. The
msal calls and the meaning of their failures are :mod:`mscloud.entra`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import msal
import requests

from mscloud.clouds import Cloud
from mscloud.entra import (
    AuthError,
    TokenRequestFailed,
    access_token,
    call_msal,
    client_token,
    confidential_client,
)

EXO_POWERSHELL_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
TOKEN_CACHE_ENV = "POP3_OAUTH_TOKEN_CACHE"  # noqa: S105 - a variable name
DEFAULT_TOKEN_CACHE = "~/.config/pop3-oauth/msal-token-cache.json"  # noqa: S105 - a path
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
OIDC_REQUEST_TIMEOUT = (5.0, 30.0)


class CredentialsMissing(AuthError):
    """Neither app-only credentials nor a delegated sign-in are available."""

    def __init__(self, tenant_id: str, detail: str = "") -> None:
        super().__init__(
            f"No credentials for Exchange Online in tenant {tenant_id}{': ' + detail if detail else ''}. "
            "Set ARM_CLIENT_ID with ARM_CLIENT_SECRET, ARM_CLIENT_CERTIFICATE_PATH "
            "(+ ARM_CLIENT_CERTIFICATE_PASSWORD) or ARM_USE_OIDC=true (+ ARM_OIDC_TOKEN), "
            f"or sign in as an Exchange administrator with `python -m popctl login --tenant-id {tenant_id}`."
        )
        self.tenant_id = tenant_id


@dataclass(frozen=True)
class AppCredential:
    """An app-only credential found in the environment. ``fingerprint`` identifies it without revealing it."""

    kind: str
    client_id: str
    fingerprint: str
    msal_credential: Callable[[], Any] = field(compare=False, repr=False)
    secrets: tuple[str, ...] = field(compare=False, repr=False, default=())

    def describe(self) -> str:
        return f"app-only ({self.kind}, client {self.client_id})"


def app_credential(environ: Mapping[str, str] | None = None) -> AppCredential | None:
    """The app-only credential the ``ARM_*`` variables describe, or None."""
    env = os.environ if environ is None else environ
    client_id = env.get("ARM_CLIENT_ID", "").strip()
    if not client_id:
        return None
    secret = env.get("ARM_CLIENT_SECRET", "")
    if secret:
        return AppCredential(
            "ARM_CLIENT_ID + ARM_CLIENT_SECRET",
            client_id,
            _digest(client_id, secret),
            lambda: secret,
            (secret,),
        )
    certificate = env.get("ARM_CLIENT_CERTIFICATE_PATH", "").strip()
    if certificate:
        password = env.get("ARM_CLIENT_CERTIFICATE_PASSWORD", "")
        return AppCredential(
            "ARM_CLIENT_ID + ARM_CLIENT_CERTIFICATE_PATH",
            client_id,
            _digest(client_id, certificate, password),
            lambda: _certificate_credential(Path(certificate), password),
            (password,) if password else (),
        )
    if env.get("ARM_USE_OIDC", "").strip().lower() in ("1", "true", "yes"):
        assertion = _oidc_assertion(env)
        if assertion is not None:
            return AppCredential(
                "ARM_CLIENT_ID + ARM_USE_OIDC",
                client_id,
                _digest(client_id, "oidc"),
                lambda: {"client_assertion": assertion},
            )
    return None


def token_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the delegated sign-in is cached: ``$POP3_OAUTH_TOKEN_CACHE`` or the default path."""
    env = os.environ if environ is None else environ
    return Path(env.get(TOKEN_CACHE_ENV, "").strip() or DEFAULT_TOKEN_CACHE).expanduser()


def credential_kind(environ: Mapping[str, str] | None = None) -> str:
    """Which credential a token request would use right now, in words (for diagnostics)."""
    credential = app_credential(environ)
    if credential is not None:
        return credential.describe()
    cache = token_cache_path(environ)
    if cache.exists():
        return f"delegated (token cache {cache})"
    return "none (set ARM_CLIENT_ID and a secret, certificate or OIDC token, or run `python -m popctl login`)"


class _Slot:
    """One msal application and the lock that serialises its token requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.app: Any = None
        self.cache: msal.SerializableTokenCache | None = None


class MsalTokenSource:
    """A thread-safe :class:`TokenSource` on msal, with one msal application per credential and authority.

    msal keeps the tokens in memory, so within one process each token is requested once and then reused
    until shortly before it expires. Credentials are read from the environment on every call.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._slots: dict[tuple[str, ...], _Slot] = {}
        self._lock = threading.Lock()

    def credential_kind(self) -> str:
        return credential_kind(self._environ)

    def clear(self) -> None:
        """Forget all msal applications and their tokens (the next call requests fresh tokens)."""
        with self._lock:
            self._slots.clear()

    def get_token(self, tenant_id: str, cloud: Cloud, scope: str | None = None) -> str:
        """An access token for ``scope`` (default ``cloud.exchange_scope``) in ``tenant_id``.

        Raises :class:`CredentialsMissing` or :class:`TokenRequestFailed`.
        """
        wanted = scope or cloud.exchange_scope
        credential = app_credential(self._environ)
        if credential is not None:
            return self._app_only(tenant_id, cloud, wanted, credential)
        return self._delegated(tenant_id, cloud, wanted)

    def _slot(self, key: tuple[str, ...]) -> _Slot:
        with self._lock:
            return self._slots.setdefault(key, _Slot())

    def _app_only(self, tenant_id: str, cloud: Cloud, scope: str, credential: AppCredential) -> str:
        slot = self._slot(("app", cloud.authority(tenant_id), credential.fingerprint))
        with slot.lock:
            if slot.app is None:
                slot.app = confidential_client(
                    credential.client_id,
                    credential.msal_credential,
                    cloud,
                    tenant_id,
                    secrets=credential.secrets,
                )
            return client_token(
                slot.app, credential.client_id, cloud, tenant_id, scope, secrets=credential.secrets
            )

    def _delegated(self, tenant_id: str, cloud: Cloud, scope: str) -> str:
        path = token_cache_path(self._environ)
        if not path.exists():
            raise CredentialsMissing(tenant_id)
        authority = cloud.authority(tenant_id)
        slot = self._slot(("delegated", authority, str(path)))
        action = f"Delegated token request at {authority}"
        with slot.lock:
            if slot.app is None:
                slot.cache = load_token_cache(path)
                cache = slot.cache
                slot.app = call_msal(
                    action, cloud, tenant_id, lambda: _public_client(cloud, tenant_id, cache)
                )
            accounts = [
                a for a in slot.app.get_accounts() if str(a.get("realm", "")).lower() == tenant_id.lower()
            ]
            if not accounts:
                raise CredentialsMissing(
                    tenant_id, f"the token cache {path} holds no sign-in for this tenant"
                )
            account = accounts[0]
            result = call_msal(
                action, cloud, tenant_id, lambda: slot.app.acquire_token_silent([scope], account=account)
            )
            if slot.cache is not None and slot.cache.has_state_changed:
                save_token_cache(path, slot.cache)
        if not result:
            raise CredentialsMissing(tenant_id, f"the sign-in of {account.get('username')} has expired")
        return access_token(action, result)


_shared: MsalTokenSource | None = None
_shared_lock = threading.Lock()


def shared_token_source() -> MsalTokenSource:
    """The process-wide token source, so that every resource in a provider process shares its tokens."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MsalTokenSource()
        return _shared


def device_code_login(tenant_id: str, cloud: Cloud, *, prompt: Callable[[str], None]) -> str:
    """Sign an Exchange administrator in with the device-code flow and persist the msal token cache.

    ``prompt`` receives the text telling the operator where to enter which code. Returns the signed-in
    account's user principal name. The cache file (``token_cache_path()``) is written with mode 0600.
    """
    path = token_cache_path()
    cache = load_token_cache(path) if path.exists() else msal.SerializableTokenCache()
    action = f"Device-code sign-in at {cloud.authority(tenant_id)}"
    app = call_msal(action, cloud, tenant_id, lambda: _public_client(cloud, tenant_id, cache))
    flow = call_msal(
        action, cloud, tenant_id, lambda: app.initiate_device_flow(scopes=[cloud.exchange_scope])
    )
    if "user_code" not in flow:
        raise TokenRequestFailed.from_response(action, flow)
    prompt(str(flow["message"]))
    result = call_msal(action, cloud, tenant_id, lambda: app.acquire_token_by_device_flow(flow))
    access_token(action, result)
    save_token_cache(path, cache)
    shared_token_source().clear()
    claims = result.get("id_token_claims") or {}
    return str(claims.get("preferred_username") or claims.get("upn") or "")


def logout(tenant_id: str | None = None) -> bool:
    """Forget the delegated sign-in for ``tenant_id``, or delete the whole token cache when None.

    Returns whether anything was removed.
    """
    path = token_cache_path()
    shared_token_source().clear()
    if not path.exists():
        return False
    if tenant_id is None:
        path.unlink()
        return True
    data = json.loads(path.read_text() or "{}")
    accounts = data.get("Account", {})
    homes = {
        a.get("home_account_id")
        for a in accounts.values()
        if str(a.get("realm", "")).lower() == tenant_id.lower()
    }
    if not homes:
        return False
    for section in ("AccessToken", "RefreshToken", "IdToken", "Account"):
        entries = data.get(section, {})
        data[section] = {k: v for k, v in entries.items() if v.get("home_account_id") not in homes}
    _write_private(path, json.dumps(data))
    return True


def load_token_cache(path: Path) -> msal.SerializableTokenCache:
    """Read the msal token cache at ``path``; refuse a file that others than its owner can read."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthError(
            f"The token cache {path} is readable by others; run `chmod 600 {path}` or log in again."
        )
    cache = msal.SerializableTokenCache()
    cache.deserialize(path.read_text())
    return cache


def save_token_cache(path: Path, cache: msal.SerializableTokenCache) -> None:
    """Write ``cache`` to ``path`` atomically, readable only by its owner."""
    _write_private(path, cache.serialize())


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".token-cache-")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _public_client(cloud: Cloud, tenant_id: str, cache: msal.SerializableTokenCache) -> Any:
    return msal.PublicClientApplication(
        EXO_POWERSHELL_CLIENT_ID,
        authority=cloud.authority(tenant_id),
        token_cache=cache,
        instance_discovery=cloud.is_known_authority,
    )


def _certificate_credential(path: Path, password: str) -> dict[str, Any]:
    if path.suffix.lower() in (".pfx", ".p12"):
        return {"private_key_pfx_path": str(path), **({"passphrase": password} if password else {})}
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    pem = path.read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    credential: dict[str, Any] = {
        "private_key": pem.decode(),
        "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - Entra's x5t is SHA-1
        "public_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
    }
    if password:
        credential["passphrase"] = password
    return credential


def _oidc_assertion(env: Mapping[str, str]) -> Callable[[], str] | None:
    token = env.get("ARM_OIDC_TOKEN", "").strip()
    if token:
        return lambda: token
    token_file = env.get("ARM_OIDC_TOKEN_FILE_PATH", "").strip()
    if token_file:
        return lambda: Path(token_file).read_text().strip()
    url = env.get("ARM_OIDC_REQUEST_URL") or env.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = env.get("ARM_OIDC_REQUEST_TOKEN") or env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if url and bearer:
        return lambda: _github_oidc_token(url, bearer)
    return None


def _github_oidc_token(url: str, bearer: str) -> str:
    separator = "&" if urlsplit(url).query else "?"
    response = requests.get(
        f"{url}{separator}{urlencode({'audience': FEDERATED_AUDIENCE})}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
        timeout=OIDC_REQUEST_TIMEOUT,
    )
    if response.status_code != 200:
        raise ValueError(f"the OIDC token request answered HTTP {response.status_code}")
    return str(response.json()["value"])


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
