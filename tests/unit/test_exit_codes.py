"""popctl's one exit-code table: the errors map to it, ``popctl --help`` and the manual show it as it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mscloud.errors import Pop3OAuthError
from mscloud.exchange import ExchangeError
from popctl.cli import build_parser
from popctl.errors import EXIT_CODES, CommandFailed, Exit, UsageError, exit_code
from popctl.stack import StackError

MANUAL = Path(__file__).resolve().parents[2] / "docs" / "verify-and-handoff.md"
ROW = re.compile(r"^\| `(?P<code>\d+)` \| (?P<meaning>.+) \|$")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("--stack is missing"), Exit.USAGE),
        (StackError("the Pulumi CLI is not installed"), Exit.USAGE),
        (CommandFailed("no clientSecret"), Exit.FAILED),
        (ExchangeError("denied", cmdlet="Get-ServicePrincipal"), Exit.FAILED),
        (Pop3OAuthError("anything foreseen"), Exit.FAILED),
        (KeyboardInterrupt(), Exit.INTERRUPTED),
    ],
)
def test_errors_map_to_the_table(error: BaseException, code: Exit) -> None:
    assert exit_code(error) is code
    assert code in EXIT_CODES


def test_the_manual_shows_the_table_as_it_is() -> None:
    rows = {
        int(match["code"]): match["meaning"]
        for line in MANUAL.read_text(encoding="utf-8").splitlines()
        if (match := ROW.match(line))
    }

    assert rows == {int(code): meaning for code, meaning in EXIT_CODES.items()}


def test_root_help_ends_with_the_table() -> None:
    epilog = " ".join(str(build_parser().epilog).split())

    for code, meaning in EXIT_CODES.items():
        assert f"{int(code)} {meaning}" in epilog
