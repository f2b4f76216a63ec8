"""The end-to-end harness: the real Pulumi engine, the real program and providers, local Microsoft fakes.

- :func:`locate_engine` finds the engine ``scripts/pulumi-engine`` provides (or builds), as the sandbox does
  (``sandbox.engine``);
- :class:`Microsoft` runs the Entra, Graph and Exchange fakes on 127.0.0.1 over HTTPS, one set per test
  process, and makes a fresh tenant per scenario (:meth:`Microsoft.new_tenant`, ``sandbox.tenants``), so
  scenarios share no state;
- :class:`Project` is one scenario's world: a throwaway copy of the project, a fresh file backend
  (``file://``, passphrase secrets provider), its own ``PULUMI_HOME``, and an environment that points the
  azuread provider, the dynamic providers and ``popctl`` at the fakes. :meth:`Project.pulumi` runs the
  CLI exactly as a user types it; :meth:`Project.popctl` runs ``python -m popctl``.

The real ``pulumi`` CLI is first on the scenario's PATH. Where the engine has no Python language host, the
stand-in in ``tests/engine/language/`` is on PATH (the SDK's own language server); where it has no azuread
provider, the stand-in plugin in ``tests/engine/azuread/``.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.admin import TenantAdmin
from sandbox.engine import (
    EmulatedTenant,
    Engine,
    emulator_environment,
)
from sandbox.entra import EntraFake, FakeApp
from sandbox.exchange import ExchangeFake
from sandbox.graph import GraphFake
from sandbox.tenants import Tenant, seed_tenant
from sandbox.tls import (
    Handler,
    HttpRequest,
    HttpResponse,
    HttpsServer,
    TestCertificates,
    make_certificates,
)

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ENGINE_ENV = "POP3_OAUTH_REQUIRE_ENGINE"
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt", "components", "mscloud", "popctl")
PASSPHRASE = "e2e-passphrase-" + secrets.token_hex(8)
COMMAND_TIMEOUT = 600.0
SECRET_MASK = "[secret]"


def engine_required() -> bool:
    return os.environ.get(REQUIRE_ENGINE_ENV, "").strip() not in ("", "0", "false")


@dataclass(frozen=True)
class Request:
    """One HTTP request a fake served; times are ``time.monotonic()``."""

    service: str
    method: str
    path: str
    started: float
    ended: float
    scope: str = ""  # of a token request


@dataclass
class Microsoft:
    """The Entra, Graph and Exchange fakes of one test process, and every token and secret they issued."""

    certificates: TestCertificates
    entra: EntraFake
    graph: GraphFake
    exchange: ExchangeFake
    servers: list[HttpsServer] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    @classmethod
    def start(cls, directory: Path) -> Microsoft:
        certificates = make_certificates(directory)
        entra = EntraFake()
        graph = GraphFake(entra)
        exchange = ExchangeFake(entra)
        world = cls(certificates, entra, graph, exchange)
        entra_server = HttpsServer(world._logged("entra", entra.handle), certificates).start()
        graph_server = HttpsServer(world._logged("graph", graph.handle), certificates).start()
        exchange_server = HttpsServer(world._logged("exchange", exchange.handle), certificates).start()
        world.servers = [entra_server, graph_server, exchange_server]
        entra.base_url = entra_server.base_url
        graph.base_url = graph_server.base_url
        graph.login_endpoint = entra_server.base_url
        exchange.base_url = exchange_server.base_url
        original = entra.issue_token

        def recording_issue_token(app: FakeApp, resource: str) -> str:
            token = original(app, resource)
            world.issued_tokens.append(token)
            return token

        entra.issue_token = recording_issue_token  # type: ignore[method-assign]
        return world

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def _logged(self, service: str, handler: Handler) -> Handler:
        def handle(request: HttpRequest) -> HttpResponse:
            started = time.monotonic()
            try:
                return handler(request)
            finally:
                scope = request.form().get("scope", "") if request.path.endswith("/token") else ""
                self.requests.append(
                    Request(service, request.method, request.path, started, time.monotonic(), scope)
                )

        return handle

    def requests_since(self, index: int) -> list[Request]:
        return self.requests[index:]

    @property
    def entra_url(self) -> str:
        return self.entra.base_url

    @property
    def graph_url(self) -> str:
        return self.graph.base_url

    @property
    def exchange_url(self) -> str:
        return self.exchange.base_url

    def new_tenant(self, mailboxes: Sequence[str] = ("edi@contoso.test", "eab@contoso.test")) -> Tenant:
        """A fresh tenant: Microsoft's service principals, the mailboxes (POP enabled), the deployer."""
        return seed_tenant(self.entra, self.graph, self.exchange, self.graph_url, mailboxes)

    def secret_values(self) -> list[str]:
        """Every client secret value and every token (and token signature) the fakes handed out."""
        values = list(self.graph.issued_secrets)
        for token in self.issued_tokens:
            values += [token, token.rsplit(".", 1)[-1]]
        return values


@dataclass
class Run:
    """What one command printed and how it ended."""

    command: Sequence[str]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.command)}\nexit {self.code}\n--- stdout\n{self.stdout[-6000:]}\n"
            f"--- stderr\n{self.stderr[-6000:]}"
        )


class CommandFailed(AssertionError):
    pass


class Project:
    """One scenario: a copy of the project, its own backend and Pulumi home, the fakes' environment."""

    def __init__(
        self, root: Path, engine: Engine, microsoft: Microsoft, tenant: Tenant, *, source: Path = ROOT
    ) -> None:
        self.root = root
        self.engine = engine
        self.microsoft = microsoft
        self.tenant = tenant
        self.directory = root / "project"
        self.backend = root / "state"
        self.home = root / "pulumi-home"
        for directory in (self.directory, self.backend, self.home, self.directory / "stacks"):
            directory.mkdir(parents=True, exist_ok=True)
        copy_project(self.directory, source)
        self.env = self._environment()

    # --- running things -------------------------------------------------------------------------
    def run(
        self,
        command: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = COMMAND_TIMEOUT,
        stdin: str | None = None,
    ) -> Run:
        completed = subprocess.run(
            list(command),
            cwd=self.directory,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        result = Run(list(command), completed.returncode, completed.stdout, completed.stderr)
        if check and result.code != 0:
            raise CommandFailed(result.describe())
        return result

    def pulumi(self, *arguments: str, **options: Any) -> Run:
        """``pulumi ARGS --non-interactive`` as a user runs it in the project directory."""
        return self.run(["pulumi", *arguments, "--non-interactive"], **options)

    def popctl(self, *arguments: str, **options: Any) -> Run:
        return self.run([sys.executable, "-m", "popctl", *arguments], **options)

    # --- the usual steps ------------------------------------------------------------------------
    def init_stack(self, stack: str = "e2e", *, settings: Mapping[str, Any] | None = None) -> None:
        """``pulumi stack init`` and one ``pulumi config set`` per setting (arrays with ``--path``)."""
        self.stack = stack
        self.pulumi("stack", "init", stack)
        values: dict[str, Any] = {"tenantId": self.tenant.tenant_id, "mailboxes": list(self.tenant.mailboxes)}
        values.update(settings or {})
        self.configure(values)

    def configure(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, list | tuple):
                self.pulumi("config", "rm", key, "--stack", self.stack, check=False)
                for index, item in enumerate(value):
                    self.pulumi(
                        "config", "set", "--path", f"{key}[{index}]", str(item), "--stack", self.stack
                    )
            else:
                self.pulumi("config", "set", key, str(value), "--stack", self.stack)

    def up(self, *arguments: str, **options: Any) -> Run:
        return self.pulumi("up", "--yes", "--stack", self.stack, *arguments, **options)

    def preview(self, *arguments: str, **options: Any) -> Run:
        return self.pulumi("preview", "--stack", self.stack, *arguments, **options)

    def outputs(self, *, show_secrets: bool = False) -> dict[str, Any]:
        arguments = ["stack", "output", "--json", "--stack", self.stack]
        if show_secrets:
            arguments.append("--show-secrets")
        document = self.pulumi(*arguments).json()
        assert isinstance(document, dict)
        return document

    def export(self) -> str:
        """``pulumi stack export`` as text (secret values stay encrypted)."""
        return self.pulumi("stack", "export", "--stack", self.stack).stdout

    def state_resources(self) -> list[dict[str, Any]]:
        resources = json.loads(self.export())["deployment"].get("resources") or []
        assert isinstance(resources, list)
        return resources

    def install_code(self, source: Path = ROOT) -> None:
        """Replace the project's code with ``source``'s, as a user's ``git pull`` would; state stays."""
        for name in PROJECT_FILES:
            target = self.directory / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        copy_project(self.directory, source, link_venv=False)

    # --- set-up ---------------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        microsoft, tenant = self.microsoft, self.tenant
        emulated = EmulatedTenant(
            tenant.tenant_id,
            tenant.deployer.client_id,
            tenant.deployer_secret,
            microsoft.entra_url,
            microsoft.certificates.ca_bundle,
        )
        return emulator_environment(
            self.engine,
            Path(sys.executable),
            emulated,
            pulumi_home=self.home,
            backend=self.backend,
            token_cache=self.root / "msal-token-cache.json",
            passphrase={"PULUMI_CONFIG_PASSPHRASE": PASSPHRASE},
            graph_url=microsoft.graph_url,
            exchange_url=microsoft.exchange_url,
        )


def copy_project(destination: Path, source: Path = ROOT, *, link_venv: bool = True) -> None:
    """The files a user's checkout holds (no tests, no state), and the project's virtualenv linked in."""
    for name in PROJECT_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy2(path, destination / name)
    if link_venv:
        (destination / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)


def checkout(commit: str, destination: Path) -> Path:
    """The project's files as they were at ``commit``, in ``destination`` (for upgrade scenarios).

    From this clone's history; a clone without it (a shallow one) uses ``tests/e2e/data/<short id>.tar.gz``,
    the same files, made with ``git archive``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", commit],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if listing.returncode != 0:
        bundled = ROOT / "tests" / "e2e" / "data" / f"{commit[:7]}.tar.gz"
        with tarfile.open(bundled) as archive:
            archive.extractall(destination, filter="data")
        return destination
    present = [name for name in PROJECT_FILES if name in listing.stdout.split()]
    archive_run = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, *present],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if archive_run.returncode != 0:
        raise CommandFailed(f"git archive {commit} failed: {archive_run.stderr.decode(errors='replace')}")
    with tarfile.open(fileobj=io.BytesIO(archive_run.stdout)) as archive:
        archive.extractall(destination, filter="data")
    return destination


def leaked(text: str, values: Iterable[str]) -> list[str]:
    """The values (secrets, tokens) that occur in ``text``, shortened so a failure does not print them."""
    return [f"{value[:4]}...({len(value)} chars)" for value in values if value and value in text]


def tenant_admin(microsoft: Microsoft, tenant: Tenant) -> TenantAdmin:
    """An administrator working by hand in ``tenant`` (:class:`sandbox.admin.TenantAdmin`)."""
    return TenantAdmin(
        tenant_id=tenant.tenant_id,
        client_id=tenant.deployer.client_id,
        client_secret=tenant.deployer_secret,
        ca_bundle=microsoft.certificates.ca_bundle,
        entra_url=microsoft.entra_url,
        graph_url=microsoft.graph_url,
        exchange_url=microsoft.exchange_url,
    )
