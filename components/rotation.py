"""The client-secret rotation schedule: pure code, with the clock passed in.

Three slots take turns. Rotation events fall every ``P`` days on a grid staggered per tenant; event
``i`` renews slot ``i % 3`` with a secret that expires three periods after the event. So, as long as
``pulumi up`` runs at least once per period:

* a run inside a period computes the same generations as the previous run: nothing is replaced;
* a new secret is issued at most once per period, and the secret it supersedes stays in place and
  valid for at least one more period, which is the operator's window to switch the ERP over;
* at every moment at least one issued secret is valid, and none lives longer than three periods
  (``3 * 243 = 729`` days at most, inside Entra's two years).

Changing the period keeps the existing generations: the change takes effect at the event the old
schedule had planned next (or at once, for one slot only, when that event has already passed), so
it never replaces more than the oldest secret. Raising ``force_rotation`` renews every slot at once,
which revokes all current secrets (a leak).

Between updates the schedule is remembered in a non-secret stack output (``ScheduleRecord``); without
one, the schedule is the tenant's grid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from components.settings import MAX_SECRET_LIFETIME_DAYS, SECRET_SLOTS, parse_rfc3339

GRID_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SECRET_STATUSES = ("current", "previous", "retiring")
LIFETIME_PERIODS = 3


def to_rfc3339(moment: datetime) -> str:
    """``2026-11-28T00:00:00Z``: the form Entra and the stack outputs use."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tenant_offset_days(tenant_id: str, period_days: int) -> int:
    """Where in the period this tenant's rotations fall, so tenants do not all rotate on one day."""
    digest = hashlib.sha256(tenant_id.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % period_days


@dataclass(frozen=True)
class Anchor:
    """Event ``index`` happens at ``at``; later events follow every ``period_days``."""

    at: datetime
    index: int
    period_days: int

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.period_days)

    def event(self, index: int) -> datetime:
        return self.at + (index - self.index) * self.period

    def index_at(self, moment: datetime) -> int:
        """The latest event at or before ``moment``; before the anchor, the event that precedes it."""
        if moment < self.at:
            return self.index - 1
        return self.index + (moment - self.at) // self.period


@dataclass(frozen=True)
class Generation:
    """One secret a slot holds: the resource arguments are derived from this and nothing else."""

    slot: int
    index: int
    issued_at: datetime
    expires_at: datetime
    force_rotation: int

    @property
    def display_name(self) -> str:
        return f"pop3-oauth slot {self.slot} from {self.issued_at:%Y-%m-%d}"

    @property
    def keepers(self) -> dict[str, str]:
        """The values whose change makes Entra issue a new secret for this slot."""
        return {
            "slot": str(self.slot),
            "generation": str(self.index),
            "issuedAt": to_rfc3339(self.issued_at),
            "forceRotation": str(self.force_rotation),
        }

    def to_output(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "generation": self.index,
            "issuedAt": to_rfc3339(self.issued_at),
            "expiresAt": to_rfc3339(self.expires_at),
            "forceRotation": self.force_rotation,
        }

    @classmethod
    def from_output(cls, value: Mapping[str, Any]) -> Generation:
        return cls(
            slot=int(value["slot"]),
            index=int(value["generation"]),
            issued_at=parse_rfc3339(str(value["issuedAt"])),
            expires_at=parse_rfc3339(str(value["expiresAt"])),
            force_rotation=int(value["forceRotation"]),
        )


@dataclass(frozen=True)
class SecretSchedule:
    """The generations the slots hold now, and how the schedule continues."""

    anchor: Anchor
    force_rotation: int
    generations: tuple[Generation, ...]

    @property
    def newest(self) -> Generation:
        return max(self.generations, key=lambda generation: generation.index)

    @property
    def next_rotation_at(self) -> datetime:
        return self.anchor.event(self.newest.index + 1)

    def status(self, slot: int) -> str:
        """``current`` (give it to the ERP), ``previous`` (still valid while the ERP switches over) or
        ``retiring`` (renewed by the next rotation, when it expires anyway)."""
        age = self.newest.index - self.generations[slot].index
        return SECRET_STATUSES[min(age, len(SECRET_STATUSES) - 1)]

    def to_output(self) -> dict[str, Any]:
        """The record kept in the ``secretSchedule`` stack output (no secret in it)."""
        return {
            "periodDays": self.anchor.period_days,
            "anchorAt": to_rfc3339(self.anchor.at),
            "anchorGeneration": self.anchor.index,
            "forceRotation": self.force_rotation,
            "slots": [generation.to_output() for generation in self.generations],
        }

    @classmethod
    def from_output(cls, value: Any) -> SecretSchedule | None:
        """Read back a record; None when there is none or it cannot be trusted (then the grid applies)."""
        if not isinstance(value, Mapping):
            return None
        try:
            anchor = Anchor(
                at=parse_rfc3339(str(value["anchorAt"])),
                index=int(value["anchorGeneration"]),
                period_days=int(value["periodDays"]),
            )
            generations = tuple(Generation.from_output(item) for item in value["slots"])
            force_rotation = int(value["forceRotation"])
        except (KeyError, TypeError, ValueError):
            return None
        if anchor.period_days <= 0 or sorted(g.slot for g in generations) != list(range(SECRET_SLOTS)):
            return None
        return cls(anchor=anchor, force_rotation=force_rotation, generations=generations)


def plan_secrets(
    now: datetime,
    tenant_id: str,
    period_days: int,
    force_rotation: int = 0,
    previous: SecretSchedule | None = None,
) -> SecretSchedule:
    """The generations each slot must hold at ``now``.

    ``previous`` is the schedule the last successful update recorded; a generation it holds is kept
    unchanged (same arguments, so Pulumi replaces nothing) as long as the slot is not due.
    """
    if not 1 <= period_days * LIFETIME_PERIODS <= MAX_SECRET_LIFETIME_DAYS:
        raise ValueError(
            f"period_days must be 1..{MAX_SECRET_LIFETIME_DAYS // LIFETIME_PERIODS}, got {period_days}"
        )
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    anchor = _anchor(now, tenant_id, period_days, previous)
    current = anchor.index_at(now)
    kept = {g.slot: g for g in previous.generations} if previous else {}
    generations = []
    for slot in range(SECRET_SLOTS):
        index = current - (current - slot) % SECRET_SLOTS
        held = kept.get(slot)
        if held is not None and held.index == index and held.force_rotation == force_rotation:
            generations.append(held)
            continue
        issued_at = anchor.event(index)
        generations.append(
            Generation(
                slot=slot,
                index=index,
                issued_at=issued_at,
                expires_at=issued_at + LIFETIME_PERIODS * anchor.period,
                force_rotation=force_rotation,
            )
        )
    return SecretSchedule(anchor=anchor, force_rotation=force_rotation, generations=tuple(generations))


def _anchor(now: datetime, tenant_id: str, period_days: int, previous: SecretSchedule | None) -> Anchor:
    if previous is None:
        return Anchor(
            at=GRID_EPOCH + timedelta(days=tenant_offset_days(tenant_id, period_days)),
            index=0,
            period_days=period_days,
        )
    if previous.anchor.period_days == period_days:
        return previous.anchor
    # The period changed: continue from the event the old schedule planned next, so the generations
    # already issued stay; if that event has passed, renew only the oldest slot, today.
    newest = previous.newest.index
    planned = previous.anchor.event(newest + 1)
    if planned > now:
        return Anchor(at=planned, index=newest + 1, period_days=period_days)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Anchor(at=today, index=newest + 1, period_days=period_days)
