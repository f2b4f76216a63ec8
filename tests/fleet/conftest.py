"""Recorded engine documents and scripted runners for the fleet report tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mscloud.auth import shared_token_source
from popctl.previews import PreviewResult, parse_engine_document
from sandbox.entra import EntraFake
from sandbox.exchange import ExchangeFake
from sandbox.graph import GraphFake
from sandbox.tls import HttpsServer, make_certificates

PROJECT = "pop3-oauth"
COMPONENT = "pop3-oauth:tenant:Pop3Tenant"
APPLICATION = "azuread:index/application:Application"
PASSWORD = "azuread:index/applicationPassword:ApplicationPassword"
NOW = "2025-03-01T12:00:00Z"
SECRET_VALUE = "Zq8~top-secret-client-secret-value"


def urn(stack: str, type_: str, name: str, parent: str | None = COMPONENT) -> str:
    chain = f"{parent}${type_}" if parent else type_
    return f"urn:pulumi:{stack}::{PROJECT}::{chain}::{name}"


def stack_step(stack: str) -> dict[str, Any]:
    return {"op": "same", "urn": urn(stack, "pulumi:pulumi:Stack", f"{PROJECT}-{stack}", parent=None)}


def in_sync_document(stack: str) -> dict[str, Any]:
    return {
        "steps": [stack_step(stack), {"op": "same", "urn": urn(stack, APPLICATION, "pop3-app")}],
        "changeSummary": {"same": 2},
    }


def drift_document(stack: str) -> dict[str, Any]:
    """A refresh preview where someone renamed the app and a secret vanished, as the engine prints it."""
    return {
        "steps": [
            stack_step(stack),
            {
                "op": "refresh",
                "urn": urn(stack, APPLICATION, "pop3-app"),
                "oldState": {"outputs": {"displayName": "POP3 contoso", "signInAudience": "AzureADMyOrg"}},
                "newState": {"outputs": {"displayName": "renamed by hand", "signInAudience": "AzureADMyOrg"}},
            },
            {
                "op": "update",
                "urn": urn(
                    stack, "pulumi-python:dynamic/exchange:MailboxPermission", "pop3-fullaccess-edi@x.de"
                ),
                "detailedDiff": {"accessRights[0]": {"kind": "delete", "inputDiff": False}},
                "diffReasons": ["accessRights"],
            },
            {"op": "refresh", "urn": urn(stack, PASSWORD, "pop3-secret-1"), "oldState": {"outputs": {}}},
        ],
    }


def pending_document(stack: str) -> dict[str, Any]:
    """A preview where a rotation is due: slot 2 is replaced."""
    return {
        "steps": [
            stack_step(stack),
            {"op": "same", "urn": urn(stack, APPLICATION, "pop3-app")},
            {
                "op": "replace",
                "urn": urn(stack, PASSWORD, "pop3-secret-2"),
                "replaceReasons": ["endDate", "rotateWhenChanged"],
                "detailedDiff": {
                    "endDate": {"kind": "update-replace"},
                    "rotateWhenChanged.generation": {"kind": "update-replace"},
                },
            },
        ],
    }


def outputs_document(stack: str, *expires_at: str, hand_made: str | None = None) -> dict[str, Any]:
    secrets: list[dict[str, Any]] = [
        {
            "keyId": f"{index:08d}-aaaa-bbbb-cccc-{stack[:4]:>012}",
            "displayName": f"pop3-secret-{index}",
            "slot": index,
            "createdAt": "2025-01-01T00:00:00Z",
            "expiresAt": value,
            "managed": True,
            "status": ("current", "previous", "retiring")[min(index, 2)],
        }
        for index, value in enumerate(expires_at or ("2025-09-01T00:00:00Z",))
    ]
    if hand_made is not None:
        secrets.append(
            {
                "keyId": "99999999-hand-made-0000-000000000000",
                "displayName": "POP3 secret (portal)",
                "slot": None,
                "createdAt": None,
                "expiresAt": hand_made,
                "managed": False,
                "status": "adopted",
            }
        )
    return {
        "tenantId": f"{stack}-tenant-id",
        "clientId": "11111111-2222-3333-4444-555555555555",
        "clientSecret": SECRET_VALUE,
        "conceptOffice": {"clientSecret": SECRET_VALUE, "tenantId": f"{stack}-tenant-id"},
        "secrets": secrets,
    }


def write_recorded(root: Path, stack: str, **documents: object) -> None:
    """Write ``refresh``/``preview``/``outputs`` documents for ``stack`` in the recorded layout."""
    directory = root / stack
    directory.mkdir(parents=True, exist_ok=True)
    for kind, document in documents.items():
        (directory / f"{kind}.json").write_text(json.dumps(document), encoding="utf-8")


Answer = Callable[[str], object]


class ScriptedRunner:
    """A PreviewRunner whose answers are engine documents, exceptions, or callables producing either."""

    def __init__(
        self,
        refresh: Mapping[str, object] | None = None,
        preview: Mapping[str, object] | None = None,
        outputs: Mapping[str, object] | None = None,
        before: Callable[[str], object] | None = None,
    ) -> None:
        self._answers = {"refresh": refresh or {}, "preview": preview or {}, "outputs": outputs or {}}
        self._before = before
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _answer(self, kind: str, stack: str) -> object:
        with self._lock:
            self.calls.append((kind, stack))
        if self._before is not None:
            self._before(stack)
        answer = self._answers[kind].get(stack)
        if answer is None:
            answer = outputs_document(stack) if kind == "outputs" else in_sync_document(stack)
        if callable(answer):
            answer = answer(stack)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def refresh_preview(self, stack: str) -> PreviewResult:
        return parse_engine_document(self._answer("refresh", stack))

    def preview(self, stack: str) -> PreviewResult:
        return parse_engine_document(self._answer("preview", stack))

    def outputs(self, stack: str) -> Mapping[str, Any]:
        answer = self._answer("outputs", stack)
        assert isinstance(answer, dict)
        return answer


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POP3_OAUTH_NOW", NOW)
    return NOW


@pytest.fixture
def recorded_fleet(tmp_path: Path) -> Path:
    """Five tenants, one per state: in sync, drifted, pending, error (credentials), expiring secret."""
    root = tmp_path / "recorded"
    write_recorded(
        root,
        "alpha",
        refresh=in_sync_document("alpha"),
        preview=in_sync_document("alpha"),
        outputs=outputs_document("alpha", "2025-09-01T00:00:00Z"),
    )
    write_recorded(
        root,
        "bravo",
        refresh=drift_document("bravo"),
        preview=in_sync_document("bravo"),
        outputs=outputs_document("bravo"),
    )
    write_recorded(
        root,
        "charlie",
        refresh=in_sync_document("charlie"),
        preview=pending_document("charlie"),
        outputs=outputs_document("charlie"),
    )
    write_recorded(
        root,
        "delta",
        refresh={"error": "ARM_CLIENT_ID is not set: no credentials for tenant"},
        preview={"error": "ARM_CLIENT_ID is not set: no credentials for tenant"},
        outputs=outputs_document("delta"),
    )
    write_recorded(
        root,
        "echo",
        refresh=in_sync_document("echo"),
        preview=in_sync_document("echo"),
        outputs=outputs_document("echo", "2025-09-01T00:00:00Z", hand_made="2025-03-15T00:00:00Z"),
    )
    write_recorded(root, "example", refresh={"error": "never checked"})
    return root


TENANT = "6f1c7b2a-3d4e-4f50-8a9b-0c1d2e3f4a5b"
DEPLOYER_ID = "0a0b0c0d-1111-2222-3333-444455556666"
DEPLOYER_SECRET = "deployer~secret~value~123"
HAND_MADE_SECRET = "HMd8Q~hand-made-secret-value-never-printed"
MAILBOX = "edi@contoso.de"


@dataclass
class MicrosoftFakes:
    """Entra, Graph and Exchange fakes served over HTTPS, with the environment pointing popctl at them."""

    entra: EntraFake
    graph: GraphFake
    exchange: ExchangeFake
    graph_url: str


@pytest.fixture
def microsoft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MicrosoftFakes]:
    certificates = make_certificates(tmp_path / "certs")
    entra = EntraFake()
    graph = GraphFake(entra)
    exchange = ExchangeFake(entra)
    with (
        HttpsServer(entra.handle, certificates) as entra_server,
        HttpsServer(graph.handle, certificates) as graph_server,
        HttpsServer(exchange.handle, certificates) as exchange_server,
    ):
        entra.base_url = entra_server.base_url
        graph.base_url = graph_server.base_url
        exchange.base_url = exchange_server.base_url
        entra.add_app(
            TENANT,
            DEPLOYER_ID,
            secrets={DEPLOYER_SECRET: None},
            roles={
                "https://outlook.office365.com": ["Exchange.ManageAsApp"],
                graph_server.base_url: ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"],
            },
        )
        for name, value in {
            "POP3_OAUTH_AUTHORITY_HOST": entra_server.base_url,
            "POP3_OAUTH_GRAPH_URL": graph_server.base_url,
            "POP3_OAUTH_EXCHANGE_URL": exchange_server.base_url,
            "REQUESTS_CA_BUNDLE": str(certificates.ca_bundle),
            "ARM_CLIENT_ID": DEPLOYER_ID,
            "ARM_CLIENT_SECRET": DEPLOYER_SECRET,
            "POP3_OAUTH_NOW": NOW,
            "POP3_OAUTH_TOKEN_CACHE": str(tmp_path / "no-token-cache.json"),
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("ARM_CLIENT_CERTIFICATE_PATH", "ARM_USE_OIDC"):
            monkeypatch.delenv(name, raising=False)
        shared_token_source().clear()
        try:
            yield MicrosoftFakes(entra, graph, exchange, graph_server.base_url)
        finally:
            shared_token_source().clear()
