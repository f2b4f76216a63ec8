"""The rotation schedule, simulated over years of irregular ``pulumi up`` runs with skewed clocks.

``Tenant`` below plays the engine and Entra: each slot's record advances exactly as ``SecretSlot`` does
(a record that did not change keeps its old state, as the engine keeps an unchanged resource's outputs),
and a slot's secret is replaced exactly when its arguments (display name, end date) change - old one
deleted first, new one created at the run's true time. Runs carry a true time and the clock the program
reads (true time plus skew); every guarantee is checked in true time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.rotation import (
    Anchor,
    IssuedSecret,
    Schedule,
    ScheduleError,
    SlotState,
    advance,
    changed,
    initial_state,
    recover_state,
    tenant_offset_days,
)
from components.settings import (
    MAX_ROTATION_DAYS,
    MAX_SECRET_LIFETIME_DAYS,
    MIN_ROTATION_DAYS,
    SECRET_SLOTS,
    to_rfc3339,
)

TENANT = "0a1b2c3d-1111-2222-3333-444455556666"
START = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
MAX_SKEW = timedelta(hours=12)
_serial = count()

periods = st.integers(min_value=MIN_ROTATION_DAYS, max_value=MAX_ROTATION_DAYS)
skews = st.floats(min_value=-1.0, max_value=1.0).map(lambda f: f * MAX_SKEW)


@dataclass
class Secret:
    serial: int
    slot: int
    generation: int
    arguments: tuple[str, str]
    created: datetime
    expires: datetime
    deleted: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        gone = self.expires if self.deleted is None else min(self.expires, self.deleted)
        return self.created <= moment < gone


@dataclass
class Run:
    at: datetime  # true time
    clock: datetime  # what the program and the providers read
    period_days: int
    created: list[Secret]
    deleted: list[Secret]
    newest_before: Secret | None


@dataclass
class Tenant:
    tenant_id: str = TENANT
    states: dict[int, SlotState] = field(default_factory=dict)
    held: dict[int, Secret] = field(default_factory=dict)
    ever: list[Secret] = field(default_factory=list)

    def up(self, at: datetime, period_days: int, force: int = 0, skew: timedelta = timedelta()) -> Run:
        clock = at + skew
        newest_before = self.newest() if self.held else None
        created, deleted = [], []
        for slot in range(SECRET_SLOTS):
            old = self.states.get(slot)
            if old is None:
                new = advance(
                    initial_state(slot, self.tenant_id, period_days, force, clock), period_days, force, clock
                )
            else:
                new = advance(old, period_days, force, clock)
                if not changed(old, new):
                    new = old
            self.states[slot] = new
            arguments = (new.display_name, new.end_date)
            held = self.held.get(slot)
            if held is not None and held.arguments == arguments:
                continue
            if held is not None:
                held.deleted = at
                deleted.append(held)
            secret = Secret(next(_serial), slot, new.generation, arguments, at, new.expires_at)
            created.append(secret)
            self.ever.append(secret)
            self.held[slot] = secret
        return Run(at, clock, period_days, created, deleted, newest_before)

    def newest(self) -> Secret:
        return max(self.held.values(), key=lambda secret: (secret.generation, secret.serial))

    def schedule(self) -> Schedule:
        return Schedule(tuple(self.states[slot] for slot in range(SECRET_SLOTS)))

    def any_valid(self, moment: datetime) -> bool:
        return any(secret.valid_at(moment) for secret in self.ever)


def assert_guarantees(tenant: Tenant, runs: list[Run], shortest_period_days: int) -> None:
    """Every guarantee, for runs whose clocks are at most one (shortest) period apart."""
    window = timedelta(days=shortest_period_days) - MAX_SKEW
    generations: dict[int, int] = {}
    for index, run in enumerate(runs):
        for secret in run.created:
            # Valid when issued by the run's own clock (a clock far behind may issue the retiring slot's
            # secret already expired in true time; the other two cover it), never longer than Entra allows.
            assert secret.expires > run.clock
            assert secret.expires - secret.created <= timedelta(days=MAX_SECRET_LIFETIME_DAYS)
            # Monotonic: a slot's generation never goes back, and what is deleted is older than its successor.
            assert secret.generation >= generations.get(secret.slot, secret.generation)
            generations[secret.slot] = secret.generation
        for secret in run.deleted:
            successor = tenant.held.get(secret.slot)
            assert successor is None or successor.generation >= secret.generation
        if index == 0:
            continue
        assert tenant.any_valid(run.at - timedelta(microseconds=1)), f"no valid secret just before {run.at}"
        assert tenant.any_valid(run.at), f"no valid secret at {run.at}"
        newest_before = run.newest_before
        assert newest_before is not None
        new_current = [s for s in run.created if s.generation > newest_before.generation]
        if new_current and not any(s.serial == newest_before.serial for s in run.deleted):
            # The superseded secret stays valid for the switch-over window after its successor appears.
            gone = newest_before.expires if newest_before.deleted is None else newest_before.deleted
            assert gone - run.at >= window, f"switch-over window {gone - run.at} < {window}"
        assert len({s.generation for s in run.created}) <= 1, "more than one generation issued by one run"


def clocks_apart(start: datetime, gaps: list[float], period_days: int) -> list[datetime]:
    """True times whose skewed clocks stay at most one period apart."""
    step = timedelta(days=period_days) - 2 * MAX_SKEW
    times = [start]
    for gap in gaps:
        times.append(times[-1] + gap * step)
    return times


def test_first_deployment_fills_three_slots_on_the_tenants_grid() -> None:
    tenant = Tenant()
    run = tenant.up(START, 180)
    schedule = tenant.schedule()
    assert len(run.created) == 3 and not run.deleted
    assert sorted(s.generation for s in tenant.states.values()) == [
        schedule.newest.generation - i for i in (2, 1, 0)
    ]
    newest = schedule.newest
    assert newest.event_at <= START < schedule.next_rotation_at
    assert schedule.next_rotation_at - newest.event_at == timedelta(days=180)
    assert newest.expires_at == newest.event_at + timedelta(days=540)
    assert [schedule.status(s.slot) for s in sorted(tenant.states.values(), key=lambda s: -s.generation)] == [
        "current",
        "previous",
        "retiring",
    ]
    names = [secret.arguments[0] for secret in run.created]
    assert len(set(names)) == 3
    for secret in run.created:
        assert f"from {tenant.states[secret.slot].event_at:%Y-%m-%d}" in secret.arguments[0]
        assert f"until {secret.expires:%Y-%m-%d}" in secret.arguments[0]


def test_a_second_run_in_the_same_period_replaces_nothing() -> None:
    tenant = Tenant()
    tenant.up(START, 90)
    again = tenant.up(tenant.schedule().next_rotation_at - timedelta(seconds=1), 90)
    assert again.created == [] and again.deleted == []


def test_the_run_after_the_rotation_date_renews_the_oldest_slot_only() -> None:
    tenant = Tenant()
    tenant.up(START, 90)
    newest_before = tenant.newest()
    oldest = min(tenant.held.values(), key=lambda s: s.generation)
    run = tenant.up(tenant.schedule().next_rotation_at + timedelta(hours=1), 90)
    assert len(run.created) == 1 and [s.serial for s in run.deleted] == [oldest.serial]
    assert newest_before.valid_at(run.at + timedelta(days=89))
    assert tenant.newest() is run.created[0]


@pytest.mark.parametrize("period_days", [MIN_ROTATION_DAYS, 30, 90, 180, MAX_ROTATION_DAYS])
def test_daily_runs_for_three_years_keep_every_guarantee(period_days: int) -> None:
    tenant = Tenant()
    runs = [tenant.up(START + timedelta(days=day, hours=day % 24), period_days) for day in range(3 * 365)]
    assert_guarantees(tenant, runs, period_days)
    issued = sum(1 for run in runs[1:] if run.created)
    assert abs(issued - (3 * 365) / period_days) <= 2


@settings(max_examples=150, deadline=None)
@given(
    period_days=periods,
    gaps=st.lists(st.floats(min_value=0.001, max_value=1.0), min_size=3, max_size=40),
    skew=st.lists(skews, min_size=41, max_size=41),
    start_offset_hours=st.integers(min_value=0, max_value=24 * 730),
    tenant_id=st.uuids().map(str),
)
def test_irregular_runs_with_skewed_clocks_keep_every_guarantee(
    period_days: int, gaps: list[float], skew: list[timedelta], start_offset_hours: int, tenant_id: str
) -> None:
    tenant = Tenant(tenant_id=tenant_id)
    times = clocks_apart(START + timedelta(hours=start_offset_hours), gaps, period_days)
    runs = [tenant.up(at, period_days, skew=skew[i]) for i, at in enumerate(times)]
    assert_guarantees(tenant, runs, period_days)


@settings(max_examples=150, deadline=None)
@given(
    old_days=periods,
    new_days=periods,
    history=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=8),
    later=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=16),
    skew=st.lists(skews, min_size=26, max_size=26),
)
def test_changing_the_period_in_either_direction_keeps_every_guarantee(
    old_days: int, new_days: int, history: list[float], later: list[float], skew: list[timedelta]
) -> None:
    tenant = Tenant()
    shortest = min(old_days, new_days)
    times = clocks_apart(START, history, old_days)
    runs = [tenant.up(at, old_days, skew=skew[i]) for i, at in enumerate(times)]
    newest_before = tenant.newest()
    planned = tenant.schedule().next_rotation_at
    after = clocks_apart(times[-1], later, shortest)[1:]
    change = tenant.up(after[0], new_days, skew=skew[len(runs)])
    if change.clock < planned:
        assert change.created == [], "a change of the period rotated before the planned date"
    assert len(change.created) <= 1, "a change of the period renewed more than one slot"
    assert newest_before.serial in {s.serial for s in tenant.held.values()} or change.created
    runs.append(change)
    runs += [tenant.up(at, new_days, skew=skew[len(runs) + i]) for i, at in enumerate(after[1:])]
    assert_guarantees(tenant, runs, shortest)


def test_a_clock_behind_the_last_recorded_run_changes_nothing() -> None:
    tenant = Tenant()
    tenant.up(START, 30)
    due = tenant.schedule().next_rotation_at + timedelta(hours=1)
    tenant.up(due, 30)
    held = dict(tenant.held)
    behind = tenant.up(due + timedelta(hours=1), 30, skew=-timedelta(days=45))
    assert behind.created == [] and behind.deleted == []
    assert tenant.held == held
    recorded = max(state.recorded_at for state in tenant.states.values())
    assert recorded == due


def test_force_rotation_reissues_every_slot_once_with_new_names_and_the_same_schedule() -> None:
    tenant = Tenant()
    tenant.up(START, 180)
    before = {s.serial: s for s in tenant.held.values()}
    forced = tenant.up(START + timedelta(days=3), 180, force=1)
    assert {s.serial for s in forced.deleted} == set(before)
    assert len(forced.created) == 3
    old_names = {s.arguments[0] for s in before.values()}
    assert not old_names & {s.arguments[0] for s in forced.created}
    assert sorted(s.expires for s in forced.created) == sorted(s.expires for s in before.values())
    assert all(s.arguments[0].endswith("reissue 1") for s in forced.created)
    again = tenant.up(START + timedelta(days=4), 180, force=1)
    assert again.created == [] and again.deleted == []


def test_lowering_force_rotation_is_refused() -> None:
    state = initial_state(0, TENANT, 180, 2, START)
    with pytest.raises(ScheduleError, match="only be raised"):
        advance(state, 180, 1, START)


def test_rotation_dates_are_staggered_across_tenants() -> None:
    tenants = [f"{i:08x}-1111-2222-3333-444455556666" for i in range(200)]
    offsets = {tenant_offset_days(t, 180) for t in tenants}
    assert len(offsets) > 100
    assert all(0 <= offset < 180 for offset in offsets)
    dates = set()
    for tenant_id in tenants:
        tenant = Tenant(tenant_id=tenant_id)
        tenant.up(START, 180)
        dates.add(tenant.schedule().next_rotation_at.date())
    assert len(dates) > 100


def test_slot_state_round_trips_through_its_output() -> None:
    state = advance(initial_state(1, TENANT, 120, 2, START), 90, 3, START + timedelta(days=400))
    assert SlotState.from_output(state.to_output()) == state


def test_invalid_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="period_days"):
        initial_state(0, TENANT, 244, 0, START)


def test_the_tenant_policy_caps_the_schedule_and_nothing_is_shortened() -> None:
    state = initial_state(0, TENANT, 121, 0, START, max_lifetime_days=365)
    assert state.expires_at - state.event_at == timedelta(days=363)
    with pytest.raises(ValueError, match=r"period_days must be 1\.\.121, got 122"):
        advance(state, 122, 0, START, max_lifetime_days=365)
    with pytest.raises(ValueError, match="period_days"):
        initial_state(0, TENANT, 180, 0, START, max_lifetime_days=365)


def test_the_secret_slot_refuses_a_period_over_the_policy_naming_both_keys() -> None:
    from components.secret_slots import SecretSlotProvider

    inputs = {
        "tenant_id": TENANT,
        "cloud": "public",
        "application_object_id": "6f1c2a3b-0000-4000-8000-1234567890ab",
        "slot": 0,
        "period_days": 180,
        "force_rotation": 0,
        "max_lifetime_days": 365,
    }
    [failure] = SecretSlotProvider().check({}, inputs).failures
    assert "pop3-oauth:secretRotationDays" in failure.reason
    assert "pop3-oauth:maxSecretLifetimeDays" in failure.reason
    assert SecretSlotProvider().check({}, {**inputs, "max_lifetime_days": 540}).failures == []


# --- taking over secrets that exist (the first release's stacks, a lost record) ----------------------------


def first_release_secrets(tenant_id: str, period_days: int, now: datetime) -> list[IssuedSecret]:
    """What a stack of the first release holds: its names and end dates, from its fixed formula."""
    grid = Anchor.grid(tenant_id, period_days)
    current = grid.index_at(now)
    secrets = []
    for slot in range(SECRET_SLOTS):
        index = current - (current - slot) % SECRET_SLOTS
        event = grid.event(index)
        secrets.append(IssuedSecret(f"pop3-oauth slot {slot} from {event:%Y-%m-%d}", event + 3 * grid.period))
    return secrets


@settings(max_examples=60, deadline=None)
@given(period_days=periods, tenant_id=st.uuids().map(str), days=st.integers(min_value=0, max_value=1500))
def test_a_first_release_stack_is_taken_over_without_replacing_a_secret(
    period_days: int, tenant_id: str, days: int
) -> None:
    now = START + timedelta(days=days)
    existing = first_release_secrets(tenant_id, period_days, now)
    for slot in range(SECRET_SLOTS):
        state = recover_state(slot, existing, tenant_id, 0, now)
        assert state is not None
        state = advance(state, period_days, 0, now)
        assert (state.display_name, state.end_date) == (
            existing[slot].display_name,
            to_rfc3339(existing[slot].end_date),
        )
    # ...and the schedule goes on where the first release's would have: the next rotation is on its grid.
    states = [advance(recover_state(s, existing, tenant_id, 0, now), period_days, 0, now) for s in range(3)]  # type: ignore[arg-type]
    grid = Anchor.grid(tenant_id, period_days)
    assert Schedule(tuple(states)).next_rotation_at == grid.event(grid.index_at(now) + 1)


def test_a_lost_record_is_rebuilt_from_todays_names_and_never_renews_all_slots() -> None:
    tenant = Tenant()
    tenant.up(START, 60)
    tenant.up(tenant.schedule().next_rotation_at + timedelta(days=1), 60)
    listed = [IssuedSecret(s.arguments[0], s.expires) for s in tenant.held.values()]
    later = START + timedelta(days=70)
    for slot in range(SECRET_SLOTS):
        recovered = recover_state(slot, listed, TENANT, 0, later)
        assert recovered is not None
        expected = tenant.states[slot]
        assert (recovered.generation, recovered.display_name, recovered.end_date) == (
            expected.generation,
            expected.display_name,
            expected.end_date,
        )


def test_a_slot_without_a_secret_of_its_own_gets_only_its_due_generation() -> None:
    existing = first_release_secrets(TENANT, 90, START)[:2]
    state = recover_state(2, existing, TENANT, 0, START)
    assert state is not None
    recovered = [recover_state(s, existing, TENANT, 0, START) for s in (0, 1)]
    assert [r.display_name for r in recovered if r] == [e.display_name for e in existing]


def test_secrets_that_are_not_ours_are_ignored_and_inconsistent_ones_refused() -> None:
    foreign = [IssuedSecret("POP3 for Concept Office", START + timedelta(days=300))]
    assert recover_state(0, foreign, TENANT, 0, START) is None
    broken = [IssuedSecret("pop3-oauth slot 0 from 2026-01-01", datetime(2026, 5, 3, tzinfo=UTC))]
    with pytest.raises(ScheduleError, match="three whole periods"):
        recover_state(0, broken, TENANT, 0, START)
