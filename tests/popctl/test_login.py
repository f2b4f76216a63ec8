"""``popctl login`` / ``logout`` against the Entra fake's device-code flow (approved by the test)."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.tls import TestCertificates as Certificates
from tests.popctl.conftest import TENANT, CliRun, Entra

ADMIN_UPN = "admin@contoso.test"
OTHER_TENANT = "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091"


@pytest.fixture
def approver(entra: Entra) -> Iterator[None]:
    """Acts as the administrator: approves every device code as soon as it is issued."""
    stop = threading.Event()

    def approve() -> None:
        while not stop.wait(0.02):
            for code in entra.fake.pending_user_codes():
                entra.fake.approve_device_code(code, ADMIN_UPN)

    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=5)


@pytest.fixture
def signed_env(
    entra: Entra, certs: Certificates, monkeypatch: pytest.MonkeyPatch, clean_env: None, tmp_path: Path
) -> Path:
    monkeypatch.setenv("POP3_OAUTH_AUTHORITY_HOST", entra.base_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.ca_bundle))
    entra.fake.add_tenant(OTHER_TENANT)
    return tmp_path / "msal-cache.json"


@pytest.mark.usefixtures("approver")
def test_login_fills_a_private_cache_and_logout_clears_it(
    signed_env: Path, run_cli: Callable[..., CliRun], entra: Entra
) -> None:
    run = run_cli("login", "--tenant-id", TENANT)

    assert run.code == 0, run.stderr
    assert f"Signed in as {ADMIN_UPN}" in run.stdout
    assert "enter the code" in run.stderr
    assert stat.S_IMODE(signed_env.stat().st_mode) == 0o600
    cache = json.loads(signed_env.read_text())
    assert cache["RefreshToken"] and cache["Account"]
    for refresh in cache["RefreshToken"].values():
        assert refresh["secret"] not in run.stdout + run.stderr

    assert run_cli("login", "--tenant-id", OTHER_TENANT).code == 0
    assert stat.S_IMODE(signed_env.stat().st_mode) == 0o600

    run = run_cli("logout", "--tenant-id", TENANT)
    assert (run.code, "Signed out (tenant" in run.stdout) == (0, True)
    realms = {account["realm"] for account in json.loads(signed_env.read_text())["Account"].values()}
    assert realms == {OTHER_TENANT}

    run = run_cli("logout")
    assert run.code == 0 and not signed_env.exists()

    run = run_cli("logout")
    assert run.code == 0 and "Nothing to sign out" in run.stdout


def test_login_to_an_unknown_tenant_fails_cleanly(signed_env: Path, run_cli: Callable[..., CliRun]) -> None:
    run = run_cli("login", "--tenant-id", "99999999-9999-4999-8999-999999999999")

    assert run.code == 1
    assert "popctl login:" in run.stderr
    assert not signed_env.exists()
