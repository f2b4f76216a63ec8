"""The Microsoft Graph fake, through real HTTPS: routes, authorization, faults and what it does to Entra."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests

from sandbox.entra import EXCHANGE_RESOURCE, EntraFake
from sandbox.graph import (
    EXCHANGE_ONLINE_APP_ID,
    IMAP_ROLE_ID,
    MICROSOFT_GRAPH_APP_ID,
    POP_ROLE_ID,
    GraphFake,
)
from sandbox.tls import HttpRequest, HttpResponse, HttpsServer, TestCertificates, make_certificates

TENANT = "6f1c7b2a-3d4e-4f50-8a9b-0c1d2e3f4a5b"
OTHER_TENANT = "0a1b2c3d-1111-2222-3333-444455556666"
READ = "Application.Read.All"
WRITE = "Application.ReadWrite.All"
OWNED_BY = "Application.ReadWrite.OwnedBy"
ASSIGN = "AppRoleAssignment.ReadWrite.All"


class Caller:
    """One principal's requests against the Graph fake."""

    def __init__(self, cloud: Cloud, token: str, object_id: str, version: str = "v1.0") -> None:
        self.cloud = cloud
        self.token = token
        self.object_id = object_id
        self.version = version

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        url = path if path.startswith("https://") else f"{self.cloud.graph_url}/{self.version}/{path}"
        return self.cloud.session.request(method, url, headers=headers, timeout=10, **kwargs)

    def get(self, path: str, **params: str) -> requests.Response:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> requests.Response:
        return self.request("DELETE", path)

    def create_app(self, display_name: str = "POP3APP", **body: Any) -> dict[str, Any]:
        response = self.post("applications", {"displayName": display_name, **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def create_sp(self, app_id: str, **body: Any) -> dict[str, Any]:
        response = self.post("servicePrincipals", {"appId": app_id, **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@dataclass
class Cloud:
    entra: EntraFake
    graph: GraphFake
    session: requests.Session
    entra_url: str
    graph_url: str

    def caller(self, *roles: str, tenant: str = TENANT, audience: str | None = None) -> Caller:
        app = self.entra.add_app(tenant, roles={audience or self.graph_url: list(roles)})
        return Caller(self, self.entra.issue_token(app, audience or self.graph_url), app.object_id)

    def client_credentials(self, client_id: str, secret: str) -> requests.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": f"{EXCHANGE_RESOURCE}/.default",
        }
        return self.session.post(f"{self.entra_url}/{TENANT}/oauth2/v2.0/token", data=form, timeout=10)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def servers(certs: TestCertificates) -> Iterator[Cloud]:
    entra = EntraFake()
    graph = GraphFake(entra)
    with (
        HttpsServer(entra.handle, certs) as entra_server,
        HttpsServer(graph.handle, certs) as graph_server,
        requests.Session() as session,
    ):
        entra.base_url = entra_server.base_url
        graph.base_url = graph_server.base_url
        session.verify = str(certs.ca_bundle)
        # A REQUESTS_CA_BUNDLE in the environment would otherwise win over session.verify.
        session.trust_env = False
        yield Cloud(entra, graph, session, entra_server.base_url, graph_server.base_url)


@pytest.fixture
def cloud(servers: Cloud) -> Iterator[Cloud]:
    servers.graph.reset()
    servers.graph.login_endpoint = ""
    servers.graph.seed_tenant(TENANT)
    yield servers
    servers.graph.reset()


@pytest.fixture
def admin(cloud: Cloud) -> Caller:
    return cloud.caller(WRITE, ASSIGN)


def error_of(response: requests.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "innerError"}
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    return error


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def values(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["value"]
    return items


# -- metadata and authorization -------------------------------------------------------------------------


def test_metadata_document_points_the_provider_at_the_fakes(cloud: Cloud) -> None:
    url = f"{cloud.graph_url}/metadata/endpoints"
    document = cloud.session.get(url, params={"api-version": "2022-09-01"}, timeout=10).json()

    assert document["name"] == "AzureCloud"
    assert document["microsoftGraphResourceId"] == f"{cloud.graph_url}/"
    assert document["resourceManager"] == f"{cloud.graph_url}/"
    assert document["authentication"] == {
        "loginEndpoint": cloud.entra_url,
        "audiences": [f"{cloud.graph_url}/"],
        "tenant": "common",
        "identityProvider": "AAD",
    }
    cloud.graph.login_endpoint = "https://login.example/"
    listed = cloud.session.get(url, params={"api-version": "2019-05-01"}, timeout=10).json()
    assert [entry["authentication"]["loginEndpoint"] for entry in listed] == ["https://login.example"]
    assert cloud.session.get(url, params={"api-version": "2018-01-01"}, timeout=10).status_code == 400


def test_requests_need_a_token_for_this_api(cloud: Cloud) -> None:
    missing = cloud.session.get(f"{cloud.graph_url}/v1.0/applications", timeout=10)
    impostor = EntraFake()
    forged_app = impostor.add_app(TENANT, roles={cloud.graph_url: [READ]})
    forged = Caller(cloud, impostor.issue_token(forged_app, cloud.graph_url), forged_app.object_id)

    assert missing.status_code == 401
    assert error_of(missing)["code"] == "InvalidAuthenticationToken"
    assert forged.get("applications").status_code == 401
    assert cloud.caller(READ, audience=EXCHANGE_RESOURCE).get("applications").status_code == 401
    for audience in (f"{cloud.graph_url}/", "https://graph.microsoft.com", "https://graph.microsoft.com/"):
        assert cloud.caller(READ, audience=audience).get("applications").status_code == 200


@pytest.mark.parametrize("role", [READ, WRITE, "Directory.Read.All", OWNED_BY])
def test_each_read_role_reads(cloud: Cloud, role: str) -> None:
    assert cloud.caller(role).get("servicePrincipals").status_code == 200


def test_writes_need_write_roles(cloud: Cloud, admin: Caller) -> None:
    reader = cloud.caller(READ)
    nobody = cloud.caller()
    app = admin.create_app()
    exchange = cloud.graph.service_principal_of(TENANT, EXCHANGE_ONLINE_APP_ID)
    assert exchange is not None

    denied = [
        nobody.get("applications"),
        reader.post("applications", {"displayName": "x"}),
        reader.patch(f"applications/{app['id']}", {"notes": "x"}),
        reader.delete(f"applications/{app['id']}"),
        reader.post(f"applications/{app['id']}/addPassword", {}),
        reader.post(f"servicePrincipals/{exchange.object_id}/appRoleAssignedTo", {}),
    ]

    for response in denied:
        assert response.status_code == 403
        assert error_of(response) | {"innerError": None} == {
            "code": "Authorization_RequestDenied",
            "message": "Insufficient privileges to complete the operation.",
            "innerError": None,
        }
    assert cloud.graph.find_applications(TENANT, "x") == []


def test_owned_by_creates_and_changes_only_what_it_owns(cloud: Cloud, admin: Caller) -> None:
    owned_by = cloud.caller(OWNED_BY)
    bind = f"https://graph.microsoft.com/v1.0/directoryObjects/{owned_by.object_id}"
    mine = owned_by.create_app("mine", **{"owners@odata.bind": [bind]})
    unbound = owned_by.create_app("created but not owned")
    theirs = admin.create_app("theirs")

    assert owned_by.patch(f"applications/{mine['id']}", {"notes": "ok"}).status_code == 204
    assert owned_by.post(f"applications/{mine['id']}/addPassword", {}).status_code == 200
    assert owned_by.patch(f"applications/{theirs['id']}", {"notes": "no"}).status_code == 403
    assert owned_by.patch(f"applications/{unbound['id']}", {"notes": "no"}).status_code == 403
    assert cloud.graph.application(TENANT, mine["id"]).notes == "ok"
    assert cloud.graph.application(TENANT, theirs["id"]).notes is None


def test_v1_and_beta_serve_the_same_directory(cloud: Cloud, admin: Caller) -> None:
    app = admin.create_app()
    beta = Caller(cloud, admin.token, admin.object_id, version="beta")

    assert beta.patch(f"applications/{app['id']}", {"oauth2RequirePostResponse": True}).status_code == 204
    selected = beta.get(f"applications/{app['id']}", **{"$select": "oauth2RequirePostResponse"}).json()
    assert selected["oauth2RequirePostResponse"] is True
    assert selected["@odata.context"].startswith(f"{cloud.graph_url}/beta/$metadata#applications")
    assert admin.get(f"applications/{app['id']}").json()["displayName"] == "POP3APP"


# -- applications ---------------------------------------------------------------------------------------


def test_application_lifecycle(cloud: Cloud, admin: Caller) -> None:
    access = [
        {"resourceAppId": EXCHANGE_ONLINE_APP_ID, "resourceAccess": [{"id": POP_ROLE_ID, "type": "Role"}]}
    ]
    created = admin.create_app(
        "POP3APP",
        signInAudience="AzureADMyOrg",
        requiredResourceAccess=access,
        notes="Managed by Pulumi",
        tags=["pop3-oauth"],
        web={"redirectUris": ["https://example.com"]},
        serviceManagementReference="ticket-42",
    )

    assert created["@odata.context"] == f"{cloud.graph_url}/v1.0/$metadata#applications/$entity"
    assert created["displayName"] == "POP3APP"
    assert created["signInAudience"] == "AzureADMyOrg"
    assert created["requiredResourceAccess"] == access
    assert (created["notes"], created["tags"]) == ("Managed by Pulumi", ["pop3-oauth"])
    assert created["web"] == {"redirectUris": ["https://example.com"]}
    assert created["serviceManagementReference"] == "ticket-42"
    assert (created["passwordCredentials"], created["keyCredentials"]) == ([], [])
    assert created["publisherDomain"] == "contoso.onmicrosoft.com"
    assert created["createdDateTime"].endswith("Z")
    assert created["id"] != created["appId"]

    by_id = admin.get(f"applications/{created['id']}")
    by_app_id = admin.get(f"applications(appId='{created['appId']}')")
    assert by_id.json() | {"@odata.context": None} == created | {"@odata.context": None}
    assert by_app_id.json()["id"] == created["id"]

    patched = admin.patch(
        f"applications/{created['id']}", {"displayName": "renamed", "isFallbackPublicClient": True}
    )
    assert (patched.status_code, patched.content, patched.headers.get("Content-Length")) == (204, b"", None)
    after = admin.get(f"applications/{created['id']}").json()
    assert (after["displayName"], after["isFallbackPublicClient"], after["notes"]) == (
        "renamed",
        True,
        "Managed by Pulumi",
    )

    principal = admin.create_sp(created["appId"])
    assert admin.delete(f"applications/{created['id']}").status_code == 204
    gone = admin.get(f"applications/{created['id']}")
    assert gone.status_code == 404
    assert error_of(gone)["code"] == "Request_ResourceNotFound"
    assert admin.get(f"servicePrincipals/{principal['id']}").status_code == 200


def test_application_writes_are_checked(cloud: Cloud, admin: Caller) -> None:
    app = admin.create_app(signInAudience="AzureADMyOrg")

    assert admin.create_app("defaults")["signInAudience"] == "AzureADandPersonalMicrosoftAccount"
    assert admin.post("applications", {"notes": "no name"}).status_code == 400
    assert admin.patch(f"applications/{app['id']}", {"appId": "other"}).status_code == 400
    assert admin.patch(f"applications/{app['id']}", {"passwordCredentials": []}).status_code == 400
    assert admin.request("PUT", f"applications/{app['id']}", json={}).status_code == 405
    assert admin.get("applications/not-an-object").status_code == 404
    assert admin.get("unknownCollection").status_code == 400


def test_filters_select_and_count(cloud: Cloud, admin: Caller) -> None:
    graph = cloud.graph
    pop = graph.add_application(TENANT, "POP3APP")
    graph.add_application(TENANT, "pop3app second")
    quoted = graph.add_application(TENANT, "it's POP3")
    graph.add_application(TENANT, "Other")

    def names(flt: str, **params: str) -> list[str]:
        return sorted(
            app["displayName"] for app in values(admin.get("applications", **{"$filter": flt}, **params))
        )

    assert names("displayName eq 'it''s POP3'") == ["it's POP3"]
    assert names("displayName eq 'pop3app'") == ["POP3APP"]
    assert names(f"appId eq '{pop.app_id.upper()}'") == ["POP3APP"]
    assert names("startswith(displayName,'pop3')") == ["POP3APP", "pop3app second"]
    assert names(f"appId eq '{quoted.app_id}' or displayName eq 'Other'") == ["Other", "it's POP3"]
    assert names("startswith(displayName, 'POP3') and displayName eq 'pop3app second'") == ["pop3app second"]
    assert names("displayName eq 'a or b' or displayName eq 'Other'") == ["Other"]

    unsupported = admin.get("applications", **{"$filter": "displayName ne 'x'"})
    assert unsupported.status_code == 400
    assert error_of(unsupported)["code"] == "Request_UnsupportedQuery"

    counted = admin.request(
        "GET",
        "applications",
        params={"$filter": "startswith(displayName,'pop3')", "$count": "true", "$select": "id,displayName"},
        headers={"ConsistencyLevel": "eventual"},
    ).json()
    assert counted["@odata.count"] == 2
    assert all(set(item) == {"id", "displayName"} for item in counted["value"])
    selected = admin.get(f"applications/{pop.object_id}", **{"$select": "appId"}).json()
    assert set(selected) == {"@odata.context", "appId"}


def test_collections_page_with_next_links(cloud: Cloud, admin: Caller) -> None:
    for index in range(5):
        cloud.graph.add_application(TENANT, f"app '{index}'")

    def walk(first: requests.Response) -> list[int]:
        sizes, page = [], first.json()
        while True:
            sizes.append(len(page["value"]))
            if "@odata.nextLink" not in page:
                return sizes
            assert page["@odata.nextLink"].startswith(f"{cloud.graph_url}/v1.0/applications?")
            page = admin.get(page["@odata.nextLink"]).json()

    flt = {"$filter": "startswith(displayName,'app ''')"}
    assert walk(admin.get("applications", **flt)) == [5]
    assert walk(admin.get("applications", **flt, **{"$top": "3"})) == [3, 2]
    cloud.graph.faults.page_size = 2
    assert walk(admin.get("applications", **flt)) == [2, 2, 1]
    assert walk(admin.get("applications", **flt, **{"$top": "4"})) == [2, 2, 1]


# -- passwords and the Entra fake -----------------------------------------------------------------------


def test_add_password_issues_a_secret_that_entra_accepts(cloud: Cloud, admin: Caller) -> None:
    app = admin.create_app()
    end = "2099-01-31T10:15:30Z"

    issued = admin.post(
        f"applications/{app['id']}/addPassword",
        {"passwordCredential": {"displayName": "slot 0", "endDateTime": end}},
    )

    assert issued.status_code == 200
    credential = issued.json()
    assert credential.pop("@odata.context").endswith("/v1.0/$metadata#microsoft.graph.passwordCredential")
    secret = credential["secretText"]
    assert (len(secret), "~" in secret, credential["hint"]) == (40, True, secret[:3])
    assert (credential["displayName"], credential["endDateTime"], credential["customKeyIdentifier"]) == (
        "slot 0",
        end,
        None,
    )
    assert credential["startDateTime"].endswith("Z")
    listed = admin.get(f"applications/{app['id']}").json()["passwordCredentials"]
    assert listed == [credential | {"secretText": None}]
    assert cloud.graph.issued_secrets == [secret]

    token = cloud.client_credentials(app["appId"], secret)
    assert token.status_code == 200, token.text
    assert claims(token.json()["access_token"])["oid"] == app["id"]
    principal = admin.create_sp(app["appId"])
    assert (
        claims(cloud.client_credentials(app["appId"], secret).json()["access_token"])["oid"]
        == principal["id"]
    )

    removed = admin.post(f"applications/{app['id']}/removePassword", {"keyId": credential["keyId"]})
    assert (removed.status_code, removed.content) == (204, b"")
    refused = cloud.client_credentials(app["appId"], secret)
    assert refused.status_code == 401
    assert refused.json()["error_codes"] == [7000215]
    assert admin.get(f"applications/{app['id']}").json()["passwordCredentials"] == []
    again = admin.post(f"applications/{app['id']}/removePassword", {"keyId": credential["keyId"]})
    assert again.status_code == 404


def test_secrets_end_with_their_expiry_or_their_application(cloud: Cloud, admin: Caller) -> None:
    app = admin.create_app()
    path = f"applications/{app['id']}/addPassword"
    expired = admin.post(path, {"passwordCredential": {"endDateTime": "2020-01-01T00:00:00Z"}}).json()
    lasting = admin.post(path, {}).json()

    assert cloud.client_credentials(app["appId"], expired["secretText"]).json()["error_codes"] == [7000222]
    two_years = time.time() + 729 * 86400
    expiry = cloud.entra.apps[(TENANT, app["appId"])].secrets[lasting["secretText"]]
    assert expiry is not None and expiry > two_years
    assert admin.post(path, {"passwordCredential": {"endDateTime": "soon"}}).status_code == 400

    assert admin.delete(f"applications/{app['id']}").status_code == 204
    assert cloud.client_credentials(app["appId"], lasting["secretText"]).json()["error_codes"] == [700016]
    assert cloud.graph.issued_secrets == [expired["secretText"], lasting["secretText"]]


def test_hand_made_passwords_show_but_do_not_authenticate(cloud: Cloud, admin: Caller) -> None:
    app = cloud.graph.add_application(TENANT, "POP3APP")
    key_id = app.add_password("by hand", "2099-01-01T00:00:00Z", "Abc8Q~hand-made")
    issued = cloud.graph.add_password(TENANT, app.object_id, "helper", end="2099-01-01T00:00:00Z")

    listed = admin.get(f"applications/{app.object_id}").json()["passwordCredentials"]
    assert [(c["keyId"], c["hint"], c["secretText"]) for c in listed] == [
        (key_id, "Abc", None),
        (issued["keyId"], issued["secretText"][:3], None),
    ]
    assert cloud.client_credentials(app.app_id, "Abc8Q~hand-made").json()["error_codes"] == [7000215]
    assert cloud.client_credentials(app.app_id, issued["secretText"]).status_code == 200
    assert cloud.graph.writes == []


# -- owners ---------------------------------------------------------------------------------------------


def test_owners_of_applications_and_service_principals(cloud: Cloud, admin: Caller) -> None:
    user = cloud.graph.add_user(TENANT, "admin@contoso.de")
    bind = [f"https://graph.microsoft.com/v1.0/directoryObjects/{owner}" for owner in (user, admin.object_id)]
    app = admin.create_app("POP3APP", **{"owners@odata.bind": bind})
    unowned = admin.create_app("unowned")

    owners = values(admin.get(f"applications/{app['id']}/owners"))
    assert [(o["@odata.type"], o["id"]) for o in owners] == [
        ("#microsoft.graph.user", user),
        ("#microsoft.graph.servicePrincipal", admin.object_id),
    ]
    assert owners[0]["userPrincipalName"] == "admin@contoso.de"
    assert values(admin.get(f"applications/{unowned['id']}/owners")) == []

    principal = admin.create_sp(app["appId"])
    for collection, object_id in (("applications", unowned["id"]), ("servicePrincipals", principal["id"])):
        ref = {"@odata.id": f"{cloud.graph_url}/beta/directoryObjects/{user}"}
        assert admin.post(f"{collection}/{object_id}/owners/$ref", ref).status_code == 204
        duplicate = admin.post(f"{collection}/{object_id}/owners/$ref", ref)
        assert duplicate.status_code == 400
        assert error_of(duplicate)["message"].startswith("One or more added object references already exist")
        assert [o["id"] for o in values(admin.get(f"{collection}/{object_id}/owners"))] == [user]
        assert admin.delete(f"{collection}/{object_id}/owners/{user}/$ref").status_code == 204
        assert admin.delete(f"{collection}/{object_id}/owners/{user}/$ref").status_code == 404

    unknown = {
        "@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/00000000-0000-0000-0000-000000000001"
    }
    assert admin.post(f"applications/{unowned['id']}/owners/$ref", unknown).status_code == 404
    assert (
        admin.post(f"applications/{unowned['id']}/owners/$ref", {"@odata.id": "nonsense"}).status_code == 400
    )


# -- service principals ---------------------------------------------------------------------------------


def test_service_principal_lifecycle(cloud: Cloud, admin: Caller) -> None:
    role = {
        "allowedMemberTypes": ["Application"],
        "id": "11111111-2222-3333-4444-555555555555",
        "value": "Read",
    }
    app = admin.create_app("POP3APP", appRoles=[role])

    created = admin.create_sp(app["appId"], notes="Managed by Pulumi", tags=["pop3-oauth"], description="d")

    assert created["@odata.context"] == f"{cloud.graph_url}/v1.0/$metadata#servicePrincipals/$entity"
    assert (created["appId"], created["displayName"], created["appRoles"]) == (
        app["appId"],
        "POP3APP",
        [role],
    )
    assert (
        created["servicePrincipalType"],
        created["accountEnabled"],
        created["appRoleAssignmentRequired"],
    ) == (
        "Application",
        True,
        False,
    )
    assert (created["notes"], created["tags"], created["description"]) == (
        "Managed by Pulumi",
        ["pop3-oauth"],
        "d",
    )
    assert created["oauth2PermissionScopes"] == []
    assert created["appOwnerOrganizationId"] == TENANT
    duplicate = admin.post("servicePrincipals", {"appId": app["appId"]})
    assert duplicate.status_code == 409
    assert error_of(duplicate)["code"] == "Request_MultipleObjectsWithSameKeyValue"
    unknown = admin.post("servicePrincipals", {"appId": "99999999-9999-9999-9999-999999999999"})
    assert unknown.status_code == 400
    assert "does not reference a valid application object" in error_of(unknown)["message"]

    by_app_id = admin.get(f"servicePrincipals(appId='{app['appId']}')").json()
    assert by_app_id["id"] == created["id"]
    assert [
        p["id"] for p in values(admin.get("servicePrincipals", **{"$filter": f"appId eq '{app['appId']}'"}))
    ] == [created["id"]]
    exchange = values(
        admin.get("servicePrincipals", **{"$filter": "displayName eq 'Office 365 Exchange Online'"})
    )
    assert [p["appId"] for p in exchange] == [EXCHANGE_ONLINE_APP_ID]
    assert {POP_ROLE_ID, IMAP_ROLE_ID} <= {r["id"] for r in exchange[0]["appRoles"]}
    assert "https://outlook.office365.com" in exchange[0]["servicePrincipalNames"]

    assert (
        admin.patch(f"servicePrincipals/{created['id']}", {"appRoleAssignmentRequired": True}).status_code
        == 204
    )
    assert admin.get(f"servicePrincipals/{created['id']}").json()["appRoleAssignmentRequired"] is True
    assert admin.delete(f"servicePrincipals(appId='{app['appId']}')").status_code == 204
    assert admin.get(f"servicePrincipals/{created['id']}").status_code == 404
    assert admin.get(f"applications/{app['id']}").status_code == 200


def test_seeded_tenant_has_microsoft_principals(cloud: Cloud, admin: Caller) -> None:
    exchange_online = cloud.graph.seed_tenant(TENANT)

    graph = admin.get(f"servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')").json()
    assert graph["id"] == cloud.graph.add_microsoft_graph(TENANT).object_id
    assert "Application.ReadWrite.All" in {role["value"] for role in graph["appRoles"]}
    assert exchange_online.app_id == EXCHANGE_ONLINE_APP_ID
    assert exchange_online.object_id == cloud.graph.add_exchange_online(TENANT).object_id
    assert TENANT in cloud.entra.tenants


# -- app role assignments -------------------------------------------------------------------------------


def test_app_role_assignment_is_the_admin_consent(cloud: Cloud, admin: Caller) -> None:
    exchange = cloud.graph.service_principal_of(TENANT, EXCHANGE_ONLINE_APP_ID)
    assert exchange is not None
    app = admin.create_app()
    principal = admin.create_sp(app["appId"])
    secret = admin.post(f"applications/{app['id']}/addPassword", {}).json()["secretText"]
    consent = {"principalId": principal["id"], "resourceId": exchange.object_id, "appRoleId": POP_ROLE_ID}
    assigned_to = f"servicePrincipals/{exchange.object_id}/appRoleAssignedTo"

    created = admin.post(assigned_to, consent)

    assert created.status_code == 201, created.text
    assignment = created.json()
    assert {key: assignment[key] for key in consent} == consent
    assert (assignment["principalType"], assignment["principalDisplayName"]) == (
        "ServicePrincipal",
        "POP3APP",
    )
    assert assignment["resourceDisplayName"] == "Office 365 Exchange Online"
    assert len(assignment["id"]) == 43
    assert assignment["createdDateTime"].endswith("Z")
    token = cloud.client_credentials(app["appId"], secret).json()["access_token"]
    assert claims(token)["roles"] == ["POP.AccessAsApp"]

    duplicate = admin.post(assigned_to, consent)
    assert duplicate.status_code == 400
    assert error_of(duplicate)["message"] == "Permission being assigned already exists on the object"
    assert (
        admin.post(assigned_to, consent | {"appRoleId": "00000000-0000-0000-0000-00000000abcd"}).status_code
        == 400
    )
    assert admin.post(assigned_to, consent | {"principalId": app["id"]}).status_code == 400
    assert admin.post(assigned_to, consent | {"resourceId": principal["id"]}).status_code == 400

    assert [a["id"] for a in values(admin.get(assigned_to))] == [assignment["id"]]
    assert admin.get(f"{assigned_to}/{assignment['id']}").json()["appRoleId"] == POP_ROLE_ID
    held = f"servicePrincipals/{principal['id']}/appRoleAssignments"
    assert [a["id"] for a in values(admin.get(held))] == [assignment["id"]]
    assert [a.assignment_id for a in cloud.graph.assignments_of(TENANT, principal["id"])] == [
        assignment["id"]
    ]

    assert admin.delete(f"{assigned_to}/{assignment['id']}").status_code == 204
    assert admin.get(f"{assigned_to}/{assignment['id']}").status_code == 404
    assert claims(cloud.client_credentials(app["appId"], secret).json()["access_token"])["roles"] == []

    imap = admin.post(held, consent | {"appRoleId": IMAP_ROLE_ID})
    assert imap.status_code == 201
    assert [a["appRoleId"] for a in values(admin.get(held))] == [IMAP_ROLE_ID]
    assert admin.get(f"{held}/{imap.json()['id']}").json()["resourceId"] == exchange.object_id
    assert admin.delete(f"{held}/{imap.json()['id']}").status_code == 204
    assert values(admin.get(held)) == []


def test_assignments_of_a_deleted_principal_go_with_it(cloud: Cloud, admin: Caller) -> None:
    exchange = cloud.graph.service_principal_of(TENANT, EXCHANGE_ONLINE_APP_ID)
    assert exchange is not None
    principal = admin.create_sp(admin.create_app()["appId"])
    cloud.graph.grant(TENANT, principal["id"], exchange.object_id, POP_ROLE_ID)

    assert admin.delete(f"servicePrincipals/{principal['id']}").status_code == 204
    assert values(admin.get(f"servicePrincipals/{exchange.object_id}/appRoleAssignedTo")) == []


# -- directory objects ----------------------------------------------------------------------------------


def test_directory_objects_of_every_kind(cloud: Cloud, admin: Caller) -> None:
    user = cloud.graph.add_user(TENANT, "edi@contoso.de", "EDI")
    app = admin.create_app()
    principal = admin.create_sp(app["appId"])
    kinds = {
        user: "#microsoft.graph.user",
        app["id"]: "#microsoft.graph.application",
        principal["id"]: "#microsoft.graph.servicePrincipal",
    }

    for object_id, kind in kinds.items():
        found = admin.get(f"directoryObjects/{object_id}").json()
        assert (found["@odata.type"], found["id"]) == (kind, object_id)
    assert admin.get("directoryObjects/00000000-0000-0000-0000-000000000002").status_code == 404
    every = admin.post("directoryObjects/getByIds", {"ids": [*kinds, "00000000-0000-0000-0000-000000000003"]})
    assert [(o["id"], o["@odata.type"]) for o in values(every)] == list(kinds.items())
    users = admin.post("directoryObjects/getByIds", {"ids": list(kinds), "types": ["user"]})
    assert [o["displayName"] for o in values(users)] == ["EDI"]


def test_the_caller_is_a_service_principal_of_its_tenant(cloud: Cloud) -> None:
    caller = cloud.caller(READ)

    me = caller.get(f"directoryObjects/{caller.object_id}").json()
    other = cloud.caller(READ, tenant=OTHER_TENANT)

    assert me["@odata.type"] == "#microsoft.graph.servicePrincipal"
    assert other.get(f"directoryObjects/{caller.object_id}").status_code == 404


# -- faults ---------------------------------------------------------------------------------------------


def test_new_objects_are_invisible_for_a_while(cloud: Cloud, admin: Caller) -> None:
    before = admin.create_app("before")
    cloud.graph.faults.consistency_reads = 2
    app = admin.create_app("new")
    listed = admin.create_app("listed")

    assert [admin.get(f"applications/{app['id']}").status_code for _ in range(3)] == [404, 404, 200]
    by_name = {"$filter": "displayName eq 'listed'"}
    assert [len(values(admin.get("applications", **by_name))) for _ in range(3)] == [0, 0, 1]
    assert admin.get(f"applications/{before['id']}").status_code == 200
    hidden = admin.get(f"applications/{admin.create_app('again')['id']}")
    assert error_of(hidden)["code"] == "Request_ResourceNotFound"
    assert listed["id"] in {a["id"] for a in values(admin.get("applications"))}


def test_consistency_can_cover_patch(cloud: Cloud, admin: Caller) -> None:
    cloud.graph.faults.consistency_reads = 1
    cloud.graph.faults.consistency_methods = frozenset({"GET", "PATCH"})
    app = admin.create_app()

    assert admin.patch(f"applications/{app['id']}", {"displayName": "TERRAFORM_UPDATE_1"}).status_code == 404
    assert admin.patch(f"applications/{app['id']}", {"displayName": "POP3APP"}).status_code == 204
    assert admin.get(f"applications/{app['id']}").status_code == 200


def test_throttling_answers_429_with_retry_after(cloud: Cloud, admin: Caller) -> None:
    cloud.graph.faults.throttle_next = 1
    cloud.graph.faults.retry_after = 7

    throttled = admin.get("applications")

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert error_of(throttled)["code"] == "TooManyRequests"
    assert admin.get("applications").status_code == 200


# -- logs, reset and helpers ----------------------------------------------------------------------------


def test_write_log_records_successful_writes_in_order(cloud: Cloud, admin: Caller) -> None:
    exchange = cloud.graph.service_principal_of(TENANT, EXCHANGE_ONLINE_APP_ID)
    assert exchange is not None
    app = admin.create_app()
    principal = admin.create_sp(app["appId"])
    admin.patch(f"applications/{app['id']}", {"notes": "n"})
    admin.post(f"applications/{app['id']}/addPassword", {})
    consent = {"principalId": principal["id"], "resourceId": exchange.object_id, "appRoleId": POP_ROLE_ID}
    assignment = admin.post(f"servicePrincipals/{exchange.object_id}/appRoleAssignedTo", consent).json()
    admin.post(f"servicePrincipals/{exchange.object_id}/appRoleAssignedTo", consent)
    admin.delete(f"applications/{app['id']}")

    writes = cloud.graph.writes
    assert [(w.method, w.object_kind, w.object_id) for w in writes] == [
        ("POST", "application", app["id"]),
        ("POST", "servicePrincipal", principal["id"]),
        ("PATCH", "application", app["id"]),
        ("POST", "application", app["id"]),
        ("POST", "appRoleAssignment", assignment["id"]),
        ("DELETE", "application", app["id"]),
    ]
    assert writes[3].path == f"/v1.0/applications/{app['id']}/addPassword"
    assert [w.seq for w in writes] == sorted({w.seq for w in writes})
    assert writes[0].seq <= time.monotonic_ns()


def test_reset_forgets_everything(cloud: Cloud, admin: Caller) -> None:
    app = admin.create_app()
    secret = admin.post(f"applications/{app['id']}/addPassword", {}).json()["secretText"]
    cloud.graph.faults.page_size = 1

    cloud.graph.reset()

    graph = cloud.graph
    assert (graph.tenants, graph.writes, graph.issued_secrets, graph.paths, graph.faults.page_size) == (
        {},
        [],
        [],
        [],
        0,
    )
    assert (TENANT, app["appId"]) not in cloud.entra.apps
    assert cloud.client_credentials(app["appId"], secret).status_code == 400


def test_drift_by_hand(cloud: Cloud, admin: Caller) -> None:
    exchange = cloud.graph.service_principal_of(TENANT, EXCHANGE_ONLINE_APP_ID)
    assert exchange is not None
    app = cloud.graph.add_application(TENANT, "POP3APP")
    principal = cloud.graph.add_service_principal(TENANT, app.app_id, "POP3APP")
    consent = cloud.graph.grant(TENANT, principal.object_id, exchange.object_id, POP_ROLE_ID)

    cloud.graph.set_required_resource_access(TENANT, app.object_id, [])
    cloud.graph.remove_assignment(TENANT, consent.assignment_id)

    assert admin.get(f"applications/{app.object_id}").json()["requiredResourceAccess"] == []
    assert cloud.graph.find_applications(TENANT, "POP3APP") == [app]
    assert cloud.graph.service_principal_of(TENANT, app.app_id) == principal
    assert cloud.graph.assignments_of(TENANT, principal.object_id) == []
    assert values(admin.get(f"servicePrincipals/{principal.object_id}/appRoleAssignments")) == []
    assert cloud.graph.writes == []


def retried(
    send: Callable[[], requests.Response], *, retry_on: tuple[int, ...] = (404,)
) -> requests.Response:
    """What go-azure-sdk's clients do while an object replicates: send again on 404 (bounded here)."""
    for _ in range(10):
        response = send()
        if response.status_code not in retry_on:
            return response
    raise AssertionError(f"still {response.status_code} after 10 attempts")


def test_the_azuread_provider_round_trip(cloud: Cloud, admin: Caller) -> None:
    """The requests terraform-provider-azuread v3 makes for this project's resources, in its order."""
    cloud.graph.faults.consistency_reads = 2
    cloud.graph.faults.consistency_methods = frozenset({"GET", "PATCH"})
    beta = Caller(cloud, admin.token, admin.object_id, version="beta")
    caller_ref = f"{cloud.graph_url}/v1.0/directoryObjects/{admin.object_id}"

    exchange = values(admin.get("servicePrincipals", **{"$filter": f"appId eq '{EXCHANGE_ONLINE_APP_ID}'"}))[
        0
    ]
    assert (
        beta.get(f"servicePrincipals/{exchange['id']}", **{"$select": "samlMetadataUrl"}).status_code == 200
    )
    pop_role = next(r["id"] for r in exchange["appRoles"] if r["value"] == "POP.AccessAsApp")

    app = admin.create_app(
        "POP3APP", signInAudience="AzureADMyOrg", tags=["pop3-oauth"], **{"owners@odata.bind": [caller_ref]}
    )
    for name in ("TERRAFORM_UPDATE_0f1e", "POP3APP"):
        rename = functools.partial(admin.patch, f"applications/{app['id']}", {"displayName": name})
        assert retried(rename).status_code == 204
    assert admin.delete(f"applications/{app['id']}/owners/{admin.object_id}/$ref").status_code == 204
    assert admin.get(f"applications/{app['id']}").json()["displayName"] == "POP3APP"
    assert (
        beta.get(f"applications/{app['id']}", **{"$select": "oauth2RequirePostResponse"}).status_code == 200
    )
    assert values(admin.get(f"applications/{app['id']}/owners")) == []

    assert values(admin.get("servicePrincipals", **{"$filter": f"appId eq '{app['appId']}'"})) == []
    principal = admin.create_sp(
        app["appId"], description="TERRAFORM_UPDATE_2a3b", **{"owners@odata.bind": [caller_ref]}
    )
    patched = retried(lambda: admin.patch(f"servicePrincipals/{principal['id']}", {"description": None}))
    assert patched.status_code == 204
    assert (
        admin.delete(f"servicePrincipals/{principal['id']}/owners/{admin.object_id}/$ref").status_code == 204
    )
    assert retried(lambda: admin.get(f"servicePrincipals/{principal['id']}")).status_code == 200

    assert admin.get(f"servicePrincipals/{exchange['id']}").status_code == 200
    consent = {"appRoleId": pop_role, "principalId": principal["id"], "resourceId": exchange["id"]}
    assigned = admin.post(f"servicePrincipals/{exchange['id']}/appRoleAssignedTo", consent)
    assert assigned.status_code == 201
    assignment_path = f"servicePrincipals/{exchange['id']}/appRoleAssignedTo/{assigned.json()['id']}"
    assert retried(lambda: admin.get(assignment_path)).status_code == 200

    assert admin.get(f"applications/{app['id']}").status_code == 200
    end = "2099-06-01T00:00:00Z"
    password = admin.post(
        f"applications/{app['id']}/addPassword",
        {"passwordCredential": {"displayName": "slot 0", "endDateTime": end}},
    ).json()
    credentials = admin.get(f"applications/{app['id']}").json()["passwordCredentials"]
    assert [(c["keyId"], c["endDateTime"]) for c in credentials] == [(password["keyId"], end)]
    token = cloud.client_credentials(app["appId"], password["secretText"]).json()["access_token"]
    assert (claims(token)["oid"], claims(token)["roles"]) == (principal["id"], ["POP.AccessAsApp"])

    assert (
        admin.post(f"applications/{app['id']}/removePassword", {"keyId": password["keyId"]}).status_code
        == 204
    )
    assert admin.get(f"applications/{app['id']}").json()["passwordCredentials"] == []
    assert admin.delete(assignment_path).status_code == 204
    assert admin.delete(f"servicePrincipals/{principal['id']}").status_code == 204
    assert admin.get(f"servicePrincipals/{principal['id']}").status_code == 404
    assert admin.delete(f"applications/{app['id']}").status_code == 204
    assert admin.get(f"applications/{app['id']}").status_code == 404
    kinds = [w.object_kind for w in cloud.graph.writes]
    assert kinds.count("application") == 7
    assert kinds.index("servicePrincipal") < kinds.index("appRoleAssignment") < len(kinds) - 3


# -- the HTTPS server -----------------------------------------------------------------------------------


def test_https_server_serves_every_method_and_empty_204s(certs: TestCertificates) -> None:
    seen: list[tuple[str, bytes]] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append((request.method, request.body))
        return HttpResponse(204, b"ignored", {"X-Seen": request.method})

    with HttpsServer(handler, certs) as server, requests.Session() as session:
        session.verify = str(certs.ca_bundle)
        session.trust_env = False  # as in the servers fixture
        answers = [
            session.request(m, server.base_url, data=m.encode(), timeout=10)
            for m in ("PUT", "PATCH", "DELETE")
        ]

    assert seen == [("PUT", b"PUT"), ("PATCH", b"PATCH"), ("DELETE", b"DELETE")]
    assert [(a.status_code, a.content, a.headers.get("Content-Length")) for a in answers] == [
        (204, b"", None)
    ] * 3
    assert [a.headers["X-Seen"] for a in answers] == ["PUT", "PATCH", "DELETE"]


def test_responses_carry_request_ids(cloud: Cloud, admin: Caller) -> None:
    answer = admin.request("GET", "applications", headers={"client-request-id": "mine"})

    assert answer.headers["client-request-id"] == "mine"
    assert len(answer.headers["request-id"]) == 36
    assert answer.headers["Content-Type"].startswith("application/json")
