"""The sandbox's long-running process: the emulator and Dovecot, until SIGTERM.

:func:`serve` runs in the foreground (``python -m sandbox serve``; ``python -m sandbox up`` starts it in the
background and waits). On start it loads the emulator's state (or seeds the sample tenant the first time),
listens on the recorded ports on 127.0.0.1 only, starts Dovecot with the sample mailboxes and their mail,
and writes ``run/runtime.json`` (its pid, Dovecot's pid, URLs, ports) once both answer. On SIGTERM or
SIGINT it stops Dovecot, saves the state and removes ``runtime.json`` and its pidfile.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from types import FrameType

from sandbox.clock import MovableClock
from sandbox.dovecot import DovecotServer, Introspection
from sandbox.emulator import Credentials, Emulator
from sandbox.state import StateFile
from sandbox.tenants import EXCHANGE_ADMINISTRATOR_ROLE, seed_tenant
from sandbox.tls import certificates_in
from sandbox.workspace import MAILBOXES, SampleTenant, Workspace, write_private

INTROSPECTION_USER = "dovecot"


def sample_mail(mailbox: str) -> list[bytes]:
    """What the sample tenant's mailboxes hold: EDI orders in ``edi@``, order confirmations elsewhere."""
    kind = "ORDERS" if mailbox.startswith("edi@") else "ORDRSP"
    count = 3 if kind == "ORDERS" else 2
    return [
        (
            f"From: edi-gateway@lieferant-{index}.example\r\n"
            f"To: {mailbox}\r\n"
            f"Subject: EDIFACT {kind} {4711 + index}\r\n"
            f"Message-ID: <{kind.lower()}-{index}@sandbox.example>\r\n"
            "\r\n"
            f"UNB+UNOC:3+LIEFERANT{index}+SANITAETSHAUS+261201:0900+{4711 + index}'\r\n"
            f"UNH+1+{kind}:D:96A:UN'\r\n"
        ).encode("ascii")
        for index in range(1, count + 1)
    ]


def serve(workspace: Workspace) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 after a clean stop)."""
    workspace.run.mkdir(parents=True, exist_ok=True)
    write_private(workspace.pidfile, str(os.getpid()))
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log = _Log(workspace)
    ports = workspace.ports()
    certificates = certificates_in(workspace.certs)
    credentials = Credentials(INTROSPECTION_USER, secrets.token_urlsafe(18))
    emulator = Emulator.from_state_file(
        StateFile(workspace.state_file),
        certificates,
        port=ports.emulator,
        clock=MovableClock(workspace.clock_file),
        introspection_credentials=credentials,
        log=log.write,
    )
    try:
        emulator.start()
    except OSError as error:
        log.write(f"cannot listen on 127.0.0.1:{ports.emulator}: {error}")
        print(
            f"sandbox: port {ports.emulator} on 127.0.0.1, recorded for this sandbox, is taken ({error}); "
            "end what holds it, or `scripts/sandbox --down` to pick new ports",
            file=sys.stderr,
        )
        workspace.pidfile.unlink(missing_ok=True)
        return 1
    dovecot: DovecotServer | None = None
    try:
        tenant = workspace.tenant()
        if tenant is None:
            seeded = seed_tenant(
                emulator.entra,
                emulator.graph,
                emulator.exchange,
                emulator.base_url,
                MAILBOXES,
                domain="sanitaetshaus-muster.example",
            )
            tenant = SampleTenant(seeded.tenant_id, seeded.deployer.client_id, seeded.mailboxes)
            workspace.save_tenant(tenant, seeded.deployer_secret)
            emulator.save()
        # As docs/permissions.md asks of a deploying identity; the tenant-wide tables are not in the state
        # file, so the role is given at every start.
        deployer = emulator.entra.apps[(tenant.tenant_id.lower(), tenant.deployer_client_id.lower())]
        emulator.graph.tenant_tables.give_role(
            tenant.tenant_id, deployer.object_id, "Exchange Administrator", EXCHANGE_ADMINISTRATOR_ROLE
        )
        dovecot = DovecotServer(
            cert_pem=certificates.server_cert,
            key_pem=certificates.server_key,
            introspection=Introspection(emulator.introspection_url, certificates.ca_bundle),
            mailboxes={mailbox: sample_mail(mailbox) for mailbox in tenant.mailboxes},
            port=ports.pop3,
        )
        dovecot.start()
        runtime = {
            "pid": os.getpid(),
            "dovecotPid": dovecot.pid,
            "emulatorUrl": emulator.base_url,
            "pop3Host": dovecot.host,
            "pop3Port": dovecot.port,
            "dovecotRoot": str(dovecot.root),
            "startedAt": datetime.now(UTC).isoformat(),
        }
        write_private(workspace.runtime_file, json.dumps(runtime, indent=1))
        log.write(f"ready: emulator {emulator.base_url}, POP3 {dovecot.host}:{dovecot.port}")
        while not stopping.wait(1.0):
            if not dovecot.running:
                log.write("Dovecot stopped unexpectedly; the sandbox stops too")
                return 1
        return 0
    finally:
        workspace.runtime_file.unlink(missing_ok=True)
        if dovecot is not None:
            dovecot.stop()
        emulator.save()
        emulator.stop()
        log.write("stopped")
        workspace.pidfile.unlink(missing_ok=True)


class _Log:
    """The emulator's request log, ``run/emulator.log``, one timestamped line each (never a token)."""

    def __init__(self, workspace: Workspace) -> None:
        self.path = workspace.emulator_log
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with self._lock, self.path.open("a") as stream:
            stream.write(f"{stamp} {line}\n")
