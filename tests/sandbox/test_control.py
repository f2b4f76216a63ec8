"""The sandbox's workspace and env lines: ports kept, secrets only ever read from their files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sandbox import control
from sandbox.engine import Engine
from sandbox.workspace import SampleTenant, Workspace, write_private

TENANT = SampleTenant("0a1b2c3d-1111-2222-3333-444455556666", "client-id", ("edi@x.example", "eab@x.example"))
SECRET = "deployer~not-to-be-printed"


def _running(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "sandbox")
    workspace.save_tenant(TENANT, SECRET)
    runtime = {"emulatorUrl": "https://127.0.0.1:4443", "pop3Host": "127.0.0.1", "pop3Port": 4995}
    write_private(workspace.runtime_file, json.dumps(runtime))
    workspace.project.mkdir(parents=True)
    return workspace


def test_ports_are_picked_once_and_survive_a_fresh_run(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "sandbox")
    first = workspace.ports()
    assert first.emulator != first.pop3
    workspace.wipe(keep_ports=True)
    assert workspace.ports() == first
    workspace.wipe(keep_ports=False)
    assert not workspace.root.exists()


def test_env_lines_point_everything_at_the_sandbox_and_never_print_a_secret(tmp_path: Path) -> None:
    workspace = _running(tmp_path)
    engine = Engine(tmp_path / "engine", language_host=False, azuread_provider=False)
    lines = control.env_lines(workspace, engine)
    text = "\n".join(lines)
    assert SECRET not in text
    assert "passphrase" in text
    assert "PULUMI_CONFIG_PASSPHRASE=" not in text
    script = "\n".join(["set -e", *lines, "env"])
    shown = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": "/usr/bin:/bin", "ARM_SUBSCRIPTION_ID": "x"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    env = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    assert env["ARM_CLIENT_SECRET"] == SECRET
    assert env["ARM_USE_CLI"] == "false"
    assert env["ARM_TENANT_ID"] == TENANT.tenant_id
    assert env["POP3_OAUTH_POP3_PORT"] == "4995"
    assert env["PULUMI_BACKEND_URL"] == f"file://{workspace.backend}"
    assert env["PULUMI_HOME"] == str(workspace.pulumi_home)
    assert "ARM_SUBSCRIPTION_ID" not in env
    assert env["PWD"] == str(workspace.project)
    assert env["PATH"].startswith(f"{engine.directory}:")


def test_the_project_copy_holds_the_program_and_only_the_sandbox_stack(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "sandbox")
    project = workspace.copy_project(tmp_path, TENANT)
    assert sorted(path.name for path in (project / "stacks").iterdir()) == ["Pulumi.sandbox.yaml"]
    assert (project / "__main__.py").is_file()
    assert not (project / "tests").exists()
    assert not (project / "sandbox").exists()
    assert TENANT.tenant_id in (project / "stacks" / "Pulumi.sandbox.yaml").read_text()
