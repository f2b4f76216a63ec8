"""The names the program gives its component and resources: one place for the program, ``popctl adopt``'s
import file and anything else that must point at them. Pulumi-free.

Child names derive from the component's instance name (``pop3``): ``pop3-app``, ``pop3-secret-0``, ...
Changing any of them changes URNs, so existing stacks would re-create the resource.
"""

from __future__ import annotations

PROJECT = "pop3-oauth"
COMPONENT_TYPE = "pop3-oauth:tenant:Pop3Tenant"
COMPONENT_NAME = "pop3"

PROVIDER_TYPE = "pulumi:providers:azuread"
APPLICATION_TYPE = "azuread:index/application:Application"
SERVICE_PRINCIPAL_TYPE = "azuread:index/servicePrincipal:ServicePrincipal"
APP_ROLE_ASSIGNMENT_TYPE = "azuread:index/appRoleAssignment:AppRoleAssignment"

PROVIDER = "azuread"
APPLICATION = "app"
SERVICE_PRINCIPAL = "sp"
CONSENT = "pop-consent"
EXCHANGE_REGISTRATION = "exchange-sp"
MAILBOX_ACCESS = "mailbox-access"
DEPLOYERS = "deployers"


def child(kind: str, component: str = COMPONENT_NAME) -> str:
    """The name of the component's child of this kind: ``child(APPLICATION)`` is ``pop3-app``."""
    return f"{component}-{kind}"


def secret(slot: int, component: str = COMPONENT_NAME) -> str:
    return child(f"secret-{slot}", component)


def secret_slot(slot: int, component: str = COMPONENT_NAME) -> str:
    return child(f"secret-slot-{slot}", component)


def mailbox_permission(mailbox: str, component: str = COMPONENT_NAME) -> str:
    """The first release's per-mailbox resource (``MailboxPermission``), which stacks move away from."""
    return child(f"fullaccess-{mailbox.lower()}", component)


def stack_tag(stack: str) -> str:
    """The tag the program puts on the app registration of ``stack``."""
    return f"pop3-oauth-stack:{stack}"


def component_urn(stack: str) -> str:
    """The URN of the program's ``Pop3Tenant`` component in ``stack``."""
    return f"urn:pulumi:{stack}::{PROJECT}::{COMPONENT_TYPE}::{COMPONENT_NAME}"


def provider_urn(stack: str) -> str:
    """The URN of the explicit azuread provider, a child of the component."""
    return f"urn:pulumi:{stack}::{PROJECT}::{COMPONENT_TYPE}${PROVIDER_TYPE}::{child(PROVIDER)}"
