"""Fleet orchestration overhead: wall time of ``run_fleet`` against the ideal, with simulated previews.

Each simulated tenant takes ``--preview-ms`` in total (half in the refresh preview, half in the preview;
reading outputs is instant), so the ideal wall time is ``ceil(stacks / workers) * preview``. The real case
(e.g. 200 stacks x 2 s with 8 workers) is scaled down by ``--scale`` so the benchmark finishes in seconds;
the overhead ratio is scale-free as long as the simulated time dominates thread scheduling.

Run: ``.venv/bin/python -m bench.bench_fleet [--stacks 200] [--preview-ms 2000] [--workers 8] [--scale 100]``
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from popctl.fleet import run_fleet
from popctl.previews import PreviewResult

NOW = datetime(2025, 3, 1, tzinfo=UTC)


class SimulatedRunner:
    """Sleeps instead of running pulumi; every tenant is in sync with one secret far from expiry."""

    def __init__(self, seconds_per_tenant: float) -> None:
        self._half = seconds_per_tenant / 2

    def refresh_preview(self, stack: str) -> PreviewResult:
        time.sleep(self._half)
        return PreviewResult()

    def preview(self, stack: str) -> PreviewResult:
        time.sleep(self._half)
        return PreviewResult()

    def outputs(self, stack: str) -> Mapping[str, Any]:
        return {"tenantId": stack, "secrets": [{"keyId": stack, "expiresAt": "2026-01-01T00:00:00Z"}]}


def measure(stacks: int, seconds_per_tenant: float, workers: int) -> tuple[float, float]:
    """(measured wall time, ideal wall time) in seconds for one simulated fleet run."""
    names = [f"tenant-{index:04d}" for index in range(stacks)]
    started = time.perf_counter()
    reports = run_fleet(names, SimulatedRunner(seconds_per_tenant), workers=workers, now=NOW)
    elapsed = time.perf_counter() - started
    if len(reports) != stacks or any(report.status != "in-sync" for report in reports):
        raise RuntimeError("the simulated fleet did not come back in sync")
    return elapsed, math.ceil(stacks / workers) * seconds_per_tenant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stacks", type=int, default=200)
    parser.add_argument("--preview-ms", type=float, default=2000.0, help="real per-tenant preview time")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--scale", type=float, default=100.0, help="divide the preview time by this")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    simulated = args.preview_ms / 1000 / args.scale
    runs = [measure(args.stacks, simulated, args.workers) for _ in range(args.repeat)]
    elapsed, ideal = min(runs)
    ratio = elapsed / ideal
    print(
        f"fleet: {args.stacks} stacks x {simulated * 1000:.0f} ms simulated, {args.workers} workers, "
        f"best of {args.repeat}"
    )
    print(f"  measured {elapsed:.3f} s, ideal {ideal:.3f} s, overhead ratio {ratio:.3f}")
    real_ideal = math.ceil(args.stacks / args.workers) * args.preview_ms / 1000
    real_overhead = elapsed - ideal
    print(
        f"  scaled to {args.stacks} x {args.preview_ms / 1000:g} s: ideal {real_ideal:.0f} s; the fixed "
        f"orchestration cost measured here ({real_overhead:.3f} s) adds "
        f"{real_overhead / real_ideal * 100:.3f} % to it"
    )


if __name__ == "__main__":
    main()
