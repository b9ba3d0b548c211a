"""Shared helpers of the deployment checks (AK-DEPLOY-*): which candidate is the audited model, timing and memory.

Private to the built-in checks. The measuring helpers moved here from ``auditkit.inputs.deployment``
(only checks use them)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from auditkit.toolkit import Candidate


def is_audited(cand: Candidate) -> bool:
    """Whether ``cand`` is the audited model itself (``ctx.deployment_candidates()`` lists it first)."""
    return cand.where == "model"


def time_calls(
    forward: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, *, warmup: int, repeats: int
) -> np.ndarray:
    """Seconds per call of ``forward(batch)`` over ``repeats`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        forward(batch)
    out = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        t0 = time.perf_counter_ns()
        forward(batch)
        out[i] = (time.perf_counter_ns() - t0) / 1e9
    return out


def percentile_cis(
    seconds: np.ndarray, qs: tuple[float, ...], *, n_boot: int, rng: np.random.Generator
) -> dict[float, tuple[float, tuple[float, float]]]:
    """Each percentile of the timings with a 95% percentile-bootstrap interval over the timed calls."""
    n = len(seconds)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = seconds[idx]
    out = {}
    for q in qs:
        reps = np.quantile(boot, q / 100, axis=1)
        out[q] = (
            float(np.quantile(seconds, q / 100)),
            (float(np.quantile(reps, 0.025)), float(np.quantile(reps, 0.975))),
        )
    return out


def peak_memory(
    forward: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, device: str, calls: int = 3
) -> tuple[int | None, str]:
    """Bytes of memory that running ``forward(batch)`` adds at its peak, and how it was measured.

    CUDA: the allocator's peak above its level before. CPU (Linux): the rise of the process's peak
    resident set (VmHWM, reset through /proc/self/clear_refs) above the resident set before — a
    lower bound when the allocator reuses pages freed earlier. Elsewhere: None.
    """
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(calls):
            forward(batch)
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - before), "CUDA allocator peak above the level before"
    if not _hwm_resettable():
        return None, "not measured (needs Linux /proc/self/clear_refs)"
    rss = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    for _ in range(calls):
        forward(batch)
    return max(
        0, (_status_kb("VmHWM") - rss) * 1024
    ), "rise of the process's peak resident set (VmHWM) while running"


def _hwm_resettable() -> bool:
    return os.path.exists("/proc/self/clear_refs") and os.access("/proc/self/clear_refs", os.W_OK)


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0
