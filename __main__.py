"""pop3-oauth: Office 365 POP3 OAuth2 app-only access for one customer tenant per stack."""

from components.program import run

run()
