"""A stack's outputs, read through the Pulumi CLI (``pulumi stack output --json``).

The CLI call sits behind a :class:`StackReader` (:class:`PulumiCli` unless the caller passes another, as
tests do through :class:`popctl.cli.Context`). :func:`read_outputs` validates the raw outputs into the one
contract, :class:`components.outputs.StackOutputs`. Secret outputs are only in clear text when asked for with
``show_secrets``; otherwise Pulumi prints ``[secret]`` and :attr:`StackOutputs.client_secret` is None.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from components.outputs import OutputsError, StackOutputs
from mscloud.errors import Pop3OAuthError
from popctl import pulumi_cli

PROJECT_DIR = Path(__file__).resolve().parent.parent


class StackError(Pop3OAuthError):
    """The outputs could not be read, or lack what the command needs; the message says what to do."""


class StackReader(Protocol):
    def __call__(self, stack: str, *, show_secrets: bool) -> Mapping[str, Any]:
        """The stack's outputs as Pulumi prints them with ``--json``; raises :class:`StackError`."""
        ...


@dataclass(frozen=True)
class PulumiCli:
    """Reads ``pulumi stack output --json [--show-secrets]`` in ``project_dir`` (popctl.pulumi_cli)."""

    project_dir: Path = PROJECT_DIR
    executable: str = "pulumi"
    timeout: float = 120.0

    def __call__(self, stack: str, *, show_secrets: bool) -> Mapping[str, Any]:
        cli = pulumi_cli.PulumiCli(self.project_dir, self.timeout, executable=shutil.which(self.executable))
        try:
            outputs = cli.json(["stack", "output", "--json"], stack, show_secrets=show_secrets)
        except pulumi_cli.PulumiCliError as error:
            if error.failure is pulumi_cli.Failure.MISSING:
                raise StackError(
                    f"the Pulumi CLI ({self.executable!r}) is not installed or not on PATH; install it "
                    "(https://www.pulumi.com/docs/install/) or pass --tenant-id, --client-id and --mailbox "
                    "instead of --stack"
                ) from None
            if error.failure is pulumi_cli.Failure.NOT_JSON:
                raise StackError("`pulumi stack output --json` printed something that is not JSON") from None
            raise StackError(f"stack {stack}: {error}") from None
        if not isinstance(outputs, dict):
            raise StackError("`pulumi stack output --json` did not print a JSON object")
        return outputs


def read_outputs(
    stack: str, *, show_secrets: bool = False, reader: StackReader | None = None
) -> StackOutputs:
    """Read and validate ``stack``'s outputs with ``reader`` (the Pulumi CLI); raises :class:`StackError`."""
    raw = (reader or PulumiCli())(stack, show_secrets=show_secrets)
    try:
        return StackOutputs.from_output(stack, raw)
    except OutputsError as error:
        raise StackError(str(error)) from None
