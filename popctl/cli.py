"""The popctl command line: one thin module per command, and only the chosen one is imported.

``popctl --help`` imports no command module; ``popctl COMMAND ...`` imports ``popctl.commands.COMMAND``,
which imports its domain (msal, requests, rich) only when it runs. A command module has:

- ``add_arguments(parser)``: its options and description;
- ``parse(namespace)``: the typed options (no ``argparse.Namespace`` goes further);
- ``run(options, context) -> Exit``: one domain call and the rendering of its result.

Errors end here: every :class:`~mscloud.errors.Pop3OAuthError` is printed on stderr as ``popctl COMMAND: ...``
and mapped to its exit code by :func:`popctl.errors.exit_code`, the one table.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from mscloud.errors import Pop3OAuthError
from popctl.consoles import Consoles
from popctl.errors import UsageError, exit_code, exit_table

if TYPE_CHECKING:
    from mscloud.retry import Backoff
    from popctl.signins import SignInReader
    from popctl.stack import StackReader


@dataclass(frozen=True)
class Command:
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "verify": Command(
        "popctl.commands.verify", "log in to each mailbox with POP3 + XOAUTH2 and report what is missing"
    ),
    "preflight": Command(
        "popctl.commands.preflight",
        "read-only checks before the first pulumi up: rights, Exchange Online, mailboxes, secret policies",
    ),
    "handoff": Command(
        "popctl.commands.handoff", 'the values for Concept Office "Externe Systeme" (German labels)'
    ),
    "login": Command(
        "popctl.commands.login",
        "sign in as Exchange administrator (device code) for the Exchange provider and verify --admin",
    ),
    "logout": Command("popctl.commands.logout", "forget the administrator sign-in (one tenant, or all)"),
    "fleet": Command(
        "popctl.commands.fleet", "report drift, pending changes and expiring secrets for every tenant stack"
    ),
    "adopt": Command(
        "popctl.commands.adopt", "write a stack and an import file for a hand-made POP3 app registration"
    ),
}


@dataclass(frozen=True)
class Context:
    """What the commands take from the world; tests pass their own to :func:`main` (the one seam).

    ``read_stack`` reads a stack's outputs (None: the Pulumi CLI); ``verify_backoff`` spaces the retries of
    ``verify --wait`` (None: 2, 4, 8, ... 30 s); ``read_sign_ins`` reads the secrets' sign-in activity for
    ``fleet`` and ``handoff`` (None: Microsoft Graph, or ``fleet --recorded``'s files).
    """

    consoles: Consoles = field(default_factory=Consoles)
    read_stack: StackReader | None = None
    verify_backoff: Backoff | None = None
    read_sign_ins: SignInReader | None = None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` gets its arguments (and has its module imported)."""
    parser = argparse.ArgumentParser(
        prog="popctl",
        description="Operate Office 365 POP3 OAuth2 access provisioned by pop3-oauth.",
        epilog=f"exit codes:\n{exit_table()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((argument for argument in argv if not argument.startswith("-")), None)
    for name, command in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=command.help, description=command.help)
        if name == chosen:
            _module(name).add_arguments(subparser)
    return parser


def main(argv: Sequence[str] | None = None, *, context: Context | None = None) -> int:
    """Run one command and return its exit code (argparse exits with 2 itself on a malformed command line)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    namespace = build_parser(arguments).parse_args(arguments)
    name = str(namespace.command)
    world = context or Context()
    module = _module(name)
    try:
        return int(module.run(module.parse(namespace), world))
    except (Pop3OAuthError, KeyboardInterrupt) as error:
        if isinstance(error, UsageError):
            world.consoles.message(f"popctl {name}: error: {error}")
        elif isinstance(error, Pop3OAuthError):
            world.consoles.message(f"popctl {name}: {error}")
        return int(exit_code(error))


def _module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name].module)
