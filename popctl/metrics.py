"""The fleet's health for Prometheus: node_exporter's textfile collector reads the file ``popctl fleet
--metrics`` writes (``prometheus_client.write_to_textfile``: the exposition format, replaced atomically).

Every series has the labels ``stack`` and ``tenant_id``; the names are documented in docs/operations.md:

- ``pop3oauth_drift`` 1 when a refresh preview shows drift, else 0;
- ``pop3oauth_pending_changes`` 1 when a preview shows changes (a rotation is due, or unapplied code);
- ``pop3oauth_check_error`` 1 when the tenant could not be fully checked;
- ``pop3oauth_revokes_secret_in_use`` 1 when a pending rotation would revoke a secret used recently;
- ``pop3oauth_secret_expiry_seconds`` seconds until the earliest expiry among the secrets the ERP may be
  using (``current``, ``previous``, ``adopted``; negative once expired; absent without such a secret);
- ``pop3oauth_check_timestamp_seconds`` when the check ran (Unix time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from popctl.fleet import TenantReport

LABELS = ("stack", "tenant_id")


def fleet_registry(reports: Sequence[TenantReport], now: datetime) -> CollectorRegistry:
    """A registry holding one sample per tenant of each metric (see the module docstring)."""
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, LABELS, registry=registry)

    drift = gauge("pop3oauth_drift", "1 when the tenant has drifted from its stack (refresh preview)")
    pending = gauge("pop3oauth_pending_changes", "1 when the next pulumi up would change something")
    error = gauge("pop3oauth_check_error", "1 when the tenant could not be fully checked")
    in_use = gauge(
        "pop3oauth_revokes_secret_in_use", "1 when a pending rotation would revoke a secret used recently"
    )
    expiry = gauge(
        "pop3oauth_secret_expiry_seconds",
        "Seconds until the earliest expiry of a secret the ERP may be using (current, previous, adopted)",
    )
    checked = gauge("pop3oauth_check_timestamp_seconds", "Unix time of the check")
    for report in reports:
        labels = (report.stack, report.tenant_id or "")
        drift.labels(*labels).set(int(bool(report.drift)))
        pending.labels(*labels).set(int(bool(report.pending)))
        error.labels(*labels).set(int(bool(report.errors)))
        in_use.labels(*labels).set(int(bool(report.revokes_in_use)))
        expiries = [secret.expires_at for secret in report.secrets if secret.status != "retiring"]
        if expiries:
            expiry.labels(*labels).set((min(expiries) - now).total_seconds())
        checked.labels(*labels).set((report.checked_at or now).timestamp())
    return registry


def write_metrics(path: Path, reports: Sequence[TenantReport], now: datetime) -> None:
    """Write the registry to ``path`` for the textfile collector (a temporary file renamed into place)."""
    write_to_textfile(str(path), fleet_registry(reports, now))
