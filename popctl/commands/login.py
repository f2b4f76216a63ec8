"""``popctl login``: the delegated Exchange administrator sign-in (:func:`mscloud.auth.device_code_login`).

The device-code flow (open a URL, enter a code, sign in as an Exchange administrator) stores the msal token
cache (mode 0600) that the Exchange provider and ``verify --admin`` use when no ``ARM_*`` app credentials
are set. The instructions go to stderr, the result to stdout.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mscloud.clouds import CLOUDS, DEFAULT_CLOUD
from popctl import values
from popctl.errors import Exit

if TYPE_CHECKING:
    from popctl.cli import Context


@dataclass(frozen=True)
class LoginOptions:
    tenant_id: str
    cloud: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Sign in as an Exchange administrator (device code) for the Exchange provider."
    parser.add_argument("--tenant-id", required=True, help="the customer's tenant id")
    parser.add_argument("--cloud", choices=sorted(CLOUDS), default=DEFAULT_CLOUD, help="the Microsoft cloud")


def parse(namespace: argparse.Namespace) -> LoginOptions:
    return LoginOptions(namespace.tenant_id, namespace.cloud)


def run(options: LoginOptions, context: Context) -> Exit:
    from mscloud import auth

    upn = auth.device_code_login(
        options.tenant_id, values.cloud(options.cloud), prompt=context.consoles.message
    )
    context.consoles.result(
        f"Signed in as {upn or 'unknown user'} for tenant {options.tenant_id}; "
        f"token cache {auth.token_cache_path()} (readable only by you)."
    )
    return Exit.OK
