"""``popctl preflight``: read-only checks of a tenant before its first ``pulumi up``.

Each :class:`Check` is ``ok``, a ``problem`` with a cause and a remedy, or ``not-checked`` (a read the
identity may not make; the check names the permission to grant). Nothing is written: a present permission
or role counts as ``ok`` because read-only calls cannot prove that a write will succeed.

The checks, in order: the deploying identity's Graph rights (its app roles from its token, or its directory
roles), its Exchange rights (``Exchange.ManageAsApp`` or the delegated admin scope, a directory role that
carries Exchange's management roles, and a read through the admin endpoint), the tenant's Office 365
Exchange Online service principal and its POP.AccessAsApp role, each mailbox (exists, a user or shared
mailbox, POP enabled), the app-management policies against the secrets the rotation period issues, and an
app that already has the configured display name.

Neither a token nor a secret is put into a check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from components.names import stack_tag
from components.settings import (
    key,
    longest_rotation_days,
    parse_rfc3339,
    secret_lifetime_days,
    to_rfc3339,
)
from mscloud.clouds import EXCHANGE_ONLINE_APP_ID, POP_ACCESS_AS_APP
from mscloud.entra import TokenClaims
from mscloud.errors import Pop3OAuthError
from mscloud.exchange import ExchangeAccessDenied
from mscloud.graph import GraphAccessDenied

GRAPH_APP_ROLES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")
EXCHANGE_APP_ROLE = "Exchange.ManageAsApp"
EXCHANGE_DELEGATED_SCOPE = "AdminApi.AccessAsUser.All"
POLICY_PERMISSION = "Policy.Read.All"
READ_PERMISSION = "Application.Read.All"
ROLE_READ_PERMISSION = "Directory.Read.All"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
APP_CREATING_ROLES = frozenset(
    {GLOBAL_ADMINISTRATOR, APPLICATION_ADMINISTRATOR, CLOUD_APPLICATION_ADMINISTRATOR}
)
"""Directory roles that may create app registrations (and their service principals)."""
CONSENT_ROLES = frozenset({GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR})
"""Directory roles that may grant an application permission (admin consent for POP.AccessAsApp)."""
EXCHANGE_ROLES = frozenset({GLOBAL_ADMINISTRATOR, EXCHANGE_ADMINISTRATOR})
"""Directory roles that carry Exchange's Organization Management: New-/Set-/Remove-ServicePrincipal and
Add-/Remove-MailboxPermission."""
POP_MAILBOX_TYPES = frozenset({"UserMailbox", "SharedMailbox"})
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


class Status(StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    NOT_CHECKED = "not-checked"


@dataclass(frozen=True)
class Check:
    """One verdict. ``cause`` is a short slug (``problem``) or None; ``permission`` is what would let a
    ``not-checked`` check be made; ``facts`` are extra values for ``--json`` (never a secret)."""

    name: str
    status: Status
    detail: str
    cause: str | None = None
    remedy: str | None = None
    permission: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "cause": self.cause,
            "remedy": self.remedy,
            "permission": self.permission,
            **self.facts,
        }


def ok(name: str, detail: str, **facts: Any) -> Check:
    return Check(name, Status.OK, detail, facts=facts)


def problem(name: str, cause: str, detail: str, remedy: str, **facts: Any) -> Check:
    return Check(name, Status.PROBLEM, detail, cause, remedy, facts=facts)


def not_checked(name: str, detail: str, permission: str | None, remedy: str) -> Check:
    return Check(name, Status.NOT_CHECKED, detail, "not-checked", remedy, permission)


@dataclass(frozen=True)
class PreflightPlan:
    """What the first deploy will do: tenant, mailboxes, app name, rotation period, recorded policy."""

    tenant_id: str
    mailboxes: tuple[str, ...]
    app_display_name: str
    rotation_days: int
    max_secret_lifetime_days: int
    allow_duplicate_app_name: bool
    now: datetime
    stack: str | None = None


class PreflightGraph(Protocol):
    """The Graph reads preflight makes (:class:`mscloud.graph.GraphClient` has them)."""

    def service_principal_by_app_id(self, app_id: str) -> dict[str, Any] | None: ...

    def applications(
        self, *, client_id: str | None = None, display_name: str | None = None
    ) -> list[dict[str, Any]]: ...

    def directory_roles_of(self, principal_id: str | None) -> list[dict[str, Any]]: ...

    def default_app_management_policy(self) -> dict[str, Any]: ...

    def app_management_policies(self) -> list[dict[str, Any]]: ...

    def policy_applies_to(self, policy_id: str) -> list[dict[str, Any]]: ...


class PreflightExchange(Protocol):
    """The Exchange reads preflight makes (:class:`mscloud.exchange.ExchangeClient` has them)."""

    def get_service_principal(self, identity: str) -> dict[str, Any] | None: ...

    def get_mailbox(self, mailbox: str) -> dict[str, Any] | None: ...

    def get_cas_mailbox(self, mailbox: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Identity:
    """The deploying identity as its tokens show it (None: no token, and ``*_failure`` says why)."""

    graph: TokenClaims | None
    exchange: TokenClaims | None
    graph_failure: str | None = None
    exchange_failure: str | None = None

    @property
    def delegated(self) -> bool:
        claims = self.graph or self.exchange
        return claims is not None and claims.delegated


def run_preflight(
    plan: PreflightPlan,
    identity: Identity,
    graph: PreflightGraph,
    exchange: PreflightExchange,
) -> list[Check]:
    """Every check, in order; a check that fails unexpectedly becomes ``not-checked`` with the error's
    (safe) text, so one refused read never hides the other checks."""
    roles = _DirectoryRoles(graph, identity)
    checks = [
        _guarded("graph-permissions", lambda: check_graph_rights(identity, roles)),
        _guarded("exchange-role", lambda: check_exchange_rights(identity, roles, exchange)),
        _guarded("exchange-online", lambda: check_exchange_online(graph)),
    ]
    checks += [
        _guarded(f"mailbox {mailbox}", partial(check_mailbox, exchange, mailbox))
        for mailbox in plan.mailboxes
    ]
    checks.append(_guarded("secret-policy", lambda: check_secret_policy(graph, plan)))
    checks.append(_guarded("existing-app", lambda: check_existing_app(graph, plan)))
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except GraphAccessDenied as denied:
        return not_checked(name, str(denied), READ_PERMISSION, f"grant the identity {READ_PERMISSION}")
    except Pop3OAuthError as error:
        return not_checked(name, str(error), None, "check the credentials and the network, then run again")


class _DirectoryRoles:
    """The identity's directory role template ids, read once (None: the read was refused)."""

    def __init__(self, graph: PreflightGraph, identity: Identity) -> None:
        self._graph = graph
        self._identity = identity
        self._read: tuple[frozenset[str] | None, str] | None = None

    def get(self) -> tuple[frozenset[str] | None, str]:
        """(role template ids or None, a note for the detail)."""
        if self._read is None:
            self._read = self._load()
        return self._read

    def _load(self) -> tuple[frozenset[str] | None, str]:
        claims = self._identity.graph
        if claims is None:
            return None, "no Graph token"
        principal = None if claims.delegated else claims.object_id
        if not claims.delegated and principal is None:
            return None, "the token names no object id"
        try:
            roles = self._graph.directory_roles_of(principal)
        except GraphAccessDenied:
            return None, f"reading the directory roles needs {ROLE_READ_PERMISSION}"
        names = sorted(str(role.get("displayName") or role.get("roleTemplateId")) for role in roles)
        held = frozenset(str(role.get("roleTemplateId") or "").lower() for role in roles)
        return held, ", ".join(names) or "no directory role"


def check_graph_rights(identity: Identity, roles: _DirectoryRoles) -> Check:
    """Can the identity create the app, its service principal and the admin consent?"""
    name = "graph-permissions"
    claims = identity.graph
    if claims is None:
        return not_checked(
            name,
            f"no Microsoft Graph token: {identity.graph_failure}",
            None,
            "set ARM_TENANT_ID/ARM_CLIENT_ID/ARM_CLIENT_SECRET (or a certificate), or sign in with "
            "`python -m popctl login`",
        )
    if not claims.delegated:
        missing = [role for role in GRAPH_APP_ROLES if role not in claims.roles]
        if not missing:
            return ok(name, f"app-only identity holds {', '.join(GRAPH_APP_ROLES)}", kind="app-only")
        held, note = roles.get()
        if held is not None and CONSENT_ROLES & held and APP_CREATING_ROLES & held:
            return ok(name, f"app-only identity holds the directory roles {note}", kind="app-only")
        return problem(
            name,
            "graph-permission-missing",
            f"the app-only identity lacks the Graph application permission(s) {', '.join(missing)} "
            f"(its directory roles: {note})",
            f"grant {', '.join(missing)} (Microsoft Graph, application) to the deploying app and "
            "admin-consent them, or assign it Global Administrator / Privileged Role Administrator",
            kind="app-only",
        )
    held, note = roles.get()
    if held is None:
        return not_checked(
            name,
            f"the signed-in user's directory roles could not be read ({note})",
            ROLE_READ_PERMISSION,
            "sign in as a user who may read their own roles, or check the roles in the Entra admin center",
        )
    if APP_CREATING_ROLES & held and CONSENT_ROLES & held:
        return ok(name, f"the signed-in user holds {note}", kind="delegated")
    lacking = []
    if not APP_CREATING_ROLES & held:
        lacking.append(
            "a role that creates app registrations "
            "(Application Administrator or Cloud Application Administrator)"
        )
    if not CONSENT_ROLES & held:
        lacking.append("a role that grants application permissions (Privileged Role Administrator)")
    return problem(
        name,
        "directory-role-missing",
        f"the signed-in user holds {note}; missing {' and '.join(lacking)}",
        "have the user assigned the missing role(s) (or Global Administrator) for the deploy, e.g. "
        "through PIM",
        kind="delegated",
    )


def check_exchange_rights(identity: Identity, roles: _DirectoryRoles, exchange: PreflightExchange) -> Check:
    """Can the identity run New-ServicePrincipal and Add-MailboxPermission through the admin endpoint?"""
    name = "exchange-role"
    claims = identity.exchange
    if claims is None:
        return not_checked(
            name,
            f"no Exchange Online token: {identity.exchange_failure}",
            None,
            "set the ARM_* variables, or sign in with `python -m popctl login`",
        )
    if claims.delegated and EXCHANGE_DELEGATED_SCOPE not in claims.scopes:
        return problem(
            name,
            "exchange-role-missing",
            f"the delegated token lacks {EXCHANGE_DELEGATED_SCOPE}",
            "sign in again with `python -m popctl login` (the Exchange Online PowerShell client)",
        )
    if not claims.delegated and EXCHANGE_APP_ROLE not in claims.roles:
        return problem(
            name,
            "exchange-role-missing",
            f"the app-only identity lacks the application permission {EXCHANGE_APP_ROLE}",
            f"grant Office 365 Exchange Online / {EXCHANGE_APP_ROLE} (application) to the deploying app and "
            "admin-consent it; also assign it the Exchange Administrator role",
        )
    try:
        exchange.get_service_principal(EXCHANGE_ONLINE_APP_ID)
    except ExchangeAccessDenied as denied:
        return problem(
            name,
            "exchange-role-missing",
            f"the admin endpoint refused a read: {denied}",
            "assign the identity the Exchange Administrator role; a new role takes up to an hour to apply",
        )
    held, note = roles.get()
    if held is None:
        return not_checked(
            name,
            f"the admin endpoint answers, but the directory roles could not be read ({note})",
            ROLE_READ_PERMISSION,
            f"grant {ROLE_READ_PERMISSION}, or check that the identity is Exchange Administrator",
        )
    if EXCHANGE_ROLES & held:
        return ok(name, f"the admin endpoint answers; directory roles: {note}")
    return problem(
        name,
        "exchange-role-missing",
        f"the admin endpoint answers reads, but the identity holds no role that may register service "
        f"principals and grant FullAccess (its directory roles: {note})",
        "assign the identity the Exchange Administrator role (Entra admin center > Roles and administrators)",
    )


def check_exchange_online(graph: PreflightGraph) -> Check:
    """Is Exchange Online provisioned, offering POP.AccessAsApp?"""
    name = "exchange-online"
    principal = graph.service_principal_by_app_id(EXCHANGE_ONLINE_APP_ID)
    if principal is None:
        return problem(
            name,
            "exchange-online-missing",
            "the tenant has no Office 365 Exchange Online service principal",
            "Exchange Online is not provisioned: assign at least one Exchange Online licence (or subscribe) "
            "and wait until the mailboxes exist",
        )
    offered = [
        role
        for role in principal.get("appRoles") or ()
        if role.get("value") == POP_ACCESS_AS_APP and role.get("isEnabled") is not False
    ]
    if not offered:
        return problem(
            name,
            "pop-role-missing",
            f"Office 365 Exchange Online ({principal.get('id')}) offers no {POP_ACCESS_AS_APP} app role",
            "the tenant's Exchange Online does not offer app-only POP access (a sovereign cloud or an "
            "unusual licence?): open a support case with Microsoft",
        )
    return ok(name, f"Office 365 Exchange Online ({principal.get('id')}) offers {POP_ACCESS_AS_APP}")


def check_mailbox(exchange: PreflightExchange, mailbox: str) -> Check:
    """Does the mailbox exist as a user or shared mailbox with POP enabled?"""
    name = f"mailbox {mailbox}"
    found = exchange.get_mailbox(mailbox)
    if found is None:
        return problem(
            name,
            "mailbox-not-found",
            f"Exchange has no mailbox {mailbox}",
            "check the address (a typo, a mail user or a contact instead of a mailbox?) and its licence",
        )
    kind = str(found.get("RecipientTypeDetails") or "")
    if kind not in POP_MAILBOX_TYPES:
        return problem(
            name,
            "mailbox-wrong-type",
            f"{mailbox} is a {kind or 'recipient of unknown type'}, not a user or shared mailbox",
            "use a user or shared mailbox for the ERP (Concept Office fetches EDI and order confirmations "
            "from one)",
            recipientTypeDetails=kind,
        )
    cas = exchange.get_cas_mailbox(mailbox)
    if cas is not None and cas.get("PopEnabled") is False:
        return problem(
            name,
            "pop-disabled",
            f"POP is disabled for {mailbox}",
            f"Set-CASMailbox -Identity {mailbox} -PopEnabled $true",
            recipientTypeDetails=kind,
        )
    return ok(name, f"{kind}, POP enabled", recipientTypeDetails=kind)


@dataclass(frozen=True)
class PasswordRule:
    """One enforced ``passwordCredentials`` restriction and where it comes from."""

    policy: str
    restriction: str
    max_lifetime_days: int | None
    exemptions: tuple[str, ...]


def iso_duration_days(value: str) -> int:
    """Whole days in an ISO 8601 duration such as ``P365D`` or ``P90DT12H`` (rounded down)."""
    match = _DURATION.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not an ISO 8601 duration like P365D")
    span = timedelta(
        days=int(match["d"] or 0),
        hours=int(match["h"] or 0),
        minutes=int(match["m"] or 0),
        seconds=float(match["s"] or 0),
    )
    return span.days


def enforced_rules(
    policy_name: str, restrictions: Iterable[Mapping[str, Any]], created_at: datetime
) -> list[PasswordRule]:
    """The restrictions that apply to an app created at ``created_at``: ``state`` not ``disabled`` and
    ``restrictForAppsCreatedAfterDateTime`` at or before its creation."""
    rules: list[PasswordRule] = []
    for restriction in restrictions:
        if str(restriction.get("state") or "enabled").lower() == "disabled":
            continue
        since = restriction.get("restrictForAppsCreatedAfterDateTime")
        if isinstance(since, str) and since and parse_rfc3339(since) > created_at:
            continue
        lifetime = restriction.get("maxLifetime")
        exclude = restriction.get("excludeActors") or {}
        attributes = exclude.get("customSecurityAttributes") if isinstance(exclude, Mapping) else None
        exemptions = tuple(
            f"{attribute.get('id')} {attribute.get('operator', 'equals')} {attribute.get('value')}"
            for attribute in attributes or ()
            if isinstance(attribute, Mapping)
        )
        rules.append(
            PasswordRule(
                policy_name,
                str(restriction.get("restrictionType") or ""),
                iso_duration_days(lifetime) if isinstance(lifetime, str) and lifetime else None,
                exemptions,
            )
        )
    return rules


def check_secret_policy(graph: PreflightGraph, plan: PreflightPlan) -> Check:
    """Do the tenant's app-management policies allow the secrets the rotation period issues?"""
    name = "secret-policy"
    try:
        default = graph.default_app_management_policy()
        custom = graph.app_management_policies()
    except GraphAccessDenied:
        return not_checked(
            name,
            "the app-management policies could not be read",
            POLICY_PERMISSION,
            f"grant the identity {POLICY_PERMISSION} (or check Entra admin center > Enterprise apps > "
            "App management policies by hand)",
        )
    existing = graph.applications(display_name=plan.app_display_name)
    rules: list[PasswordRule] = []
    if default.get("isEnabled") is not False:
        restrictions = (default.get("applicationRestrictions") or {}).get("passwordCredentials") or ()
        rules += enforced_rules(str(default.get("displayName") or "default policy"), restrictions, plan.now)
    existing_ids = {str(app.get("id")) for app in existing}
    for policy in custom:
        if policy.get("isEnabled") is False:
            continue
        targets = {str(target.get("id")) for target in graph.policy_applies_to(str(policy.get("id")))}
        for app in existing:
            if str(app.get("id")) in targets & existing_ids:
                created = app.get("createdDateTime")
                moment = parse_rfc3339(created) if isinstance(created, str) and created else plan.now
                restrictions = (policy.get("restrictions") or {}).get("passwordCredentials") or ()
                rules += enforced_rules(
                    f"{policy.get('displayName')} (on {app.get('id')})", restrictions, moment
                )
    return _judge_rules(name, rules, plan)


def _judge_rules(name: str, rules: Sequence[PasswordRule], plan: PreflightPlan) -> Check:
    lifetime = secret_lifetime_days(plan.rotation_days)
    blocked = [rule for rule in rules if rule.restriction == "passwordAddition"]
    if blocked:
        rule = blocked[0]
        exemption = (
            f"an exemption for the deploying identity: the custom security attribute {rule.exemptions[0]}"
            if rule.exemptions
            else "an exemption for the deploying identity (excludeActors with a custom security attribute)"
        )
        return problem(
            name,
            "secrets-blocked",
            f"{rule.policy} blocks client secrets (passwordAddition) for new apps",
            f"ask the tenant's administrator for {exemption}, or for a custom app-management policy on "
            "POP3APP that allows secrets; Concept Office needs a client secret",
        )
    caps = [rule for rule in rules if rule.restriction == "passwordLifetime" and rule.max_lifetime_days]
    facts: dict[str, Any] = {"secretLifetimeDays": lifetime}
    if caps:
        cap = min(caps, key=lambda rule: rule.max_lifetime_days or 0)
        limit = cap.max_lifetime_days or 0
        facts["maxLifetimeDays"] = limit
        longest = longest_rotation_days(limit)
        facts["largestRotationDays"] = longest
        if lifetime > limit:
            fits = (
                f"set {key('maxSecretLifetimeDays')} to {limit} and {key('secretRotationDays')} to at most "
                f"{longest}"
                if longest >= 7
                else "no rotation period fits: ask for an exemption (excludeActors) for the deploying "
                "identity"
            )
            return problem(
                name,
                "secret-lifetime-too-long",
                f"{cap.policy} caps secret lifetimes at {limit} days (passwordLifetime); a "
                f"{plan.rotation_days}-day period issues secrets valid for {lifetime} days",
                fits,
                **facts,
            )
        if plan.max_secret_lifetime_days > limit:
            return ok(
                name,
                f"{cap.policy} caps secret lifetimes at {limit} days; the {lifetime}-day secrets fit "
                f"(record it: pulumi config set {key('maxSecretLifetimeDays')} {limit})",
                **facts,
            )
        return ok(
            name, f"{cap.policy} caps secret lifetimes at {limit} days; {lifetime}-day secrets fit", **facts
        )
    others = sorted({rule.restriction for rule in rules})
    note = f" (enforced, not affecting secrets issued by Entra: {', '.join(others)})" if others else ""
    return ok(name, f"no policy restricts the {lifetime}-day client secrets{note}", **facts)


def check_existing_app(graph: PreflightGraph, plan: PreflightPlan) -> Check:
    """Does an app with the configured display name exist already (usually the hand-made one)?"""
    name = "existing-app"
    found = graph.applications(display_name=plan.app_display_name)
    if not found:
        return ok(name, f"no app registration is named {plan.app_display_name!r}")
    if plan.stack is not None and all(stack_tag(plan.stack) in (app.get("tags") or []) for app in found):
        ids = ", ".join(str(app.get("appId")) for app in found)
        return ok(name, f"{plan.app_display_name!r} (client id {ids}) is stack {plan.stack}'s own app")
    ids = ", ".join(f"{app.get('id')} (client id {app.get('appId')})" for app in found)
    if plan.allow_duplicate_app_name:
        return ok(
            name, f"{plan.app_display_name!r} exists ({ids}); allowDuplicateAppName creates a second one"
        )
    return problem(
        name,
        "app-exists",
        f"an app registration named {plan.app_display_name!r} exists already: {ids}",
        f"take it over with `python -m popctl adopt --tenant-id {plan.tenant_id} --client-id <client id>` "
        f"(the ERP keeps working), or choose another {key('appDisplayName')}",
        existingApps=[str(app.get("id")) for app in found],
    )


def verdict_at(checks: Sequence[Check], now: datetime) -> dict[str, Any]:
    """The ``--json`` document's summary fields."""
    return {
        "checkedAt": to_rfc3339(now),
        "ready": all(check.status is Status.OK for check in checks),
        "problems": sum(check.status is Status.PROBLEM for check in checks),
        "notChecked": sum(check.status is Status.NOT_CHECKED for check in checks),
    }
