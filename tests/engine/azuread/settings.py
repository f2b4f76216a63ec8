"""Provider configuration: the ``pulumi:providers:azuread`` arguments with upstream's ``ARM_*`` fallbacks.

Upstream (terraform-provider-azuread v3, ``internal/provider/provider.go``) reads every argument from the
configuration first and from an environment variable second; credentials tried in its order are a client
certificate, a client secret, OIDC, managed identity and the Azure CLI. The stand-in implements the client
secret only and says so for everything else. Endpoints come from the metadata host when one is set
(go-azure-sdk ``environments.FromEndpoint``: ``https://{host}/metadata/endpoints?api-version=2022-09-01``,
which must name ``name``, ``resourceManager`` and ``microsoftGraphResourceId``), otherwise from the
environment name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.engine.azuread.values import UNKNOWN, as_bool

METADATA_API_VERSION = "2022-09-01"

# Built-in clouds of go-azure-sdk ``environments``: (login endpoint, Microsoft Graph endpoint).
BUILT_IN_CLOUDS: dict[str, tuple[str, str]] = {
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "public": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgovernment": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgovernmentl4": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgovernmentl5": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}

# Configuration key -> environment variables upstream falls back to, in order.
ENVIRONMENT_FALLBACKS: dict[str, tuple[str, ...]] = {
    "tenantId": ("ARM_TENANT_ID",),
    "clientId": ("ARM_CLIENT_ID",),
    "clientIdFilePath": ("ARM_CLIENT_ID_FILE_PATH",),
    "clientSecret": ("ARM_CLIENT_SECRET",),
    "clientSecretFilePath": ("ARM_CLIENT_SECRET_FILE_PATH",),
    "environment": ("ARM_ENVIRONMENT",),
    "metadataHost": ("ARM_METADATA_HOSTNAME",),
    "clientCertificate": ("ARM_CLIENT_CERTIFICATE",),
    "clientCertificatePath": ("ARM_CLIENT_CERTIFICATE_PATH",),
    "useCli": ("ARM_USE_CLI",),
    "useMsi": ("ARM_USE_MSI",),
    "useOidc": ("ARM_USE_OIDC",),
}

STRING_KEYS = frozenset(
    {
        "adoPipelineServiceConnectionId",
        "clientCertificate",
        "clientCertificatePassword",
        "clientCertificatePath",
        "clientId",
        "clientIdFilePath",
        "clientSecret",
        "clientSecretFilePath",
        "environment",
        "metadataHost",
        "msiEndpoint",
        "oidcRequestToken",
        "oidcRequestUrl",
        "oidcToken",
        "oidcTokenFilePath",
        "partnerId",
        "tenantId",
    }
)
BOOLEAN_KEYS = frozenset(
    {"disableTerraformPartnerId", "useAksWorkloadIdentity", "useCli", "useMsi", "useOidc"}
)

ONLY_CLIENT_SECRET = (
    "The azuread stand-in used by the tests (tests/engine/azuread) supports only client-secret "
    "authentication: set ARM_CLIENT_ID and ARM_CLIENT_SECRET (or the provider's clientId and clientSecret)"
)


class ConfigurationError(Exception):
    """The provider configuration cannot work; the message names the setting."""


class Secret:
    """A string that never shows in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class Endpoints:
    """Where to sign in and where Microsoft Graph is; URLs without a trailing slash."""

    login: str
    graph: str

    @property
    def graph_scope(self) -> str:
        return f"{self.graph}/.default"


@dataclass(frozen=True)
class ProviderSettings:
    """Validated provider configuration (client-secret credentials only)."""

    tenant_id: str
    client_id: str
    client_secret: Secret
    environment: str
    metadata_host: str

    def token_url(self, endpoints: Endpoints) -> str:
        return f"{endpoints.login}/{self.tenant_id}/oauth2/v2.0/token"


def check_config(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Type failures of the known configuration keys, as (key, reason); unknown values pass."""
    failures: list[tuple[str, str]] = []
    for key, value in inputs.items():
        if value is None or value is UNKNOWN or key not in STRING_KEYS | BOOLEAN_KEYS:
            continue
        if key in BOOLEAN_KEYS:
            try:
                as_bool(value)
            except ValueError:
                failures.append((key, f"azuread:{key} must be true or false, got {value!r}"))
        elif not isinstance(value, str):
            failures.append((key, f"azuread:{key} must be a string"))
        elif key == "environment" and value and value.lower() not in BUILT_IN_CLOUDS:
            names = ", ".join(sorted(BUILT_IN_CLOUDS))
            failures.append((key, f"azuread:environment {value!r} is not one of: {names}"))
    return failures


def resolve(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ProviderSettings:
    """Settings from the configuration and the environment, or :class:`ConfigurationError`."""
    env = os.environ if environ is None else environ

    def setting(key: str) -> str:
        value = config.get(key)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip():
            return value.strip()
        for variable in ENVIRONMENT_FALLBACKS.get(key, ()):
            if env.get(variable, "").strip():
                return env[variable].strip()
        return ""

    if setting("clientCertificate") or setting("clientCertificatePath"):
        raise ConfigurationError(
            f"{ONLY_CLIENT_SECRET}; a client certificate (clientCertificate/clientCertificatePath, "
            "ARM_CLIENT_CERTIFICATE*) is configured, which the stand-in does not implement."
        )
    client_id = _with_file(setting("clientId"), setting("clientIdFilePath"), "Client ID")
    client_secret = _with_file(setting("clientSecret"), setting("clientSecretFilePath"), "Client Secret")
    if not client_id or not client_secret:
        missing = "ARM_CLIENT_ID" if not client_id else "ARM_CLIENT_SECRET"
        asked = [
            f"{key} ({ENVIRONMENT_FALLBACKS[key][0]})"
            for key in ("useCli", "useMsi", "useOidc")
            if _flag(setting(key))
        ]
        requested = (
            f" {', '.join(asked)} asks for another sign-in, which the stand-in does not implement."
            if asked
            else ""
        )
        raise ConfigurationError(
            f"{ONLY_CLIENT_SECRET}; {missing} is not set.{requested} Sign-in through the Azure CLI, "
            "managed identity, OIDC or a certificate is not implemented."
        )
    tenant_id = setting("tenantId")
    if not tenant_id:
        raise ConfigurationError(
            "azuread:tenantId (or ARM_TENANT_ID) must be set for client-secret authentication."
        )
    environment = (setting("environment") or "global").lower()
    if environment not in BUILT_IN_CLOUDS:
        raise ConfigurationError(f"no environment was found with the name {environment!r}")
    return ProviderSettings(
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=Secret(client_secret),
        environment=environment,
        metadata_host=setting("metadataHost"),
    )


def discover_endpoints(
    settings: ProviderSettings,
    get: Callable[..., requests.Response],
    verify: str | bool,
) -> Endpoints:
    """The endpoints of the settings' cloud; with a metadata host, read from its metadata document."""
    if not settings.metadata_host:
        login, graph = BUILT_IN_CLOUDS[settings.environment]
        return Endpoints(login=login, graph=graph)
    url = f"https://{settings.metadata_host}/metadata/endpoints?api-version={METADATA_API_VERSION}"
    try:
        response = get(url, timeout=(10.0, 30.0), verify=verify)
    except requests.RequestException as error:
        raise ConfigurationError(
            f"retrieving metadata from endpoint {url!r}: {type(error).__name__}: {error}"
        ) from error
    if response.status_code != 200:
        raise ConfigurationError(
            f"retrieving metadata from endpoint {url!r}: expected 200 OK but got {response.status_code}"
        )
    try:
        document = json.loads(response.content.removeprefix(b"\xef\xbb\xbf"))
    except ValueError as error:
        raise ConfigurationError(f"retrieving metadata from endpoint {url!r}: not JSON ({error})") from error
    if not isinstance(document, dict):
        raise ConfigurationError(f"retrieving metadata from endpoint {url!r}: expected a JSON object")
    for field in ("name", "resourceManager", "microsoftGraphResourceId"):
        if not document.get(field):
            raise ConfigurationError(f"retrieving metadata from endpoint {url!r}: no `{field}` was returned")
    login = str((document.get("authentication") or {}).get("loginEndpoint") or "")
    if not login:
        raise ConfigurationError(
            f"retrieving metadata from endpoint {url!r}: no `authentication.loginEndpoint` was returned"
        )
    return Endpoints(login=login.rstrip("/"), graph=str(document["microsoftGraphResourceId"]).rstrip("/"))


def ca_bundle(environ: Mapping[str, str] | None = None) -> str | bool:
    """The CA bundle to trust: ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE``, else certifi."""
    env = os.environ if environ is None else environ
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        if env.get(variable, "").strip():
            return env[variable].strip()
    return True


def _with_file(value: str, path: str, label: str) -> str:
    if not path:
        return value
    try:
        from_file = Path(path).read_text().strip()
    except OSError as error:
        raise ConfigurationError(f"reading {label} from file {path!r}: {error.strerror}") from error
    if value and value != from_file:
        raise ConfigurationError(
            f"mismatch between supplied {label} and supplied {label} file contents - "
            "please either remove one or ensure they match"
        )
    return from_file


def _flag(value: str) -> bool:
    try:
        return bool(as_bool(value or None))
    except ValueError:
        return False
