"""The fleet's dates as an iCalendar file: one event per tenant for its next rotation and one per secret
expiry, with the hand-off command in the description.

UIDs are stable (``rotation-<tenant>@pop3-oauth``, ``secret-<keyId>@pop3-oauth``), so importing or
subscribing to a newer file moves the events instead of adding copies. Events are all-day, on the UTC date,
with a reminder before. The text comes from the ``icalendar`` library; the file is replaced atomically.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from icalendar import Alarm, Calendar, Event

from components.settings import to_rfc3339
from popctl.fleet import SecretExpiry, TenantReport

PRODUCT_ID = "-//pop3-oauth//popctl fleet//EN"
UID_DOMAIN = "pop3-oauth"
ROTATION_REMINDER = timedelta(days=1)
EXPIRY_REMINDER = timedelta(days=7)


def handoff_command(stack: str) -> str:
    return f"python -m popctl handoff --stack {stack} --show-secret"


def fleet_calendar(reports: Sequence[TenantReport], now: datetime) -> Calendar:
    """The calendar of ``reports``: rotation events for tenants whose next rotation is known, expiry events
    for every secret listed."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "pop3-oauth rotations and secret expiries")
    for report in reports:
        tenant = report.tenant_id or report.stack
        if report.next_rotation_at is not None:
            calendar.add_component(
                _event(
                    f"rotation-{tenant}@{UID_DOMAIN}",
                    f"pop3-oauth: rotate the client secret of {report.stack}",
                    report.next_rotation_at,
                    now,
                    (
                        f"From {to_rfc3339(report.next_rotation_at)} the next `pulumi up` of stack "
                        f"{report.stack} (tenant {tenant}) issues a new client secret. Then give it to "
                        f"Concept Office (Externe Systeme):\n{handoff_command(report.stack)}"
                    ),
                    ROTATION_REMINDER,
                )
            )
        for secret in report.secrets:
            calendar.add_component(_expiry_event(report, secret, now))
    return calendar


def write_calendar(path: Path, reports: Sequence[TenantReport], now: datetime) -> None:
    """Write :func:`fleet_calendar` to ``path``, replacing it atomically (readers never see half a file)."""
    payload = fleet_calendar(reports, now).to_ical()
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _expiry_event(report: TenantReport, secret: SecretExpiry, now: datetime) -> Event:
    origin = "managed" if secret.managed else "hand-made"
    return _event(
        f"secret-{secret.key_id}@{UID_DOMAIN}",
        f"pop3-oauth: client secret {secret.key_id[:8]} of {report.stack} expires",
        secret.expires_at,
        now,
        (
            f"Client secret {secret.key_id} ({secret.status}, {origin}, {secret.display_name or 'no name'}) "
            f"of stack {report.stack} expires at {to_rfc3339(secret.expires_at)}. Concept Office must use "
            f"the current secret before then:\n{handoff_command(report.stack)}"
        ),
        EXPIRY_REMINDER,
    )


def _event(
    uid: str, summary: str, moment: datetime, now: datetime, description: str, reminder: timedelta
) -> Event:
    day: date = moment.date()
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", now)
    event.add("last-modified", now)
    event.add("summary", summary)
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("transp", "TRANSPARENT")
    event.add("description", description)
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", summary)
    alarm.add("trigger", -reminder)
    event.add_component(alarm)
    return event
