"""AK-ADV-002 on digits: HopSkipJump (one compute task per sample) in-process vs 2 local workers vs Ray.

Run: .venv/bin/python benchmarks/compute_hopskipjump.py [N_BLACKBOX]. The white-box part of the
check (PGD, cheap here) stays serial; HopSkipJump's time is the check's time minus a run with
n_blackbox=1. Worker and Ray start-up excluded (warm-up runs). Records must be equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("AUDITKIT_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "checks"))

IMG_SPEC = {"model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}}


def timed(executor: object, n: int) -> tuple[float, dict]:  # type: ignore[type-arg]
    from _robust_fixtures import digits_cnn
    from auditkit.checks.adversarial import black_box_and_masking

    from auditkit.engine import compute
    from auditkit.testing import make_artifacts, run_check

    m, xtr, ytr, xte, yte = digits_cnn()
    arts = make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=m, spec=IMG_SPEC)
    params = {"max_samples": 200, "steps": 5, "restarts": 1, "n_blackbox": n, "unbounded_steps": 20}
    start = time.perf_counter()
    with compute.use(executor):  # type: ignore[arg-type]
        rec = run_check(black_box_and_masking, arts, params=params)
    return time.perf_counter() - start, {k: v for k, v in rec.items() if k != "duration_s"}


def main() -> None:
    import ray

    from auditkit.engine import compute

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    os.environ["HOME"] = tempfile.mkdtemp()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    engines = {"inline": compute.InlineExecutor(), "local2": compute.LocalPool(2),
               "ray2": compute.make_executor(compute.ComputeConfig(kind="ray"))}  # fmt: skip
    for ex in engines.values():
        timed(ex, 8)  # warm-up: every worker starts and imports torch and ART (seconds each)
    base, _ = timed(engines["inline"], 1)
    out = {name: timed(ex, n) for name, ex in engines.items()}
    assert out["local2"][1] == out["inline"][1] and out["ray2"][1] == out["inline"][1], "engines disagree"
    hsj = {name: t - base for name, (t, _) in out.items()}
    print(f"AK-ADV-002, {n} digits: check {out['inline'][0]:.1f} s / {out['local2'][0]:.1f} s / {out['ray2'][0]:.1f} s "
          f"(inline / 2 local / Ray 2 CPUs); HopSkipJump part {hsj['inline']:.1f} / {hsj['local2']:.1f} / "
          f"{hsj['ray2']:.1f} s: 2 workers {hsj['inline'] / hsj['local2']:.2f}x, Ray {hsj['ray2'] / hsj['local2']:.2f}x "
          "the local pool")  # fmt: skip
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    ray.shutdown()


if __name__ == "__main__":
    main()
