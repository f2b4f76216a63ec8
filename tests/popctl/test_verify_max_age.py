"""``popctl verify --max-age``: the age of the oldest message, from headers only, against a real Dovecot.

The ERP deletes what it fetches, so mail older than the bound means it stopped fetching. Each scenario puts
messages with chosen ``Received:`` dates into the Maildir, checks the verdict and ``oldestMessageAt``, and
that Dovecot served headers only (``top=``), no ``RETR`` and no ``DELE``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.dovecot import DovecotServer, dated_message
from sandbox.tls import TestCertificates as Certificates
from tests.popctl.conftest import SECRET, CliRun, Entra, assert_no_leak, verify_argv

pytestmark = pytest.mark.dovecot

Runner = Callable[..., CliRun]
NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    monkeypatch.setenv("POP3_OAUTH_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("POP3_OAUTH_NOW", "2027-03-10T12:00:00Z")


def ago(**span: float) -> datetime:
    return NOW - timedelta(**span)


def assert_headers_only(server: DovecotServer, messages: int) -> None:
    assert server.log_contains(f"top={messages}/")
    assert server.log_contains(f"retr=0/0, del=0/{messages}")


def test_old_mail_behind_fresh_mail_fails_as_not_fetched(
    run_cli: Runner,
    entra: Entra,
    dovecot_factory: Callable[..., DovecotServer],
    certs: Certificates,
) -> None:
    oldest = ago(days=3, hours=2)
    messages = [
        dated_message(1, ago(minutes=30), ago(minutes=31)),
        dated_message(2, ago(hours=2)),
        dated_message(3, ago(days=3), oldest),
    ]
    server = dovecot_factory(certs, messages=messages)

    run = run_cli(*verify_argv(entra, server, certs, "--max-age", "2d"))

    assert run.code == 1, run.stderr
    result = run.only_result()
    assert result["ok"] is False
    assert result["cause"] == "mail-not-fetched"
    assert result["oldestMessageAt"] == "2027-03-07T10:00:00Z"
    assert "3d 2h ago" in result["detail"] and "--max-age 2d" in result["detail"]
    assert "Concept Office" in result["remedy"]
    assert result["messages"] == 3
    assert_headers_only(server, 3)
    assert_no_leak(run, *entra.issued)


def test_fresh_mail_passes_and_reports_the_oldest(
    run_cli: Runner,
    entra: Entra,
    dovecot_factory: Callable[..., DovecotServer],
    certs: Certificates,
) -> None:
    messages = [dated_message(1, ago(minutes=10)), dated_message(2, ago(hours=5, minutes=30))]
    server = dovecot_factory(certs, messages=messages)

    run = run_cli(*verify_argv(entra, server, certs, "--max-age", "6h"))

    assert run.code == 0, run.stdout + run.stderr
    result = run.only_result()
    assert result["ok"] is True and result["cause"] is None
    assert result["oldestMessageAt"] == "2027-03-10T06:30:00Z"
    assert_headers_only(server, 2)


def test_an_empty_mailbox_passes_without_a_date(
    run_cli: Runner,
    entra: Entra,
    dovecot_factory: Callable[..., DovecotServer],
    certs: Certificates,
) -> None:
    server = dovecot_factory(certs, messages=[])

    run = run_cli(*verify_argv(entra, server, certs, "--max-age", "1h"))

    assert run.code == 0, run.stdout + run.stderr
    assert run.only_result()["oldestMessageAt"] is None


def test_without_max_age_no_header_is_read(
    run_cli: Runner,
    entra: Entra,
    dovecot_factory: Callable[..., DovecotServer],
    certs: Certificates,
) -> None:
    server = dovecot_factory(certs, messages=[dated_message(1, ago(days=30))])

    run = run_cli(*verify_argv(entra, server, certs))

    assert run.code == 0
    assert run.only_result()["oldestMessageAt"] is None
    assert server.log_contains("top=0/0, retr=0/0, del=0/1")


def test_the_text_report_names_the_cause_and_the_oldest_message(
    run_cli: Runner,
    entra: Entra,
    dovecot_factory: Callable[..., DovecotServer],
    certs: Certificates,
) -> None:
    server = dovecot_factory(certs, messages=[dated_message(1, ago(hours=7))])
    argv = [
        argument for argument in verify_argv(entra, server, certs, "--max-age", "6h") if argument != "--json"
    ]

    run = run_cli(*argv)

    assert run.code == 1
    assert "FAIL" in run.stdout and "mail-not-fetched" in run.stdout
    assert "2027-03-10T05:00:00Z" in run.stdout


@pytest.mark.parametrize("value", ["6", "two days", "0h", "-1d", "6s"])
def test_a_malformed_max_age_is_a_usage_error_before_any_call(run_cli: Runner, value: str) -> None:
    run = run_cli("verify", "--tenant-id", "6d1c0f3a-5b2e-4c7d-9a8b-1e2f3a4b5c6d", f"--max-age={value}")

    assert run.code == 2
    assert "--max-age must be a duration like 6h, 2d" in run.stderr
