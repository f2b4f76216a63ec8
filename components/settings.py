"""The stack configuration: read once, validated in one place into frozen, typed settings.

Pulumi-free. ``load_settings`` takes the raw values of the ``pop3-oauth:*`` keys as Pulumi hands them
to a program (strings; arrays and objects JSON-encoded) and either returns ``StackSettings`` or raises
``SettingsError`` listing every problem at once, each naming the stack key and the valid form.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mscloud.clouds import CLOUDS, DEFAULT_CLOUD
from mscloud.ids import is_guid

NAMESPACE = "pop3-oauth"
NOW_ENV = "POP3_OAUTH_NOW"

DEFAULT_APP_DISPLAY_NAME = "POP3APP"
DEFAULT_ROTATION_DAYS = 180
MAX_SECRET_LIFETIME_DAYS = 730
SECRET_SLOTS = 3
MIN_ROTATION_DAYS = 7
# Each secret lives three rotation periods (see components.rotation), all within Entra's two years.
LIFETIME_PERIODS = SECRET_SLOTS
MAX_ROTATION_DAYS = MAX_SECRET_LIFETIME_DAYS // LIFETIME_PERIODS
MIN_SECRET_LIFETIME_DAYS = MIN_ROTATION_DAYS * LIFETIME_PERIODS


@dataclass(frozen=True)
class SettingSpec:
    """How one key is declared in ``Pulumi.yaml``'s ``config:`` block (the CLI checks type and presence).

    ``type`` is the Pulumi config type (``string``, ``integer``, ``boolean`` or ``array`` of strings);
    ``default`` is None for a required key.
    """

    type: str
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is None


# The one list of settings: Pulumi.yaml declares exactly these (tests/unit/test_project_files.py checks it).
SETTINGS: dict[str, SettingSpec] = {
    "tenantId": SettingSpec("string"),
    "mailboxes": SettingSpec("array"),
    "appDisplayName": SettingSpec("string", DEFAULT_APP_DISPLAY_NAME),
    "secretRotationDays": SettingSpec("integer", DEFAULT_ROTATION_DAYS),
    "forceRotation": SettingSpec("integer", 0),
    "cloud": SettingSpec("string", DEFAULT_CLOUD),
    "owners": SettingSpec("array", ()),
    "tags": SettingSpec("array", ()),
    "adoptedSecrets": SettingSpec("array", ()),
    "allowDuplicateAppName": SettingSpec("boolean", False),
    "maxSecretLifetimeDays": SettingSpec("integer", MAX_SECRET_LIFETIME_DAYS),
    "deployersOwnApp": SettingSpec("boolean", True),
}
KNOWN_KEYS = tuple(SETTINGS)

# Deliberately plain: what Exchange accepts as a primary SMTP address, without quoted local parts.
_MAILBOX = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}$"
)
_GUID_FORM = "a GUID like 0a1b2c3d-1111-2222-3333-444455556666"
_MAILBOX_FORM = "an e-mail address like edi@contoso.de"


class SettingsError(ValueError):
    """The stack configuration is invalid. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class AdoptedSecret:
    """A client secret made by hand before the stack took over: reported until it expires, never managed."""

    key_id: str
    expires_at: datetime
    display_name: str


@dataclass(frozen=True)
class StackSettings:
    tenant_id: str
    mailboxes: tuple[str, ...]
    app_display_name: str = DEFAULT_APP_DISPLAY_NAME
    secret_rotation_days: int = DEFAULT_ROTATION_DAYS
    force_rotation: int = 0
    cloud: str = DEFAULT_CLOUD
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    adopted_secrets: tuple[AdoptedSecret, ...] = ()
    allow_duplicate_app_name: bool = False
    max_secret_lifetime_days: int = MAX_SECRET_LIFETIME_DAYS
    deployers_own_app: bool = True

    @property
    def secret_lifetime_days(self) -> int:
        return secret_lifetime_days(self.secret_rotation_days)


def secret_lifetime_days(rotation_days: int) -> int:
    """How long each secret of a schedule with this period is valid (the rule of components.rotation)."""
    return rotation_days * LIFETIME_PERIODS


def longest_rotation_days(max_lifetime_days: int) -> int:
    """The largest ``secretRotationDays`` whose secrets live at most ``max_lifetime_days``."""
    return min(MAX_ROTATION_DAYS, max_lifetime_days // LIFETIME_PERIODS)


def is_mailbox(value: str) -> bool:
    return len(value) <= 254 and bool(_MAILBOX.match(value))


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset (``Z`` allowed) into an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def to_rfc3339(moment: datetime) -> str:
    """``2026-11-28T00:00:00Z``: the one form Entra, the stack outputs and popctl write times in."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def program_clock(environ: Mapping[str, str] | None = None) -> datetime:
    """Now, or the moment in ``POP3_OAUTH_NOW`` (RFC 3339): tests and previews of a future rotation set it.

    The program, the fleet report and popctl share this clock, so they agree on what is due.
    """
    value = (os.environ if environ is None else environ).get(NOW_ENV, "").strip()
    if not value:
        return datetime.now(UTC)
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ValueError(
            f"{NOW_ENV} must be an RFC 3339 time with offset, e.g. 2027-01-31T08:00:00Z (got {value!r})"
        ) from None


def key(name: str) -> str:
    """The full stack key, as it appears in ``stacks/Pulumi.<stack>.yaml``."""
    return f"{NAMESPACE}:{name}"


class _Reader:
    """Parses raw config values and collects problems instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def fail(self, name: str, message: str) -> None:
        self.problems.append(f"{key(name)}: {message}")

    def value(self, name: str) -> Any:
        """The raw value, JSON-decoded when Pulumi handed it over as a JSON string; None when unset."""
        value = self.raw.get(name)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    def string(self, name: str, default: str | None, form: str) -> str | None:
        value = self.value(name)
        if value is None:
            if default is None:
                self.fail(name, f"is required; set it to {form}")
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(name, f"must be {form} (got {value!r})")
            return default
        return value.strip()

    def integer(self, name: str, default: int, low: int, high: int | None, form: str) -> int:
        value = self.value(name)
        if value is None:
            return default
        number: int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value)
        ):
            number = int(value)
        if number is None or number < low or (high is not None and number > high):
            self.fail(name, f"must be {form} (got {value!r})")
            return default
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.value(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.fail(name, f"must be true or false (got {value!r})")
        return default

    def string_list(self, name: str, required: bool, form: str) -> list[str]:
        value = self.value(name)
        if value is None:
            if required:
                self.fail(name, f"is required; set it to a list of {form}")
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(name, f"must be a list of {form} (got {value!r})")
            return []
        return [item.strip() for item in value]


def load_settings(raw: Mapping[str, Any]) -> StackSettings:
    """Validate the raw ``pop3-oauth`` config (keys without namespace) into ``StackSettings``.

    Raises ``SettingsError`` with every problem found; nothing is half-applied.
    """
    reader = _Reader(raw)
    for unknown in sorted(set(raw) - set(KNOWN_KEYS)):
        reader.fail(unknown, f"is not a setting of this program; known keys: {', '.join(KNOWN_KEYS)}")

    tenant_id = reader.string("tenantId", None, _GUID_FORM)
    if tenant_id is not None and not is_guid(tenant_id):
        reader.fail("tenantId", f"must be {_GUID_FORM} (got {tenant_id!r})")

    mailboxes = _mailboxes(reader)
    app_display_name = reader.string(
        "appDisplayName", DEFAULT_APP_DISPLAY_NAME, "a non-empty name of at most 120 characters"
    )
    if app_display_name is not None and len(app_display_name) > 120:
        reader.fail("appDisplayName", f"must be at most 120 characters (got {len(app_display_name)})")
    rotation_days = reader.integer(
        "secretRotationDays",
        DEFAULT_ROTATION_DAYS,
        MIN_ROTATION_DAYS,
        MAX_ROTATION_DAYS,
        f"a whole number of days from {MIN_ROTATION_DAYS} to {MAX_ROTATION_DAYS} (each secret lives three "
        f"periods, and Entra allows at most {MAX_SECRET_LIFETIME_DAYS} days)",
    )
    force_rotation = reader.integer(
        "forceRotation", 0, 0, None, "a whole number >= 0; raise it by one to rotate and revoke at once"
    )
    cloud = reader.string("cloud", DEFAULT_CLOUD, f"one of {', '.join(CLOUDS)}")
    if cloud is not None and cloud not in CLOUDS:
        reader.fail("cloud", f"must be one of {', '.join(CLOUDS)} (got {cloud!r})")

    owners = reader.string_list("owners", False, f"object ids ({_GUID_FORM})")
    for owner in owners:
        if not is_guid(owner):
            reader.fail("owners", f"{owner!r} is not {_GUID_FORM}")
    if len({owner.lower() for owner in owners}) != len(owners):
        reader.fail("owners", "lists the same object id twice")

    tags = reader.string_list("tags", False, "non-empty strings of at most 256 characters")
    for tag in tags:
        if not tag or len(tag) > 256:
            reader.fail("tags", f"{tag!r} must be a non-empty string of at most 256 characters")

    adopted = _adopted_secrets(reader)
    allow_duplicate_app_name = reader.boolean("allowDuplicateAppName", False)
    max_lifetime = reader.integer(
        "maxSecretLifetimeDays",
        MAX_SECRET_LIFETIME_DAYS,
        MIN_SECRET_LIFETIME_DAYS,
        MAX_SECRET_LIFETIME_DAYS,
        f"a whole number of days from {MIN_SECRET_LIFETIME_DAYS} to {MAX_SECRET_LIFETIME_DAYS}: the longest "
        "client-secret lifetime the tenant's app-management policy allows",
    )
    if secret_lifetime_days(rotation_days) > max_lifetime:
        reader.fail(
            "secretRotationDays",
            f"{rotation_days} days gives secrets valid for {secret_lifetime_days(rotation_days)} days "
            f"({LIFETIME_PERIODS} periods), longer than {key('maxSecretLifetimeDays')} ({max_lifetime}) "
            f"allows; set {key('secretRotationDays')} to at most {longest_rotation_days(max_lifetime)}, or "
            f"raise {key('maxSecretLifetimeDays')} once the tenant's policy allows longer secrets",
        )
    deployers_own_app = reader.boolean("deployersOwnApp", True)

    if reader.problems:
        raise SettingsError(reader.problems)
    # No problems means the required values were found; the checks below only narrow the types.
    assert tenant_id is not None
    assert app_display_name is not None
    assert cloud is not None
    return StackSettings(
        tenant_id=tenant_id.lower(),
        mailboxes=tuple(mailboxes),
        app_display_name=app_display_name,
        secret_rotation_days=rotation_days,
        force_rotation=force_rotation,
        cloud=cloud,
        owners=tuple(owner.lower() for owner in owners),
        tags=tuple(tags),
        adopted_secrets=tuple(adopted),
        allow_duplicate_app_name=allow_duplicate_app_name,
        max_secret_lifetime_days=max_lifetime,
        deployers_own_app=deployers_own_app,
    )


def _mailboxes(reader: _Reader) -> list[str]:
    problems_before = len(reader.problems)
    mailboxes = reader.string_list("mailboxes", True, _MAILBOX_FORM)
    if not mailboxes and len(reader.problems) == problems_before:
        reader.fail("mailboxes", f"must list at least one mailbox ({_MAILBOX_FORM})")
    seen: set[str] = set()
    for mailbox in mailboxes:
        if not is_mailbox(mailbox):
            reader.fail("mailboxes", f"{mailbox!r} is not {_MAILBOX_FORM}")
        elif mailbox.lower() in seen:
            reader.fail("mailboxes", f"{mailbox!r} is listed twice (addresses compare case-insensitively)")
        seen.add(mailbox.lower())
    return mailboxes


ADOPTED_ENTRY_FORM = (
    "'<keyId GUID> <expiresAt RFC 3339> [display name]', "
    "e.g. '6f1c2a3b-0000-4000-8000-1234567890ab 2027-05-31T10:00:00Z POP3 hand-made'"
)


def parse_adopted_secret(value: str) -> AdoptedSecret:
    """Parse one ``adoptedSecrets`` entry; ValueError says what is wrong."""
    key_id, _, rest = value.strip().partition(" ")
    expires, _, display_name = rest.strip().partition(" ")
    if not is_guid(key_id):
        raise ValueError(f"{key_id!r} is not a key id ({_GUID_FORM})")
    try:
        expires_at = parse_rfc3339(expires)
    except ValueError:
        raise ValueError(f"{expires!r} is not an RFC 3339 time like 2027-05-31T10:00:00Z") from None
    return AdoptedSecret(key_id=key_id.lower(), expires_at=expires_at, display_name=display_name.strip())


def format_adopted_secret(secret: AdoptedSecret) -> str:
    """The ``adoptedSecrets`` entry for ``secret`` (the inverse of ``parse_adopted_secret``)."""
    expires = to_rfc3339(secret.expires_at)
    return f"{secret.key_id} {expires} {secret.display_name}".strip()


def _adopted_secrets(reader: _Reader) -> list[AdoptedSecret]:
    secrets: list[AdoptedSecret] = []
    for entry in reader.string_list("adoptedSecrets", False, ADOPTED_ENTRY_FORM):
        try:
            secrets.append(parse_adopted_secret(entry))
        except ValueError as error:
            reader.fail("adoptedSecrets", f"{error}; each entry must be {ADOPTED_ENTRY_FORM}")
    return secrets
