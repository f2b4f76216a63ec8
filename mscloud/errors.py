"""The one root of the errors pop3-oauth raises on purpose (mscloud, components and popctl)."""

from __future__ import annotations


class Pop3OAuthError(Exception):
    """A failure pop3-oauth foresaw and names; ``str()`` says what happened and what to do.

    The message never carries a secret, a token or a credential, so it is always safe to show or log.
    Anything else that escapes is a bug.
    """
