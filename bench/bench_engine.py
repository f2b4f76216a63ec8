"""What a drift check costs under the real engine: ``pulumi preview --refresh`` of a deployed tenant.

Run: ``.venv/bin/python -m bench.bench_engine`` (needs the engine: ``scripts/pulumi-engine``). For a tenant
with 2 and with 10 mailboxes, deployed against the local fakes, it prints the wall time of ``pulumi preview
--refresh`` and splits it into

- engine start: from launching the CLI to the first request any provider makes;
- provider calls: from the first to the last request the fakes served (refresh reads and diffs);
- program run: the program's run in the language server (the language host stand-in records it);
- the rest: engine work after the last request (plan, display, state);

and, measured apart (each process started as the engine starts it, until it prints its port), the
start-up of the dynamic provider process and of the azuread provider. Then the Graph and Exchange
requests of one drift check (``pulumi refresh --preview-only``) against the floor: 1 token and 1 + M
InvokeCommand calls on the Exchange side for M mailboxes.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from sandbox.engine import locate_engine
from tests.e2e.harness import Microsoft, Project, Request

ROUNDS = 3
MAILBOX_COUNTS = (2, 10)


def _plugin_startup(command: list[str], project: Project) -> float:
    """Seconds until a provider plugin, started as the engine starts it, prints its port."""
    samples = []
    for _ in range(ROUNDS):
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=project.directory,
            env=project.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert process.stdout is not None
            port = process.stdout.readline().strip()
            samples.append(time.monotonic() - started)
            assert port.isdigit(), f"{command[0]} printed {port!r}"
        finally:
            process.kill()
            process.wait(timeout=30)
    return statistics.median(samples)


def _exchange_counts(requests: list[Request]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for request in requests:
        if request.service == "entra" and request.path.endswith("/oauth2/v2.0/token"):
            counts["token" if "outlook.office365.com" in request.scope else "graph token"] += 1
        elif request.service == "exchange":
            counts["InvokeCommand"] += 1
        elif request.service == "graph":
            counts["graph"] += 1
    return counts


def _timed_preview(project: Project, timing: Path) -> dict[str, float]:
    microsoft = project.microsoft
    first_request = len(microsoft.requests)
    timing.unlink(missing_ok=True)
    launched = time.monotonic()
    project.preview("--refresh", env={"POP3_OAUTH_E2E_TIMING": str(timing)})
    ended = time.monotonic()
    served = microsoft.requests_since(first_request)
    runs = [json.loads(line) for line in timing.read_text().splitlines()] if timing.exists() else []
    program = sum(run["program_end"] - run["program_start"] for run in runs)
    first = min((r.started for r in served), default=ended)
    last = max((r.ended for r in served), default=ended)
    return {
        "wall": ended - launched,
        "engine start": first - launched,
        "provider calls": last - first,
        "program run": program,
        "rest": ended - last,
    }


def main() -> None:
    engine = locate_engine()
    if isinstance(engine, str):
        raise SystemExit(f"bench_engine: no engine: {engine}")
    print(f"engine: {engine.describe()}")
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        microsoft = Microsoft.start(root / "microsoft")
        try:
            for count in MAILBOX_COUNTS:
                mailboxes = [f"box{index}@bench.test" for index in range(count)]
                tenant = microsoft.new_tenant(mailboxes)
                project = Project(root / f"tenant-{count}", engine, microsoft, tenant)
                project.init_stack(f"bench-{count}")
                project.up()

                samples = [_timed_preview(project, root / "timing.jsonl") for _ in range(ROUNDS)]
                median = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
                print(f"\n{count} mailboxes: pulumi preview --refresh, median of {ROUNDS}")
                for key, seconds in median.items():
                    share = seconds / median["wall"] if median["wall"] else 0.0
                    print(f"  {key:<16} {seconds:7.2f} s  {share:6.1%} of wall")
                dynamic = _plugin_startup(["pulumi-resource-pulumi-python", "127.0.0.1:1"], project)
                azuread = _plugin_startup(["pulumi-resource-azuread", "127.0.0.1:1"], project)
                print(f"  start-up, dynamic provider process:  {dynamic:5.2f} s (measured apart)")
                print(f"  start-up, azuread provider:          {azuread:5.2f} s (measured apart)")

                first_request = len(microsoft.requests)
                project.pulumi("refresh", "--preview-only", "--stack", project.stack)
                counts = _exchange_counts(microsoft.requests_since(first_request))
                floor = 1 + count
                print(
                    f"  drift check requests: {counts['token']} token, "
                    f"{counts['InvokeCommand']} InvokeCommand "
                    f"(floor 1 and {floor}: ratio {counts['InvokeCommand'] / floor:.2f}), "
                    f"{counts['graph']} Graph with {counts['graph token']} token"
                )
        finally:
            microsoft.stop()


if __name__ == "__main__":
    main()
