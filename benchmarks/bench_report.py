"""Benchmark: PDF report rendering time and memory (issue 7 targets).

Targets: the demo's PDF ≤ 5 s; a results.json with every built-in check and large evidence
≤ 15 s and ≤ 1 GB peak memory. Each case renders in a fresh subprocess (peak RSS = ru_maxrss of
that process, WeasyPrint import included); the time is the render only, best of ``--repeat``.

Cases
- demo: examples/breast_cancer results (``make demo`` → examples/breast_cancer/out/results.json)
  if present, else ``--demo PATH``; skipped when neither exists.
- large: every built-in check id (29), each with 4 metrics, 60 findings on failed checks, 3 evidence
  tables at the evidence convention's cap (50 rows shown of ``total_rows`` 100,000), two line plots of
  3 × 2,000 points with CI bands, a bar chart and a 20,000-point scatter (rasterised). The PDF shows
  at most 10 rows per table and 4 tables (a passed check: one table of 5 rows), 12 findings and 4
  plots per check, within report-wide budgets, and counts the rest ("N more ... in results.json");
  the whole results.json is attached.

Measured 2026-11-21 09:17-09:20 UTC on the project's shared 2-core VM (load average 1.0: this
benchmark's own process; the other engineer's jobs idle), WeasyPrint 70, Python 3.11, best of 3,
each repeat = render + the full GC collection it postpones:
- demo (examples/breast_cancer, real run, 31 checks): 3.59-3.62 s over two runs (3.70-4.00 s over
  three runs at 09:13), 26 pages, peak RSS 189 MB: ≈ 2.2 s parse, style and layout, 0.95 s drawing
  and writing, 0.2 s the postponed collection.
- large (29 checks, heavy evidence, 40.5 MB results.json attached): 7.8-8.2 s, 48 pages, 19.5 MB
  PDF, peak RSS 424 MB — within 15 s and 1 GB.
Before/after, interleaved in one session (same protocol, best of 3 per fresh process, 4 processes
each): the render code as of commit 50297fa 5.03 s vs 3.51 s now (09:17, load 1.0); 4.98 vs
3.81 s (09:11); 5.34 vs 3.96 s (09:05, a slow phase of the VM).
This VM's speed drifts by up to 1.8x over minutes (a fixed pure-Python loop took 0.21-0.40 s):
compare only interleaved figures. Under the other engineer's load (load average ~2) the earlier
code took 5.56 s; by the same ratio this code would take ≈ 4 s (not measured under that load).
What made it fast (each measured): fixed table layout, overflow-wrap set once (not on `*`), bundled
fonts already subset and embedded whole, plots as SVG images with decimated series and a numpy
rasteriser, evidence budgets per format (``auditkit.render.common.LIMITS``), level-1 compression for
the multi-megabyte attachment; then (5.0 → 3.6 s): TOC page numbers floated right instead of
``leader('.')`` (WeasyPrint makes a text box per dot: 9,000 boxes, ≈ 0.45 s); plot labels laid out
as whole strings (WeasyPrint 70 makes a Pango layout per letter, ≈ 0.25 s) and start-anchored with
the font's advance widths (an anchored SVG text is a PDF form XObject each, ≈ 0.15 s); no full GC
collections during the render (5-7 of them over WeasyPrint's boxes, ≈ 0.5 s, for one afterwards);
zlib level 6 instead of 9 (≈ 0.1 s, 0.5% larger streams); appendix parameters without a <code> per
name (2.5%). Tried and left out: separate instead of collapsed table borders, no line-height, no
tabular-nums, inline instead of inline-block badges (no measurable gain); RMF evidence grouped by
status (2%, but check ids then break at their hyphens).

Usage: python benchmarks/bench_report.py [--demo PATH] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO_RESULTS = ROOT / "examples" / "breast_cancer" / "out" / "results.json"
TARGETS = {"demo": (5.0, 1024.0), "large": (15.0, 1024.0)}


def large_results(
    rows: int = 50, total_rows: int = 100_000, points: int = 2000, scatter: int = 20000
) -> dict[str, Any]:
    """A results document with every built-in check id and large evidence."""
    sys.path.insert(0, str(ROOT))
    from auditkit.engine.registry import build_registry

    registry = build_registry(autoload=False)
    checks = []
    for i, (cid, info) in enumerate(sorted(registry.checks.items())):
        status = ("passed", "failed", "passed", "error", "not_applicable")[i % 5]
        metrics = [
            {"name": f"metric_{k}", "value": 0.5 + 0.01 * k, "ci": [0.45, 0.55 + 0.01 * k], "n": 1000,
             "threshold": 0.5, "direction": "higher", "passed": status != "failed", "bound": "value",
             "unit": None, "description": None, "details": {}}
            for k in range(4)
        ]  # fmt: skip
        findings = [
            {"message": f"finding {k} of {cid}: feature f{k} exceeds the limit", "severity": ("high", "medium", "info")[k % 3],
             "key": f"f{k}", "metric": None, "evidence": {}}
            for k in range(60)
        ] if status == "failed" else []  # fmt: skip
        table = {"columns": ["feature", "value", "ci_low", "ci_high", "n", "note"], "total_rows": total_rows,
                 "rows": [[f"feature_{r}", r * 0.001, r * 0.0009, r * 0.0011, 1000, "x" * 40] for r in range(rows)]}  # fmt: skip
        xs = list(range(points))
        plots = [
            {"type": "line", "title": f"curve {k}", "x_label": "step", "y_label": "loss",
             "series": [{"name": f"seed {s}", "x": xs, "y": [1 / (1 + x * 0.01) + 0.01 * s for x in xs],
                         "lo": [0.9 / (1 + x * 0.01) for x in xs], "hi": [1.1 / (1 + x * 0.01) for x in xs]}
                        for s in range(3)]}
            for k in range(2)
        ] + [
            {"type": "bar", "title": "classes", "x_label": "class", "y_label": "rows", "categories": list("abcdefghij"),
             "series": [{"name": "train", "values": list(range(10))}, {"name": "test", "values": list(range(10, 0, -1))}]},
            {"type": "scatter", "title": "embedding", "x_label": "pc1", "y_label": "pc2",
             "series": [{"name": "test", "x": [math.sin(j) * j for j in range(scatter)],
                         "y": [math.cos(j) * j for j in range(scatter)]}]},
        ]  # fmt: skip
        checks.append({
            "id": cid, "title": info.title, "status": status, "version": info.version, "severity": info.severity,
            "default_severity": info.severity, "params": dict(info.defaults()), "metrics": metrics if status != "not_applicable" else [],
            "findings": findings, "nist_ai_rmf": list(info.nist_ai_rmf), "tags": list(info.tags), "requires": [],
            "duration_s": 1.0, "skip_reason": "needs a model" if status == "not_applicable" else None,
            "error": "Traceback (most recent call last):\n  ...\nRuntimeError: boom" if status == "error" else None,
            "evidence": {"per feature": table, "per class": table, "per slice": table, "plots": plots} if status != "not_applicable" else {},
            "summary": f"{cid} summary", "description": info.description, "artifacts": [], "seed": i, "source": "builtin",
        })  # fmt: skip
    return {
        "schema_version": "1", "tool": {"name": "auditkit", "version": "0.1.0"},
        "run": {"id": "bench0000large000", "started_at": "2026-11-21T00:00:00+00:00",
                "finished_at": "2026-11-21T00:10:00+00:00", "duration_s": 600.0, "seed": 0, "argv": None,
                "spec_path": "audit.yaml", "spec_sha256": "0" * 64, "formats": ["json", "pdf"]},
        "subject": {"name": "large evidence benchmark", "description": None, "datasets": {}},
        "environment": {"python": "3.11", "libraries": {}}, "plugins": [], "spec": {"name": "bench"},
        "checks": checks,
        "gate": {"decision": "fail", "exit_code": 3, "reason": "errors", "fail_on": "high", "blocking": [], "waived": [],
                 "regressions": [], "errored": [], "findings_by_severity": {}, "baseline": None, "recommendation": "no-go"},
        "rmf": {"attestations": {}},
    }  # fmt: skip


CHILD = r"""
import gc, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from auditkit.render.pdf import render_bytes
path, repeat = Path(sys.argv[1]), int(sys.argv[2])
raw = path.read_bytes()
doc = json.loads(raw)
atts = {"results.json": raw}
man = path.parent / "manifest.json"
if man.is_file():
    atts["manifest.json"] = man.read_bytes()
times, cpus = [], []
for _ in range(repeat):
    t, c = time.perf_counter(), time.process_time()
    pdf = render_bytes(doc, attachments=atts)
    gc.collect()  # the full collection render_bytes postpones is part of its cost
    times.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
from pypdf import PdfReader
import io
pages = len(PdfReader(io.BytesIO(pdf)).pages)
print(json.dumps({"seconds": min(times), "cpu_seconds": min(cpus), "pages": pages, "bytes": len(pdf), "input_mb": len(raw) / 1e6,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(path: Path, repeat: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(repeat), str(ROOT)],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", type=Path, default=DEMO_RESULTS)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        cases: dict[str, Path] = {}
        if args.demo.is_file():
            cases["demo"] = args.demo
        else:
            print(f"demo: {args.demo} not found (run `make demo`); skipped")
        large = Path(tmp) / "large" / "results.json"
        large.parent.mkdir()
        large.write_text(json.dumps(large_results()), encoding="utf-8")
        cases["large"] = large
        for name, path in cases.items():
            r = measure(path, args.repeat)
            max_s, max_mb = TARGETS[name]
            passed = r["seconds"] <= max_s and r["peak_rss_mb"] <= max_mb
            ok &= passed
            print(f"{name:6s} {r['seconds']:6.2f} s wall, {r['cpu_seconds']:5.2f} s CPU (target ≤ {max_s:.0f} s)  peak RSS {r['peak_rss_mb']:7.1f} MB "
                  f"(≤ {max_mb:.0f})  {r['pages']} pages, {r['bytes'] / 1e6:.2f} MB PDF, results.json "
                  f"{r['input_mb']:.1f} MB  {'OK' if passed else 'MISSED'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
