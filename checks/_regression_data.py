"""Regression implementations of AK-BAL-001 (a heavy-tailed target) and AK-BAL-002 (a shift of the
target's distribution, 1-Wasserstein with a bootstrap interval). balance.py dispatches here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auditkit import Finding, Metric, NotApplicable, Outcome, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext

SHIFT_SPLITS = ("validation", "test", "production")


def _target(ctx: RunContext, split: str) -> np.ndarray:
    y = ctx.dataset(split).y
    if y is None:
        return np.zeros(0)
    y = np.asarray(y, dtype=np.float64)
    return y[np.isfinite(y)]


def _tail_ratio(y: np.ndarray) -> float:
    """The longer tail over the spread of the middle: max(q99 − q50, q50 − q01) / IQR (normal ≈ 1.72)."""
    q01, q25, q50, q75, q99 = np.quantile(y, [0.01, 0.25, 0.5, 0.75, 0.99])
    iqr = q75 - q25
    if iqr <= 0:
        return float("nan")
    return float(max(q99 - q50, q50 - q01) / iqr)


def target_tail(ctx: RunContext, *, max_tail_ratio: float, n_boot: int, min_rows: int) -> Outcome:
    """The train target's tail ratio (bootstrap CI), skewness, kurtosis and far-outlier share."""
    from auditkit.toolkit.regression import bootstrap_stat, tail_summary
    from auditkit.toolkit.stats import wilson

    y = _target(ctx, "train")
    require_rows(len(y), min_rows, what="the target's distribution", split="labelled train")
    if np.unique(y).size < 2:
        raise NotApplicable("the train target is constant: it has no distribution to judge")
    ratio = _tail_ratio(y)
    if not np.isfinite(ratio):
        raise NotApplicable(
            "the train target's interquartile range is 0 (over half the rows share one value)"
        )
    ci = bootstrap_stat([y], _tail_ratio, n_boot=n_boot, rng=ctx.rng())
    shape = tail_summary(y)
    q25, q75 = np.quantile(y, [0.25, 0.75])
    iqr = q75 - q25
    far = int(((y > q75 + 3 * iqr) | (y < q25 - 3 * iqr)).sum())
    metrics = [
        Metric("tail_ratio", ratio, ci=ci, n=len(y), threshold=max_tail_ratio, direction="lower",
               description="max(q99 − median, median − q01) / IQR of the train target (normal ≈ 1.72)"),
        Metric("far_outlier_share", far / len(y), ci=wilson(far, len(y)), n=len(y),
               description="share of train targets beyond Tukey's far fences (quartile ± 3 IQR)"),
        Metric("skewness", shape["skewness"], n=len(y)),
        Metric("excess_kurtosis", shape["excess_kurtosis"], n=len(y)),
    ]  # fmt: skip
    qs = np.quantile(y, [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1])
    counts, edges = np.histogram(y, bins=30)
    out = Outcome.from_metrics(
        metrics,
        summary=(
            f"train target tail ratio {ratio:.3f} (95% CI {ci[0]:.3f}–{ci[1]:.3f}; normal ≈ 1.72), skewness "
            f"{shape['skewness']:.2f}, {far} far outliers of {len(y)}"
        ),
        evidence={
            "quantiles": {
                "columns": ["quantile", "value"],
                "rows": [
                    [q, float(v)]
                    for q, v in zip([0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1], qs, strict=True)
                ],
            },
            "plots": [
                {
                    "type": "bar",
                    "title": "Train target distribution",
                    "x_label": "target",
                    "y_label": "rows",
                    "categories": [f"{(a + b) / 2:.3g}" for a, b in zip(edges[:-1], edges[1:], strict=True)],
                    "series": [{"name": "rows", "values": [int(c) for c in counts]}],
                }
            ],
            "method": {
                "task": "regression",
                "interval": "percentile bootstrap of the train rows",
                "n_boot": n_boot,
            },
        },  # fmt: skip
    )
    for f in out.findings:
        if f.metric == "tail_ratio":
            f.message += (
                ": a heavy-tailed target makes RMSE dominated by a few rows; consider a robust loss "
                "(training.loss: huber or l1), a transformed target, or reading MAE and median AE"
            )
    return out


def target_shift(
    ctx: RunContext, *, max_wasserstein: float, bound: str, n_boot: int, min_rows: int
) -> Outcome:
    """1-Wasserstein distance (in train sd) between the train target and each labelled split's."""
    from scipy.stats import ks_2samp

    from auditkit.toolkit.regression import wasserstein, wasserstein_shift

    train = _target(ctx, "train")
    require_rows(len(train), min_rows, what="a target distribution", split="labelled train")
    sd = float(np.std(train, ddof=1))
    if not sd > 0:
        raise NotApplicable("the train target is constant: a shift cannot be scaled")
    rng = ctx.rng()
    metrics, findings, rows, small = [], [], [], []
    for split in SHIFT_SPLITS:
        if split not in ctx.splits():
            continue
        other = _target(ctx, split)
        if len(other) == 0:
            continue
        if len(other) < min_rows:
            small.append(f"{split} ({len(other)} rows)")
            continue
        est = wasserstein_shift(train, other, n_boot=n_boot, rng=rng)
        plugin = wasserstein(train, other) / sd
        w = est["estimate"] / sd
        lo, hi = est["ci"]
        ks = ks_2samp(train, other)
        shift = float(np.mean(other) - np.mean(train)) / sd
        gate_value = bound == "value"
        m = Metric(
            f"wasserstein_{split}", w, ci=(lo / sd, hi / sd), n=len(other),
            threshold=max_wasserstein if gate_value else None, direction="lower",
            description=f"1-Wasserstein distance of the {split} target from train's, in train sd "
            "(bootstrap bias-corrected; the plug-in distance is in details)",
            details={"w1_plugin": plugin, "mean_shift_sd": shift, "ks": float(ks.statistic), "ks_p_value": float(ks.pvalue)},
        )  # fmt: skip
        metrics.append(m)
        if not gate_value:
            metrics.append(
                Metric(
                    f"wasserstein_{split}_lower_bound",
                    lo / sd,
                    n=len(other),
                    threshold=max_wasserstein,
                    direction="lower",
                    description=f"lower 95% bound of the {split} target's W1 from train (gated: the shift is "
                    "surely at least this large)",
                )
            )
        rows.append([split, len(other), float(np.mean(other)), float(np.std(other, ddof=1)), w, lo / sd, hi / sd,
                     shift, float(ks.pvalue)])  # fmt: skip
    if not metrics:
        raise NotApplicable(
            "no labelled validation, test or production split to compare with train"
            + (f" ({', '.join(small)} too small to judge)" if small else "")
        )
    if small:
        findings.append(
            Finding(
                f"too small to judge (fewer than {min_rows} labelled rows): {', '.join(small)}",
                severity="info",
                key="small splits",
            )  # fmt: skip
        )
    worst = max((m for m in metrics if m.ci is not None), key=lambda m: m.value or 0.0)
    return Outcome.from_metrics(
        metrics,
        findings=findings,
        summary=f"largest target shift: {worst.name} = {worst.value:.3f} train sd (95% CI "
        f"{worst.ci[0]:.3f}–{worst.ci[1]:.3f})"
        if worst.ci
        else f"largest target shift {worst.name}",
        evidence={
            "splits": {
                "columns": [
                    "split",
                    "n",
                    "mean",
                    "sd",
                    "W1 / train sd (bias-corrected)",
                    "ci low",
                    "ci high",
                    "mean shift / train sd",
                    "KS p-value",
                ],
                "rows": rows,
            },
            "method": {
                "task": "regression",
                "train_mean": float(np.mean(train)),
                "train_sd": sd,
                "estimate": "2·W1 − mean of the bootstrap replicates (bias-corrected), clipped at 0",
                "interval": "basic bootstrap 2·W1 − (q97.5, q2.5), clipped at 0; both samples resampled",
                "n_boot": n_boot,
                "note": "W1 is biased upwards on small samples: the lower bound is the conservative reading",
            },
        },  # fmt: skip
    )
