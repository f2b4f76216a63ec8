"""Benchmark of ``popctl verify --max-age``: how much longer the POP3 session gets with N messages.

Run from the project directory: ``.venv/bin/python -m bench.bench_max_age [--counts 10,100,500]
[--rounds 5]``.

For each N, a local Dovecot holds N dated messages; the session (TLS, XOAUTH2, STAT, QUIT) is timed without
dating (plain ``verify``) and with ``TOP n 0`` for every message (``--max-age``), median of the rounds. The
session's length is what matters: while it lasts, the maildrop may be locked against the ERP's own fetch.
Prints figures only. Needs Dovecot 2.3 (``/usr/sbin/dovecot``); exits 1 with the reason when it is missing.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from popctl.pop3 import read_mailbox_status
from popctl.verify import DEFAULT_DATE_LIMIT
from sandbox import dovecot as dovecot_fake
from sandbox.dovecot import DovecotServer, dated_message
from sandbox.entra import EXCHANGE_RESOURCE, EntraFake
from sandbox.tls import make_certificates

TENANT = "6d1c0f3a-5b2e-4c7d-9a8b-1e2f3a4b5c6d"
MAILBOX = "edi@contoso.test"


def session_seconds(
    server: DovecotServer, token: str, context: ssl.SSLContext, date_limit: int, rounds: int
) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        read_mailbox_status("127.0.0.1", server.port, MAILBOX, token, context=context, date_limit=date_limit)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10,100,500")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    reason = dovecot_fake.unavailable_reason()
    if reason is not None:
        print(f"bench_max_age: {reason}", file=sys.stderr)
        return 1
    certs = make_certificates(Path(tempfile.mkdtemp()))
    context = ssl.create_default_context(cafile=str(certs.ca_bundle))
    entra = EntraFake()
    app = entra.add_app(TENANT, roles={EXCHANGE_RESOURCE: ["POP.AccessAsApp"]}, extra_claims={"upn": MAILBOX})
    token = entra.issue_token(app, EXCHANGE_RESOURCE)
    now = datetime.now(UTC)
    print(f"{'messages':>8}  {'STAT only':>10}  {'TOP n 0 each':>12}  {'extra per message':>17}")
    for count in (int(part) for part in options.counts.split(",")):
        messages = [dated_message(index, now - timedelta(minutes=index)) for index in range(count)]
        server = DovecotServer(
            cert_pem=certs.server_cert,
            key_pem=certs.server_key,
            issuer=entra.issuer_template.format(tenant=TENANT),
            messages=messages,
        )
        for azp in ("default", app.client_id):
            server.add_key(entra.kid, entra.public_key_pem, azp=azp)
        with server:
            plain = session_seconds(server, token, context, 0, options.rounds)
            dated = session_seconds(server, token, context, min(count, DEFAULT_DATE_LIMIT), options.rounds)
        extra = (dated - plain) / max(count, 1) * 1000
        print(f"{count:>8}  {plain * 1000:>8.1f} ms  {dated * 1000:>10.1f} ms  {extra:>14.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
