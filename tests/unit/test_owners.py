"""The record of deploying identities: each caller is added once, none is ever dropped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pulumi.output import Unknown

from components.owners import DeployingIdentitiesProvider

OPERATOR = "0a0a0a0a-1111-4222-8333-444444444444"
CI = "0b0b0b0b-1111-4222-8333-555555555555"


def test_alternating_callers_are_both_kept() -> None:
    provider = DeployingIdentitiesProvider()
    created = provider.create({"caller": OPERATOR})
    assert created.outs == {"caller": OPERATOR, "identities": [OPERATOR]}

    assert provider.diff(created.id, created.outs, {"caller": CI}).changes is True
    by_ci = provider.update(created.id, created.outs, {"caller": CI}).outs
    assert by_ci is not None and by_ci["identities"] == [OPERATOR, CI]

    assert provider.diff(created.id, by_ci, {"caller": OPERATOR}).changes is False
    assert provider.diff(created.id, by_ci, {"caller": OPERATOR.upper()}).changes is False
    assert provider.diff(created.id, by_ci, {"caller": Unknown()}).changes is True
    assert provider.read(created.id, by_ci).outs == by_ci


def test_check_wants_an_object_id() -> None:
    failures = DeployingIdentitiesProvider().check({}, {"caller": "me"}).failures
    assert [f.property for f in failures] == ["caller"]
    assert DeployingIdentitiesProvider().check({}, {"caller": Unknown()}).failures == []


@given(st.lists(st.sampled_from([OPERATOR, CI, OPERATOR.upper(), "0c0c0c0c-1111-4222-8333-666666666666"])))
def test_no_caller_is_ever_dropped(callers: list[str]) -> None:
    provider = DeployingIdentitiesProvider()
    outs = provider.create({"caller": OPERATOR}).outs
    for caller in callers:
        assert outs is not None
        outs = provider.update("deploying-identities", outs, {"caller": caller}).outs
    assert outs is not None
    assert set(outs["identities"]) == {c.lower() for c in [OPERATOR, *callers]}
    assert len(outs["identities"]) == len(set(outs["identities"]))
