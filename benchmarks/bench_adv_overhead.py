"""Benchmark: the fixed overhead of AK-ADV-001 (defaults, ``attacks: fast``) on a small tabular model.

    .venv/bin/python benchmarks/bench_adv_overhead.py [--repeats 5] [--profile]

Model and rows: the breast-cancer MLP of the test suite (tests/checks/_robust_fixtures.py; 30 raw
features, standardisation inside the model) and its 171-row test split, run through
``auditkit.testing.run_check`` as a user's audit would.

"Fixed overhead" = wall time of the check − the time plain torch takes for the same model work,
timed in the same run (wall and CPU time: on a shared machine CPU time is the steadier one). The
model work is recorded from the check itself: a forward hook on the model logs every call (rows,
autograd on or off, and the norm ``white_box`` is evaluating) during one instrumented run; the
plain-torch replay then does, per logged gradient call, one textbook PGD step on that many rows
(forward, fooled-so-far bookkeeping, summed cross-entropy, ``autograd.grad``, then the L∞ sign step
and clamp or the L2 normalised step, box clamp and projection onto the ball), and per logged no-grad
call a prediction. What is left is everything else: ART wrapper and attack construction, label and
mask handling, per-ε setup, Wilson intervals, evidence tables and plots, the runner's record.
``--profile`` adds a cProfile breakdown of one warm run by those parts.

Printed: the cold first call in a fresh process (ART's import, about 0.5 s, included), the warm
calls (median of ``--repeats``), the logged work, its plain-torch cost, the overhead, and, for
comparison with the issue's figure, one plain-torch PGD-20 over the same rows.

Measured 2026-12-03 12:49–13:02 UTC on the shared 2-core machine (load 2.0–4.8), torch 2.13 CPU,
1 thread, ``--repeats 5``/``7``: 610 gradient calls (305 L2, 79,940 rows in all), 41 predictions;
warm check 0.43–0.56 s CPU, replay 0.31–0.36 s CPU, **warm overhead 0.12–0.19 s CPU**
(0.20–0.38 s wall under load 2.7–4.8, 0.17 s wall at load 2.0); before the PGD steps left ART's
``loss_gradient``: 0.18–0.26 s CPU. Cold first call: overhead 0.49–0.58 s CPU (0.67–0.92 s
before), most of it ART's import. cProfile: white-box run 96% of the check, PGD's loss gradients
60%, ART's FGSM 4%, predictions 2%, attack space 2%, report (Wilson, evidence, plots) 1.7%, ART
attack and classifier construction 0.5%. Figures also in benchmarks/README.md and docs/robustness.md.
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


def timed_check(module: nn.Module, data: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """(wall s, CPU s, record) of one run on fresh artifacts (no cached white-box run)."""
    arts = make_artifacts(data, model=module, spec=SPEC)
    t, c = time.perf_counter(), time.process_time()
    rec = run_check(white_box_evasion, arts)
    return time.perf_counter() - t, time.process_time() - c, rec


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
) -> tuple[float, float]:
    """The logged calls in plain torch, on the first ``rows`` rows: a gradient call is one textbook
    PGD step (forward, fooled-so-far bookkeeping, summed cross-entropy, input gradient, then the L∞
    sign step and clamp, or the L2 normalised step, box clamp and projection onto the ball); a
    forward-only call is a prediction."""
    lo, hi = x.min(0).values, x.max(0).values
    t, c = time.perf_counter(), time.process_time()
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
    return time.perf_counter() - t, time.process_time() - c


def plain_pgd20(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    t = time.perf_counter()
    xa = x.clone()
    for _ in range(20):
        xa.requires_grad_(True)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(module(xa), y), xa)
        xa = xa.detach() + 0.01 * g.sign()
    return time.perf_counter() - t


# (label, file suffix, function name): cumulative times read off a cProfile of one warm run.
PARTS = [
    ("whole check (run_check)", "auditkit/testing.py", "run_check"),
    ("white-box run (all attacks)", "checks/adversarial.py", "white_box"),
    ("PGD (30 runs, 600 steps, incl. their predictions)", "checks/adversarial.py", "run_pgd"),
    ("  loss gradients of the PGD steps", "checks/adversarial.py", "_loss_gradient"),
    ("  ART PGD attack construction", "projected_gradient_descent_pytorch.py", "__init__"),
    ("FGSM through ART (10 runs)", "fast_gradient.py", "generate"),
    ("ART classifier construction", "classification/pytorch.py", "__init__"),
    ("predictions (clean and after each attack)", "checks/adversarial.py", "predict_z"),
    ("attack space (rows, box, mask)", "checks/adversarial.py", "attack_inputs"),
    ("report: Wilson intervals, evidence, plots", "checks/adversarial.py", "_report_white_box"),
    ("  of which Wilson intervals", "checks/adversarial.py", "wilson_row"),
]


def profile_parts(module: nn.Module, data: dict[str, Any]) -> None:
    """Where one warm run's time goes (cProfile inflates small Python calls: read shares, not seconds)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    arts = make_artifacts(data, model=module, spec=SPEC)
    prof.runcall(run_check, white_box_evasion, arts)
    stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(
        v[3] for k, v in stats.items() if k[0].endswith("auditkit/testing.py") and k[2] == "run_check"
    )
    print("  cProfile of one warm run (cumulative time, share of the whole check):")
    for label, path, name in PARTS:
        t = sum(v[3] for k, v in stats.items() if k[0].endswith(path) and k[2] == name)
        print(f"    {label:52s} {t:6.3f} s  {t / total:5.1%}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="also print a cProfile breakdown of one warm run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ["AUDITKIT_THREADS"] = "1"
    module, xtr, ytr, xte, yte = breast_cancer_mlp()
    data = {"train": (xtr, ytr), "test": (xte, yte)}
    art_loaded = "art" in sys.modules
    cold, cold_cpu, rec = timed_check(module, data)
    calls = logged_work(module, data)
    xt, yt = torch.from_numpy(np.clip(xte, xtr.min(0), xtr.max(0))), torch.from_numpy(yte)
    warm, plain, pgd20 = [], [], []
    for _ in range(args.repeats):  # interleaved, so that load changes hit both alike
        warm.append(timed_check(module, data)[:2])
        plain.append(plain_replay(module, xt, yt, calls))
        pgd20.append(plain_pgd20(module, xt, yt))
    (w, wc), (p, pc) = (
        tuple(statistics.median(v) for v in zip(*runs, strict=True)) for runs in (warm, plain)
    )
    n_grad = sum(g for _, g, _ in calls)
    rows = sum(n for n, g, _ in calls if g)
    n_l2 = sum(g and nm == "l2" for _, g, nm in calls)
    print(f"AK-ADV-001 defaults, breast-cancer MLP, {len(yte)} test rows ({rec['status']}; {rec['summary']})")
    print(f"  model work logged: {n_grad} gradient calls ({n_l2} L2; {rows} rows in all), "
          f"{len(calls) - n_grad} forward-only")  # fmt: skip
    print(f"  cold first call (ART import{' already done' if art_loaded else ' included'}): {cold:.3f} s wall, "
          f"{cold_cpu:.3f} s CPU; overhead {cold - p:.3f} s wall, {cold_cpu - pc:.3f} s CPU")  # fmt: skip
    print(f"  warm, median of {args.repeats}: check {w:.3f} s wall ({min(r[0] for r in warm):.3f}-"
          f"{max(r[0] for r in warm):.3f}), {wc:.3f} s CPU; plain-torch replay {p:.3f} s wall, {pc:.3f} s CPU")  # fmt: skip
    print(f"  warm fixed overhead: {w - p:.3f} s wall ({(w - p) / w:.0%} of the check), {wc - pc:.3f} s CPU")
    print(f"  one plain-torch PGD-20 over the {len(yte)} rows: {statistics.median(pgd20):.4f} s "
          f"(check = {w / statistics.median(pgd20):.0f}x; it runs {n_grad / 20:.1f}x that many gradient steps)")  # fmt: skip
    if args.profile:
        profile_parts(module, data)
    print(
        f"  load average {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores, torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
