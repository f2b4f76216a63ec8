"""The Graph client: paging, throttling, error classification, no tokens in errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mscloud.clouds import get_cloud
from mscloud.graph import GraphAccessDenied, GraphClient, GraphError, GraphNotFound
from sandbox.entra import EntraFake
from sandbox.graph import GraphFake
from sandbox.tls import HttpRequest, HttpResponse, HttpsServer, make_certificates
from tests.fakes.clock import FakeClock
from tests.fleet.conftest import TENANT


class StaticTokens:
    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[str | None] = []

    def get_token(self, tenant_id, cloud, scope=None):
        self.scopes.append(scope)
        return self.token


@pytest.fixture
def certs(tmp_path: Path):
    return make_certificates(tmp_path / "certs")


@pytest.fixture
def served(certs, monkeypatch):
    entra = EntraFake()
    graph = GraphFake(entra)
    with HttpsServer(graph.handle, certs) as server:
        graph.base_url = server.base_url
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.ca_bundle))
        app = entra.add_app(TENANT, roles={server.base_url: ["Application.Read.All"]})
        token = entra.issue_token(app, server.base_url)
        cloud = get_cloud("public").with_overrides({"POP3_OAUTH_GRAPH_URL": server.base_url})
        yield graph, cloud, StaticTokens(token)


def test_lists_follow_paging_and_filters(served):
    graph, cloud, tokens = served
    for index in range(5):
        graph.add_application(TENANT, f"app-{index}")
    graph.add_application(TENANT, "it's POP3")
    graph.faults.page_size = 2
    client = GraphClient(TENANT, cloud, tokens)

    everything = client.get_all("applications")
    quoted = client.applications(display_name="it's POP3")

    assert len(everything) == 6
    assert [app["displayName"] for app in quoted] == ["it's POP3"]
    assert set(quoted[0]) == {
        "id",
        "appId",
        "displayName",
        "signInAudience",
        "requiredResourceAccess",
        "passwordCredentials",
        "createdDateTime",
        "tags",
    }
    assert tokens.scopes[0] == f"{cloud.graph_url}/.default"


def test_throttling_waits_for_retry_after(served):
    graph, cloud, tokens = served
    graph.add_exchange_online(TENANT)
    graph.faults.throttle_next = 2
    graph.faults.retry_after = 7
    waits: list[float] = []
    client = GraphClient(TENANT, cloud, tokens, sleep=waits.append)

    principal = client.service_principal_by_app_id("00000002-0000-0ff1-ce00-000000000000")

    assert principal is not None
    assert waits == [7.0, 7.0]


def test_throttling_gives_up_after_the_budget(served):
    graph, cloud, tokens = served
    graph.faults.throttle_next = 10
    graph.faults.retry_after = 40
    now = [0.0]
    client = GraphClient(
        TENANT,
        cloud,
        tokens,
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        clock=lambda: now[0],
        max_retry_seconds=60,
    )

    with pytest.raises(GraphError, match=r"HTTP 429, TooManyRequests"):
        client.get_all("applications", {"$filter": "appId eq 'x'"})
    assert now[0] == 40.0
    assert graph.faults.throttle_next == 8


def test_missing_object_and_denied_access(served):
    _, cloud, tokens = served
    client = GraphClient(TENANT, cloud, tokens)

    with pytest.raises(
        GraphNotFound, match=r"does not exist \[HTTP 404, Request_ResourceNotFound, request id "
    ):
        client.app_role_assignments("no-such-principal")

    denied = GraphClient(TENANT, cloud, StaticTokens("eyJ.not-a-valid.token"))
    with pytest.raises(GraphAccessDenied) as caught:
        denied.get_all("applications")
    assert caught.value.status == 401
    assert "eyJ" not in str(caught.value)


def test_refuses_paging_links_to_other_hosts(certs, monkeypatch):
    def handler(request: HttpRequest) -> HttpResponse:
        page = {
            "value": [{"id": "1"}],
            "@odata.nextLink": "https://evil.example/v1.0/applications?$skiptoken=2",
        }
        return HttpResponse(200, json.dumps(page).encode(), {"Content-Type": "application/json"})

    with HttpsServer(handler, certs) as server:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.ca_bundle))
        cloud = get_cloud("public").with_overrides({"POP3_OAUTH_GRAPH_URL": server.base_url})
        client = GraphClient(TENANT, cloud, StaticTokens("t"))

        with pytest.raises(GraphError, match=r"refusing a paging link to another host \(evil\.example\)"):
            client.get_all("applications")


def test_non_json_answer_and_connection_failure(certs, monkeypatch):
    def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})

    with HttpsServer(handler, certs) as server:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.ca_bundle))
        cloud = get_cloud("public").with_overrides({"POP3_OAUTH_GRAPH_URL": server.base_url})
        with pytest.raises(GraphError, match="something other than JSON"):
            GraphClient(TENANT, cloud, StaticTokens("t")).get("organization")

    closed = get_cloud("public").with_overrides({"POP3_OAUTH_GRAPH_URL": "https://127.0.0.1:9"})
    clock = FakeClock()
    client = GraphClient(
        TENANT, closed, StaticTokens("t"), timeout=(1.0, 1.0), clock=clock, sleep=clock.sleep
    )
    with pytest.raises(GraphError, match="failed: ConnectionError"):
        client.get("organization")
    # A GET that got no answer is safe to repeat: retried like any read, within the 60 s budget.
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_applications_needs_a_criterion(served):
    _, cloud, tokens = served

    with pytest.raises(ValueError, match="give client_id or display_name"):
        GraphClient(TENANT, cloud, tokens).applications()
