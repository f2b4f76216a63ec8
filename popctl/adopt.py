"""``popctl adopt``: bring a hand-made POP3 app registration under a new stack without recreating it.

It reads the hand-made setup through Microsoft Graph (app registration, service principal, admin consent,
secret metadata) and the Exchange admin API (service principal registration, mailbox permissions, POP
settings), then writes ``stacks/Pulumi.<stack>.yaml`` and an import file for ``pulumi import --file``
whose names, types, parents and provider match what the program declares.

Imported: ``pop3-app``, ``pop3-sp`` and ``pop3-pop-consent``. Not imported: the Exchange objects (dynamic
providers cannot import; their ``create`` adopts a matching existing object during ``pulumi up``) and the
hand-made client secret, which is never deleted: its key id and expiry go into ``adoptedSecrets`` so the
outputs and the fleet report show it until it expires. Secret values are never read (Graph never returns
them) and nothing secret is printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import requests

from components.clouds import CLOUDS, EXCHANGE_ONLINE_APP_ID, POP_ACCESS_AS_APP, Cloud, get_cloud
from components.exchange.auth import AuthError, TokenSource, shared_token_source
from components.exchange.client import ExchangeClient, ExchangeError
from components.settings import AdoptedSecret, format_adopted_secret, is_guid, is_mailbox, program_clock
from popctl.cli import EXIT_FAILED, EXIT_OK, UsageError
from popctl.fleet import find_project_dir, parse_rfc3339
from popctl.graph import GraphClient, GraphError

PROJECT = "pop3-oauth"
COMPONENT_TYPE = "pop3-oauth:tenant:Pop3Tenant"
COMPONENT_NAME = "pop3"
PROVIDER_TYPE = "pulumi:providers:azuread"
PROVIDER_NAME = "pop3-azuread"
APPLICATION_TYPE = "azuread:index/application:Application"
SERVICE_PRINCIPAL_TYPE = "azuread:index/servicePrincipal:ServicePrincipal"
APP_ROLE_ASSIGNMENT_TYPE = "azuread:index/appRoleAssignment:AppRoleAssignment"
EXPECTED_SIGN_IN_AUDIENCE = "AzureADMyOrg"
POP_ACCESS_AS_APP_ROLE_ID = "cb842b43-da6e-4506-86fe-bb12199c656d"

STACK_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class AdoptError(Exception):
    """The hand-made setup cannot be adopted as it is (app missing, ambiguous, no Exchange Online)."""


class ExchangeReader(Protocol):
    """The part of :class:`components.exchange.client.ExchangeClient` that adopt uses (read-only)."""

    def get_service_principal(self, identity: str) -> dict[str, Any] | None: ...

    def get_mailbox_permissions(self, mailbox: str, user: str | None = None) -> list[dict[str, Any]]: ...

    def get_cas_mailbox(self, mailbox: str) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Finding:
    """One observation about the hand-made setup. ``problem`` findings need the operator's attention."""

    subject: str
    state: str
    consequence: str
    problem: bool = False


@dataclass(frozen=True)
class AdoptionPlan:
    """What was found and what ``pulumi import`` and ``pulumi up`` will do with it."""

    stack: str
    tenant_id: str
    cloud: str
    mailboxes: tuple[str, ...]
    app_object_id: str
    client_id: str
    display_name: str
    service_principal_id: str | None
    exchange_online_sp_id: str
    consent_id: str | None
    adopted_secrets: tuple[AdoptedSecret, ...]
    findings: tuple[Finding, ...] = field(default=())

    def stack_config(self) -> dict[str, Any]:
        """The ``config:`` block of ``Pulumi.<stack>.yaml`` (namespaced keys)."""
        config: dict[str, Any] = {f"{PROJECT}:tenantId": self.tenant_id}
        if self.cloud != "public":
            config[f"{PROJECT}:cloud"] = self.cloud
        config[f"{PROJECT}:appDisplayName"] = self.display_name
        config[f"{PROJECT}:mailboxes"] = list(self.mailboxes)
        if self.adopted_secrets:
            config[f"{PROJECT}:adoptedSecrets"] = [
                format_adopted_secret(secret) for secret in self.adopted_secrets
            ]
        return config

    def import_document(self) -> dict[str, Any]:
        """The ``pulumi import --file`` document: the app, its service principal and the consent, if present.

        The component ``pop3`` and the provider ``pop3-azuread`` must exist in the stack first (see
        :func:`bootstrap_command`); the name table points at their URNs.
        """
        common = {"parent": COMPONENT_NAME, "provider": PROVIDER_NAME}
        resources: list[dict[str, Any]] = [
            {
                "type": APPLICATION_TYPE,
                "name": "pop3-app",
                "id": f"/applications/{self.app_object_id}",
                **common,
            }
        ]
        if self.service_principal_id is not None:
            resources.append(
                {
                    "type": SERVICE_PRINCIPAL_TYPE,
                    "name": "pop3-sp",
                    "id": f"/servicePrincipals/{self.service_principal_id}",
                    **common,
                }
            )
        if self.consent_id is not None:
            resources.append(
                {
                    "type": APP_ROLE_ASSIGNMENT_TYPE,
                    "name": "pop3-pop-consent",
                    "id": f"/servicePrincipals/{self.exchange_online_sp_id}"
                    f"/appRoleAssignedTo/{self.consent_id}",
                    **common,
                }
            )
        return {
            "nameTable": {COMPONENT_NAME: component_urn(self.stack), PROVIDER_NAME: provider_urn(self.stack)},
            "resources": resources,
        }


def component_urn(stack: str) -> str:
    """The URN of the program's ``Pop3Tenant`` component in ``stack``."""
    return f"urn:pulumi:{stack}::{PROJECT}::{COMPONENT_TYPE}::{COMPONENT_NAME}"


def provider_urn(stack: str) -> str:
    """The URN of the explicit azuread provider, a child of the component."""
    return f"urn:pulumi:{stack}::{PROJECT}::{COMPONENT_TYPE}${PROVIDER_TYPE}::{PROVIDER_NAME}"


def bootstrap_command(stack: str) -> str:
    """The targeted ``pulumi up`` that creates only the component and the provider (no tenant changes)."""
    return (
        f"pulumi up --stack {stack} --target '{component_urn(stack)}' --target '{provider_urn(stack)}' "
        "--skip-preview --yes"
    )


def inspect_setup(
    graph: GraphClient,
    exchange: ExchangeReader,
    *,
    stack: str,
    tenant_id: str,
    cloud: str,
    mailboxes: Sequence[str],
    now: datetime,
    client_id: str | None = None,
    display_name: str | None = None,
) -> AdoptionPlan:
    """Read the hand-made setup and plan its adoption.

    Raises :class:`AdoptError`, :class:`~popctl.graph.GraphError` or ``ExchangeError``.
    """
    app = _find_application(graph, client_id, display_name)
    app_id = str(app.get("appId", ""))
    findings: list[Finding] = []

    exchange_online = graph.service_principal_by_app_id(EXCHANGE_ONLINE_APP_ID)
    if exchange_online is None:
        raise AdoptError(
            f"tenant {tenant_id} has no Office 365 Exchange Online service principal (appId "
            f"{EXCHANGE_ONLINE_APP_ID}): the tenant needs an Exchange Online licence before POP3 can work"
        )
    pop_role_id = _pop_role_id(exchange_online)
    findings += _application_findings(app, pop_role_id)

    principal = graph.service_principal_by_app_id(app_id)
    consent_id: str | None = None
    principal_id: str | None = None
    if principal is None:
        findings.append(
            Finding(
                "service principal",
                "missing (the app has no enterprise application in this tenant)",
                "pulumi up creates pop3-sp, grants the consent and registers it in Exchange",
                problem=True,
            )
        )
    else:
        principal_id = str(principal["id"])
        consent_id = _consent_id(graph, principal_id, str(exchange_online["id"]), pop_role_id)
        findings.append(
            Finding("service principal", f"found, object id {principal_id}", "imported as pop3-sp")
        )
        findings.append(
            Finding("admin consent", "POP.AccessAsApp granted", "imported as pop3-pop-consent")
            if consent_id
            else Finding(
                "admin consent",
                "missing: POP.AccessAsApp is not granted to the service principal",
                "pulumi up grants it (creates pop3-pop-consent)",
                problem=True,
            )
        )
    registration = exchange.get_service_principal(app_id)
    findings.append(_registration_finding(registration, app, principal_id))
    for mailbox in mailboxes:
        findings += _mailbox_findings(exchange, mailbox, app, principal, registration)

    secrets, expired = _hand_made_secrets(app, now)
    for secret in secrets:
        findings.append(
            Finding(
                f"client secret {secret.key_id}",
                f"hand-made, expires {_rfc3339(secret.expires_at)}",
                "kept and listed in adoptedSecrets until it expires; the stack issues its own alongside",
            )
        )
    for key_id in expired:
        findings.append(Finding(f"client secret {key_id}", "hand-made, already expired", "not recorded"))

    return AdoptionPlan(
        stack=stack,
        tenant_id=tenant_id,
        cloud=cloud,
        mailboxes=tuple(mailboxes),
        app_object_id=str(app["id"]),
        client_id=app_id,
        display_name=str(app.get("displayName") or ""),
        service_principal_id=principal_id,
        exchange_online_sp_id=str(exchange_online["id"]),
        consent_id=consent_id,
        adopted_secrets=tuple(secrets),
        findings=tuple(findings),
    )


def _find_application(graph: GraphClient, client_id: str | None, display_name: str | None) -> dict[str, Any]:
    found = graph.applications(client_id=client_id, display_name=display_name if client_id is None else None)
    wanted = f"client id {client_id}" if client_id else f"display name {display_name!r}"
    if not found:
        raise AdoptError(f"no app registration with {wanted} in this tenant")
    if len(found) > 1:
        candidates = ", ".join(f"{app.get('displayName')!r} (client id {app.get('appId')})" for app in found)
        raise AdoptError(
            f"{len(found)} app registrations match {wanted}: {candidates}; name one with --client-id"
        )
    return found[0]


def _pop_role_id(exchange_online: Mapping[str, Any]) -> str:
    for role in exchange_online.get("appRoles") or []:
        if isinstance(role, dict) and role.get("value") == POP_ACCESS_AS_APP and role.get("id"):
            return str(role["id"])
    return POP_ACCESS_AS_APP_ROLE_ID


def _application_findings(app: Mapping[str, Any], pop_role_id: str) -> list[Finding]:
    findings = [
        Finding(
            "app registration",
            f"{app.get('displayName')!r}, client id {app.get('appId')}, object id {app.get('id')}",
            "imported as pop3-app; its display name goes into appDisplayName so it is not renamed",
        )
    ]
    audience = app.get("signInAudience")
    if audience != EXPECTED_SIGN_IN_AUDIENCE:
        findings.append(
            Finding(
                "sign-in audience",
                f"{audience} (the program declares {EXPECTED_SIGN_IN_AUDIENCE})",
                "pulumi up changes it; check that `pulumi preview --diff` shows an update of pop3-app, not a "
                "replace (a replacement would create a new app with a new client id)",
                problem=True,
            )
        )
    declared = {(EXCHANGE_ONLINE_APP_ID, pop_role_id.lower(), "Role")}
    present = {
        (str(access.get("resourceAppId")), str(item.get("id", "")).lower(), str(item.get("type")))
        for access in app.get("requiredResourceAccess") or []
        if isinstance(access, dict)
        for item in access.get("resourceAccess") or []
        if isinstance(item, dict)
    }
    if not declared <= present:
        findings.append(
            Finding(
                "API permission",
                "POP.AccessAsApp (Office 365 Exchange Online, Application) is not requested",
                "pulumi up adds it to the app registration (an in-place update)",
                problem=True,
            )
        )
    extra = sorted(present - declared)
    if extra:
        listed = ", ".join(f"{kind} {permission} of {resource}" for resource, permission, kind in extra)
        findings.append(
            Finding(
                "API permissions",
                f"also requests {listed}",
                "pulumi up removes them from the app registration (in place); granted consents stay",
                problem=True,
            )
        )
    return findings


def _consent_id(graph: GraphClient, principal_id: str, exchange_online_id: str, role_id: str) -> str | None:
    for assignment in graph.app_role_assignments(principal_id):
        if (
            str(assignment.get("resourceId", "")).lower() == exchange_online_id.lower()
            and str(assignment.get("appRoleId", "")).lower() == role_id.lower()
        ):
            return str(assignment["id"])
    return None


def _registration_finding(
    registration: Mapping[str, Any] | None, app: Mapping[str, Any], principal_id: str | None
) -> Finding:
    if registration is None:
        return Finding(
            "Exchange registration",
            "missing (New-ServicePrincipal was not run for this app)",
            "pulumi up registers the service principal (creates pop3-exchange-sp)",
            problem=True,
        )
    registered = str(registration.get("ObjectId") or registration.get("Identity") or "")
    if principal_id is not None and registered.lower() == principal_id.lower():
        return Finding(
            "Exchange registration",
            f"points at the service principal {registered}",
            "pulumi up adopts it: pop3-exchange-sp finds the existing registration "
            "(dynamic resources cannot be imported)",
        )
    wrong = (
        "the app registration's object id (the classic mistake)"
        if registered.lower() == str(app.get("id", "")).lower()
        else "an object id that is not the service principal's"
    )
    return Finding(
        "Exchange registration",
        f"points at {registered}, {wrong}",
        "pulumi up stops at pop3-exchange-sp until it is removed: run `Remove-ServicePrincipal -Identity "
        f"{registered}`, then pulumi up registers the service principal's object id and grants it FullAccess",
        problem=True,
    )


def _mailbox_findings(
    exchange: ExchangeReader,
    mailbox: str,
    app: Mapping[str, Any],
    principal: Mapping[str, Any] | None,
    registration: Mapping[str, Any] | None,
) -> list[Finding]:
    subject = f"mailbox {mailbox}"
    settings = exchange.get_cas_mailbox(mailbox)
    if settings is None:
        return [
            Finding(
                subject,
                "does not exist in this tenant",
                "pulumi up fails at its mailbox permission: fix the address in mailboxes",
                problem=True,
            )
        ]
    findings: list[Finding] = []
    if not settings.get("PopEnabled"):
        findings.append(
            Finding(
                subject,
                "POP3 is disabled",
                "pulumi up does not change it and stops at this mailbox: run "
                f"`Set-CASMailbox -Identity {mailbox} -PopEnabled $true` first",
                problem=True,
            )
        )
    names = _principal_names(app, principal, registration)
    holders = {
        str(entry.get("User", "")).lower()
        for entry in exchange.get_mailbox_permissions(mailbox)
        if "FullAccess" in (entry.get("AccessRights") or [])
        and not entry.get("Deny")
        and not entry.get("IsInherited")
    }
    if names & holders:
        findings.append(
            Finding(subject, "the service principal has FullAccess", "pulumi up adopts the permission")
        )
    else:
        findings.append(
            Finding(
                subject,
                "the service principal has no FullAccess",
                f"pulumi up grants it (creates pop3-fullaccess-{mailbox.lower()})",
                problem=True,
            )
        )
    return findings


def _principal_names(
    app: Mapping[str, Any], principal: Mapping[str, Any] | None, registration: Mapping[str, Any] | None
) -> set[str]:
    """How Exchange may show the *correct* service principal in a permission's ``User``."""
    if principal is None:
        return set()
    principal_id = str(principal["id"]).lower()
    names = {principal_id}
    registered = str(
        (registration or {}).get("ObjectId") or (registration or {}).get("Identity") or ""
    ).lower()
    if registered == principal_id and registration is not None:
        names |= {
            str(registration.get(key, "")).lower()
            for key in ("Identity", "AppId", "DisplayName")
            if registration.get(key)
        }
    return names


def _hand_made_secrets(app: Mapping[str, Any], now: datetime) -> tuple[list[AdoptedSecret], list[str]]:
    """Metadata of the app's client secrets that are still valid, and the key ids of the expired ones."""
    valid: list[AdoptedSecret] = []
    expired: list[str] = []
    for credential in app.get("passwordCredentials") or []:
        if (
            not isinstance(credential, dict)
            or not credential.get("keyId")
            or not credential.get("endDateTime")
        ):
            continue
        key_id = str(credential["keyId"])
        expires = parse_rfc3339(str(credential["endDateTime"]), f"passwordCredentials {key_id} endDateTime")
        if expires <= now:
            expired.append(key_id)
            continue
        name = " ".join(str(credential.get("displayName") or "hand-made").split())
        valid.append(
            AdoptedSecret(key_id=key_id.lower(), expires_at=expires.replace(microsecond=0), display_name=name)
        )
    return sorted(valid, key=lambda secret: secret.expires_at), expired


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def render_stack_yaml(config: Mapping[str, Any], header: Iterable[str] = ()) -> str:
    """``Pulumi.<stack>.yaml`` text for ``config`` (strings and lists of strings).

    Scalars are written as JSON strings, which YAML reads as double-quoted scalars.
    """
    lines = [f"# {line}" for line in header]
    lines.append("config:")
    for key, value in config.items():
        if isinstance(value, str):
            lines.append(f"  {key}: {_scalar(value)}")
            continue
        lines.append(f"  {key}:")
        lines.extend(f"    - {_scalar(str(item))}" for item in value)
    return "\n".join(lines) + "\n"


def _scalar(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_report(plan: AdoptionPlan, stack_file: Path, import_file: Path, out: TextIO) -> None:
    """Tell the operator what was found, what ``pulumi up`` will do, and the commands to run next."""
    out.write(f"Hand-made POP3 setup in tenant {plan.tenant_id} (stack {plan.stack}):\n")
    for finding in plan.findings:
        mark = "!" if finding.problem else "-"
        out.write(f"  {mark} {finding.subject}: {finding.state}\n      -> {finding.consequence}\n")
    problems = sum(1 for finding in plan.findings if finding.problem)
    out.write(f"\nWrote {stack_file} and {import_file} ({problems} finding(s) need attention, marked !).\n")
    out.write("Next (docs/adoption.md, 'Migrating a hand-made tenant'):\n")
    out.write(f"  pulumi stack init {plan.stack} --secrets-provider <your secrets provider>\n")
    out.write(f"  {bootstrap_command(plan.stack)}\n")
    out.write(
        f"  pulumi import --stack {plan.stack} --file {import_file} "
        "--protect=false --generate-code=false --yes\n"
    )
    out.write(
        f"  pulumi preview --stack {plan.stack} --diff   # pop3-app/-sp/-pop-consent must not be replaced\n"
    )
    out.write(f"  pulumi up --stack {plan.stack}\n")
    out.write(f"  python -m popctl handoff --stack {plan.stack}\n")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "adopt",
        help="write a stack and an import file for a hand-made POP3 app registration",
        description=(
            "Find a hand-made POP3 app registration through Microsoft Graph and Exchange Online, then write "
            "stacks/Pulumi.<stack>.yaml and an import file for `pulumi import --file`. Reads only; changes "
            "nothing in the tenant. Exit codes: 0 written, 1 could not adopt, 2 usage error."
        ),
    )
    parser.add_argument("--tenant-id", required=True, help="the customer tenant (directory) id")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--client-id", help="the hand-made app's application (client) id")
    which.add_argument("--display-name", help="the hand-made app's display name, e.g. POP3APP")
    parser.add_argument("--stack", required=True, help="name of the stack to create")
    parser.add_argument(
        "--mailbox", action="append", required=True, help="a mailbox the app reads (repeatable)"
    )
    parser.add_argument("--cloud", default="public", choices=sorted(CLOUDS), help="the tenant's cloud")
    parser.add_argument("--project-dir", type=Path, default=None, help="default: nearest Pulumi.yaml")
    parser.add_argument(
        "--import-file", type=Path, default=None, help="default: <project>/import-<stack>.json"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing stack or import file")
    parser.set_defaults(func=run_command)


GraphFactory = Callable[[str, Cloud, TokenSource], GraphClient]
ExchangeFactory = Callable[[str, Cloud, TokenSource], ExchangeReader]


def run_command(
    args: argparse.Namespace,
    *,
    stdout: TextIO | None = None,
    tokens: TokenSource | None = None,
    graph_factory: GraphFactory = GraphClient,
    exchange_factory: ExchangeFactory = ExchangeClient,
) -> int:
    """The ``popctl adopt`` command. Reads the tenant, writes the two files, prints the plan."""
    out = sys.stdout if stdout is None else stdout
    tenant_id = args.tenant_id.strip().lower()
    if not is_guid(tenant_id):
        raise UsageError(
            f"--tenant-id must be a GUID like 00000000-0000-0000-0000-000000000000, got {tenant_id!r}"
        )
    if args.client_id is not None and not is_guid(args.client_id.strip()):
        raise UsageError(f"--client-id must be a GUID, got {args.client_id!r}")
    if not STACK_NAME.match(args.stack) or args.stack == "example":
        raise UsageError(f"--stack {args.stack!r}: use letters, digits, '.', '_' and '-' (and not 'example')")
    mailboxes: list[str] = []
    for mailbox in (entry.strip() for entry in args.mailbox):
        if mailbox.lower() not in {known.lower() for known in mailboxes}:
            mailboxes.append(mailbox)
    bad = [mailbox for mailbox in mailboxes if not is_mailbox(mailbox)]
    if bad:
        raise UsageError(f"--mailbox must be an e-mail address like edi@contoso.com, got {', '.join(bad)}")
    try:
        now = program_clock()
        cloud = get_cloud(args.cloud).with_overrides()
    except ValueError as error:
        raise UsageError(str(error)) from error
    project_dir = args.project_dir or find_project_dir(Path.cwd())
    stack_file = project_dir / "stacks" / f"Pulumi.{args.stack}.yaml"
    import_file = args.import_file or project_dir / f"import-{args.stack}.json"
    existing = [path for path in (stack_file, import_file) if path.exists()]
    if existing and not args.force:
        raise UsageError(f"{', '.join(map(str, existing))} already exist(s); pass --force to overwrite")

    source = tokens or shared_token_source()
    graph = graph_factory(tenant_id, cloud, source)
    exchange = exchange_factory(tenant_id, cloud, source)
    try:
        plan = inspect_setup(
            graph,
            exchange,
            stack=args.stack,
            tenant_id=tenant_id,
            cloud=args.cloud,
            mailboxes=mailboxes,
            now=now,
            client_id=args.client_id.strip().lower() if args.client_id else None,
            display_name=args.display_name,
        )
    except (AdoptError, GraphError, ExchangeError, AuthError, ValueError, requests.RequestException) as error:
        out.write(f"popctl adopt: cannot adopt: {error}\n")
        return EXIT_FAILED
    finally:
        graph.close()
        exchange.close()

    header = [
        f"Written by `popctl adopt` from the hand-made app {plan.client_id} ({plan.display_name}).",
        "adoptedSecrets: hand-made client secrets, kept and reported until they expire, never managed.",
    ]
    stack_file.parent.mkdir(parents=True, exist_ok=True)
    stack_file.write_text(render_stack_yaml(plan.stack_config(), header), encoding="utf-8")
    import_file.write_text(json.dumps(plan.import_document(), indent=4) + "\n", encoding="utf-8")
    render_report(plan, stack_file, import_file, out)
    return EXIT_OK
