"""The Pulumi program: read the stack settings once, declare the tenant, export what the ERP needs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components import names
from components.settings import KNOWN_KEYS, NAMESPACE, SettingsError, load_settings, program_clock
from components.tenant import Pop3Tenant, Pop3TenantArgs


def raw_stack_config() -> dict[str, Any]:
    """Every ``pop3-oauth:*`` value set for this stack, keyed without the namespace.

    Unknown keys are included so that a typo (``mailbox`` for ``mailboxes``) is reported, not ignored.
    """
    prefix = f"{NAMESPACE}:"
    present = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    names = {full[len(prefix) :] for full in present if full.startswith(prefix)} | set(KNOWN_KEYS)
    config = pulumi.Config(NAMESPACE)
    return {name: value for name in sorted(names) if (value := config.get(name)) is not None}


def run(now: datetime | None = None) -> Pop3Tenant:
    """Validate the whole configuration first (every problem at once), then declare the tenant."""
    try:
        settings = load_settings(raw_stack_config())
    except SettingsError as error:
        raise pulumi.RunError(str(error)) from None
    tenant = Pop3Tenant(
        names.COMPONENT_NAME,
        Pop3TenantArgs(
            settings=settings,
            now=now or program_clock(),
            stack=pulumi.get_stack(),
        ),
    )
    for name, value in tenant.outputs.items():
        pulumi.export(name, value)
    return tenant
