"""Adoption: bring a hand-made POP3 app registration under a new stack without recreating it.

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

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from components import names as resource_names
from components.settings import AdoptedSecret, format_adopted_secret, to_rfc3339
from components.settings import key as stack_key
from mscloud.clouds import (
    DEFAULT_CLOUD,
    EXCHANGE_ONLINE_APP_ID,
    POP_ACCESS_AS_APP,
    PUBLISHED_POP_ACCESS_AS_APP_ROLE_ID,
)
from mscloud.errors import Pop3OAuthError
from mscloud.exchange import ExchangeReader
from mscloud.graph import GraphClient
from mscloud.permissions import holds_full_access, points_at, principal_of, registered_object_id
from popctl.values import rfc3339

EXPECTED_SIGN_IN_AUDIENCE = "AzureADMyOrg"


class AdoptError(Pop3OAuthError):
    """The hand-made setup cannot be adopted as it is (app missing, ambiguous, no Exchange Online)."""


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
    owners: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    def stack_config(self) -> dict[str, Any]:
        """The ``config:`` block of ``Pulumi.<stack>.yaml`` (namespaced keys)."""
        config: dict[str, Any] = {stack_key("tenantId"): self.tenant_id}
        if self.cloud != DEFAULT_CLOUD:
            config[stack_key("cloud")] = self.cloud
        config[stack_key("appDisplayName")] = self.display_name
        config[stack_key("mailboxes")] = list(self.mailboxes)
        if self.owners:
            config[stack_key("owners")] = list(self.owners)
        if self.adopted_secrets:
            config[stack_key("adoptedSecrets")] = [
                format_adopted_secret(secret) for secret in self.adopted_secrets
            ]
        return config

    def import_document(self) -> dict[str, Any]:
        """The ``pulumi import --file`` document: the app, its service principal and the consent, if present.

        The component ``pop3`` and the provider ``pop3-azuread`` must exist in the stack first (see
        :func:`bootstrap_command`); the name table points at their URNs.
        """
        common = {
            "parent": resource_names.COMPONENT_NAME,
            "provider": resource_names.child(resource_names.PROVIDER),
        }
        resources: list[dict[str, Any]] = [
            {
                "type": resource_names.APPLICATION_TYPE,
                "name": resource_names.child(resource_names.APPLICATION),
                "id": f"/applications/{self.app_object_id}",
                **common,
            }
        ]
        if self.service_principal_id is not None:
            resources.append(
                {
                    "type": resource_names.SERVICE_PRINCIPAL_TYPE,
                    "name": resource_names.child(resource_names.SERVICE_PRINCIPAL),
                    "id": f"/servicePrincipals/{self.service_principal_id}",
                    **common,
                }
            )
        if self.consent_id is not None:
            resources.append(
                {
                    "type": resource_names.APP_ROLE_ASSIGNMENT_TYPE,
                    "name": resource_names.child(resource_names.CONSENT),
                    "id": f"/servicePrincipals/{self.exchange_online_sp_id}"
                    f"/appRoleAssignedTo/{self.consent_id}",
                    **common,
                }
            )
        return {
            "nameTable": {
                resource_names.COMPONENT_NAME: resource_names.component_urn(self.stack),
                resource_names.child(resource_names.PROVIDER): resource_names.provider_urn(self.stack),
            },
            "resources": resources,
        }


def bootstrap_command(stack: str) -> str:
    """The targeted ``pulumi up`` that creates only the component and the provider (no tenant changes)."""
    return (
        f"pulumi up --stack {stack} --target '{resource_names.component_urn(stack)}' "
        f"--target '{resource_names.provider_urn(stack)}' --skip-preview --yes"
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

    Raises :class:`AdoptError`, or the :class:`~mscloud.errors.Pop3OAuthError` of a client.
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
        findings += _mailbox_findings(exchange, mailbox, principal, registration)

    owners = _owners(graph, str(app["id"]), principal_id)
    findings.append(
        Finding(
            "owners",
            ", ".join(owners) if owners else "none",
            "kept: written to owners, so pulumi up does not remove them"
            if owners
            else "pulumi up makes each deploying identity an owner",
        )
    )
    secrets, expired = _hand_made_secrets(app, now)
    for secret in secrets:
        findings.append(
            Finding(
                f"client secret {secret.key_id}",
                f"hand-made, expires {to_rfc3339(secret.expires_at)}",
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
        owners=owners,
        findings=tuple(findings),
    )


def _owners(graph: GraphClient, app_object_id: str, principal_id: str | None) -> tuple[str, ...]:
    """The object ids owning the app or its service principal (the azuread provider removes every owner
    its configuration does not list, so they go into ``owners``), app owners first."""
    found: list[str] = []
    paths = [f"/applications/{app_object_id}/owners"]
    if principal_id is not None:
        paths.append(f"/servicePrincipals/{principal_id}/owners")
    for path in paths:
        for owner in graph.get_all(path, {"$select": "id"}):
            owner_id = str(owner.get("id") or "").lower()
            if owner_id and owner_id not in found:
                found.append(owner_id)
    return tuple(found)


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
    return PUBLISHED_POP_ACCESS_AS_APP_ROLE_ID


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
    resource = resource_names.child(resource_names.EXCHANGE_REGISTRATION)
    if registration is None:
        return Finding(
            "Exchange registration",
            "missing (New-ServicePrincipal was not run for this app)",
            f"pulumi up registers the service principal (creates {resource})",
            problem=True,
        )
    registered = registered_object_id(registration)
    if principal_id is not None and points_at(registration, principal_id):
        return Finding(
            "Exchange registration",
            f"points at the service principal {registered}",
            f"pulumi up adopts it: {resource} finds the existing registration "
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
        f"pulumi up stops at {resource} until it is removed: "
        "run `Remove-ServicePrincipal -Identity "
        f"{registered}`, then pulumi up registers the service principal's object id and grants it FullAccess",
        problem=True,
    )


def _mailbox_findings(
    exchange: ExchangeReader,
    mailbox: str,
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
    if principal is not None and holds_full_access(
        exchange, mailbox, principal_of(str(principal["id"]), registration)
    ):
        findings.append(
            Finding(
                subject,
                "the service principal has FullAccess",
                "pulumi up keeps it, recorded as found in place (pulumi destroy leaves it)",
            )
        )
    else:
        findings.append(
            Finding(
                subject,
                "the service principal has no FullAccess",
                f"pulumi up grants it ({resource_names.child(resource_names.MAILBOX_ACCESS)})",
                problem=True,
            )
        )
    return findings


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
        try:
            expires = rfc3339(str(credential["endDateTime"]), f"passwordCredentials {key_id} endDateTime")
        except ValueError as error:
            raise AdoptError(str(error)) from None
        if expires <= now:
            expired.append(key_id)
            continue
        name = " ".join(str(credential.get("displayName") or "hand-made").split())
        valid.append(
            AdoptedSecret(key_id=key_id.lower(), expires_at=expires.replace(microsecond=0), display_name=name)
        )
    return sorted(valid, key=lambda secret: secret.expires_at), expired


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


def write_files(plan: AdoptionPlan, stack_file: Path, import_file: Path) -> None:
    """Write the stack's configuration and the ``pulumi import`` file of ``plan``."""
    header = [
        f"Written by `popctl adopt` from the hand-made app {plan.client_id} ({plan.display_name}).",
        "adoptedSecrets: hand-made client secrets, kept and reported until they expire, never managed.",
        "owners: who owns the app or its service principal today, kept by every pulumi up.",
    ]
    stack_file.parent.mkdir(parents=True, exist_ok=True)
    stack_file.write_text(render_stack_yaml(plan.stack_config(), header), encoding="utf-8")
    import_file.write_text(json.dumps(plan.import_document(), indent=4) + "\n", encoding="utf-8")
