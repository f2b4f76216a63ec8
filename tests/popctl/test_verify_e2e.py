"""``popctl verify`` end to end: msal against the Entra fake, POP3 against a real Dovecot.

One scenario per failure class; each asserts the exit code, the JSON ``cause`` and that neither the
secret nor any issued token was printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mscloud.causes import Cause
from popctl.verify import PROPAGATION_CAUSES
from sandbox.dovecot import DovecotServer
from sandbox.entra import EXCHANGE_RESOURCE
from sandbox.tls import TestCertificates as Certificates
from tests.popctl.conftest import (
    MAILBOX,
    SECRET,
    TENANT,
    CliRun,
    Entra,
    assert_no_leak,
    stack_output_values,
    trust_entra_key,
    verify_argv,
)

pytestmark = pytest.mark.dovecot

Runner = Callable[..., CliRun]


@pytest.fixture(autouse=True)
def secret_in_env(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    monkeypatch.setenv("POP3_OAUTH_CLIENT_SECRET", SECRET)


@contextmanager
def after(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` on a timer thread ``seconds`` from now (joined on exit)."""
    timer = threading.Timer(seconds, action)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join(timeout=5)


def test_success_reports_message_count_and_size(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    run = run_cli(*verify_argv(entra, dovecot, certs))

    assert run.code == 0, run.stdout + run.stderr + dovecot.log()
    result = run.only_result()
    assert result["ok"] is True
    assert result["mailbox"] == MAILBOX
    assert (result["messages"], result["octets"]) == (dovecot.message_count, dovecot.octets) == (3, 438)
    assert result["cause"] is None and result["remedy"] is None
    assert dovecot.log_contains("Login: user=<edi@contoso.test>, method=XOAUTH2"), dovecot.log()
    assert dovecot.log_contains("del=0/3"), dovecot.log()
    assert_no_leak(run, *entra.issued)


def test_success_in_text_mode(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    argv = [arg for arg in verify_argv(entra, dovecot, certs) if arg != "--json"]

    run = run_cli(*argv)

    assert run.code == 0
    assert f"OK   {MAILBOX}: 3 messages, 438 B" in run.stdout
    assert_no_leak(run, *entra.issued)


def test_expired_token_is_refused_by_the_server_and_blamed_on_the_clock(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    entra.app.lifetime = -120

    run = run_cli(*verify_argv(entra, dovecot, certs))

    assert run.code == 1
    result = run.only_result()
    assert (result["ok"], result["cause"], result["messages"]) == (False, "token-expired", None)
    assert "clock" in result["remedy"]
    assert dovecot.log_contains("Token has expired"), dovecot.log()
    assert_no_leak(run, *entra.issued)


def test_token_without_pop_role_is_consent_missing(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    entra.revoke_pop()

    run = run_cli(*verify_argv(entra, dovecot, certs))

    assert run.code == 1
    result = run.only_result()
    assert result["cause"] == "consent-missing"
    assert "POP.AccessAsApp" in result["detail"]
    assert "admin consent" in result["remedy"]
    assert_no_leak(run, *entra.issued)


def test_wrong_audience(run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates) -> None:
    entra.app.audience = "https://graph.microsoft.com"

    run = run_cli(*verify_argv(entra, dovecot, certs))

    assert run.code == 1
    result = run.only_result()
    assert result["cause"] == "wrong-audience"
    assert "https://graph.microsoft.com" in result["detail"]
    assert_no_leak(run, *entra.issued)


def test_wrong_mailbox_is_a_refused_login(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    run = run_cli(*verify_argv(entra, dovecot, certs, mailboxes=["other@contoso.test"]))

    assert run.code == 1
    result = run.only_result()
    assert (result["mailbox"], result["cause"]) == ("other@contoso.test", "login-refused")
    assert "-ERR [AUTH] Authentication failed." in result["detail"]
    assert dovecot.log_contains("did not match"), dovecot.log()
    assert_no_leak(run, *entra.issued)


def test_server_down_is_connection_refused(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    dovecot.stop(remove=False)

    run = run_cli(*verify_argv(entra, dovecot, certs))

    assert run.code == 1
    result = run.only_result()
    assert result["cause"] == "connection-refused"
    assert "--pop3-port" in result["remedy"]
    assert_no_leak(run, *entra.issued)


def test_untrusted_certificate_is_a_tls_failure(
    run_cli: Runner,
    entra: Entra,
    dovecot_factory: Callable[..., DovecotServer],
    certs: Certificates,
    other_certs: Certificates,
) -> None:
    untrusted = dovecot_factory(other_certs)

    run = run_cli(*verify_argv(entra, untrusted, certs))

    assert run.code == 1
    result = run.only_result()
    assert result["cause"] == "tls-failure"
    assert "not trusted" in result["detail"]
    assert "Login:" not in untrusted.log()
    assert_no_leak(run, *entra.issued)


@pytest.mark.usefixtures("fast_backoff")
def test_consent_arriving_during_wait_succeeds_with_fresh_tokens(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    entra.revoke_pop()

    with after(1.5, entra.grant_pop):
        started = time.monotonic()
        run = run_cli(*verify_argv(entra, dovecot, certs), "--wait", "20")
        elapsed = time.monotonic() - started

    assert run.code == 0, run.stdout + run.stderr
    result = run.only_result()
    assert (result["ok"], result["messages"]) == (True, 3)
    assert result["attempts"] >= 2
    assert entra.fake.requests["token"] == result["attempts"]
    assert "waiting" in run.stderr and "consent-missing" in run.stderr
    assert 1.5 <= elapsed < 5
    assert_no_leak(run, *entra.issued)


@pytest.mark.usefixtures("fast_backoff")
def test_exchange_replication_during_wait_turns_a_refused_login_into_success(
    run_cli: Runner,
    entra: Entra,
    dovecot_factory: Callable[..., DovecotServer],
    certs: Certificates,
) -> None:
    """The server refuses until the key appears - as Office 365 does until Exchange has replicated."""
    server = dovecot_factory(certs, with_key=False)

    with after(1.0, lambda: trust_entra_key(server, entra)):
        run = run_cli(*verify_argv(entra, server, certs), "--wait", "20")

    assert run.code == 0, run.stdout + run.stderr
    result = run.only_result()
    assert (result["ok"], result["messages"], result["octets"]) == (True, 3, 438)
    assert "login-refused" in run.stderr
    assert_no_leak(run, *entra.issued)


@pytest.mark.usefixtures("fast_backoff")
def test_wait_that_runs_out_reports_the_last_cause(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    entra.revoke_pop()

    started = time.monotonic()
    run = run_cli(*verify_argv(entra, dovecot, certs), "--wait", "1.5")
    elapsed = time.monotonic() - started

    assert run.code == 1
    result = run.only_result()
    assert result["cause"] == "consent-missing"
    assert result["attempts"] >= 3
    assert "still failing" in result["detail"]
    assert 1.5 <= elapsed < 4
    assert_no_leak(run, *entra.issued)


def test_wait_does_not_retry_what_cannot_be_propagation(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    dovecot.stop(remove=False)

    run = run_cli(*verify_argv(entra, dovecot, certs), "--wait", "30")

    assert run.only_result()["attempts"] == 1
    assert Cause.CONNECTION_REFUSED not in PROPAGATION_CAUSES


def test_several_mailboxes_one_line_each_and_exit_1_if_any_fails(
    run_cli: Runner, entra: Entra, dovecot: DovecotServer, certs: Certificates
) -> None:
    run = run_cli(*verify_argv(entra, dovecot, certs), "--mailbox", "other@contoso.test")

    assert run.code == 1
    lines = run.json_lines()
    assert [(line["mailbox"], line["ok"]) for line in lines] == [
        (MAILBOX, True),
        ("other@contoso.test", False),
    ]
    for line in lines:
        assert {"mailbox", "ok", "messages", "octets", "cause", "remedy"} <= set(line)
    assert_no_leak(run, *entra.issued)


def test_real_subprocess_with_stack_outputs_from_a_pulumi_on_path(
    entra: Entra, dovecot: DovecotServer, certs: Certificates, tmp_path: Path
) -> None:
    """``python -m popctl verify --stack`` reading outputs through a stand-in ``pulumi`` executable."""
    outputs = stack_output_values(entra, port=dovecot.port)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (tmp_path / "outputs.json").write_text(__import__("json").dumps(outputs))
    pulumi = fake_bin / "pulumi"
    pulumi.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{tmp_path}/calls"\n'
        'case " $* " in *" --show-secrets "*) ;; *) echo "--show-secrets expected" >&2; exit 3;; esac\n'
        f'cat "{tmp_path}/outputs.json"\n'
    )
    pulumi.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ARM_", "POP3_OAUTH_")) and key != "REQUESTS_CA_BUNDLE"
    }
    env["PATH"] = f"{fake_bin}{os.pathsep}{env.get('PATH', '')}"
    env["REQUESTS_CA_BUNDLE"] = str(certs.ca_bundle)
    project = Path(__file__).resolve().parents[2]

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "popctl",
            "verify",
            "--stack",
            "acme",
            "--ca-file",
            str(certs.ca_bundle),
            "--json",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    run = CliRun(completed.returncode, completed.stdout, completed.stderr)
    result = run.only_result()
    assert (result["ok"], result["messages"], result["octets"]) == (True, 3, 438)
    assert "--stack acme" in (tmp_path / "calls").read_text()
    assert_no_leak(run, *entra.issued)


def test_subprocess_without_secret_is_a_usage_error(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("POP3_OAUTH_")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "popctl",
            "verify",
            "--tenant-id",
            TENANT,
            "--client-id",
            "x",
            "--mailbox",
            MAILBOX,
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 2
    assert "POP3_OAUTH_CLIENT_SECRET" in completed.stderr


def test_token_side_failures_by_aadsts(
    run_cli: Runner,
    entra: Entra,
    dovecot: DovecotServer,
    certs: Certificates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases: list[tuple[Callable[[], None], str, int | None]] = [
        (lambda: entra.app.secrets.update({SECRET: time.time() - 60}), "expired-secret", 7000222),
        (lambda: entra.app.secrets.clear(), "invalid-secret", 7000215),
    ]
    for arrange, cause, code in cases:
        arrange()
        run = run_cli(*verify_argv(entra, dovecot, certs))
        result = run.only_result()
        assert (run.code, result["cause"], result["aadsts"]) == (1, cause, [code])
        assert_no_leak(run)

    argv = verify_argv(entra, dovecot, certs)
    argv[argv.index(entra.app.client_id)] = "4ca1b2c3-0000-4000-8000-000000000000"
    run = run_cli(*argv)
    assert (run.code, run.only_result()["cause"]) == (1, "unknown-app")

    argv = verify_argv(entra, dovecot, certs)
    argv[argv.index(TENANT)] = "99999999-9999-4999-8999-999999999999"
    run = run_cli(*argv)
    assert (run.code, run.only_result()["cause"]) == (1, "unknown-tenant")
    assert_no_leak(run)
    assert entra.app.roles[EXCHANGE_RESOURCE]
