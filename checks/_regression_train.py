"""Regression implementations of AK-TRAIN-002 (seed variance of test RMSE) and AK-TRAIN-003
(optimizer comparison on test RMSE, paired over test rows). training.py dispatches here."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import Finding, Metric, NotApplicable, Outcome, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext


def _point_column(ctx: RunContext, width: int) -> int:
    """Which output column is the point prediction for the declared ``model.output``."""
    output = ctx.model_output
    if output == "point" or output == "gaussian":
        return 0
    levels = list(output.quantiles)
    return levels.index(0.5) if 0.5 in levels else width // 2


def test_errors(ctx: RunContext, runs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(runs × labelled test rows) prediction errors (NaN for a diverged run) and the labels."""
    import torch

    test = ctx.dataset("test")
    if test.y is None:
        raise NotApplicable("the test split has no labels")
    keep = np.isfinite(test.y)
    x, y = test.x[keep], test.y[keep]
    if len(y) == 0:
        raise NotApplicable("the test split has no labelled rows")
    out = np.full((len(runs), len(y)), np.nan)
    for i, run in enumerate(runs):
        module = run.module
        if module is None or not run.finite:
            continue  # a diverged run has no usable model: its errors stay NaN
        dev = next(module.parameters()).device
        preds = []
        with torch.inference_mode():
            for s in range(0, len(y), 4096):
                raw = module(torch.as_tensor(x[s : s + 4096], device=dev)).float().cpu().numpy()
                raw = raw.reshape(len(raw), -1)
                if ctx.model_output not in ("point", "gaussian"):
                    raw = np.sort(raw, axis=1)  # quantile columns, sorted as the audit's predictions are
                preds.append(raw[:, _point_column(ctx, raw.shape[1])])
        out[i] = np.concatenate(preds) - y
    return out, y


def _rmse_rows(e: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.mean(e * e, axis=1))


def seed_variance_regression(
    ctx: RunContext, *, max_seed_rmse_cv: float, max_weight_diff: float, rerun: bool, min_rows: int
) -> Outcome:
    """Sd of test RMSE across seeds (and relative to its mean), and same-seed reproducibility."""
    from auditkit.toolkit import mean_ci, state_distance

    y = ctx.dataset("test").y
    require_rows(int(np.isfinite(y).sum()) if y is not None else 0, min_rows, what="test RMSE across runs",
                 split="labelled test")  # fmt: skip
    runs = ctx.training_runs()
    if not runs:
        raise NotApplicable("no training runs")
    errors, _ = test_errors(ctx, runs)
    rmses = _rmse_rows(errors)
    metrics, findings, rows = [], [], []
    for run, r in zip(runs, rmses, strict=True):
        rows.append([run.seed, None if not np.isfinite(r) else float(r), "yes" if run.finite else "no"])
    diverged = int((~np.isfinite(rmses)).sum())
    if diverged:
        findings.append(
            Finding(f"{diverged} of {len(runs)} seeds diverged: no usable model", key="diverged seeds")
        )
    good = rmses[np.isfinite(rmses)]
    if len(good) >= 2:
        std = float(np.std(good, ddof=1))
        mean = float(good.mean())
        ci = None
        if len(good) >= 3:
            rng = ctx.rng()
            boots = [np.std(good[rng.integers(0, len(good), len(good))], ddof=1) for _ in range(1000)]
            ci = (float(np.quantile(boots, 0.025)) / mean, float(np.quantile(boots, 0.975)) / mean)
        metrics += [
            Metric("seed_cv_rmse", std / mean if mean > 0 else None, ci=ci, n=len(good), threshold=max_seed_rmse_cv,
                   direction="lower", description="sd of test RMSE across seeds / mean test RMSE"),
            Metric("seed_std_rmse", std, n=len(good), direction="lower", description="sd of test RMSE across training seeds (label units)"),
            Metric("seed_range_rmse", float(good.max() - good.min()), n=len(good), direction="lower",
                   description="worst minus best seed's test RMSE"),
            Metric("mean_rmse", mean, ci=mean_ci(good, rng=ctx.rng()), n=len(good), direction="lower"),
        ]  # fmt: skip
    else:
        findings.append(
            Finding(
                "fewer than two usable training seeds: seed-to-seed variance is not measured "
                "(list ≥ 2 seeds in training.seeds)",
                severity="info",
                key="single seed",
            )
        )
    diff = None
    if rerun:
        again = ctx.rerun()
        first = runs[0]
        if first.module is not None and again.module is not None:
            diff = state_distance(first.module, again.module)
            metrics.append(
                Metric(
                    "same_seed_max_weight_diff",
                    diff if math.isfinite(diff) else None,
                    n=2,
                    threshold=max_weight_diff,
                    direction="lower",
                    description=f"largest |Δweight| between two runs with seed {first.seed}",
                )  # fmt: skip
            )
    parts = []
    if len(good) >= 2:
        parts.append(f"test RMSE {good.mean():.6g} ± {np.std(good, ddof=1):.3g} (sd) over {len(good)} seeds")
    if diff is not None:
        parts.append(
            "same seed reproduces the weights exactly" if diff == 0 else f"same-seed weight diff {diff:.3g}"
        )
    return Outcome.from_metrics(
        metrics,
        findings=findings,
        summary="; ".join(parts) or "reproducibility not measured",
        evidence={
            "per seed": {"columns": ["seed", "test RMSE", "finite"], "rows": rows},
            "plots": [
                {
                    "type": "bar",
                    "title": "Test RMSE per seed",
                    "x_label": "seed",
                    "y_label": "RMSE",
                    "categories": [str(r.seed) for r in runs],
                    "series": [{"name": "RMSE", "values": [r[1] for r in rows]}],
                }
            ],
        },  # fmt: skip
    )


def comparison_regression(ctx: RunContext, *, min_difference: float, n_boot: int, min_rows: int) -> Outcome:
    """Seed-averaged test RMSE per optimizer; the chosen one fails when it is significantly worse:
    the paired bootstrap interval of (RMSE chosen − RMSE other) / RMSE other lies above min_difference."""
    y = ctx.dataset("test").y
    require_rows(int(np.isfinite(y).sum()) if y is not None else 0, min_rows, what="test RMSE across optimizers",
                 split="labelled test")  # fmt: skip
    main = ctx.training_runs()
    if not main:
        raise NotApplicable("no training runs")
    compare = ctx.compare_runs()
    if not compare:
        raise NotApplicable("training.compare is empty")
    configs = [("main", main)] + sorted(compare.items(), key=lambda kv: int(kv[0].split(":")[1]))
    sq: dict[str, np.ndarray] = {}
    for key, runs in configs:
        e, _ = test_errors(ctx, runs)
        sq[key] = np.nanmean(e * e, axis=0) if np.isfinite(e).any() else np.full(e.shape[1], np.inf)
    n = len(sq["main"])
    rng = ctx.rng()
    idx = rng.integers(0, n, size=(n_boot, n))
    chosen = main[0].optimizer.get("name")
    base = np.sqrt(sq["main"][idx].mean(axis=1))
    rows, findings, metrics = [], [], []
    for key, runs in configs:
        boot = np.sqrt(sq[key][idx].mean(axis=1))
        value = float(np.sqrt(sq[key].mean()))
        lo, hi = float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))
        row: list[Any] = [
            f"{runs[0].optimizer.get('name')} ({key})",
            value,
            lo,
            hi,
            sum(not r.finite for r in runs),
        ]
        if key != "main":
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = base / boot - 1
            d = float(np.sqrt(sq["main"].mean()) / value - 1) if value > 0 else float("nan")
            dlo, dhi = float(np.nanquantile(rel, 0.025)), float(np.nanquantile(rel, 0.975))
            name = runs[0].optimizer.get("name")
            metrics.append(
                Metric(
                    f"rmse_relative_difference_vs_{name}_{key.split(':')[1]}",
                    d,
                    ci=(dlo, dhi),
                    n=n,
                    description=f"RMSE of {chosen} / RMSE of {name} − 1, paired over test rows",
                )  # fmt: skip
            )
            row += [d, dlo, dhi]
            if dlo > min_difference:
                findings.append(
                    Finding(
                        f"the chosen optimizer {chosen} is significantly worse than {name} on the test set: RMSE "
                        f"{np.sqrt(sq['main'].mean()):.6g} vs {value:.6g} ({d:+.2%}, 95% CI {dlo:+.2%} to {dhi:+.2%})",
                        key=f"{name} ({key})",
                        metric=metrics[-1].name,
                    )
                )
        else:
            row += [None, None, None]
        rows.append(row)
    best = min(rows, key=lambda r: r[1])
    return Outcome.from_metrics(
        metrics,
        findings=findings,
        summary=(
            f"{len(configs)} optimizers × {len(main)} seed(s); best {best[0]} at RMSE {best[1]:.6g}; chosen {chosen} "
            + ("is significantly worse than an alternative" if findings else "is not significantly worse")
        ),
        evidence={
            "optimizers": {
                "columns": [
                    "optimizer",
                    "test RMSE (seed-averaged squared errors)",
                    "ci low",
                    "ci high",
                    "diverged runs",
                    "chosen / this − 1",
                    "diff ci low",
                    "diff ci high",
                ],
                "rows": rows,
            }  # fmt: skip
        },
    )
