"""Why app-only POP3 access to a mailbox fails: one vocabulary for tokens, claims, POP3 and Exchange.

The values are the ``cause`` field of ``popctl verify --json`` (a contract: docs/verify-and-handoff.md).
Token requests (``mscloud.entra``), the claims of a token, the POP3 client and the Exchange-side diagnosis
all name their failures with these members, so no layer translates one enumeration into another.
"""

from __future__ import annotations

from enum import StrEnum


class Cause(StrEnum):
    """Why a mailbox failed."""

    UNKNOWN_TENANT = "unknown-tenant"
    UNKNOWN_APP = "unknown-app"
    INVALID_SECRET = "invalid-secret"  # noqa: S105
    EXPIRED_SECRET = "expired-secret"  # noqa: S105
    WRONG_SCOPE = "wrong-scope"
    TOKEN_ENDPOINT_UNREACHABLE = "token-endpoint-unreachable"  # noqa: S105
    TOKEN_REQUEST_FAILED = "token-request-failed"  # noqa: S105
    WRONG_TENANT = "wrong-tenant"
    WRONG_AUDIENCE = "wrong-audience"
    CONSENT_MISSING = "consent-missing"
    TOKEN_EXPIRED = "token-expired"  # noqa: S105
    LOGIN_REFUSED = "login-refused"
    REGISTRATION_MISSING = "exchange-registration-missing"
    REGISTRATION_WRONG_OBJECT = "exchange-registration-wrong-object"
    FULLACCESS_MISSING = "fullaccess-missing"
    POP_DISABLED = "pop-disabled"
    MAILBOX_NOT_FOUND = "mailbox-not-found"
    TLS_FAILURE = "tls-failure"
    CONNECTION_REFUSED = "connection-refused"
    CONNECTION_TIMEOUT = "connection-timeout"
    HOST_NOT_FOUND = "host-not-found"
    PROTOCOL_ERROR = "protocol-error"
    MAIL_NOT_FETCHED = "mail-not-fetched"
