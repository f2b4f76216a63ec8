"""The schedule's memory lives in the stack's own state, so it works on every backend kind.

Project-mode file backends are what every other scenario uses; here a legacy (non-project) file backend and
Azure Blob Storage, emulated by Azurite (from npm; ``scripts/test`` installs it). Pulumi Cloud runs the same
code: the program reads nothing of its stack but its configuration. Each backend: two updates, then no
changes in a preview or a refresh, and the schedule's outputs plain.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.e2e.harness import SECRET_MASK, Project, engine_required

AZURITE_ENV = "POP3_OAUTH_AZURITE"
AZURITE_DEFAULT = Path.home() / ".cache" / "pop3-oauth" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented development account (not a secret: every Azurite installation has it).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "pulumi-state"


def _deploy_twice_and_find_no_changes(project: Project) -> None:
    project.init_stack(project.stack)
    project.up()
    project.up()
    project.preview("--expect-no-changes")
    project.pulumi("refresh", "--preview-only", "--expect-no-changes", "--stack", project.stack)
    outputs = project.outputs()
    for name in ("secrets", "nextSecretRotationAt", "secretSchedule"):
        assert outputs[name] != SECRET_MASK, name


def test_a_legacy_file_backend(new_project: Callable[..., Project]) -> None:
    project = new_project()
    project.env["PULUMI_DIY_BACKEND_LEGACY_LAYOUT"] = "1"
    project.env["PULUMI_DIY_BACKEND_IGNORE_DEPRECATION_ERROR"] = "1"  # the CLI deprecates the layout
    project.stack = "legacy"
    _deploy_twice_and_find_no_changes(project)
    assert (project.backend / ".pulumi" / "stacks" / "legacy.json").is_file()  # no project directory


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def azurite(tmp_path: Path) -> Iterator[Azurite]:
    binary = Path(os.environ.get(AZURITE_ENV) or AZURITE_DEFAULT)
    if not binary.is_file() or shutil.which("node") is None:
        reason = f"Azurite not found at {binary} (scripts/test installs it with npm)"
        if engine_required():
            pytest.fail(f"POP3_OAUTH_REQUIRE_ENGINE is set and {reason}")
        pytest.skip(reason)
    port = _free_port()
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(tmp_path),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        service = Azurite(port)
        deadline = time.monotonic() + 60
        while True:
            try:
                BlobServiceClient.from_connection_string(service.connection_string).create_container(
                    CONTAINER
                )
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield service
    finally:
        # Azurite takes a minute and more to exit on SIGTERM; its state is a throwaway directory.
        process.kill()
        process.wait(timeout=30)


def test_azure_blob_storage(new_project: Callable[..., Project], azurite: Azurite) -> None:
    project = new_project()
    project.env.update(
        {
            "PULUMI_BACKEND_URL": (
                f"azblob://{CONTAINER}?localemu=true&domain=127.0.0.1:{azurite.port}&protocol=http"
            ),
            "AZURE_STORAGE_ACCOUNT": ACCOUNT,
            "AZURE_STORAGE_KEY": ACCOUNT_KEY,
        }
    )
    project.stack = "blob"
    _deploy_twice_and_find_no_changes(project)
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        CONTAINER
    )
    assert any(blob.name.endswith("blob.json") for blob in container.list_blobs())
    assert not any(project.backend.iterdir()), "the state went to the file backend instead of the blob"
