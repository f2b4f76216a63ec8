"""Fixtures for the sandbox package: an emulator with one tenant set up for POP3 as `pulumi up` leaves it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sandbox.emulator import Emulator
from sandbox.graph import FakeApplication, FakeGraphServicePrincipal
from sandbox.state import StateFile
from sandbox.tenants import Tenant, seed_tenant
from sandbox.tls import make_certificates

MAILBOXES = ("edi@sandbox.example", "eab@sandbox.example")
POP_ROLE_ID = "cb842b43-da6e-4506-86fe-bb12199c656d"


@dataclass
class World:
    """An emulator, one tenant, and the POP3 app set up in it: consent, secret, registration, FullAccess."""

    emulator: Emulator
    tenant: Tenant
    app: FakeApplication
    principal: FakeGraphServicePrincipal
    secret: str
    consent_id: str

    def token(self, secret: str | None = None) -> str:
        response = requests.post(
            f"{self.emulator.base_url}/{self.tenant.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.app.app_id,
                "client_secret": secret or self.secret,
                "scope": "https://outlook.office365.com/.default",
            },
            verify=str(self.emulator.certificates.ca_bundle),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.emulator.certificates.ca_bundle))


def set_up_pop(emulator: Emulator, tenant: Tenant) -> World:
    """What the program does to a tenant, done with the fakes' own helpers."""
    graph, exchange, tenant_id = emulator.graph, emulator.exchange, tenant.tenant_id
    app = graph.add_application(tenant_id, "POP3APP")
    principal = graph.add_service_principal(tenant_id, app.app_id, "POP3APP")
    secret = graph.add_password(tenant_id, app.object_id)["secretText"]
    consent = graph.grant(tenant_id, principal.object_id, tenant.exchange_online_object_id, POP_ROLE_ID)
    exchange.add_service_principal(tenant_id, app.app_id, principal.object_id, "POP3APP")
    for mailbox in tenant.mailboxes:
        exchange.grant(tenant_id, mailbox, principal.object_id, {"FullAccess"})
    return World(emulator, tenant, app, principal, secret, consent.assignment_id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    emulator = Emulator(make_certificates(tmp_path / "certs"), state=StateFile(tmp_path / "state.json"))
    with emulator:
        tenant = seed_tenant(emulator.entra, emulator.graph, emulator.exchange, emulator.base_url, MAILBOXES)
        yield set_up_pop(emulator, tenant)
