"""What ``python -m popctl`` imports, read from ``-X importtime``: checked by a test, not by a clock.

``popctl --help`` and every ``popctl COMMAND --help`` import none of pulumi, grpc, msal, requests;
``popctl handoff`` and ``popctl verify`` (real invocations that fail fast on a stack the Pulumi CLI cannot
read) import neither pulumi nor grpc.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from popctl.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pulumi", "grpc", "msal", "requests")
ENGINE = ("pulumi", "grpc")


# ``python -m popctl`` under ``-X importtime``, printing ``sys.modules`` at exit: importtime does not list a
# module imported through ``importlib.import_module`` (as the chosen command is), ``sys.modules`` does.
WRAPPER = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n')); "
    "sys.argv = ['popctl', *sys.argv[1:]]; "
    "runpy.run_module('popctl', run_name='__main__', alter_sys=True)"
)


def imported_modules(*arguments: str, expect_code: int) -> set[str]:
    """The modules ``python -X importtime -m popctl ARGUMENTS`` imports (with no ``pulumi`` on PATH)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POP3_OAUTH_", "ARM_"))}
    env["PATH"] = str(ROOT / "no-such-bin")
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", WRAPPER, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == expect_code, completed.stdout + completed.stderr[-2000:]
    timed = {
        line.rsplit("|", 1)[1].strip()
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    (loaded,) = [line.split()[1:] for line in completed.stderr.splitlines() if line.startswith("MODULES ")]
    assert "popctl.cli" in timed, completed.stderr[-2000:]
    return timed | set(loaded)


def forbidden(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in roots)


def test_root_help_imports_no_command_and_nothing_heavy() -> None:
    modules = imported_modules("--help", expect_code=0)

    assert forbidden(modules, HEAVY) == []
    assert not any(name.startswith("popctl.commands.") for name in modules)
    assert "rich" not in modules


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help_imports_only_that_command_and_nothing_heavy(command: str) -> None:
    modules = imported_modules(command, "--help", expect_code=0)

    assert forbidden(modules, HEAVY) == []
    assert {name for name in modules if name.startswith("popctl.commands.")} == {f"popctl.commands.{command}"}


@pytest.mark.parametrize(
    "arguments",
    [("handoff", "--stack", "nowhere"), ("verify", "--stack", "nowhere")],
    ids=["handoff", "verify"],
)
def test_handoff_and_verify_runs_load_no_pulumi_engine(arguments: tuple[str, ...]) -> None:
    modules = imported_modules(*arguments, expect_code=2)

    assert forbidden(modules, ENGINE) == []
