"""The walk-through ``scripts/sandbox`` runs: the main job for the sample tenant, each command printed first.

Steps, each checked, each timed (:data:`STEPS`): start the sandbox (a fresh tenant; the ports are reused),
``pulumi up``, ``popctl verify``, ``popctl handoff``, a FullAccess removed by hand (refused login, shown by
``pulumi preview --refresh``, repaired by ``pulumi up --refresh``), a rotation with every clock moved past
``nextSecretRotationAt`` and back, ``popctl fleet``, ``pulumi destroy``. A short summary says what each step
proved; the exit code is 0 only when every step did what it should. With ``keep`` the destroy is left out
and the sandbox stays up, deployed, with the shell lines to use it printed; otherwise the daemon stops at
the end and its files stay for reading until ``scripts/sandbox --down``.

Secrets: outputs are printed without ``--show-secrets``; before the summary the whole transcript is
searched for the stack's client secret and the deployer's secret, and the walk fails if either is there.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from components.settings import parse_rfc3339, to_rfc3339
from sandbox import control
from sandbox.admin import TenantAdmin
from sandbox.engine import ROOT, Engine, locate_engine
from sandbox.workspace import STACK, Workspace

COMMAND_TIMEOUT = 600.0
HEARTBEAT_SECONDS = 15.0
STEPS = ("start", "deploy", "verify", "handoff", "drift", "rotation", "fleet", "destroy")


class StepFailed(Exception):
    """A step did not do what it should; the message says what was expected and what happened."""


@dataclass
class Completed:
    code: int
    output: str


@dataclass
class Outcome:
    step: str
    seconds: float
    ok: bool | None  # None: not run
    note: str


@dataclass
class Walk:
    workspace: Workspace
    engine: Engine
    keep: bool
    out: TextIO = sys.stdout
    transcript: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)

    # --- output ---------------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        self.transcript.append(text)
        print(text, file=self.out, flush=True)

    def run(
        self,
        command: Sequence[str],
        *,
        expect: Callable[[int], bool] = lambda code: code == 0,
        extra_env: Mapping[str, str] | None = None,
        quiet: bool = False,
        cwd: Path | None = None,
        shown: bool = True,
    ) -> Completed:
        """Print ``$ command`` (with the variables it adds), run it in the project, stream its output.

        ``quiet`` runs it without printing anything (for reading values the walk checks). Raises
        :class:`StepFailed` when ``expect(exit code)`` is false or it outlives :data:`COMMAND_TIMEOUT`.
        """
        text = " ".join([*(f"{k}={v}" for k, v in (extra_env or {}).items()), shlex.join(command)])
        if not quiet and shown:
            self.say(f"$ {text}")
        process = subprocess.Popen(
            list(command),
            cwd=cwd or self.workspace.project,
            env={**self.env, **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        captured: list[str] = []
        started = last = time.monotonic()
        while True:
            if time.monotonic() - started > COMMAND_TIMEOUT:
                process.kill()
                process.wait(timeout=10)
                raise StepFailed(f"{text} ran longer than {COMMAND_TIMEOUT:.0f} s")
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                now = time.monotonic()
                if not quiet and now - last > HEARTBEAT_SECONDS:
                    self.say(f"    ... still running ({now - started:.0f} s)")
                    last = now
                continue
            if line is None:
                break
            captured.append(line)
            last = time.monotonic()
            if not quiet:
                self.say("    " + line.rstrip("\n"))
        code = process.wait(timeout=30)
        completed = Completed(code, "".join(captured))
        if not expect(code):
            raise StepFailed(f"`{text}` exited with {code}")
        return completed

    def sandbox_command(self, *arguments: str) -> Completed:
        """``scripts/sandbox ARGS``, run from the checkout and shown as typed there."""
        self.say(f"$ scripts/sandbox {shlex.join(arguments)}")
        return self.run([str(ROOT / "scripts" / "sandbox"), *arguments], quiet=False, cwd=ROOT, shown=False)

    def outputs(self, *, show_secrets: bool = False) -> dict[str, Any]:
        arguments = ["pulumi", "stack", "output", "--json", "--stack", STACK]
        document = json.loads(
            self.run([*arguments, *(["--show-secrets"] if show_secrets else [])], quiet=True).output
        )
        assert isinstance(document, dict)
        return document

    def admin(self) -> TenantAdmin:
        runtime, tenant = self.workspace.runtime() or {}, self.workspace.tenant()
        assert tenant is not None
        url = str(runtime["emulatorUrl"])
        return TenantAdmin(
            tenant_id=tenant.tenant_id,
            client_id=tenant.deployer_client_id,
            client_secret=self.workspace.deployer_secret(),
            ca_bundle=self.workspace.certs / "ca.pem",
            entra_url=url,
            graph_url=url,
            exchange_url=url,
        )

    # --- the walk -------------------------------------------------------------------------------------
    def walk(self) -> int:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("start", self.start),
            ("deploy", self.deploy),
            ("verify", self.verify),
            ("handoff", self.handoff),
            ("drift", self.drift),
            ("rotation", self.rotation),
            ("fleet", self.fleet),
        ]
        if not self.keep:
            steps.append(("destroy", self.destroy))
        failed = False
        for name, step in steps:
            if failed:
                self.outcomes.append(Outcome(name, 0.0, None, "not run"))
                continue
            self.say(f"\n=== {name} " + "=" * (60 - len(name)))
            started = time.monotonic()
            try:
                note = step()
                self.outcomes.append(Outcome(name, time.monotonic() - started, True, note))
            except (StepFailed, control.SandboxError, AssertionError) as error:
                self.outcomes.append(Outcome(name, time.monotonic() - started, False, str(error)))
                failed = True
        if self.keep:
            self.outcomes.append(
                Outcome("destroy", 0.0, None, "left out (--keep): the tenant stays deployed")
            )
        failed = self.check_no_secret_shown() or failed
        self.summary()
        self.finish(failed)
        return 1 if failed else 0

    def start(self) -> str:
        self.say("# a fresh sandbox: the previous one's state goes, its ports stay")
        control.stop(self.workspace, keep_ports=True)
        self.say("$ python -m sandbox up")
        control.start(self.workspace)
        tenant, runtime = self.workspace.tenant(), self.workspace.runtime()
        assert tenant is not None
        assert runtime is not None
        self.workspace.copy_project(_venv(), tenant)
        self.env = control.environment(self.workspace, self.engine)
        self.say(f"    emulator (Entra, Graph, Exchange) {runtime['emulatorUrl']}")
        self.say(f"    POP3 (Dovecot) {runtime['pop3Host']}:{runtime['pop3Port']}")
        self.say(f"    tenant {tenant.tenant_id}: {', '.join(tenant.mailboxes)}")
        self.run(["pulumi", "stack", "init", STACK, "--non-interactive"])
        return (
            f"emulator and Dovecot on 127.0.0.1; tenant {tenant.tenant_id}, {len(tenant.mailboxes)} mailboxes"
        )

    def deploy(self) -> str:
        up = self.run(["pulumi", "up", "--yes", "--stack", STACK, "--non-interactive"])
        self.run(["pulumi", "stack", "output", "--stack", STACK])
        outputs = self.outputs()
        registrations = self.admin().exchange("Get-ServicePrincipal", {})["value"]
        if not any(r.get("ObjectId") == outputs["servicePrincipalObjectId"] for r in registrations):
            raise StepFailed("Exchange has no registration under the service principal's object id")
        self.client_secret()
        created = _count(up.output, "created")
        return f"{created} resources: app, SP, consent, 3 secrets, Exchange registration, FullAccess on both"

    def verify(self) -> str:
        result = self.run(["python", "-m", "popctl", "verify", "--stack", STACK])
        counts = self._message_counts()
        if "OK" not in result.output:
            raise StepFailed("popctl verify printed no OK")
        return f"real POP3 XOAUTH2 logins with the stack's secret: {counts}"

    def handoff(self) -> str:
        self.run(["python", "-m", "popctl", "handoff", "--stack", STACK])
        return "the ERP's settings sheet, the secret not shown"

    def drift(self) -> str:
        tenant = self.workspace.tenant()
        assert tenant is not None
        mailbox = tenant.mailboxes[-1]
        principal = self.outputs()["servicePrincipalObjectId"]
        self.say("# by hand, as an administrator in Exchange PowerShell would:")
        self.say(
            f"#   Remove-MailboxPermission -Identity {mailbox} -User {principal} -AccessRights FullAccess"
        )
        self.admin().exchange(
            "Remove-MailboxPermission",
            {"Identity": mailbox, "User": principal, "AccessRights": ["FullAccess"], "Confirm": False},
        )
        refused = self.run(
            ["python", "-m", "popctl", "verify", "--stack", STACK], expect=lambda code: code != 0
        )
        if f"FAIL {mailbox}" not in refused.output:
            raise StepFailed(f"verify did not report {mailbox} as refused")
        preview = self.run(["pulumi", "preview", "--refresh", "--stack", STACK, "--non-interactive"])
        if not _plans_change(preview.output, "pop3-mailbox-access"):
            raise StepFailed("pulumi preview --refresh did not plan to restore the removed FullAccess")
        self.run(["pulumi", "up", "--refresh", "--yes", "--stack", STACK, "--non-interactive"])
        self.run(["python", "-m", "popctl", "verify", "--stack", STACK])
        return (
            f"FullAccess removed on {mailbox}: its login refused, preview --refresh showed it, up repaired it"
        )

    def rotation(self) -> str:
        before = self.outputs()
        previous_secret = self.client_secret()
        moment = parse_rfc3339(before["nextSecretRotationAt"]) + timedelta(hours=1)
        at = to_rfc3339(moment)
        current = _current_key(before)
        self.say(f"# nextSecretRotationAt is {before['nextSecretRotationAt']}; three clocks move to {at}:")
        self.say(
            "#   the program's and the providers' (POP3_OAUTH_NOW), the emulator's (tokens, secret expiry),"
        )
        self.say("#   and with it the token lifetimes Dovecot's introspection checks")
        moved = {"POP3_OAUTH_NOW": at}
        try:
            self.sandbox_command("clock", "set", at)
            self.run(["pulumi", "up", "--yes", "--stack", STACK, "--non-interactive"], extra_env=moved)
            after = self.outputs()
            self.client_secret()
            self.run(["python", "-m", "popctl", "verify", "--stack", STACK], extra_env=moved)
            previous_valid = self.signs_in(after["clientId"], previous_secret)
        finally:
            self.say("# back to the real clock everywhere")
            self.sandbox_command("clock", "reset")
        new = _current_key(after)
        statuses = {s["keyId"]: s["status"] for s in after["secrets"]}
        if new == current or statuses.get(current) != "previous":
            raise StepFailed(f"no rotation: current key {current} -> {new}, statuses {statuses}")
        if not previous_valid:
            raise StepFailed("the previous secret, which the ERP still uses, no longer signs in")
        self.run(["python", "-m", "popctl", "verify", "--stack", STACK])
        return "a new secret issued, the previous one still signs in; logins work at the moved time and after"

    def fleet(self) -> str:
        report = self.run(["python", "-m", "popctl", "fleet", "--no-progress"])
        if "1 tenants: 1 in-sync" not in report.output:
            raise StepFailed("the fleet report does not show the sandbox stack in sync")
        return "the sandbox project's one stack in sync, its three secrets' days left"

    def destroy(self) -> str:
        self.run(["pulumi", "destroy", "--yes", "--stack", STACK, "--non-interactive"])
        admin = self.admin()
        apps = admin.graph("GET", "/applications?$filter=displayName eq 'POP3APP'")["value"]
        left = list(admin.exchange("Get-ServicePrincipal", {})["value"])
        if apps or left:
            raise StepFailed(f"left behind: {len(apps)} apps in Graph, {len(left)} Exchange registrations")
        return "app, service principal, consent, secrets, Exchange registration and permissions all gone"

    # --- closing --------------------------------------------------------------------------------------
    def client_secret(self) -> str:
        """The stack's current client secret, read quietly and remembered for the transcript check."""
        secret = str(self.outputs(show_secrets=True).get("clientSecret") or "")
        self.secrets.add(secret)
        return secret

    def signs_in(self, client_id: str, secret: str) -> bool:
        """Whether the emulated Entra issues a POP3 token for ``client_id`` with ``secret`` now."""
        admin = self.admin()
        response = admin.session.post(
            f"{admin.entra_url}/{admin.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "scope": "https://outlook.office365.com/.default",
            },
            timeout=30,
        )
        return response.status_code == 200

    def check_no_secret_shown(self) -> bool:
        """Whether a secret value appears in the transcript (then a failure outcome is recorded)."""
        values = [self.workspace.deployer_secret(), *self.secrets]
        with contextlib.suppress(StepFailed, ValueError, OSError, KeyError):
            values.append(self.client_secret())
        text = "\n".join(self.transcript)
        shown = [value for value in values if value and value in text]
        if shown:
            self.outcomes.append(Outcome("secrets", 0.0, False, f"{len(shown)} secret value(s) printed"))
        return bool(shown)

    def summary(self) -> None:
        self.say("\n=== summary " + "=" * 53)
        for outcome in self.outcomes:
            mark = {True: "ok  ", False: "FAIL", None: "--  "}[outcome.ok]
            seconds = f"{outcome.seconds:6.1f} s" if outcome.ok is not None else " " * 8
            self.say(f"{mark} {outcome.step:<9} {seconds}  {outcome.note}")
        total = sum(outcome.seconds for outcome in self.outcomes)
        verdict = (
            "every step did what it should" if all(o.ok is not False for o in self.outcomes) else "FAILED"
        )
        self.say(f"total {total:.1f} s: {verdict}")

    def finish(self, failed: bool) -> None:
        if self.keep:
            self.say("\nThe sandbox keeps running, the tenant deployed. Paste these lines into your shell:\n")
            for line in control.env_lines(self.workspace, self.engine):
                self.say(line)
            script = ROOT / "scripts" / "sandbox"
            self.say("\nthen e.g. `pulumi preview --refresh`, `python -m popctl verify --stack sandbox`;")
            self.say(f"`{script} status`, `{script} clock set T` and `{script} --down` (stops it, deletes")
            self.say("its state) work from anywhere.")
            return
        control.stop_daemon(self.workspace)
        where = self.workspace.run
        self.say(f"\nThe sandbox has stopped; its logs are in {where} until `scripts/sandbox --down`.")
        if failed:
            self.say(
                "See the failed step above; `scripts/sandbox --keep` leaves the sandbox up to look into it."
            )

    def _message_counts(self) -> str:
        tenant = self.workspace.tenant()
        assert tenant is not None
        result = self.run(["python", "-m", "popctl", "verify", "--stack", STACK, "--json"], quiet=True)
        counts = {}
        for line in result.output.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                counts[record["mailbox"]] = record.get("messages")
        if set(counts) != set(tenant.mailboxes) or not all(counts.values()):
            raise StepFailed(f"delivered mail not counted in every mailbox: {counts}")
        return ", ".join(f"{mailbox.split('@')[0]}@: {count} messages" for mailbox, count in counts.items())


def walk(workspace: Workspace, *, keep: bool) -> int:
    engine = locate_engine()
    if isinstance(engine, str):
        print(f"sandbox: no Pulumi engine: {engine}", file=sys.stderr)
        return 1
    return Walk(workspace, engine, keep).walk()


def _pump(stream: TextIO | None, lines: queue.Queue[str | None]) -> None:
    if stream is not None:
        for line in stream:
            lines.put(line)
    lines.put(None)


def _venv() -> Path:
    return Path(sys.prefix)


def _count(output: str, word: str) -> int:
    match = re.search(rf"\+ (\d+) {word}", output)
    return int(match.group(1)) if match else 0


def _plans_change(preview: str, resource: str) -> bool:
    """Whether ``pulumi preview`` output plans a create, update or replace of the resource ``resource``."""
    return any(
        re.search(rf"\s{re.escape(resource)} (create|update|replace)\s*$", line)
        for line in preview.splitlines()
    )


def _current_key(outputs: Mapping[str, Any]) -> str:
    return next(str(s["keyId"]) for s in outputs["secrets"] if s["status"] == "current")
