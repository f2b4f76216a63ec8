"""An administrator working by hand in an emulated tenant: plain HTTP to Graph and Exchange, as the portal
or PowerShell would, with the deploying identity's app-only tokens. Nothing of the project's code.

The sandbox's walk makes its "change by hand" with it, and the end-to-end tests their hand-made objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from sandbox.entra import EXCHANGE_RESOURCE
from sandbox.exchange import APP_ANCHOR


class AdminError(RuntimeError):
    """A request the administrator made was refused (the message has status and body, never a token)."""


class TenantAdmin:
    """Requests as the deployer (``client_id``, ``client_secret``) of ``tenant_id``."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        ca_bundle: Path,
        entra_url: str,
        graph_url: str,
        exchange_url: str,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.entra_url = entra_url
        self.graph_url = graph_url
        self.exchange_url = exchange_url
        self.session = requests.Session()
        # A REQUESTS_CA_BUNDLE in the environment would override the session's own CA (a requests quirk).
        self.session.trust_env = False
        self.session.verify = str(ca_bundle)

    def token(self, resource: str) -> str:
        response = self.session.post(
            f"{self.entra_url}/{self.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "scope": f"{resource}/.default",
            },
            timeout=30,
        )
        if not response.ok:
            raise AdminError(f"token for {resource}: {response.status_code} {response.text}")
        return str(response.json()["access_token"])

    def graph(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """``method /v1.0{path}`` on Graph; the decoded answer (None when empty)."""
        response = self.session.request(
            method,
            f"{self.graph_url}/v1.0{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token(self.graph_url)}"},
            timeout=30,
        )
        if not response.ok:
            raise AdminError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def exchange(self, cmdlet: str, parameters: Mapping[str, Any]) -> Any:
        """One cmdlet through Exchange's InvokeCommand; the decoded answer."""
        response = self.session.post(
            f"{self.exchange_url}/adminapi/beta/{self.tenant_id}/InvokeCommand",
            json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": dict(parameters)}},
            headers={
                "Authorization": f"Bearer {self.token(EXCHANGE_RESOURCE)}",
                "X-AnchorMailbox": f"{APP_ANCHOR}{self.tenant_id}",
            },
            timeout=30,
        )
        if not response.ok:
            raise AdminError(f"{cmdlet}: {response.status_code} {response.text}")
        return response.json()
