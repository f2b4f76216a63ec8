"""The Pop3Tenant component under Pulumi mocks: resources, properties, links, names and secrecy."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from components.rotation import Schedule, SlotState, advance, initial_state
from components.settings import AdoptedSecret, StackSettings, to_rfc3339
from components.tenant import Pop3Tenant, Pop3TenantArgs
from tests.unit.conftest import (
    DEPLOYER_OBJECT_ID,
    DEPLOYING_IDENTITIES,
    EXCHANGE_SP_OBJECT_ID,
    POP_ROLE_ID,
    SECRET_SLOT,
    STACK,
    RecordingMocks,
    secret_value,
)

TENANT = "0a1b2c3d-1111-2222-3333-444455556666"
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
COMPONENT_TYPE = "pop3-oauth:tenant:Pop3Tenant"
APP = "azuread:index/application:Application"
SP = "azuread:index/servicePrincipal:ServicePrincipal"
CONSENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
PASSWORD = "azuread:index/applicationPassword:ApplicationPassword"
AZUREAD_PROVIDER = "pulumi:providers:azuread"
EXCHANGE_SP = "pulumi-python:dynamic/exchange:ServicePrincipalRegistration"
MAILBOX_ACCESS = "pulumi-python:dynamic/exchange:MailboxAccess"

SETTINGS = StackSettings(
    tenant_id=TENANT,
    mailboxes=("EDI@mueller-sanitaetshaus.de", "eab@mueller-sanitaetshaus.de"),
    owners=("aaaaaaaa-1111-2222-3333-444455556666",),
    tags=("customer:mueller",),
)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock the SecretSlot records read (under the mocks: the mocked create)."""
    monkeypatch.setenv("POP3_OAUTH_NOW", to_rfc3339(NOW))


def expected_schedule(period_days: int = 180, force: int = 0) -> Schedule:
    """What three new SecretSlot records hold at NOW."""
    return Schedule(
        tuple(
            advance(initial_state(slot, TENANT, period_days, force, NOW), period_days, force, NOW)
            for slot in range(3)
        )
    )


def state_of(schedule: Schedule, slot: int) -> SlotState:
    return next(state for state in schedule.slots if state.slot == slot)


def deploy(
    settings: StackSettings = SETTINGS,
    now: datetime = NOW,
    check: Callable[[Pop3Tenant], Awaitable[None]] | None = None,
) -> None:
    """Declare the component under the active mocks; ``check`` runs once every output resolved."""

    @pulumi.runtime.test
    def program() -> Any:
        tenant = Pop3Tenant("pop3", Pop3TenantArgs(settings=settings, now=now, stack=STACK))

        async def resolve() -> None:
            for value in tenant.outputs.values():
                await value.future()
            if check is not None:
                await check(tenant)

        return resolve()

    program()


def test_declares_exactly_the_resources_of_the_manual_guide(mocks: RecordingMocks) -> None:
    deploy()
    declared = sorted((r.type, r.name) for r in mocks.registrations)
    assert declared == sorted(
        [
            (COMPONENT_TYPE, "pop3"),
            (AZUREAD_PROVIDER, "pop3-azuread"),
            (APP, "pop3-app"),
            (SP, "pop3-sp"),
            (CONSENT, "pop3-pop-consent"),
            (PASSWORD, "pop3-secret-0"),
            (PASSWORD, "pop3-secret-1"),
            (PASSWORD, "pop3-secret-2"),
            (SECRET_SLOT, "pop3-secret-slot-0"),
            (SECRET_SLOT, "pop3-secret-slot-1"),
            (SECRET_SLOT, "pop3-secret-slot-2"),
            (EXCHANGE_SP, "pop3-exchange-sp"),
            (DEPLOYING_IDENTITIES, "pop3-deployers"),
            (MAILBOX_ACCESS, "pop3-mailbox-access"),
        ]
    )
    assert len({r.urn for r in mocks.registrations}) == len(mocks.registrations)


def test_every_child_hangs_under_the_component_and_entra_objects_use_the_tenant_provider(
    mocks: RecordingMocks,
) -> None:
    deploy()
    component = mocks.by_name("pop3")
    provider = mocks.by_name("pop3-azuread")
    assert provider.inputs["tenantId"] == TENANT
    assert provider.inputs["environment"] == "global"
    for registration in mocks.registrations:
        if registration is component:
            continue
        assert registration.parent == component.urn, registration.name
        if registration.type.startswith("azuread:"):
            assert registration.provider.startswith(provider.urn + "::"), registration.name
    (lookup,) = [c for c in mocks.calls if c.token == "azuread:index/getServicePrincipal:getServicePrincipal"]
    assert lookup.args["clientId"] == "00000002-0000-0ff1-ce00-000000000000"
    assert lookup.provider is not None and lookup.provider.startswith(provider.urn)
    assert not [
        r
        for r in mocks.registrations
        if r.inputs.get("clientId") == "00000002-0000-0ff1-ce00-000000000000" and r.type == SP
    ], "Microsoft's Exchange Online service principal must never be managed"


def test_application_requests_pop_access_as_app_for_this_organisation_only(mocks: RecordingMocks) -> None:
    deploy()
    app = mocks.by_name("pop3-app").inputs
    assert app["displayName"] == "POP3APP"
    assert app["signInAudience"] == "AzureADMyOrg"
    assert app["requiredResourceAccesses"] == [
        {
            "resourceAppId": "00000002-0000-0ff1-ce00-000000000000",
            "resourceAccesses": [{"id": POP_ROLE_ID, "type": "Role"}],
        }
    ]
    assert app["owners"] == [*SETTINGS.owners, DEPLOYER_OBJECT_ID]
    assert mocks.by_name("pop3-sp").inputs["owners"] == app["owners"]
    assert set(app["tags"]) == {"pop3-oauth", f"pop3-oauth-stack:{STACK}", "customer:mueller"}
    assert f"stack {STACK}" in app["notes"]
    assert app["preventDuplicateNames"] is True


def test_without_deployers_owning_the_app_only_the_configured_owners_are_declared(
    mocks: RecordingMocks,
) -> None:
    deploy(dataclasses.replace(SETTINGS, deployers_own_app=False))
    assert mocks.by_name("pop3-app").inputs["owners"] == list(SETTINGS.owners)
    assert mocks.of_type(DEPLOYING_IDENTITIES) == []


def test_a_second_app_of_the_same_name_is_allowed_only_on_purpose(mocks: RecordingMocks) -> None:
    deploy(dataclasses.replace(SETTINGS, allow_duplicate_app_name=True))
    assert mocks.by_name("pop3-app").inputs["preventDuplicateNames"] is False


def test_service_principal_consent_and_exchange_objects_are_linked_by_the_right_ids(
    mocks: RecordingMocks,
) -> None:
    deploy()
    app = mocks.by_name("pop3-app")
    sp = mocks.by_name("pop3-sp")
    app_client_id = app.state["clientId"]
    app_object_id = app.state["objectId"]
    sp_object_id = sp.state["objectId"]
    assert sp.inputs["clientId"] == app_client_id
    consent = mocks.by_name("pop3-pop-consent").inputs
    assert consent == {
        "appRoleId": POP_ROLE_ID,
        "principalObjectId": sp_object_id,
        "resourceObjectId": EXCHANGE_SP_OBJECT_ID,
    }
    registration = mocks.by_name("pop3-exchange-sp").inputs
    assert registration["app_id"] == app_client_id
    assert registration["object_id"] == sp_object_id != app_object_id
    assert registration["tenant_id"] == TENANT
    assert registration["display_name"] == "POP3APP"
    access = mocks.by_name("pop3-mailbox-access").inputs
    assert access["mailboxes"] == list(SETTINGS.mailboxes)
    assert access["user"] == sp_object_id
    assert access["app_id"] == app_client_id
    assert access["access_rights"] == ["FullAccess"]
    assert access["tenant_id"] == TENANT


def test_destroy_order_is_permissions_then_registration_then_entra_objects(mocks: RecordingMocks) -> None:
    deploy()
    registration = mocks.by_name("pop3-exchange-sp")
    entra = {mocks.by_name(n).urn for n in ("pop3-app", "pop3-sp", "pop3-pop-consent", "pop3-secret-0")}
    assert entra <= set(registration.dependencies)
    for permission in mocks.of_type(MAILBOX_ACCESS):
        assert registration.urn in permission.dependencies
        assert mocks.by_name("pop3-sp").urn in permission.dependencies


def test_secrets_take_their_arguments_from_their_slot_record(mocks: RecordingMocks) -> None:
    deploy()
    schedule = expected_schedule()
    app = mocks.by_name("pop3-app")
    for state in schedule.slots:
        record = mocks.by_name(f"pop3-secret-slot-{state.slot}")
        assert record.inputs["slot"] == state.slot
        assert record.inputs["period_days"] == 180
        assert record.inputs["force_rotation"] == 0
        assert record.inputs["tenant_id"] == TENANT
        assert record.inputs["application_object_id"] == app.state["objectId"]
        password = mocks.by_name(f"pop3-secret-{state.slot}")
        assert password.inputs["applicationId"] == f"/applications/{app.state['objectId']}"
        assert password.inputs["endDate"] == state.end_date == to_rfc3339(state.expires_at)
        assert password.inputs["displayName"] == state.display_name
        assert "rotateWhenChanged" not in password.inputs
        assert "startDate" not in password.inputs
        assert "value" in password.additional_secret_outputs
        # Renewal deletes first (the due slot's secret expires then; a forced one must revoke), and the
        # first release's rotateWhenChanged never forces a replacement.
        assert password.delete_before_replace
        assert password.ignore_changes == ["rotateWhenChanged"]
        assert record.urn in password.dependencies


def test_outputs_carry_what_the_erp_needs_and_secrets_stay_secret(mocks: RecordingMocks) -> None:
    schedule = expected_schedule()

    async def check(tenant: Pop3Tenant) -> None:
        values = {name: await output.future() for name, output in tenant.outputs.items()}
        secret = {name: await output.is_secret() for name, output in tenant.outputs.items()}
        assert {name for name, is_secret in secret.items() if is_secret} == {"clientSecret", "conceptOffice"}
        assert values["tenantId"] == TENANT
        assert values["clientSecret"] == secret_value(schedule.newest.slot)
        assert values["clientSecretExpiresAt"] == to_rfc3339(schedule.newest.expires_at)
        assert values["nextSecretRotationAt"] == to_rfc3339(schedule.next_rotation_at)
        assert values["mailboxes"] == list(SETTINGS.mailboxes)
        assert values["pop3Host"] == "outlook.office365.com"
        assert values["pop3Port"] == 995
        assert values["tokenEndpoint"] == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
        assert values["tokenScope"] == "https://outlook.office365.com/.default"
        assert values["conceptOffice"] == {
            "tenantId": TENANT,
            "clientId": values["clientId"],
            "clientSecret": values["clientSecret"],
            "pop3Host": "outlook.office365.com",
            "pop3Port": 995,
            "useTls": True,
            "mailboxes": list(SETTINGS.mailboxes),
        }
        listed = values["secrets"]
        assert listed is not None
        assert [s["slot"] for s in listed] == [0, 1, 2]
        statuses = {s["slot"]: s["status"] for s in listed}
        assert statuses == {state.slot: schedule.status(state.slot) for state in schedule.slots}
        assert sorted(statuses.values()) == ["current", "previous", "retiring"]
        assert statuses[schedule.newest.slot] == "current"
        assert all(s["managed"] and s["keyId"] and s["expiresAt"] for s in listed)
        plain = json.dumps({k: v for k, v in values.items() if not secret[k]})
        assert "mock-secret-value" not in plain

    deploy(check=check)


def test_no_secret_bytes_in_any_dynamic_resource_or_its_pickled_provider(mocks: RecordingMocks) -> None:
    deploy()
    dynamic = [
        *mocks.of_type(EXCHANGE_SP),
        *mocks.of_type(MAILBOX_ACCESS),
        *mocks.of_type(SECRET_SLOT),
        *mocks.of_type(DEPLOYING_IDENTITIES),
    ]
    assert len(dynamic) == 1 + 1 + 3 + 1
    for registration in dynamic:
        blob = rpc.unwrap_rpc_secret(registration.inputs["__provider"])
        pickled = base64.b64decode(blob)
        plain = json.dumps({k: v for k, v in registration.inputs.items() if k != "__provider"}).encode()
        for slot in range(3):
            assert secret_value(slot).encode() not in pickled
            assert secret_value(slot).encode() not in plain


def test_adopted_secrets_are_reported_until_they_expire(mocks: RecordingMocks) -> None:
    live = AdoptedSecret("6f1c2a3b-0000-4000-8000-1234567890ab", NOW + timedelta(days=30), "by hand")
    expired = AdoptedSecret("7f1c2a3b-0000-4000-8000-1234567890ab", NOW - timedelta(days=1), "old")
    settings = StackSettings(tenant_id=TENANT, mailboxes=("edi@contoso.de",), adopted_secrets=(live, expired))

    async def check(tenant: Pop3Tenant) -> None:
        secrets = await tenant.outputs["secrets"].future()
        assert secrets is not None
        unmanaged = [s for s in secrets if not s["managed"]]
        assert unmanaged == [
            {
                "keyId": live.key_id,
                "displayName": "by hand",
                "slot": None,
                "createdAt": None,
                "expiresAt": to_rfc3339(live.expires_at),
                "managed": False,
                "status": "adopted",
            }
        ]

    deploy(settings, check=check)
    assert len(mocks.of_type(PASSWORD)) == 3


@pytest.mark.parametrize(
    ("cloud", "pop3_host", "authority", "environment"),
    [
        ("usgovernment", "outlook.office365.us", "https://login.microsoftonline.us", "usgovernment"),
        ("china", "partner.outlook.cn", "https://login.chinacloudapi.cn", "china"),
    ],
)
def test_outputs_follow_the_cloud(
    mocks: RecordingMocks, cloud: str, pop3_host: str, authority: str, environment: str
) -> None:
    settings = StackSettings(tenant_id=TENANT, mailboxes=("edi@contoso.de",), cloud=cloud)

    async def check(tenant: Pop3Tenant) -> None:
        assert await tenant.outputs["pop3Host"].future() == pop3_host
        assert await tenant.outputs["tokenEndpoint"].future() == f"{authority}/{TENANT}/oauth2/v2.0/token"
        assert await tenant.outputs["tokenScope"].future() == f"https://{pop3_host}/.default"

    deploy(settings, check=check)
    assert mocks.by_name("pop3-azuread").inputs["environment"] == environment
    assert mocks.by_name("pop3-exchange-sp").inputs["cloud"] == cloud


def test_period_and_force_rotation_reach_every_slot_record(mocks: RecordingMocks) -> None:
    settings = StackSettings(
        tenant_id=TENANT, mailboxes=("edi@contoso.de",), secret_rotation_days=30, force_rotation=2
    )
    deploy(settings)
    schedule = expected_schedule(30, 2)
    for state in schedule.slots:
        record = mocks.by_name(f"pop3-secret-slot-{state.slot}")
        assert (record.inputs["period_days"], record.inputs["force_rotation"]) == (30, 2)
        assert mocks.by_name(f"pop3-secret-{state.slot}").inputs["displayName"] == state.display_name
        assert state.display_name.endswith("reissue 2")


def test_a_missing_pop_role_fails_with_a_clear_message(
    mocks: RecordingMocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = mocks.call

    def without_role(args: Any) -> Any:
        result, failures = original(args)
        only_imap = {"IMAP.AccessAsApp": "5e5addcd-3e8d-4e90-baf5-964efab2b20a"}
        return {**result, "appRoleIds": only_imap}, failures

    monkeypatch.setattr(mocks, "call", without_role)
    with pytest.raises(Exception, match=r"offers no POP\.AccessAsApp app role"):
        deploy()


def test_a_lookup_without_any_app_roles_falls_back_to_the_published_role_id(
    mocks: RecordingMocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = mocks.call
    monkeypatch.setattr(
        mocks, "call", lambda args: ({}, []) if args.token.endswith("getServicePrincipal") else original(args)
    )
    deploy()
    accesses = mocks.by_name("pop3-app").inputs["requiredResourceAccesses"]
    assert accesses[0]["resourceAccesses"] == [{"id": "cb842b43-da6e-4506-86fe-bb12199c656d", "type": "Role"}]
    assert mocks.by_name("pop3-pop-consent").inputs["appRoleId"] == "cb842b43-da6e-4506-86fe-bb12199c656d"
