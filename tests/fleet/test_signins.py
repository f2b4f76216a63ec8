"""The secrets' last sign-ins from Graph's beta credential sign-in report (the Graph fake), and what is said
when the report cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mscloud.auth import shared_token_source
from popctl.signins import SignInsUnavailable, graph_reader, last_sign_ins
from tests.fleet.conftest import DEPLOYER_ID, TENANT, MicrosoftFakes

CLIENT_ID = "3c5e7a9b-1d2f-4e6a-8b0c-2d4f6a8c0e1a"
KEY = "7f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b"


def outputs(cloud: str = "public") -> dict[str, Any]:
    return {"tenantId": TENANT, "clientId": CLIENT_ID, "cloud": cloud}


def allow_reports(microsoft: MicrosoftFakes, *roles: str) -> None:
    microsoft.entra.apps[(TENANT, DEPLOYER_ID)].roles[microsoft.graph_url] = list(roles)
    shared_token_source().clear()


def test_the_latest_sign_in_per_key_is_read_from_the_beta_report(microsoft: MicrosoftFakes) -> None:
    allow_reports(microsoft, "AuditLog.Read.All")
    tables = microsoft.graph.tenant_tables
    tables.record_sign_in(TENANT, CLIENT_ID, KEY, "2026-11-20T00:00:00Z")
    tables.record_sign_in(TENANT, CLIENT_ID, KEY.upper(), "2026-11-29T00:00:00Z")
    tables.record_sign_in(TENANT, CLIENT_ID, "00000000-0000-0000-0000-00000000beef", None)
    tables.record_sign_in(
        TENANT, "another-app", "11111111-0000-0000-0000-000000000000", "2026-11-30T00:00:00Z"
    )

    found = graph_reader("mueller", outputs())

    assert found == {KEY: datetime(2026, 11, 29, tzinfo=UTC), "00000000-0000-0000-0000-00000000beef": None}
    assert any(path == "/beta/reports/appCredentialSignInActivities" for path in microsoft.graph.paths)


@pytest.mark.parametrize(
    ("roles", "premium", "expected"),
    [
        ((), True, "needs AuditLog.Read.All"),
        (("AuditLog.Read.All",), False, "no Entra ID P1"),
    ],
)
def test_a_report_that_cannot_be_read_says_why(
    microsoft: MicrosoftFakes, roles: tuple[str, ...], premium: bool, expected: str
) -> None:
    allow_reports(microsoft, *roles)
    if not premium:
        microsoft.graph.tenant_tables.without_premium(TENANT)

    with pytest.raises(SignInsUnavailable, match=expected):
        graph_reader("mueller", outputs())


def test_sovereign_clouds_have_no_report(microsoft: MicrosoftFakes) -> None:
    with pytest.raises(SignInsUnavailable, match="only in the global cloud"):
        graph_reader("mueller", outputs("usgovernment"))
    assert microsoft.graph.paths == []


def test_malformed_dates_name_the_entry() -> None:
    with pytest.raises(ValueError, match=r"appCredentialSignInActivities\[0\]"):
        last_sign_ins([{"keyId": KEY, "signInActivity": {"lastSignInDateTime": "yesterday"}}])
