"""A throw-away certificate authority and an HTTPS server on 127.0.0.1 for the fakes.

Usage::

    certs = make_certificates(tmp_path)            # CA bundle + server cert/key PEM files
    with HttpsServer(handler, certs) as server:    # handler(HttpRequest) -> HttpResponse
        requests.get(server.base_url, verify=str(certs.ca_bundle))

Point ``REQUESTS_CA_BUNDLE`` at ``certs.ca_bundle`` to make ``requests`` and msal trust the fakes.
``certs.server_cert`` (leaf + chain) and ``certs.server_key`` serve any other TLS server (a POP3 test).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import parse_qs, urlsplit

import trustme

HOST = "127.0.0.1"


@dataclass(frozen=True)
class TestCertificates:
    """PEM files of a test CA and of one server certificate for ``127.0.0.1`` and ``localhost``."""

    __test__: ClassVar[bool] = False

    ca_bundle: Path
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        return context


def certificates_in(directory: Path) -> TestCertificates:
    """The certificates :func:`make_certificates` wrote into ``directory`` before, made now if missing."""
    paths = TestCertificates(
        ca_bundle=directory / "ca.pem",
        server_cert=directory / "server-chain.pem",
        server_key=directory / "server-key.pem",
    )
    if all(path.is_file() for path in (paths.ca_bundle, paths.server_cert, paths.server_key)):
        return paths
    return make_certificates(directory)


def make_certificates(directory: Path) -> TestCertificates:
    """Create a CA and a server certificate and write their PEM files into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    leaf = authority.issue_cert(HOST, "localhost")
    paths = TestCertificates(
        ca_bundle=directory / "ca.pem",
        server_cert=directory / "server-chain.pem",
        server_key=directory / "server-key.pem",
    )
    authority.cert_pem.write_to_path(str(paths.ca_bundle))
    leaf.private_key_pem.write_to_path(str(paths.server_key))
    paths.server_cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return paths


@dataclass
class HttpRequest:
    """One request as a fake sees it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    url: str

    def form(self) -> dict[str, str]:
        """The body as an ``application/x-www-form-urlencoded`` form (first value of each key)."""
        return {
            key: values[0] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()
        }


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[HttpRequest], HttpResponse]


class HttpsServer:
    """A ``ThreadingHTTPServer`` with TLS on 127.0.0.1 and ``port`` (0: a free one), served from a daemon
    thread.

    GET, POST, PUT, PATCH and DELETE go to the handler; a 204 answer leaves without body or Content-Length.
    """

    def __init__(self, handler: Handler, certificates: TestCertificates, *, port: int = 0) -> None:
        self._handler = handler
        self._certificates = certificates
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:<port>``, without a trailing slash."""
        return f"https://{HOST}:{self.port}"

    def start(self) -> Self:
        server = ThreadingHTTPServer(
            (HOST, self._requested_port), _request_handler_class(self._handler, lambda: self.base_url)
        )
        server.daemon_threads = True
        server.socket = self._certificates.server_context().wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _request_handler_class(handler: Handler, base_url: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    class _RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in one segment; otherwise Nagle plus delayed ACK add 40 ms per response.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = HttpRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                url=f"{base_url()}{self.path}",
            )
            response = handler(request)
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            # RFC 9110: a 204 carries neither a body nor a Content-Length.
            body = b"" if response.status == HTTPStatus.NO_CONTENT else response.body
            if response.status != HTTPStatus.NO_CONTENT:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        do_GET = _serve
        do_POST = _serve
        do_PATCH = _serve
        do_DELETE = _serve
        do_PUT = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Silence the default stderr access log."""

    return _RequestHandler
