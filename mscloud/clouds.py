"""The Microsoft clouds a tenant can live in, and the endpoints each one uses.

The program, the Exchange provider and popctl all read endpoints from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
POP_ACCESS_AS_APP = "POP.AccessAsApp"
PUBLISHED_POP_ACCESS_AS_APP_ROLE_ID = "cb842b43-da6e-4506-86fe-bb12199c656d"
"""The POP.AccessAsApp role id Microsoft publishes; a tenant's own Exchange Online service principal wins."""
DEFAULT_CLOUD = "public"
POP3_PORT = 995

AUTHORITY_HOST_ENV = "POP3_OAUTH_AUTHORITY_HOST"
EXCHANGE_URL_ENV = "POP3_OAUTH_EXCHANGE_URL"
GRAPH_URL_ENV = "POP3_OAUTH_GRAPH_URL"


@dataclass(frozen=True)
class Cloud:
    """Endpoints of one Microsoft cloud. URLs carry a scheme and no trailing slash."""

    name: str
    azuread_environment: str
    authority_host: str
    exchange_url: str
    graph_url: str
    pop3_host: str
    exchange_resource: str

    @property
    def exchange_scope(self) -> str:
        """The OAuth2 scope for tokens accepted by Exchange Online (POP3 and admin API)."""
        return f"{self.exchange_resource}/.default"

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_url}/.default"

    def token_endpoint(self, tenant_id: str) -> str:
        return f"{self.authority_host}/{tenant_id}/oauth2/v2.0/token"

    def authority(self, tenant_id: str) -> str:
        return f"{self.authority_host}/{tenant_id}"

    def with_overrides(self, environ: Mapping[str, str] | None = None) -> Cloud:
        """This cloud with the endpoint overrides from the environment applied.

        ``POP3_OAUTH_AUTHORITY_HOST``, ``POP3_OAUTH_EXCHANGE_URL`` and ``POP3_OAUTH_GRAPH_URL`` are full
        URLs with a scheme (``https://127.0.0.1:8443``); tests and private endpoints use them.
        Only the Exchange *admin* URL moves: the token scope a POP3 client asks for stays the cloud's.
        """
        env = os.environ if environ is None else environ
        changes: dict[str, str] = {}
        for variable, field in (
            (AUTHORITY_HOST_ENV, "authority_host"),
            (EXCHANGE_URL_ENV, "exchange_url"),
            (GRAPH_URL_ENV, "graph_url"),
        ):
            value = env.get(variable, "").strip()
            if value:
                changes[field] = normalise_base_url(value, variable)
        return replace(self, **changes) if changes else self

    @property
    def is_known_authority(self) -> bool:
        """Whether msal knows this authority host (otherwise instance discovery must be off)."""
        return self.authority_host in {c.authority_host for c in CLOUDS.values()}


def normalise_base_url(value: str, setting: str) -> str:
    """Return ``value`` without a trailing slash, or raise ValueError naming ``setting``."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(
            f"{setting} must be a full URL with scheme, e.g. https://127.0.0.1:8443 (got {value!r})"
        )
    return value.strip().rstrip("/")


CLOUDS: dict[str, Cloud] = {
    "public": Cloud(
        name="public",
        azuread_environment="global",
        authority_host="https://login.microsoftonline.com",
        exchange_url="https://outlook.office365.com",
        graph_url="https://graph.microsoft.com",
        pop3_host="outlook.office365.com",
        exchange_resource="https://outlook.office365.com",
    ),
    "usgovernment": Cloud(
        name="usgovernment",
        azuread_environment="usgovernment",
        authority_host="https://login.microsoftonline.us",
        exchange_url="https://outlook.office365.us",
        graph_url="https://graph.microsoft.us",
        pop3_host="outlook.office365.us",
        exchange_resource="https://outlook.office365.us",
    ),
    "china": Cloud(
        name="china",
        azuread_environment="china",
        authority_host="https://login.chinacloudapi.cn",
        exchange_url="https://partner.outlook.cn",
        graph_url="https://microsoftgraph.chinacloudapi.cn",
        pop3_host="partner.outlook.cn",
        exchange_resource="https://partner.outlook.cn",
    ),
}


def get_cloud(name: str) -> Cloud:
    """The cloud called ``name`` (``public``, ``usgovernment``, ``china``); KeyError otherwise."""
    return CLOUDS[name]
