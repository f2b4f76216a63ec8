"""The emulator's state survives a restart: saved after each change, loaded into fresh fakes."""

from __future__ import annotations

import json
import stat

from sandbox.emulator import Emulator
from sandbox.state import StateFile, export_state, import_state
from tests.sandbox.conftest import MAILBOXES, World


def test_export_import_round_trip_is_exact(world: World) -> None:
    emulator = world.emulator
    document = export_state(emulator.entra, emulator.graph, emulator.exchange)
    again = export_state(*import_state(json.loads(json.dumps(document))))
    assert again == document


def test_a_restarted_emulator_still_knows_the_tenant_the_secret_and_the_permissions(world: World) -> None:
    world.emulator.save()
    state = world.emulator.state
    assert state is not None
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    with Emulator.from_state_file(StateFile(state.path), world.emulator.certificates) as restarted:
        world.emulator = restarted
        token = world.token()
        assert restarted.pop_access.decide(token, MAILBOXES[1]).allowed
        assert restarted.graph.find_applications(world.tenant.tenant_id, "POP3APP")


def test_every_changing_request_is_saved(world: World) -> None:
    state = world.emulator.state
    assert state is not None
    world.token()
    before = state.path.read_text()
    world.emulator.exchange.revoke(world.tenant.tenant_id, MAILBOXES[0], world.principal.object_id)
    world.token()  # any POST saves; the revocation made by hand rides along
    assert state.path.read_text() != before
