"""Latency of the light commands: `auditkit --help` and `auditkit checks` (targets 0.5 s / 1.5 s).

User-facing start-up time, measured as the best of five fresh interpreter runs each. A benchmark,
not a test: on a loaded machine the figure moves, and a test must not fail for that (the
deterministic part — no torch, ART, Great Expectations, WeasyPrint or pandas imported — is a test
in tests/engine/test_registry.py).

Run: .venv/bin/python benchmarks/bench_cli.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TARGETS = {("--help",): 0.5, ("checks",): 1.5, ("checks", "--format", "json"): 1.5}


def best_of(args: tuple[str, ...], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "auditkit", *args], capture_output=True, timeout=120, check=True
        )
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f}")
    over = 0
    for args, target in TARGETS.items():
        t = best_of(args)
        ok = t <= target
        over += not ok
        print(f"auditkit {' '.join(args):<22} {t:6.3f} s  (target {target} s) {'ok' if ok else 'OVER'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
