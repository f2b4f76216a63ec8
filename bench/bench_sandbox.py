"""Wall time of ``scripts/sandbox`` per step: set-up (virtualenv, Dovecot, engine), then each walk step.

Run from the project directory: ``.venv/bin/python -m bench.bench_sandbox [--rounds N] [--keep]``. Each
round runs ``scripts/sandbox`` in a throwaway ``POP3_OAUTH_SANDBOX_DIR`` (never the user's ``.sandbox/``),
reads the per-step seconds from the walk's summary, takes the rest of the wall time as set-up, and ends
with ``scripts/sandbox --down``. Figures are medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sandbox.walk import STEPS
from sandbox.workspace import SANDBOX_DIR_ENV

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_LINE = re.compile(r"^(?:ok  |FAIL|--  ) (?P<step>\w+)\s+(?P<seconds>[\d.]+) s")


def one_round(keep: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as scratch:
        env = {**os.environ, SANDBOX_DIR_ENV: str(Path(scratch) / "sandbox")}
        started = time.perf_counter()
        run = subprocess.run(
            [str(ROOT / "scripts" / "sandbox"), *(["--keep"] if keep else [])],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        wall = time.perf_counter() - started
        subprocess.run(
            [str(ROOT / "scripts" / "sandbox"), "--down"], cwd=ROOT, env=env, timeout=120, check=False
        )
    if run.returncode != 0:
        raise SystemExit(
            f"scripts/sandbox failed ({run.returncode}):\n{run.stdout[-4000:]}{run.stderr[-2000:]}"
        )
    steps = {
        match["step"]: float(match["seconds"])
        for match in map(SUMMARY_LINE.match, run.stdout.splitlines())
        if match is not None
    }
    return {"set-up": wall - sum(steps.values()), **steps, "total": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs of scripts/sandbox (default 1)")
    parser.add_argument("--keep", action="store_true", help="time scripts/sandbox --keep instead")
    options = parser.parse_args()
    rounds = [one_round(options.keep) for _ in range(options.rounds)]
    print(f"scripts/sandbox{' --keep' if options.keep else ''}: wall time per step (median of {len(rounds)})")
    for name in ("set-up", *STEPS, "total"):
        samples = [round_[name] for round_ in rounds if name in round_]
        if samples:
            print(f"  {name:<9} {statistics.median(samples):7.1f} s")


if __name__ == "__main__":
    main()
