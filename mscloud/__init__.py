"""Microsoft cloud access for pop3-oauth, without Pulumi. This package imports nothing: import a module.

- ``clouds``: the Microsoft clouds and their endpoints;
- ``errors``: the one root of the errors pop3-oauth raises on purpose;
- ``causes``: why app-only POP3 access to a mailbox fails (the vocabulary of ``popctl verify``);
- ``retry``: the one retry policy (tenacity, with an injectable clock and sleep);
- ``http``: the HTTP core of the Microsoft clients (session, timeouts, tokens, request ids, retries, paging);
- ``ids``: what an Entra id (a GUID) looks like;
- ``entra``: token requests to Entra ID (msal), the one AADSTS table, the claims of an access token;
- ``auth``: credentials from the environment, the process-wide token source, the delegated sign-in;
- ``exchange``: the Exchange Online admin API client (``InvokeCommand``);
- ``graph``: the read-only Microsoft Graph client;
- ``permissions``: the principal and FullAccess rules (who holds which right on a mailbox).
"""
