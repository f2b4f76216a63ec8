"""``scripts/sandbox`` end to end, as a new user runs it: the walk, ``--keep`` with commands of our own, a
crashed daemon restarted, and ``--down`` leaving no process, no listening port and no state."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import dovecot as dovecot_fake
from sandbox.engine import ENGINE_DIR_ENV, Engine
from sandbox.walk import STEPS
from sandbox.workspace import SANDBOX_DIR_ENV
from tests.e2e.harness import ROOT, engine_required

SCRIPT = ROOT / "scripts" / "sandbox"
WALK_TIMEOUT = 600


@pytest.fixture
def sandbox_dir(engine: Engine, tmp_path: Path) -> Iterator[Path]:
    reason = dovecot_fake.unavailable_reason()
    if reason is not None:
        if engine_required():
            pytest.fail(f"POP3_OAUTH_REQUIRE_ENGINE is set and Dovecot is missing: {reason}")
        pytest.skip(reason)
    directory = tmp_path / "sandbox"
    yield directory
    if directory.exists():
        _script(directory, "--down", timeout=120)


def _script(
    directory: Path, *arguments: str, timeout: float = WALK_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ARM_", "PULUMI_", "POP3_OAUTH_", "AZURE_"))
    }
    env[SANDBOX_DIR_ENV] = str(directory)
    if ENGINE_DIR_ENV in os.environ:
        env[ENGINE_DIR_ENV] = os.environ[ENGINE_DIR_ENV]
    return subprocess.run(
        [str(SCRIPT), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _assert_down_leaves_nothing(directory: Path, ports: dict[str, int], pids: list[int]) -> None:
    down = _script(directory, "--down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert not directory.exists()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert [pid for pid in pids if _alive(pid)] == []
    assert [port for port in ports.values() if _listening(port)] == []


def test_the_walk_does_every_step_and_down_leaves_nothing(sandbox_dir: Path) -> None:
    run = _script(sandbox_dir)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    for step in STEPS:
        assert any(line.startswith(f"ok   {step} ") for line in run.stdout.splitlines()), step
    assert "every step did what it should" in run.stdout
    assert "$ pulumi up --yes --stack sandbox" in run.stdout
    assert "POP3_OAUTH_NOW=" in run.stdout
    assert (sandbox_dir / "deployer-secret").read_text().strip() not in run.stdout + run.stderr
    ports = json.loads((sandbox_dir / "ports.json").read_text())
    assert not any(_listening(port) for port in ports.values()), "a plain run stops its daemon"
    assert not (ROOT / "stacks" / "Pulumi.sandbox.yaml").exists()
    _assert_down_leaves_nothing(sandbox_dir, ports, [])


def test_keep_serves_our_own_commands_survives_a_crash_and_down_leaves_nothing(sandbox_dir: Path) -> None:
    run = _script(sandbox_dir, "--keep")
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    lines = run.stdout[run.stdout.index("# pop3-oauth sandbox:") :].split("\n\n")[0]
    assert 'ARM_CLIENT_SECRET="$(cat ' in lines

    def ours(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", f"set -e\n{lines}\n{command}"],
            env={"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    verify = ours("python -m popctl verify --stack sandbox --json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    results = [json.loads(line) for line in verify.stdout.splitlines()]
    assert [(r["ok"], r["messages"]) for r in results] == [(True, 3), (True, 2)]
    preview = ours("pulumi preview --refresh --expect-no-changes --non-interactive")
    assert preview.returncode == 0, preview.stdout[-3000:] + preview.stderr[-3000:]

    ports = json.loads((sandbox_dir / "ports.json").read_text())
    runtime = json.loads((sandbox_dir / "run" / "runtime.json").read_text())
    os.kill(runtime["pid"], signal.SIGKILL)  # a crash: the daemon we started dies, its Dovecot stays
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(runtime["pid"]):
        time.sleep(0.1)
    restarted = _script(sandbox_dir, "up", timeout=120)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert not _alive(runtime["dovecotPid"]), "the crashed daemon's Dovecot was not ended"
    again = json.loads((sandbox_dir / "run" / "runtime.json").read_text())
    assert (again["emulatorUrl"], again["pop3Port"]) == (runtime["emulatorUrl"], runtime["pop3Port"])
    after_crash = ours("python -m popctl verify --stack sandbox --json")
    assert after_crash.returncode == 0, "the state did not survive the restart: " + after_crash.stdout

    _assert_down_leaves_nothing(sandbox_dir, ports, [again["pid"], again["dovecotPid"]])
