"""``popctl fleet``: the options, one call of :func:`popctl.fleet.run_fleet`, and the report.

The report goes to stdout (a table, or a JSON array); the progress bar to stderr, and only on a terminal.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from popctl import values
from popctl.errors import Exit, UsageError
from popctl.fleet import (
    DEFAULT_EXPIRY_DAYS,
    DEFAULT_TENANT_TIMEOUT,
    DEFAULT_WORKERS,
    SecretExpiry,
    TenantReport,
    discover_stacks,
    exit_status,
    reports_to_json,
    run_fleet,
)
from popctl.previews import CliPreviewRunner, PreviewRunner, RecordedPreviewRunner, ResourceChange

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from popctl.cli import Context

_STATUS_STYLE = {
    "in-sync": "green",
    "drift": "yellow",
    "pending": "cyan",
    "expiring": "magenta",
    "error": "bold red",
}


@dataclass(frozen=True)
class FleetOptions:
    stacks: tuple[str, ...]
    workers: int
    expiry_days: int
    timeout: float
    json: bool
    progress: bool
    project_dir: Path | None
    recorded: Path | None


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from error
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check every stack in stacks/ (except 'example') in parallel for drift, pending changes and "
        "expiring secrets. The exit codes are listed by `popctl --help`."
    )
    parser.add_argument(
        "--stack", action="append", default=[], metavar="NAME", help="check only this stack (repeatable)"
    )
    parser.add_argument(
        "--workers", type=_whole_number, default=DEFAULT_WORKERS, help="tenants checked at once"
    )
    parser.add_argument(
        "--expiry-days",
        type=_whole_number,
        default=DEFAULT_EXPIRY_DAYS,
        help="flag secrets expiring within this many days (default 30)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TENANT_TIMEOUT,
        metavar="SECONDS",
        help="give up on a tenant after this long (default 900)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array, one object per tenant")
    parser.add_argument("--no-progress", action="store_true", help="no progress display on stderr")
    parser.add_argument(
        "--project-dir", type=Path, default=None, help="the Pulumi project (default: nearest Pulumi.yaml)"
    )
    parser.add_argument(
        "--recorded",
        type=Path,
        default=None,
        metavar="DIR",
        help="read DIR/<stack>/{refresh,preview,outputs}.json instead of running pulumi",
    )


def parse(namespace: argparse.Namespace) -> FleetOptions:
    if namespace.workers < 1:
        raise UsageError("--workers must be at least 1")
    if not namespace.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    stacks = tuple(dict.fromkeys(values.stack_name(name) for name in namespace.stack))
    if namespace.recorded is not None and not namespace.recorded.is_dir():
        raise UsageError(f"--recorded {namespace.recorded} is not a directory")
    return FleetOptions(
        stacks=stacks,
        workers=namespace.workers,
        expiry_days=namespace.expiry_days,
        timeout=namespace.timeout,
        json=namespace.json,
        progress=not namespace.no_progress,
        project_dir=namespace.project_dir,
        recorded=namespace.recorded,
    )


def run(options: FleetOptions, context: Context) -> Exit:
    now = values.now()
    runner, stacks = _runner_and_stacks(options)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=context.consoles.err,
        transient=True,
        disable=not (options.progress and context.consoles.err.is_terminal),
    )
    with progress:
        reports = run_fleet(
            stacks,
            runner,
            workers=options.workers,
            expiry_days=options.expiry_days,
            tenant_timeout=options.timeout,
            now=now,
            observer=_ProgressObserver(progress, len(stacks)),
        )
    if options.json:
        context.consoles.result(reports_to_json(reports))
    else:
        render_table(reports, context.consoles.out, options.expiry_days)
    return exit_status(reports)


def _runner_and_stacks(options: FleetOptions) -> tuple[PreviewRunner, list[str]]:
    """The runner (recorded results, or the Pulumi CLI in the project) and the stacks to check."""
    if options.recorded is not None:
        recorded = RecordedPreviewRunner(options.recorded)
        available = [stack for stack in recorded.stacks() if stack != values.EXAMPLE_STACK]
        stacks = list(options.stacks) or available
        if not stacks:
            raise UsageError(
                f"no stacks to check in {options.recorded} (the 'example' stack is never checked)"
            )
        return recorded, stacks
    project_dir = values.project_dir(options.project_dir)
    stacks_dir = project_dir / "stacks"
    stacks = list(options.stacks) or discover_stacks(stacks_dir)
    if not stacks:
        raise UsageError(f"no stacks to check in {stacks_dir} (the 'example' stack is never checked)")
    missing = [name for name in stacks if not (stacks_dir / f"Pulumi.{name}.yaml").is_file()]
    if missing:
        raise UsageError(f"--stack {', '.join(missing)}: no stacks/Pulumi.<stack>.yaml for it")
    return CliPreviewRunner(project_dir, timeout=options.timeout), stacks


def render_table(reports: Sequence[TenantReport], console: Console, expiry_days: int) -> None:
    """Print one row per tenant and a summary line."""
    from rich.table import Table

    table = Table(title=f"pop3-oauth fleet ({len(reports)} tenants)", show_lines=True)
    for column in (
        "Stack",
        "Status",
        "Drift",
        "Pending",
        f"Secrets (days left, ! = within {expiry_days})",
        "Errors",
    ):
        table.add_column(column, overflow="fold")
    for report in reports:
        table.add_row(
            report.stack,
            f"[{_STATUS_STYLE[report.status]}]{report.status}[/]",
            _changes_cell(report.drift),
            _changes_cell(report.pending),
            _secrets_cell(report.secrets),
            "\n".join(report.errors),
        )
    console.print(table)
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.status] = counts.get(report.status, 0) + 1
    summary = ", ".join(f"{counts[status]} {status}" for status in _STATUS_STYLE if status in counts)
    console.print(f"{len(reports)} tenants: {summary}", highlight=False)


def _changes_cell(changes: Sequence[ResourceChange]) -> str:
    lines = []
    for change in changes:
        detail = f": {', '.join(change.properties)}" if change.properties else ""
        lines.append(f"{change.op} {change.name}{detail}")
    return "\n".join(lines) or "-"


def _secrets_cell(secrets: Sequence[SecretExpiry]) -> str:
    lines = []
    for secret in secrets:
        marker = "!" if secret.expiring else ""
        origin = "" if secret.managed else " (hand-made)"
        lines.append(f"{secret.key_id[:8]} {secret.expires_in_days}d{marker}{origin}")
    return "\n".join(lines) or "-"


class _ProgressObserver:
    """A progress bar on stderr: tenants done out of total, and how many are running."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("checking tenants", total=total)
        self._running = 0
        self._lock = threading.Lock()

    def started(self, stack: str) -> None:
        with self._lock:
            self._running += 1
            self._progress.update(self._task, description=f"checking tenants ({self._running} running)")

    def finished(self, report: TenantReport) -> None:
        with self._lock:
            self._running = max(0, self._running - 1)
            self._progress.update(
                self._task, advance=1, description=f"checking tenants ({self._running} running)"
            )
