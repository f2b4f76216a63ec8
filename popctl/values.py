"""Values popctl reads from the command line, the environment and Microsoft, checked in one place.

Each function returns the typed value or raises :class:`popctl.errors.UsageError` (a malformed RFC 3339
time from a service is a :class:`ValueError` naming where it came from).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from components import settings
from mscloud.clouds import CLOUDS, Cloud, get_cloud
from mscloud.ids import is_guid
from popctl.errors import UsageError

EXAMPLE_STACK = "example"
STACK_NAME = "[A-Za-z0-9._-]+"
_STACK_NAME = re.compile(f"^{STACK_NAME}$")
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")


def stack_name(name: str, option: str = "--stack", *, new: bool = False) -> str:
    """``name`` if it is a stack name (letters, digits, ``.``, ``_``, ``-``); ``new``: not the sample's."""
    if not _STACK_NAME.match(name):
        raise UsageError(f"{option} {name!r} is not a stack name (letters, digits, '.', '_', '-')")
    if new and name == EXAMPLE_STACK:
        raise UsageError(
            f"{option} {name!r} is the sample stack (stacks/Pulumi.example.yaml); choose another"
        )
    return name


def guid(value: str, option: str) -> str:
    """``value`` stripped and in lower case, if it is a GUID."""
    text = value.strip().lower()
    if not is_guid(text):
        raise UsageError(f"{option} must be a GUID like 00000000-0000-0000-0000-000000000000, got {value!r}")
    return text


def mailboxes(values: list[str], option: str = "--mailbox") -> tuple[str, ...]:
    """The addresses in order, duplicates (compared case-insensitively) dropped, each one checked."""
    unique: dict[str, str] = {}
    for value in (entry.strip() for entry in values):
        unique.setdefault(value.lower(), value)
    bad = [value for value in unique.values() if not settings.is_mailbox(value)]
    if bad:
        raise UsageError(f"{option} must be an e-mail address like edi@contoso.com, got {', '.join(bad)}")
    return tuple(unique.values())


def duration(text: str, option: str) -> timedelta:
    """``6h``, ``2d``, ``90m`` or ``1d12h`` as a positive :class:`~datetime.timedelta`."""
    match = _DURATION.match(text.strip().lower())
    span = (
        timedelta(days=int(match["d"] or 0), hours=int(match["h"] or 0), minutes=int(match["m"] or 0))
        if match
        else timedelta()
    )
    if span <= timedelta():
        raise UsageError(f"{option} must be a duration like 6h, 2d, 90m or 1d12h, got {text!r}")
    return span


def cloud(name: str, environ: Mapping[str, str] | None = None) -> Cloud:
    """The cloud ``name`` with the endpoint overrides of ``environ`` (default: the process's) applied."""
    try:
        return get_cloud(name).with_overrides(environ)
    except KeyError:
        raise UsageError(f"unknown cloud {name!r}; one of {', '.join(sorted(CLOUDS))}") from None
    except ValueError as error:
        raise UsageError(str(error)) from None


def now() -> datetime:
    """The program's clock (``POP3_OAUTH_NOW`` or now), shared with the Pulumi program."""
    try:
        return settings.program_clock()
    except ValueError as error:
        raise UsageError(str(error)) from None


def project_dir(given: Path | None) -> Path:
    """``given``, or the project the working directory is in (:func:`find_project_dir`)."""
    return given if given is not None else find_project_dir(Path.cwd())


def find_project_dir(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding ``Pulumi.yaml``, else ``start``."""
    for candidate in (start, *start.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return start


def rfc3339(value: str, what: str) -> datetime:
    """``value`` as an aware UTC datetime; ValueError naming ``what`` unless it is RFC 3339 with an offset."""
    try:
        return settings.parse_rfc3339(value)
    except ValueError as error:
        raise ValueError(
            f"{what} is not an RFC 3339 time with an offset, such as 2025-01-31T12:00:00Z (got {value!r})"
        ) from error
