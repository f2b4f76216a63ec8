"""``verify --admin``: a refused POP3 login explained from Exchange, against the Exchange fake.

The login is refused by a real Dovecot that does not (yet) know the signing key - the way Office 365
refuses until Exchange is configured - and the Exchange fake holds the configuration under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from sandbox.dovecot import DovecotServer
from sandbox.entra import EXCHANGE_RESOURCE
from sandbox.exchange import MANAGE_AS_APP, ExchangeFake
from sandbox.tls import HttpsServer
from sandbox.tls import TestCertificates as Certificates
from tests.popctl.conftest import (
    APP_OBJECT_ID,
    MAILBOX,
    SECRET,
    SP_OBJECT_ID,
    TENANT,
    CliRun,
    Entra,
    assert_no_leak,
    verify_argv,
)

pytestmark = pytest.mark.dovecot

ADMIN_SECRET = "Admin~Secret.Value_9876543210zyxw"
DISPLAY_NAME = "POP3 Concept Office"


@dataclass
class Admin:
    exchange: ExchangeFake
    client_id: str


@pytest.fixture
def admin(
    entra: Entra, certs: Certificates, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> Iterator[Admin]:
    exchange = ExchangeFake(entra.fake)
    admin_app = entra.fake.add_app(
        TENANT, secrets={ADMIN_SECRET: None}, roles={EXCHANGE_RESOURCE: [MANAGE_AS_APP]}
    )
    with HttpsServer(exchange.handle, certs) as server:
        exchange.base_url = server.base_url
        exchange.add_mailbox(TENANT, MAILBOX)
        monkeypatch.setenv("POP3_OAUTH_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("ARM_CLIENT_ID", admin_app.client_id)
        monkeypatch.setenv("ARM_CLIENT_SECRET", ADMIN_SECRET)
        monkeypatch.setenv("POP3_OAUTH_EXCHANGE_URL", server.base_url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.ca_bundle))
        yield Admin(exchange, admin_app.client_id)


@pytest.fixture
def refusing_dovecot(dovecot_factory: Callable[..., DovecotServer], certs: Certificates) -> DovecotServer:
    server: DovecotServer = dovecot_factory(certs, with_key=False)
    return server


def register(admin: Admin, entra: Entra, object_id: str = SP_OBJECT_ID) -> None:
    admin.exchange.add_service_principal(TENANT, entra.app.client_id, object_id, DISPLAY_NAME)


def grant(admin: Admin, object_id: str = SP_OBJECT_ID) -> None:
    admin.exchange.grant(TENANT, MAILBOX, object_id, {"FullAccess"})


def registration_missing(admin: Admin, entra: Entra) -> None:
    """Nothing registered in Exchange."""


def registered_with_app_object_id(admin: Admin, entra: Entra) -> None:
    register(admin, entra, APP_OBJECT_ID)
    grant(admin, APP_OBJECT_ID)


def full_access_missing(admin: Admin, entra: Entra) -> None:
    register(admin, entra)


def pop_disabled(admin: Admin, entra: Entra) -> None:
    register(admin, entra)
    grant(admin)
    admin.exchange.mailbox(TENANT, MAILBOX).pop_enabled = False


def all_in_place(admin: Admin, entra: Entra) -> None:
    register(admin, entra)
    grant(admin)


@pytest.mark.parametrize(
    ("arrange", "cause", "finding"),
    [
        (registration_missing, "exchange-registration-missing", "no service principal"),
        (registered_with_app_object_id, "exchange-registration-wrong-object", APP_OBJECT_ID),
        (full_access_missing, "fullaccess-missing", "no FullAccess"),
        (pop_disabled, "pop-disabled", "POP is disabled"),
        (all_in_place, "login-refused", "Exchange looks right"),
    ],
)
def test_admin_tells_the_causes_of_a_refused_login_apart(
    arrange: Callable[[Admin, Entra], None],
    cause: str,
    finding: str,
    admin: Admin,
    entra: Entra,
    refusing_dovecot: DovecotServer,
    certs: Certificates,
    run_cli: Callable[..., CliRun],
) -> None:
    arrange(admin, entra)

    run = run_cli(
        *verify_argv(entra, refusing_dovecot, certs),
        "--admin",
        "--service-principal-object-id",
        SP_OBJECT_ID,
    )

    assert run.code == 1
    result = run.only_result()
    assert result["cause"] == cause
    assert any(finding in line for line in result["findings"]), result["findings"]
    assert admin.exchange.cmdlets["Get-ServicePrincipal"] == 1
    assert_no_leak(run, ADMIN_SECRET, *entra.issued)


def test_admin_without_credentials_keeps_login_refused_and_says_why(
    entra: Entra,
    refusing_dovecot: DovecotServer,
    certs: Certificates,
    run_cli: Callable[..., CliRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POP3_OAUTH_CLIENT_SECRET", SECRET)

    run = run_cli(*verify_argv(entra, refusing_dovecot, certs), "--admin")

    result = run.only_result()
    assert (run.code, result["cause"]) == (1, "login-refused")
    assert any("popctl login" in line for line in result["findings"])
    assert_no_leak(run, *entra.issued)


def test_admin_is_not_consulted_when_the_login_works(
    admin: Admin,
    entra: Entra,
    dovecot: DovecotServer,
    certs: Certificates,
    run_cli: Callable[..., CliRun],
) -> None:
    run = run_cli(*verify_argv(entra, dovecot, certs), "--admin")

    assert run.code == 0
    assert admin.exchange.requests["InvokeCommand"] == 0
