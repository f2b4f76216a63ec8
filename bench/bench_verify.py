"""Benchmark of ``popctl verify`` against a local Dovecot and the Entra fake.

Run from the project directory: ``.venv/bin/python -m bench.bench_verify [--rounds N] [--flips 1,5]``.

1. Cost of one successful verify (fresh msal app, OpenID discovery, token, claim check, TLS, XOAUTH2,
   STAT, QUIT) as a ratio to a bare stdlib ``poplib`` XOAUTH2 login with a token fetched beforehand.
2. Detection delay of ``--wait``: the POP role is granted ``flip`` seconds after verify starts; the
   delay is the time from the grant to verify reporting success, with the production backoff.

Needs Dovecot 2.3 (``/usr/sbin/dovecot``); exits 1 with the reason when it is missing.
"""

from __future__ import annotations

import argparse
import io
import os
import poplib
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from mscloud.clouds import get_cloud
from mscloud.entra import AppTokenRequest, fresh_app_token
from popctl.cli import main as popctl_main
from popctl.pop3 import xoauth2_response
from popctl.target import SECRET_ENV, Target
from popctl.verify import DEFAULT_BACKOFF, Verifier
from sandbox import dovecot as dovecot_fake
from sandbox.dovecot import DovecotServer
from sandbox.entra import EXCHANGE_RESOURCE, EntraFake, FakeApp
from sandbox.tls import HttpsServer, TestCertificates, make_certificates

TENANT = "6d1c0f3a-5b2e-4c7d-9a8b-1e2f3a4b5c6d"
MAILBOX = "edi@contoso.test"
SECRET = "bench-secret-value"
POP_ROLE = "POP.AccessAsApp"


def bare_poplib_login(port: int, token: str, context: ssl.SSLContext) -> tuple[int, int]:
    """The floor: poplib over TLS, two-step XOAUTH2 by hand, STAT, QUIT."""
    session = poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=10)
    try:
        session.sock.sendall(b"AUTH XOAUTH2\r\n")
        if not session.file.readline().startswith(b"+"):
            raise RuntimeError("no continuation")
        session.sock.sendall(xoauth2_response(MAILBOX, token) + b"\r\n")
        if not session.file.readline().startswith(b"+OK"):
            raise RuntimeError("login refused")
        status = session.stat()
        session.quit()
        return status
    finally:
        session.close()


def timed(action: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def describe(samples: list[float]) -> str:
    median, fastest = statistics.median(samples) * 1000, min(samples) * 1000
    return f"median {median:7.1f} ms  (min {fastest:.1f}, n={len(samples)})"


def measure_cost(target: Target, app: FakeApp, certs: TestCertificates, port: int, rounds: int) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca_bundle))
    request = AppTokenRequest(TENANT, app.client_id, target.token_cloud, target.scope, certs.ca_bundle)
    token = fresh_app_token(request, SECRET)
    verifier = Verifier(target, SECRET)
    argv = [
        "verify", "--tenant-id", TENANT, "--client-id", app.client_id, "--mailbox", MAILBOX,
        "--authority-host", target.authority_host, "--pop3-host", "127.0.0.1", "--pop3-port", str(port),
        "--ca-file", str(certs.ca_bundle), "--json",
    ]  # fmt: skip

    def cli() -> None:
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            if popctl_main(argv) != 0:
                raise RuntimeError("verify failed")

    def check() -> None:
        if not verifier.verify(MAILBOX).ok:
            raise RuntimeError("verify failed")

    for warm_up in (lambda: bare_poplib_login(port, token, context), check, cli):
        warm_up()
    bare = timed(lambda: bare_poplib_login(port, token, context), rounds)
    full = timed(check, rounds)
    whole = timed(cli, rounds)
    print("1. cost of one successful verify")
    print(f"   bare poplib XOAUTH2 login (token pre-fetched)  {describe(bare)}")
    print(f"   Verifier.verify (fresh token + login)          {describe(full)}")
    print(f"   popctl verify, in-process CLI                  {describe(whole)}")
    floor = statistics.median(bare)
    ratio, cli_ratio = statistics.median(full) / floor, statistics.median(whole) / floor
    print(f"   ratio verify / bare login: {ratio:.1f}x (CLI {cli_ratio:.1f}x)")


def grant_pop(app: FakeApp, granted_at: list[float]) -> None:
    app.roles[EXCHANGE_RESOURCE] = [POP_ROLE]
    granted_at.append(time.monotonic())


def measure_wait(target: Target, app: FakeApp, flips: list[float]) -> None:
    backoff = DEFAULT_BACKOFF
    print(
        f"2. --wait detection delay (backoff initial {backoff.initial:g} s, x{backoff.factor:g}, "
        f"max {backoff.maximum:g} s)"
    )
    for flip in flips:
        app.roles[EXCHANGE_RESOURCE] = []
        granted_at: list[float] = []
        timer = threading.Timer(flip, grant_pop, args=(app, granted_at))
        timer.start()
        result = Verifier(target, SECRET).verify(MAILBOX, wait=flip + 120)
        done = time.monotonic()
        timer.join()
        if not result.ok:
            raise RuntimeError(f"verify --wait did not succeed: {result.cause}")
        print(
            f"   access after {flip:4.1f} s: success reported {done - granted_at[0]:5.2f} s later "
            f"(attempt {result.attempts})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench.bench_verify", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--flips", default="1,5", help="comma-separated seconds until access is granted")
    args = parser.parse_args(argv)
    reason = dovecot_fake.unavailable_reason()
    if reason is not None:
        print(f"bench_verify: cannot run: {reason}", file=sys.stderr)
        return 1
    os.environ[SECRET_ENV] = SECRET
    certs = make_certificates(Path(tempfile.mkdtemp(prefix="bench-certs-")))
    entra = EntraFake()
    with HttpsServer(entra.handle, certs) as server:
        entra.base_url = server.base_url
        app = entra.add_app(
            TENANT,
            secrets={SECRET: None},
            roles={EXCHANGE_RESOURCE: [POP_ROLE]},
            extra_claims={"upn": MAILBOX},
        )
        dovecot = DovecotServer(
            cert_pem=certs.server_cert,
            key_pem=certs.server_key,
            issuer=entra.issuer_template.format(tenant=TENANT),
        )
        for azp in ("default", app.client_id):
            dovecot.add_key(entra.kid, entra.public_key_pem, azp=azp)
        with dovecot:
            cloud = get_cloud("public")
            target = Target(
                tenant_id=TENANT,
                client_id=app.client_id,
                mailboxes=(MAILBOX,),
                pop3_host="127.0.0.1",
                pop3_port=dovecot.port,
                authority_host=server.base_url,
                scope=cloud.exchange_scope,
                cloud=cloud,
                ca_file=certs.ca_bundle,
            )
            measure_cost(target, app, certs, dovecot.port, args.rounds)
            measure_wait(target, app, [float(value) for value in args.flips.split(",") if value.strip()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
