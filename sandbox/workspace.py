"""Where a sandbox keeps everything: one directory (``.sandbox/`` of the checkout, or
``$POP3_OAUTH_SANDBOX_DIR``), git-ignored, deleted whole by ``scripts/sandbox --down``.

Layout::

    ports.json          the emulator's and POP3's ports, picked once (kept by a fresh run)
    certs/              the sandbox's own certificate authority and server certificate
    state.json          the emulator's memory (sandbox.state), mode 0600
    clock.json          the emulator's clock offset while it is moved (sandbox.clock)
    tenant.json         the sample tenant: id, deployer's client id, mailboxes
    deployer-secret     the deployer's client secret (0600; env lines read it with $(cat ...))
    passphrase          the stack's secrets passphrase (0600; PULUMI_CONFIG_PASSPHRASE_FILE)
    run/                daemon.pid, runtime.json (written when ready), daemon.log, emulator.log
    project/            a copy of the program (never the checkout's stacks/) with stacks/Pulumi.sandbox.yaml
    backend/            the file backend (PULUMI_BACKEND_URL) of the sandbox's stack
    pulumi-home/        PULUMI_HOME
    msal-token-cache.json   POP3_OAUTH_TOKEN_CACHE
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.engine import ROOT

SANDBOX_DIR_ENV = "POP3_OAUTH_SANDBOX_DIR"
HOST = "127.0.0.1"
STACK = "sandbox"
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt", "components", "mscloud", "popctl")
TENANT_NAME = "sanitaetshaus-muster"
MAILBOXES = ("edi@sanitaetshaus-muster.example", "eab@sanitaetshaus-muster.example")


@dataclass(frozen=True)
class Ports:
    emulator: int
    pop3: int


@dataclass(frozen=True)
class SampleTenant:
    """The sandbox's customer tenant as ``tenant.json`` records it (the secret lives in its own file)."""

    tenant_id: str
    deployer_client_id: str
    mailboxes: tuple[str, ...]


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def from_environment(cls) -> Workspace:
        given = os.environ.get(SANDBOX_DIR_ENV, "").strip()
        return cls(Path(given).resolve() if given else ROOT / ".sandbox")

    # --- paths --------------------------------------------------------------------------------------
    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def clock_file(self) -> Path:
        return self.root / "clock.json"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def pidfile(self) -> Path:
        return self.run / "daemon.pid"

    @property
    def runtime_file(self) -> Path:
        return self.run / "runtime.json"

    @property
    def daemon_log(self) -> Path:
        return self.run / "daemon.log"

    @property
    def emulator_log(self) -> Path:
        return self.run / "emulator.log"

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def backend(self) -> Path:
        return self.root / "backend"

    @property
    def pulumi_home(self) -> Path:
        return self.root / "pulumi-home"

    @property
    def token_cache(self) -> Path:
        return self.root / "msal-token-cache.json"

    @property
    def secret_file(self) -> Path:
        return self.root / "deployer-secret"

    @property
    def passphrase_file(self) -> Path:
        return self.root / "passphrase"

    # --- what is kept -------------------------------------------------------------------------------
    def ports(self) -> Ports:
        """The ports picked the first time, or two free ports on 127.0.0.1 now (and recorded)."""
        path = self.root / "ports.json"
        try:
            saved = json.loads(path.read_text())
            return Ports(int(saved["emulator"]), int(saved["pop3"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        ports = Ports(*_free_ports(2))
        self.root.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps({"emulator": ports.emulator, "pop3": ports.pop3}))
        return ports

    def tenant(self) -> SampleTenant | None:
        try:
            saved = json.loads((self.root / "tenant.json").read_text())
        except (OSError, ValueError):
            return None
        return SampleTenant(saved["tenantId"], saved["deployerClientId"], tuple(saved["mailboxes"]))

    def save_tenant(self, tenant: SampleTenant, deployer_secret: str) -> None:
        record = {
            "tenantId": tenant.tenant_id,
            "deployerClientId": tenant.deployer_client_id,
            "mailboxes": list(tenant.mailboxes),
        }
        write_private(self.root / "tenant.json", json.dumps(record, indent=1))
        write_private(self.secret_file, deployer_secret)

    def deployer_secret(self) -> str:
        return self.secret_file.read_text().strip()

    def passphrase(self) -> Path:
        """The passphrase file, made once with a random passphrase."""
        if not self.passphrase_file.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            write_private(self.passphrase_file, "sandbox-" + secrets.token_urlsafe(24))
        return self.passphrase_file

    def runtime(self) -> dict[str, Any] | None:
        """What the running daemon wrote when it became ready, or None."""
        try:
            document = json.loads(self.runtime_file.read_text())
        except (OSError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def wipe(self, *, keep_ports: bool) -> None:
        """Delete the sandbox's files; with ``keep_ports`` the recorded ports stay."""
        if not self.root.exists():
            return
        for child in self.root.iterdir():
            if keep_ports and child.name == "ports.json":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        if not keep_ports:
            self.root.rmdir()

    def copy_project(self, python_prefix: Path, tenant: SampleTenant) -> Path:
        """A fresh copy of the program and ``stacks/Pulumi.sandbox.yaml`` for ``tenant``; returns the dir."""
        if self.project.exists():
            shutil.rmtree(self.project)
        (self.project / "stacks").mkdir(parents=True)
        for directory in (self.backend, self.pulumi_home):
            directory.mkdir(parents=True, exist_ok=True)
        for name in PROJECT_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.project / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, self.project / name)
        (self.project / ".venv").symlink_to(python_prefix, target_is_directory=True)
        mailboxes = "".join(f"    - {mailbox}\n" for mailbox in tenant.mailboxes)
        (self.project / "stacks" / f"Pulumi.{STACK}.yaml").write_text(
            "# The sandbox's sample tenant (scripts/sandbox), not a customer; it lives only in .sandbox/.\n"
            "config:\n"
            f"  pop3-oauth:tenantId: {tenant.tenant_id}\n"
            f"  pop3-oauth:mailboxes:\n{mailboxes}"
            "  pop3-oauth:tags:\n"
            f"    - customer:{TENANT_NAME}\n"
        )
        return self.project


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)
    temporary.replace(path)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind((HOST, 0))
            sockets.append(probe)
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()
