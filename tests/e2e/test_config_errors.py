"""Scenario d: bad configuration through the real CLI fails before any call to Microsoft.

The program's own validation names every bad key at once; what the project file's ``config:`` schema
declares (required keys, types) the CLI checks itself, before the program runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.e2e.harness import Project


def _writes(project: Project) -> int:
    return len(project.microsoft.graph.writes) + len(project.microsoft.exchange.writes)


def _both_fail(project: Project) -> str:
    """Run ``pulumi preview`` and ``pulumi up``; both must fail and write nothing. Returns their output."""
    before = _writes(project)
    preview = project.preview(check=False)
    up = project.up(check=False)
    assert preview.code != 0, preview.describe()
    assert up.code != 0, up.describe()
    assert _writes(project) == before
    assert project.microsoft.graph.find_applications(project.tenant.tenant_id, "POP3APP") == []
    return preview.output + up.output


@pytest.fixture
def stack_with(new_project: Callable[..., Project]) -> Callable[[Mapping[str, Any]], Project]:
    def make(settings: Mapping[str, Any]) -> Project:
        project = new_project()
        project.stack = "bad-config"
        project.pulumi("stack", "init", project.stack)
        project.configure(settings)
        return project

    return make


def test_every_invalid_setting_is_named_at_once(stack_with: Callable[[Mapping[str, Any]], Project]) -> None:
    project = stack_with(
        {
            "tenantId": "not-a-guid",
            "mailboxes": ["edi@contoso.test", "EDI@contoso.test"],
            "secretRotationDays": 5,
            "mailbox": "typo@contoso.test",
        }
    )
    output = _both_fail(project)
    assert "invalid stack configuration (4 problem(s))" in output
    for expected in (
        "pop3-oauth:tenantId: must be a GUID like",
        "pop3-oauth:mailboxes: 'EDI@contoso.test' is listed twice",
        "pop3-oauth:secretRotationDays: must be a whole number of days from 7 to 243",
        "pop3-oauth:mailbox: is not a setting of this program",
    ):
        assert expected in output


def test_a_missing_required_key_gets_the_cli_schema_message(
    stack_with: Callable[[Mapping[str, Any]], Project],
) -> None:
    project = stack_with({"tenantId": "0a1b2c3d-1111-2222-3333-444455556666"})
    output = _both_fail(project)
    assert "pop3-oauth:mailboxes" in output
    assert "missing" in output.lower()
    assert "invalid stack configuration" not in output  # the CLI stopped it before the program ran


def test_a_wrong_type_gets_the_cli_schema_message(
    stack_with: Callable[[Mapping[str, Any]], Project], tmp_path: Any
) -> None:
    project = stack_with({"secretRotationDays": "every-month"})
    project.configure({"tenantId": project.tenant.tenant_id, "mailboxes": list(project.tenant.mailboxes)})
    output = _both_fail(project)
    assert "pop3-oauth:secretRotationDays" in output
    assert "integer" in output.lower()
    assert "invalid stack configuration" not in output
