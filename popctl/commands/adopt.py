"""``popctl adopt``: the options, one reading of the hand-made set-up (:func:`popctl.adopt.inspect_setup`),
the two files it plans, and the report.

Reads only; changes nothing in the tenant. The report goes to stdout; a failure to stderr ("cannot
adopt: ..."), and then nothing is written.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mscloud.clouds import CLOUDS, DEFAULT_CLOUD
from mscloud.errors import Pop3OAuthError
from popctl import values
from popctl.errors import CommandFailed, Exit, UsageError

if TYPE_CHECKING:
    from popctl.adopt import AdoptionPlan
    from popctl.cli import Context
    from popctl.consoles import Consoles


@dataclass(frozen=True)
class AdoptOptions:
    tenant_id: str
    client_id: str | None
    display_name: str | None
    stack: str
    mailboxes: tuple[str, ...]
    cloud: str
    stack_file: Path
    import_file: Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Find a hand-made POP3 app registration through Microsoft Graph and Exchange Online, then write "
        "stacks/Pulumi.<stack>.yaml and an import file for `pulumi import --file`. Reads only; changes "
        "nothing in the tenant. The exit codes are listed by `popctl --help`."
    )
    parser.add_argument("--tenant-id", required=True, help="the customer tenant (directory) id")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--client-id", help="the hand-made app's application (client) id")
    which.add_argument("--display-name", help="the hand-made app's display name, e.g. POP3APP")
    parser.add_argument("--stack", required=True, help="name of the stack to create")
    parser.add_argument(
        "--mailbox", action="append", required=True, help="a mailbox the app reads (repeatable)"
    )
    parser.add_argument("--cloud", default=DEFAULT_CLOUD, choices=sorted(CLOUDS), help="the tenant's cloud")
    parser.add_argument("--project-dir", type=Path, default=None, help="default: nearest Pulumi.yaml")
    parser.add_argument(
        "--import-file", type=Path, default=None, help="default: <project>/import-<stack>.json"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing stack or import file")


def parse(namespace: argparse.Namespace) -> AdoptOptions:
    tenant_id = values.guid(namespace.tenant_id, "--tenant-id")
    client_id = values.guid(namespace.client_id, "--client-id") if namespace.client_id is not None else None
    stack = values.stack_name(namespace.stack, new=True)
    mailboxes = values.mailboxes(namespace.mailbox)
    project_dir = values.project_dir(namespace.project_dir)
    stack_file = project_dir / "stacks" / f"Pulumi.{stack}.yaml"
    import_file = namespace.import_file or project_dir / f"import-{stack}.json"
    existing = [path for path in (stack_file, import_file) if path.exists()]
    if existing and not namespace.force:
        raise UsageError(f"{', '.join(map(str, existing))} already exist(s); pass --force to overwrite")
    return AdoptOptions(
        tenant_id,
        client_id,
        namespace.display_name,
        stack,
        mailboxes,
        namespace.cloud,
        stack_file,
        import_file,
    )


def run(options: AdoptOptions, context: Context) -> Exit:
    from mscloud.auth import shared_token_source
    from mscloud.exchange import ExchangeClient
    from mscloud.graph import GraphClient
    from popctl import adopt

    now = values.now()
    cloud = values.cloud(options.cloud)
    graph = GraphClient(options.tenant_id, cloud, shared_token_source())
    exchange = ExchangeClient(options.tenant_id, cloud, shared_token_source())
    try:
        plan = adopt.inspect_setup(
            graph,
            exchange,
            stack=options.stack,
            tenant_id=options.tenant_id,
            cloud=options.cloud,
            mailboxes=options.mailboxes,
            now=now,
            client_id=options.client_id,
            display_name=options.display_name,
        )
    except Pop3OAuthError as error:
        raise CommandFailed(f"cannot adopt: {error}") from error
    finally:
        graph.close()
        exchange.close()
    adopt.write_files(plan, options.stack_file, options.import_file)
    render_report(plan, options.stack_file, options.import_file, context.consoles)
    return Exit.OK


def render_report(plan: AdoptionPlan, stack_file: Path, import_file: Path, consoles: Consoles) -> None:
    """Tell the operator what was found, what ``pulumi up`` will do, and the commands to run next."""
    from popctl.adopt import bootstrap_command

    lines = [f"Hand-made POP3 setup in tenant {plan.tenant_id} (stack {plan.stack}):"]
    for finding in plan.findings:
        mark = "!" if finding.problem else "-"
        lines += [f"  {mark} {finding.subject}: {finding.state}", f"      -> {finding.consequence}"]
    problems = sum(1 for finding in plan.findings if finding.problem)
    lines += [
        "",
        f"Wrote {stack_file} and {import_file} ({problems} finding(s) need attention, marked !).",
        "Next (docs/adoption.md, 'Migrating a hand-made tenant'):",
        f"  pulumi stack init {plan.stack} --secrets-provider <your secrets provider>",
        f"  {bootstrap_command(plan.stack)}",
        f"  pulumi import --stack {plan.stack} --file {import_file} "
        "--protect=false --generate-code=false --yes",
        f"  pulumi preview --stack {plan.stack} --diff   # pop3-app/-sp/-pop-consent must not be replaced",
        f"  pulumi up --stack {plan.stack}",
        f"  python -m popctl handoff --stack {plan.stack}",
    ]
    consoles.result("\n".join(lines))
