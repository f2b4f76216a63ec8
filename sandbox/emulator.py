"""The Microsoft 365 emulator: one HTTPS server on 127.0.0.1 for every Microsoft endpoint pop3-oauth calls.

Routes, by path, on one port:

- ``/metadata/endpoints``, ``/v1.0/...``, ``/beta/...``: Microsoft Graph (:class:`sandbox.graph.GraphFake`,
  the cloud metadata document the azuread provider reads through ``ARM_METADATA_HOSTNAME`` included);
- ``/adminapi/...``: Exchange Online's InvokeCommand (:class:`sandbox.exchange.ExchangeFake`);
- ``POST /sandbox/pop3/introspect/{mailbox}``: the POP3 server's question "may this token open this
  mailbox?" (form field ``token``; HTTP Basic credentials when the emulator has some), answered
  ``{"active": true|false, "username": "{mailbox}"}`` by :class:`sandbox.pop_access.PopAccess`;
- ``GET|POST /devicelogin``: the page a device-code sign-in (``popctl login``) sends the administrator to: a
  form taking the code and the account to sign in as (no password: the sandbox has none), which approves the
  pending sign-in;
- everything else: the Entra token service (:class:`sandbox.entra.EntraFake`: OpenID discovery, JWKS,
  client credentials, device code, refresh tokens).

Requests are served one at a time (the fakes are small and fast; one lock keeps their state and the state
file consistent). With a :class:`sandbox.state.StateFile`, every request that may have changed something
(any method but GET) is followed by a save. The fakes' base URLs are all the emulator's.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import unquote

from sandbox.entra import EntraFake
from sandbox.exchange import ExchangeFake
from sandbox.graph import API_VERSIONS, METADATA_PATH, GraphFake
from sandbox.pop_access import PopAccess
from sandbox.state import StateFile, export_state, import_state
from sandbox.tls import HttpRequest, HttpResponse, HttpsServer, TestCertificates

INTROSPECTION_PATH = "/sandbox/pop3/introspect/"
DEVICE_LOGIN_PATH = "/devicelogin"
DEVICE_LOGIN_FORM = """<!doctype html><title>Sign in to the pop3-oauth sandbox</title>
<form method="post"><p>Code <input name="user_code"></p>
<p>Account <input name="upn" placeholder="admin@sanitaetshaus-muster.example"></p>
<p><button>Sign in</button></p></form>
"""


def service_of(path: str) -> str:
    """Which service serves ``path``: graph, exchange, introspection, devicelogin or entra."""
    head = path.lstrip("/").split("/", 1)[0]
    if path == METADATA_PATH or head in API_VERSIONS:
        return "graph"
    if head == "adminapi":
        return "exchange"
    if path.startswith(INTROSPECTION_PATH):
        return "introspection"
    if path == DEVICE_LOGIN_PATH:
        return "devicelogin"
    return "entra"


@dataclass(frozen=True)
class Credentials:
    """HTTP Basic credentials the POP3 server presents to the introspection endpoint."""

    user: str
    password: str

    def accepts(self, header: str) -> bool:
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return hmac.compare_digest(header.encode(), f"Basic {expected}".encode())


class Emulator:
    """The three fakes behind one server. Use as a context manager, or :meth:`start` / :meth:`stop`.

    ``log`` receives one line per request (method, path, status; never a token) and one per POP3 decision.
    """

    def __init__(
        self,
        certificates: TestCertificates,
        *,
        entra: EntraFake | None = None,
        graph: GraphFake | None = None,
        exchange: ExchangeFake | None = None,
        port: int = 0,
        state: StateFile | None = None,
        clock: Callable[[], float] | None = None,
        introspection_credentials: Credentials | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.entra = entra or EntraFake()
        self.graph = graph or GraphFake(self.entra)
        self.exchange = exchange or ExchangeFake(self.entra)
        if clock is not None:
            self.entra.clock = clock
        self.certificates = certificates
        self.state = state
        self.pop_access = PopAccess(self.entra, self.exchange)
        self.introspection_credentials = introspection_credentials
        self._log = log or (lambda line: None)
        self._lock = threading.RLock()
        self._server = HttpsServer(self.handle, certificates, port=port)

    @classmethod
    def from_state_file(
        cls,
        state: StateFile,
        certificates: TestCertificates,
        *,
        port: int = 0,
        clock: Callable[[], float] | None = None,
        introspection_credentials: Credentials | None = None,
        log: Callable[[str], None] | None = None,
    ) -> Emulator:
        """The emulator holding what ``state`` saved (fresh fakes when the file does not exist yet)."""
        entra, graph, exchange = import_state(state.load()) if state.exists() else (None, None, None)
        return cls(
            certificates,
            entra=entra,
            graph=graph,
            exchange=exchange,
            port=port,
            state=state,
            clock=clock,
            introspection_credentials=introspection_credentials,
            log=log,
        )

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> Self:
        self._server.start()
        for fake in (self.entra, self.graph, self.exchange):
            fake.base_url = self.base_url
        self.graph.login_endpoint = self.base_url
        self.save()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def introspection_url(self, mailbox: str) -> str:
        """The URL the POP3 server asks about ``mailbox`` (with the Basic credentials, if any)."""
        credentials = self.introspection_credentials
        userinfo = f"{credentials.user}:{credentials.password}@" if credentials else ""
        return f"https://{userinfo}{self.base_url.removeprefix('https://')}{INTROSPECTION_PATH}{mailbox}"

    def save(self) -> None:
        """Write the fakes' state to the state file (if any) when it changed."""
        if self.state is not None:
            with self._lock:
                self.state.save(export_state(self.entra, self.graph, self.exchange))

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Serve one request (the :class:`sandbox.tls.HttpsServer` handler)."""
        service = service_of(request.path)
        with self._lock:
            if service == "introspection":
                response = self._introspect(request)
            elif service == "devicelogin":
                response = self._device_login(request)
            else:
                handler = {"graph": self.graph.handle, "exchange": self.exchange.handle}.get(
                    service, self.entra.handle
                )
                response = handler(request)
                if request.method != "GET":
                    self.save()
        self._log(f"{request.method} {request.path} -> {response.status}")
        return response

    def _introspect(self, request: HttpRequest) -> HttpResponse:
        credentials = self.introspection_credentials
        if credentials is not None and not credentials.accepts(request.headers.get("authorization", "")):
            return _json(401, {"error": "invalid_client"})
        if request.method != "POST":
            return _json(405, {"error": "method_not_allowed"})
        mailbox = unquote(request.path[len(INTROSPECTION_PATH) :])
        decision = self.pop_access.decide(request.form().get("token", ""), mailbox)
        verdict = "allowed" if decision.allowed else f"refused: {decision.reason}"
        self._log(f"POP3 login {mailbox} (app {decision.client_id or '?'}): {verdict}")
        return _json(200, {"active": decision.allowed, "username": mailbox})

    def _device_login(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(200, DEVICE_LOGIN_FORM.encode(), {"Content-Type": "text/html; charset=utf-8"})
        form = request.form()
        code, upn = form.get("user_code", "").strip().upper(), form.get("upn", "").strip()
        if not code or "@" not in upn:
            return _text(400, "Give the code the sign-in printed and an account such as admin@<domain>.\n")
        try:
            self.entra.approve_device_code(code, upn)
        except KeyError:
            return _text(404, f"No pending sign-in has the code {code}.\n")
        self._log(f"device-code sign-in {code} approved as {upn}")
        return _text(200, f"Signed in as {upn}; return to the command line.\n")


def _text(status: int, text: str) -> HttpResponse:
    return HttpResponse(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


def _json(status: int, payload: dict[str, object]) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})
