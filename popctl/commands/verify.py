"""``popctl verify``: the options, one call of :func:`popctl.verify.verify_mailboxes`, and its rendering.

Results go to stdout (a short block per mailbox and a table, or one JSON object per line); the line per
mailbox checked and per retry of ``--wait`` goes to stderr. Only what a result carries is rendered - never
a secret or a token.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from components.settings import to_rfc3339
from mscloud.clouds import AUTHORITY_HOST_ENV, CLOUDS, POP3_PORT
from popctl import values
from popctl.errors import Exit, UsageError
from popctl.pop3 import DEFAULT_TIMEOUT
from popctl.target import SECRET_ENV, TargetOptions, resolve_target

if TYPE_CHECKING:
    from collections.abc import Sequence

    from popctl.cli import Context
    from popctl.consoles import Consoles
    from popctl.target import Target
    from popctl.verify import MailboxResult, RetryNotice


@dataclass(frozen=True)
class VerifyOptions:
    target: TargetOptions
    wait: float
    timeout: float
    json: bool
    admin: bool
    max_age: timedelta | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Prove that the app can log in to each mailbox with POP3 and XOAUTH2."
    parser.epilog = (
        f"The client secret is read from ${SECRET_ENV} (or the stack), never from the command line."
    )
    source = parser.add_argument_group("what to verify")
    source.add_argument("--stack", help="read tenant, app, mailboxes, endpoints and secret from this stack")
    source.add_argument("--tenant-id", help="the customer's tenant id (Verzeichnis-ID)")
    source.add_argument("--client-id", help="the app's client (application) id")
    source.add_argument(
        "--mailbox", action="append", metavar="ADDRESS", help="mailbox to check; repeat for more"
    )
    source.add_argument(
        "--service-principal-object-id", help="the enterprise application's object id (for --admin)"
    )
    where = parser.add_argument_group("endpoints")
    where.add_argument("--cloud", choices=sorted(CLOUDS), help="the Microsoft cloud (default public)")
    where.add_argument("--pop3-host", help="POP3 server (default outlook.office365.com)")
    where.add_argument("--pop3-port", type=int, help=f"POP3-over-TLS port (default {POP3_PORT})")
    where.add_argument(
        "--authority-host", help=f"Entra authority URL (default the cloud's; env {AUTHORITY_HOST_ENV})"
    )
    where.add_argument("--scope", help="token scope (default the cloud's Exchange scope)")
    where.add_argument("--ca-file", type=Path, help="CA bundle (PEM) for the POP3 server and token endpoint")
    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="retry failures that can be propagation delays until this many seconds have passed",
    )
    behaviour.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="network timeout in seconds"
    )
    behaviour.add_argument(
        "--max-age",
        metavar="DURATION",
        help=(
            "also fail a mailbox whose oldest message is older than this (6h, 2d, 90m): the ERP, which "
            "deletes what it fetches, has stopped fetching (reads headers only, changes nothing)"
        ),
    )
    behaviour.add_argument("--json", action="store_true", help="one JSON object per mailbox per line")
    behaviour.add_argument(
        "--admin", action="store_true", help="explain refused logins from Exchange (needs admin credentials)"
    )


def parse(namespace: argparse.Namespace) -> VerifyOptions:
    if namespace.wait < 0:
        raise UsageError("--wait must be zero or more seconds")
    target = TargetOptions(
        stack=namespace.stack,
        tenant_id=namespace.tenant_id,
        client_id=namespace.client_id,
        mailboxes=tuple(namespace.mailbox or ()),
        service_principal_object_id=namespace.service_principal_object_id,
        cloud=namespace.cloud,
        pop3_host=namespace.pop3_host,
        pop3_port=namespace.pop3_port,
        authority_host=namespace.authority_host,
        scope=namespace.scope,
        ca_file=namespace.ca_file,
    )
    max_age = None if namespace.max_age is None else values.duration(namespace.max_age, "--max-age")
    return VerifyOptions(target, namespace.wait, namespace.timeout, namespace.json, namespace.admin, max_age)


def run(options: VerifyOptions, context: Context) -> Exit:
    from popctl.verify import verify_mailboxes

    now = values.now()
    target, secret = resolve_target(options.target, os.environ, read_stack=context.read_stack)
    report = Report(context.consoles, json_lines=options.json)
    results = verify_mailboxes(
        target,
        secret,
        report,
        wait=options.wait,
        timeout=options.timeout,
        admin=options.admin,
        backoff=context.verify_backoff,
        max_age=options.max_age,
        now=lambda: now,
    )
    report.summary(results)
    return Exit.OK if all(result.ok for result in results) else Exit.FAILED


def human_size(octets: int) -> str:
    """``438`` -> ``438 B``, ``1536`` -> ``1.5 KiB``."""
    if octets < 1024:
        return f"{octets} B"
    size = octets / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class Report:
    """Renders one run (a :class:`popctl.verify.Observer`)."""

    def __init__(self, consoles: Consoles, *, json_lines: bool) -> None:
        self.consoles = consoles
        self.json_lines = json_lines

    def checking(self, mailbox: str, target: Target) -> None:
        self.consoles.err.print(
            f"[dim]checking {mailbox} at {target.pop3_host}:{target.pop3_port} "
            f"(tenant {target.tenant_id}, app {target.client_id})[/dim]"
        )

    def retrying(self, notice: RetryNotice) -> None:
        self.consoles.err.print(
            f"[yellow]waiting[/yellow] {notice.mailbox}: {notice.cause.value} (attempt {notice.attempt}); "
            f"next attempt in {notice.delay:.1f} s, {notice.remaining:.0f} s left"
        )

    def result(self, result: MailboxResult) -> None:
        """One mailbox's verdict: a JSON line, or a short human-readable block."""
        if self.json_lines:
            self.consoles.result(json.dumps(result.as_json(), ensure_ascii=False))
            return
        from rich.text import Text

        out = self.consoles.out
        if result.ok:
            size = human_size(result.octets or 0)
            tries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
            oldest = (
                f", oldest from {to_rfc3339(result.oldest_message_at)}" if result.oldest_message_at else ""
            )
            out.print(
                f"[green]OK[/green]   {result.mailbox}: {result.messages} messages, {size}{oldest}{tries} "
                f"({result.seconds:.1f} s)"
            )
            for finding in result.findings:
                out.print(Text(f"     note: {finding}"))
            return
        cause = result.cause.value if result.cause is not None else "unknown"
        out.print(f"[red]FAIL[/red] {result.mailbox}: {cause}")
        if result.detail:
            out.print(Text(f"     detail: {result.detail}"))
        if result.aadsts:
            out.print(f"     AADSTS: {', '.join(str(code) for code in result.aadsts)}")
        for finding in result.findings:
            out.print(Text(f"     exchange: {finding}"))
        if result.remedy:
            out.print(Text(f"     remedy: {result.remedy}"))

    def summary(self, results: Sequence[MailboxResult]) -> None:
        """A table of all mailboxes (text mode only, and only when there is more than one)."""
        if self.json_lines or len(results) < 2:
            return
        from rich.table import Table

        table = Table(title="POP3 verification")
        for column in ("Mailbox", "Result", "Messages", "Size", "Cause"):
            table.add_column(column)
        for result in results:
            table.add_row(
                result.mailbox,
                "[green]OK[/green]" if result.ok else "[red]FAIL[/red]",
                "" if result.messages is None else str(result.messages),
                "" if result.octets is None else human_size(result.octets),
                result.cause.value if result.cause is not None else "",
            )
        self.consoles.out.print(table)
