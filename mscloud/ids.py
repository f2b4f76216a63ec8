"""Entra identifiers: tenant, application (client) and object ids are GUIDs."""

from __future__ import annotations

import re

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: str) -> bool:
    """Whether ``value`` is a GUID (either case, with hyphens, nothing around it)."""
    return bool(_GUID.match(value))
