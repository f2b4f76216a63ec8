"""The hand-off sheet: the values an operator types into Concept Office's "Externe Systeme" module.

Labels are German (as the ERP shows them) with English in parentheses. The client secret is on the sheet
only when asked for (``popctl handoff --show-secret``). Below the fields, every secret of the app with its
status, expiry and - where the tenant's credential sign-in report could be read - its last sign-in, so the
operator sees which secret the ERP really uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from components.outputs import SecretRecord, StackOutputs
from components.settings import to_rfc3339
from mscloud.clouds import CLOUDS, DEFAULT_CLOUD, get_cloud

EXPIRY_WARNING_DAYS = 30
HIDDEN = "(verborgen - mit --show-secret anzeigen) (hidden - use --show-secret)"
TLS_VALUE = "Ja, SSL/TLS implizit (POP3S) (yes, implicit TLS)"
AUTH_VALUE = "OAuth2 / XOAUTH2, App-only (Client Credentials) (OAuth2 app-only)"


@dataclass(frozen=True)
class Field:
    """One line of the sheet: JSON key, German label, English label and the value as shown."""

    key: str
    german: str
    english: str
    value: str

    @property
    def label(self) -> str:
        return f"{self.german} ({self.english})"


def sheet(outputs: StackOutputs, *, show_secret: bool, now: datetime) -> list[Field]:
    """The fields in the order the ERP's form asks for them."""
    secret = outputs.client_secret if show_secret and outputs.client_secret else HIDDEN
    host = outputs.pop3_host or _cloud_pop3_host(outputs.cloud)
    tls = TLS_VALUE if outputs.use_tls else "Nein (no)"
    return [
        Field("tenantId", "Verzeichnis-ID (Mandanten-ID)", "directory / tenant ID", outputs.tenant_id),
        Field("clientId", "Anwendungs-ID (Client-ID)", "application / client ID", outputs.client_id),
        Field("clientSecret", "Geheimer Clientschlüssel (Wert)", "client secret value", secret),
        Field(
            "clientSecretExpiresAt",
            "Geheimnis gültig bis",
            "secret expires",
            _date_with_days(outputs.client_secret_expires_at, now),
        ),
        Field(
            "nextSecretRotationAt",
            "Nächste Rotation",
            "next rotation",
            _date_with_days(outputs.next_secret_rotation_at, now),
        ),
        Field("pop3Host", "POP3-Server", "POP3 server", host),
        Field("pop3Port", "Port", "port", str(outputs.pop3_port)),
        Field("useTls", "Verschlüsselung (SSL/TLS)", "TLS", tls),
        Field("authentication", "Authentifizierung", "authentication", AUTH_VALUE),
        Field("mailboxes", "Postfach / Benutzername", "mailbox / user name", ", ".join(outputs.mailboxes)),
    ]


SignIns = Mapping[str, datetime | None] | None
"""Last sign-in per key id (lower case), or None when the activity was not read."""


def render_text(outputs: StackOutputs, *, show_secret: bool, now: datetime, sign_ins: SignIns = None) -> str:
    """The sheet as aligned ``label: value`` lines (plain text: safe to copy from), then the secrets."""
    fields = sheet(outputs, show_secret=show_secret, now=now)
    width = max(len(field.label) for field in fields)
    lines = [
        f"Concept Office - Externe Systeme - POP3 mit OAuth2 (stack {outputs.stack})",
        "",
        *(f"{field.label.ljust(width)}  {field.value}" for field in fields),
    ]
    if len(outputs.mailboxes) > 1:
        lines += ["", "Je Postfach ein Eintrag in Externe Systeme (one entry per mailbox)."]
    if outputs.secrets:
        lines += ["", "Geheimnisse der App (secrets of the app):"]
        lines += [f"  {_secret_line(record, sign_ins)}" for record in outputs.secrets]
    return "\n".join(lines)


def _secret_line(record: SecretRecord, sign_ins: SignIns) -> str:
    expires = (record.expires_at or "-")[:10]
    if sign_ins is None:
        used = "letzte Anmeldung unbekannt (last sign-in unknown)"
    elif (moment := sign_ins.get(record.key_id.lower())) is None:
        used = "keine Anmeldung gemeldet (no sign-in reported)"
    else:
        used = f"letzte Anmeldung {moment:%d.%m.%Y} (last sign-in {moment.date().isoformat()})"
    return f"{record.key_id}  {record.status:<8}  gültig bis (expires) {expires}  {used}"


def secrets_json(outputs: StackOutputs, sign_ins: SignIns) -> list[dict[str, object]]:
    """The secrets (never a value) with ``lastSignInAt`` (None: never reported, or not read)."""
    return [
        {
            "keyId": record.key_id,
            "status": record.status,
            "expiresAt": record.expires_at,
            "lastSignInAt": (
                to_rfc3339(moment)
                if sign_ins is not None and (moment := sign_ins.get(record.key_id.lower()))
                else None
            ),
        }
        for record in outputs.secrets
    ]


def as_json(outputs: StackOutputs, *, show_secret: bool, now: datetime) -> dict[str, Any]:
    """The sheet as one JSON object; ``clientSecret`` is present only with ``show_secret``."""
    data: dict[str, Any] = {
        "stack": outputs.stack,
        "tenantId": outputs.tenant_id,
        "clientId": outputs.client_id,
        "clientSecretExpiresAt": outputs.client_secret_expires_at,
        "nextSecretRotationAt": outputs.next_secret_rotation_at,
        "pop3Host": outputs.pop3_host or _cloud_pop3_host(outputs.cloud),
        "pop3Port": outputs.pop3_port,
        "useTls": outputs.use_tls,
        "mailboxes": list(outputs.mailboxes),
        "secretShown": bool(show_secret and outputs.client_secret),
        "labels": {field.key: field.label for field in sheet(outputs, show_secret=False, now=now)},
    }
    if show_secret and outputs.client_secret:
        data["clientSecret"] = outputs.client_secret
    return data


def expiry_warnings(outputs: StackOutputs, now: datetime) -> Sequence[str]:
    """Warnings when the handed-over secret has expired or expires within :data:`EXPIRY_WARNING_DAYS`."""
    expires = _parse(outputs.client_secret_expires_at)
    if expires is None:
        return []
    days = (expires - now).days
    if expires <= now:
        return [f"the client secret expired on {expires.date()}: run `pulumi up` to rotate it"]
    if days < EXPIRY_WARNING_DAYS:
        return [f"the client secret expires in {days} days ({expires.date()}): plan the rotation"]
    return []


def _date_with_days(value: str | None, now: datetime) -> str:
    moment = _parse(value)
    if moment is None:
        return value or "-"
    days = (moment.date() - now.date()).days
    when = f"in {days} Tagen (days)" if days >= 0 else f"vor {-days} Tagen (days ago)"
    return f"{moment:%d.%m.%Y} ({moment.date().isoformat()}, {when})"


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cloud_pop3_host(cloud: str | None) -> str:
    return get_cloud(cloud if cloud in CLOUDS else DEFAULT_CLOUD).pop3_host
