"""Exchange Online as code: a Pulumi-free admin API client, token sources, and two dynamic resources."""

from components.exchange.providers import MailboxPermissionProvider, ServicePrincipalRegistrationProvider
from components.exchange.resources import MailboxPermission, ServicePrincipalRegistration

__all__ = [
    "MailboxPermission",
    "MailboxPermissionProvider",
    "ServicePrincipalRegistration",
    "ServicePrincipalRegistrationProvider",
]
