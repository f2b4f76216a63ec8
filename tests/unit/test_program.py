"""``__main__.py`` run under Pulumi mocks with the documented sample stack, as `pulumi up` would run it."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.outputs import OUTPUT_NAMES
from components.program import raw_stack_config
from components.rotation import Schedule, advance, initial_state
from components.settings import program_clock, to_rfc3339
from tests.unit.conftest import RecordingMocks, secret_value

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_STACK = ROOT / "stacks" / "Pulumi.example.yaml"
NOW = "2027-03-01T08:00:00Z"


def stack_config(path: Path = EXAMPLE_STACK) -> dict[str, str]:
    """The stack file's config as the engine hands it to the program: strings, structures as JSON."""
    config = yaml.safe_load(path.read_text())["config"]
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def run_main(config: dict[str, str]) -> dict[str, tuple[Any, bool]]:
    """Run __main__.py; return every stack export as (value, is_secret)."""
    pulumi.runtime.set_all_config(config)
    exports: dict[str, tuple[Any, bool]] = {}

    @pulumi.runtime.test
    def program() -> Any:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        outputs: dict[str, Any] = root.outputs  # type: ignore[union-attr]

        async def collect() -> None:
            for name, value in outputs.items():
                output = pulumi.Output.from_input(value)
                exports[name] = (await output.future(), await output.is_secret())

        return collect()

    program()
    return exports


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POP3_OAUTH_NOW", NOW)


def test_main_declares_the_example_stack_and_exports_every_documented_output(mocks: RecordingMocks) -> None:
    config = stack_config()
    exports = run_main(config)
    tenant_id = config["pop3-oauth:tenantId"]
    mailboxes = json.loads(config["pop3-oauth:mailboxes"])
    assert set(exports) == {
        "tenantId",
        "clientId",
        "servicePrincipalObjectId",
        "clientSecret",
        "clientSecretExpiresAt",
        "nextSecretRotationAt",
        "secrets",
        "mailboxes",
        "pop3Host",
        "pop3Port",
        "tokenEndpoint",
        "tokenScope",
        "authorityHost",
        "cloud",
        "conceptOffice",
        "secretSchedule",
    }
    assert set(exports) == set(OUTPUT_NAMES)  # the one contract (components/outputs.py) lists them all
    assert {name for name, (_, secret) in exports.items() if secret} == {"clientSecret", "conceptOffice"}
    now = program_clock({"POP3_OAUTH_NOW": NOW})
    schedule = Schedule(
        tuple(advance(initial_state(s, tenant_id, 180, 0, now), 180, 0, now) for s in range(3))
    )
    assert exports["tenantId"][0] == tenant_id
    assert exports["mailboxes"][0] == mailboxes
    assert exports["clientSecret"][0] == secret_value(schedule.newest.slot)
    assert exports["nextSecretRotationAt"][0] == to_rfc3339(schedule.next_rotation_at)
    assert exports["servicePrincipalObjectId"][0] == mocks.by_name("pop3-sp").state["objectId"]
    assert exports["clientId"][0] == mocks.by_name("pop3-app").state["clientId"]
    assert exports["conceptOffice"][0]["mailboxes"] == mailboxes
    assert mocks.by_name("pop3-app").inputs["displayName"] == "POP3APP"
    names = {r.name for r in mocks.registrations}
    assert "pop3-mailbox-access" in names
    assert mocks.by_name("pop3-mailbox-access").inputs["mailboxes"] == mailboxes
    plain = json.dumps({name: value for name, (value, secret) in exports.items() if not secret})
    assert "mock-secret-value" not in plain


def test_main_reads_no_stack_reference(mocks: RecordingMocks) -> None:
    """The schedule's memory is in the stack's own resources: nothing reads the stack's outputs back."""
    run_main(stack_config())
    assert mocks.reads == []
    assert not [r for r in mocks.registrations if r.type == "pulumi:pulumi:StackReference"]


def test_invalid_configuration_stops_before_any_resource_is_declared(mocks: RecordingMocks) -> None:
    config = stack_config() | {
        "pop3-oauth:tenantId": "contoso.onmicrosoft.com",
        "pop3-oauth:secretRotationDays": "400",
        "pop3-oauth:mailbox": "[]",
    }
    with pytest.raises(pulumi.RunError) as caught:
        run_main(config)
    message = str(caught.value)
    assert "pop3-oauth:tenantId" in message
    assert "pop3-oauth:secretRotationDays" in message
    assert "pop3-oauth:mailbox: is not a setting" in message
    assert [r.type for r in mocks.registrations] == []


def test_raw_config_sees_unknown_keys_of_the_namespace_only(mocks: RecordingMocks) -> None:
    pulumi.runtime.set_all_config(
        {"pop3-oauth:tenantId": "x", "pop3-oauth:typo": "1", "azuread:tenantId": "y"}
    )
    assert raw_stack_config() == {"tenantId": "x", "typo": "1"}


def test_the_clock_reads_pop3_oauth_now() -> None:
    assert (
        to_rfc3339(program_clock({"POP3_OAUTH_NOW": "2027-01-31T09:00:00+01:00"})) == "2027-01-31T08:00:00Z"
    )
    with pytest.raises(ValueError, match="POP3_OAUTH_NOW must be an RFC 3339 time"):
        program_clock({"POP3_OAUTH_NOW": "next tuesday"})
    assert program_clock({}).tzinfo is not None
