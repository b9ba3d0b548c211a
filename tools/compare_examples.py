"""Compare the examples' results.json between two trees of bundles (a refactor's proof).

    python tools/compare_examples.py BEFORE_DIR AFTER_DIR [--rel 1e-6]

Each DIR holds examples/*/out/**/results.json (copy them aside before the change, run
`make example EX=...` for every example after). Exit codes, gate, each check's status, findings,
metrics and evidence must agree; timings, timestamps, environment and measured latencies are
ignored; numbers agree within a relative tolerance (the refactor may stop rounding evidence).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

IGNORED_KEYS = {
    "duration_s",
    "started_at",
    "finished_at",
    "environment",
    "argv",
    "spec_path",
    "timings",
    "area",
}
# Measured on the machine, not computed from the inputs: they differ run to run.
MEASURED = ("latency", "peak_memory", "throughput", "seconds", "wall", "time_s", "co2", "emissions", "kwh")


def _measured(key: str) -> bool:
    return any(m in key for m in MEASURED)


def _timed(d: dict[str, Any]) -> bool:
    """A metric measured on the clock (its ``details.timing`` is set)."""
    details = d.get("details")
    return isinstance(details, dict) and bool(details.get("timing"))


def _clock_check(d: dict[str, Any]) -> bool:
    """A check that times inference: its evidence is all measurements; compare status and metrics."""
    return "latency" in (d.get("tags") or []) and "evidence" in d


def diff(a: Any, b: Any, where: str, rel: float, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if _timed(a) or _timed(b):
            return
        for k in sorted(set(a) | set(b)):
            if k in IGNORED_KEYS or _measured(str(k)) or (k == "evidence" and _clock_check(a)):
                continue
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'after' if k in b else 'before'}")
                continue
            diff(a[k], b[k], f"{where}.{k}", rel, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} items before, {len(b)} after")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            label = x.get("id") or x.get("name") if isinstance(x, dict) else None
            diff(x, y, f"{where}[{label or i}]", rel, out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not (math.isclose(a, b, rel_tol=rel, abs_tol=rel) or (a != a and b != b)):
            out.append(f"{where}: {a!r} before, {b!r} after")
    elif isinstance(a, str) and isinstance(b, str) and _numbers_only_differ(a, b, rel):
        return
    elif a != b:
        out.append(f"{where}: {str(a)[:120]!r} before, {str(b)[:120]!r} after")


def _numbers_only_differ(a: str, b: str, rel: float) -> bool:
    """Messages print numbers: equal when only a printed number's last digits moved."""
    import re

    pa, pb = re.split(r"(-?\d+\.?\d*(?:e-?\d+)?)", a), re.split(r"(-?\d+\.?\d*(?:e-?\d+)?)", b)
    if len(pa) != len(pb):
        return False
    for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
        if i % 2 == 0 and x != y:
            return False
        if i % 2 == 1 and not math.isclose(float(x), float(y), rel_tol=max(rel, 1e-3), abs_tol=1e-3):
            return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rel", type=float, default=1e-6)
    a = ap.parse_args()
    files = sorted(p.relative_to(a.before) for p in a.before.rglob("results.json"))
    if not files:
        print(f"no results.json under {a.before}", file=sys.stderr)
        return 2
    problems: list[str] = []
    for rel_path in files:
        new = a.after / rel_path
        if not new.is_file():
            problems.append(f"{rel_path}: missing after")
            continue
        out: list[str] = []
        diff(json.loads((a.before / rel_path).read_text()), json.loads(new.read_text()), "", a.rel, out)
        problems += [f"{rel_path}: {line}" for line in out]
        print(f"{rel_path}: {'same' if not out else f'{len(out)} differences'}")
    for line in problems[:200]:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
