"""ExchangeClient against the InvokeCommand fake: protocol, faults, retries, normalisation."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mscloud.auth import MsalTokenSource
from mscloud.exchange import (
    ExchangeAccessDenied,
    ExchangeClient,
    ExchangeError,
    ExchangeNotFound,
    ExchangePrincipalNotReplicated,
    ExchangeReplicationTimeout,
    ExchangeThrottled,
    normalise_rights,
    strip_annotations,
)
from sandbox.entra import EXCHANGE_RESOURCE
from tests.exchange.conftest import DEPLOYER_SECRET, Fakes, Tenant
from tests.fakes.clock import FakeClock

MAILBOX = "edi@contoso.com"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], clock: FakeClock) -> ExchangeClient:
    fakes.exchange.add_mailbox(tenant.tenant_id, MAILBOX)
    return ExchangeClient(
        tenant.tenant_id,
        fakes.cloud,
        MsalTokenSource(),
        clock=clock,
        sleep=clock.sleep,
        max_retry_seconds=60,
        lag_timeout_seconds=30,
    )


def register(fakes: Fakes, tenant: Tenant, name: str = "POP3APP") -> None:
    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.sp_object_id, name)


def cmdlets(fakes: Fakes) -> list[str]:
    return [name for name, _ in fakes.exchange.calls]


def test_invoke_strips_annotations_and_follows_post_paging(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient
):
    fakes.exchange.faults.page_size = 2
    for index in range(5):
        fakes.exchange.add_service_principal(tenant.tenant_id, f"app-{index}", f"sp-{index}", f"name-{index}")

    found = client.invoke("Get-ServicePrincipal", {})

    assert sorted(item["ObjectId"] for item in found) == [f"sp-{index}" for index in range(5)]
    assert all("@" not in key for item in found for key in item)
    assert fakes.exchange.requests["InvokeCommand"] == 3


def test_paging_link_to_another_host_is_refused(fakes: Fakes, tenant: Tenant, client: ExchangeClient):
    fakes.exchange.faults.page_size = 1
    fakes.exchange.faults.next_link_base = "https://evil.example"
    register(fakes, tenant)
    fakes.exchange.add_service_principal(tenant.tenant_id, "other-app", "other-sp", "other")

    with pytest.raises(ExchangeError, match=r"another host \(evil\.example\)"):
        client.invoke("Get-ServicePrincipal", {})


@pytest.mark.parametrize("shape", ["list", "string", "object"])
def test_access_rights_are_a_list_whatever_the_shape(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, shape: Any
):
    fakes.exchange.faults.access_rights_shape = shape
    register(fakes, tenant)
    fakes.exchange.grant(tenant.tenant_id, MAILBOX, tenant.sp_object_id, {"FullAccess", "ReadPermission"})

    entries = client.get_mailbox_permissions(MAILBOX)

    ours = [entry for entry in entries if entry["User"] == "POP3APP"]
    assert ours[0]["AccessRights"] == ["FullAccess", "ReadPermission"]


@pytest.mark.parametrize("status", [404, 400, 500])
@pytest.mark.parametrize("style", ["pipe", "json", "plain"])
def test_not_found_is_classified_by_text_not_status(
    fakes: Fakes, client: ExchangeClient, status: int, style: Any
):
    fakes.exchange.faults.not_found_status = status
    fakes.exchange.faults.not_found_style = style

    with pytest.raises(ExchangeNotFound) as caught:
        client.invoke("Get-ServicePrincipal", {"Identity": "nobody"})

    assert caught.value.status == status
    assert "couldn't be found" in caught.value.reason
    assert "|" not in caught.value.reason
    assert client.get_service_principal("nobody") is None
    assert client.get_cas_mailbox("nobody@contoso.com") is None


def test_throttling_honours_retry_after(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, clock: FakeClock
):
    register(fakes, tenant)
    fakes.exchange.faults.throttle_next = 2
    fakes.exchange.faults.retry_after = 7

    assert client.get_service_principal(tenant.sp_object_id) is not None
    assert clock.sleeps == [7.0, 7.0]


def test_throttling_gives_up_within_the_budget(fakes: Fakes, client: ExchangeClient, clock: FakeClock):
    fakes.exchange.faults.throttle_next = 100
    fakes.exchange.faults.retry_after = 25

    with pytest.raises(ExchangeThrottled) as caught:
        client.invoke("Get-ServicePrincipal", {})

    assert caught.value.status == 429
    assert sum(clock.sleeps) <= 60
    assert fakes.exchange.requests["InvokeCommand"] == 3


@pytest.mark.parametrize("status", [503, 504])
def test_unavailable_bursts_are_retried_with_backoff(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, clock: FakeClock, status: int
):
    register(fakes, tenant)
    fakes.exchange.faults.unavailable_status = status
    fakes.exchange.faults.unavailable_next = 3

    assert client.get_service_principal(tenant.app_id) is not None
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_new_after_a_5xx_reads_back_instead_of_replaying(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient
):
    fakes.exchange.faults.unavailable_after_execute_next = 1

    created = client.new_service_principal(tenant.app_id, tenant.sp_object_id, "POP3APP")

    assert created["ObjectId"] == tenant.sp_object_id
    assert cmdlets(fakes) == ["New-ServicePrincipal", "Get-ServicePrincipal", "Get-ServicePrincipal"]


def test_add_after_a_5xx_replays_only_when_read_back_finds_nothing(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient
):
    register(fakes, tenant)
    fakes.exchange.faults.unavailable_next = 1

    def granted() -> bool:
        return "FullAccess" in fakes.exchange.rights(tenant.tenant_id, MAILBOX, tenant.sp_object_id)

    client.add_mailbox_permission(MAILBOX, tenant.sp_object_id, ["FullAccess"], visible=granted)

    assert cmdlets(fakes) == ["Add-MailboxPermission", "Add-MailboxPermission"]
    assert granted()


def test_replication_lag_is_polled_through(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, clock: FakeClock
):
    fakes.exchange.faults.replication_lag_reads = 3

    created = client.new_service_principal(tenant.app_id, tenant.sp_object_id, "POP3APP")

    assert created["AppId"] == tenant.app_id
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_replication_lag_polling_is_bounded(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, clock: FakeClock
):
    fakes.exchange.faults.replication_lag_reads = 1000

    with pytest.raises(ExchangeReplicationTimeout, match="replication lag"):
        client.new_service_principal(tenant.app_id, tenant.sp_object_id, "POP3APP")
    assert clock.now <= 30


def test_add_waits_with_backoff_for_a_new_principal_to_replicate(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, clock: FakeClock
):
    fakes.exchange.faults.principal_lag_adds = 3
    client.new_service_principal(tenant.app_id, tenant.sp_object_id, "POP3APP")
    fakes.exchange.reset_counts()

    client.add_mailbox_permission(MAILBOX, tenant.sp_object_id, ["FullAccess"])

    assert cmdlets(fakes) == ["Add-MailboxPermission"] * 4
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert "FullAccess" in fakes.exchange.rights(tenant.tenant_id, MAILBOX, tenant.sp_object_id)


def test_add_gives_up_on_a_principal_that_does_not_replicate_and_says_what_to_do(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], clock: FakeClock
):
    fakes.exchange.add_mailbox(tenant.tenant_id, MAILBOX)
    fakes.exchange.faults.principal_lag_adds = 1000
    client = ExchangeClient(
        tenant.tenant_id,
        fakes.cloud,
        MsalTokenSource(),
        clock=clock,
        sleep=clock.sleep,
        principal_lag_seconds=20,
    )
    client.new_service_principal(tenant.app_id, tenant.sp_object_id, "POP3APP")

    with pytest.raises(ExchangePrincipalNotReplicated) as raised:
        client.add_mailbox_permission(MAILBOX, tenant.sp_object_id, ["FullAccess"])

    message = str(raised.value)
    assert tenant.sp_object_id in message and MAILBOX in message
    assert "wait a few minutes and run `pulumi up` again" in message
    assert clock.now <= 20
    assert fakes.exchange.rights(tenant.tenant_id, MAILBOX, tenant.sp_object_id) == set()


def test_add_to_a_missing_mailbox_fails_at_once(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, clock: FakeClock
):
    register(fakes, tenant)

    with pytest.raises(ExchangeNotFound):
        client.add_mailbox_permission("gone@contoso.com", tenant.sp_object_id, ["FullAccess"])
    assert clock.sleeps == []


@pytest.mark.parametrize("variant", ["empty-value", "empty-body", "204"])
def test_remove_accepts_every_success_shape_and_already_gone(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, variant: Any
):
    fakes.exchange.faults.remove_response = variant
    register(fakes, tenant)
    fakes.exchange.grant(tenant.tenant_id, MAILBOX, tenant.sp_object_id, {"FullAccess"})

    assert client.remove_mailbox_permission(MAILBOX, tenant.sp_object_id, ["FullAccess"]) is True
    assert client.remove_mailbox_permission(MAILBOX, tenant.sp_object_id, ["FullAccess"]) is False
    assert client.remove_service_principal(tenant.sp_object_id) is True
    assert client.remove_service_principal(tenant.sp_object_id) is False


def test_cas_mailbox_pop_enabled_is_a_bool(fakes: Fakes, tenant: Tenant, client: ExchangeClient):
    fakes.exchange.add_mailbox(tenant.tenant_id, "nopop@contoso.com", pop_enabled=False)

    assert client.get_cas_mailbox(MAILBOX)["PopEnabled"] is True  # type: ignore[index]
    assert client.get_cas_mailbox("nopop@contoso.com")["PopEnabled"] is False  # type: ignore[index]


@pytest.mark.parametrize("lying_gzip", [True, False])
def test_access_denied_survives_lying_gzip_and_never_shows_the_token(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, caplog: pytest.LogCaptureFixture, lying_gzip: bool
):
    fakes.exchange.faults.lying_gzip = lying_gzip
    tenant.deployer.roles = {EXCHANGE_RESOURCE: ["POP.AccessAsApp"]}
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ExchangeAccessDenied) as caught:
        client.invoke("Get-ServicePrincipal", {})

    token = MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)
    assert caught.value.status == 403
    assert "Exchange.ManageAsApp" in str(caught.value)
    for text in (str(caught.value), repr(caught.value.__dict__), caplog.text):
        assert token.split(".")[2] not in text
        assert DEPLOYER_SECRET not in text


def test_untrusted_certificate_fails_fast(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
):
    token = client._tokens.get_token(tenant.tenant_id, fakes.cloud)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")

    with pytest.raises(ExchangeError, match="TLS verification"):
        client.invoke("Get-ServicePrincipal", {})
    assert token
    assert clock.sleeps == []


def test_normalisers_cover_the_documented_variants():
    assert normalise_rights("FullAccess, ReadPermission") == ["FullAccess", "ReadPermission"]
    assert normalise_rights({"value": ["FullAccess"]}) == ["FullAccess"]
    assert normalise_rights(None) == []
    nested = {"A@odata.type": "x", "B": [{"C@odata.type": "y", "C": 1}], "@odata.context": "z"}
    assert strip_annotations(nested) == {"B": [{"C": 1}]}


@pytest.mark.parametrize("status", [404, 400, 500])
def test_get_mailbox_finds_a_mailbox_by_any_of_its_addresses_or_none(
    fakes: Fakes, tenant: Tenant, client: ExchangeClient, status: int
):
    fakes.exchange.faults.not_found_status = status
    mailbox = fakes.exchange.add_mailbox(tenant.tenant_id, "eab@contoso.de", aliases={"eab@contoso.at"})

    for identity in ("EAB@contoso.de", "eab@contoso.at", mailbox.guid):
        found = client.get_mailbox(identity)
        assert found is not None
        assert found["ExchangeGuid"] == mailbox.guid
        assert found["PrimarySmtpAddress"] == "eab@contoso.de"
    assert client.get_mailbox("nobody@contoso.de") is None
