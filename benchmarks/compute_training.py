"""Training 3 optimizers x 3 seeds of the breast-cancer MLP: in-process vs 2 local workers vs Ray (2 CPUs).

Run: .venv/bin/python benchmarks/compute_training.py [EPOCHS]. Worker and Ray start-up are measured
apart (a warm-up map) and excluded from the ratios; every engine trains the same 9 runs, checked equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("AUDITKIT_THREADS", "1")


def artifacts(epochs: int) -> object:
    from sklearn.datasets import load_breast_cancer

    from auditkit.testing import make_artifacts

    df = load_breast_cancer(as_frame=True).frame
    df.columns = [c.replace(" ", "_") for c in df.columns]
    spec = {
        "model": {"builtin": "mlp", "device": "cpu"},
        "training": {"epochs": epochs, "batch_size": 32, "seeds": [0, 1, 2], "optimizer": {"name": "AdamW", "lr": 0.01},
                     "compare": [{"name": "SGD", "lr": 0.1}, {"name": "Adam", "lr": 0.01}, {"name": "RMSprop", "lr": 0.001}]},
    }  # fmt: skip
    return make_artifacts({"train": df.iloc[:450], "test": df.iloc[450:]}, label="target", spec=spec)


def timed(executor: object, epochs: int) -> tuple[float, list[list[float]]]:
    from auditkit.engine import compute

    arts = artifacts(epochs)
    start = time.perf_counter()
    with compute.use(executor):  # type: ignore[arg-type]
        runs = [r for g in arts.compare_runs().values() for r in g]
    return time.perf_counter() - start, [r.step_loss for r in runs]


def main() -> None:
    from auditkit.engine import _probes, compute

    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    pool = compute.LocalPool(2)
    t0 = time.perf_counter()
    pool.map(_probes.noisy_sum, [1, 2], seeds=[0, 1])
    print(f"local pool start-up (2 spawned workers): {time.perf_counter() - t0:.2f} s (excluded)")
    import ray

    os.environ["HOME"] = tempfile.mkdtemp()
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_ex = compute.make_executor(compute.ComputeConfig(kind="ray"))
    ray_ex.map(_probes.noisy_sum, [1, 2], seeds=[0, 1])
    print(f"ray start-up (ray.init num_cpus=2 + first tasks): {time.perf_counter() - t0:.2f} s (excluded)")
    timed(pool, 1)  # warm: torch imported in both workers
    timed(ray_ex, 1)
    timed(compute.InlineExecutor(), 1)  # warm: the same one-time imports in this process
    one, ref = timed(compute.InlineExecutor(), epochs)
    two, a = timed(pool, epochs)
    rt, b = timed(ray_ex, epochs)
    assert a == ref and b == ref, "engines disagree"
    print(f"9 runs x {epochs} epochs: 1 worker {one:.2f} s; 2 local workers {two:.2f} s ({one / two:.2f}x); "
          f"ray 2 CPUs {rt:.2f} s ({rt / two:.2f}x the local pool)")  # fmt: skip
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    ray.shutdown()


if __name__ == "__main__":
    main()
