"""Reading stack outputs through the Pulumi CLI seam, and the hand-off sheet for Concept Office."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from components.outputs import OutputsError, StackOutputs
from popctl import handoff, stack
from tests.popctl.conftest import MAILBOX, SECRET, TENANT, CliRun, stack_output_values


def fake_pulumi(tmp_path: Path, script: str) -> stack.PulumiCli:
    executable = tmp_path / "pulumi"
    executable.write_text("#!/bin/sh\n" + script)
    executable.chmod(0o755)
    return stack.PulumiCli(project_dir=tmp_path, executable=str(executable))


def test_pulumi_cli_is_called_with_json_and_stack(tmp_path: Path) -> None:
    (tmp_path / "out.json").write_text(json.dumps({"tenantId": TENANT}))
    reader = fake_pulumi(tmp_path, f'echo "$@" > "{tmp_path}/args"; cat "{tmp_path}/out.json"\n')

    assert reader("acme", show_secrets=True) == {"tenantId": TENANT}
    # The one Pulumi CLI wrapper (popctl.pulumi_cli) builds every command line the same way.
    assert (tmp_path / "args").read_text().split() == [
        "stack",
        "output",
        "--json",
        "--stack",
        "acme",
        "--non-interactive",
        "--color",
        "never",
        "--show-secrets",
    ]
    reader("acme", show_secrets=False)
    assert "--show-secrets" not in (tmp_path / "args").read_text()


def test_pulumi_failure_quotes_its_last_error_line(tmp_path: Path) -> None:
    reader = fake_pulumi(
        tmp_path, 'echo "warning: x" >&2; echo "error: no stack named \'acme\' found" >&2; exit 255\n'
    )

    with pytest.raises(stack.StackError, match="no stack named 'acme' found"):
        reader("acme", show_secrets=False)


def test_pulumi_printing_garbage(tmp_path: Path) -> None:
    with pytest.raises(stack.StackError, match="not JSON"):
        fake_pulumi(tmp_path, "echo hello\n")("acme", show_secrets=False)


def test_missing_cli() -> None:
    with pytest.raises(stack.StackError, match="not installed or not on PATH"):
        stack.PulumiCli(executable="/nonexistent/pulumi")("acme", show_secrets=False)


def test_parse_outputs_hides_placeholder_secret_and_reads_the_authority_host() -> None:
    raw = stack_output_values() | {
        "clientSecret": "[secret]",
        "authorityHost": "https://login.microsoftonline.us",
    }

    outputs = StackOutputs.from_output("acme", raw)

    assert outputs.client_secret is None
    assert outputs.authority_host == "https://login.microsoftonline.us"
    # A stack deployed before the output existed: its cloud's authority host, never parsed from tokenEndpoint.
    older = {k: v for k, v in raw.items() if k != "authorityHost"} | {"cloud": "usgovernment"}
    assert StackOutputs.from_output("acme", older).authority_host == "https://login.microsoftonline.us"
    assert outputs.secrets[0].slot == 0 and outputs.secrets[0].managed
    assert SECRET not in repr(StackOutputs.from_output("acme", stack_output_values()))


@pytest.mark.parametrize(
    ("change", "message"),
    [({"tenantId": None}, "tenantId"), ({"pop3Port": "pop"}, "pop3Port"), ({"mailboxes": 3}, "mailboxes")],
)
def test_parse_outputs_names_the_bad_output(change: dict[str, Any], message: str) -> None:
    with pytest.raises(OutputsError, match=message):
        StackOutputs.from_output("acme", stack_output_values() | change)


Installer = Callable[[Mapping[str, Any]], list[tuple[str, bool]]]


def test_handoff_text_hides_the_secret_and_does_not_even_read_it(
    stack_outputs: Installer, run_cli: Callable[..., CliRun]
) -> None:
    calls = stack_outputs(stack_output_values())

    run = run_cli("handoff", "--stack", "acme")

    assert run.code == 0
    assert calls == [("acme", False)]
    assert SECRET not in run.stdout + run.stderr
    for label in (
        "Verzeichnis-ID (Mandanten-ID) (directory / tenant ID)",
        "Anwendungs-ID (Client-ID) (application / client ID)",
        "Geheimer Clientschlüssel (Wert) (client secret value)",
        "Geheimnis gültig bis (secret expires)",
        "Nächste Rotation (next rotation)",
        "POP3-Server (POP3 server)",
        "Port (port)",
        "Verschlüsselung (SSL/TLS) (TLS)",
        "Postfach / Benutzername (mailbox / user name)",
    ):
        assert label in run.stdout
    assert TENANT in run.stdout and MAILBOX in run.stdout and "outlook.office365.com" in run.stdout
    assert "01.03.2031" in run.stdout and "--show-secret" in run.stdout


def test_handoff_shows_the_secret_only_when_asked(
    stack_outputs: Installer, run_cli: Callable[..., CliRun]
) -> None:
    calls = stack_outputs(stack_output_values())

    text = run_cli("handoff", "--stack", "acme", "--show-secret")
    as_json = run_cli("handoff", "--stack", "acme", "--show-secret", "--json")
    hidden_json = run_cli("handoff", "--stack", "acme", "--json")

    assert calls == [("acme", True), ("acme", True), ("acme", False)]
    assert SECRET in text.stdout
    assert json.loads(as_json.stdout)["clientSecret"] == SECRET
    hidden = json.loads(hidden_json.stdout)
    assert "clientSecret" not in hidden and hidden["secretShown"] is False
    assert SECRET not in hidden_json.stdout + hidden_json.stderr
    assert hidden["pop3Port"] == 995 and hidden["useTls"] is True and hidden["mailboxes"] == [MAILBOX]
    assert hidden["labels"]["tenantId"] == "Verzeichnis-ID (Mandanten-ID) (directory / tenant ID)"


def test_handoff_warns_about_a_secret_about_to_expire() -> None:
    outputs = StackOutputs.from_output(
        "acme", stack_output_values() | {"clientSecretExpiresAt": "2030-01-10T00:00:00Z"}
    )

    warnings = handoff.expiry_warnings(outputs, datetime(2030, 1, 1, tzinfo=UTC))

    assert warnings == ["the client secret expires in 9 days (2030-01-10): plan the rotation"]


def test_handoff_of_a_stack_without_secret_output_fails(
    stack_outputs: Installer, run_cli: Callable[..., CliRun]
) -> None:
    stack_outputs({k: v for k, v in stack_output_values().items() if k != "clientSecret"})

    run = run_cli("handoff", "--stack", "acme", "--show-secret")

    assert run.code == 1 and "no clientSecret" in run.stderr
