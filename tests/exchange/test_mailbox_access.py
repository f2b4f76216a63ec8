"""MailboxAccess, in-process against the Exchange fake: identity by mailbox, never a moment without access.

Every test reads the fake's ``access_losses`` (each moment a principal lost FullAccess on a mailbox, by any
means), so "no loss" is checked on Exchange's side, not on the provider's word.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.exchange import claims
from components.exchange.mailbox_access import MailboxAccessProvider
from components.exchange.providers import ExchangeProviderError, MailboxPermissionProvider
from mscloud.mailboxes import MailboxError
from sandbox.exchange import FakeMailbox
from tests.exchange.conftest import Fakes, Tenant

EDI = "edi@contoso.de"
EAB = "eab@contoso.de"


@pytest.fixture
def access() -> MailboxAccessProvider:
    return MailboxAccessProvider()


@pytest.fixture(autouse=True)
def fresh_claims() -> None:
    """Each test is its own provider process: no MailboxAccess has claimed anything yet."""
    claims._claims.clear()


@pytest.fixture
def mailboxes(fakes: Fakes, tenant: Tenant) -> dict[str, FakeMailbox]:
    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.sp_object_id, "POP3APP")
    return {
        EDI: fakes.exchange.add_mailbox(tenant.tenant_id, EDI, aliases={"edi@contoso.com"}),
        EAB: fakes.exchange.add_mailbox(tenant.tenant_id, EAB),
    }


def inputs(tenant: Tenant, *addresses: str, **changes: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "user": tenant.sp_object_id,
        "app_id": tenant.app_id,
        "mailboxes": list(addresses),
        "access_rights": ["FullAccess"],
        "cloud": "public",
    } | changes


def legacy_inputs(tenant: Tenant, mailbox: str) -> dict[str, Any]:
    """The first release's per-mailbox resource."""
    return {
        "tenant_id": tenant.tenant_id,
        "mailbox": mailbox,
        "user": tenant.sp_object_id,
        "access_rights": ["FullAccess"],
        "cloud": "public",
    }


def writes(fakes: Fakes, tenant: Tenant) -> list[tuple[str, str]]:
    return [
        (write.cmdlet, str(write.parameters.get("Identity")))
        for write in fakes.exchange.writes
        if write.tenant_id == tenant.tenant_id.lower()
    ]


def test_create_grants_each_mailbox_and_records_it_by_its_immutable_id(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    created = access.create(inputs(tenant, EDI, EAB))

    assert created.id == f"{tenant.tenant_id}:{tenant.sp_object_id}".lower()
    assert created.outs is not None
    assert [(e["address"], e["mailbox_id"], e["granted_by_stack"]) for e in created.outs["entries"]] == [
        (EDI, mailboxes[EDI].guid, True),
        (EAB, mailboxes[EAB].guid, True),
    ]
    assert fakes.exchange.rights(tenant.tenant_id, EDI, tenant.sp_object_id) == {"FullAccess"}
    assert access.diff(created.id, created.outs, inputs(tenant, EDI, EAB)).changes is False
    assert access.diff(created.id, created.outs, inputs(tenant, EAB, EDI)).changes is False, "a reorder"


@pytest.mark.parametrize(
    ("before", "after", "how"),
    [
        ([EDI, EAB], ["edi@contoso.com", EAB], "an alias of the same mailbox"),
        ([EDI, EAB], ["EDI@CONTOSO.DE", EAB], "the same address in other case"),
        ([EDI, EAB], [EAB, EDI], "a reorder"),
    ],
)
def test_another_address_of_the_same_mailbox_changes_nothing_in_exchange(
    fakes: Fakes,
    tenant: Tenant,
    arm_env: dict[str, str],
    access: MailboxAccessProvider,
    mailboxes,
    before: list[str],
    after: list[str],
    how: str,
):
    created = access.create(inputs(tenant, *before))
    assert created.outs is not None
    changes_before = len(fakes.exchange.writes)

    updated = access.update(created.id, created.outs, inputs(tenant, *after))

    assert len(fakes.exchange.writes) == changes_before, how
    assert fakes.exchange.losses(tenant.tenant_id) == []
    assert updated.outs is not None
    assert {e["mailbox_id"] for e in updated.outs["entries"]} == {m.guid for m in mailboxes.values()}
    assert all(e["granted_by_stack"] for e in updated.outs["entries"])


def test_a_domain_change_done_in_exchange_keeps_access_and_changes_nothing(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    created = access.create(inputs(tenant, EDI, EAB))
    assert created.outs is not None
    fakes.exchange.readdress_mailbox(tenant.tenant_id, EDI, "edi@contoso.com")
    read = access.read(created.id, created.outs)
    assert read.outs is not None
    assert read.outs["entries"][0]["primary_address"] == "edi@contoso.com"
    before = len(fakes.exchange.writes)

    access.update(created.id, read.outs, inputs(tenant, "edi@contoso.com", EAB))

    assert len(fakes.exchange.writes) == before
    assert fakes.exchange.losses(tenant.tenant_id) == []


def test_two_addresses_of_one_mailbox_are_rejected_naming_both_before_any_change(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    with pytest.raises(
        MailboxError, match=r"lists edi@contoso\.de and edi@contoso\.com, two addresses of one"
    ):
        access.create(inputs(tenant, EDI, EAB, "edi@contoso.com"))
    assert writes(fakes, tenant) == []

    created = access.create(inputs(tenant, EDI))
    assert created.outs is not None
    with pytest.raises(MailboxError, match="two addresses of one mailbox"):
        access.update(created.id, created.outs, inputs(tenant, EDI, "edi@contoso.com", EAB))
    assert fakes.exchange.rights(tenant.tenant_id, EAB, tenant.sp_object_id) == set(), "nothing half-done"


def test_an_addition_grants_first_and_a_removal_takes_away_only_what_the_stack_granted(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    third = fakes.exchange.add_mailbox(tenant.tenant_id, "lager@contoso.de")
    fakes.exchange.grant(tenant.tenant_id, EAB, tenant.sp_object_id, {"FullAccess"})  # granted by hand
    created = access.create(inputs(tenant, EDI, EAB))
    assert created.outs is not None
    assert [e["granted_by_stack"] for e in created.outs["entries"]] == [True, False]

    grown = access.update(created.id, created.outs, inputs(tenant, EDI, EAB, third.address))
    assert grown.outs is not None
    assert fakes.exchange.rights(tenant.tenant_id, third.address, tenant.sp_object_id) == {"FullAccess"}

    shrunk = access.update(created.id, grown.outs, inputs(tenant, third.address))
    assert shrunk.outs is not None
    assert fakes.exchange.rights(tenant.tenant_id, EDI, tenant.sp_object_id) == set()
    assert fakes.exchange.rights(tenant.tenant_id, EAB, tenant.sp_object_id) == {"FullAccess"}, "found"
    assert [loss.guid for loss in fakes.exchange.losses(tenant.tenant_id)] == [mailboxes[EDI].guid]

    access.delete(created.id, shrunk.outs)
    assert fakes.exchange.rights(tenant.tenant_id, third.address, tenant.sp_object_id) == set()
    assert fakes.exchange.rights(tenant.tenant_id, EAB, tenant.sp_object_id) == {"FullAccess"}


def test_a_swap_of_mailboxes_grants_the_new_one_before_it_revokes_the_old(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    created = access.create(inputs(tenant, EDI))
    assert created.outs is not None
    fakes.exchange.writes.clear()

    access.update(created.id, created.outs, inputs(tenant, EAB))

    assert [cmdlet for cmdlet, _ in writes(fakes, tenant)] == [
        "Add-MailboxPermission",
        "Remove-MailboxPermission",
    ]


def test_refresh_shows_a_lost_grant_and_update_restores_it(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    created = access.create(inputs(tenant, EDI, EAB))
    assert created.outs is not None
    fakes.exchange.revoke(tenant.tenant_id, EAB, tenant.sp_object_id)

    read = access.read(created.id, created.outs)
    assert read.outs is not None
    assert [e["address"] for e in read.outs["entries"]] == [EDI]
    assert access.diff(created.id, read.outs, inputs(tenant, EDI, EAB)).changes is True

    restored = access.update(created.id, read.outs, inputs(tenant, EDI, EAB))
    assert restored.outs is not None
    assert fakes.exchange.rights(tenant.tenant_id, EAB, tenant.sp_object_id) == {"FullAccess"}


def test_a_twin_or_an_orphan_named_like_ours_is_not_taken_for_our_grant(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    twin = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    fakes.exchange.add_service_principal(
        tenant.tenant_id, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", twin, "POP3APP"
    )
    fakes.exchange.grant(tenant.tenant_id, EDI, twin, {"FullAccess"})
    fakes.exchange.grant(tenant.tenant_id, EAB, "POP3APP", {"FullAccess"})  # an orphaned entry

    created = access.create(inputs(tenant, EDI, EAB))

    assert created.outs is not None
    assert all(e["granted_by_stack"] for e in created.outs["entries"])
    assert fakes.exchange.rights(tenant.tenant_id, EDI, tenant.sp_object_id) == {"FullAccess"}
    assert fakes.exchange.rights(tenant.tenant_id, EAB, tenant.sp_object_id) == {"FullAccess"}
    assert all(
        parameters.get("User") == tenant.sp_object_id
        for cmdlet, parameters in fakes.exchange.calls
        if cmdlet == "Get-MailboxPermission"
    ), "asked with the server-side filter"


def test_a_missing_or_pop_disabled_mailbox_fails_before_any_change(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    fakes.exchange.add_mailbox(tenant.tenant_id, "aus@contoso.de", pop_enabled=False)
    with pytest.raises(MailboxError, match=r"Mailbox nobody@contoso\.de does not exist"):
        access.create(inputs(tenant, EDI, "nobody@contoso.de"))
    with pytest.raises(ExchangeProviderError, match=r"POP3 is disabled for mailbox aus@contoso\.de"):
        access.create(inputs(tenant, EDI, "aus@contoso.de"))
    assert writes(fakes, tenant) == []


def test_check_rejects_bad_mailboxes_offline(access: MailboxAccessProvider, tenant: Tenant):
    failures = access.check({}, inputs(tenant, EDI, "not-an-address", "EDI@contoso.de")).failures

    assert [f.reason for f in failures] == [
        "mailboxes must hold e-mail addresses like edi@contoso.com, got 'not-an-address'",
        "mailboxes lists edi@contoso.de and EDI@contoso.de twice",
    ]
    assert access.check({}, inputs(tenant)).failures[0].property == "mailboxes"


def test_a_legacy_permission_taken_over_in_this_process_is_not_removed_by_its_delete(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], access: MailboxAccessProvider, mailboxes
):
    legacy = MailboxPermissionProvider()
    old = legacy_inputs(tenant, EDI)
    created_old = legacy.create(old)
    assert created_old.outs is not None

    access.create(inputs(tenant, "edi@contoso.com", EAB))  # the same mailbox, by its alias
    legacy.delete(created_old.id, created_old.outs)

    assert fakes.exchange.rights(tenant.tenant_id, EDI, tenant.sp_object_id) == {"FullAccess"}
    assert fakes.exchange.losses(tenant.tenant_id) == []


def test_a_legacy_permission_not_taken_over_is_removed_on_destroy(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], mailboxes
):
    legacy = MailboxPermissionProvider()
    old = legacy_inputs(tenant, EDI)
    created = legacy.create(old)
    assert created.outs is not None

    legacy.delete(created.id, created.outs)

    assert fakes.exchange.rights(tenant.tenant_id, EDI, tenant.sp_object_id) == set()
