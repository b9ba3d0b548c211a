"""Benchmark: the fixed overhead of AK-ADV-001 (defaults, ``attacks: fast``) on a small tabular model.

    .venv/bin/python benchmarks/bench_adv_overhead.py [--repeats 5]

Model and rows: the breast-cancer MLP of the test suite (tests/checks/_robust_fixtures.py; 30 raw
features, standardisation inside the model) and its 171-row test split, run through
``auditkit.testing.run_check`` as a user's audit would.

"Fixed overhead" = wall time of the check − the time plain torch takes for the same model work,
timed in the same run. The model work is recorded from the check itself: a forward hook on the
model logs every call (rows, and whether autograd is on) during one instrumented run; the plain-torch
replay then does, per logged gradient call, forward + summed cross-entropy + ``autograd.grad`` on
that many rows + a sign step and clamp, and per logged no-grad call a forward pass. What is left
is everything else: ART wrapper and attack construction, label and mask handling, per-ε setup,
Wilson intervals, evidence tables and plots, the runner's record.

Printed: the cold first call in a fresh process (ART's import, about 0.5 s, included), the warm
calls (median and range of ``--repeats``), the logged work, its plain-torch cost, the overhead,
and, for comparison with the issue's figure, one plain-torch PGD-20 over the same rows.
Figures are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "checks")]

from _robust_fixtures import breast_cancer_mlp  # noqa: E402
from auditkit.checks.adversarial import white_box_evasion  # noqa: E402

from auditkit.testing import make_artifacts, run_check  # noqa: E402

SPEC = {"model": {"builtin": "mlp", "input": {"kind": "tabular"}}}


def timed_check(module: nn.Module, data: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    arts = make_artifacts(data, model=module, spec=SPEC)  # fresh artifacts: no cached white-box run
    t = time.perf_counter()
    rec = run_check(white_box_evasion, arts)
    return time.perf_counter() - t, rec


def _norm_in_progress() -> str:
    """The norm ``white_box`` is evaluating (its loop variable), read off the call stack."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_name != "white_box":
        f = f.f_back  # type: ignore[assignment]
    return str(f.f_locals.get("name", "inf")) if f is not None else "inf"


def logged_work(module: nn.Module, data: dict[str, Any]) -> list[tuple[int, bool, str]]:
    """(rows, autograd on, norm) of every forward call the check makes."""
    calls: list[tuple[int, bool, str]] = []

    def hook(_m: nn.Module, a: tuple[torch.Tensor, ...]) -> None:
        calls.append((len(a[0]), torch.is_grad_enabled(), _norm_in_progress()))

    handle = module.register_forward_pre_hook(hook)
    try:
        timed_check(module, data)
    finally:
        handle.remove()
    return calls


def plain_replay(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, calls: list[tuple[int, bool, str]]
) -> float:
    """The logged calls in plain torch, on the first ``rows`` rows: a gradient call is one textbook
    PGD step (forward, fooled-so-far bookkeeping, summed cross-entropy, input gradient, then the L∞
    sign step and clamp, or the L2 normalised step, box clamp and projection onto the ball); a
    forward-only call is a prediction."""
    lo, hi = x.min(0).values, x.max(0).values
    t = time.perf_counter()
    for n, grad, norm in calls:
        x0, y0 = x[:n], y[:n]
        if grad:
            broken = torch.zeros(n, dtype=torch.bool)
            xa = x0.clone().requires_grad_(True)
            out = module(xa)
            broken |= out.argmax(1) != y0
            (g,) = torch.autograd.grad(nn.functional.cross_entropy(out, y0, reduction="sum"), xa)
            with torch.no_grad():
                if norm == "inf":
                    torch.add(xa, g.sign(), alpha=0.01).clamp_(lo, hi)
                else:
                    xn = (xa + 0.01 * g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp_(lo, hi)
                    d = xn - x0
                    x0 + d * (0.1 / d.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
        else:
            with torch.no_grad():
                module(x0).argmax(1)
    return time.perf_counter() - t


def plain_pgd20(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    t = time.perf_counter()
    xa = x.clone()
    for _ in range(20):
        xa.requires_grad_(True)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(module(xa), y), xa)
        xa = xa.detach() + 0.01 * g.sign()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ["AUDITKIT_THREADS"] = "1"
    module, xtr, ytr, xte, yte = breast_cancer_mlp()
    data = {"train": (xtr, ytr), "test": (xte, yte)}
    art_loaded = "art" in sys.modules
    cold, rec = timed_check(module, data)
    calls = logged_work(module, data)
    xt, yt = torch.from_numpy(np.clip(xte, xtr.min(0), xtr.max(0))), torch.from_numpy(yte)
    warm, plain, pgd20 = [], [], []
    for _ in range(args.repeats):  # interleaved, so that load changes hit both alike
        warm.append(timed_check(module, data)[0])
        plain.append(plain_replay(module, xt, yt, calls))
        pgd20.append(plain_pgd20(module, xt, yt))
    w, p = statistics.median(warm), statistics.median(plain)
    n_grad = sum(g for _, g, _ in calls)
    rows = sum(n for n, g, _ in calls if g)
    n_l2 = sum(g and nm == "l2" for _, g, nm in calls)
    print(f"AK-ADV-001 defaults, breast-cancer MLP, {len(yte)} test rows ({rec['status']}; {rec['summary']})")
    print(
        f"  model work logged: {n_grad} gradient calls ({n_l2} L2; {rows} rows in all), {len(calls) - n_grad} forward-only"
    )
    print(f"  cold first call (ART import{' already done' if art_loaded else ' included'}): {cold:.3f} s, "
          f"overhead {cold - p:.3f} s")  # fmt: skip
    print(f"  warm: total {w:.3f} s (runs {min(warm):.3f}-{max(warm):.3f}); plain-torch replay of the same work "
          f"{p:.3f} s ({min(plain):.3f}-{max(plain):.3f}); overhead {w - p:.3f} s ({(w - p) / w:.0%} of the total)")  # fmt: skip
    print(f"  one plain-torch PGD-20 over the {len(yte)} rows: {statistics.median(pgd20):.4f} s "
          f"(check = {w / statistics.median(pgd20):.0f}x; it runs {n_grad / 20:.1f}x that many gradient steps)")  # fmt: skip
    print(
        f"  load average {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores, torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
