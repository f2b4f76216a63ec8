"""``popctl fleet``: the options, one call of :func:`popctl.fleet.run_fleet`, and the report.

The report goes to stdout (a table, or a JSON array); the progress bar and the notes (sign-in activity that
could not be read, said once per reason) to stderr, the progress only on a terminal. ``--calendar`` and
``--metrics`` also write the iCalendar and Prometheus files.
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
    DEFAULT_IN_USE_DAYS,
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
    from popctl.signins import SignInReader

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
    in_use_days: int = DEFAULT_IN_USE_DAYS
    sign_ins: bool = True
    calendar: Path | None = None
    metrics: Path | None = None


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
        help="read DIR/<stack>/{refresh,preview,outputs,signins}.json instead of running pulumi and Graph",
    )
    parser.add_argument(
        "--in-use-days",
        type=_whole_number,
        default=DEFAULT_IN_USE_DAYS,
        metavar="DAYS",
        help="flag a pending rotation that revokes a secret used within this many days (default 7)",
    )
    parser.add_argument(
        "--no-sign-ins",
        action="store_true",
        help="do not read the secrets' sign-in activity (Graph, AuditLog.Read.All)",
    )
    parser.add_argument(
        "--calendar", type=Path, metavar="FILE.ics", help="also write rotations and expiries as iCalendar"
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        metavar="FILE.prom",
        help="also write Prometheus metrics for node_exporter's textfile collector",
    )


def parse(namespace: argparse.Namespace) -> FleetOptions:
    if namespace.workers < 1:
        raise UsageError("--workers must be at least 1")
    if not namespace.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    stacks = tuple(dict.fromkeys(values.stack_name(name) for name in namespace.stack))
    if namespace.recorded is not None and not namespace.recorded.is_dir():
        raise UsageError(f"--recorded {namespace.recorded} is not a directory")
    for option, path, suffix in (
        ("--calendar", namespace.calendar, ".ics"),
        ("--metrics", namespace.metrics, ".prom"),
    ):
        if path is not None and (path.suffix != suffix or not path.parent.is_dir()):
            raise UsageError(f"{option} must name a {suffix} file in an existing directory, got {path}")
    return FleetOptions(
        stacks=stacks,
        workers=namespace.workers,
        expiry_days=namespace.expiry_days,
        timeout=namespace.timeout,
        json=namespace.json,
        progress=not namespace.no_progress,
        project_dir=namespace.project_dir,
        recorded=namespace.recorded,
        in_use_days=namespace.in_use_days,
        sign_ins=not namespace.no_sign_ins,
        calendar=namespace.calendar,
        metrics=namespace.metrics,
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
            sign_ins=_sign_in_reader(options, context),
            in_use_days=options.in_use_days,
        )
    if options.json:
        context.consoles.result(reports_to_json(reports))
    else:
        render_table(reports, context.consoles.out, options.expiry_days)
    for note in sign_in_notes(reports):
        context.consoles.message(f"popctl fleet: note: {note}")
    if options.calendar is not None:
        from popctl.ics import write_calendar

        write_calendar(options.calendar, reports, now)
    if options.metrics is not None:
        from popctl.metrics import write_metrics

        write_metrics(options.metrics, reports, now)
    return exit_status(reports)


def _sign_in_reader(options: FleetOptions, context: Context) -> SignInReader | None:
    """The context's reader (tests), else the recording's, else Graph's; None with ``--no-sign-ins``."""
    from popctl import signins

    if not options.sign_ins:
        return None
    if context.read_sign_ins is not None:
        return context.read_sign_ins
    if options.recorded is not None:
        return signins.recorded_reader(options.recorded)
    return signins.graph_reader


def sign_in_notes(reports: Sequence[TenantReport]) -> list[str]:
    """One line per reason the sign-in activity could not be read, naming the tenants it applies to."""
    stacks: dict[str, list[str]] = {}
    for report in reports:
        if report.sign_ins_note not in (None, "not asked", "not recorded"):
            stacks.setdefault(str(report.sign_ins_note), []).append(report.stack)
    return [
        f"the secrets' last sign-ins are not shown for {', '.join(names)}: {reason}"
        for reason, names in stacks.items()
    ]


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
        f"Secrets (days left, ! = within {expiry_days}; last sign-in)",
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
            "\n".join([*_in_use_warnings(report), *report.errors]),
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
        used = f" used {secret.last_sign_in_at:%Y-%m-%d}" if secret.last_sign_in_at else ""
        lines.append(f"{secret.key_id[:8]} {secret.expires_in_days}d{marker}{origin}{used}")
    return "\n".join(lines) or "-"


def _in_use_warnings(report: TenantReport) -> list[str]:
    return [
        f"rotation revokes {secret.key_id[:8]}, used {secret.last_sign_in_at:%Y-%m-%d}: switch the ERP "
        f"to the current secret first (popctl handoff --stack {report.stack} --show-secret)"
        for secret in report.revokes_in_use
    ]


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
