"""Whether an app-only token may open a mailbox over POP3: Office 365's rule, decided from the emulator.

Office 365 lets a client-credentials token log in to a mailbox over POP3 when all of these hold, and this
module checks them in this order, the first failure being the reason given:

1. the token is one Entra issued (signature), for Exchange Online (``aud``), unexpired by the emulator's
   clock;
2. it carries the app role ``POP.AccessAsApp`` - Entra puts it there when the app's service principal has
   the role assigned (admin consent);
3. Exchange knows the service principal: a registration (``New-ServicePrincipal``) with the token's app id
   under the object id of the token (``oid``, the enterprise application's object id - a registration
   under the app registration's object id is the classic mistake and does not count);
4. the mailbox the login name names (any of its addresses) exists in the token's tenant, POP enabled;
5. that registration holds FullAccess on that mailbox.

An app token names no mailbox; the POP3 login name says which one. The Dovecot of the sandbox asks
:meth:`PopAccess.decide` through the emulator's introspection endpoint (see ``sandbox.emulator``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from sandbox.entra import EXCHANGE_RESOURCE, EntraFake
from sandbox.exchange import ExchangeFake

POP_ROLE = "POP.AccessAsApp"
FULL_ACCESS = "FullAccess"


@dataclass(frozen=True)
class Decision:
    """The answer for one login: ``allowed``, and why not (safe to log: no token, no secret)."""

    allowed: bool
    reason: str
    tenant_id: str = ""
    client_id: str = ""


class PopAccess:
    """Decides POP3 logins from the state of an Entra and an Exchange fake (read under their locks)."""

    def __init__(self, entra: EntraFake, exchange: ExchangeFake) -> None:
        self.entra = entra
        self.exchange = exchange

    def decide(self, token: str, mailbox: str) -> Decision:
        try:
            claims = self.entra.verify_token(token, EXCHANGE_RESOURCE, require=["tid", "oid"])
        except jwt.PyJWTError as error:
            return Decision(False, f"token refused: {error}")
        tenant_id = str(claims["tid"]).lower()
        client_id = str(claims.get("appid") or claims.get("azp") or "")
        object_id = str(claims["oid"]).lower()

        def refuse(reason: str) -> Decision:
            return Decision(False, reason, tenant_id, client_id)

        if "scp" in claims:
            return refuse("a delegated token: the sandbox's POP3 takes app-only tokens only")
        if POP_ROLE not in (claims.get("roles") or []):
            return refuse(f"the token has no {POP_ROLE} role (admin consent missing)")
        with self.exchange._lock:
            tenant = self.exchange.tenants.get(tenant_id)
            if tenant is None:
                return refuse(f"tenant {tenant_id} has no Exchange organisation")
            registrations = [p for p in tenant.service_principals.values() if p.app_id.lower() == client_id]
            if not registrations:
                return refuse(f"app {client_id} has no Exchange service principal (New-ServicePrincipal)")
            if all(p.object_id.lower() != object_id for p in registrations):
                wrong = ", ".join(p.object_id for p in registrations)
                return refuse(
                    f"app {client_id} is registered in Exchange under object id {wrong}, "
                    f"not its service principal's {object_id}"
                )
            found = next((m for m in tenant.mailboxes.values() if m.known_as(mailbox)), None)
            if found is None:
                return refuse(f"no mailbox {mailbox} in tenant {tenant_id}")
            if not found.pop_enabled:
                return refuse(f"POP is disabled on {mailbox}")
            if FULL_ACCESS not in found.permissions.get(object_id, set()):
                return refuse(f"service principal {object_id} holds no FullAccess on {mailbox}")
        return Decision(True, "allowed", tenant_id, client_id)
