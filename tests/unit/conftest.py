"""Pulumi mocks that record every registration, as the engine would receive it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

from components.rotation import advance, initial_state
from components.settings import program_clock

PROJECT = "pop3-oauth"
STACK = "mueller-sanitaetshaus"
EXCHANGE_SP_OBJECT_ID = "e0000000-0000-4000-8000-00000000e0e0"
# Not the published id: proves the program takes the id from the lookup.
POP_ROLE_ID = "cb842b43-0000-4506-86fe-0000000000aa"
SECRET_SLOT = "pulumi-python:dynamic/rotation:SecretSlot"
DEPLOYING_IDENTITIES = "pulumi-python:dynamic/owners:DeployingIdentities"
DEPLOYER_OBJECT_ID = "d0000000-0000-4000-8000-0000000000d0"


def secret_value(slot: int) -> str:
    """The client secret the mock 'Entra' issues for a slot: tests search outputs for these bytes."""
    return f"Xy7~mock-secret-value-{slot}-do-not-print"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    dependencies: list[str]
    provider: str
    additional_secret_outputs: list[str]
    delete_before_replace: bool
    ignore_changes: list[str]
    state: dict[str, Any]


class RecordingMonitor(MockMonitor):
    """Keeps each RegisterResource request's options and the stack's registered outputs."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recording.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    delete_before_replace=request.deleteBeforeReplace,
                    ignore_changes=list(request.ignoreChanges),
                    state=dict(self.resources[response.urn].state) if response.urn in self.resources else {},
                )
            )
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        self.recording.reads.append((request.type, request.id, response.urn))
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.endswith(f"pulumi:pulumi:Stack::{PROJECT}-{STACK}"):
            self.recording.stack_outputs = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    registrations: list[Registration] = field(default_factory=list)
    calls: list[MockCallArgs] = field(default_factory=list)
    reads: list[tuple[str, str, str]] = field(default_factory=list)
    stack_outputs: dict[str, Any] = field(default_factory=dict)

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, args.name))
        if args.typ == "azuread:index/application:Application":
            client_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, args.name))
            outputs.update(clientId=client_id, objectId=object_id)
            return f"/applications/{object_id}", outputs
        if args.typ == "azuread:index/servicePrincipal:ServicePrincipal":
            outputs.update(objectId=object_id)
            return f"/servicePrincipals/{object_id}", outputs
        if args.typ == "azuread:index/applicationPassword:ApplicationPassword":
            slot = int(args.name.rsplit("-", 1)[1])
            outputs.update(keyId=object_id, value=secret_value(slot), startDate="2026-11-28T09:30:00Z")
            return f"{outputs['applicationId']}/password/{object_id}", outputs
        if args.typ == SECRET_SLOT:
            # What SecretSlotProvider.create computes for an app without secrets, at POP3_OAUTH_NOW.
            slot, period, force = (int(args.inputs[k]) for k in ("slot", "period_days", "force_rotation"))
            now = program_clock()
            state = advance(
                initial_state(slot, args.inputs["tenant_id"], period, force, now), period, force, now
            )
            return f"slot-{slot}", outputs | state.to_output()
        if args.typ == DEPLOYING_IDENTITIES:
            return "deploying-identities", outputs | {"identities": [args.inputs["caller"]]}
        return f"{args.name}-id", outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(args)
        if args.token == "azuread:index/getServicePrincipal:getServicePrincipal":
            return {
                "clientId": "00000002-0000-0ff1-ce00-000000000000",
                "objectId": EXCHANGE_SP_OBJECT_ID,
                "displayName": "Office 365 Exchange Online",
                "appRoleIds": {
                    "POP.AccessAsApp": POP_ROLE_ID,
                    "IMAP.AccessAsApp": "5e5addcd-3e8d-4e90-baf5-964efab2b20a",
                },
            }, []
        if args.token == "azuread:index/getClientConfig:getClientConfig":
            return {"objectId": DEPLOYER_OBJECT_ID, "clientId": "c0000000-0000-4000-8000-0000000000c0"}, []
        return {}, []

    def by_name(self, name: str) -> Registration:
        matches = [r for r in self.registrations if r.name == name]
        assert len(matches) == 1, f"{name}: {len(matches)} registrations"
        return matches[0]

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]


@pytest.fixture
def mocks() -> Iterator[RecordingMocks]:
    recording = RecordingMocks()
    # The mocks run on the thread's current event loop; an earlier test's asyncio.run() leaves none.
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(
        recording,
        project=PROJECT,
        stack=STACK,
        preview=False,
        monitor=RecordingMonitor(recording),
        organization="organization",
    )
    yield recording
    pulumi.runtime.set_all_config({})
