"""The azuread stand-in's provider methods, driven directly against the Entra and Graph fakes over HTTPS."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from google.protobuf import empty_pb2, struct_pb2
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.provider import (
    CheckRequest,
    ConfigureRequest,
    CreateRequest,
    DeleteRequest,
    DiffRequest,
    InvokeRequest,
    PropertyDiffKind,
    ReadRequest,
    UpdateRequest,
)
from pulumi.runtime import proto
from pulumi.runtime.proto import provider_pb2_grpc
from pulumi.runtime.rpc import UNKNOWN as UNKNOWN_SENTINEL

from sandbox.entra import EntraFake
from sandbox.graph import ASSIGN_ALL, EXCHANGE_ONLINE_APP_ID, POP_ROLE_ID, READ_ALL, WRITE_ALL, GraphFake
from sandbox.tls import HttpsServer, TestCertificates, make_certificates
from tests.engine.azuread import application_password
from tests.engine.azuread.common import CONSISTENT_READS, StandInError
from tests.engine.azuread.graph import AuthenticationError, GraphError, Timing, WaitTimeout
from tests.engine.azuread.provider import VERSION, AzureAdStandIn
from tests.engine.azuread.values import UNKNOWN, plain_map, property_map

APPLICATION = "azuread:index/application:Application"
SERVICE_PRINCIPAL = "azuread:index/servicePrincipal:ServicePrincipal"
ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
PASSWORD = "azuread:index/applicationPassword:ApplicationPassword"
GET_SERVICE_PRINCIPAL = "azuread:index/getServicePrincipal:getServicePrincipal"
LAUNCHER = Path(__file__).with_name("pulumi-resource-azuread")
POP_ACCESS = [
    {
        "resourceAppId": EXCHANGE_ONLINE_APP_ID,
        "resourceAccesses": [{"id": POP_ROLE_ID, "type": "Role"}],
    }
]


@dataclass(frozen=True)
class Servers:
    certificates: TestCertificates
    entra: EntraFake
    graph: GraphFake
    metadata_host: str


@dataclass
class Tenant:
    """A fresh tenant with a deploying app (the caller) and the provider configured for it."""

    tenant_id: str
    client_id: str
    secret: str
    caller: str
    exchange_online: str
    environ: dict[str, str]
    graph: GraphFake
    provider: AzureAdStandIn
    sleeps: list[float]

    def check(self, token: str, inputs: dict[str, Any], olds: dict[str, Any] | None = None):
        response = run(
            self.provider.check(CheckRequest(urn(token), property_map(olds or {}), property_map(inputs), b""))
        )
        return plain_map(response.inputs or {}), [(f.property, f.reason) for f in response.failures or []]

    def create(self, token: str, inputs: dict[str, Any], *, preview: bool = False):
        checked, failures = self.check(token, inputs)
        assert failures == []
        response = run(self.provider.create(CreateRequest(urn(token), property_map(checked), 0, preview)))
        return response.resource_id, response.properties

    def read(self, token: str, resource_id: str, state: dict[str, PropertyValue], inputs: dict[str, Any]):
        response = run(self.provider.read(ReadRequest(urn(token), resource_id, state, property_map(inputs))))
        return response.resource_id, response.properties, response.inputs

    def diff(self, token: str, outputs: dict[str, PropertyValue], inputs: dict[str, Any], ignore=()):
        checked, failures = self.check(token, inputs)
        assert failures == []
        return run(
            self.provider.diff(DiffRequest(urn(token), "id", outputs, property_map(checked), list(ignore)))
        )

    def update(self, token: str, resource_id: str, outputs: dict[str, PropertyValue], inputs: dict[str, Any]):
        checked, _ = self.check(token, inputs)
        request = UpdateRequest(
            urn(token),
            resource_id,
            outputs,
            property_map(checked),
            timeout=0,
            ignore_changes=[],
            preview=False,
        )
        return run(self.provider.update(request)).properties

    def delete(self, token: str, resource_id: str, outputs: dict[str, PropertyValue]) -> None:
        run(self.provider.delete(DeleteRequest(urn(token), resource_id, outputs, 0)))

    def invoke(self, args: dict[str, Any]):
        return run(self.provider.invoke(InvokeRequest(GET_SERVICE_PRINCIPAL, property_map(args))))

    def application(self, **overrides: Any):
        inputs = {
            "displayName": "POP3APP",
            "notes": "Managed by Pulumi",
            "tags": ["pop3-oauth", "pop3-oauth-stack:test"],
            "requiredResourceAccesses": POP_ACCESS,
            **overrides,
        }
        return self.create(APPLICATION, inputs)

    def writes(self) -> list[tuple[str, str]]:
        return [(write.method, write.path) for write in self.graph.writes]


def run(coroutine):
    return asyncio.run(coroutine)


def urn(token: str, name: str = "it") -> str:
    return f"urn:pulumi:test::pop3-oauth::{token}::{name}"


def plain(properties: dict[str, PropertyValue]) -> dict[str, Any]:
    return plain_map(properties)


def configure(provider: AzureAdStandIn, **config: Any) -> None:
    run(provider.configure(ConfigureRequest({}, property_map(config), True, False)))


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    certificates = make_certificates(tmp_path_factory.mktemp("standin-tls"))
    entra = EntraFake()
    graph = GraphFake(entra)
    with (
        HttpsServer(entra.handle, certificates) as entra_server,
        HttpsServer(graph.handle, certificates) as server,
    ):
        entra.base_url = entra_server.base_url
        graph.base_url = server.base_url
        yield Servers(certificates, entra, graph, f"127.0.0.1:{server.port}")


@pytest.fixture
def tenant(servers: Servers) -> Tenant:
    servers.graph.faults.throttle_next = 0
    servers.graph.faults.consistency_reads = 0
    servers.graph.faults.consistency_methods = frozenset({"GET"})
    servers.graph.writes.clear()
    tenant_id = str(uuid.uuid4())
    exchange_online = servers.graph.seed_tenant(tenant_id)
    client_id, secret = str(uuid.uuid4()), "deployer-" + secrets.token_hex(12)
    deployer = servers.entra.add_app(
        tenant_id,
        client_id,
        secrets={secret: None},
        roles={servers.graph.base_url: [WRITE_ALL, ASSIGN_ALL]},
    )
    environ = {
        "ARM_CLIENT_ID": client_id,
        "ARM_CLIENT_SECRET": secret,
        "ARM_METADATA_HOSTNAME": servers.metadata_host,
        "REQUESTS_CA_BUNDLE": str(servers.certificates.ca_bundle),
    }
    sleeps: list[float] = []
    provider = AzureAdStandIn(
        environ=environ, timing=Timing(poll_seconds=0.0, wait_seconds=5.0), sleep=sleeps.append
    )
    configure(provider, tenantId=tenant_id, environment="global", version=VERSION)
    return Tenant(
        tenant_id,
        client_id,
        secret,
        deployer.object_id,
        exchange_online.object_id,
        environ,
        servers.graph,
        provider,
        sleeps,
    )


# -- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"ARM_CLIENT_ID": "c"}, "ARM_CLIENT_SECRET is not set"),
        ({"ARM_CLIENT_SECRET": "s", "ARM_USE_CLI": "true"}, "ARM_CLIENT_ID is not set. useCli (ARM_USE_CLI)"),
        (
            {"ARM_CLIENT_ID": "c", "ARM_CLIENT_SECRET": "s", "ARM_CLIENT_CERTIFICATE_PATH": "/x.pfx"},
            "certificate",
        ),
    ],
)
def test_only_client_secret_credentials_are_supported(environ, expected):
    with pytest.raises(StandInError) as raised:
        configure(AzureAdStandIn(environ=environ), tenantId=str(uuid.uuid4()))

    message = str(raised.value)
    assert "supports only client-secret authentication" in message
    assert "ARM_CLIENT_ID and ARM_CLIENT_SECRET" in message
    assert expected in message


def test_tenant_comes_from_arm_tenant_id_when_not_configured(tenant: Tenant):
    provider = AzureAdStandIn(
        environ={**tenant.environ, "ARM_TENANT_ID": tenant.tenant_id}, timing=Timing(0, 5)
    )
    configure(provider)

    found = run(
        provider.invoke(
            InvokeRequest(GET_SERVICE_PRINCIPAL, property_map({"clientId": EXCHANGE_ONLINE_APP_ID}))
        )
    )

    assert plain(found.return_value or {})["objectId"] == tenant.exchange_online


def test_endpoints_come_from_the_metadata_host(tenant: Tenant):
    before = tenant.graph.requests["/metadata/endpoints"]

    tenant.invoke({"clientId": EXCHANGE_ONLINE_APP_ID})

    assert tenant.graph.requests["/metadata/endpoints"] == before + 1


def test_a_wrong_secret_fails_with_entras_error_and_never_the_secret(tenant: Tenant):
    wrong = "wrong-" + secrets.token_hex(12)
    provider = AzureAdStandIn(environ={**tenant.environ, "ARM_CLIENT_SECRET": wrong}, timing=Timing(0, 5))
    configure(provider, tenantId=tenant.tenant_id)

    with pytest.raises(AuthenticationError) as raised:
        run(
            provider.invoke(
                InvokeRequest(GET_SERVICE_PRINCIPAL, property_map({"clientId": EXCHANGE_ONLINE_APP_ID}))
            )
        )

    assert "AADSTS7000215" in str(raised.value)
    assert wrong not in str(raised.value)


# -- check and diff ---------------------------------------------------------------------------------------


def test_check_fills_defaults_and_validates_like_upstream(tenant: Tenant):
    inputs, failures = tenant.check(APPLICATION, {"displayName": "POP3APP"})
    assert inputs["signInAudience"] == "AzureADMyOrg"
    assert inputs["preventDuplicateNames"] is False
    assert failures == []

    _, failures = tenant.check(APPLICATION, {"owners": ["not-a-guid"], "web": {}, "signInAudience": "Mine"})
    reasons = dict(failures)
    assert "displayName" in reasons
    assert "UUID" in reasons["owners"]
    assert "not implemented by the azuread stand-in" in reasons["web"]
    assert "AzureADMyOrg" in reasons["signInAudience"]

    _, failures = tenant.check(
        PASSWORD, {"applicationId": str(uuid.uuid4()), "endDate": "28.11.2026", "endDateRelative": "240h"}
    )
    by_key: dict[str, list[str]] = {}
    for key, reason in failures:
        by_key.setdefault(key, []).append(reason)
    assert "/applications/{objectId}" in by_key["applicationId"][0]
    assert ["RFC 3339" in r for r in by_key["endDate"]] == [True, False]
    assert "conflicts with `endDateRelative`" in by_key["endDate"][1]

    _, failures = tenant.check(
        ASSIGNMENT, {"appRoleId": "x", "principalObjectId": UNKNOWN, "resourceObjectId": None}
    )
    assert [name for name, _ in failures] == ["appRoleId", "resourceObjectId"]

    inputs, _ = tenant.check(SERVICE_PRINCIPAL, {"clientId": str(uuid.uuid4())})
    assert inputs["accountEnabled"] is True


def test_diff_compares_stored_outputs_with_new_inputs(tenant: Tenant):
    app_id, outputs = tenant.application()
    same = {"displayName": "POP3APP", "notes": "Managed by Pulumi", "requiredResourceAccesses": POP_ACCESS}

    unchanged = tenant.diff(APPLICATION, outputs, {**same, "tags": ["pop3-oauth-stack:test", "pop3-oauth"]})
    omitted_tags = tenant.diff(APPLICATION, outputs, same)
    renamed = tenant.diff(APPLICATION, outputs, {**same, "displayName": "POP3 app", "notes": None})
    ignored = tenant.diff(APPLICATION, outputs, {**same, "displayName": "POP3 app"}, ignore=["displayName"])

    assert unchanged.changes is False
    assert omitted_tags.changes is False, (
        "tags is Optional+Computed upstream: omitting it keeps the live value"
    )
    assert renamed.changes is True
    assert renamed.replaces == []
    assert renamed.delete_before_replace is False
    assert {key: diff.kind for key, diff in renamed.detailed_diff.items()} == {
        "displayName": PropertyDiffKind.UPDATE,
        "notes": PropertyDiffKind.DELETE,
    }
    assert ignored.changes is False
    assert app_id.startswith("/applications/")


def test_force_new_arguments_replace(tenant: Tenant):
    def outputs(values: dict[str, Any]) -> dict[str, PropertyValue]:
        return property_map(values)

    principal = {
        "clientId": str(uuid.uuid4()),
        "accountEnabled": True,
        "notes": "a",
        "owners": [],
        "tags": [],
    }
    moved = tenant.diff(SERVICE_PRINCIPAL, outputs(principal), {**principal, "clientId": str(uuid.uuid4())})
    noted = tenant.diff(SERVICE_PRINCIPAL, outputs(principal), {**principal, "notes": "b"})
    assert moved.replaces == ["clientId"]
    assert moved.detailed_diff["clientId"].kind is PropertyDiffKind.UPDATE_REPLACE
    assert noted.replaces == []

    assignment = {
        "appRoleId": POP_ROLE_ID,
        "principalObjectId": str(uuid.uuid4()),
        "resourceObjectId": str(uuid.uuid4()),
    }
    for name in assignment:
        diff = tenant.diff(ASSIGNMENT, outputs(assignment), {**assignment, name: str(uuid.uuid4())})
        assert diff.replaces == [name]

    password = {
        "applicationId": f"/applications/{uuid.uuid4()}",
        "displayName": "slot 0",
        "endDate": "2026-11-28T00:00:00Z",
        "startDate": "2026-05-28T00:00:00Z",
        "rotateWhenChanged": {"generation": "1"},
        "keyId": str(uuid.uuid4()),
        "value": "v",
    }
    changed = {
        "applicationId": f"/applications/{uuid.uuid4()}",
        "displayName": "slot 1",
        "endDate": "2027-11-28T00:00:00Z",
        "startDate": "2026-06-28T00:00:00Z",
        "endDateRelative": "240h",
        "rotateWhenChanged": {"generation": "2"},
    }
    arguments = {k: v for k, v in password.items() if k not in ("keyId", "value", "startDate")}
    for name, value in changed.items():
        news = {**arguments, name: value}
        if name == "endDateRelative":
            news.pop("endDate")
        assert tenant.diff(PASSWORD, outputs(password), news).replaces == [name]
    kept = {"applicationId": password["applicationId"], "rotateWhenChanged": {"generation": "1"}}
    assert tenant.diff(PASSWORD, outputs(password), kept).changes is False, "Optional+Computed dates and name"
    dropped = tenant.diff(PASSWORD, outputs(password), {"applicationId": password["applicationId"]})
    assert dropped.replaces == ["rotateWhenChanged"]
    unknown_end = tenant.diff(PASSWORD, outputs(password), {**arguments, "endDate": UNKNOWN})
    assert unknown_end.replaces == ["endDate"], "an unknown ForceNew value replaces, as Terraform plans it"


def test_previews_keep_unknowns_unknown_and_touch_nothing(tenant: Tenant):
    resource_id, outputs = tenant.create(
        APPLICATION, {"displayName": "POP3APP", "tags": UNKNOWN}, preview=True
    )
    values = plain(outputs)

    assert resource_id == ""
    assert values["displayName"] == "POP3APP"
    assert values["clientId"] is UNKNOWN
    assert values["objectId"] is UNKNOWN
    assert values["tags"] is UNKNOWN
    assert outputs["clientId"].value == UNKNOWN_SENTINEL
    assert tenant.writes() == []

    app_id, created = tenant.application()
    request = UpdateRequest(
        urn(APPLICATION),
        app_id,
        created,
        property_map({**plain(created), "notes": "changed"}),
        timeout=0,
        ignore_changes=[],
        preview=True,
    )
    planned = plain(run(tenant.provider.update(request)).properties)
    assert planned["clientId"] == plain(created)["clientId"], "an update keeps the client id known"
    assert planned["notes"] == "changed"
    assert tenant.graph.application(tenant.tenant_id, plain(created)["objectId"]).notes == "Managed by Pulumi"


# -- resources against Graph ------------------------------------------------------------------------------


def test_application_create_read_update_delete(tenant: Tenant):
    app_id, outputs = tenant.application()
    values = plain(outputs)
    object_id = values["objectId"]

    assert app_id == f"/applications/{object_id}"
    assert values["displayName"] == "POP3APP"
    assert values["signInAudience"] == "AzureADMyOrg"
    assert sorted(values["tags"]) == ["pop3-oauth", "pop3-oauth-stack:test"]
    assert values["requiredResourceAccesses"] == POP_ACCESS
    assert values["publisherDomain"] == "contoso.onmicrosoft.com"
    assert values["owners"] == []
    assert {"clientId", "appRoleIds", "featureTags", "disabledByMicrosoft", "templateId"} <= set(values)
    writes = tenant.writes()
    assert writes[:3] == [
        ("POST", "/v1.0/applications"),
        ("PATCH", f"/v1.0/applications/{object_id}"),
        ("PATCH", f"/v1.0/applications/{object_id}"),
    ]

    read_id, read_back, _ = tenant.read(APPLICATION, app_id, outputs, values)
    assert read_id == app_id
    assert plain(read_back) == values

    renamed = {
        "displayName": "POP3 app",
        "notes": "new",
        "tags": ["x"],
        "requiredResourceAccesses": POP_ACCESS,
    }
    updated = plain(tenant.update(APPLICATION, app_id, outputs, renamed))
    live = tenant.graph.application(tenant.tenant_id, object_id)
    assert (updated["displayName"], updated["notes"], updated["tags"]) == ("POP3 app", "new", ["x"])
    assert (live.display_name, live.notes, live.tags) == ("POP3 app", "new", ["x"])
    assert updated["requiredResourceAccesses"] == POP_ACCESS
    cleared = plain(tenant.update(APPLICATION, app_id, property_map(updated), {"displayName": "POP3 app"}))
    assert cleared["requiredResourceAccesses"] == [], "an omitted optional argument means empty, as upstream"
    assert cleared["tags"] == ["x"], "an omitted Optional+Computed argument keeps the live value"

    tenant.delete(APPLICATION, app_id, outputs)
    gone_id, gone, _ = tenant.read(APPLICATION, app_id, outputs, values)
    assert (gone_id, gone) == ("", {})
    polls = tenant.graph.requests[f"/v1.0/applications/{object_id}"]
    assert polls >= CONSISTENT_READS, "delete waits for consistent 404s"


def test_prevent_duplicate_names_refuses_a_twin_at_create_and_rename(tenant: Tenant):
    twin = tenant.graph.add_application(tenant.tenant_id, "POP3APP")
    with pytest.raises(StandInError) as raised:
        tenant.application(preventDuplicateNames=True)
    assert str(raised.value) == (
        f'An existing "azuread_application" with name "POP3APP" (ID: "{twin.object_id}") was found and '
        "`prevent_duplicate_names` was specified. To be managed via Terraform, this resource needs to be "
        'imported into the State. Please see the resource documentation for "azuread_application" for '
        "more information."
    )
    assert tenant.writes() == [], "nothing is created"

    app_id, outputs = tenant.application(displayName="POP3 other", preventDuplicateNames=True)
    same_name = {"displayName": "POP3 other", "notes": "x", "preventDuplicateNames": True}
    kept = plain(tenant.update(APPLICATION, app_id, outputs, same_name))
    assert kept["notes"] == "x", "its own name is no twin"
    with pytest.raises(StandInError, match=twin.object_id):
        tenant.update(APPLICATION, app_id, outputs, {"displayName": "POP3APP", "preventDuplicateNames": True})
    assert tenant.graph.find_applications(tenant.tenant_id, "POP3 other")

    second_id, _ = tenant.application()
    assert len(tenant.graph.find_applications(tenant.tenant_id, "POP3APP")) == 2, "off by default"
    assert second_id != app_id


def test_caller_is_bound_as_owner_at_create_and_removed_unless_configured(tenant: Tenant):
    user = tenant.graph.add_user(tenant.tenant_id, "admin@contoso.onmicrosoft.com")

    _, plain_outputs = tenant.application()
    object_id = plain(plain_outputs)["objectId"]
    assert (
        "DELETE",
        f"/v1.0/applications/{object_id}/owners/{tenant.caller}/$ref",
    ) in tenant.writes(), "the caller was bound by owners@odata.bind, else this removal would have failed"
    assert tenant.graph.application(tenant.tenant_id, object_id).owners == []

    app_id, outputs = tenant.application(owners=[tenant.caller, user])
    values = plain(outputs)
    assert sorted(values["owners"]) == sorted([tenant.caller, user])

    updated = plain(tenant.update(APPLICATION, app_id, outputs, {"displayName": "POP3APP", "owners": [user]}))
    assert updated["owners"] == [user], "update removes every owner that is not configured"


def test_owner_drift_shows_after_refresh_and_update_removes_it(tenant: Tenant):
    app_id, outputs = tenant.application()
    object_id = plain(outputs)["objectId"]
    intruder = tenant.graph.add_user(tenant.tenant_id, "intruder@contoso.onmicrosoft.com")
    tenant.graph.application(tenant.tenant_id, object_id).owners.append(intruder)
    tenant.graph.application(tenant.tenant_id, object_id).notes = "edited in the portal"
    inputs = {
        "displayName": "POP3APP",
        "notes": "Managed by Pulumi",
        "tags": ["pop3-oauth"],
        "requiredResourceAccesses": POP_ACCESS,
    }

    _, refreshed, refreshed_inputs = tenant.read(APPLICATION, app_id, outputs, inputs)
    diff = tenant.diff(APPLICATION, refreshed, inputs)

    assert plain(refreshed)["owners"] == [intruder]
    assert plain(refreshed_inputs)["notes"] == "edited in the portal", "refresh reports live values as inputs"
    assert {key: d.kind for key, d in diff.detailed_diff.items()} == {
        "notes": PropertyDiffKind.UPDATE,
        "owners": PropertyDiffKind.DELETE,
        "tags": PropertyDiffKind.UPDATE,
    }
    fixed = plain(tenant.update(APPLICATION, app_id, refreshed, inputs))
    assert fixed["owners"] == []
    assert fixed["notes"] == "Managed by Pulumi"


def test_service_principal_lifecycle_and_existing_principal(tenant: Tenant):
    _, app = tenant.application()
    client_id = plain(app)["clientId"]

    sp_id, outputs = tenant.create(SERVICE_PRINCIPAL, {"clientId": client_id, "notes": "n"})
    values = plain(outputs)
    assert sp_id == f"/servicePrincipals/{values['objectId']}"
    assert (values["clientId"], values["displayName"], values["type"]) == (
        client_id,
        "POP3APP",
        "Application",
    )
    assert values["description"] == "", "the temporary TERRAFORM_UPDATE_ description is patched away"
    assert values["owners"] == []
    assert values["appRoleIds"] == {}
    assert values["applicationTenantId"] == tenant.tenant_id

    with pytest.raises(StandInError, match="already exists"):
        tenant.create(SERVICE_PRINCIPAL, {"clientId": client_id})
    adopted_id, _ = tenant.create(
        SERVICE_PRINCIPAL, {"clientId": client_id, "useExisting": True, "notes": "m"}
    )
    assert adopted_id == sp_id

    updated = plain(
        tenant.update(SERVICE_PRINCIPAL, sp_id, outputs, {"clientId": client_id, "notes": "changed"})
    )
    assert updated["notes"] == "changed"

    tenant.delete(SERVICE_PRINCIPAL, sp_id, outputs)
    assert tenant.read(SERVICE_PRINCIPAL, sp_id, outputs, {"clientId": client_id})[0] == ""


def test_app_role_assignment_lifecycle(tenant: Tenant):
    _, app = tenant.application()
    _, principal = tenant.create(SERVICE_PRINCIPAL, {"clientId": plain(app)["clientId"]})
    principal_id = plain(principal)["objectId"]
    inputs = {
        "appRoleId": POP_ROLE_ID,
        "principalObjectId": principal_id,
        "resourceObjectId": tenant.exchange_online,
    }

    assignment_id, outputs = tenant.create(ASSIGNMENT, inputs)
    values = plain(outputs)

    assert assignment_id.startswith(f"/servicePrincipals/{tenant.exchange_online}/appRoleAssignedTo/")
    assert values == {
        **inputs,
        "principalDisplayName": "POP3APP",
        "principalType": "ServicePrincipal",
        "resourceDisplayName": "Office 365 Exchange Online",
    }
    assert tenant.read(ASSIGNMENT, assignment_id, outputs, inputs)[1] == outputs
    with pytest.raises(StandInError, match="has no update"):
        tenant.update(ASSIGNMENT, assignment_id, outputs, inputs)

    tenant.delete(ASSIGNMENT, assignment_id, outputs)
    assert tenant.read(ASSIGNMENT, assignment_id, outputs, inputs)[0] == ""
    assert tenant.graph.assignments_of(tenant.tenant_id, principal_id) == []


def test_password_value_is_only_in_the_secret_output(tenant: Tenant, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="pulumi-resource-azuread")
    app_id, app = tenant.application()
    inputs = {
        "applicationId": app_id,
        "displayName": "pop3-oauth slot 0",
        "endDate": "2027-05-28T00:00:00Z",
        "rotateWhenChanged": {"generation": "1"},
    }

    password_id, outputs = tenant.create(PASSWORD, inputs)
    values = plain(outputs)
    issued = tenant.graph.issued_secrets[-1]

    assert password_id == f"{plain(app)['objectId']}/password/{values['keyId']}"
    assert outputs["value"].is_secret
    assert values["value"] == issued
    assert [key for key, value in outputs.items() if value.is_secret] == ["value"]
    assert all(issued not in json.dumps(v) for k, v in values.items() if k != "value")
    assert (values["displayName"], values["endDate"]) == ("pop3-oauth slot 0", "2027-05-28T00:00:00Z")
    assert values["rotateWhenChanged"] == {"generation": "1"}

    _, refreshed, _ = tenant.read(PASSWORD, password_id, outputs, inputs)
    assert refreshed["value"].is_secret
    assert plain(refreshed) == values, "refresh keeps the value, which Graph cannot return"

    token = requests.post(
        f"{tenant.graph.entra.base_url}/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": plain(app)["clientId"],
            "client_secret": values["value"],
            "scope": "https://outlook.office365.com/.default",
        },
        verify=tenant.environ["REQUESTS_CA_BUNDLE"],
        timeout=10,
    )
    assert token.status_code == 200, "the output is the secret Graph issued"

    tenant.delete(PASSWORD, password_id, outputs)
    assert tenant.read(PASSWORD, password_id, outputs, inputs)[0] == ""
    assert ("POST", f"/v1.0/applications/{plain(app)['objectId']}/removePassword") in tenant.writes()
    logged = caplog.text
    assert "addPassword" in logged, "debug logging was on"
    assert issued not in logged
    assert tenant.secret not in logged
    assert "eyJ" not in logged, "no token in the logs"


def test_password_operations_on_one_application_are_serialised(tenant: Tenant):
    app_id, _ = tenant.application()
    object_id = app_id.rsplit("/", 1)[1]
    created: list[Any] = []
    worker = threading.Thread(
        target=lambda: created.append(tenant.create(PASSWORD, {"applicationId": app_id}))
    )

    with tenant.provider.context.application_locks.hold(object_id):
        worker.start()
        worker.join(0.5)
        waiting = worker.is_alive()
        added_while_held = ("POST", f"/v1.0/applications/{object_id}/addPassword") in tenant.writes()
    worker.join(10)

    assert waiting
    assert not added_while_held
    assert created and created[0][0].startswith(f"{object_id}/password/")


def test_import_reads_live_outputs_and_matching_inputs(tenant: Tenant):
    existing = tenant.graph.add_application(tenant.tenant_id, "POP3APP")
    tenant.graph.application(tenant.tenant_id, existing.object_id).notes = "made by hand"
    app_id = f"/applications/{existing.object_id}"

    read_id, outputs, inputs = tenant.read(APPLICATION, app_id, {}, {})
    imported = plain(inputs)

    assert read_id == app_id
    assert plain(outputs)["clientId"] == existing.app_id
    assert imported == {
        "displayName": "POP3APP",
        "notes": "made by hand",
        "requiredResourceAccesses": POP_ACCESS,
        "signInAudience": "AzureADMyOrg",
    }
    program = {"displayName": "POP3APP", "notes": "made by hand", "requiredResourceAccesses": POP_ACCESS}
    assert tenant.diff(APPLICATION, outputs, program).changes is False, "import then up shows no changes"

    with pytest.raises(StandInError, match="parsing ID"):
        tenant.read(APPLICATION, existing.object_id, {}, {})
    with pytest.raises(StandInError, match="doesn't support import"):
        tenant.read(PASSWORD, f"{existing.object_id}/password/{uuid.uuid4()}", {}, {})


def test_consistency_fault_is_polled_through(tenant: Tenant):
    tenant.graph.faults.consistency_reads = 3
    tenant.graph.faults.consistency_methods = frozenset({"GET", "PATCH", "POST"})

    app_id, app = tenant.application()
    _, principal = tenant.create(SERVICE_PRINCIPAL, {"clientId": plain(app)["clientId"]})
    assignment_id, _ = tenant.create(
        ASSIGNMENT,
        {
            "appRoleId": POP_ROLE_ID,
            "principalObjectId": plain(principal)["objectId"],
            "resourceObjectId": tenant.exchange_online,
        },
    )
    password_id, password = tenant.create(PASSWORD, {"applicationId": app_id})

    object_id = plain(app)["objectId"]
    assert tenant.graph.requests[f"/v1.0/applications/{object_id}"] > 3
    assert plain(password)["keyId"] in password_id
    assert assignment_id.split("/")[-1] in {
        a.assignment_id for a in tenant.graph.assignments_of(tenant.tenant_id, plain(principal)["objectId"])
    }


def test_waits_are_bounded_with_a_clear_message(tenant: Tenant):
    provider = AzureAdStandIn(environ=tenant.environ, timing=Timing(poll_seconds=0.01, wait_seconds=0.05))
    configure(provider, tenantId=tenant.tenant_id)
    tenant.graph.faults.consistency_reads = 10_000
    request = CreateRequest(urn(APPLICATION), property_map({"displayName": "POP3APP"}), 0, False)
    try:
        with pytest.raises(WaitTimeout, match="POP3_OAUTH_STANDIN_WAIT_SECONDS"):
            run(provider.create(request))
    finally:
        tenant.graph.faults.consistency_reads = 0


def test_throttling_honours_retry_after(tenant: Tenant):
    tenant.graph.faults.throttle_next = 2
    tenant.graph.faults.retry_after = 3

    found = tenant.invoke({"clientId": EXCHANGE_ONLINE_APP_ID})

    assert plain(found.return_value or {})["objectId"] == tenant.exchange_online
    assert [s for s in tenant.sleeps if s] == [3.0, 3.0]

    tenant.graph.faults.throttle_next = 1
    tenant.graph.faults.retry_after = 600
    with pytest.raises(WaitTimeout, match="kept throttling"):
        tenant.invoke({"clientId": EXCHANGE_ONLINE_APP_ID})
    tenant.graph.faults.retry_after = 1


def test_graph_errors_carry_status_code_and_request_id_never_credentials(tenant: Tenant, servers: Servers):
    reader_id, reader_secret = str(uuid.uuid4()), "reader-" + secrets.token_hex(12)
    servers.entra.add_app(
        tenant.tenant_id, reader_id, secrets={reader_secret: None}, roles={servers.graph.base_url: [READ_ALL]}
    )
    provider = AzureAdStandIn(
        environ={**tenant.environ, "ARM_CLIENT_ID": reader_id, "ARM_CLIENT_SECRET": reader_secret},
        timing=Timing(0, 5),
    )
    configure(provider, tenantId=tenant.tenant_id)
    principal = tenant.graph.service_principal_of(tenant.tenant_id, EXCHANGE_ONLINE_APP_ID)
    assert principal is not None
    inputs = {
        "appRoleId": POP_ROLE_ID,
        "principalObjectId": principal.object_id,
        "resourceObjectId": tenant.exchange_online,
    }

    with pytest.raises(GraphError) as raised:
        run(provider.create(CreateRequest(urn(ASSIGNMENT), property_map(inputs), 0, False)))

    message = str(raised.value)
    assert "HTTP 403 Authorization_RequestDenied" in message
    assert f"POST /servicePrincipals/{tenant.exchange_online}/appRoleAssignedTo" in message
    assert "request-id " in message
    assert reader_secret not in message
    assert "Bearer" not in message and "eyJ" not in message


def test_get_service_principal_by_client_id_object_id_or_display_name(tenant: Tenant):
    by_client = plain(tenant.invoke({"clientId": EXCHANGE_ONLINE_APP_ID}).return_value or {})
    by_object = plain(tenant.invoke({"objectId": tenant.exchange_online}).return_value or {})
    by_name = plain(tenant.invoke({"displayName": "Office 365 Exchange Online"}).return_value or {})

    assert by_client == by_object == by_name
    assert by_client["id"] == f"/servicePrincipals/{tenant.exchange_online}"
    assert by_client["appRoleIds"]["POP.AccessAsApp"] == POP_ROLE_ID
    assert {role["value"] for role in by_client["appRoles"]} >= {"POP.AccessAsApp", "IMAP.AccessAsApp"}
    assert by_client["displayName"] == "Office 365 Exchange Online"

    assert tenant.invoke({}).failures[0].property == "clientId"
    both = tenant.invoke({"clientId": EXCHANGE_ONLINE_APP_ID, "objectId": tenant.exchange_online})
    assert {f.property for f in both.failures} == {"clientId", "objectId"}
    with pytest.raises(StandInError, match="No service principal found"):
        tenant.invoke({"clientId": str(uuid.uuid4())})


def test_password_dates_are_sent_as_rfc3339():
    credential = application_password._credential(
        {"displayName": "d", "startDate": "2026-05-28T00:00:00.000Z", "endDate": "2026-11-28T02:00:00+02:00"}
    )

    assert credential == {
        "displayName": "d",
        "startDateTime": "2026-05-28T00:00:00Z",
        "endDateTime": "2026-11-28T02:00:00+02:00",
    }


# -- the plugin as the engine starts it -------------------------------------------------------------------


def test_launcher_serves_grpc_and_prints_only_the_port(tmp_path: Path):
    process = subprocess.Popen(
        [str(LAUNCHER), "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().decode().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            info = stub.GetPluginInfo(empty_pb2.Empty(), timeout=10)
            olds, news = struct_pb2.Struct(), struct_pb2.Struct()
            olds.update({"tenantId": "a", "version": VERSION})
            news.update({"tenantId": "b", "version": VERSION})
            config_diff = stub.DiffConfig(proto.DiffRequest(urn="urn:x", olds=olds, news=news), timeout=10)
            with pytest.raises(grpc.RpcError) as failed:
                stub.Configure(proto.ConfigureRequest(args=news, acceptSecrets=True), timeout=10)
            schema = json.loads(stub.GetSchema(proto.GetSchemaRequest(version=0), timeout=10).schema)
    finally:
        process.terminate()
        rest, errors = process.communicate(timeout=10)

    assert info.version == VERSION == "6.11.1"
    assert config_diff.changes == proto.DiffResponse.DIFF_SOME
    assert list(config_diff.diffs) == ["tenantId"]
    assert "supports only client-secret authentication" in (failed.value.details() or "")
    assert "Traceback" not in (failed.value.details() or "") and 'File "' not in (
        failed.value.details() or ""
    )
    assert set(schema["resources"]) == {APPLICATION, SERVICE_PRINCIPAL, ASSIGNMENT, PASSWORD}
    assert rest == b"", "nothing but the port goes to stdout"
    assert b"Traceback" not in errors
