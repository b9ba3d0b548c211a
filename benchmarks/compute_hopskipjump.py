"""AK-ADV-002 on digits: HopSkipJump (compute tasks of HSJ_SHARD samples) in-process vs 2 local workers vs Ray.

Run: .venv/bin/python benchmarks/compute_hopskipjump.py [N_BLACKBOX] [ROUNDS]. HopSkipJump's time is
the check's time minus a run with n_blackbox=1 on the same engine (the white-box part, cheap here,
runs as shards too). Worker and Ray start-up excluded (warm-up runs). Every engine computes with the same
thread policy as an audit (``set_thread_policy``: 1 torch thread per task on 2 cores), in this
process too. Rounds interleave the engines (inline, 2 local, Ray, inline, ...) so that a change of
load on a shared machine shows up as a spread between rounds, not as a speed-up; the load average
is printed before each round. Records must be equal.
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


def load() -> str:
    return (
        subprocess.run(["uptime"], capture_output=True, text=True)
        .stdout.strip()
        .split("load average:")[-1]
        .strip()
    )


def main() -> None:
    import ray

    from auditkit.engine import compute
    from auditkit.inputs.model import set_thread_policy

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    set_thread_policy()  # as run_audit does: the in-process engine computes with the workers' thread count
    print("load before:", load(), "| cores:", os.cpu_count(), "| task threads:", compute.task_threads())
    os.environ["HOME"] = tempfile.mkdtemp()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    engines = {"inline": compute.InlineExecutor(), "local2": compute.LocalPool(2),
               "ray2": compute.make_executor(compute.ComputeConfig(kind="ray"))}  # fmt: skip
    for ex in engines.values():
        timed(ex, 12)  # warm-up: every worker starts and imports torch and ART (seconds each)
    best: dict[str, float] = {}
    for r in range(rounds):
        before = load()
        base = {name: timed(ex, 1)[0] for name, ex in engines.items()}  # each engine's own white-box part
        out = {name: timed(ex, n) for name, ex in engines.items()}
        assert out["local2"][1] == out["inline"][1] and out["ray2"][1] == out["inline"][1], "engines disagree"
        hsj = {name: t - base[name] for name, (t, _) in out.items()}
        for k, v in hsj.items():
            best[k] = min(best.get(k, float("inf")), v)
        print(f"round {r + 1} (load {before} -> {load()}): AK-ADV-002, {n} digits: check {out['inline'][0]:.1f} s / "
              f"{out['local2'][0]:.1f} s / {out['ray2'][0]:.1f} s (inline / 2 local / Ray 2 CPUs); HopSkipJump part "
              f"{hsj['inline']:.1f} / {hsj['local2']:.1f} / {hsj['ray2']:.1f} s: 2 workers "
              f"{hsj['inline'] / hsj['local2']:.2f}x, Ray {hsj['ray2'] / hsj['local2']:.2f}x the local pool")  # fmt: skip
    if rounds > 1:
        print(f"best of {rounds}: HopSkipJump part {best['inline']:.1f} / {best['local2']:.1f} / {best['ray2']:.1f} s: "
              f"2 workers {best['inline'] / best['local2']:.2f}x, Ray {best['ray2'] / best['local2']:.2f}x the local pool")  # fmt: skip
    print("load after:", load())
    ray.shutdown()


if __name__ == "__main__":
    main()
