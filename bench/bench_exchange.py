"""Cost of the Exchange providers against the local fakes: HTTP requests and overhead per operation.

Run: ``.venv/bin/python -m bench.bench_exchange``. Prints, per provider operation, the token and
InvokeCommand requests it made, and its wall time as a ratio to one bare ``requests`` POST of the same
cmdlet to the same fake; then the cost of a drift check (refresh) of a tenant with ten mailboxes read
on several threads. The floor is one token per process and one InvokeCommand per read.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from components.exchange.mailbox_access import MailboxAccessProvider
from components.exchange.providers import ServicePrincipalRegistrationProvider
from mscloud.auth import shared_token_source
from mscloud.clouds import CLOUDS
from sandbox.entra import EXCHANGE_RESOURCE, EntraFake
from sandbox.exchange import APP_ANCHOR, MANAGE_AS_APP, ExchangeFake
from sandbox.tls import HttpsServer, make_certificates

CLIENT_ID = str(uuid.uuid4())
SECRET = "bench-" + uuid.uuid4().hex
ROUNDS = 50
MAILBOXES = [f"user{index}@contoso.com" for index in range(10)]


def timed(action: Callable[[], object], rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def new_tenant(entra: EntraFake, exchange: ExchangeFake) -> dict[str, str]:
    tenant_id = str(uuid.uuid4())
    entra.add_app(tenant_id, CLIENT_ID, secrets={SECRET: None}, roles={EXCHANGE_RESOURCE: [MANAGE_AS_APP]})
    exchange.tenant(tenant_id)
    return {
        "tenant_id": tenant_id,
        "app_id": str(uuid.uuid4()),
        "object_id": str(uuid.uuid4()),
        "cloud": "public",
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        certificates = make_certificates(Path(directory))
        entra = EntraFake()
        exchange = ExchangeFake(entra)
        with (
            HttpsServer(entra.handle, certificates) as login,
            HttpsServer(exchange.handle, certificates) as admin,
        ):
            entra.base_url, exchange.base_url = login.base_url, admin.base_url
            os.environ |= {
                "POP3_OAUTH_AUTHORITY_HOST": login.base_url,
                "POP3_OAUTH_EXCHANGE_URL": admin.base_url,
                "REQUESTS_CA_BUNDLE": str(certificates.ca_bundle),
                "POP3_OAUTH_TOKEN_CACHE": str(Path(directory) / "cache.json"),
                "ARM_CLIENT_ID": CLIENT_ID,
                "ARM_CLIENT_SECRET": SECRET,
            }
            exchange.faults.replication_lag_reads = 0
            report_operations(entra, exchange)
            report_drift_check(entra, exchange)


def report_operations(entra: EntraFake, exchange: ExchangeFake) -> None:
    ids = new_tenant(entra, exchange)
    tenant_id = ids["tenant_id"]
    exchange.add_mailbox(tenant_id, MAILBOXES[0])
    registration, permission = ServicePrincipalRegistrationProvider(), MailboxAccessProvider()
    sp = {**ids, "display_name": "POP3APP"}
    grant = {**ids, "mailboxes": MAILBOXES[:1], "user": ids["object_id"], "access_rights": ["FullAccess"]}
    sp_outputs: dict[str, Any] = {}
    grant_outputs: dict[str, Any] = {}

    def create_both() -> None:
        sp_outputs.update(registration.create(sp).outs or {})
        grant_outputs.update(permission.create(grant).outs or {})

    operations: list[tuple[str, Callable[[], object]]] = [
        ("first call (token + create registration + access, 1 mailbox)", create_both),
        ("read registration", lambda: registration.read(ids["object_id"], sp_outputs)),
        ("read mailbox access (1 mailbox)", lambda: permission.read("id", grant_outputs)),
        ("diff registration", lambda: registration.diff("id", sp_outputs, sp)),
        ("update registration", lambda: registration.update(ids["object_id"], sp_outputs, sp)),
    ]
    print("requests per operation (token / InvokeCommand):")
    for name, operation in operations:
        exchange.reset_counts()
        operation()
        counts = exchange.counts()
        print(f"  {name:<55} {counts['token']:>2} / {counts['InvokeCommand']:>2}")

    token = shared_token_source().get_token(tenant_id, CLOUDS["public"].with_overrides())
    session = requests.Session()
    body = {
        "CmdletInput": {"CmdletName": "Get-ServicePrincipal", "Parameters": {"Identity": ids["object_id"]}}
    }
    headers = {"Authorization": f"Bearer {token}", "X-AnchorMailbox": f"{APP_ANCHOR}{tenant_id}"}
    url = f"{exchange.base_url}/adminapi/beta/{tenant_id}/InvokeCommand"
    bare = timed(lambda: session.post(url, json=body, headers=headers, timeout=10).raise_for_status())
    print(f"\nprovider overhead, median of {ROUNDS} (bare requests POST = {bare * 1000:.2f} ms):")
    for name, operation in operations[1:3]:
        elapsed = timed(operation)
        print(f"  {name:<55} {elapsed * 1000:6.2f} ms  ratio {elapsed / bare:4.2f}")


def report_drift_check(entra: EntraFake, exchange: ExchangeFake) -> None:
    ids = new_tenant(entra, exchange)
    tenant_id = ids["tenant_id"]
    exchange.add_service_principal(tenant_id, ids["app_id"], ids["object_id"], "POP3APP")
    for mailbox in MAILBOXES:
        exchange.add_mailbox(tenant_id, mailbox)
    access = {**ids, "mailboxes": list(MAILBOXES), "user": ids["object_id"], "access_rights": ["FullAccess"]}
    access_outputs = MailboxAccessProvider().create(access).outs or {}
    sp_outputs = {**ids, "display_name": "POP3APP"}
    reads: list[Callable[[], object]] = [
        lambda: ServicePrincipalRegistrationProvider().read(ids["object_id"], sp_outputs),
        lambda: MailboxAccessProvider().read("id", access_outputs),
    ]
    exchange.reset_counts()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda read: read(), reads))
    elapsed = time.perf_counter() - start
    counts = exchange.counts()
    budget = 1 + 1 + 2 * len(MAILBOXES)
    print(
        f"\ndrift check, {len(MAILBOXES)} mailboxes + registration: {counts['token']} token request(s), "
        f"{counts['InvokeCommand']} InvokeCommand calls (budget 1 / {budget + 1}: registration, "
        f"Get-ServicePrincipal, Get-Mailbox + Get-MailboxPermission per mailbox), {elapsed * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
