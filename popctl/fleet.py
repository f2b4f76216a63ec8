"""The fleet report: every tenant stack checked for drift, pending changes and expiring secrets.

Each tenant is checked on a worker thread through a :class:`~popctl.previews.PreviewRunner`: its outputs
(for the secrets' expiry), a refresh preview (drift) and a preview (pending changes). One failing or hanging
tenant becomes an ``error`` row and never stops or hides the others. :func:`exit_status` turns the rows
into one of popctl's exit codes (:data:`popctl.errors.EXIT_CODES`).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from components.outputs import SecretRecord
from components.settings import program_clock, to_rfc3339
from popctl.errors import Exit
from popctl.previews import PreviewError, PreviewRunner, ResourceChange
from popctl.values import EXAMPLE_STACK, STACK_NAME, rfc3339

STACK_FILE = re.compile(rf"^Pulumi\.(?P<stack>{STACK_NAME})\.yaml$")

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
            "expiresAt": to_rfc3339(self.expires_at),
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
        record = SecretRecord.from_output(entry) if isinstance(entry, dict) else None
        if record is None or record.expires_at is None:
            raise ValueError(f"{where} has no expiresAt")
        expires_at = rfc3339(record.expires_at, f"{where}.expiresAt")
        status = record.status
        result.append(
            SecretExpiry(
                key_id=record.key_id,
                display_name=record.display_name or "",
                managed=record.managed,
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


def exit_status(reports: Iterable[TenantReport]) -> Exit:
    """UNCHECKED if any tenant could not be checked, else FAILED if any needs attention, else OK."""
    statuses = {report.status for report in reports}
    if "error" in statuses:
        return Exit.UNCHECKED
    if statuses - {"in-sync"}:
        return Exit.FAILED
    return Exit.OK


def reports_to_json(reports: Sequence[TenantReport]) -> str:
    """A JSON array with one object per tenant (see :meth:`TenantReport.to_json`)."""
    return json.dumps([report.to_json() for report in reports], indent=2)


def _limit(text: str) -> str:
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 3] + "..."
