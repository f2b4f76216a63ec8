"""A local stand-in for the Microsoft 365 services pop3-oauth talks to, for ``scripts/sandbox`` and the tests.

The fakes: ``entra`` (the token service), ``graph`` (Microsoft Graph), ``exchange`` (Exchange Online's
InvokeCommand), ``dovecot`` (a real POP3 server) over ``tls`` (a certificate authority and HTTPS server on
127.0.0.1). The sandbox around them: ``emulator`` (the three fakes on one port, and the POP3 introspection
route), ``pop_access`` (Office 365's POP3 rule), ``state`` and ``clock`` (what survives a restart, the movable
clock), ``tenants`` and ``admin`` (a seeded tenant, changes by hand), ``engine`` (the Pulumi engine and the
environment of a command against the fakes), ``workspace``, ``control``, ``daemon``, ``walk`` and ``__main__``
(``python -m sandbox``). Nothing here is imported by the Pulumi program, its providers or ``popctl``.
"""
