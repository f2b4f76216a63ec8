"""``popctl handoff``: the stack's outputs as the sheet for Concept Office (``popctl.handoff``).

The sheet goes to stdout; a warning about an expiring secret, and the reason when the secrets' sign-in
activity cannot be read, to stderr. Without ``--show-secret`` the stack's secrets are not even read in
clear text.
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
    from components.outputs import StackOutputs
    from popctl.cli import Context


def _sign_ins(
    options: HandoffOptions, outputs: StackOutputs, context: Context
) -> tuple[handoff.SignIns, str | None]:
    """The last sign-ins (or None) and, when they could not be read, why."""
    from popctl import signins

    reader = context.read_sign_ins or signins.graph_reader
    identity = {"tenantId": outputs.tenant_id, "clientId": outputs.client_id, "cloud": outputs.cloud}
    try:
        found = reader(options.stack, identity)
    except signins.SignInsUnavailable as unavailable:
        return None, str(unavailable)
    return found, None if found is not None else "not recorded"


@dataclass(frozen=True)
class HandoffOptions:
    stack: str
    show_secret: bool
    json: bool
    sign_ins: bool = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = 'Print the values for Concept Office, module "Externe Systeme".'
    parser.add_argument("--stack", required=True, help="the customer's stack")
    parser.add_argument(
        "--show-secret", action="store_true", help="include the client secret value (keep the output private)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the sheet")
    parser.add_argument(
        "--no-sign-ins",
        action="store_true",
        help="do not read the secrets' last sign-ins (Graph report, AuditLog.Read.All)",
    )


def parse(namespace: argparse.Namespace) -> HandoffOptions:
    return HandoffOptions(namespace.stack, namespace.show_secret, namespace.json, not namespace.no_sign_ins)


def run(options: HandoffOptions, context: Context) -> Exit:
    outputs = stack.read_outputs(options.stack, show_secrets=options.show_secret, reader=context.read_stack)
    if options.show_secret and outputs.client_secret is None:
        raise CommandFailed(f"stack {options.stack} returned no clientSecret value; run `pulumi up` first")
    now = datetime.now(UTC)
    sign_ins, note = _sign_ins(options, outputs, context) if options.sign_ins else (None, "not asked")
    if options.json:
        document = handoff.as_json(outputs, show_secret=options.show_secret, now=now)
        document["secrets"] = handoff.secrets_json(outputs, sign_ins)
        document["signInActivity"] = note or "read"
        context.consoles.result(json.dumps(document, ensure_ascii=False))
    else:
        sheet = handoff.render_text(outputs, show_secret=options.show_secret, now=now, sign_ins=sign_ins)
        context.consoles.result(sheet)
    if options.sign_ins and note is not None:
        context.consoles.message(f"popctl handoff: note: the secrets' last sign-ins are not shown: {note}")
    for warning in handoff.expiry_warnings(outputs, now):
        context.consoles.message(f"popctl handoff: warning: {warning}")
    return Exit.OK
