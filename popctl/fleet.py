"""The fleet report: every tenant stack checked for drift, pending changes and expiring secrets.

With a :data:`~popctl.signins.SignInReader`, each secret also carries its last sign-in, and a pending
rotation that would revoke a secret used within ``in_use_days`` is flagged (``revokesInUse``): the operator
switches the ERP over first. A tenant whose activity cannot be read keeps its report and says why
(``signInActivity``), never becoming an error row.

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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from components.outputs import SecretRecord
from components.settings import program_clock, to_rfc3339
from popctl.errors import Exit
from popctl.previews import PreviewError, PreviewRunner, ResourceChange
from popctl.signins import SignInReader, SignInsUnavailable
from popctl.values import EXAMPLE_STACK, STACK_NAME, rfc3339

STACK_FILE = re.compile(rf"^Pulumi\.(?P<stack>{STACK_NAME})\.yaml$")
# The resources whose change renews (revokes and re-issues) a slot's secret: its password and its record.
SLOT_RESOURCE = re.compile(r"^pop3-secret-(?:slot-)?(?P<slot>\d+)$")
REVOKING_OPS = frozenset({"replace", "create-replacement", "delete-replaced", "delete", "update"})

DEFAULT_WORKERS = 4
DEFAULT_EXPIRY_DAYS = 30
DEFAULT_IN_USE_DAYS = 7
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
    slot: int | None = None
    last_sign_in_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "displayName": self.display_name,
            "managed": self.managed,
            "status": self.status,
            "expiresAt": to_rfc3339(self.expires_at),
            "expiresInDays": self.expires_in_days,
            "expiring": self.expiring,
            "lastSignInAt": to_rfc3339(self.last_sign_in_at) if self.last_sign_in_at else None,
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
    next_rotation_at: datetime | None = None
    sign_ins_note: str | None = None
    revokes_in_use: tuple[SecretExpiry, ...] = ()
    checked_at: datetime | None = None

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
            "nextSecretRotationAt": to_rfc3339(self.next_rotation_at) if self.next_rotation_at else None,
            "signInActivity": self.sign_ins_note or "read",
            "revokesInUse": [secret.key_id for secret in self.revokes_in_use],
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
                slot=record.slot,
            )
        )
    return tuple(sorted(result, key=lambda secret: secret.expires_at))


def with_sign_ins(
    secrets: Sequence[SecretExpiry], sign_ins: Mapping[str, datetime | None]
) -> tuple[SecretExpiry, ...]:
    """``secrets`` with their last sign-in (key ids compare case-insensitively)."""
    return tuple(replace(secret, last_sign_in_at=sign_ins.get(secret.key_id.lower())) for secret in secrets)


def revoked_in_use(
    secrets: Sequence[SecretExpiry], pending: Sequence[ResourceChange], now: datetime, in_use_days: int
) -> tuple[SecretExpiry, ...]:
    """The secrets a pending change would revoke (its slot's password or record is replaced or changed)
    that signed in within ``in_use_days`` of ``now``."""
    slots = {
        int(match["slot"])
        for change in pending
        if change.op in REVOKING_OPS and (match := SLOT_RESOURCE.match(change.name))
    }
    since = now - timedelta(days=in_use_days)
    return tuple(
        secret
        for secret in secrets
        if secret.slot in slots and secret.last_sign_in_at is not None and secret.last_sign_in_at >= since
    )


def check_tenant(
    stack: str,
    runner: PreviewRunner,
    now: datetime,
    expiry_days: int,
    clock: Callable[[], float] = time.monotonic,
    sign_ins: SignInReader | None = None,
    in_use_days: int = DEFAULT_IN_USE_DAYS,
) -> TenantReport:
    """Check one stack: outputs and secret expiry, sign-in activity, drift, pending changes.

    Every part is attempted even if an earlier one failed, so an error row still shows what could be
    learnt. Only :class:`PreviewError`, :class:`SignInsUnavailable` and malformed outputs are expected
    here; see :func:`run_fleet` for the boundary that catches everything else.
    """
    started = clock()
    errors: list[str] = []
    tenant_id: str | None = None
    next_rotation_at: datetime | None = None
    note: str | None = "not asked" if sign_ins is None else "not read"
    secrets: tuple[SecretExpiry, ...] = ()
    drift: tuple[ResourceChange, ...] = ()
    pending: tuple[ResourceChange, ...] = ()
    try:
        outputs = runner.outputs(stack)
        raw_tenant = outputs.get("tenantId")
        tenant_id = raw_tenant if isinstance(raw_tenant, str) else None
        raw_next = outputs.get("nextSecretRotationAt")
        if isinstance(raw_next, str):
            next_rotation_at = rfc3339(raw_next, "outputs.nextSecretRotationAt")
        secrets = secret_expiries(outputs, now, expiry_days)
        activity = sign_ins(stack, outputs) if sign_ins is not None else None
        if activity is not None:
            secrets, note = with_sign_ins(secrets, activity), None
        elif sign_ins is not None:
            note = "not recorded"
    except SignInsUnavailable as unavailable:
        note = _limit(str(unavailable))
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
    return TenantReport(
        stack,
        tenant_id,
        drift,
        pending,
        secrets,
        tuple(errors),
        clock() - started,
        next_rotation_at=next_rotation_at,
        sign_ins_note=note,
        revokes_in_use=revoked_in_use(secrets, pending, now, in_use_days),
        checked_at=now,
    )


def _isolated_check(
    stack: str,
    runner: PreviewRunner,
    now: datetime,
    expiry_days: int,
    clock: Callable[[], float],
    sign_ins: SignInReader | None,
    in_use_days: int,
) -> TenantReport:
    started = clock()
    try:
        return check_tenant(stack, runner, now, expiry_days, clock, sign_ins, in_use_days)
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
    sign_ins: SignInReader | None = None,
    in_use_days: int = DEFAULT_IN_USE_DAYS,
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
        return _isolated_check(stack, runner, moment, expiry_days, clock, sign_ins, in_use_days)

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
