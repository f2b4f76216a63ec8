"""The XOAUTH2 POP3 client: wire format against a scripted TLS server, refusals against real Dovecot."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import jwt
import pytest

from mscloud.causes import Cause
from popctl.pop3 import (
    MailboxStatus,
    Pop3ConnectError,
    Pop3LoginRefused,
    Pop3ProtocolError,
    Pop3TlsError,
    read_mailbox_status,
    xoauth2_response,
)
from sandbox.dovecot import DovecotServer
from sandbox.entra import EXCHANGE_RESOURCE
from sandbox.tls import HOST
from sandbox.tls import TestCertificates as Certificates
from tests.popctl.conftest import MAILBOX, Entra

TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


@dataclass
class ScriptedServer:
    """A one-connection POP3-over-TLS server answering each client line from ``replies``."""

    greeting: bytes
    replies: dict[bytes, Sequence[bytes]]
    default: Sequence[bytes] = (b"-ERR unexpected",)
    received: list[bytes] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def scripted(certs: Certificates) -> Iterator[Callable[..., ScriptedServer]]:
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(greeting: bytes = b"+OK ready", **replies: Sequence[bytes]) -> ScriptedServer:
        table = {key.replace("_", " ").encode(): value for key, value in replies.items()}
        server = ScriptedServer(greeting, table)
        listener = socket.create_server((HOST, 0))
        listeners.append(listener)
        server.port = listener.getsockname()[1]
        context = certs.server_context()

        def serve() -> None:
            connection, _ = listener.accept()
            try:
                tls_connection = context.wrap_socket(connection, server_side=True)
            except (ssl.SSLError, OSError):
                connection.close()
                return
            with tls_connection as tls:
                stream = tls.makefile("rwb")
                stream.write(server.greeting + b"\r\n")
                stream.flush()
                for raw in stream:
                    line = raw.rstrip(b"\r\n")
                    server.received.append(line)
                    key = (
                        line if line in server.replies else b"<sasl>" if line.startswith(b"dXNlcj") else line
                    )
                    for reply in server.replies.get(key, server.default):
                        stream.write(reply + b"\r\n")
                    stream.flush()
                    if line == b"QUIT":
                        break

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return server

    yield start
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(timeout=5)


def client_context(certs: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca_bundle))


def login(server: ScriptedServer, certs: Certificates, timeout: float = 5) -> MailboxStatus:
    return read_mailbox_status(
        HOST, server.port, MAILBOX, TOKEN, context=client_context(certs), timeout=timeout
    )


def test_two_step_form_stat_and_quit_without_changes(
    scripted: Callable[..., ScriptedServer], certs: Certificates
) -> None:
    server = scripted(
        AUTH_XOAUTH2=[b"+ "],
        **{"<sasl>": [b"+OK User successfully authenticated."]},
        STAT=[b"+OK 2 1024"],
        QUIT=[b"+OK bye"],
    )

    assert login(server, certs) == MailboxStatus(2, 1024)
    assert server.received == [b"AUTH XOAUTH2", xoauth2_response(MAILBOX, TOKEN), b"STAT", b"QUIT"]
    assert base64.b64decode(server.received[1]) == f"user={MAILBOX}\x01auth=Bearer {TOKEN}\x01\x01".encode()


def test_office365_style_immediate_err_is_a_refusal(
    scripted: Callable[..., ScriptedServer], certs: Certificates
) -> None:
    server = scripted(
        AUTH_XOAUTH2=[b"+ "],
        **{"<sasl>": [b"-ERR Authentication failure: unknown user name or bad password."]},
    )

    with pytest.raises(Pop3LoginRefused) as caught:
        login(server, certs)

    assert caught.value.reply == "-ERR Authentication failure: unknown user name or bad password."
    assert TOKEN not in str(caught.value)
    assert b"STAT" not in server.received


def test_a_plus_challenge_is_a_refusal_not_a_success(
    scripted: Callable[..., ScriptedServer], certs: Certificates
) -> None:
    challenge = base64.b64encode(b'{"status":"401","schemes":"bearer"}')
    server = scripted(AUTH_XOAUTH2=[b"+ "], **{"<sasl>": [b"+ " + challenge], "": [b"-ERR [AUTH] failed."]})

    with pytest.raises(Pop3LoginRefused) as caught:
        login(server, certs)

    assert caught.value.challenge == {"status": "401", "schemes": "bearer"}
    assert caught.value.reply == "-ERR [AUTH] failed."
    assert server.received[-1] == b""


def test_mechanism_not_offered_is_a_refusal(
    scripted: Callable[..., ScriptedServer], certs: Certificates
) -> None:
    server = scripted(AUTH_XOAUTH2=[b"-ERR Unsupported authentication mechanism."])

    with pytest.raises(Pop3LoginRefused, match="Unsupported"):
        login(server, certs)
    assert len(server.received) == 1


def test_ok_instead_of_continuation_is_a_protocol_error(
    scripted: Callable[..., ScriptedServer], certs: Certificates
) -> None:
    server = scripted(AUTH_XOAUTH2=[b"+OK whatever"])

    with pytest.raises(Pop3ProtocolError):
        login(server, certs)


def test_bad_greeting_is_a_protocol_error(
    scripted: Callable[..., ScriptedServer], certs: Certificates
) -> None:
    server = scripted(greeting=b"220 smtp.example ESMTP")

    with pytest.raises(Pop3ProtocolError, match="did not greet"):
        login(server, certs)


def test_untrusted_certificate(
    scripted: Callable[..., ScriptedServer], certs: Certificates, other_certs: Certificates
) -> None:
    server = scripted()

    with pytest.raises(Pop3TlsError) as caught:
        read_mailbox_status(HOST, server.port, MAILBOX, TOKEN, context=client_context(other_certs), timeout=5)
    assert caught.value.verification
    assert server.received == [], "nothing, least of all the token, goes to a server that is not trusted"


def test_connection_refused() -> None:
    with socket.create_server((HOST, 0)) as probe:
        port = probe.getsockname()[1]

    with pytest.raises(Pop3ConnectError) as caught:
        read_mailbox_status(HOST, port, MAILBOX, TOKEN, context=ssl.create_default_context(), timeout=2)
    assert caught.value.cause is Cause.CONNECTION_REFUSED


def test_silent_server_times_out() -> None:
    with socket.create_server((HOST, 0)) as silent:
        started = time.monotonic()
        with pytest.raises(Pop3ConnectError) as caught:
            read_mailbox_status(
                HOST,
                silent.getsockname()[1],
                MAILBOX,
                TOKEN,
                context=ssl.create_default_context(),
                timeout=0.3,
            )
    assert caught.value.cause is Cause.CONNECTION_TIMEOUT
    assert time.monotonic() - started < 3


@pytest.mark.dovecot
def test_dovecot_refuses_a_wrong_audience_that_verify_would_catch_earlier(
    entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    """Dovecot enforces ``audience`` itself: the local claim check mirrors a real refusal."""
    entra.app.audience = "https://graph.microsoft.com"
    token = entra.fake.issue_token(entra.app, EXCHANGE_RESOURCE)
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "https://graph.microsoft.com"

    with pytest.raises(Pop3LoginRefused) as caught:
        read_mailbox_status(HOST, dovecot.port, MAILBOX, token, context=client_context(certs))

    assert caught.value.challenge is not None and caught.value.challenge["status"] == "401"
    assert dovecot.log_contains("audience"), dovecot.log()
