"""``popctl login`` / ``popctl logout``: the delegated Exchange administrator sign-in.

``login`` runs the device-code flow (open a URL, enter a code, sign in as an Exchange administrator)
and stores the msal token cache (mode 0600) that the Exchange provider and ``verify --admin`` use when
no ``ARM_*`` app credentials are set. ``logout`` removes one tenant's sign-in, or the whole cache.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from components.clouds import CLOUDS, get_cloud
from components.exchange import auth
from popctl.cli import EXIT_FAILED, EXIT_OK, UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = subparsers.add_parser(
        "login",
        help="sign in as Exchange administrator (device code) for the Exchange provider and verify --admin",
        description="Sign in as an Exchange administrator (device code) for the Exchange provider.",
    )
    login.add_argument("--tenant-id", required=True, help="the customer's tenant id")
    login.add_argument("--cloud", choices=sorted(CLOUDS), default="public", help="the Microsoft cloud")
    login.set_defaults(func=run_login)
    logout = subparsers.add_parser("logout", help="forget the administrator sign-in (one tenant, or all)")
    logout.add_argument("--tenant-id", help="forget only this tenant's sign-in (default: delete the cache)")
    logout.set_defaults(func=run_logout)


def run_login(args: argparse.Namespace) -> int:
    """Device-code sign-in; the instructions go to stderr, the result to stdout."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        cloud = get_cloud(args.cloud).with_overrides()
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        upn = auth.device_code_login(args.tenant_id, cloud, prompt=lambda text: err.print(text, markup=False))
    except auth.AuthError as error:
        err.print(f"popctl login: {error}", markup=False)
        return EXIT_FAILED
    print(
        f"Signed in as {upn or 'unknown user'} for tenant {args.tenant_id}; "
        f"token cache {auth.token_cache_path()} (readable only by you)."
    )
    return EXIT_OK


def run_logout(args: argparse.Namespace) -> int:
    """Remove the sign-in; exit 0 whether or not there was one."""
    path = auth.token_cache_path()
    try:
        removed = auth.logout(args.tenant_id)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot update the token cache {path}: {error}") from None
    scope = f"tenant {args.tenant_id}" if args.tenant_id else "all tenants"
    if removed:
        print(f"Signed out ({scope}); token cache {path} updated.")
    else:
        print(f"Nothing to sign out ({scope}): no sign-in in {path}.")
    return EXIT_OK
