"""Starting, stopping and describing a sandbox from outside its daemon.

:func:`start` spawns ``python -m sandbox serve`` in its own session and waits (bounded) until it is ready
or has failed; a daemon that is already running and answering is reused, a stale one (a crash: pidfile or
runtime file left behind) is cleaned up first. :func:`stop` ends the daemon by its recorded pid only (and a
Dovecot it left behind, by its recorded pid) and deletes the sandbox's files. :func:`environment` is the
environment of every command against the sandbox, and :func:`env_lines` the same as shell lines to paste,
with each secret read from its file instead of printed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from sandbox.engine import EmulatedTenant, Engine, emulator_environment
from sandbox.workspace import SANDBOX_DIR_ENV, STACK, Workspace

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
PIDFILE_GRACE = 5.0
FOREIGN_VARIABLES = (
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_STACK",
    "ARM_SUBSCRIPTION_ID",
    "ARM_CLIENT_CERTIFICATE_PATH",
    "ARM_CLIENT_CERTIFICATE_PASSWORD",
    "ARM_USE_OIDC",
    "ARM_OIDC_TOKEN",
    "ARM_USE_MSI",
    "ARM_ENVIRONMENT",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "POP3_OAUTH_CLIENT_SECRET",
    "POP3_OAUTH_NOW",
)
"""Variables of the user's own shell that would point a command elsewhere: the env lines unset them."""


class SandboxError(RuntimeError):
    """The sandbox could not be started or used; the message says why and what to do."""


def running_pid(workspace: Workspace) -> int | None:
    """The daemon's pid if a process of ours with that pid is alive."""
    try:
        pid = int(workspace.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_process(pid, "sandbox") else None


def is_ready(workspace: Workspace) -> bool:
    """Whether the daemon runs, has written its runtime file, and the emulator answers."""
    runtime = workspace.runtime()
    if running_pid(workspace) is None or runtime is None:
        return False
    session = requests.Session()
    session.trust_env = False  # no proxy of the user's between us and 127.0.0.1
    try:
        response = session.get(
            f"{runtime['emulatorUrl']}/metadata/endpoints?api-version=2022-09-01",
            verify=str(workspace.certs / "ca.pem"),
            timeout=5,
        )
    except requests.RequestException:
        return False
    finally:
        session.close()
    return response.status_code == 200


def start(workspace: Workspace, *, timeout: float = START_TIMEOUT) -> bool:
    """Start the daemon unless it already runs; returns whether it was started now (False: reused)."""
    if is_ready(workspace):
        return False
    if running_pid(workspace) is None:
        _clean_stale(workspace)
        workspace.run.mkdir(parents=True, exist_ok=True)
        with workspace.daemon_log.open("ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "sandbox", "serve"],
                cwd=Path(__file__).resolve().parents[1],
                env={**os.environ, SANDBOX_DIR_ENV: str(workspace.root)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if is_ready(workspace):
            return True
        # The daemon writes its pidfile first thing: none after a grace period means it has died.
        if running_pid(workspace) is None and time.monotonic() - started > PIDFILE_GRACE:
            break
        time.sleep(0.2)
    tail = _tail(workspace.daemon_log)
    raise SandboxError(f"the sandbox did not start (waited up to {timeout:.0f} s); its log ends:\n{tail}")


def stop_daemon(workspace: Workspace) -> bool:
    """Stop the daemon (if any), keeping the sandbox's files; returns whether one was running."""
    pid = running_pid(workspace)
    if pid is not None:
        _end(pid)
    _clean_stale(workspace)
    return pid is not None


def stop(workspace: Workspace, *, keep_ports: bool = False) -> bool:
    """Stop the daemon (if any) and delete the sandbox's files; returns whether a daemon was stopped."""
    stopped = stop_daemon(workspace)
    workspace.wipe(keep_ports=keep_ports)
    return stopped


def environment(workspace: Workspace, engine: Engine) -> dict[str, str]:
    """The environment of a ``pulumi`` or ``popctl`` command against the running sandbox."""
    runtime, tenant = workspace.runtime(), workspace.tenant()
    if runtime is None or tenant is None:
        raise SandboxError("the sandbox is not running: start it with `scripts/sandbox --keep`")
    emulated = EmulatedTenant(
        tenant.tenant_id,
        tenant.deployer_client_id,
        workspace.deployer_secret(),
        str(runtime["emulatorUrl"]),
        workspace.certs / "ca.pem",
    )
    env = emulator_environment(
        engine,
        Path(sys.prefix) / "bin" / "python",
        emulated,
        pulumi_home=workspace.pulumi_home,
        backend=workspace.backend,
        token_cache=workspace.token_cache,
        passphrase={"PULUMI_CONFIG_PASSPHRASE_FILE": str(workspace.passphrase())},
    )
    env["POP3_OAUTH_POP3_HOST"] = str(runtime["pop3Host"])
    env["POP3_OAUTH_POP3_PORT"] = str(runtime["pop3Port"])
    env["PULUMI_STACK"] = STACK
    env[SANDBOX_DIR_ENV] = str(workspace.root)
    return env


def env_lines(workspace: Workspace, engine: Engine) -> list[str]:
    """Shell lines that give the user's shell :func:`environment` (secrets read from their files)."""
    env = environment(workspace, engine)
    lines = [
        "# pop3-oauth sandbox: paste into bash or zsh; `scripts/sandbox --down` ends the sandbox",
        "unset " + " ".join(name for name in FOREIGN_VARIABLES if name != "PULUMI_STACK"),
    ]
    for name, value in env.items():
        if name in ("HOME", "LANG", "TMPDIR", "CI"):
            continue
        if name == "PATH":
            kept = os.pathsep.join(env["PATH"].split(os.pathsep)[:-3])
            lines.append(f'export PATH={shlex.quote(kept)}:"$PATH"')
        elif name == "ARM_CLIENT_SECRET":
            lines.append(f'export ARM_CLIENT_SECRET="$(cat {shlex.quote(str(workspace.secret_file))})"')
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    # A proxy of the user's must not stand between the commands and 127.0.0.1.
    lines.append(
        'export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost"'
    )
    lines.append(f"cd {shlex.quote(str(workspace.project))}")
    return lines


def _clean_stale(workspace: Workspace) -> None:
    """End a Dovecot a crashed daemon left behind (by its recorded pid) and remove the run files."""
    runtime = workspace.runtime()
    if runtime is not None:
        dovecot_pid = runtime.get("dovecotPid")
        if isinstance(dovecot_pid, int) and _is_process(dovecot_pid, "dovecot"):
            _end(dovecot_pid)
        root = Path(str(runtime.get("dovecotRoot", "")))
        if root.name.startswith("dv") and (root / "dovecot.conf").is_file():
            shutil.rmtree(root, ignore_errors=True)
    workspace.runtime_file.unlink(missing_ok=True)
    workspace.pidfile.unlink(missing_ok=True)


def _end(pid: int) -> None:
    """SIGTERM ``pid``, wait (bounded), SIGKILL if it is still there."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_process(pid: int, word: str) -> bool:
    """Whether ``pid`` is alive and its command line contains ``word`` (so a reused pid is not ours)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return _alive(pid) and word in command


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
