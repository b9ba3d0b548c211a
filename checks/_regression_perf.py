"""Regression implementations of the evaluation checks (AK-PERF-001…004, AK-FAIR-001).

The public check functions in performance.py and fairness.py dispatch here when ``ctx.task`` is
``regression``; their ids, severities and parameters are the same checks'. Private: plugins use
``auditkit.toolkit.regression``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from auditkit.checks._evaluation import finite, slice_masks

from auditkit import Finding, Metric, NotApplicable, Outcome, require_rows
from auditkit.toolkit.imports import lazy

if TYPE_CHECKING:
    import pandas as pd

    from auditkit import RunContext
else:
    pd = lazy("pandas")

Bound = Literal["value", "conservative"]

LABELS = {
    "rmse": "RMSE", "mae": "MAE", "median_ae": "median absolute error", "r2": "R²",
    "mape": "MAPE (share of the label)",
}  # fmt: skip


def regression_rows(ctx: RunContext, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Finding]]:
    """(y, point prediction, row mask, findings) for the rows of ``split`` with a finite label and a
    finite prediction; NaN/inf predictions are findings (all of them: nothing can be measured)."""
    p = ctx.predictions(split)
    if p.y is None or p.point is None:
        raise NotApplicable(f"the {split} split has no labels")
    finite_y = np.isfinite(p.y)
    finite_p = np.isfinite(p.point)
    if p.sd is not None:
        finite_p &= np.isfinite(p.sd)
    if p.quantiles is not None:
        finite_p &= np.isfinite(p.quantiles).all(axis=1)
    findings = []
    bad = finite_y & ~finite_p
    if finite_y.any() and bad.sum() == finite_y.sum():
        raise _Broken(
            f"the model outputs NaN/inf for all {int(bad.sum())} labelled {split} rows: nothing can be measured"
        )
    if bad.any():
        findings.append(
            Finding(
                f"the model outputs NaN/inf for {int(bad.sum())} of {len(bad)} {split} rows; they are left out of the metrics",
                key=f"non-finite outputs ({split})",
            )
        )
    mask = finite_y & finite_p
    if not mask.any():
        raise NotApplicable(f"the {split} split has no rows with a numeric label")
    return p.y[mask], p.point[mask], mask, findings


class _Broken(Exception):
    """Every output is NaN/inf: the check fails with this message."""


def broken_outcome(err: _Broken) -> Outcome:
    msg = str(err)
    return Outcome(findings=[Finding(msg, key="non-finite outputs")], summary=msg)


def _unit(ctx: RunContext) -> str | None:
    label = ctx.roles().label
    return f"{label} units" if label else None


def _histogram(values: np.ndarray, bins: int = 20) -> dict[str, Any]:
    counts, edges = np.histogram(values, bins=bins)
    return {
        "type": "bar", "title": "Residuals on test (prediction − label)", "x_label": "residual",
        "y_label": "count", "categories": [f"{(a + b) / 2:.3g}" for a, b in zip(edges[:-1], edges[1:], strict=True)],
        "series": [{"name": "rows", "values": [int(c) for c in counts]}],
    }  # fmt: skip


def _binned_fit(y: np.ndarray, pred: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Mean label per decile of the prediction: a calibration-in-the-large plot (diagonal = ideal)."""
    order = np.argsort(pred, kind="stable")
    parts = [p for p in np.array_split(order, min(bins, len(order))) if len(p)]
    return {
        "type": "line", "title": "Mean label per decile of the prediction", "x_label": "mean prediction",
        "y_label": "mean label", "diagonal": True,
        "series": [{"name": "model", "x": [float(pred[p].mean()) for p in parts],
                    "y": [float(y[p].mean()) for p in parts]}],
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------
# AK-PERF-001
# ------------------------------------------------------------------------------------------------


def heldout_regression(
    ctx: RunContext,
    *,
    max_rmse: float | None,
    max_mae: float | None,
    max_median_ae: float | None,
    min_r2: float | None,
    max_mape: float | None,
    bound: Bound,
    beat_baseline: bool,
    n_boot: int,
    min_rows: int,
) -> Outcome:
    """RMSE, MAE, median AE, R², MAPE (positive label) with bootstrap CIs; beat the train mean."""
    from auditkit.toolkit.regression import bootstrap_regression, bootstrap_stat, regression_metrics
    from auditkit.toolkit.stats import describe_method

    try:
        y, pred, _, problems = regression_rows(ctx, "test")
    except _Broken as err:
        return broken_outcome(err)
    require_rows(len(y), min_rows, what="held-out performance", split="labelled test")
    names = ["rmse", "mae", "median_ae", "r2"] + (["mape"] if (y > 0).all() else [])
    point = regression_metrics(y, pred, names)
    rng = ctx.rng()
    cis = bootstrap_regression(y, pred, names, n_boot=n_boot, rng=rng)
    limits: dict[str, tuple[float | None, str]] = {
        "rmse": (max_rmse, "lower"), "mae": (max_mae, "lower"), "median_ae": (max_median_ae, "lower"),
        "r2": (min_r2, "higher"), "mape": (max_mape, "lower"),
    }  # fmt: skip
    unit = _unit(ctx)
    metrics = [
        Metric(
            m,
            point[m],
            ci=cis[m],
            n=len(y),
            threshold=limits[m][0],
            direction=limits[m][1],  # type: ignore[arg-type]
            bound=bound,
            description=LABELS[m],  # type: ignore[arg-type]
            unit=unit if m in ("rmse", "mae", "median_ae") else None,
        )  # fmt: skip
        for m in names
    ]
    findings = list(problems)
    if max_mape is not None and "mape" not in names:
        findings.append(
            Finding(
                "max_mape is declared but MAPE is undefined: some test labels are ≤ 0", key="mape undefined"
            )
        )
    baseline_value = None
    if beat_baseline:
        if "train" in ctx.splits():
            ty = ctx.dataset("train").y
            ty = ty[np.isfinite(ty)] if ty is not None else np.zeros(0)
            base, source = (float(ty.mean()), "train") if len(ty) else (float(y.mean()), "test")
        else:
            base, source = float(y.mean()), "test"
        e_model, e_base = pred - y, np.full_like(y, base) - y
        rmse_base = float(np.sqrt(np.mean(e_base**2)))
        baseline_value = rmse_base

        def diff(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.sqrt(np.mean(a * a)) - np.sqrt(np.mean(b * b)))

        dci = bootstrap_stat([e_model, e_base], diff, n_boot=n_boot, rng=rng, paired=True)
        mm = Metric(
            "rmse_minus_mean_baseline", point["rmse"] - rmse_base, ci=dci, n=len(y), threshold=0.0,
            direction="lower", bound="conservative", unit=unit,
            description=f"RMSE minus the RMSE {rmse_base:.6g} of always predicting the {source} mean {base:.6g} "
            "(paired bootstrap)",
            details={"baseline_prediction": base, "baseline_source": source, "baseline_rmse": rmse_base},
        )  # fmt: skip
        metrics.append(mm)
        if mm.passed is False:
            findings.append(
                Finding(
                    f"the model does not clearly beat predicting the {source} mean: RMSE {point['rmse']:.6g} vs "
                    f"{rmse_base:.6g} for the constant {base:.6g} (difference {mm.value:+.6g}, 95% CI "
                    f"{dci[0]:+.6g} to {dci[1]:+.6g})",
                    key="mean baseline",
                    metric=mm.name,
                )
            )
    declared = [k for k, (v, _) in limits.items() if v is not None]
    if not declared:
        findings.append(
            Finding(
                "no performance limit was declared (params max_rmse, min_r2, ...): the metrics are reported, not gated",
                severity="info",
                key="no minimums",
            )
        )
    out = Outcome.from_metrics(
        metrics,
        findings=findings,
        evidence={
            "method": {
                **describe_method(len(y)),
                "n_boot": n_boot,
                "bound": bound,
                "task": "regression",
                "rmse_interval": "bootstrap-t on log MSE (the same replicates); the others percentile",
            },
            "metrics": {
                "columns": ["metric", "value", "ci low", "ci high", "minimum/maximum"],
                "rows": [
                    [
                        LABELS[m],
                        finite(point[m]),
                        finite(cis[m][0]),
                        finite(cis[m][1]),
                        "not declared" if limits[m][0] is None else limits[m][0],
                    ]
                    for m in names
                ],
            },  # fmt: skip
            "plots": [_binned_fit(y, pred), _histogram(pred - y)],
        },
    )
    out.findings = [
        f for f in out.findings if not (f.key == "rmse_minus_mean_baseline" and f.metric == f.key)
    ]
    out.summary = (
        f"test RMSE {point['rmse']:.6g} (95% CI {cis['rmse'][0]:.6g}–{cis['rmse'][1]:.6g}), "
        f"R² {point['r2']:.4f}, n={len(y)}"
        + (f"; mean baseline RMSE {baseline_value:.6g}" if baseline_value is not None else "")
        + ("" if declared else "; no limit declared: reported, not gated")
    )
    return out


# ------------------------------------------------------------------------------------------------
# AK-PERF-002
# ------------------------------------------------------------------------------------------------


def _r2(y: np.ndarray, e: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1 - float(np.sum(e * e)) / ss if ss > 0 else float("nan")


def gap_regression(
    ctx: RunContext,
    *,
    max_r2_gap: float,
    max_rmse_ratio: float | None,
    bound: Bound,
    n_boot: int,
    min_rows: int,
) -> Outcome:
    """Train − test R² and test/train RMSE ratio, with independent bootstrap intervals per split."""
    try:
        yt, pt, _, p1 = regression_rows(ctx, "train")
        ye, pe, _, p2 = regression_rows(ctx, "test")
    except _Broken as err:
        return broken_outcome(err)
    require_rows(len(yt), min_rows, what="the generalisation gap", split="labelled train")
    require_rows(len(ye), min_rows, what="the generalisation gap", split="labelled test")
    et, ee = pt - yt, pe - ye
    rmse_t, rmse_e = float(np.sqrt(np.mean(et**2))), float(np.sqrt(np.mean(ee**2)))
    r2_t, r2_e = _r2(yt, et), _r2(ye, ee)
    rng = ctx.rng()
    # resample (label, error) pairs of each split on its own: stack them as columns of one array
    tr, te = np.column_stack([yt, et]), np.column_stack([ye, ee])
    r2_gaps, ratios, diffs = np.empty(n_boot), np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):  # one replicate's indices at a time: memory O(n)
        a, c = tr[rng.integers(0, len(tr), len(tr))], te[rng.integers(0, len(te), len(te))]
        ra, rc = np.sqrt(np.mean(a[:, 1] ** 2)), np.sqrt(np.mean(c[:, 1] ** 2))
        r2_gaps[b] = _r2(a[:, 0], a[:, 1]) - _r2(c[:, 0], c[:, 1])
        ratios[b] = rc / ra if ra > 0 else np.nan
        diffs[b] = rc - ra
    from auditkit.toolkit.regression import percentile_interval

    ci_r2, ci_ratio, ci_diff = (
        percentile_interval(r2_gaps),
        percentile_interval(ratios),
        percentile_interval(diffs),
    )
    unit = _unit(ctx)
    metrics = [
        Metric("r2_gap", r2_t - r2_e, ci=ci_r2, n=len(yt) + len(ye), threshold=max_r2_gap, direction="lower",
               bound=bound, description="train R² − test R²"),  # type: ignore[arg-type]
        Metric("rmse_ratio", rmse_e / rmse_t if rmse_t > 0 else None, ci=ci_ratio, n=len(yt) + len(ye),
               threshold=max_rmse_ratio, direction="lower", bound=bound,  # type: ignore[arg-type]
               description="test RMSE / train RMSE"),
        Metric("rmse_gap", rmse_e - rmse_t, ci=ci_diff, n=len(yt) + len(ye), unit=unit, direction="lower",
               description="test RMSE − train RMSE"),
        Metric("train_rmse", rmse_t, n=len(yt), unit=unit),
        Metric("test_rmse", rmse_e, n=len(ye), unit=unit, direction="lower"),
        Metric("train_r2", r2_t, n=len(yt)),
        Metric("test_r2", r2_e, n=len(ye), direction="higher"),
    ]  # fmt: skip
    return Outcome.from_metrics(
        metrics,
        findings=p1 + p2,
        summary=(
            f"train RMSE {rmse_t:.6g} vs test {rmse_e:.6g} (ratio {rmse_e / rmse_t if rmse_t > 0 else float('nan'):.3f}); "
            f"R² {r2_t:.4f} vs {r2_e:.4f}: gap {r2_t - r2_e:+.4f} (95% CI {ci_r2[0]:+.4f} to {ci_r2[1]:+.4f})"
        ),
        evidence={
            "plots": [
                {
                    "type": "bar",
                    "title": "Train vs test",
                    "x_label": "metric",
                    "y_label": "value",
                    "categories": ["RMSE", "R²"],
                    "series": [
                        {"name": "train", "values": [rmse_t, r2_t]},
                        {"name": "test", "values": [rmse_e, r2_e]},
                    ],
                }
            ],
            "method": {
                "interval": "percentile bootstrap, train and test rows resampled independently",
                "n_boot": n_boot,
                "task": "regression",
            },
        },  # fmt: skip
    )


# ------------------------------------------------------------------------------------------------
# AK-PERF-003
# ------------------------------------------------------------------------------------------------


def _abs_interval(lo: float, hi: float) -> tuple[float, float]:
    """The interval of |d| for d in [lo, hi]."""
    if lo <= 0 <= hi:
        return (0.0, max(-lo, hi))
    return (min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))


def calibration_regression(
    ctx: RunContext,
    *,
    coverage_level: float,
    max_coverage_gap: float,
    max_pit_ks: float | None,
    n_bins: int,
    bound: Bound,
    n_boot: int,
    min_rows: int,
) -> Outcome:
    """Interval coverage, PIT uniformity and sharpness of a gaussian or quantile regression output."""
    from auditkit.toolkit.regression import (
        bootstrap_stat,
        gaussian_crps,
        gaussian_interval,
        gaussian_pit,
        interval_coverage,
        pinball_loss,
        pit_uniformity,
    )
    from auditkit.toolkit.stats import wilson

    output = ctx.model_output
    if output == "point":
        raise NotApplicable(
            "the model outputs point predictions (model.output: point): coverage and PIT need a predictive "
            "distribution; declare model.output: gaussian ([mean, log_var]) or {quantiles: [...]}"
        )
    try:
        y, pred, mask, problems = regression_rows(ctx, "test")
    except _Broken as err:
        return broken_outcome(err)
    require_rows(len(y), min_rows, what="calibration", split="labelled test")
    p = ctx.predictions("test")
    label_sd = float(np.std(y, ddof=1)) if len(y) > 1 else float("nan")
    extra: list[Metric] = []
    if output == "gaussian":
        assert p.sd is not None
        sd = p.sd[mask]
        nominal = float(coverage_level)
        lo, hi = gaussian_interval(pred, sd, nominal)
        pit = gaussian_pit(y, pred, sd)
        crps = gaussian_crps(y, pred, sd)
        extra.append(Metric("crps", float(crps.mean()), ci=bootstrap_stat([crps], np.mean, n_boot=n_boot, rng=ctx.rng()),
                            n=len(y), unit=_unit(ctx), direction="lower",
                            description="mean CRPS of N(mean, exp(log_var))"))  # fmt: skip
        interval_name = f"central {nominal:.0%} interval mean ± z·sd"
    else:
        assert p.quantiles is not None
        q = p.quantiles[mask]
        levels = p.levels
        if len(levels) < 2:
            raise NotApplicable("one quantile level: coverage needs at least two levels (an interval)")
        nominal = float(levels[-1] - levels[0])
        lo, hi = q[:, 0], q[:, -1]
        losses = pinball_loss(y, q, levels)
        extra.append(Metric("mean_pinball_loss", float(np.mean(list(losses.values()))), n=len(y), unit=_unit(ctx),
                            direction="lower", description="mean pinball loss over the quantile levels",
                            details={"per_level": {str(k): v for k, v in losses.items()}}))  # fmt: skip
        interval_name = f"[q{levels[0]:g}, q{levels[-1]:g}] ({nominal:.0%} nominal)"
    levels_q: tuple[float, ...] = ()
    if output != "gaussian":
        levels_q = tuple(p.levels)
        below = (y[:, None] <= q).astype(np.float64)  # the PIT is only known at the levels: P(y ≤ q_a) = a
    cov, k, n = interval_coverage(y, lo, hi)
    wlo, whi = wilson(k, n)
    gap_ci = _abs_interval(wlo - nominal, whi - nominal)
    width = hi - lo
    if levels_q:
        lv = np.asarray(levels_q)
        # calibration at the levels: the KS distance of the PIT where it is defined
        pu: dict[str, Any] = {"ks": float(np.max(np.abs(below.mean(axis=0) - lv))), "p_value": None,
              "counts": [int(c) for c in np.diff(np.r_[0, below.sum(axis=0), len(y)])]}  # fmt: skip
        centres = [float(c) for c in (np.r_[0, lv] + np.r_[lv, 1]) / 2]
        rows_idx = np.arange(len(y), dtype=np.float64)

        def ks_levels(i: np.ndarray) -> float:
            return float(np.max(np.abs(below[i.astype(np.int64)].mean(axis=0) - lv)))

        ks_ci = bootstrap_stat([rows_idx], ks_levels, n_boot=min(n_boot, 500), rng=ctx.rng())
    else:
        pu = pit_uniformity(pit, n_bins)
        centres = [(i + 0.5) / n_bins for i in range(n_bins)]

        def ks(v: np.ndarray) -> float:
            s = np.sort(v)
            m = len(s)
            i = np.arange(1, m + 1)
            return float(max(np.max(i / m - s), np.max(s - (i - 1) / m)))

        ks_ci = bootstrap_stat([pit], ks, n_boot=min(n_boot, 500), rng=ctx.rng())
    metrics = [
        Metric("coverage", cov, ci=(wlo, whi), n=n, description=f"share of test labels inside the {interval_name}",
               details={"nominal": nominal}),
        Metric("coverage_gap", abs(cov - nominal), ci=gap_ci, n=n, threshold=max_coverage_gap, direction="lower",
               bound=bound, description=f"|coverage − nominal {nominal:.3g}|"),  # type: ignore[arg-type]
        Metric("pit_ks", pu["ks"], ci=ks_ci, n=n, threshold=max_pit_ks, direction="lower", bound=bound,  # type: ignore[arg-type]
               description="Kolmogorov–Smirnov distance of the PIT from uniform"
               + (" at the quantile levels: max |share of labels ≤ q_a − a|" if levels_q else ""),
               details={"p_value": pu["p_value"]}),
        Metric("mean_interval_width", float(width.mean()), n=n, unit=_unit(ctx),
               description=f"sharpness: mean width of the {interval_name}"),
        Metric("relative_interval_width", float(width.mean()) / label_sd if label_sd > 0 else None, n=n,
               description="sharpness: mean interval width / test label sd"),
        *extra,
    ]  # fmt: skip
    return Outcome.from_metrics(
        metrics,
        findings=problems,
        summary=(
            f"{interval_name} covers {cov:.3f} of test labels (95% CI {wlo:.3f}–{whi:.3f}, nominal {nominal:.3f}); "
            f"PIT KS {pu['ks']:.3f}; mean width {float(width.mean()):.6g}, n={n}"
        ),
        evidence={
            "PIT histogram": {
                "columns": ["bin centre", "count"],
                "rows": [[c, k_] for c, k_ in zip(centres, pu["counts"], strict=True)],
            },
            "plots": [
                {
                    "type": "bar",
                    "title": "PIT histogram (flat = calibrated)"
                    if not levels_q
                    else "Labels between consecutive predicted quantiles",
                    "x_label": "PIT",
                    "y_label": "count",
                    "categories": [f"{c:.2f}" for c in centres],
                    "series": [{"name": "rows", "values": pu["counts"]}],
                }
            ],
            "method": {
                "output": output if isinstance(output, str) else {"quantiles": list(p.levels)},
                "coverage_interval": "Wilson",
                "pit_ks_interval": "percentile bootstrap",
                "task": "regression",
            },
        },  # fmt: skip
    )


# ------------------------------------------------------------------------------------------------
# AK-PERF-004
# ------------------------------------------------------------------------------------------------


def _ratio_ci(
    e_s: np.ndarray, e_r: np.ndarray, n_boot: int, rng: np.random.Generator, stat: str
) -> tuple[float, float]:
    """Interval of stat(slice) / stat(all rows), slice and rest resampled independently."""
    from auditkit.toolkit.regression import bootstrap_stat

    def f(a: np.ndarray, b: np.ndarray) -> float:
        both = np.concatenate([a, b])
        if stat == "rmse":
            d = float(np.sqrt(np.mean(both * both)))
            return float(np.sqrt(np.mean(a * a))) / d if d > 0 else float("nan")
        d = float(np.mean(np.abs(both)))
        return float(np.mean(np.abs(a))) / d if d > 0 else float("nan")

    return bootstrap_stat([e_s, e_r], f, n_boot=n_boot, rng=rng)


def slices_regression(
    ctx: RunContext, *, max_rmse_ratio: float, min_slice_size: int, bound: Bound, n_boot: int
) -> Outcome:
    """RMSE and MAE per slice, as ratios to overall with bootstrap CIs; worst slice vs overall."""
    try:
        y, pred, mask, problems = regression_rows(ctx, "test")
    except _Broken as err:
        return broken_outcome(err)
    slices = slice_masks(ctx, "test")
    if not slices:
        raise NotApplicable("no slices: no sensitive columns, categorical features or data.slices")
    e = pred - y
    overall = float(np.sqrt(np.mean(e * e)))
    overall_mae = float(np.mean(np.abs(e)))
    rng = ctx.rng()
    rows, findings, small = [], list(problems), []
    worst: tuple[float, str, int, tuple[float, float], float] | None = None
    for name, (attr, smask) in slices.items():
        m = smask[mask]
        ns = int(m.sum())
        if ns == 0:
            continue
        es, er = e[m], e[~m]
        rmse_s, mae_s = float(np.sqrt(np.mean(es * es))), float(np.mean(np.abs(es)))
        ratio = rmse_s / overall if overall > 0 else float("nan")
        too_small = ns < min_slice_size
        if too_small:
            small.append(name)
            rows.append(
                [
                    name,
                    attr,
                    ns,
                    finite(rmse_s),
                    finite(mae_s),
                    finite(ratio),
                    None,
                    None,
                    finite(rmse_s - overall),
                    "too small",
                ]
            )
            continue
        ci = _ratio_ci(es, er, n_boot, rng, "rmse")
        mae_ratio = mae_s / overall_mae if overall_mae > 0 else float("nan")
        rows.append([name, attr, ns, finite(rmse_s), finite(mae_s), finite(ratio), finite(ci[0]), finite(ci[1]),
                     finite(rmse_s - overall), ""])  # fmt: skip
        compared = ratio if bound == "value" else (ci[1] if np.isfinite(ci[1]) else ratio)
        if compared > max_rmse_ratio:
            findings.append(
                Finding(
                    f"slice {name}: RMSE {rmse_s:.6g} (n={ns}) is {ratio:.3f}× overall {overall:.6g} "
                    f"(95% CI {ci[0]:.3f}–{ci[1]:.3f}; > {max_rmse_ratio:g}×); MAE ratio {mae_ratio:.3f}",
                    key=name,
                    metric="worst_slice_rmse_ratio",
                )
            )
        if worst is None or rmse_s > worst[0]:
            worst = (rmse_s, name, ns, ci, mae_ratio)
    if worst is None:
        raise NotApplicable(
            f"no slice has the {min_slice_size} test rows needed to judge it "
            f"({len(small)} smaller: {', '.join(small[:5])}{' ...' if len(small) > 5 else ''})"
        )
    if small:
        findings.append(
            Finding(
                f"{len(small)} slice(s) too small to judge (fewer than {min_slice_size} test rows): "
                f"{', '.join(small[:10])}" + (" ..." if len(small) > 10 else ""),
                severity="info",
                key="small slices",
            )
        )
    rmse_w, name, ns, ci, mae_ratio = worst
    unit = _unit(ctx)
    metrics = [
        Metric("overall_rmse", overall, n=len(y), unit=unit, direction="lower"),
        Metric("worst_slice_rmse", rmse_w, n=ns, unit=unit, direction="lower", details={"slice": name}),
        Metric("worst_slice_rmse_ratio", rmse_w / overall if overall > 0 else None, ci=ci, n=ns,
               threshold=max_rmse_ratio, direction="lower", bound=bound,  # type: ignore[arg-type]
               description=f"RMSE of {name} / overall RMSE (CI: slice and rest resampled independently)",
               details={"slice": name, "mae_ratio": mae_ratio}),
        Metric("worst_slice_rmse_difference", rmse_w - overall, n=ns, unit=unit, direction="lower",
               details={"slice": name}),
    ]  # fmt: skip
    rows.sort(key=lambda r: (r[9] == "too small", -float(r[3] or 0)))  # type: ignore[arg-type]
    judged = [r for r in rows if r[9] == ""]
    return Outcome(
        metrics=metrics,
        findings=findings,
        summary=f"{len(rows)} slices; worst judged slice {name}: RMSE {rmse_w:.6g} vs overall {overall:.6g} "
        f"({rmse_w / overall if overall > 0 else float('nan'):.3f}×)",
        evidence={
            "slices": {
                "columns": [
                    "slice",
                    "attribute",
                    "n",
                    "RMSE",
                    "MAE",
                    "RMSE / overall",
                    "ci low",
                    "ci high",
                    "RMSE − overall",
                    "note",
                ],
                "rows": rows[:50],
                "total_rows": len(rows),
            },
            "plots": [
                {
                    "type": "bar",
                    "title": "RMSE per slice (judged slices, worst first)",
                    "x_label": "slice",
                    "y_label": "RMSE",
                    "categories": [r[0] for r in judged][:30],
                    "series": [{"name": "RMSE", "values": [r[3] for r in judged][:30]}],
                }
            ],
        },  # fmt: skip
    )


# ------------------------------------------------------------------------------------------------
# AK-FAIR-001
# ------------------------------------------------------------------------------------------------


def _attributes(sens: pd.DataFrame, intersectional: bool) -> dict[str, pd.Series]:
    attributes: dict[str, pd.Series] = {}
    for col in sens.columns:
        s = sens[col]
        if pd.api.types.is_numeric_dtype(s) and s.nunique() > 10:
            s = pd.qcut(s, 4, duplicates="drop").astype(str)
        attributes[col] = s.astype(str).where(s.notna(), "<missing>")
    if intersectional and len(attributes) >= 2:
        for a, b in itertools.combinations(list(attributes)[:4], 2):
            attributes[f"{a} × {b}"] = attributes[a] + " & " + attributes[b]
    return attributes


def _spread(groups: Sequence[np.ndarray], kind: str) -> float:
    """Over groups of (label, prediction) rows: mean-prediction gap, RMSE ratio or MAE difference."""
    if kind == "mean_prediction_gap":
        means = [g[:, 1].mean() for g in groups]
        return float(max(means) - min(means))
    errs = [g[:, 1] - g[:, 0] for g in groups]
    if kind == "rmse_ratio":
        r = [float(np.sqrt(np.mean(e * e))) for e in errs]
        return max(r) / min(r) if min(r) > 0 else float("inf")
    a = [float(np.mean(np.abs(e))) for e in errs]
    return max(a) - min(a)


def fairness_regression(
    ctx: RunContext,
    *,
    max_mean_prediction_gap: float | None,
    max_rmse_ratio: float | None,
    max_mae_difference: float | None,
    min_group_size: int,
    intersectional: bool,
    bound: Bound,
    n_boot: int,
) -> Outcome:
    """Per sensitive attribute: the mean-prediction gap between groups (in label sd), the RMSE ratio
    worst/best group and the MAE difference, each with a bootstrap interval (groups resampled
    independently); the worst attribute per metric is the headline."""
    try:
        y, pred, mask, problems = regression_rows(ctx, "test")
    except _Broken as err:
        return broken_outcome(err)
    test = ctx.dataset("test")
    sens = test.sensitive
    if sens.shape[1] == 0:
        raise NotApplicable("no sensitive columns in the test split")
    label_sd = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
    attributes = _attributes(sens, intersectional)
    rng = ctx.rng()
    data = np.column_stack([y, pred])
    limits = {
        "mean_prediction_gap": (
            max_mean_prediction_gap,
            "highest − lowest group mean prediction / test label sd",
        ),
        "rmse_ratio": (max_rmse_ratio, "highest / lowest group RMSE (error parity)"),
        "mae_difference": (max_mae_difference, "highest − lowest group MAE / test label sd"),
    }
    worst: dict[str, tuple[float, tuple[float, float], str, int]] = {}
    findings, rows, small_groups = list(problems), [], []
    for attr, values in attributes.items():
        v = values.to_numpy()[mask]
        levels, codes = np.unique(v, return_inverse=True)
        sizes = np.bincount(codes, minlength=len(levels))
        ok = np.flatnonzero(sizes >= min_group_size)
        small_groups += [f"{attr}={levels[i]}" for i in np.flatnonzero(sizes < min_group_size)]
        for i in range(len(levels)):
            g = data[codes == i]
            e = g[:, 1] - g[:, 0]
            rows.append([attr, str(levels[i]), int(sizes[i]), finite(g[:, 1].mean()), finite(g[:, 0].mean()),
                         finite(float(np.sqrt(np.mean(e * e)))), finite(float(np.mean(np.abs(e)))),
                         "" if sizes[i] >= min_group_size else "too small"])  # fmt: skip
        if len(ok) < 2:
            continue
        groups = [data[codes == i] for i in ok]
        # the same resamples for the three metrics, one replicate at a time (memory O(n))
        replicates = np.empty((n_boot, len(limits)))
        for b in range(n_boot):
            resampled = [g[rng.integers(0, len(g), len(g))] for g in groups]
            replicates[b] = [_spread(resampled, kind) for kind in limits]
        for j, kind in enumerate(limits):
            scale = label_sd if kind in ("mean_prediction_gap", "mae_difference") and label_sd > 0 else 1.0
            value = _spread(groups, kind) / scale
            boots = replicates[:, j]
            from auditkit.toolkit.regression import percentile_interval

            ci = percentile_interval(boots / scale)
            if kind not in worst or value > worst[kind][0]:
                worst[kind] = (value, ci, attr, int(sum(len(g) for g in groups)))
            threshold = limits[kind][0]
            compared = value if bound == "value" else ci[1]
            if threshold is not None and np.isfinite(compared) and compared > threshold:
                findings.append(
                    Finding(
                        f"{attr}: {kind.replace('_', ' ')} {value:.4g} (95% CI {ci[0]:.4g}–{ci[1]:.4g}) "
                        f"is above the maximum {threshold:g} ({limits[kind][1]})",
                        key=f"{attr}:{kind}",
                        metric=kind,
                    )
                )
    if not worst:
        raise NotApplicable(
            f"no sensitive attribute has two groups of at least {min_group_size} test rows "
            f"({len(small_groups)} smaller groups)"
        )
    if small_groups:
        findings.append(
            Finding(
                f"{len(small_groups)} group(s) smaller than {min_group_size} test rows were not compared: "
                + ", ".join(small_groups[:10])
                + (" ..." if len(small_groups) > 10 else ""),
                severity="info",
                key="small groups",
            )
        )
    metrics = []
    for kind, (value, ci, attr, n) in worst.items():
        threshold = limits[kind][0]
        metrics.append(
            Metric(kind, value, ci=ci, n=n, threshold=threshold, direction="lower",
                   bound=bound, description=limits[kind][1], details={"attribute": attr})  # type: ignore[arg-type]
        )  # fmt: skip
    gap = worst["mean_prediction_gap"]
    ratio = worst["rmse_ratio"]
    return Outcome(
        metrics=metrics,
        findings=findings,
        summary=(
            f"largest mean-prediction gap {gap[0]:.3f} label sd ({gap[2]}); largest RMSE ratio {ratio[0]:.3f} ({ratio[2]})"
        ),
        evidence={
            "groups": {
                "columns": [
                    "attribute",
                    "group",
                    "n",
                    "mean prediction",
                    "mean label",
                    "RMSE",
                    "MAE",
                    "note",
                ],
                "rows": rows[:50],
                "total_rows": len(rows),
            },
            "method": {
                "interval": "percentile bootstrap, groups resampled independently",
                "n_boot": n_boot,
                "label_sd": label_sd,
                "task": "regression",
            },
        },  # fmt: skip
    )
