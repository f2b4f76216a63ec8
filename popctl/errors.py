"""popctl's exit codes and its errors, mapped in one place: :data:`EXIT_CODES` and :func:`exit_code`.

Every error popctl foresees derives from :class:`mscloud.errors.Pop3OAuthError`; :func:`popctl.cli.main`
prints it on stderr as ``popctl COMMAND: ...`` and exits with :func:`exit_code`. Commands that finish
return an :class:`Exit` instead.
"""

from __future__ import annotations

import textwrap
from enum import IntEnum

from mscloud.errors import Pop3OAuthError
from popctl.stack import StackError


class Exit(IntEnum):
    """popctl's exit codes."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNCHECKED = 3
    INTERRUPTED = 130


EXIT_CODES: dict[Exit, str] = {
    Exit.OK: (
        "done: every mailbox passed (verify), every tenant in sync (fleet), every check ok (preflight), the "
        "command did its work"
    ),
    Exit.FAILED: (
        "a finding or a failure: a mailbox failed (verify); drift, pending changes or an expiring secret "
        "(fleet); a check found a problem (preflight); the command could not do its work (handoff: no "
        "secret; login: refused; adopt: app not found or ambiguous, no Exchange Online, no permission)"
    ),
    Exit.USAGE: (
        "usage error: a bad or missing option or POP3_OAUTH_NOW, no client secret, the Pulumi CLI missing, "
        "a stack whose outputs cannot be read, no stacks to check, files adopt would overwrite (--force)"
    ),
    Exit.UNCHECKED: (
        "fleet: at least one tenant could not be checked; preflight: at least one check could not be made "
        "(wins over 1)"
    ),
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
}
"""The one exit-code table; ``popctl --help`` prints it and docs/verify-and-handoff.md shows it."""


class UsageError(Pop3OAuthError):
    """Bad or missing input from the operator; the message names the option and the valid form."""


class CommandFailed(Pop3OAuthError):
    """The command could not do its work; the message says why and what to do."""


def exit_code(error: BaseException) -> Exit:
    """The exit code for an error that ended a command."""
    if isinstance(error, UsageError | StackError):
        return Exit.USAGE
    if isinstance(error, KeyboardInterrupt):
        return Exit.INTERRUPTED
    return Exit.FAILED


def exit_table(width: int = 79) -> str:
    """:data:`EXIT_CODES` as the lines of ``popctl --help``'s epilog."""
    return "\n".join(
        textwrap.fill(meaning, width, initial_indent=f"  {int(code):<5}", subsequent_indent=" " * 7)
        for code, meaning in EXIT_CODES.items()
    )
