"""A real Dovecot asks the emulator about every login: POP3 access follows the emulated tenant."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from popctl.pop3 import Pop3LoginRefused, read_mailbox_status
from sandbox import dovecot as dovecot_fake
from sandbox.dovecot import DovecotServer, Introspection, sample_messages
from sandbox.emulator import Credentials
from tests.sandbox.conftest import MAILBOXES, World

pytestmark = pytest.mark.dovecot


@pytest.fixture
def dovecot(world: World) -> Iterator[DovecotServer]:
    reason = dovecot_fake.unavailable_reason()
    if reason is not None:
        if os.environ.get("POP3_OAUTH_REQUIRE_ENGINE", "") not in ("", "0"):
            pytest.fail(f"POP3_OAUTH_REQUIRE_ENGINE is set and Dovecot is missing: {reason}")
        pytest.skip(reason)
    emulator = world.emulator
    emulator.introspection_credentials = Credentials("dovecot", "introspection-test-password")
    server = DovecotServer(
        cert_pem=emulator.certificates.server_cert,
        key_pem=emulator.certificates.server_key,
        introspection=Introspection(emulator.introspection_url, emulator.certificates.ca_bundle),
        mailboxes={MAILBOXES[0]: sample_messages(3), MAILBOXES[1]: sample_messages(1)},
    )
    server.start()
    yield server
    server.stop()


def _login(world: World, server: DovecotServer, mailbox: str) -> int:
    status = read_mailbox_status(
        server.host, server.port, mailbox, world.token(), context=world.tls_context(), timeout=10
    )
    return status.messages


def test_each_mailbox_opens_with_its_own_mail(world: World, dovecot: DovecotServer) -> None:
    assert _login(world, dovecot, MAILBOXES[0]) == 3
    assert _login(world, dovecot, MAILBOXES[1].upper()) == 1


def test_fullaccess_taken_away_in_exchange_refuses_that_mailbox_only(
    world: World, dovecot: DovecotServer
) -> None:
    world.emulator.exchange.revoke(world.tenant.tenant_id, MAILBOXES[1], world.principal.object_id)
    with pytest.raises(Pop3LoginRefused):
        _login(world, dovecot, MAILBOXES[1])
    assert _login(world, dovecot, MAILBOXES[0]) == 3


def test_a_login_name_without_a_mailbox_is_refused(world: World, dovecot: DovecotServer) -> None:
    with pytest.raises(Pop3LoginRefused):
        _login(world, dovecot, "ceo@sandbox.example")


def test_the_introspection_endpoint_wants_the_pop3_servers_credentials(world: World) -> None:
    import requests

    world.emulator.introspection_credentials = Credentials("dovecot", "right")
    response = requests.post(
        world.emulator.base_url + "/sandbox/pop3/introspect/" + MAILBOXES[0],
        data={"token": world.token()},
        auth=("dovecot", "wrong"),
        verify=str(world.emulator.certificates.ca_bundle),
        timeout=10,
    )
    assert response.status_code == 401
