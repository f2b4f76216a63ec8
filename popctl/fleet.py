"""``popctl fleet``: check every tenant stack for drift, pending changes and expiring secrets.

Each tenant is checked on a worker thread through a :class:`~popctl.previews.PreviewRunner`: its outputs
(for the secrets' expiry), a refresh preview (drift) and a preview (pending changes). One failing or hanging
tenant becomes an ``error`` row and never stops or hides the others.

Exit codes: 0 every tenant in sync; 1 drift, pending changes or a secret expiring within ``--expiry-days``;
2 usage error; 3 at least one tenant could not be checked (wins over 1).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from components import settings
from components.settings import program_clock
from popctl.cli import UsageError
from popctl.previews import (
    CliPreviewRunner,
    PreviewError,
    PreviewRunner,
    RecordedPreviewRunner,
    ResourceChange,
)

EXAMPLE_STACK = "example"
STACK_FILE = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9._-]+)\.yaml$")
STACK_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
EXIT_IN_SYNC = 0
EXIT_ATTENTION = 1
EXIT_UNCHECKED = 3

DEFAULT_WORKERS = 4
DEFAULT_EXPIRY_DAYS = 30
DEFAULT_TENANT_TIMEOUT = 900.0
_ERROR_LIMIT = 500


@dataclass(frozen=True)
class SecretExpiry:
    """One client secret listed in a stack's ``secrets`` output (never its value)."""

    key_id: str
    display_name: str
    managed: bool
    status: str
    expires_at: datetime
    expires_in_days: int
    expiring: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "displayName": self.display_name,
            "managed": self.managed,
            "status": self.status,
            "expiresAt": self.expires_at.isoformat().replace("+00:00", "Z"),
            "expiresInDays": self.expires_in_days,
            "expiring": self.expiring,
        }


@dataclass(frozen=True)
class TenantReport:
    """What the fleet report found for one stack; non-empty ``errors`` mean it was not fully checked."""

    stack: str
    tenant_id: str | None = None
    drift: tuple[ResourceChange, ...] = ()
    pending: tuple[ResourceChange, ...] = ()
    secrets: tuple[SecretExpiry, ...] = ()
    errors: tuple[str, ...] = ()
    duration_seconds: float = 0.0

    @property
    def expiring(self) -> bool:
        return any(secret.expiring for secret in self.secrets)

    @property
    def status(self) -> str:
        """``error``, ``drift``, ``pending``, ``expiring`` or ``in-sync``, the first that applies."""
        if self.errors:
            return "error"
        if self.drift:
            return "drift"
        if self.pending:
            return "pending"
        if self.expiring:
            return "expiring"
        return "in-sync"

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "status": self.status,
            "tenantId": self.tenant_id,
            "drift": [change.to_json() for change in self.drift],
            "pending": [change.to_json() for change in self.pending],
            "secrets": [secret.to_json() for secret in self.secrets],
            "expiring": self.expiring,
            "errors": list(self.errors),
            "durationSeconds": round(self.duration_seconds, 3),
        }


class FleetObserver(Protocol):
    """Told when a tenant check starts and ends (called from worker threads and the main thread)."""

    def started(self, stack: str) -> None: ...

    def finished(self, report: TenantReport) -> None: ...


class _SilentObserver:
    def started(self, stack: str) -> None:
        return None

    def finished(self, report: TenantReport) -> None:
        return None


def parse_rfc3339(value: str, what: str) -> datetime:
    """``value`` as an aware UTC datetime; ValueError naming ``what`` unless it is RFC 3339 with an offset."""
    try:
        return settings.parse_rfc3339(value)
    except ValueError as error:
        raise ValueError(
            f"{what} is not an RFC 3339 time with an offset, such as 2025-01-31T12:00:00Z (got {value!r})"
        ) from error


def discover_stacks(stacks_dir: Path) -> list[str]:
    """The stacks with a ``Pulumi.<stack>.yaml`` in ``stacks_dir``, sorted, without the example stack."""
    if not stacks_dir.is_dir():
        return []
    names = (STACK_FILE.match(entry.name) for entry in stacks_dir.iterdir() if entry.is_file())
    return sorted(match["stack"] for match in names if match and match["stack"] != EXAMPLE_STACK)


def secret_expiries(outputs: Mapping[str, Any], now: datetime, expiry_days: int) -> tuple[SecretExpiry, ...]:
    """The secrets in ``outputs["secrets"]`` with their expiry relative to ``now``.

    A secret is expiring when it expires within ``expiry_days`` days of ``now`` (or has expired), unless
    the program marked it ``retiring``: the oldest rotation slot is renewed by the schedule exactly when it
    expires, so its expiry is routine, not a warning. ``current``, ``previous`` and ``adopted`` secrets (the
    ones the ERP may be using) count.
    ``expires_in_days`` is rounded down. Raises ValueError naming the output if the list is missing or
    malformed; secret values are never read.
    """
    secrets = outputs.get("secrets")
    if not isinstance(secrets, list):
        raise ValueError("the stack has no 'secrets' output (not deployed yet?)")
    horizon = now + timedelta(days=expiry_days)
    result: list[SecretExpiry] = []
    for index, entry in enumerate(secrets):
        where = f"outputs.secrets[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("expiresAt"), str):
            raise ValueError(f"{where} has no expiresAt")
        expires_at = parse_rfc3339(entry["expiresAt"], f"{where}.expiresAt")
        status = str(entry.get("status") or ("adopted" if entry.get("managed") is False else "unknown"))
        result.append(
            SecretExpiry(
                key_id=str(entry.get("keyId", "")),
                display_name=str(entry.get("displayName") or ""),
                managed=entry.get("managed") is not False,
                status=status,
                expires_at=expires_at,
                expires_in_days=math.floor((expires_at - now).total_seconds() / 86400),
                expiring=expires_at <= horizon and status != "retiring",
            )
        )
    return tuple(sorted(result, key=lambda secret: secret.expires_at))


def check_tenant(
    stack: str,
    runner: PreviewRunner,
    now: datetime,
    expiry_days: int,
    clock: Callable[[], float] = time.monotonic,
) -> TenantReport:
    """Check one stack: outputs and secret expiry, drift, pending changes.

    Every part is attempted even if an earlier one failed, so an error row still shows what could be
    learnt. Only :class:`PreviewError` and malformed outputs are expected here; see :func:`run_fleet` for
    the boundary that catches everything else.
    """
    started = clock()
    errors: list[str] = []
    tenant_id: str | None = None
    secrets: tuple[SecretExpiry, ...] = ()
    drift: tuple[ResourceChange, ...] = ()
    pending: tuple[ResourceChange, ...] = ()
    try:
        outputs = runner.outputs(stack)
        raw_tenant = outputs.get("tenantId")
        tenant_id = raw_tenant if isinstance(raw_tenant, str) else None
        secrets = secret_expiries(outputs, now, expiry_days)
    except (PreviewError, ValueError) as error:
        errors.append(_limit(f"outputs: {error}"))
    try:
        drift = runner.refresh_preview(stack).changes
    except PreviewError as error:
        errors.append(_limit(f"refresh: {error}"))
    try:
        pending = runner.preview(stack).changes
    except PreviewError as error:
        errors.append(_limit(f"preview: {error}"))
    return TenantReport(stack, tenant_id, drift, pending, secrets, tuple(errors), clock() - started)


def _isolated_check(
    stack: str, runner: PreviewRunner, now: datetime, expiry_days: int, clock: Callable[[], float]
) -> TenantReport:
    started = clock()
    try:
        return check_tenant(stack, runner, now, expiry_days, clock)
    # Per-tenant isolation boundary: a runner bug (any exception type) must become this tenant's error row
    # instead of aborting the whole report and hiding the other tenants' results.
    except Exception as error:  # noqa: BLE001
        reason = _limit(f"unexpected {type(error).__name__}: {error}")
        return TenantReport(stack, errors=(reason,), duration_seconds=clock() - started)


def run_fleet(
    stacks: Sequence[str],
    runner: PreviewRunner,
    *,
    workers: int = DEFAULT_WORKERS,
    expiry_days: int = DEFAULT_EXPIRY_DAYS,
    tenant_timeout: float = DEFAULT_TENANT_TIMEOUT,
    now: datetime | None = None,
    clock: Callable[[], float] = time.monotonic,
    observer: FleetObserver | None = None,
) -> list[TenantReport]:
    """Check ``stacks`` with at most ``workers`` at a time; one report per stack, in the order given.

    A tenant still running ``tenant_timeout`` seconds after it started is reported as an error and no
    longer waited for (its thread cannot be killed: the CLI runner bounds each process with its own
    timeout so the thread ends soon after). ``now`` is fixed once for the whole fleet.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    moment = program_clock() if now is None else now
    watcher: FleetObserver = observer or _SilentObserver()
    started_at: dict[str, float] = {}
    lock = threading.Lock()
    reports: dict[str, TenantReport] = {}

    def task(stack: str) -> TenantReport:
        with lock:
            started_at[stack] = clock()
        watcher.started(stack)
        return _isolated_check(stack, runner, moment, expiry_days, clock)

    poll = max(0.005, min(0.25, tenant_timeout / 4))
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="popctl-fleet")
    try:
        futures: dict[Future[TenantReport], str] = {executor.submit(task, stack): stack for stack in stacks}
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, timeout=poll, return_when=FIRST_COMPLETED)
            for future in done:
                report = future.result()
                reports[report.stack] = report
                watcher.finished(report)
            instant = clock()
            for future in list(waiting):
                stack = futures[future]
                with lock:
                    began = started_at.get(stack)
                if began is not None and instant - began >= tenant_timeout:
                    waiting.discard(future)
                    report = TenantReport(
                        stack,
                        errors=(f"timed out after {tenant_timeout:g} s",),
                        duration_seconds=instant - began,
                    )
                    reports[stack] = report
                    watcher.finished(report)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return [reports[stack] for stack in stacks]


def exit_code(reports: Iterable[TenantReport]) -> int:
    """3 if any tenant could not be checked, else 1 if any needs attention, else 0."""
    statuses = {report.status for report in reports}
    if "error" in statuses:
        return EXIT_UNCHECKED
    if statuses - {"in-sync"}:
        return EXIT_ATTENTION
    return EXIT_IN_SYNC


def reports_to_json(reports: Sequence[TenantReport]) -> str:
    """A JSON array with one object per tenant (see :meth:`TenantReport.to_json`)."""
    return json.dumps([report.to_json() for report in reports], indent=2)


_STATUS_STYLE = {
    "in-sync": "green",
    "drift": "yellow",
    "pending": "cyan",
    "expiring": "magenta",
    "error": "bold red",
}


def render_table(reports: Sequence[TenantReport], console: Console, expiry_days: int) -> None:
    """Print one row per tenant and a summary line."""
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


def _limit(text: str) -> str:
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 3] + "..."


class _RichObserver:
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


def find_project_dir(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding ``Pulumi.yaml``, else ``start``."""
    for candidate in (start, *start.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return start


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from error
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fleet",
        help="report drift, pending changes and expiring secrets for every tenant stack",
        description=(
            "Check every stack in stacks/ (except 'example') in parallel. Exit codes: 0 all in sync; "
            "1 drift, pending changes or an expiring secret; 2 usage error; 3 a tenant could not be checked."
        ),
    )
    parser.add_argument(
        "--stack", action="append", default=[], metavar="NAME", help="check only this stack (repeatable)"
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=DEFAULT_WORKERS, help="tenants checked at once"
    )
    parser.add_argument(
        "--expiry-days",
        type=_positive_int,
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
    parser.set_defaults(func=run_command)


def run_command(
    args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """The ``popctl fleet`` command; ``stdout``/``stderr`` default to the process streams."""
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    for name in args.stack:
        if not STACK_NAME.match(name):
            raise UsageError(f"--stack {name!r} is not a stack name (letters, digits, '.', '_', '-')")
    try:
        now = program_clock()
    except ValueError as error:
        raise UsageError(str(error)) from error
    project_dir = args.project_dir or find_project_dir(Path.cwd())
    runner: PreviewRunner
    if args.recorded is not None:
        if not args.recorded.is_dir():
            raise UsageError(f"--recorded {args.recorded} is not a directory")
        recorded = RecordedPreviewRunner(args.recorded)
        runner = recorded
        available = [stack for stack in recorded.stacks() if stack != EXAMPLE_STACK]
        source = f"{args.recorded}"
    else:
        runner = CliPreviewRunner(project_dir, timeout=args.timeout)
        available = discover_stacks(project_dir / "stacks")
        source = f"{project_dir / 'stacks'}"
    stacks = list(dict.fromkeys(args.stack)) or available
    if not stacks:
        raise UsageError(f"no stacks to check in {source} (the 'example' stack is never checked)")
    if args.recorded is None:
        missing = [name for name in stacks if not (project_dir / "stacks" / f"Pulumi.{name}.yaml").is_file()]
        if missing:
            raise UsageError(f"--stack {', '.join(missing)}: no stacks/Pulumi.<stack>.yaml for it")

    error_console = Console(file=err)
    show_progress = not args.no_progress and error_console.is_terminal
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=error_console,
        transient=True,
        disable=not show_progress,
    )
    with progress:
        observer = _RichObserver(progress, len(stacks))
        reports = run_fleet(
            stacks,
            runner,
            workers=args.workers,
            expiry_days=args.expiry_days,
            tenant_timeout=args.timeout,
            now=now,
            observer=observer,
        )
    if args.json:
        out.write(reports_to_json(reports) + "\n")
    else:
        console = Console(file=out, width=None if Console(file=out).is_terminal else 160)
        render_table(reports, console, args.expiry_days)
    return exit_code(reports)
