"""``python -m sandbox``: the local Microsoft 365 sandbox's own commands.

    python -m sandbox up             start the sandbox (or reuse the running one)
    python -m sandbox down           stop it and delete its state (``--keep-ports``: a fresh one reuses them)
    python -m sandbox status         running or not, where, the tenant, the clock
    python -m sandbox env            shell lines that point pulumi and popctl at it
    python -m sandbox clock set T    move the emulator's clock to T (RFC 3339); also ``reset``, ``show``
    python -m sandbox serve          run in the foreground (what ``up`` starts)
    python -m sandbox walk [--keep]  the walk-through (what ``scripts/sandbox`` runs)

``POP3_OAUTH_SANDBOX_DIR`` moves the sandbox's directory (default ``.sandbox/`` of the checkout).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from sandbox import clock, control
from sandbox.engine import locate_engine
from sandbox.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the sandbox, or reuse the running one")
    down = commands.add_parser("down", help="stop the sandbox and delete its state")
    down.add_argument("--keep-ports", action="store_true", help="keep the recorded ports")
    commands.add_parser("status", help="say whether it runs, and where")
    commands.add_parser("env", help="print shell lines pointing pulumi and popctl at the sandbox")
    moved = commands.add_parser("clock", help="move the emulator's clock")
    moved.add_argument("action", choices=("set", "reset", "show"))
    moved.add_argument("moment", nargs="?", help="RFC 3339, for set")
    commands.add_parser("serve", help="run the sandbox in the foreground")
    walk = commands.add_parser("walk", help="the walk-through scripts/sandbox runs")
    walk.add_argument("--keep", action="store_true", help="leave the sandbox running, deployed")
    options = parser.parse_args(argv)
    workspace = Workspace.from_environment()
    try:
        return _run(options, workspace)
    except control.SandboxError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 1


def _run(options: argparse.Namespace, workspace: Workspace) -> int:
    if options.command == "serve":
        from sandbox.daemon import serve

        return serve(workspace)
    if options.command == "walk":
        from sandbox.walk import walk

        return walk(workspace, keep=options.keep)
    if options.command == "up":
        started = control.start(workspace)
        runtime = workspace.runtime() or {}
        print(f"sandbox {'started' if started else 'already running'}: emulator {runtime.get('emulatorUrl')}")
        return 0
    if options.command == "down":
        stopped = control.stop(workspace, keep_ports=options.keep_ports)
        print(f"sandbox {'stopped and ' if stopped else ''}removed: {workspace.root}")
        return 0
    if options.command == "status":
        return _status(workspace)
    if options.command == "env":
        engine = locate_engine()
        if isinstance(engine, str):
            raise control.SandboxError(engine)
        print("\n".join(control.env_lines(workspace, engine)))
        return 0
    return _clock(options, workspace)


def _status(workspace: Workspace) -> int:
    runtime, tenant = workspace.runtime(), workspace.tenant()
    if not control.is_ready(workspace) or runtime is None:
        print(f"sandbox not running ({workspace.root})")
        return 3
    print(f"sandbox running (pid {runtime['pid']}) in {workspace.root}")
    print(f"  emulator (Entra, Graph, Exchange): {runtime['emulatorUrl']}")
    print(f"  POP3 (Dovecot):                    {runtime['pop3Host']}:{runtime['pop3Port']}")
    if tenant is not None:
        print(f"  tenant {tenant.tenant_id}, mailboxes {', '.join(tenant.mailboxes)}")
    offset = clock.read_offset(workspace.clock_file)
    print(f"  clock: {f'moved by {offset:+.0f} s' if offset else 'the machine'}")
    return 0


def _clock(options: argparse.Namespace, workspace: Workspace) -> int:
    if options.action == "set":
        if not options.moment:
            raise control.SandboxError("clock set needs a moment, e.g. 2027-06-01T09:00:00Z")
        moment = datetime.fromisoformat(options.moment.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise control.SandboxError(f"{options.moment} has no offset; write it as ...Z or ...+00:00")
        offset = clock.set_clock(workspace.clock_file, moment)
        print(f"emulator clock set to {moment.astimezone(UTC).isoformat()} ({offset:+.0f} s)")
    elif options.action == "reset":
        clock.reset_clock(workspace.clock_file)
        print("emulator clock back on the machine's clock")
    else:
        now = clock.MovableClock(workspace.clock_file).now()
        print(f"emulator clock: {now.isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
