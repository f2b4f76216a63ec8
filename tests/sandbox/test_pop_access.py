"""The POP3 decision follows the emulated tenant as Office 365's does: each condition, taken away, refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sandbox.clock import MovableClock, set_clock
from tests.sandbox.conftest import MAILBOXES, World


def test_a_fully_set_up_app_may_open_each_of_its_mailboxes(world: World) -> None:
    token = world.token()
    for mailbox in MAILBOXES:
        decision = world.emulator.pop_access.decide(token, mailbox)
        assert decision.allowed, decision.reason
        assert decision.client_id == world.app.app_id


def _revoke_consent(world: World) -> None:
    world.emulator.graph.remove_assignment(world.tenant.tenant_id, world.consent_id)


def _unregister(world: World) -> None:
    world.emulator.exchange.remove_service_principal(world.tenant.tenant_id, world.principal.object_id)


def _register_under_the_app_object_id(world: World) -> None:
    exchange, tenant_id = world.emulator.exchange, world.tenant.tenant_id
    exchange.recreate_service_principal(tenant_id, world.principal.object_id, world.app.object_id)


def _revoke_full_access(world: World) -> None:
    world.emulator.exchange.revoke(world.tenant.tenant_id, MAILBOXES[0], world.principal.object_id)


def _disable_pop(world: World) -> None:
    world.emulator.exchange.mailbox(world.tenant.tenant_id, MAILBOXES[0]).pop_enabled = False


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_revoke_consent, "no POP.AccessAsApp role"),
        (_unregister, "has no Exchange service principal"),
        (_register_under_the_app_object_id, "registered in Exchange under object id"),
        (_revoke_full_access, "holds no FullAccess"),
        (_disable_pop, "POP is disabled"),
    ],
)
def test_each_condition_taken_away_refuses_with_its_reason(
    world: World, change: Callable[[World], None], reason: str
) -> None:
    change(world)
    decision = world.emulator.pop_access.decide(world.token(), MAILBOXES[0])
    assert not decision.allowed
    assert reason in decision.reason


def test_a_mailbox_opens_under_any_of_its_addresses(world: World) -> None:
    exchange, tenant_id = world.emulator.exchange, world.tenant.tenant_id
    exchange.readdress_mailbox(tenant_id, MAILBOXES[0], "orders@sandbox.example")
    token = world.token()
    assert world.emulator.pop_access.decide(token, "orders@sandbox.example").allowed
    assert world.emulator.pop_access.decide(token, MAILBOXES[0]).allowed, "the old address is an alias"


def test_an_unknown_mailbox_and_a_foreign_token_are_refused(world: World) -> None:
    assert "no mailbox" in world.emulator.pop_access.decide(world.token(), "ceo@sandbox.example").reason
    assert not world.emulator.pop_access.decide("not-a-token", MAILBOXES[0]).allowed


def test_token_lifetime_follows_the_emulators_clock(world: World, tmp_path) -> None:
    clock = MovableClock(tmp_path / "clock.json")
    world.emulator.entra.clock = clock
    token = world.token()
    set_clock(clock.path, clock.now().replace(year=clock.now().year + 1))
    decision = world.emulator.pop_access.decide(token, MAILBOXES[0])
    assert not decision.allowed
    assert "expired" in decision.reason
    assert world.emulator.pop_access.decide(world.token(), MAILBOXES[0]).allowed
