"""The resource classes under Pulumi mocks: type tokens, inputs, and a provider blob without secrets."""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from components.exchange.resources import MailboxPermission, ServicePrincipalRegistration

TENANT = "9b2f7e1a-0000-4000-8000-000000000001"
SP = "9b2f7e1a-0000-4000-8000-000000000002"


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: dict[str, pulumi.runtime.MockResourceArgs] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        self.resources[args.name] = args
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


@pytest.fixture
def mocks() -> RecordingMocks:
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, preview=False)
    return recording


@pulumi.runtime.test
def test_resources_register_with_stable_types_and_plain_inputs(mocks: RecordingMocks) -> Any:
    registration = ServicePrincipalRegistration(
        "pop3-exchange-sp", tenant_id=TENANT, app_id=SP, object_id=SP, display_name="POP3APP"
    )
    permission = MailboxPermission(
        "pop3-fullaccess-edi@contoso.com", tenant_id=TENANT, mailbox="edi@contoso.com", user=SP
    )

    def verify(values: list[Any]) -> None:
        sp = mocks.resources["pop3-exchange-sp"]
        grant = mocks.resources["pop3-fullaccess-edi@contoso.com"]
        assert sp.typ == "pulumi-python:dynamic/exchange:ServicePrincipalRegistration"
        assert grant.typ == "pulumi-python:dynamic/exchange:MailboxPermission"
        assert grant.inputs["access_rights"] == ["FullAccess"] and grant.inputs["cloud"] == "public"
        pickled = base64.b64decode(rpc.unwrap_rpc_secret(grant.inputs["__provider"]))
        assert b"components.exchange.providers" in pickled and len(pickled) < 400
        assert values == [SP, ["FullAccess"]]

    return pulumi.Output.all(registration.object_id, permission.access_rights).apply(verify)
