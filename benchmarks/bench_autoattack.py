"""Benchmark: AK-ADV-001's AutoAttack-style ensemble (``attacks: standard``) against PGD-20 and
against torchattacks' AutoAttack (the reference ensemble: APGD-CE, APGD-T, FAB-T, Square) on the
digits CNN of the test suite, and the fixed overhead of AK-ADV-001 on a small tabular model.

    .venv/bin/python benchmarks/bench_autoattack.py [--n 200] [--queries 5000]

1. Digits CNN (tests/checks/_robust_fixtures.py, inputs in [0, 1], so auditkit's normalised space
   is the input space), the first ``--n`` test images, L∞ ε ∈ {4, 8, 16, 32}/255:
   PGD-20 (auditkit fast path, 1 restart, cross-entropy), auditkit ``standard`` with AutoAttack's
   budgets (APGD 100 steps, 9 targets, Square ``--queries``) and torchattacks 3.5.1
   ``AutoAttack(version="standard")``. Robust accuracy with Wilson intervals and wall times.
2. AK-ADV-001 with its defaults (``attacks: fast``) on the breast-cancer MLP test split (171 rows):
   wall time of the check, against one plain-torch PGD-20 over the same rows.
   (That compares the whole default budget, ≈ 610 gradient steps, with 20; the check's fixed
   overhead against a plain-torch replay of the same work is measured by bench_adv_overhead.py.)

torchattacks is NOT an auditkit dependency (``pip install torchattacks``): without it part 1 prints
auditkit's figures only.

Measured 2026-12-03 12:13–12:33 UTC on the shared 2-core machine (load 2.6–8.4), torch 2.13 CPU,
1 thread, ``--n 200 --queries 5000``; robust accuracy at ε = 0, 4, 8, 16, 32 /255:
  PGD-20                   0.985 0.980 0.940 0.775 0.250   (1.5–5.2 s)
  auditkit standard        0.985 0.980 0.940 0.775 0.220   (385–394 s)
  torchattacks AutoAttack  0.985 0.980 0.940 0.775 0.225   (172 s)
  AK-ADV-001 defaults, breast-cancer MLP (171 rows): 0.72–0.87 s; one plain PGD-20 0.012–0.021 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "checks")]


def wilson(k: int, n: int) -> tuple[float, float]:
    from auditkit.toolkit.stats import wilson as w

    return w(k, n)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--no-reference", action="store_true", help="skip torchattacks' AutoAttack")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from _robust_fixtures import breast_cancer_mlp, digits_cnn
    from auditkit.checks.adversarial import white_box_evasion

    from auditkit.testing import make_artifacts, run_check

    module, xtr, ytr, xte, yte = digits_cnn()
    x, y = xte[: args.n], yte[: args.n]
    spec = {"model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}}
    arts = make_artifacts({"train": (xtr, ytr), "test": (x, y)}, model=module, spec=spec)
    grid = [0.0, 4 / 255, 8 / 255, 16 / 255, 32 / 255]
    base = {"norms": ["inf"], "epsilons": grid, "gate_epsilon": 8 / 255, "max_samples": args.n}
    runs = {
        "PGD-20": {**base, "steps": 20, "restarts": 1, "losses": ["ce"]},
        "auditkit standard": {**base, "attacks": "standard", "square_queries": args.queries},
    }
    table: dict[str, list[float]] = {}
    for name, params in runs.items():
        t = time.perf_counter()
        rec = run_check(white_box_evasion, arts, params=params)
        wall = time.perf_counter() - t
        rows = rec["evidence"]["robust accuracy by attack and epsilon"]["rows"]
        worst = [r for r in rows if r[1] == "worst case"]
        table[name] = [r[4] for r in worst]
        print(f"{name}: {wall:.1f} s")
        for r in rows:
            print(f"   {r[1]:11s} eps {r[2]:>7s}  robust acc {r[4]:.3f}  [{r[5]:.3f}, {r[6]:.3f}]  n={r[7]}")
    try:
        import torchattacks
    except ImportError:
        print("torchattacks not installed: reference run skipped")
        torchattacks = None
    if args.no_reference:
        torchattacks = None
    if torchattacks is not None:
        module.eval()
        ref = []
        t = time.perf_counter()
        for e in grid:
            if e == 0:
                with torch.no_grad():
                    ok = module(torch.from_numpy(x)).argmax(1).numpy() == y
            else:
                atk = torchattacks.AutoAttack(
                    module, norm="Linf", eps=e, version="standard", n_classes=10, seed=0
                )
                adv = atk(torch.from_numpy(x), torch.from_numpy(y))
                with torch.no_grad():
                    ok = module(adv).argmax(1).numpy() == y
            k = int(ok.sum())
            lo, hi = wilson(k, len(y))
            ref.append(k / len(y))
            print(
                f"   torchattacks AutoAttack eps {e * 255:5.1f}/255  robust acc {k / len(y):.3f}  [{lo:.3f}, {hi:.3f}]"
            )
        print(f"torchattacks AutoAttack: {time.perf_counter() - t:.1f} s")
        table["torchattacks AutoAttack"] = ref
    print("\nsummary (robust accuracy, worst case per method):")
    for name, vals in table.items():
        print(f"  {name:24s} " + " ".join(f"{v:.3f}" for v in vals))

    # 2. fixed overhead on a small tabular model
    m, xtr2, ytr2, xte2, yte2 = breast_cancer_mlp()
    arts2 = make_artifacts({"train": (xtr2, ytr2), "test": (xte2, yte2)}, model=m,
                           spec={"model": {"builtin": "mlp", "input": {"kind": "tabular"}}})  # fmt: skip
    run_check(white_box_evasion, arts2)  # warm imports (ART, torch)
    times = []
    for _ in range(3):
        arts2 = make_artifacts({"train": (xtr2, ytr2), "test": (xte2, yte2)}, model=m,
                               spec={"model": {"builtin": "mlp", "input": {"kind": "tabular"}}})  # fmt: skip
        t = time.perf_counter()
        run_check(white_box_evasion, arts2)
        times.append(time.perf_counter() - t)
    xt, yt = torch.from_numpy(xte2), torch.from_numpy(yte2)
    t = time.perf_counter()
    xa = xt.clone()
    for _ in range(20):
        xa.requires_grad_(True)
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(m(xa), yt), xa)
        xa = xa.detach() + 0.01 * g.sign()
    plain = time.perf_counter() - t
    print(
        f"\nAK-ADV-001 defaults on the breast-cancer MLP ({len(yte2)} rows): best {min(times):.2f} s "
        f"(runs {', '.join(f'{v:.2f}' for v in times)}); one plain-torch PGD-20: {plain:.3f} s"
    )


if __name__ == "__main__":
    main()
