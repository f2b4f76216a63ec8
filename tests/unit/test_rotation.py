"""The rotation schedule, simulated over years of daily and irregular `pulumi up` runs.

``Tenant`` below plays Entra and the Pulumi engine: a slot's secret is replaced exactly when the
arguments the program declares for it change (every ApplicationPassword argument forces replacement),
the new one created at the moment of the run, the old one deleted in the same update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.rotation import SecretSchedule, plan_secrets, tenant_offset_days, to_rfc3339
from components.settings import MAX_ROTATION_DAYS, MAX_SECRET_LIFETIME_DAYS, MIN_ROTATION_DAYS

TENANT = "0a1b2c3d-1111-2222-3333-444455556666"
START = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
_serial = count()


@dataclass
class Secret:
    serial: int
    slot: int
    generation: int
    arguments: tuple[object, ...]
    created: datetime
    expires: datetime
    deleted: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        gone = self.expires if self.deleted is None else min(self.expires, self.deleted)
        return self.created <= moment < gone


@dataclass
class Update:
    at: datetime
    schedule: SecretSchedule
    created: list[Secret]
    deleted: list[Secret]


@dataclass
class Tenant:
    tenant_id: str = TENANT
    slots: dict[int, Secret] = field(default_factory=dict)
    recorded: SecretSchedule | None = None
    ever: list[Secret] = field(default_factory=list)

    def up(self, at: datetime, period_days: int, force_rotation: int = 0) -> Update:
        schedule = plan_secrets(at, self.tenant_id, period_days, force_rotation, self.recorded)
        created, deleted = [], []
        for generation in schedule.generations:
            arguments = (
                generation.display_name,
                to_rfc3339(generation.expires_at),
                tuple(sorted(generation.keepers.items())),
            )
            held = self.slots.get(generation.slot)
            if held is not None and held.arguments == arguments:
                continue
            secret = Secret(
                next(_serial), generation.slot, generation.index, arguments, at, generation.expires_at
            )
            created.append(secret)
            self.ever.append(secret)
            if held is not None:
                held.deleted = at
                deleted.append(held)
            self.slots[generation.slot] = secret
        # The stack records its outputs only after a successful update; a round trip proves they suffice.
        self.recorded = SecretSchedule.from_output(schedule.to_output())
        return Update(at, schedule, created, deleted)

    def newest(self) -> Secret:
        return max(self.slots.values(), key=lambda secret: secret.generation)

    def any_valid(self, moment: datetime) -> bool:
        return any(secret.valid_at(moment) for secret in self.ever)


def run_schedule(tenant: Tenant, times: list[datetime], period_days: int) -> list[Update]:
    return [tenant.up(at, period_days) for at in times]


def assert_guarantees(updates: list[Update], period_days: int) -> None:
    """Every guarantee of the schedule for runs at most one period apart."""
    period = timedelta(days=period_days)
    promises: dict[int, datetime] = {}  # secret serial -> must stay until
    previous: Update | None = None
    live: dict[int, Secret] = {}
    for update in updates:
        for secret in update.created:
            lifetime = secret.expires - secret.created
            assert timedelta(0) < lifetime <= timedelta(days=MAX_SECRET_LIFETIME_DAYS)
            assert lifetime <= 3 * period
        for secret in update.deleted:
            promised = promises.get(secret.serial)
            assert promised is None or promised <= update.at, (
                "a superseded secret was deleted inside its window"
            )
            del live[secret.serial]
        if previous is not None:
            # Before this run, something issued earlier was still valid: no gap.
            just_before = update.at - timedelta(microseconds=1)
            assert any(s.valid_at(just_before) for s in live.values()), (
                f"no valid secret just before {update.at}"
            )
            same_period = previous.schedule.anchor.index_at(previous.at) == update.schedule.anchor.index_at(
                update.at
            )
            if same_period:
                assert not update.created, "a run inside the same period replaced a secret"
            old_newest = max(live.values(), key=lambda s: s.generation)
            if any(s.generation > old_newest.generation for s in update.created):
                # A new secret was issued: the one it supersedes stays valid one more period.
                assert old_newest.expires >= update.at + period
                promises[old_newest.serial] = update.at + period
        if previous is not None:
            assert len(update.created) <= 1, "more than one secret issued by one run"
        live.update({secret.serial: secret for secret in update.created})
        assert any(s.valid_at(update.at) for s in live.values())
        previous = update


def test_first_deployment_fills_three_slots_and_names_the_newest() -> None:
    tenant = Tenant()
    update = tenant.up(START, 180)
    schedule = update.schedule
    assert len(update.created) == 3 and not update.deleted
    assert sorted(g.slot for g in schedule.generations) == [0, 1, 2]
    assert sorted(g.index for g in schedule.generations) == [schedule.newest.index - i for i in (2, 1, 0)]
    newest = schedule.newest
    assert newest.issued_at <= START < schedule.next_rotation_at
    assert schedule.next_rotation_at - newest.issued_at == timedelta(days=180)
    assert newest.expires_at == newest.issued_at + timedelta(days=540)
    assert all(g.expires_at > START for g in schedule.generations)


def test_a_second_run_in_the_same_period_replaces_nothing() -> None:
    tenant = Tenant()
    first = tenant.up(START, 90)
    again = tenant.up(first.schedule.next_rotation_at - timedelta(seconds=1), 90)
    assert again.created == [] and again.deleted == []


def test_the_run_after_the_rotation_date_issues_one_secret_and_keeps_the_previous() -> None:
    tenant = Tenant()
    first = tenant.up(START, 90)
    newest_before = tenant.newest()
    update = tenant.up(first.schedule.next_rotation_at + timedelta(hours=1), 90)
    assert len(update.created) == 1 and len(update.deleted) == 1
    assert update.deleted[0] is not newest_before
    assert newest_before.serial in {s.serial for s in tenant.slots.values()}
    assert tenant.newest() is update.created[0]


@pytest.mark.parametrize("period_days", [MIN_ROTATION_DAYS, 30, 90, 180, MAX_ROTATION_DAYS])
def test_daily_runs_for_three_years_keep_every_guarantee(period_days: int) -> None:
    tenant = Tenant()
    times = [START + timedelta(days=day, hours=day % 24) for day in range(3 * 365)]
    updates = run_schedule(tenant, times, period_days)
    assert_guarantees(updates, period_days)
    issued = sum(1 for update in updates[1:] if update.created)
    assert abs(issued - (3 * 365) / period_days) <= 2


@settings(max_examples=150, deadline=None)
@given(
    period_days=st.integers(min_value=MIN_ROTATION_DAYS, max_value=MAX_ROTATION_DAYS),
    gaps=st.lists(st.floats(min_value=0.001, max_value=1.0), min_size=3, max_size=40),
    start_offset_hours=st.integers(min_value=0, max_value=24 * 730),
    tenant_id=st.uuids().map(str),
)
def test_irregular_runs_at_most_one_period_apart_keep_every_guarantee(
    period_days: int, gaps: list[float], start_offset_hours: int, tenant_id: str
) -> None:
    period = timedelta(days=period_days)
    times = [START + timedelta(hours=start_offset_hours)]
    for gap in gaps:
        times.append(times[-1] + gap * period)
    updates = run_schedule(Tenant(tenant_id=tenant_id), times, period_days)
    assert_guarantees(updates, period_days)


@settings(max_examples=150, deadline=None)
@given(
    old_days=st.integers(min_value=MIN_ROTATION_DAYS, max_value=MAX_ROTATION_DAYS),
    new_days=st.integers(min_value=MIN_ROTATION_DAYS, max_value=MAX_ROTATION_DAYS),
    history=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=8),
    change_after=st.floats(min_value=0.0, max_value=1.0),
    later=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=12),
)
def test_changing_the_period_never_replaces_all_secrets_and_leaves_no_gap(
    old_days: int, new_days: int, history: list[float], change_after: float, later: list[float]
) -> None:
    tenant = Tenant()
    at = START
    tenant.up(at, old_days)
    for gap in history:
        at += gap * timedelta(days=old_days)
        tenant.up(at, old_days)
    before = dict(tenant.slots)
    newest_before = tenant.newest()
    assert tenant.recorded is not None
    planned = tenant.recorded.next_rotation_at
    at += change_after * timedelta(days=old_days)
    change = tenant.up(at, new_days)
    if at < planned:
        assert change.created == [], "a change of the period rotated before the planned date"
    assert len(change.created) <= 1, "a change of the period renewed more than the oldest secret"
    assert newest_before.serial in {s.serial for s in tenant.slots.values()}
    assert len(set(before) & {s.slot for s in change.deleted}) <= 1
    updates = [change]
    step = timedelta(days=min(old_days, new_days))
    for gap in later:
        at += gap * step
        updates.append(tenant.up(at, new_days))
    for update in updates:
        assert tenant.any_valid(update.at - timedelta(microseconds=1)), (
            "no valid secret after a period change"
        )
        assert tenant.any_valid(update.at)
        assert all(s.expires - s.created <= timedelta(days=MAX_SECRET_LIFETIME_DAYS) for s in update.created)


def test_force_rotation_renews_and_revokes_every_secret_once() -> None:
    tenant = Tenant()
    tenant.up(START, 180)
    before = {s.serial for s in tenant.slots.values()}
    forced = tenant.up(START + timedelta(days=3), 180, force_rotation=1)
    assert {s.serial for s in forced.deleted} == before
    assert len(forced.created) == 3
    assert all(s.expires > forced.at for s in forced.created)
    again = tenant.up(START + timedelta(days=4), 180, force_rotation=1)
    assert again.created == [] and again.deleted == []


def test_rotation_dates_are_staggered_across_tenants() -> None:
    tenants = [f"{i:08x}-1111-2222-3333-444455556666" for i in range(200)]
    offsets = {tenant_offset_days(t, 180) for t in tenants}
    assert len(offsets) > 100
    assert all(0 <= offset < 180 for offset in offsets)
    dates = {plan_secrets(START, t, 180).next_rotation_at.date() for t in tenants}
    assert len(dates) > 100


def test_a_tenant_keeps_its_rotation_date_from_run_to_run() -> None:
    assert tenant_offset_days(TENANT, 180) == tenant_offset_days(TENANT.upper(), 180)
    first = plan_secrets(START, TENANT, 180)
    assert plan_secrets(START + timedelta(days=1), TENANT, 180).next_rotation_at == first.next_rotation_at


def test_schedule_record_round_trips_and_untrusted_records_fall_back_to_the_grid() -> None:
    schedule = plan_secrets(START, TENANT, 120, 2)
    assert SecretSchedule.from_output(schedule.to_output()) == schedule
    assert SecretSchedule.from_output(None) is None
    assert SecretSchedule.from_output({"periodDays": 30}) is None
    broken = schedule.to_output() | {"slots": schedule.to_output()["slots"][:2]}
    assert SecretSchedule.from_output(broken) is None
    assert plan_secrets(START, TENANT, 120, 2, None) == schedule


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="period_days"):
        plan_secrets(START, TENANT, 244)
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_secrets(START.replace(tzinfo=None), TENANT, 30)
