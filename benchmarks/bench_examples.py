"""Time every example audit end to end (prepare + `auditkit run`) and check its promised exit code.

Target (issue 8): all examples together under 10 minutes on 2 cores; the flagship under 60 s.
Run: ``.venv/bin/python benchmarks/bench_examples.py [EXAMPLE ...]``.

Measured 2026-11-21 07:27 UTC, 2-core VM, quiet (load 0.6–1.8), torch 1 thread:
    breast_cancer 20.1 s (exit 0), loan_approval 21.7 s (1), digits 71.8 s (0, black-box attack on),
    panel_wages naive 4.8 s (1) / correct 4.8 s (0), release_gate v1 4.9 s (0) / v2 5.0 s (1);
    all examples 141 s (target ≤ 10 min; flagship ≤ 60 s).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
AUDITKIT = str(Path(sys.executable).parent / "auditkit")

# (name, prepare script, [(spec, output, extra args, expected exit code)])
EXAMPLES = [
    ("breast_cancer", "breast_cancer/prepare.py", [("breast_cancer/audit.yaml", "breast_cancer/out", [], 0)]),
    ("loan_approval", "loan_approval/prepare.py", [("loan_approval/audit.yaml", "loan_approval/out", [], 1)]),
    ("digits", "digits/prepare.py", [("digits/audit.yaml", "digits/out", [], 0)]),
    (
        "panel_wages",
        "panel_wages/prepare.py",
        [
            ("panel_wages/naive.yaml", "panel_wages/out/naive", [], 1),
            ("panel_wages/correct.yaml", "panel_wages/out/correct", [], 0),
        ],
    ),
    (
        "release_gate",
        "release_gate/prepare.py",
        [
            ("release_gate/v1.yaml", "release_gate/out/v1", [], 0),
            (
                "release_gate/v2.yaml",
                "release_gate/out/v2",
                ["--baseline", str(EX / "release_gate/out/v1/results.json")],
                1,
            ),
        ],
    ),
]


def main() -> int:
    total_start = time.perf_counter()
    failures = 0
    print(f"{'example':<28}{'seconds':>9}  exit (expected)")
    for name, prepare, runs in EXAMPLES:
        if (only := sys.argv[1:]) and name not in only:
            continue
        subprocess.run([sys.executable, str(EX / prepare)], check=True, capture_output=True)
        for spec, out, extra, expected in runs:
            shutil.rmtree(EX / out, ignore_errors=True)
            start = time.perf_counter()
            proc = subprocess.run([AUDITKIT, "run", str(EX / spec), "-o", str(EX / out), "-q", *extra],
                                  capture_output=True, text=True)  # fmt: skip
            took = time.perf_counter() - start
            ok = proc.returncode == expected
            failures += not ok
            label = f"{name}/{Path(spec).stem}"
            print(f"{label:<28}{took:9.1f}  {proc.returncode} ({expected}){'' if ok else '  <-- MISMATCH'}")
            if not ok:
                print(proc.stderr[-2000:])
    print(f"{'all examples':<28}{time.perf_counter() - total_start:9.1f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
