"""A local stand-in for the Microsoft 365 services pop3-oauth talks to, for the tests and ``scripts/sandbox``.

``tls`` (a certificate authority and HTTPS server on 127.0.0.1), ``entra`` (the token endpoint),
``graph`` (Microsoft Graph), ``exchange`` (Exchange Online's InvokeCommand) and ``dovecot`` (a real POP3
server). Nothing here is imported by the Pulumi program, its providers or ``popctl``.
"""
