"""``popctl preflight``: the options, the deploying identity's tokens, one call of
:func:`popctl.preflight.run_preflight`, and its rendering.

Results go to stdout (one line per check with cause and remedy, or one JSON document); nothing is changed
in the tenant. The exit code is 0 when every check is ok, 1 when one found a problem, 3 when one could not
be made (wins over 1, as in ``fleet``). No token or secret is rendered: only what a check carries.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.settings import SettingsError, StackSettings, load_settings
from mscloud.clouds import CLOUDS, DEFAULT_CLOUD
from popctl import values
from popctl.errors import Exit, UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from popctl.cli import Context
    from popctl.preflight import Check, Identity


@dataclass(frozen=True)
class PreflightOptions:
    settings: StackSettings
    json: bool
    stack: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check, read-only, before the first `pulumi up`, that the deploying identity, Exchange Online, the "
        "mailboxes and the tenant's app-management policies allow the deploy. Credentials: the ARM_* "
        "variables (app-only) or the `popctl login` sign-in."
    )
    parser.add_argument(
        "--stack", help="read tenant, mailboxes, app name and rotation settings from this stack"
    )
    parser.add_argument("--tenant-id", help="the customer's tenant id (overrides the stack's)")
    parser.add_argument(
        "--mailbox", action="append", metavar="ADDRESS", help="mailbox to check; repeat for more"
    )
    parser.add_argument(
        "--cloud", choices=sorted(CLOUDS), help="the Microsoft cloud (default the stack's, or public)"
    )
    parser.add_argument("--project-dir", type=Path, help="the Pulumi project (default: nearest Pulumi.yaml)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def parse(namespace: argparse.Namespace) -> PreflightOptions:
    raw: dict[str, Any] = {}
    name: str | None = None
    if namespace.stack is not None:
        name = values.stack_name(namespace.stack)
        raw = stack_config(values.project_dir(namespace.project_dir) / "stacks" / f"Pulumi.{name}.yaml")
    if namespace.tenant_id is not None:
        raw["tenantId"] = values.guid(namespace.tenant_id, "--tenant-id")
    if namespace.mailbox:
        raw["mailboxes"] = list(values.mailboxes(namespace.mailbox))
    if namespace.cloud is not None:
        raw["cloud"] = namespace.cloud
    if "tenantId" not in raw or "mailboxes" not in raw:
        raise UsageError("give --tenant-id and at least one --mailbox, or --stack with both configured")
    try:
        settings = load_settings(raw)
    except SettingsError as error:
        raise UsageError(str(error)) from None
    return PreflightOptions(settings, namespace.json, name)


def stack_config(path: Path) -> dict[str, Any]:
    """The ``pop3-oauth:`` keys of a stack file, without the namespace (no key of this project is secret)."""
    import yaml

    if not path.is_file():
        raise UsageError(f"--stack: {path} does not exist (pulumi stack init, then pulumi config set)")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"--stack: {path} cannot be read: {error}") from None
    config = document.get("config") or {} if isinstance(document, dict) else {}
    prefix = "pop3-oauth:"
    return {str(k).removeprefix(prefix): v for k, v in config.items() if str(k).startswith(prefix)}


def run(options: PreflightOptions, context: Context) -> Exit:
    from mscloud.auth import shared_token_source
    from mscloud.exchange import ExchangeClient
    from mscloud.graph import GraphClient
    from popctl.preflight import PreflightPlan, Status, run_preflight, verdict_at

    settings = options.settings
    now = values.now()
    cloud = values.cloud(settings.cloud or DEFAULT_CLOUD)
    tokens = shared_token_source()
    identity = _identity(settings.tenant_id, cloud, tokens)
    plan = PreflightPlan(
        tenant_id=settings.tenant_id,
        mailboxes=settings.mailboxes,
        app_display_name=settings.app_display_name,
        rotation_days=settings.secret_rotation_days,
        max_secret_lifetime_days=settings.max_secret_lifetime_days,
        allow_duplicate_app_name=settings.allow_duplicate_app_name,
        now=now,
        stack=options.stack,
    )
    graph = GraphClient(settings.tenant_id, cloud, tokens, max_retry_seconds=30.0)
    exchange = ExchangeClient(settings.tenant_id, cloud, tokens, max_retry_seconds=30.0)
    try:
        checks = run_preflight(plan, identity, graph, exchange)
    finally:
        graph.close()
        exchange.close()
    if options.json:
        document = {
            "tenantId": settings.tenant_id,
            **verdict_at(checks, now),
            "checks": [c.as_json() for c in checks],
        }
        context.consoles.result(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        render(checks, context, settings.tenant_id, now)
    statuses = {check.status for check in checks}
    if Status.NOT_CHECKED in statuses:
        return Exit.UNCHECKED
    return Exit.FAILED if Status.PROBLEM in statuses else Exit.OK


def _identity(tenant_id: str, cloud: Any, tokens: Any) -> Identity:
    """The claims of the deploying identity's Graph and Exchange tokens (never the tokens themselves)."""
    from mscloud.entra import TokenClaims
    from mscloud.errors import Pop3OAuthError
    from popctl.preflight import Identity

    claims: dict[str, TokenClaims | None] = {}
    failures: dict[str, str | None] = {}
    for name, scope in (("graph", cloud.graph_scope), ("exchange", cloud.exchange_scope)):
        try:
            claims[name] = TokenClaims.from_token(tokens.get_token(tenant_id, cloud, scope))
            failures[name] = None
        except Pop3OAuthError as error:
            claims[name], failures[name] = None, str(error)
    return Identity(claims["graph"], claims["exchange"], failures["graph"], failures["exchange"])


def render(checks: list[Check], context: Context, tenant_id: str, now: datetime) -> None:
    from rich.text import Text

    from popctl.preflight import Status

    out = context.consoles.out
    labels = {
        Status.OK: "[green]OK  [/green]",
        Status.PROBLEM: "[red]FAIL[/red]",
        Status.NOT_CHECKED: "[yellow]SKIP[/yellow]",
    }
    out.print(f"preflight for tenant {tenant_id}", highlight=False)
    for check in checks:
        out.print(f"{labels[check.status]} {check.name}: ", Text(check.detail), sep="", highlight=False)
        if check.status is Status.PROBLEM:
            out.print(Text(f"     cause: {check.cause}"))
        if check.status is Status.NOT_CHECKED and check.permission:
            out.print(Text(f"     not checked: needs {check.permission}"))
        if check.remedy and check.status is not Status.OK:
            out.print(Text(f"     remedy: {check.remedy}"))
    problems = sum(check.status is Status.PROBLEM for check in checks)
    skipped = sum(check.status is Status.NOT_CHECKED for check in checks)
    verdict = (
        "ready for pulumi up"
        if not problems and not skipped
        else f"{problems} problem(s), {skipped} not checked"
    )
    out.print(verdict, highlight=False)
