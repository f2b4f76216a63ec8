"""The Exchange Online objects as Pulumi resources (type tokens ``pulumi-python:dynamic/exchange:<Name>``).

Renaming these classes or their ``name=`` changes URNs; moving the providers breaks existing stacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.exchange.mailbox_access import MailboxAccessProvider
from components.exchange.providers import MailboxPermissionProvider, ServicePrincipalRegistrationProvider
from mscloud.clouds import DEFAULT_CLOUD
from mscloud.permissions import FULL_ACCESS


class ServicePrincipalRegistration(Resource, module="exchange", name="ServicePrincipalRegistration"):
    """The app's service principal registered in Exchange Online (``New-ServicePrincipal``).

    Args:
        tenant_id: the tenant (directory) id.
        app_id: the application (client) id.
        object_id: the *service principal's* (enterprise application's) object id,
            never the app registration's.
        display_name: the name Exchange shows; the only property that changes in place.
        cloud: a key of ``mscloud.clouds.CLOUDS`` (default ``public``).

    Outputs carry the same keys with the live values; a change of any other input replaces the registration
    (delete first, then create).
    """

    tenant_id: pulumi.Output[str]
    app_id: pulumi.Output[str]
    object_id: pulumi.Output[str]
    display_name: pulumi.Output[str]
    cloud: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        tenant_id: pulumi.Input[str],
        app_id: pulumi.Input[str],
        object_id: pulumi.Input[str],
        display_name: pulumi.Input[str],
        cloud: pulumi.Input[str] = DEFAULT_CLOUD,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "tenant_id": tenant_id,
            "app_id": app_id,
            "object_id": object_id,
            "display_name": display_name,
            "cloud": cloud,
        }
        super().__init__(ServicePrincipalRegistrationProvider(), resource_name, props, opts)


class MailboxAccess(Resource, module="exchange", name="MailboxAccess"):
    """Access rights of the service principal on the configured mailboxes (``Add-MailboxPermission``),
    keyed by the mailbox each address names, not by the address (``MailboxAccessProvider``).

    Args:
        tenant_id: the tenant (directory) id.
        user: the service principal's object id (as registered by ``ServicePrincipalRegistration``).
        app_id: the application (client) id.
        mailboxes: the addresses; each must name a mailbox with POP enabled, no two the same mailbox.
        access_rights: default ``["FullAccess"]``.
        cloud: a key of ``mscloud.clouds.CLOUDS`` (default ``public``).

    Outputs carry the same keys and ``entries`` (per mailbox: address, mailbox_id, primary_address,
    access_rights, granted_by_stack). Only tenant, user or cloud replace it (the new one first).
    """

    tenant_id: pulumi.Output[str]
    user: pulumi.Output[str]
    app_id: pulumi.Output[str]
    mailboxes: pulumi.Output[list[str]]
    access_rights: pulumi.Output[list[str]]
    entries: pulumi.Output[list[dict[str, Any]]]
    cloud: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        tenant_id: pulumi.Input[str],
        user: pulumi.Input[str],
        app_id: pulumi.Input[str],
        mailboxes: Sequence[str],
        access_rights: Sequence[str] = (FULL_ACCESS,),
        cloud: pulumi.Input[str] = DEFAULT_CLOUD,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "tenant_id": tenant_id,
            "user": user,
            "app_id": app_id,
            "mailboxes": list(mailboxes),
            "access_rights": list(access_rights),
            "cloud": cloud,
            "entries": None,
        }
        super().__init__(MailboxAccessProvider(), resource_name, props, opts)


class MailboxPermission(Resource, module="exchange", name="MailboxPermission"):
    """Access rights of the service principal on one mailbox (``Add-MailboxPermission``), as the first
    release declared them; the program declares :class:`MailboxAccess` instead, and existing stacks move
    to it on their next ``pulumi up`` (see ``MailboxPermissionProvider.delete``).

    Args:
        tenant_id: the tenant (directory) id.
        mailbox: the mailbox address; it must exist and have POP enabled, or create fails with the remedy.
        user: the service principal's object id (as registered by ``ServicePrincipalRegistration``).
        access_rights: default ``["FullAccess"]``; changes in place.
        cloud: a key of ``mscloud.clouds.CLOUDS`` (default ``public``).

    Outputs carry the same keys with the live values (``access_rights`` as a sorted list) and
    ``principal_names``, the names under which Exchange may list the principal.
    """

    tenant_id: pulumi.Output[str]
    mailbox: pulumi.Output[str]
    user: pulumi.Output[str]
    access_rights: pulumi.Output[list[str]]
    principal_names: pulumi.Output[list[str]]
    cloud: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        tenant_id: pulumi.Input[str],
        mailbox: pulumi.Input[str],
        user: pulumi.Input[str],
        access_rights: pulumi.Input[Sequence[pulumi.Input[str]]] = (FULL_ACCESS,),
        cloud: pulumi.Input[str] = DEFAULT_CLOUD,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "tenant_id": tenant_id,
            "mailbox": mailbox,
            "user": user,
            "access_rights": list(access_rights) if isinstance(access_rights, tuple) else access_rights,
            "cloud": cloud,
            "principal_names": None,
        }
        super().__init__(MailboxPermissionProvider(), resource_name, props, opts)
