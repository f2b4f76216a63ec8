"""popctl: the operator command line of pop3-oauth (verify, handoff, login, logout, fleet, adopt)."""
