"""``popctl handoff`` shows each secret's last sign-in, so the operator sees which one the ERP uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from popctl.signins import SignInsUnavailable
from tests.popctl.conftest import SECRET, CliRun, Seams, stack_output_values

KEY = "7f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b"
Runner = Callable[..., CliRun]


@pytest.fixture
def outputs(stack_outputs: Callable[[Mapping[str, Any]], object]) -> None:
    values = stack_output_values()
    values["secrets"][0]["status"] = "current"
    stack_outputs(values)


def test_the_sheet_lists_each_secret_with_its_last_sign_in(
    outputs: None, seams: Seams, run_cli: Runner
) -> None:
    asked: list[tuple[str, Mapping[str, Any]]] = []

    def reader(stack: str, identity: Mapping[str, Any]) -> Mapping[str, datetime | None]:
        asked.append((stack, identity))
        return {KEY: datetime(2030, 11, 28, 6, tzinfo=UTC)}

    seams.read_sign_ins = reader
    run = run_cli("handoff", "--stack", "mueller")

    assert run.code == 0
    assert f"{KEY}  current" in run.stdout
    assert "letzte Anmeldung 28.11.2030 (last sign-in 2030-11-28)" in run.stdout
    assert asked[0][0] == "mueller" and asked[0][1]["clientId"]
    assert "note" not in run.stderr


def test_json_carries_last_sign_in_at(outputs: None, seams: Seams, run_cli: Runner) -> None:
    seams.read_sign_ins = lambda stack, identity: {KEY.upper().lower(): datetime(2030, 11, 28, tzinfo=UTC)}
    document = run_cli("handoff", "--stack", "mueller", "--json").only_result()

    assert document["secrets"] == [
        {
            "keyId": KEY,
            "status": "current",
            "expiresAt": "2031-03-01T00:00:00Z",
            "lastSignInAt": "2030-11-28T00:00:00Z",
        }
    ]
    assert document["signInActivity"] == "read"


def test_unreadable_activity_is_said_once_and_the_sheet_still_comes(
    outputs: None, seams: Seams, run_cli: Runner
) -> None:
    def refused(stack: str, identity: Mapping[str, Any]) -> Mapping[str, datetime | None]:
        raise SignInsUnavailable(
            "the operator's identity needs AuditLog.Read.All (and the tenant Entra ID P1)"
        )

    seams.read_sign_ins = refused
    run = run_cli("handoff", "--stack", "mueller", "--show-secret")

    assert run.code == 0
    assert SECRET in run.stdout
    assert "last sign-in unknown" in run.stdout
    assert run.stderr.count("AuditLog.Read.All") == 1


def test_no_sign_ins_asks_nothing(outputs: None, seams: Seams, run_cli: Runner) -> None:
    def unexpected(stack: str, identity: Mapping[str, Any]) -> Mapping[str, datetime | None]:
        raise AssertionError("the activity was read")

    seams.read_sign_ins = unexpected
    document = run_cli("handoff", "--stack", "mueller", "--json", "--no-sign-ins").only_result()

    assert document["signInActivity"] == "not asked"
    assert document["secrets"][0]["lastSignInAt"] is None
