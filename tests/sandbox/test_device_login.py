"""The device-code sign-in of ``popctl login`` can be completed in the sandbox: its /devicelogin page."""

from __future__ import annotations

import jwt
import requests

from sandbox.entra import EXO_POWERSHELL_CLIENT_ID
from tests.sandbox.conftest import World

ADMIN = "admin@sandbox.example"


def _post(world: World, path: str, data: dict[str, str]) -> requests.Response:
    return requests.post(
        world.emulator.base_url + path,
        data=data,
        verify=str(world.emulator.certificates.ca_bundle),
        timeout=10,
    )


def test_the_page_approves_a_pending_sign_in_and_the_token_names_the_account(world: World) -> None:
    tenant = world.tenant.tenant_id
    scope = "https://outlook.office365.com/.default offline_access"
    flow = _post(
        world, f"/{tenant}/oauth2/v2.0/devicecode", {"client_id": EXO_POWERSHELL_CLIENT_ID, "scope": scope}
    )
    assert flow.status_code == 200
    started = flow.json()
    assert started["verification_uri"] == world.emulator.base_url + "/devicelogin"
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": EXO_POWERSHELL_CLIENT_ID,
        "device_code": started["device_code"],
    }
    assert _post(world, f"/{tenant}/oauth2/v2.0/token", poll).json()["error"] == "authorization_pending"

    assert _post(world, "/devicelogin", {"user_code": "WRONG", "upn": ADMIN}).status_code == 404
    page = requests.get(
        world.emulator.base_url + "/devicelogin",
        verify=str(world.emulator.certificates.ca_bundle),
        timeout=10,
    )
    assert "user_code" in page.text
    approved = _post(world, "/devicelogin", {"user_code": started["user_code"].lower(), "upn": ADMIN})
    assert approved.status_code == 200, approved.text

    token = _post(world, f"/{tenant}/oauth2/v2.0/token", poll).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["upn"] == ADMIN
