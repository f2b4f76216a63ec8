"""Fixtures for popctl: the Entra fake over HTTPS, a real Dovecot, a stack-output seam, and a CLI runner
that captures every byte written so tests can prove no secret or token leaks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mscloud.auth import shared_token_source
from mscloud.retry import Backoff
from popctl.cli import Context, main
from popctl.signins import SignInReader
from popctl.stack import StackReader
from sandbox import dovecot as dovecot_fake
from sandbox.dovecot import DovecotServer
from sandbox.entra import EXCHANGE_RESOURCE, EntraFake, FakeApp
from sandbox.tls import HttpsServer, TestCertificates, make_certificates

TENANT = "6d1c0f3a-5b2e-4c7d-9a8b-1e2f3a4b5c6d"
MAILBOX = "edi@contoso.test"
SECRET = "Pop3~Secret.Value_0123456789abcdefXYZ"
SP_OBJECT_ID = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
APP_OBJECT_ID = "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"
POP_ROLE = "POP.AccessAsApp"
FAST_BACKOFF = Backoff(initial=0.2, factor=1.5, maximum=0.5)


@dataclass
class CliRun:
    """What one ``popctl`` invocation produced."""

    code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def only_result(self) -> dict[str, Any]:
        lines = self.json_lines()
        assert len(lines) == 1, self.stdout
        return lines[0]


@dataclass
class Entra:
    """The running Entra fake, the app under test, and every token it issued."""

    fake: EntraFake
    base_url: str
    app: FakeApp
    issued: list[str] = field(default_factory=list)

    def grant_pop(self) -> None:
        self.app.roles[EXCHANGE_RESOURCE] = [POP_ROLE]

    def revoke_pop(self) -> None:
        self.app.roles[EXCHANGE_RESOURCE] = []


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """Certificates from a second CA that no test trusts."""
    return make_certificates(tmp_path_factory.mktemp("untrusted-certs"))


@pytest.fixture
def entra(certs: TestCertificates) -> Iterator[Entra]:
    fake = EntraFake()
    with HttpsServer(fake.handle, certs) as server:
        fake.base_url = server.base_url
        app = fake.add_app(
            TENANT,
            object_id=SP_OBJECT_ID,
            secrets={SECRET: None},
            roles={EXCHANGE_RESOURCE: [POP_ROLE]},
            extra_claims={"upn": MAILBOX},
        )
        world = Entra(fake, server.base_url, app)
        original = fake.issue_token

        def recording_issue_token(app: FakeApp, resource: str) -> str:
            token = original(app, resource)
            world.issued.append(token)
            return token

        fake.issue_token = recording_issue_token  # type: ignore[method-assign]
        yield world
    shared_token_source().clear()


def _require_dovecot() -> None:
    reason = dovecot_fake.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def trust_entra_key(server: DovecotServer, entra: Entra) -> None:
    """Install the fake's signing key where Dovecot looks for it (tokens carry ``azp`` = client id)."""
    for azp in ("default", entra.app.client_id):
        server.add_key(entra.fake.kid, entra.fake.public_key_pem, azp=azp)


@pytest.fixture(scope="session")
def dovecot_reaper() -> Iterator[list[DovecotServer]]:
    """Servers told to stop (SIGTERM sent) whose exit is awaited once, at the end of the session."""
    stopping: list[DovecotServer] = []
    yield stopping
    for server in stopping:
        server.stop()


@pytest.fixture
def dovecot_factory(
    entra: Entra, dovecot_reaper: list[DovecotServer]
) -> Iterator[Callable[..., DovecotServer]]:
    """Starts Dovecot servers trusting the Entra fake's signing key; SIGTERMs them all at teardown."""
    _require_dovecot()
    started: list[DovecotServer] = []

    def start(certificates: TestCertificates, *, with_key: bool = True, **options: Any) -> DovecotServer:
        server = DovecotServer(
            cert_pem=certificates.server_cert,
            key_pem=certificates.server_key,
            issuer=entra.fake.issuer_template.format(tenant=TENANT),
            **options,
        )
        started.append(server)
        if with_key:
            trust_entra_key(server, entra)
        server.start()
        return server

    yield start
    for server in started:
        server.terminate()
    dovecot_reaper.extend(started)


@pytest.fixture
def dovecot(dovecot_factory: Callable[..., DovecotServer], certs: TestCertificates) -> DovecotServer:
    server: DovecotServer = dovecot_factory(certs)
    return server


@dataclass
class Seams:
    """What ``run_cli`` hands ``popctl.cli.main`` as its :class:`~popctl.cli.Context`; fixtures fill it in."""

    read_stack: StackReader | None = None
    verify_backoff: Backoff | None = None
    read_sign_ins: SignInReader | None = None

    def context(self) -> Context:
        return Context(
            read_stack=self.read_stack, verify_backoff=self.verify_backoff, read_sign_ins=self.read_sign_ins
        )


@pytest.fixture
def seams() -> Seams:
    return Seams()


@pytest.fixture
def fast_backoff(seams: Seams) -> None:
    seams.verify_backoff = FAST_BACKOFF


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or endpoint overrides leak in from the developer's shell."""
    for name in (
        "POP3_OAUTH_CLIENT_SECRET",
        "POP3_OAUTH_AUTHORITY_HOST",
        "POP3_OAUTH_EXCHANGE_URL",
        "POP3_OAUTH_GRAPH_URL",
        "ARM_CLIENT_ID",
        "ARM_CLIENT_SECRET",
        "ARM_CLIENT_CERTIFICATE_PATH",
        "ARM_USE_OIDC",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POP3_OAUTH_TOKEN_CACHE", str(tmp_path / "msal-cache.json"))


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], clean_env: None, seams: Seams) -> Callable[..., CliRun]:
    """Run ``popctl`` in-process (with the context ``seams`` describe) and return its exit code and output."""

    def run(*argv: str) -> CliRun:
        capsys.readouterr()
        try:
            code = main(list(argv), context=seams.context())
        except SystemExit as exit_:
            code = int(exit_.code) if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run


def assert_no_leak(run: CliRun, *secrets: str) -> None:
    """Neither the secret nor any token (nor a token's signature part) appears in the output."""
    for secret in (SECRET, *secrets):
        for text in (run.stdout, run.stderr):
            assert secret not in text
            if secret.count(".") == 2:
                assert secret.rsplit(".", 1)[1] not in text


def verify_argv(
    entra: Entra,
    server: DovecotServer,
    certs: TestCertificates,
    *extra: str,
    mailboxes: Sequence[str] = (MAILBOX,),
) -> list[str]:
    """``verify --json`` arguments for the app under test against ``server``."""
    return [
        "verify",
        "--tenant-id",
        TENANT,
        "--client-id",
        entra.app.client_id,
        "--authority-host",
        entra.base_url,
        "--pop3-host",
        "127.0.0.1",
        "--pop3-port",
        str(server.port),
        "--ca-file",
        str(certs.ca_bundle),
        "--json",
        *(argument for mailbox in mailboxes for argument in ("--mailbox", mailbox)),
        *extra,
    ]


@pytest.fixture
def stack_outputs(seams: Seams) -> Callable[[Mapping[str, Any]], list[tuple[str, bool]]]:
    """Replace the Pulumi CLI seam with canned outputs; returns the list of (stack, show_secrets) calls."""

    def install(outputs: Mapping[str, Any]) -> list[tuple[str, bool]]:
        calls: list[tuple[str, bool]] = []

        def reader(stack: str, *, show_secrets: bool) -> Mapping[str, Any]:
            calls.append((stack, show_secrets))
            if show_secrets:
                return outputs
            return {
                key: "[secret]" if key in ("clientSecret", "conceptOffice") else value
                for key, value in outputs.items()
            }

        seams.read_stack = reader
        return calls

    return install


def stack_output_values(entra: Entra | None = None, *, port: int = 995) -> dict[str, Any]:
    """Outputs shaped like the program's (docs/CONTRACTS.md)."""
    client_id = entra.app.client_id if entra else "3c5e7a9b-1d2f-4e6a-8b0c-2d4f6a8c0e1a"
    authority = entra.base_url if entra else "https://login.microsoftonline.com"
    return {
        "tenantId": TENANT,
        "clientId": client_id,
        "servicePrincipalObjectId": SP_OBJECT_ID,
        "clientSecret": SECRET,
        "clientSecretExpiresAt": "2031-03-01T00:00:00Z",
        "nextSecretRotationAt": "2030-12-01T00:00:00Z",
        "secrets": [
            {
                "keyId": "7f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b",
                "displayName": "pop3-oauth slot 0",
                "slot": 0,
                "createdAt": "2030-03-01T00:00:00Z",
                "expiresAt": "2031-03-01T00:00:00Z",
                "managed": True,
            }
        ],
        "mailboxes": [MAILBOX],
        "pop3Host": "127.0.0.1" if entra else "outlook.office365.com",
        "pop3Port": port,
        "tokenEndpoint": f"{authority}/{TENANT}/oauth2/v2.0/token",
        "authorityHost": authority,
        "tokenScope": "https://outlook.office365.com/.default",
        "cloud": "public",
        "conceptOffice": {
            "tenantId": TENANT,
            "clientId": client_id,
            "clientSecret": SECRET,
            "pop3Host": "outlook.office365.com",
            "pop3Port": port,
            "useTls": True,
            "mailboxes": [MAILBOX],
        },
    }
