"""Entry point: one argparse sub-command per module, each module registering its own."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# Each module exposes ``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int``.
COMMAND_MODULES = ("popctl.verify", "popctl.handoff", "popctl.login", "popctl.fleet", "popctl.adopt")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad or missing input from the operator; the message names the option and the valid form."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="popctl", description="Operate Office 365 POP3 OAuth2 access provisioned by pop3-oauth."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as error:
        parser.exit(EXIT_USAGE, f"popctl {args.command}: error: {error}\n")
    except KeyboardInterrupt:
        return 130
