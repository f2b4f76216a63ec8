"""Rendering of ``verify`` results: a rich table on stdout, progress on stderr, or JSON lines on stdout.

Only what :class:`popctl.verify.MailboxResult` carries is rendered - never a secret or a token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from popctl.verify import MailboxResult, RetryNotice, Target


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


class Reporter:
    """Writes one run's output. Consoles bind to ``sys.stdout``/``sys.stderr`` when constructed."""

    def __init__(self, *, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.out = Console(soft_wrap=True, highlight=False)
        self.err = Console(stderr=True, soft_wrap=True, highlight=False)

    def checking(self, mailbox: str, target: Target) -> None:
        """Announce a mailbox on stderr."""
        self.err.print(
            f"[dim]checking {mailbox} at {target.pop3_host}:{target.pop3_port} "
            f"(tenant {target.tenant_id}, app {target.client_id})[/dim]"
        )

    def retrying(self, notice: RetryNotice) -> None:
        """The progress line shown before each wait of ``--wait``."""
        self.err.print(
            f"[yellow]waiting[/yellow] {notice.mailbox}: {notice.cause.value} (attempt {notice.attempt}); "
            f"next attempt in {notice.delay:.1f} s, {notice.remaining:.0f} s left"
        )

    def result(self, result: MailboxResult) -> None:
        """Print one mailbox's verdict: a JSON line, or a short human-readable block."""
        if self.json_lines:
            self.out.out(json.dumps(result.as_json(), ensure_ascii=False), highlight=False)
            return
        if result.ok:
            size = human_size(result.octets or 0)
            tries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
            self.out.print(
                f"[green]OK[/green]   {result.mailbox}: {result.messages} messages, {size}{tries} "
                f"({result.seconds:.1f} s)"
            )
            return
        cause = result.cause.value if result.cause is not None else "unknown"
        self.out.print(f"[red]FAIL[/red] {result.mailbox}: {cause}")
        if result.detail:
            self.out.print(Text(f"     detail: {result.detail}"))
        if result.aadsts:
            self.out.print(f"     AADSTS: {', '.join(str(code) for code in result.aadsts)}")
        for finding in result.findings:
            self.out.print(Text(f"     exchange: {finding}"))
        if result.remedy:
            self.out.print(Text(f"     remedy: {result.remedy}"))

    def summary(self, results: Sequence[MailboxResult]) -> None:
        """A table of all mailboxes (text mode only, and only when there is more than one)."""
        if self.json_lines or len(results) < 2:
            return
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
        self.out.print(table)
