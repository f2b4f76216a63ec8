"""The one wrapper around the Pulumi CLI: run ``pulumi ARGS --stack S --non-interactive``, read its JSON.

Used by the stack-output reader (``popctl.stack``) and the fleet's preview runner (``popctl.previews``); each
turns a :class:`PulumiCliError` into its own error with its own advice. Bounded by ``timeout``; the
environment (backend login, passphrase, ``ARM_*``) is passed through; ``--show-secrets`` only when asked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mscloud.errors import Pop3OAuthError


class Failure(StrEnum):
    MISSING = "missing"
    TIMEOUT = "timeout"
    NOT_STARTED = "not-started"
    FAILED = "failed"
    NOT_JSON = "not-json"


class PulumiCliError(Pop3OAuthError):
    """The CLI could not answer; ``failure`` says how, the message says what happened."""

    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True)
class PulumiCli:
    """The ``pulumi`` executable (found on the environment's PATH unless given) run in ``project_dir``.

    ``failure_reason(stdout, stderr, returncode)`` phrases a failed run (default: stderr's last line).
    """

    project_dir: Path
    timeout: float
    executable: str | None = None
    environ: Mapping[str, str] | None = None
    failure_reason: Callable[[str, str, int], str] | None = None

    def json(self, arguments: Sequence[str], stack: str, *, show_secrets: bool = False) -> object:
        env = dict(os.environ if self.environ is None else self.environ)
        executable = self.executable or shutil.which("pulumi", path=env.get("PATH"))
        if executable is None:
            raise PulumiCliError(Failure.MISSING, "the pulumi CLI is not on PATH")
        command = [executable, *arguments, "--stack", stack, "--non-interactive", "--color", "never"]
        if show_secrets:
            command.append("--show-secrets")
        name = f"pulumi {' '.join(a for a in arguments if not a.startswith('-'))}"
        try:
            completed = subprocess.run(
                command,
                cwd=self.project_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PulumiCliError(Failure.TIMEOUT, f"'{name}' timed out after {self.timeout:g} s") from None
        except FileNotFoundError:
            raise PulumiCliError(Failure.MISSING, "the pulumi CLI is not on PATH") from None
        except OSError as error:
            raise PulumiCliError(Failure.NOT_STARTED, f"could not start pulumi: {error.strerror}") from None
        if completed.returncode != 0:
            reason = (self.failure_reason or _last_stderr_line)(
                completed.stdout, completed.stderr, completed.returncode
            )
            raise PulumiCliError(Failure.FAILED, f"'{name}' failed: {reason}")
        try:
            document: object = json.loads(completed.stdout)
        except json.JSONDecodeError:
            raise PulumiCliError(Failure.NOT_JSON, f"'{name}' printed no JSON") from None
        return document


def _last_stderr_line(_stdout: str, stderr: str, returncode: int) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {returncode}"
