"""The providers' contract, called in-process against the fakes (the host tests repeat it over gRPC)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown

from components.exchange.providers import (
    PRINCIPAL_LAG_ENV,
    ExchangeProviderError,
    MailboxPermissionProvider,
    ServicePrincipalRegistrationProvider,
    principal_lag_seconds,
)
from mscloud.auth import shared_token_source
from tests.exchange.conftest import DEPLOYER_SECRET, Fakes, Tenant, principal

MAILBOX = "Edi@Contoso.com"


@pytest.fixture
def registration() -> ServicePrincipalRegistrationProvider:
    return ServicePrincipalRegistrationProvider()


@pytest.fixture
def permission() -> MailboxPermissionProvider:
    return MailboxPermissionProvider()


def sp_inputs(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "app_id": tenant.app_id,
        "object_id": tenant.sp_object_id,
        "display_name": "POP3APP",
        "cloud": "public",
    } | changes


def permission_inputs(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "mailbox": MAILBOX,
        "user": tenant.sp_object_id,
        "access_rights": ["FullAccess"],
        "cloud": "public",
    } | changes


def test_check_rejects_malformed_inputs_without_remote_calls(
    fakes: Fakes,
    tenant: Tenant,
    registration: ServicePrincipalRegistrationProvider,
    permission: MailboxPermissionProvider,
):
    bad_sp = sp_inputs(tenant, app_id="POP3APP", object_id="", display_name=" ", cloud="mars")
    bad_permission = permission_inputs(tenant, mailbox="edi", user="x", access_rights=["FullAcess"])

    sp_failures = {failure.property for failure in registration.check({}, bad_sp).failures}
    permission_failures = permission.check({}, bad_permission).failures

    assert sp_failures == {"app_id", "object_id", "display_name", "cloud"}
    assert {failure.property for failure in permission_failures} == {"mailbox", "user", "access_rights"}
    assert any("FullAcess" in failure.reason for failure in permission_failures)
    assert fakes.exchange.counts() == {"token": 0, "InvokeCommand": 0}


def test_check_accepts_unknowns_and_canonicalises_rights(
    tenant: Tenant, permission: MailboxPermissionProvider
):
    result = permission.check(
        {}, permission_inputs(tenant, user=Unknown(), access_rights=["readpermission", "FULLACCESS"])
    )

    assert result.failures == []
    assert result.inputs["access_rights"] == ["FullAccess", "ReadPermission"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.dictionaries(
        st.sampled_from(["tenant_id", "mailbox", "user", "access_rights", "cloud"]),
        st.text() | st.none() | st.lists(st.text()),
    )
)
def test_check_never_raises(permission: MailboxPermissionProvider, news: dict[str, Any]):
    result = permission.check({}, news)

    assert all(failure.reason for failure in result.failures)


def test_diff_shows_drift_and_replaces_immutable_keys(
    tenant: Tenant, registration: ServicePrincipalRegistrationProvider, permission: MailboxPermissionProvider
):
    outputs = sp_inputs(tenant)

    assert (
        registration.diff("id", outputs, sp_inputs(tenant, object_id=tenant.sp_object_id.upper())).changes
        is False
    )
    renamed = registration.diff("id", outputs | {"display_name": "renamed out of band"}, sp_inputs(tenant))
    assert (renamed.changes, renamed.replaces) == (True, [])
    moved = registration.diff("id", outputs, sp_inputs(tenant, app_id=tenant.app_object_id))
    assert (moved.replaces, moved.delete_before_replace) == (["app_id"], True)
    assert registration.diff("id", outputs, sp_inputs(tenant, object_id=Unknown())).replaces == ["object_id"]

    granted = permission_inputs(tenant)
    assert permission.diff("id", granted, permission_inputs(tenant, mailbox=MAILBOX.lower())).changes is False
    widened = permission.diff(
        "id", granted, permission_inputs(tenant, access_rights=["FullAccess", "ReadPermission"])
    )
    assert (widened.changes, widened.replaces) == (True, [])
    assert permission.diff(
        "id", granted, permission_inputs(tenant, mailbox="other@contoso.com")
    ).replaces == ["mailbox"]


def test_registration_lifecycle(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], registration: ServicePrincipalRegistrationProvider
):
    created = registration.create(sp_inputs(tenant))
    assert created.id == tenant.sp_object_id
    assert created.outs == sp_inputs(tenant)

    principal(fakes, tenant).display_name = "changed by hand"
    read = registration.read(created.id, created.outs or {})
    assert read.outs and read.outs["display_name"] == "changed by hand"
    assert read.inputs is None
    assert registration.diff(created.id, read.outs, sp_inputs(tenant)).changes is True

    updated = registration.update(
        created.id, read.outs, sp_inputs(tenant, display_name="POP3 (Concept Office)")
    )
    assert updated.outs == sp_inputs(tenant, display_name="POP3 (Concept Office)")
    assert principal(fakes, tenant).display_name == "POP3 (Concept Office)"

    registration.delete(created.id, updated.outs or {})
    assert fakes.exchange.service_principal(tenant.tenant_id, tenant.sp_object_id) is None
    registration.delete(created.id, updated.outs or {})
    assert registration.read(created.id, updated.outs or {}).id is None


def test_registration_create_adopts_a_matching_object(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], registration: ServicePrincipalRegistrationProvider
):
    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.sp_object_id, "POP3APP")

    created = registration.create(sp_inputs(tenant))

    assert created.outs == sp_inputs(tenant)
    assert "New-ServicePrincipal" not in fakes.exchange.cmdlets


def test_registration_under_the_app_registrations_object_id_is_explained(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], registration: ServicePrincipalRegistrationProvider
):
    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.app_object_id, "POP3APP")

    with pytest.raises(ExchangeProviderError, match="app registration's object id") as caught:
        registration.create(sp_inputs(tenant))
    assert f"Remove-ServicePrincipal -Identity {tenant.app_object_id}" in str(caught.value)


def test_registration_recreated_with_another_id_reads_as_gone_and_is_not_deleted(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], registration: ServicePrincipalRegistrationProvider
):
    created = registration.create(sp_inputs(tenant))
    fakes.exchange.recreate_service_principal(tenant.tenant_id, tenant.sp_object_id, tenant.app_object_id)

    assert registration.read(created.id, created.outs or {}).outs == {}
    registration.delete(created.id, created.outs or {})
    assert fakes.exchange.service_principal(tenant.tenant_id, tenant.app_object_id) is not None


@pytest.mark.parametrize(
    ("pop_enabled", "message"),
    [
        (None, "does not exist in tenant"),
        (False, "Set-CASMailbox -Identity Edi@Contoso.com -PopEnabled \\$true"),
    ],
)
def test_permission_create_requires_a_pop_enabled_mailbox(
    fakes: Fakes,
    tenant: Tenant,
    arm_env: dict[str, str],
    permission: MailboxPermissionProvider,
    pop_enabled: bool | None,
    message: str,
):
    if pop_enabled is not None:
        fakes.exchange.add_mailbox(tenant.tenant_id, MAILBOX, pop_enabled=pop_enabled)

    with pytest.raises(ExchangeProviderError, match=message):
        permission.create(permission_inputs(tenant))
    assert "Add-MailboxPermission" not in fakes.exchange.cmdlets


def test_permission_lifecycle(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], permission: MailboxPermissionProvider
):
    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.sp_object_id, "POP3APP")
    fakes.exchange.add_mailbox(tenant.tenant_id, MAILBOX)
    fakes.exchange.faults.replication_lag_reads = 2

    created = permission.create(permission_inputs(tenant))
    assert created.id == f"{MAILBOX}:{tenant.sp_object_id}".lower()
    assert created.outs and created.outs["access_rights"] == ["FullAccess"]

    fakes.exchange.faults.permission_user = "object_id"
    fakes.exchange.grant(tenant.tenant_id, MAILBOX, tenant.sp_object_id, {"ReadPermission"})
    read = permission.read(created.id, created.outs)
    assert read.outs and read.outs["access_rights"] == ["FullAccess", "ReadPermission"]
    assert permission.diff(created.id, read.outs, permission_inputs(tenant)).changes is True

    updated = permission.update(created.id, read.outs, permission_inputs(tenant))
    assert updated.outs and updated.outs["access_rights"] == ["FullAccess"]
    assert fakes.exchange.rights(tenant.tenant_id, MAILBOX, tenant.sp_object_id) == {"FullAccess"}

    fakes.exchange.revoke(tenant.tenant_id, MAILBOX, tenant.sp_object_id)
    assert permission.read(created.id, updated.outs).id is None
    permission.delete(created.id, updated.outs)


def test_permission_create_adopts_an_existing_grant(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], permission: MailboxPermissionProvider
):
    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.sp_object_id, "POP3APP")
    fakes.exchange.add_mailbox(tenant.tenant_id, MAILBOX)
    fakes.exchange.grant(tenant.tenant_id, MAILBOX, tenant.sp_object_id, {"FullAccess"})

    created = permission.create(permission_inputs(tenant))

    assert created.outs and created.outs["access_rights"] == ["FullAccess"]
    assert "Add-MailboxPermission" not in fakes.exchange.cmdlets


def test_pickled_providers_and_outputs_hold_no_secret_or_token(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], registration: ServicePrincipalRegistrationProvider
):
    created = registration.create(sp_inputs(tenant))
    token = shared_token_source().get_token(tenant.tenant_id, fakes.cloud)

    for provider in (registration, MailboxPermissionProvider()):
        pickled = base64.b64decode(serialize_provider(provider))
        assert DEPLOYER_SECRET.encode() not in pickled
        assert token.encode() not in pickled and token.split(".")[2].encode() not in pickled
        assert len(pickled) < 400
    assert token not in json.dumps(created.outs) and DEPLOYER_SECRET not in json.dumps(created.outs)


def test_principal_lag_bound_comes_from_the_environment_or_is_120_seconds():
    assert principal_lag_seconds({}) == 120
    assert principal_lag_seconds({PRINCIPAL_LAG_ENV: " 3.5 "}) == 3.5
    for wrong in ("soon", "-1", "nan"):
        with pytest.raises(ExchangeProviderError, match=PRINCIPAL_LAG_ENV):
            principal_lag_seconds({PRINCIPAL_LAG_ENV: wrong})
