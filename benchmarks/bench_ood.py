"""Benchmark: AK-OOD-001 feature-space detectors at scale (target ≤ 10 s on 2 cores).

Mahalanobis (fit on 50,000 train embeddings, score 10,000 test points) and kNN (exact search,
k=10, same sizes; blocked torch matmul + topk, the check's default, against faiss IndexFlatIP), on
10-class Gaussian-cluster ReLU-like embeddings of width 128 (float32; a typical penultimate layer)
and 512. Also timed: the metric core with 200 bootstrap resamples
on 10,000 ID + 10,000 OOD scores, and the whole check end to end on a tabular MLP (50,000 train,
10,000 test rows, 3 synthetic OOD sets, 5 detectors; torch at 1 thread).

Run: ``.venv/bin/python benchmarks/bench_ood.py [--dim 128] [--repeat 3]``

Measured 2026-11-21 06:30–06:50 UTC on the 2-core machine SHARED with other helpers' jobs (load
average 3–7 on 2 cores, so wall times are pessimistic; CPU time is the steadier figure), numpy 2.4,
torch 2.13 CPU, faiss-cpu, best of 3:
  dim 128 (the target configuration):
    Mahalanobis fit 0.10–0.54 s + score 0.01–0.08 s (CPU 0.22 s)
    kNN torch, 1 thread: search 3.1 s at load 3.1 (CPU 3.1 s); 5.9 s at load 7.0 (CPU 3.0 s)
    → both detectors 3.3 s (load 3) to 6.5 s (load 7): target ≤ 10 s met
    kNN torch, 2 threads: 4.6–8.0 s (no gain on a loaded 2-core box)
    kNN faiss IndexFlatIP, 2 threads: 10.7–21 s (CPU 8.7 s): slower here, hence torch by default
  dim 512: Mahalanobis 1.9 s CPU; kNN torch 8.4–16 s wall (CPU 6.8 s) → both 12–19 s under load
    5–6: over the 10 s target at this width on the loaded machine (about 9 s of CPU work)
  metric core, 200 bootstrap resamples on 10k + 10k scores: 0.4–0.8 s per detector and set
  AK-OOD-001 end to end (tabular MLP with a 128-wide penultimate layer, 50k train / 10k test,
  3 synthetic sets, 5 detectors, load ≈ 4–5): 46 s with n_boot 200, 24 s with n_boot 50.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _best(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Best wall time of ``repeat`` runs; the CPU time of that run is recorded in CPU_TIMES."""
    best, out, cpu = float("inf"), None, 0.0
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t
        if wall < best:
            best, cpu = wall, time.process_time() - c
    CPU_TIMES.append(cpu)
    return best, out


CPU_TIMES: list[float] = []


def embeddings(
    n: int, dim: int, k: int, rng: np.random.Generator, shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    centres = np.random.default_rng(99).normal(size=(k, dim)) * 2
    y = rng.integers(0, k, n)
    x = centres[y] + rng.normal(size=(n, dim)) + shift
    return np.maximum(x, 0).astype(np.float32), y  # ReLU-like features


def bench_detectors(dim: int, repeat: int) -> None:
    from auditkit.checks._ood_detectors import KNN, Mahalanobis

    rng = np.random.default_rng(0)
    train, ytr = embeddings(50_000, dim, 10, rng)
    test, _ = embeddings(10_000, dim, 10, rng)
    t_mfit, maha = _best(lambda: Mahalanobis.fit(train, ytr), repeat)
    t_mscore, _ = _best(lambda: maha.score(test), repeat)  # type: ignore[attr-defined]
    print(
        f"dim {dim}: Mahalanobis fit {t_mfit:.2f} s + score {t_mscore:.2f} s (CPU {sum(CPU_TIMES[-2:]):.2f} s)"
    )
    import faiss
    import torch

    policy = torch.get_num_threads()
    for backend, threads in (("torch", 1), ("torch", 2), ("faiss", 2)):
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
        t_kfit, knn = _best(lambda backend=backend: KNN.fit(train, 10, backend), repeat)
        t_kscore, _ = _best(lambda knn=knn: knn.score(test), repeat)  # type: ignore[attr-defined]
        total = t_mfit + t_mscore + t_kfit + t_kscore
        print(
            f"  kNN ({backend}, {threads} thread(s)) fit {t_kfit:.2f} s + search {t_kscore:.2f} s; "
            f"both detectors {total:.2f} s "
            f"(target ≤ 10 s: {'met' if total <= 10 else 'MISSED'}); kNN CPU {sum(CPU_TIMES[-2:]):.2f} s, "
            f"load {os.getloadavg()[0]:.1f}"
        )
    torch.set_num_threads(policy)


def bench_metrics(repeat: int) -> None:
    from auditkit.checks._ood_metrics import detection_metrics_ci

    rng = np.random.default_rng(1)
    s_in, s_out = rng.normal(size=10_000), rng.normal(1.0, 1.0, size=10_000)
    t, _ = _best(lambda: detection_metrics_ci(s_in, s_out, n_boot=200, rng=np.random.default_rng(0)), repeat)
    print(f"metric core, 200 bootstrap resamples on 10k + 10k scores: {t:.2f} s")


def bench_end_to_end(n_boot: int) -> None:
    import torch
    from auditkit.checks.ood import ood_detection

    from auditkit.testing import make_artifacts, run_check

    rng = np.random.default_rng(2)
    d = 20
    w = rng.normal(size=d)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, d)).astype(np.float32)
        return x, (x @ w > 0).astype(np.int64)

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(d, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 2),
    )
    arts = make_artifacts(
        {"train": split(50_000), "test": split(10_000)}, model=net, spec={"model": {"builtin": "mlp"}}
    )
    t = time.perf_counter()
    rec = run_check(ood_detection, arts, params={"n_boot": n_boot, "max_samples": 10_000})
    print(
        f"AK-OOD-001 end to end (50k/10k tabular MLP, n_boot {n_boot}): {time.perf_counter() - t:.1f} s, {rec['status']}"
    )


def main() -> None:
    from auditkit.inputs.model import set_thread_policy

    print(
        f"torch threads: {set_thread_policy()} (AUDITKIT_THREADS or 1 on ≤ 2 cores); load {os.getloadavg()}"
    )
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, nargs="*", default=[128, 512])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-e2e", action="store_true")
    args = ap.parse_args()
    for dim in args.dim:
        bench_detectors(dim, args.repeat)
    bench_metrics(args.repeat)
    if not args.no_e2e:
        for n_boot in (200, 50):
            bench_end_to_end(n_boot)


if __name__ == "__main__":
    main()
