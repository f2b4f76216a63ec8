"""Token sources against the Entra fake: app-only credentials, delegated device-code sign-in, failures."""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import jwt
import pytest

from mscloud import auth
from mscloud.auth import CredentialsMissing, MsalTokenSource, credential_kind, device_code_login, logout
from mscloud.entra import AuthError, TokenRequestFailed
from mscloud.exchange import ExchangeClient
from sandbox.entra import EXCHANGE_RESOURCE, self_signed_certificate
from sandbox.tls import HttpRequest
from tests.exchange.conftest import DEPLOYER_CLIENT_ID, DEPLOYER_SECRET, Fakes, Tenant


def claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_client_secret_token_is_for_the_resources_tenant_not_arm_tenant_id(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ARM_TENANT_ID", "11111111-1111-1111-1111-111111111111")

    token = MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)

    assert claims(token)["tid"] == tenant.tenant_id
    assert claims(token)["aud"] == EXCHANGE_RESOURCE
    assert claims(token)["roles"] == ["Exchange.ManageAsApp"]


def test_one_token_request_per_process_across_threads(fakes: Fakes, tenant: Tenant, arm_env: dict[str, str]):
    source = MsalTokenSource()
    tokens: list[str] = []
    fakes.entra.delay_next_token_requests, fakes.entra.delay_seconds = 1, 0.3

    workers = [
        threading.Thread(target=lambda: tokens.append(source.get_token(tenant.tenant_id, fakes.cloud)))
        for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert fakes.entra.requests["token"] == 1


def test_graph_scope_is_served_by_the_same_source(fakes: Fakes, tenant: Tenant, arm_env: dict[str, str]):
    token = MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud, fakes.cloud.graph_scope)

    assert claims(token)["aud"] == "https://graph.microsoft.com"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"ARM_CLIENT_SECRET": "wrong-secret-value"}, 7000215),
        ({"ARM_CLIENT_ID": "22222222-2222-2222-2222-222222222222"}, 700016),
    ],
)
def test_entra_refusals_carry_the_aadsts_code_but_never_the_secret(
    fakes: Fakes,
    tenant: Tenant,
    arm_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, str],
    code: int,
):
    for name, value in change.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(TokenRequestFailed) as caught:
        MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)

    assert code in caught.value.codes
    assert f"AADSTS{code}" in str(caught.value)
    secret = os.environ["ARM_CLIENT_SECRET"]
    assert secret not in str(caught.value) and secret not in caplog.text


def test_expired_secret_says_so(fakes: Fakes, tenant: Tenant, arm_env: dict[str, str]):
    tenant.deployer.secrets[DEPLOYER_SECRET] = 1.0

    with pytest.raises(TokenRequestFailed, match="has expired") as caught:
        MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)

    assert caught.value.codes == (7000222,)


def test_unknown_tenant_fails_clearly(fakes: Fakes, arm_env: dict[str, str]):
    with pytest.raises(TokenRequestFailed, match="33333333-3333-3333-3333-333333333333"):
        MsalTokenSource().get_token("33333333-3333-3333-3333-333333333333", fakes.cloud)


def test_certificate_credential(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    certificate, key = self_signed_certificate()
    tenant.deployer.certificates.append(certificate)
    pem = tmp_path / "deployer.pem"
    pem.write_bytes(key + certificate)
    monkeypatch.delenv("ARM_CLIENT_SECRET")
    monkeypatch.setenv("ARM_CLIENT_CERTIFICATE_PATH", str(pem))

    token = MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)

    assert claims(token)["appid"] == DEPLOYER_CLIENT_ID
    assert "CERTIFICATE" in credential_kind()


def test_oidc_token_from_the_environment(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    tenant.deployer.federated_subjects.add("ci-subject")
    monkeypatch.delenv("ARM_CLIENT_SECRET")
    monkeypatch.setenv("ARM_USE_OIDC", "true")
    monkeypatch.setenv("ARM_OIDC_TOKEN", fakes.entra.federated_token("ci-subject"))

    assert claims(MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud))["tid"] == tenant.tenant_id


def test_oidc_token_from_github_actions(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    tenant.deployer.federated_subjects.add(fakes.entra.github_subject)
    monkeypatch.delenv("ARM_CLIENT_SECRET")
    monkeypatch.setenv("ARM_USE_OIDC", "true")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{fakes.authority_host}/github-actions/idtoken")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", fakes.entra.github_request_token)

    assert claims(MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud))["appid"] == DEPLOYER_CLIENT_ID
    assert fakes.entra.requests["github-oidc"] >= 1


def test_without_credentials_the_error_says_what_to_do(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("ARM_CLIENT_ID")

    with pytest.raises(CredentialsMissing) as caught:
        MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)

    assert "ARM_CLIENT_SECRET" in str(caught.value)
    assert f"python -m popctl login --tenant-id {tenant.tenant_id}" in str(caught.value)
    assert credential_kind().startswith("none")


def sign_in(fakes: Fakes, tenant: Tenant, upn: str = "admin@contoso.com") -> str:
    prompts: list[str] = []

    def approve(message: str) -> None:
        prompts.append(message)
        (code,) = [code for code in fakes.entra.pending_user_codes() if code in message]
        fakes.entra.approve_device_code(code, upn)

    signed_in = device_code_login(tenant.tenant_id, fakes.cloud, prompt=approve)
    assert len(prompts) == 1
    return signed_in


def test_device_code_login_fills_a_private_cache_that_the_provider_uses(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("ARM_CLIENT_ID")
    monkeypatch.delenv("ARM_CLIENT_SECRET")

    assert sign_in(fakes, tenant) == "admin@contoso.com"

    cache = auth.token_cache_path()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert credential_kind() == f"delegated (token cache {cache})"
    token = MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)
    assert claims(token)["scp"] == "AdminApi.AccessAsUser.All"
    client = ExchangeClient(tenant.tenant_id, fakes.cloud, MsalTokenSource())
    assert client.invoke("Get-ServicePrincipal", {}) == []
    assert fakes.exchange.requests["InvokeCommand"] == 1


def test_logout_forgets_the_tenant(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("ARM_CLIENT_ID")
    sign_in(fakes, tenant)

    assert logout(tenant.tenant_id) is True
    assert logout(tenant.tenant_id) is False
    with pytest.raises(CredentialsMissing, match="holds no sign-in"):
        MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)
    assert logout() is True
    assert not auth.token_cache_path().exists()


def test_a_cache_readable_by_others_is_refused(
    fakes: Fakes, tenant: Tenant, arm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("ARM_CLIENT_ID")
    sign_in(fakes, tenant)
    auth.token_cache_path().chmod(0o644)

    with pytest.raises(AuthError, match="chmod 600"):
        MsalTokenSource().get_token(tenant.tenant_id, fakes.cloud)


def test_fake_rejects_tokens_it_did_not_sign(fakes: Fakes, tenant: Tenant):
    request = HttpRequest(
        "POST",
        f"/adminapi/beta/{tenant.tenant_id}/InvokeCommand",
        {},
        {"authorization": "Bearer not-a-jwt"},
        b"{}",
        "",
    )

    assert fakes.exchange.handle(request).status == 401
