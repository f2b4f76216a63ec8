"""The client-secret rotation schedule: pure code, with the clock passed in.

Three slots take turns. Rotation events fall every ``P`` days on a grid staggered per tenant (an
:class:`Anchor`); event ``i`` renews slot ``i % 3`` with a secret that is valid until event ``i + 3``,
three periods later. Each slot remembers only its own :class:`SlotState` - kept in the stack's state by
one ``SecretSlot`` resource per slot (``components.secret_slots``) - and :func:`advance` computes a slot's
next state from its last one, the settings and the clock, reading nothing else. So a preview shows a
rotation exactly when one slot is due, and no stack output has to be read back.

Guarantees (``tests/unit/test_rotation.py`` checks each over years of simulated runs):

* monotonic: a slot never goes back to an older generation; a clock behind the slot's last recorded run is
  treated as that run's time (nothing changes, and the program warns);
* a run inside a period changes nothing; a new secret is issued at most once per period;
* as long as ``pulumi up`` runs at least once per period, at every instant at least one secret is valid,
  and a superseded secret stays valid for at least one more period after its successor is issued (the
  operator's window to switch the ERP over); across a change of period, the shorter of the two;
* no secret lives longer than three periods (``3 * 243 = 729`` days, inside Entra's two years).

Changing the period keeps every generation already issued: the new period starts at the event the old
schedule planned next. Raising ``force_rotation`` re-issues every slot at once (a leak): same schedule,
new secrets, every old one revoked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from components.settings import (
    LIFETIME_PERIODS,
    MAX_SECRET_LIFETIME_DAYS,
    SECRET_SLOTS,
    parse_rfc3339,
    to_rfc3339,
)

GRID_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SECRET_STATUSES = ("current", "previous", "retiring")
NAME_PREFIX = "pop3-oauth slot"
# Today's names: "pop3-oauth slot 1 #41 from 2026-12-01 until 2028-05-29" (+ " reissue 2" when forced).
_NAME = re.compile(
    r"^pop3-oauth slot (?P<slot>\d) #(?P<generation>-?\d+) from (?P<event>\d{4}-\d{2}-\d{2}) "
    r"until (?P<expires>\d{4}-\d{2}-\d{2})(?: reissue (?P<force>\d+))?$"
)
# The first release's names: "pop3-oauth slot 1 from 2026-12-01" (no generation, no expiry).
_FIRST_RELEASE_NAME = re.compile(r"^pop3-oauth slot (?P<slot>\d) from (?P<event>\d{4}-\d{2}-\d{2})$")


class ScheduleError(ValueError):
    """The schedule cannot be continued safely; the message says why and what to do."""


def tenant_offset_days(tenant_id: str, period_days: int) -> int:
    """Where in the period this tenant's rotations fall, so tenants do not all rotate on one day."""
    digest = hashlib.sha256(tenant_id.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % period_days


def check_period(period_days: int, max_lifetime_days: int = MAX_SECRET_LIFETIME_DAYS) -> None:
    """Refuse a period whose secrets would live longer than ``max_lifetime_days`` (Entra's two years, or
    the tenant's policy: the ``maxSecretLifetimeDays`` setting); the schedule never shortens a lifetime."""
    cap = min(max_lifetime_days, MAX_SECRET_LIFETIME_DAYS)
    if not 1 <= period_days * LIFETIME_PERIODS <= cap:
        raise ValueError(f"period_days must be 1..{cap // LIFETIME_PERIODS}, got {period_days}")


@dataclass(frozen=True)
class Anchor:
    """Event ``index`` happens at ``at``; later (and earlier) events follow every ``period_days``."""

    at: datetime
    index: int
    period_days: int

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.period_days)

    def event(self, index: int) -> datetime:
        return self.at + (index - self.index) * self.period

    def index_at(self, moment: datetime) -> int:
        """The latest event at or before ``moment``."""
        return self.index + (moment - self.at) // self.period

    def desired_generation(self, slot: int, moment: datetime) -> int:
        """The event whose secret ``slot`` should hold at ``moment``: the latest one that renewed it."""
        current = self.index_at(moment)
        return current - (current - slot) % SECRET_SLOTS

    def continued(self, period_days: int, moment: datetime) -> Anchor:
        """This schedule with another period, from the event it planned next after ``moment``."""
        if period_days == self.period_days:
            return self
        following = self.index_at(moment) + 1
        return Anchor(at=self.event(following), index=following, period_days=period_days)

    @classmethod
    def grid(cls, tenant_id: str, period_days: int) -> Anchor:
        """The tenant's own grid: where a schedule without any history starts."""
        return cls(GRID_EPOCH + timedelta(days=tenant_offset_days(tenant_id, period_days)), 0, period_days)


@dataclass(frozen=True)
class SlotState:
    """What one slot holds and how its schedule goes on; everything a ``SecretSlot`` keeps in state.

    ``display_name`` and ``end_date`` are the ApplicationPassword's arguments: every change of them
    replaces the secret, so they are derived once, when the generation is issued, and then kept as they are.
    """

    slot: int
    anchor: Anchor
    generation: int
    event_at: datetime
    expires_at: datetime
    force_rotation: int
    recorded_at: datetime
    display_name: str

    @property
    def end_date(self) -> str:
        return to_rfc3339(self.expires_at)

    @property
    def next_rotation_at(self) -> datetime:
        """When this slot is renewed next (its secret expires then, or later after a shorter period)."""
        return self.anchor.event(self.generation + SECRET_SLOTS)

    def to_output(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "anchor_at": to_rfc3339(self.anchor.at),
            "anchor_generation": self.anchor.index,
            "period_days": self.anchor.period_days,
            "generation": self.generation,
            "event_at": to_rfc3339(self.event_at),
            "expires_at": to_rfc3339(self.expires_at),
            "force_rotation": self.force_rotation,
            "recorded_at": to_rfc3339(self.recorded_at),
            "display_name": self.display_name,
            "end_date": self.end_date,
            "next_rotation_at": to_rfc3339(self.next_rotation_at),
        }

    @classmethod
    def from_output(cls, value: Mapping[str, Any]) -> SlotState:
        """Read a state back (ValueError/KeyError/TypeError when it is not one)."""
        return cls(
            slot=int(value["slot"]),
            anchor=Anchor(
                at=parse_rfc3339(str(value["anchor_at"])),
                index=int(value["anchor_generation"]),
                period_days=int(value["period_days"]),
            ),
            generation=int(value["generation"]),
            event_at=parse_rfc3339(str(value["event_at"])),
            expires_at=parse_rfc3339(str(value["expires_at"])),
            force_rotation=int(value["force_rotation"]),
            recorded_at=parse_rfc3339(str(value["recorded_at"])),
            display_name=str(value["display_name"]),
        )


def display_name(slot: int, generation: int, event_at: datetime, expires_at: datetime, reissue: int) -> str:
    """Distinct per generation and re-issue; says when the secret was issued and until when it is valid."""
    name = f"{NAME_PREFIX} {slot} #{generation} from {event_at:%Y-%m-%d} until {expires_at:%Y-%m-%d}"
    return f"{name} reissue {reissue}" if reissue else name


def _issue(slot: int, anchor: Anchor, generation: int, force_rotation: int, now: datetime) -> SlotState:
    event_at = anchor.event(generation)
    expires_at = event_at + LIFETIME_PERIODS * anchor.period
    return SlotState(
        slot=slot,
        anchor=anchor,
        generation=generation,
        event_at=event_at,
        expires_at=expires_at,
        force_rotation=force_rotation,
        recorded_at=now,
        display_name=display_name(slot, generation, event_at, expires_at, force_rotation),
    )


def initial_state(
    slot: int,
    tenant_id: str,
    period_days: int,
    force_rotation: int,
    now: datetime,
    max_lifetime_days: int = MAX_SECRET_LIFETIME_DAYS,
) -> SlotState:
    """A slot without any history: the generation the tenant's grid gives it at ``now``."""
    check_period(period_days, max_lifetime_days)
    anchor = Anchor.grid(tenant_id, period_days)
    return _issue(slot, anchor, anchor.desired_generation(slot, now), force_rotation, now)


def advance(
    state: SlotState,
    period_days: int,
    force_rotation: int,
    now: datetime,
    max_lifetime_days: int = MAX_SECRET_LIFETIME_DAYS,
) -> SlotState:
    """The slot's state after a run at ``now`` with these settings (``state`` itself when nothing changes).

    A clock behind the slot's last recorded run is treated as that run's time, so nothing goes back.
    ``force_rotation`` below the recorded value is refused (the caller names the setting); a period whose
    secrets would outlive ``max_lifetime_days`` is refused (ValueError).
    """
    check_period(period_days, max_lifetime_days)
    if force_rotation < state.force_rotation:
        raise ScheduleError(f"force_rotation may only be raised ({state.force_rotation} -> {force_rotation})")
    moment = max(now, state.recorded_at)
    # Catch up on the schedule in force until now, then continue it with the (possibly new) period: the
    # events before the change keep the dates they had.
    wanted = state.anchor.desired_generation(state.slot, moment)
    if wanted > state.generation:
        state = _issue(state.slot, state.anchor, wanted, force_rotation, moment)
    elif force_rotation > state.force_rotation:
        # A leak: a new secret for the same place in the schedule (same expiry), under a new name.
        name = display_name(state.slot, state.generation, state.event_at, state.expires_at, force_rotation)
        state = replace(state, force_rotation=force_rotation, recorded_at=moment, display_name=name)
    anchor = state.anchor.continued(period_days, moment)
    if anchor != state.anchor:
        state = replace(state, anchor=anchor, recorded_at=moment)
    return state


def changed(before: SlotState, after: SlotState) -> bool:
    """Whether a run must record ``after``: another generation, a re-issue, or a new period."""
    return (before.generation, before.force_rotation, before.anchor, before.display_name) != (
        after.generation,
        after.force_rotation,
        after.anchor,
        after.display_name,
    )


@dataclass(frozen=True)
class IssuedSecret:
    """One of our secrets as Entra lists it: the display name and end date the stack gave it."""

    display_name: str
    end_date: datetime


@dataclass(frozen=True)
class _Known:
    slot: int
    generation: int | None
    event_at: datetime
    expires_at: datetime
    force_rotation: int | None  # None: the first release did not name it
    display_name: str


def _parse(secret: IssuedSecret) -> _Known | None:
    match = _NAME.match(secret.display_name)
    if match:
        return _Known(
            slot=int(match["slot"]),
            generation=int(match["generation"]),
            event_at=datetime.fromisoformat(match["event"]).replace(tzinfo=UTC),
            expires_at=secret.end_date,
            force_rotation=int(match["force"] or 0),
            display_name=secret.display_name,
        )
    match = _FIRST_RELEASE_NAME.match(secret.display_name)
    if match:
        return _Known(
            slot=int(match["slot"]),
            generation=None,
            event_at=datetime.fromisoformat(match["event"]).replace(tzinfo=UTC),
            expires_at=secret.end_date,
            force_rotation=None,
            display_name=secret.display_name,
        )
    return None


def recover_state(
    slot: int,
    secrets: Iterable[IssuedSecret],
    tenant_id: str,
    force_rotation: int,
    now: datetime,
) -> SlotState | None:
    """Rebuild a slot's state from the secrets the app already has, or None when it has none of ours.

    For a stack whose schedule record is missing - deployed by the first release, which kept the schedule
    in a stack output, or whose record was lost - while its passwords exist. The slot takes over the secret
    it holds unchanged (same display name and end date, so nothing is replaced), on the schedule the
    secrets themselves show. A slot without a secret of its own gets the generation it is due. Raises
    :class:`ScheduleError` when the secrets do not form one schedule.
    """
    known = [parsed for secret in secrets if (parsed := _parse(secret)) is not None]
    if not known:
        return None
    newest = max(known, key=lambda k: (k.event_at, k.force_rotation or 0))
    lifetime = newest.expires_at - newest.event_at
    period_days, remainder = divmod(round(lifetime.total_seconds()), 86400 * LIFETIME_PERIODS)
    if remainder or period_days < 1 or period_days * LIFETIME_PERIODS > MAX_SECRET_LIFETIME_DAYS:
        raise ScheduleError(
            f"secret {newest.display_name!r} is not valid for three whole periods (lifetime {lifetime}); "
            "the schedule cannot be taken over from it"
        )
    anchor = Anchor(newest.event_at, _generation_of(newest, tenant_id, period_days), period_days)
    own = [k for k in known if k.slot == slot]
    if not own:
        return _issue(slot, anchor, anchor.desired_generation(slot, now), force_rotation, now)
    held = max(own, key=lambda k: k.event_at)
    steps, off_grid = divmod(held.event_at - anchor.at, anchor.period)
    generation = anchor.index + steps
    if off_grid or generation % SECRET_SLOTS != slot % SECRET_SLOTS:
        raise ScheduleError(
            f"secret {held.display_name!r} does not fall on the schedule of {newest.display_name!r}"
        )
    return SlotState(
        slot=slot,
        anchor=anchor,
        generation=generation,
        event_at=held.event_at,
        expires_at=held.expires_at,
        force_rotation=force_rotation if held.force_rotation is None else held.force_rotation,
        recorded_at=now,
        display_name=held.display_name,
    )


def _generation_of(known: _Known, tenant_id: str, period_days: int) -> int:
    """The event index of a taken-over secret: from its name, else from the tenant's grid, else the first
    index after the epoch that matches its slot (any index of the right slot continues the schedule)."""
    if known.generation is not None:
        return known.generation
    grid = Anchor.grid(tenant_id, period_days)
    steps, off_grid = divmod(known.event_at - grid.at, grid.period)
    if not off_grid and steps % SECRET_SLOTS == known.slot:
        return steps
    base = (known.event_at - GRID_EPOCH) // timedelta(days=period_days)
    return base + (known.slot - base) % SECRET_SLOTS


@dataclass(frozen=True)
class Schedule:
    """The three slots together: which secret is current, and when the next rotation is due."""

    slots: tuple[SlotState, ...]

    @property
    def newest(self) -> SlotState:
        return max(self.slots, key=lambda state: (state.generation, state.force_rotation))

    @property
    def next_rotation_at(self) -> datetime:
        newest = self.newest
        return newest.anchor.event(newest.generation + 1)

    def status(self, slot: int) -> str:
        """``current`` (give it to the ERP), ``previous`` (still valid while the ERP switches over) or
        ``retiring`` (renewed by the next rotation, when it expires anyway)."""
        held = next(state for state in self.slots if state.slot == slot)
        newer = sum(1 for state in self.slots if state.generation > held.generation)
        return SECRET_STATUSES[min(newer, len(SECRET_STATUSES) - 1)]

    def to_output(self) -> dict[str, Any]:
        """The ``secretSchedule`` output: the schedule's bookkeeping, no secret in it."""
        newest = self.newest
        return {
            "periodDays": newest.anchor.period_days,
            "anchorAt": to_rfc3339(newest.anchor.at),
            "anchorGeneration": newest.anchor.index,
            "forceRotation": newest.force_rotation,
            "slots": [
                {
                    "slot": state.slot,
                    "generation": state.generation,
                    "issuedAt": to_rfc3339(state.event_at),
                    "expiresAt": to_rfc3339(state.expires_at),
                    "forceRotation": state.force_rotation,
                }
                for state in sorted(self.slots, key=lambda state: state.slot)
            ],
        }


def schedule_of(states: Sequence[Mapping[str, Any]]) -> Schedule:
    """The schedule from the ``SecretSlot`` outputs."""
    return Schedule(tuple(SlotState.from_output(state) for state in states))
