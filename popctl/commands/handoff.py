"""``popctl handoff``: the stack's outputs as the sheet for Concept Office (``popctl.handoff``).

The sheet goes to stdout; a warning about an expiring secret to stderr. Without ``--show-secret`` the
stack's secrets are not even read in clear text.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from popctl import handoff, stack
from popctl.errors import CommandFailed, Exit

if TYPE_CHECKING:
    from popctl.cli import Context


@dataclass(frozen=True)
class HandoffOptions:
    stack: str
    show_secret: bool
    json: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = 'Print the values for Concept Office, module "Externe Systeme".'
    parser.add_argument("--stack", required=True, help="the customer's stack")
    parser.add_argument(
        "--show-secret", action="store_true", help="include the client secret value (keep the output private)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the sheet")


def parse(namespace: argparse.Namespace) -> HandoffOptions:
    return HandoffOptions(namespace.stack, namespace.show_secret, namespace.json)


def run(options: HandoffOptions, context: Context) -> Exit:
    outputs = stack.read_outputs(options.stack, show_secrets=options.show_secret, reader=context.read_stack)
    if options.show_secret and outputs.client_secret is None:
        raise CommandFailed(f"stack {options.stack} returned no clientSecret value; run `pulumi up` first")
    now = datetime.now(UTC)
    if options.json:
        document = handoff.as_json(outputs, show_secret=options.show_secret, now=now)
        context.consoles.result(json.dumps(document, ensure_ascii=False))
    else:
        context.consoles.result(handoff.render_text(outputs, show_secret=options.show_secret, now=now))
    for warning in handoff.expiry_warnings(outputs, now):
        context.consoles.message(f"popctl handoff: warning: {warning}")
    return Exit.OK
