"""AK-ADV-001 (white-box shards) and AK-ADV-003 (corruption × severity tasks) on digits: in-process
vs 2 local workers.

Run: .venv/bin/python benchmarks/compute_shards.py [MAX_SAMPLES]. Worker start-up excluded (each
job runs once per engine before it is timed); both engines compute with the audit's thread policy (1 torch thread per
task on 2 cores). Records must be equal. Prints the load average before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("AUDITKIT_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "checks"))

IMG_SPEC = {"model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}}


def timed(fn: object, executor: object, params: dict) -> tuple[float, dict]:  # type: ignore[type-arg]
    from _robust_fixtures import digits_cnn

    from auditkit.engine import compute
    from auditkit.testing import make_artifacts, run_check

    m, xtr, ytr, xte, yte = digits_cnn()
    arts = make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=m, spec=IMG_SPEC)
    start = time.perf_counter()
    with compute.use(executor):  # type: ignore[arg-type]
        rec = run_check(fn, arts, params=params)  # type: ignore[arg-type]
    return time.perf_counter() - start, {k: v for k, v in rec.items() if k != "duration_s"}


def load() -> str:
    return (
        subprocess.run(["uptime"], capture_output=True, text=True)
        .stdout.strip()
        .split("load average:")[-1]
        .strip()
    )


def main() -> None:
    from auditkit.checks.adversarial import white_box_evasion
    from auditkit.checks.corruption import natural_corruptions

    from auditkit.engine import compute
    from auditkit.inputs.model import set_thread_policy

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    set_thread_policy()
    engines = {"inline": compute.InlineExecutor(), "local2": compute.LocalPool(2)}
    jobs = {
        "AK-ADV-001": (white_box_evasion, {"max_samples": n, "steps": 10, "restarts": 2}),
        "AK-ADV-003": (natural_corruptions, {"max_samples": n}),
    }
    print("load before:", load(), "| cores:", os.cpu_count(), "| task threads:", compute.task_threads())
    for name, (fn, params) in jobs.items():
        for ex in engines.values():
            timed(fn, ex, params)  # warm-up: workers start, import torch and ART, run each code path once
        out = {e: timed(fn, ex, params) for e, ex in engines.items()}
        assert out["local2"][1] == out["inline"][1], f"{name}: engines disagree"
        a, b = out["inline"][0], out["local2"][0]
        print(
            f"{name}, {n} digits: {a:.1f} s in one process, {b:.1f} s on 2 local workers ({a / b:.2f}x); load {load()}"
        )
    print("load after:", load())


if __name__ == "__main__":
    main()
