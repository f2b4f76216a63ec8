"""The principal and FullAccess rules of mscloud.permissions (the provider, verify and adopt share them)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mscloud.permissions import held_rights, holds_full_access, principal_names

OBJECT_ID = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
APP_ID = "3c5e7a9b-1d2f-4e6a-8b0c-2d4f6a8c0e1a"
APP_OBJECT_ID = "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"
REGISTRATION = {
    "Identity": OBJECT_ID,
    "ObjectId": OBJECT_ID.upper(),
    "AppId": APP_ID,
    "DisplayName": "POP3APP",
}


def entry(user: str, *rights: str, inherited: bool = False, deny: bool = False) -> dict[str, Any]:
    return {"User": user, "AccessRights": list(rights), "IsInherited": inherited, "Deny": deny}


def test_a_registration_of_the_principal_lends_its_names_as_they_are() -> None:
    assert principal_names(OBJECT_ID, REGISTRATION) == {OBJECT_ID, OBJECT_ID.upper(), APP_ID, "POP3APP"}


def test_a_registration_of_another_object_is_another_principal() -> None:
    wrong = REGISTRATION | {"Identity": APP_OBJECT_ID, "ObjectId": APP_OBJECT_ID}

    assert principal_names(OBJECT_ID, wrong, APP_ID) == {OBJECT_ID, APP_ID}


def test_without_the_object_id_the_registration_is_taken_at_its_word() -> None:
    assert principal_names(None, REGISTRATION, APP_ID) == {OBJECT_ID, OBJECT_ID.upper(), APP_ID, "POP3APP"}
    assert principal_names(None, None, APP_ID) == {APP_ID}


@pytest.mark.parametrize(
    ("entries", "held"),
    [
        ([entry("pop3app", "FullAccess")], True),
        ([entry("POP3APP", "fullaccess", inherited=True)], True),
        ([entry("someone else", "FullAccess")], False),
        ([entry("POP3APP", "ReadPermission")], False),
        ([entry("POP3APP", "FullAccess"), entry(OBJECT_ID, "FullAccess", deny=True)], False),
        ([entry("POP3APP", "FullAccess"), entry(OBJECT_ID, "FullAccess", inherited=True, deny=True)], False),
        ([entry("POP3APP", "FullAccess"), entry(OBJECT_ID, "ReadPermission", deny=True)], True),
        ([entry("POP3APP", "FullAccess"), entry("someone else", "FullAccess", deny=True)], True),
        ([], False),
    ],
    ids=[
        "explicit allow",
        "inherited allow",
        "other principal",
        "other right",
        "explicit deny wins",
        "inherited deny wins",
        "deny of another right",
        "deny for another principal",
        "no entries",
    ],
)
def test_full_access_rule(entries: list[dict[str, Any]], held: bool) -> None:
    assert holds_full_access(entries, {"pop3app", OBJECT_ID}) is held


@given(
    allowed=st.sets(st.sampled_from(["FullAccess", "ReadPermission", "DeleteItem"])),
    denied=st.sets(st.sampled_from(["FullAccess", "ReadPermission", "DeleteItem"])),
    inherited=st.booleans(),
)
def test_held_rights_are_the_allowed_ones_less_the_denied(
    allowed: set[str], denied: set[str], inherited: bool
) -> None:
    entries = [entry(APP_ID, *allowed, inherited=inherited), entry(APP_ID.upper(), *denied, deny=True)]

    assert held_rights(entries, {APP_ID}) == allowed - denied
