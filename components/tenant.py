"""``Pop3Tenant``: everything one customer tenant needs for app-only POP3 access, as one component."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pulumi
import pulumi_azuread as azuread

from components import names
from components.exchange.resources import MailboxAccess, ServicePrincipalRegistration
from components.outputs import SecretRecord, concept_office
from components.owners import DeployingIdentities
from components.rotation import Schedule, schedule_of
from components.secret_slots import SecretSlot, slot_state
from components.settings import SECRET_SLOTS, StackSettings, to_rfc3339
from mscloud.clouds import (
    EXCHANGE_ONLINE_APP_ID,
    POP3_PORT,
    POP_ACCESS_AS_APP,
    PUBLISHED_POP_ACCESS_AS_APP_ROLE_ID,
    get_cloud,
)
from mscloud.permissions import FULL_ACCESS


@dataclass(frozen=True)
class Pop3TenantArgs:
    """What the component needs: validated settings, the program's clock, and the stack's name."""

    settings: StackSettings
    now: datetime
    stack: str


class Pop3Tenant(pulumi.ComponentResource):
    """App registration, consent, rotating secrets, Exchange registration and mailbox access of one tenant.

    Declares, under one ``azuread.Provider`` pinned to the tenant: the Application requesting
    POP.AccessAsApp, its ServicePrincipal, the AppRoleAssignment that is the admin consent, three
    rotating ApplicationPasswords, the Exchange service principal and FullAccess on the mailboxes (one
    MailboxAccess for the set, keyed by the mailbox each address names), and the record of the
    deploying identities that own the app. The tenant's Office 365 Exchange Online service principal is
    looked up, never managed.
    """

    client_id: pulumi.Output[str]
    service_principal_object_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]
    schedule: pulumi.Output[Schedule]
    outputs: dict[str, pulumi.Output[Any]]

    def __init__(self, name: str, args: Pop3TenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(names.COMPONENT_TYPE, name, None, opts)
        settings = args.settings
        cloud = get_cloud(settings.cloud)
        provider = azuread.Provider(
            names.child(names.PROVIDER, name),
            tenant_id=settings.tenant_id,
            environment=cloud.azuread_environment,
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_tenant = pulumi.ResourceOptions(parent=self, provider=provider)

        exchange_online = azuread.get_service_principal_output(
            client_id=EXCHANGE_ONLINE_APP_ID,
            opts=pulumi.InvokeOutputOptions(parent=self, provider=provider),
        )
        pop_role_id = exchange_online.app_role_ids.apply(_pop_role_id)
        notes = (
            f"Managed by Pulumi: project pop3-oauth, stack {args.stack}. POP3 access for Concept Office. "
            "Changes made by hand are undone by the next `pulumi up`."
        )
        tags = ["pop3-oauth", names.stack_tag(args.stack), *settings.tags]
        owners = self._owners(name, settings, provider)

        app = azuread.Application(
            names.child(names.APPLICATION, name),
            display_name=settings.app_display_name,
            # An app of that name is usually the hand-made one the ERP logs in with today: stop rather
            # than create a twin beside it (popctl adopt takes it over), unless a second app is wanted.
            prevent_duplicate_names=not settings.allow_duplicate_app_name,
            sign_in_audience="AzureADMyOrg",
            owners=owners,
            notes=notes,
            tags=tags,
            required_resource_accesses=[
                azuread.ApplicationRequiredResourceAccessArgs(
                    resource_app_id=EXCHANGE_ONLINE_APP_ID,
                    resource_accesses=[
                        azuread.ApplicationRequiredResourceAccessResourceAccessArgs(
                            id=pop_role_id, type="Role"
                        )
                    ],
                )
            ],
            opts=in_tenant,
        )
        service_principal = azuread.ServicePrincipal(
            names.child(names.SERVICE_PRINCIPAL, name),
            client_id=app.client_id,
            owners=owners,
            notes=notes,
            opts=in_tenant,
        )
        consent = azuread.AppRoleAssignment(
            names.child(names.CONSENT, name),
            app_role_id=pop_role_id,
            principal_object_id=service_principal.object_id,
            resource_object_id=exchange_online.object_id,
            opts=in_tenant,
        )

        # The schedule's memory: one record per slot in the stack's own state (components/secret_slots.py).
        slots = [
            SecretSlot(
                names.secret_slot(slot, name),
                tenant_id=settings.tenant_id,
                cloud=settings.cloud,
                application_object_id=app.object_id,
                slot=slot,
                period_days=settings.secret_rotation_days,
                force_rotation=settings.force_rotation,
                max_lifetime_days=settings.max_secret_lifetime_days,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for slot in range(SECRET_SLOTS)
        ]
        schedule: pulumi.Output[Schedule] = pulumi.Output.all(*(slot_state(s) for s in slots)).apply(
            schedule_of
        )
        schedule.apply(functools.partial(_warn_if_clock_behind, now=args.now))
        passwords = [self._password(name, slot, app, in_tenant) for slot in slots]

        registration = ServicePrincipalRegistration(
            names.child(names.EXCHANGE_REGISTRATION, name),
            tenant_id=settings.tenant_id,
            app_id=app.client_id,
            object_id=service_principal.object_id,
            display_name=settings.app_display_name,
            cloud=settings.cloud,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[consent, *passwords]),
        )
        MailboxAccess(
            names.child(names.MAILBOX_ACCESS, name),
            tenant_id=settings.tenant_id,
            user=service_principal.object_id,
            app_id=app.client_id,
            mailboxes=settings.mailboxes,
            access_rights=[FULL_ACCESS],
            cloud=settings.cloud,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[registration]),
        )

        newest_slot = schedule.apply(lambda s: s.newest.slot)
        newest_value: pulumi.Output[str] = pulumi.Output.all(
            newest_slot, *(p.value for p in passwords)
        ).apply(lambda values: values[1 + values[0]])
        client_secret: pulumi.Output[str] = pulumi.Output.secret(newest_value)
        # Names and dates from the slot records (plain); the key id and start date are no secrets either,
        # but a password the first release created keeps outputs the engine marked secret until it is renewed.
        managed_secrets = [
            pulumi.Output.all(
                slot=slot.index,
                key_id=pulumi.Output.unsecret(password.key_id),
                created=pulumi.Output.unsecret(password.start_date),
                expires=slot.end_date,
                display_name=slot.display_name,
                status=schedule.apply(functools.partial(_slot_status, slot=slot.index)),
            ).apply(_managed_secret_record)
            for slot, password in zip(slots, passwords, strict=True)
        ]
        adopted_secrets = [
            SecretRecord(
                key_id=adopted.key_id,
                display_name=adopted.display_name,
                slot=None,
                created_at=None,
                expires_at=to_rfc3339(adopted.expires_at),
                managed=False,
                status="adopted",
            ).to_output()
            for adopted in settings.adopted_secrets
            if adopted.expires_at > args.now
        ]
        pop3_host = cloud.pop3_host
        mailboxes = list(settings.mailboxes)

        self.client_id = app.client_id
        self.service_principal_object_id = service_principal.object_id
        self.client_secret = client_secret
        self.schedule = schedule
        self.outputs = {
            "tenantId": pulumi.Output.from_input(settings.tenant_id),
            "clientId": app.client_id,
            "servicePrincipalObjectId": service_principal.object_id,
            "clientSecret": client_secret,
            "clientSecretExpiresAt": schedule.apply(lambda s: to_rfc3339(s.newest.expires_at)),
            "nextSecretRotationAt": schedule.apply(lambda s: to_rfc3339(s.next_rotation_at)),
            "secrets": pulumi.Output.all(*managed_secrets).apply(
                lambda managed: [*managed, *adopted_secrets]
            ),
            "mailboxes": pulumi.Output.from_input(mailboxes),
            "pop3Host": pulumi.Output.from_input(pop3_host),
            "pop3Port": pulumi.Output.from_input(POP3_PORT),
            "tokenEndpoint": pulumi.Output.from_input(cloud.token_endpoint(settings.tenant_id)),
            "tokenScope": pulumi.Output.from_input(cloud.exchange_scope),
            "authorityHost": pulumi.Output.from_input(cloud.authority_host),
            "cloud": pulumi.Output.from_input(cloud.name),
            "conceptOffice": pulumi.Output.secret(
                pulumi.Output.all(app.client_id, client_secret).apply(
                    lambda values: concept_office(
                        settings.tenant_id, values[0], values[1], pop3_host, mailboxes
                    )
                )
            ),
            "secretSchedule": schedule.apply(lambda s: s.to_output()),
        }
        self.register_outputs(self.outputs)

    def _owners(
        self, name: str, settings: StackSettings, provider: azuread.Provider
    ) -> pulumi.Input[list[str]] | None:
        """The configured owners, plus every identity that ran ``pulumi up`` here unless
        ``deployersOwnApp`` is false (``components.owners``); None (the provider's default) for none."""
        if not settings.deployers_own_app:
            return list(settings.owners) or None
        caller = azuread.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=provider)
        ).object_id
        deployers = DeployingIdentities(
            names.child(names.DEPLOYERS, name), caller=caller, opts=pulumi.ResourceOptions(parent=self)
        )
        configured = list(settings.owners)
        return deployers.identities.apply(
            lambda identities: [*configured, *(i for i in identities if i not in configured)]
        )

    def _password(
        self, name: str, slot: SecretSlot, app: azuread.Application, in_tenant: pulumi.ResourceOptions
    ) -> azuread.ApplicationPassword:
        """The slot's secret. Its arguments come from the slot's record and change only when it is renewed.

        Replacement deletes first: a normal rotation renews the slot whose secret expires then (two stay
        valid meanwhile), and a forced one must revoke even if a later step fails. ``rotateWhenChanged``,
        which the first release set, is ignored so that its stacks keep their secrets.
        """
        return azuread.ApplicationPassword(
            names.secret(slot.index, name),
            application_id=app.id,
            display_name=slot.display_name,
            end_date=slot.end_date,
            opts=pulumi.ResourceOptions.merge(
                in_tenant,
                pulumi.ResourceOptions(
                    additional_secret_outputs=["value"],
                    delete_before_replace=True,
                    ignore_changes=["rotateWhenChanged"],
                ),
            ),
        )


def _pop_role_id(app_role_ids: Mapping[str, str] | None) -> str:
    """The POP.AccessAsApp role id as the tenant's Exchange Online service principal publishes it.

    A lookup that returned no app roles at all says nothing about the tenant (it is how some test doubles
    answer); then the id Microsoft publishes is used, with a warning. A list without the role is an error.
    """
    if not app_role_ids:
        pulumi.log.warn(
            "The lookup of the Office 365 Exchange Online service principal returned no app roles; "
            f"using the published {POP_ACCESS_AS_APP} role id {PUBLISHED_POP_ACCESS_AS_APP_ROLE_ID}."
        )
        return PUBLISHED_POP_ACCESS_AS_APP_ROLE_ID
    role_id = app_role_ids.get(POP_ACCESS_AS_APP)
    if not role_id:
        raise ValueError(
            f"The tenant's Office 365 Exchange Online service principal ({EXCHANGE_ONLINE_APP_ID}) offers no "
            f"{POP_ACCESS_AS_APP} app role. Is Exchange Online licensed and provisioned in this tenant?"
        )
    return role_id


def _slot_status(schedule: Schedule, slot: int) -> str:
    return schedule.status(slot)


def _warn_if_clock_behind(schedule: Schedule, now: datetime) -> None:
    last = max(state.recorded_at for state in schedule.slots)
    if now < last:
        pulumi.log.warn(
            f"This run's clock ({to_rfc3339(now)}) is behind the schedule's last recorded run "
            f"({to_rfc3339(last)}); the schedule treats it as that time and renews nothing early. "
            "Check the machine's clock or POP3_OAUTH_NOW."
        )


def _managed_secret_record(values: Mapping[str, Any]) -> dict[str, Any]:
    return SecretRecord(
        key_id=values["key_id"],
        display_name=values["display_name"],
        slot=values["slot"],
        created_at=values["created"],
        expires_at=values["expires"],
        managed=True,
        status=values["status"],
    ).to_output()
