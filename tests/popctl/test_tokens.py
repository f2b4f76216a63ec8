"""Token acquisition against the Entra fake: fresh tokens, endpoint failures, nothing secret in errors."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from mscloud.causes import Cause
from mscloud.clouds import CLOUDS
from mscloud.entra import AppTokenRequest, TokenClaims, TokenRequestFailed, fresh_app_token
from sandbox.tls import TestCertificates as Certificates
from tests.popctl.conftest import SECRET, TENANT, Entra

SCOPE = "https://outlook.office365.com/.default"


def request_for(entra: Entra, certs: Certificates | None, authority: str | None = None) -> AppTokenRequest:
    cloud = replace(CLOUDS["public"], authority_host=authority or entra.base_url)
    return AppTokenRequest(TENANT, entra.app.client_id, cloud, SCOPE, certs.ca_bundle if certs else None, 5)


@pytest.mark.usefixtures("clean_env")
def test_every_call_asks_the_token_endpoint_again(entra: Entra, certs: Certificates) -> None:
    first = fresh_app_token(request_for(entra, certs), SECRET)
    entra.revoke_pop()
    second = fresh_app_token(request_for(entra, certs), SECRET)

    assert entra.fake.requests["token"] == 2
    assert TokenClaims.from_token(first).roles == ("POP.AccessAsApp",)
    assert TokenClaims.from_token(second).roles == ()


@pytest.mark.usefixtures("clean_env")
def test_untrusted_token_endpoint(entra: Entra, other_certs: Certificates) -> None:
    with pytest.raises(TokenRequestFailed) as caught:
        fresh_app_token(request_for(entra, other_certs), SECRET)

    assert caught.value.cause is Cause.TLS_FAILURE
    assert "not trusted" in str(caught.value)


@pytest.mark.usefixtures("clean_env")
def test_token_endpoint_down(entra: Entra, certs: Certificates) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed = f"https://127.0.0.1:{probe.getsockname()[1]}"

    with pytest.raises(TokenRequestFailed) as caught:
        fresh_app_token(request_for(entra, certs, closed), SECRET)

    assert caught.value.cause is Cause.TOKEN_ENDPOINT_UNREACHABLE
    assert SECRET not in str(caught.value)


@pytest.mark.usefixtures("clean_env")
def test_invalid_secret_error_carries_code_but_not_the_secret(entra: Entra, certs: Certificates) -> None:
    with pytest.raises(TokenRequestFailed) as caught:
        fresh_app_token(request_for(entra, certs), "wrong-" + SECRET)

    assert (caught.value.cause, caught.value.codes) == (Cause.INVALID_SECRET, (7000215,))
    assert SECRET not in str(caught.value) and "Trace ID" not in str(caught.value)
