"""Start-up cost of popctl: each ``--help`` as a ratio to a bare ``python -c pass``.

Run from the project directory: ``.venv/bin/python -m bench.bench_startup [--rounds N]``. Every figure is
the median wall time of N runs of a fresh interpreter (the same one), so the ratio shows what popctl adds
on top of starting Python; what it must not import is checked by tests/unit/test_popctl_imports.py.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from popctl.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


def median_seconds(command: list[str], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True, timeout=60)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="runs per command (default 15)")
    rounds = parser.parse_args().rounds

    floor = median_seconds([sys.executable, "-c", "pass"], rounds)
    print(f"python -c pass                 {floor * 1000:7.1f} ms   1.00x  (median of {rounds})")
    for arguments in (["--help"], *([name, "--help"] for name in COMMANDS)):
        seconds = median_seconds([sys.executable, "-m", "popctl", *arguments], rounds)
        label = "popctl " + " ".join(arguments)
        print(f"{label:<30} {seconds * 1000:7.1f} ms  {seconds / floor:5.2f}x")


if __name__ == "__main__":
    main()
