"""The providers through the SDK's own dynamic-provider host over gRPC, as the engine drives them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.exchange.providers import MailboxPermissionProvider, ServicePrincipalRegistrationProvider
from tests.exchange.conftest import DEPLOYER_SECRET, Fakes, Tenant, principal
from tests.exchange.dynamic_host import DynamicHost, with_provider

PREFIX = "urn:pulumi:dev::pop3-oauth::pop3-oauth:tenant:Pop3Tenant$pulumi-python:dynamic/exchange:"
SP_URN = f"{PREFIX}ServicePrincipalRegistration::pop3-exchange-sp"
MAILBOXES = [f"user{index}@contoso.com" for index in range(10)]


def permission_urn(mailbox: str) -> str:
    return f"{PREFIX}MailboxPermission::pop3-fullaccess-{mailbox.lower()}"


@pytest.fixture(scope="module")
def host(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamicHost]:
    cache: Path = tmp_path_factory.mktemp("host") / "msal-token-cache.json"
    with DynamicHost(fakes.environment(cache)) as running:
        running.configure({"pop3-oauth:tenantId": "ignored", "pop3-oauth:cloud": "public"})
        yield running


def sp_inputs(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    props = {
        "tenant_id": tenant.tenant_id,
        "app_id": tenant.app_id,
        "object_id": tenant.sp_object_id,
        "display_name": "POP3APP",
        "cloud": "public",
    }
    return with_provider(ServicePrincipalRegistrationProvider(), props | changes)


def permission_inputs(tenant: Tenant, mailbox: str, **changes: Any) -> dict[str, Any]:
    props = {
        "tenant_id": tenant.tenant_id,
        "mailbox": mailbox,
        "user": tenant.sp_object_id,
        "cloud": "public",
    }
    return with_provider(MailboxPermissionProvider(), props | changes)


def test_registration_lifecycle_over_grpc(fakes: Fakes, tenant: Tenant, host: DynamicHost):
    inputs, failures = host.check(SP_URN, {}, sp_inputs(tenant))
    assert failures == []

    id_, outputs = host.create(SP_URN, inputs)
    assert id_ == tenant.sp_object_id
    assert {key: outputs[key] for key in ("app_id", "object_id", "display_name")} == {
        "app_id": tenant.app_id,
        "object_id": tenant.sp_object_id,
        "display_name": "POP3APP",
    }

    principal(fakes, tenant).display_name = "drifted"
    read_id, refreshed = host.read(SP_URN, id_, outputs)
    assert (read_id, refreshed["display_name"]) == (id_, "drifted")

    diff = host.diff(SP_URN, id_, refreshed, inputs)
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(diff.replaces) == []

    updated = host.update(SP_URN, id_, refreshed, inputs)
    assert updated["display_name"] == "POP3APP" and updated["app_id"] == tenant.app_id
    assert host.diff(SP_URN, id_, updated, inputs).changes == provider_pb2.DiffResponse.DIFF_NONE

    replace = host.diff(SP_URN, id_, updated, sp_inputs(tenant, object_id=tenant.app_object_id))
    assert list(replace.replaces) == ["object_id"] and replace.deleteBeforeReplace

    host.delete(SP_URN, id_, updated)
    host.delete(SP_URN, id_, updated)
    assert host.read(SP_URN, id_, updated) == ("", {"__provider": updated["__provider"]})


def test_permission_lifecycle_over_grpc(fakes: Fakes, tenant: Tenant, host: DynamicHost):
    mailbox = "Edi@Contoso.com"
    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.sp_object_id, "POP3APP")
    fakes.exchange.add_mailbox(tenant.tenant_id, mailbox)
    urn = permission_urn(mailbox)

    inputs, failures = host.check(urn, {}, permission_inputs(tenant, mailbox))
    assert failures == [] and inputs["access_rights"] == ["FullAccess"]
    id_, outputs = host.create(urn, inputs)
    assert outputs["access_rights"] == ["FullAccess"]
    assert fakes.exchange.rights(tenant.tenant_id, mailbox, tenant.sp_object_id) == {"FullAccess"}

    wider, _ = host.check(
        urn, inputs, permission_inputs(tenant, mailbox, access_rights=["FullAccess", "ReadPermission"])
    )
    diff = host.diff(urn, id_, outputs, wider)
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and list(diff.replaces) == []
    updated = host.update(urn, id_, outputs, wider)
    assert updated["access_rights"] == ["FullAccess", "ReadPermission"]

    fakes.exchange.revoke(tenant.tenant_id, mailbox, tenant.sp_object_id)
    read_id, _ = host.read(urn, id_, updated)
    assert read_id == ""
    host.delete(urn, id_, updated)


def test_check_failures_and_create_errors_come_back_clearly(fakes: Fakes, tenant: Tenant, host: DynamicHost):
    _, failures = host.check(SP_URN, {}, sp_inputs(tenant, object_id="not-a-guid"))
    assert [property_ for property_, _ in failures] == ["object_id"]

    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.sp_object_id, "POP3APP")
    fakes.exchange.add_mailbox(tenant.tenant_id, "nopop@contoso.com", pop_enabled=False)
    inputs, _ = host.check(
        permission_urn("nopop@contoso.com"), {}, permission_inputs(tenant, "nopop@contoso.com")
    )
    with pytest.raises(grpc.RpcError) as caught:
        host.create(permission_urn("nopop@contoso.com"), inputs)
    details = caught.value.details()
    assert "Set-CASMailbox -Identity nopop@contoso.com -PopEnabled $true" in details
    assert DEPLOYER_SECRET not in details and "eyJ" not in details


def test_serialized_providers_and_outputs_hold_no_secret(fakes: Fakes, tenant: Tenant, host: DynamicHost):
    fakes.exchange.add_mailbox(tenant.tenant_id, "edi@contoso.com")
    _, registration = host.create(SP_URN, sp_inputs(tenant))
    _, permission = host.create(
        permission_urn("edi@contoso.com"),
        permission_inputs(tenant, "edi@contoso.com", access_rights=["FullAccess"]),
    )

    for provider in (ServicePrincipalRegistrationProvider(), MailboxPermissionProvider()):
        pickled = base64.b64decode(serialize_provider(provider))
        assert DEPLOYER_SECRET.encode() not in pickled and b"eyJ" not in pickled
    for outputs in (registration, permission):
        text = json.dumps({key: value for key, value in outputs.items() if key != "__provider"})
        assert DEPLOYER_SECRET not in text and "eyJ" not in text


def test_drift_check_of_ten_mailboxes_costs_eleven_calls_and_one_token(
    fakes: Fakes, tenant: Tenant, host: DynamicHost
):
    fakes.exchange.add_service_principal(tenant.tenant_id, tenant.app_id, tenant.sp_object_id, "POP3APP")
    names = sorted({tenant.sp_object_id, tenant.app_id, "POP3APP"})
    states = [(SP_URN, tenant.sp_object_id, sp_inputs(tenant))]
    for mailbox in MAILBOXES:
        fakes.exchange.add_mailbox(tenant.tenant_id, mailbox)
        fakes.exchange.grant(tenant.tenant_id, mailbox, tenant.sp_object_id, {"FullAccess"})
        outputs = permission_inputs(tenant, mailbox, access_rights=["FullAccess"], principal_names=names)
        states.append((permission_urn(mailbox), f"{mailbox}:{tenant.sp_object_id}", outputs))
    fakes.exchange.reset_counts()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda state: host.read(*state), states))

    assert [read_id for read_id, _ in results] == [read_id for _, read_id, _ in states]
    assert fakes.exchange.counts() == {"token": 1, "InvokeCommand": 11}
