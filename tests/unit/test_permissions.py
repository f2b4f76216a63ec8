"""The principal and FullAccess rules of mscloud.permissions (the provider, verify and adopt share them)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mscloud.exchange import ExchangeNotFound
from mscloud.permissions import (
    FULL_ACCESS,
    held_rights,
    holds_full_access,
    principal_names,
    principal_of,
    rights_on,
)

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
    assert (FULL_ACCESS in held_rights(entries, {"pop3app", OBJECT_ID})) is held


class Reader:
    """Get-MailboxPermission: ``whole`` without a filter; with ``-User`` the ``filtered`` answer, which
    may be the whole list (a filter Exchange ignored) or an error (a filter it refused)."""

    def __init__(self, whole: list[dict[str, Any]], filtered: list[dict[str, Any]] | Exception) -> None:
        self.whole, self.filtered = whole, filtered
        self.calls: list[str | None] = []

    def get_mailbox_permissions(self, mailbox: str, user: str | None = None) -> list[dict[str, Any]]:
        self.calls.append(user)
        if user is None:
            return self.whole
        if isinstance(self.filtered, Exception):
            raise self.filtered
        return self.filtered


SELF = entry("NT AUTHORITY\\SELF", "FullAccess", "ReadPermission")
OURS = principal_of(OBJECT_ID, REGISTRATION, APP_ID)
REFUSED = ExchangeNotFound("object couldn't be found", cmdlet="Get-MailboxPermission", status=404)


def test_a_filtered_answer_is_asked_for_by_object_id_and_trusted_with_the_display_name() -> None:
    reader = Reader([SELF, entry("POP3APP", "FullAccess")], [entry("POP3APP", "FullAccess")])

    assert holds_full_access(reader, "edi@contoso.com", OURS) is True
    assert reader.calls == [OBJECT_ID]


@pytest.mark.parametrize("ignored", [True, False], ids=["filter ignored", "filter refused"])
def test_without_a_working_filter_a_display_name_alone_is_never_taken_for_ours(ignored: bool) -> None:
    def reader(*entries: dict[str, Any]) -> Reader:
        whole = [SELF, *entries]
        return Reader(whole, whole if ignored else REFUSED)

    twin_or_orphan = entry("POP3APP", "FullAccess")
    assert holds_full_access(reader(twin_or_orphan), "edi@contoso.com", OURS) is False
    assert holds_full_access(reader(twin_or_orphan, entry(OBJECT_ID, "FullAccess")), "m", OURS) is True
    assert holds_full_access(reader(entry(APP_ID, "FullAccess")), "m", OURS) is True


def test_a_deny_in_the_filtered_answer_wins() -> None:
    answer = [entry(OBJECT_ID, "FullAccess"), entry(OBJECT_ID, "FullAccess", deny=True)]
    reader = Reader(answer, answer)

    assert rights_on(reader, "m", OURS) == set()


def test_the_principal_lends_the_display_name_only_to_filtered_answers() -> None:
    assert OURS.ids == {OBJECT_ID, OBJECT_ID.upper(), APP_ID}
    assert OURS.names == OURS.ids | {"POP3APP"}
    assert principal_of(
        OBJECT_ID, REGISTRATION | {"ObjectId": APP_OBJECT_ID, "Identity": APP_OBJECT_ID}
    ).names == {OBJECT_ID}


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
