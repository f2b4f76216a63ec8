"""``popctl logout``: forget one tenant's administrator sign-in, or delete the whole token cache
(:func:`mscloud.auth.logout`); exit 0 whether or not there was one."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from popctl.errors import Exit, UsageError

if TYPE_CHECKING:
    from popctl.cli import Context


@dataclass(frozen=True)
class LogoutOptions:
    tenant_id: str | None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Forget the administrator sign-in of one tenant, or of all."
    parser.add_argument("--tenant-id", help="forget only this tenant's sign-in (default: delete the cache)")


def parse(namespace: argparse.Namespace) -> LogoutOptions:
    return LogoutOptions(namespace.tenant_id)


def run(options: LogoutOptions, context: Context) -> Exit:
    from mscloud import auth

    path = auth.token_cache_path()
    try:
        removed = auth.logout(options.tenant_id)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot update the token cache {path}: {error}") from None
    scope = f"tenant {options.tenant_id}" if options.tenant_id else "all tenants"
    if removed:
        context.consoles.result(f"Signed out ({scope}); token cache {path} updated.")
    else:
        context.consoles.result(f"Nothing to sign out ({scope}): no sign-in in {path}.")
    return Exit.OK
