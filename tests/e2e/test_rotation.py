"""Scenario h: secret rotation under the real engine, the program's clock moved with ``POP3_OAUTH_NOW``.

The rotation issue (#9) redesigns the schedule's memory; these scenarios are the harness it proves itself
on. What the current design gets wrong under the real engine is recorded as strict xfails, so the day it
is fixed the suite says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.e2e.harness import SECRET_MASK, Project

PASSWORD_TYPE = "azuread:index/applicationPassword:ApplicationPassword"


def _moment(text: str, delta: timedelta = timedelta()) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")) + delta
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _password_steps(document: dict[str, object]) -> dict[str, str]:
    steps = document.get("steps") or []
    assert isinstance(steps, list)
    return {
        step["urn"].rsplit("::", 1)[-1]: step["op"]
        for step in steps
        if f"${PASSWORD_TYPE}::" in step["urn"] or step["urn"].endswith(f"::{PASSWORD_TYPE}")
    }


def _signs_in(project: Project, secret: str) -> bool:
    response = requests.post(
        f"{project.microsoft.entra_url}/{project.tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": project.outputs()["clientId"],
            "client_secret": secret,
            "scope": "https://outlook.office365.com/.default",
        },
        verify=str(project.microsoft.certificates.ca_bundle),
        timeout=30,
    )
    return response.status_code == 200


@pytest.fixture
def rotating(project: Project) -> Project:
    project.init_stack("rotation", settings={"secretRotationDays": 30})
    project.up(env={"POP3_OAUTH_NOW": "2026-12-01T08:00:00Z"})
    return project


def test_a_due_rotation_replaces_exactly_one_secret_and_keeps_the_previous_valid(rotating: Project) -> None:
    first = rotating.outputs(show_secrets=True)
    due = _moment(first["nextSecretRotationAt"], timedelta(hours=1))
    before = _moment(first["nextSecretRotationAt"], -timedelta(hours=1))

    # `preview --json` lists only the steps that do something.
    quiet = rotating.preview("--json", env={"POP3_OAUTH_NOW": before}).json()
    assert set(_password_steps(quiet).values()) <= {"same"}, quiet

    planned = rotating.preview("--json", env={"POP3_OAUTH_NOW": due}).json()
    replaced = [name for name, op in _password_steps(planned).items() if op == "replace"]
    assert len(replaced) == 1, planned

    rotating.up(env={"POP3_OAUTH_NOW": due})
    second = rotating.outputs(show_secrets=True)
    assert second["clientSecret"] != first["clientSecret"]
    assert _signs_in(rotating, second["clientSecret"])
    assert _signs_in(rotating, first["clientSecret"]), "the secret the ERP still uses was revoked"
    key_ids = {secret["keyId"] for secret in first["secrets"]} & {s["keyId"] for s in second["secrets"]}
    assert len(key_ids) == 2


def test_schedule_outputs_stay_plain_from_the_second_update_on(rotating: Project) -> None:
    rotating.up(env={"POP3_OAUTH_NOW": "2026-12-02T08:00:00Z"})
    outputs = rotating.outputs()
    for name in ("secrets", "clientSecretExpiresAt", "nextSecretRotationAt", "secretSchedule"):
        assert outputs[name] != SECRET_MASK, name
