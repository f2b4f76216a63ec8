"""POP3 over implicit TLS with SASL XOAUTH2, in the two-step form Office 365 requires.

The exchange is ``AUTH XOAUTH2`` -> ``+`` -> base64(``user=<mailbox>^Aauth=Bearer <token>^A^A``) ->
``+OK``. Office 365 refuses the one-line (SASL-IR) form for POP3, so it is never sent. A server that
rejects the token may answer with a ``+ <base64 JSON>`` challenge instead of ``-ERR`` (Dovecot does);
that challenge is a refusal, so only a line starting with ``+OK`` counts as success - ``poplib``'s own
response check would take any ``+`` line for one.

Nothing here changes a mailbox: the session reads ``STAT`` (and, to date the mail, ``TOP n 0`` - headers
only - for up to ``date_limit`` messages) and quits without ``RETR`` or ``DELE``. No exception message
contains the token; server replies are quoted, and servers do not echo the SASL string.
"""

from __future__ import annotations

import base64
import binascii
import json
import poplib
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

from mscloud.causes import Cause
from mscloud.errors import Pop3OAuthError

DEFAULT_TIMEOUT = 20.0
_MAX_LINE = 2048
_MAX_QUOTED = 200


@dataclass(frozen=True)
class MailboxStatus:
    """What ``STAT`` reports: the number of messages and their total size in octets.

    With a ``date_limit``, ``oldest_message_at`` is the earliest date among the messages read (None when
    none carried a date) and ``dated`` how many messages were read for it (at most the limit).
    """

    messages: int
    octets: int
    oldest_message_at: datetime | None = None
    dated: int = 0


class Pop3Error(Pop3OAuthError):
    """A POP3 session failed; ``str()`` is safe to show (never contains the token). ``cause`` says why."""

    cause: Cause = Cause.PROTOCOL_ERROR


class Pop3ConnectError(Pop3Error):
    """No POP3 session: the connection was refused (or lost), timed out, or the host name did not resolve."""

    def __init__(self, message: str, cause: Cause) -> None:
        super().__init__(message)
        self.cause = cause


class Pop3TlsError(Pop3Error):
    """The TLS handshake failed, typically because the server certificate is not trusted."""

    cause: Cause = Cause.TLS_FAILURE

    def __init__(self, message: str, *, verification: bool) -> None:
        super().__init__(message)
        self.verification = verification


class Pop3LoginRefused(Pop3Error):
    """The server refused the XOAUTH2 login.

    ``reply`` is the server's final line (``-ERR ...``); ``challenge`` is the decoded JSON error the
    server sent as a ``+`` continuation, when it sent one.
    """

    cause: Cause = Cause.LOGIN_REFUSED

    def __init__(self, reply: str, challenge: dict[str, Any] | None = None) -> None:
        text = f"server refused the login: {reply}"
        if challenge:
            text += f" (challenge {json.dumps(challenge, sort_keys=True)})"
        super().__init__(text)
        self.reply = reply
        self.challenge = challenge


class Pop3ProtocolError(Pop3Error):
    """The server answered something a POP3 server should not."""


def xoauth2_response(user: str, token: str) -> bytes:
    """The base64 SASL XOAUTH2 client response for ``user`` and the bearer ``token``."""
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())


def read_mailbox_status(
    host: str,
    port: int,
    user: str,
    token: str,
    *,
    context: ssl.SSLContext,
    timeout: float = DEFAULT_TIMEOUT,
    date_limit: int = 0,
) -> MailboxStatus:
    """Log in to ``user``'s mailbox with XOAUTH2, read ``STAT`` and quit.

    With ``date_limit`` > 0 the headers of the first ``date_limit`` messages (``TOP n 0``, every one: the
    server's order says nothing about age) are read and the earliest date found is reported
    (:func:`message_date`). ``context`` must verify the certificate (``ssl.create_default_context()`` does).
    Raises :class:`Pop3ConnectError`, :class:`Pop3TlsError`, :class:`Pop3LoginRefused` or
    :class:`Pop3ProtocolError`.
    """
    session = _connect(host, port, context, timeout)
    try:
        _authenticate(session, user, token)
        messages, octets = session.stat()
        dated = min(messages, max(0, date_limit))
        dates = [message_date(b"\r\n".join(session.top(number, 0)[1])) for number in range(1, dated + 1)]
        session.quit()
        known = [moment for moment in dates if moment is not None]
        return MailboxStatus(messages, octets, min(known) if known else None, dated)
    except poplib.error_proto as error:
        raise Pop3ProtocolError(f"unexpected reply from {host}:{port}: {_quote(error.args)}") from None
    except TimeoutError:
        raise Pop3ConnectError(
            f"{host}:{port} stopped answering (timeout {timeout:g} s)", Cause.CONNECTION_TIMEOUT
        ) from None
    except ssl.SSLError as error:
        raise Pop3TlsError(
            f"TLS error talking to {host}:{port}: {error.reason}", verification=False
        ) from None
    except OSError as error:
        raise Pop3ConnectError(
            f"connection to {host}:{port} lost: {error}", Cause.CONNECTION_REFUSED
        ) from None
    finally:
        session.close()


def message_date(headers: bytes) -> datetime | None:
    """When a message reached the mailbox: the earliest ``Received:`` header's date (the first hop; the
    hop into the mailbox comes no earlier), else its ``Date:`` header; None when neither parses."""
    parsed = BytesHeaderParser().parsebytes(headers)
    moments = [_header_date(str(value).rpartition(";")[2]) for value in parsed.get_all("Received") or ()]
    known = [moment for moment in moments if moment is not None]
    if known:
        return min(known)
    date = parsed.get("Date")
    return _header_date(str(date)) if date else None


def _header_date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Session(poplib.POP3_SSL):
    """``POP3_SSL`` plus raw line I/O for the SASL exchange (``poplib`` has no SASL support)."""

    def send_line(self, line: bytes) -> None:
        self.sock.sendall(line + b"\r\n")

    def read_line(self) -> bytes:
        line = self.file.readline(_MAX_LINE + 1)
        if not line:
            raise Pop3ProtocolError("the server closed the connection")
        if len(line) > _MAX_LINE:
            raise Pop3ProtocolError("the server sent an over-long line")
        return line.rstrip(b"\r\n")


def _connect(host: str, port: int, context: ssl.SSLContext, timeout: float) -> _Session:
    where = f"{host}:{port}"
    try:
        return _Session(host, port, timeout=timeout, context=context)
    except ssl.SSLCertVerificationError as error:
        raise Pop3TlsError(
            f"certificate of {where} not trusted: {error.verify_message}", verification=True
        ) from None
    except ssl.SSLError as error:
        raise Pop3TlsError(f"TLS handshake with {where} failed: {error.reason}", verification=False) from None
    except ConnectionRefusedError:
        raise Pop3ConnectError(f"connection to {where} refused", Cause.CONNECTION_REFUSED) from None
    except TimeoutError:
        raise Pop3ConnectError(
            f"connection to {where} timed out after {timeout:g} s", Cause.CONNECTION_TIMEOUT
        ) from None
    except socket.gaierror as error:
        raise Pop3ConnectError(f"cannot resolve {host}: {error.strerror}", Cause.HOST_NOT_FOUND) from None
    except poplib.error_proto as error:
        raise Pop3ProtocolError(f"{where} did not greet with +OK: {_quote(error.args)}") from None
    except OSError as error:
        raise Pop3ConnectError(f"cannot connect to {where}: {error}", Cause.CONNECTION_REFUSED) from None


def _authenticate(session: _Session, user: str, token: str) -> None:
    session.send_line(b"AUTH XOAUTH2")
    reply = session.read_line()
    if reply.startswith(b"-ERR"):
        raise Pop3LoginRefused(_decode(reply))
    if not reply.startswith(b"+") or reply.startswith(b"+OK"):
        raise Pop3ProtocolError(f"expected a '+' continuation after AUTH XOAUTH2, got {_decode(reply)!r}")
    session.send_line(xoauth2_response(user, token))
    reply = session.read_line()
    if reply.startswith(b"+OK"):
        return
    if reply.startswith(b"-ERR"):
        raise Pop3LoginRefused(_decode(reply))
    if reply.startswith(b"+"):
        challenge = _decode_challenge(reply[1:].strip())
        session.send_line(b"")
        final = session.read_line()
        raise Pop3LoginRefused(_decode(final), challenge)
    raise Pop3ProtocolError(f"unexpected reply to the XOAUTH2 response: {_decode(reply)!r}")


def _decode_challenge(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")[:_MAX_QUOTED]


def _quote(args: tuple[Any, ...]) -> str:
    parts = [arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg) for arg in args]
    return " ".join(parts)[:_MAX_QUOTED]
