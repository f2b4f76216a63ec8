"""Fixtures: the Entra and Exchange fakes on 127.0.0.1 over TLS, and a fresh tenant per test."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mscloud.clouds import CLOUDS, Cloud
from sandbox.entra import EXCHANGE_RESOURCE, EntraFake, FakeApp
from sandbox.exchange import MANAGE_AS_APP, ExchangeFake, ExchangeFaults, FakeServicePrincipal
from sandbox.tls import HttpsServer, TestCertificates, make_certificates

DEPLOYER_CLIENT_ID = str(uuid.uuid4())
DEPLOYER_SECRET = "deployer-secret-" + secrets.token_hex(12)
ARM_VARIABLES = (
    "ARM_CLIENT_ID",
    "ARM_CLIENT_SECRET",
    "ARM_CLIENT_CERTIFICATE_PATH",
    "ARM_CLIENT_CERTIFICATE_PASSWORD",
    "ARM_USE_OIDC",
    "ARM_OIDC_TOKEN",
    "ARM_OIDC_TOKEN_FILE_PATH",
    "ARM_OIDC_REQUEST_URL",
    "ARM_OIDC_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ARM_TENANT_ID",
)


@dataclass(frozen=True)
class Fakes:
    certificates: TestCertificates
    entra: EntraFake
    exchange: ExchangeFake
    authority_host: str
    exchange_url: str

    def environment(self, token_cache: Path) -> dict[str, str]:
        """The variables that point the code under test at the fakes, with the deployer's secret."""
        return {
            "POP3_OAUTH_AUTHORITY_HOST": self.authority_host,
            "POP3_OAUTH_EXCHANGE_URL": self.exchange_url,
            "REQUESTS_CA_BUNDLE": str(self.certificates.ca_bundle),
            "POP3_OAUTH_TOKEN_CACHE": str(token_cache),
            "ARM_CLIENT_ID": DEPLOYER_CLIENT_ID,
            "ARM_CLIENT_SECRET": DEPLOYER_SECRET,
        }

    @property
    def cloud(self) -> Cloud:
        return CLOUDS["public"].with_overrides(
            {"POP3_OAUTH_AUTHORITY_HOST": self.authority_host, "POP3_OAUTH_EXCHANGE_URL": self.exchange_url}
        )


@dataclass(frozen=True)
class Tenant:
    """A tenant registered in both fakes, with the deploying app (Exchange.ManageAsApp) and a POP3 app."""

    tenant_id: str
    deployer: FakeApp
    app_id: str
    sp_object_id: str
    app_object_id: str


def principal(fakes: Fakes, tenant: Tenant) -> FakeServicePrincipal:
    """The POP3 app's service principal registration in the Exchange fake (must exist)."""
    found = fakes.exchange.service_principal(tenant.tenant_id, tenant.sp_object_id)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    certificates = make_certificates(tmp_path_factory.mktemp("tls"))
    entra = EntraFake(signing_key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    exchange = ExchangeFake(entra)
    with (
        HttpsServer(entra.handle, certificates) as entra_server,
        HttpsServer(exchange.handle, certificates) as ex,
    ):
        entra.base_url = entra_server.base_url
        exchange.base_url = ex.base_url
        yield Fakes(certificates, entra, exchange, entra_server.base_url, ex.base_url)


@pytest.fixture
def tenant(fakes: Fakes) -> Tenant:
    """A fresh tenant (so tests share no state), with default faults and zeroed counters."""
    fakes.exchange.faults = ExchangeFaults()
    fakes.entra.fail_next_token_requests = 0
    fakes.entra.delay_next_token_requests = 0
    tenant_id = str(uuid.uuid4())
    deployer = fakes.entra.add_app(
        tenant_id,
        DEPLOYER_CLIENT_ID,
        secrets={DEPLOYER_SECRET: None},
        roles={EXCHANGE_RESOURCE: [MANAGE_AS_APP]},
    )
    fakes.exchange.tenant(tenant_id)
    fakes.exchange.reset_counts()
    return Tenant(tenant_id, deployer, str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))


@pytest.fixture
def arm_env(fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process's environment pointed at the fakes, with app-only credentials of the deployer."""
    for name in ARM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    environment = fakes.environment(tmp_path / "cache" / "msal-token-cache.json")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment
