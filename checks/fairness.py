"""Built-in checks: group fairness of the model's decisions (AK-FAIR-001)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Literal

import numpy as np

from auditkit import Finding, Metric, NotApplicable, Outcome, SpecError, check
from auditkit.toolkit.imports import lazy

if TYPE_CHECKING:
    import pandas as pd

    from auditkit import RunContext
else:
    pd = lazy("pandas")  # imported when a check first needs it: `auditkit checks` stays fast


def _rates(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """counts[..., g, y, d] (y, d in {0, 1}) → selection rate, TPR, FPR per group (NaN when undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = counts.sum(axis=(-1, -2))
        sel = counts[..., :, 1].sum(axis=-1) / n
        tpr = counts[..., 1, 1] / counts[..., 1, :].sum(axis=-1)
        fpr = counts[..., 0, 1] / counts[..., 0, :].sum(axis=-1)
    return sel, tpr, fpr


def _summaries(counts: np.ndarray) -> dict[str, np.ndarray]:
    sel, tpr, fpr = _rates(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nanmin(sel, axis=-1) / np.nanmax(sel, axis=-1)
    ratio = np.where(np.nanmax(sel, axis=-1) == 0, 1.0, ratio)
    dp = np.nanmax(sel, axis=-1) - np.nanmin(sel, axis=-1)
    tpr_d = np.nanmax(tpr, axis=-1) - np.nanmin(tpr, axis=-1)
    fpr_d = np.nanmax(fpr, axis=-1) - np.nanmin(fpr, axis=-1)
    eo = np.fmax(tpr_d, fpr_d)
    return {
        "selection_rate_ratio": ratio,
        "demographic_parity_difference": dp,
        "equalized_odds_difference": eo,
    }


@check(
    id="AK-FAIR-001",
    area="evaluation",
    title="Group fairness: selection-rate ratio, demographic parity and equalized-odds differences",
    requires=("model", "test", "sensitive", "label"),
    severity="high",
    nist_ai_rmf=("MEASURE 2.11", "MAP 2.3", "MANAGE 1.3"),
    tags=("fairness", "bias"),
    regression_title="Group fairness of a regressor: mean-prediction gap and error parity (RMSE ratio, MAE difference)",
    regression_description="Compares the model's mean prediction (in test label sd: the analogue of demographic parity), RMSE and MAE across the groups of each sensitive column (and of pairs of them), each with a bootstrap interval.",
)
def group_fairness(
    ctx: RunContext,
    /,
    *,
    min_selection_rate_ratio: float = 0.8,
    max_demographic_parity_difference: float | None = None,
    max_equalized_odds_difference: float | None = None,
    favorable_label: str | int | float | None = None,
    min_group_size: int = 30,
    intersectional: bool = True,
    bound: Literal["value", "conservative"] = "value",
    n_boot: int = 1000,
    max_mean_prediction_gap: float | None = None,
    max_rmse_ratio: float | None = 1.25,
    max_mae_difference: float | None = None,
) -> Outcome:
    """Compares the model's favourable decisions across the groups of each sensitive column (and
    of pairs of columns, intersectionally, where every compared cell has `min_group_size` rows)
    on the test split.

    Selection rate = share of a group predicted the favourable class. The selection-rate ratio is
    the lowest group rate over the highest (the four-fifths rule fails it below 0.8); demographic
    parity difference = highest − lowest rate; equalized-odds difference = the larger of the
    spreads of true- and false-positive rates. Intervals: percentile bootstrap of the test rows
    (multinomial over group × label × decision cells, so groups resample jointly). Groups smaller
    than `min_group_size` are listed and left out of the comparison (info finding).

    Parameters
    ----------
    min_selection_rate_ratio: smallest acceptable lowest/highest selection-rate ratio (0.8 = four-fifths rule).
    max_demographic_parity_difference: largest acceptable selection-rate spread (none = report only).
    max_equalized_odds_difference: largest acceptable equalized-odds difference (none = report only).
    favorable_label: the class that is the favourable decision; default the second class of a
        binary label (e.g. 1, or "approved" sorted after "denied"); required for multi-class.
    min_group_size: groups with fewer test rows are not compared.
    intersectional: also compare intersections of pairs of sensitive columns.
    bound: `value` (gate on point estimates) or `conservative` (on the unfavourable interval end).
    n_boot: bootstrap resamples.
    max_mean_prediction_gap: regression: largest acceptable highest − lowest group mean prediction,
        in test label standard deviations (the analogue of demographic parity; none = report only).
    max_rmse_ratio: regression: largest acceptable highest / lowest group RMSE (error parity).
    max_mae_difference: regression: largest acceptable highest − lowest group MAE, in test label
        standard deviations (none = report only).

    Regression: per sensitive attribute (and pairwise intersections), the mean-prediction gap, the
    RMSE ratio and the MAE difference between groups, each with a bootstrap interval.
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_perf import fairness_regression

        return fairness_regression(
            ctx, max_mean_prediction_gap=max_mean_prediction_gap, max_rmse_ratio=max_rmse_ratio,
            max_mae_difference=max_mae_difference, min_group_size=min_group_size, intersectional=intersectional,
            bound=bound, n_boot=n_boot,
        )  # fmt: skip
    from auditkit.toolkit.stats import wilson

    test = ctx.dataset("test")
    p = ctx.predictions("test")
    if p.y is None:
        raise NotApplicable("the test split has no labels")
    classes = list(test.classes or [])
    if favorable_label is None:
        if len(classes) != 2:
            raise NotApplicable("multi-class label: set favorable_label to say which decision is favourable")
        fav = 1
    else:
        matches = [i for i, c in enumerate(classes) if c == favorable_label or str(c) == str(favorable_label)]
        if not matches:
            raise SpecError(f"favorable_label {favorable_label!r} is not a class ({classes})")
        fav = matches[0]
    sens = test.sensitive
    if sens.shape[1] == 0:
        raise NotApplicable("no sensitive columns in the test split")
    from auditkit.checks._evaluation import finite, output_problems

    broken, problems = output_problems(ctx, "test")
    if broken is not None:
        return broken
    keep = (p.y >= 0) & np.isfinite(p.proba).all(axis=1)
    y = (p.y == fav).astype(np.int64)
    d = (p.pred == fav).astype(np.int64)
    attributes: dict[str, pd.Series] = {}
    for col in sens.columns:
        s = sens[col]
        if pd.api.types.is_numeric_dtype(s) and s.nunique() > 10:
            s = pd.qcut(s, 4, duplicates="drop").astype(str)
        attributes[col] = s.astype(str).where(s.notna(), "<missing>")
    if intersectional and len(attributes) >= 2:
        for a, b in itertools.combinations(list(attributes)[:4], 2):
            attributes[f"{a} × {b}"] = attributes[a] + " & " + attributes[b]
    rng = ctx.rng()
    metrics, findings, rows = [], list(problems), []
    limits = {
        "selection_rate_ratio": (min_selection_rate_ratio, "higher"),
        "demographic_parity_difference": (max_demographic_parity_difference, "lower"),
        "equalized_odds_difference": (max_equalized_odds_difference, "lower"),
    }
    judged = 0
    for attr, values in attributes.items():
        v = values.to_numpy()[keep]
        levels, codes = np.unique(v, return_inverse=True)
        sizes = np.bincount(codes, minlength=len(levels))
        ok = sizes >= min_group_size
        small = [str(levels[i]) for i in np.flatnonzero(~ok)]
        if small:
            findings.append(
                Finding(
                    f"{attr}: {len(small)} group(s) too small to judge (under {min_group_size} test rows): "
                    f"{', '.join(small[:8])}" + (" ..." if len(small) > 8 else ""),
                    severity="info",
                    key=f"{attr}: small groups",
                )
            )
        if ok.sum() < 2:
            continue
        judged += 1
        g_idx = np.flatnonzero(ok)
        remap = -np.ones(len(levels), dtype=np.int64)
        remap[g_idx] = np.arange(len(g_idx))
        g = remap[codes]
        sel_rows = g >= 0
        G = len(g_idx)
        cells = (g[sel_rows] * 2 + y[keep][sel_rows]) * 2 + d[keep][sel_rows]
        counts = np.bincount(cells, minlength=G * 4).astype(float)
        n = int(counts.sum())
        boot = rng.multinomial(n, counts / n, size=n_boot).astype(float).reshape(n_boot, G, 2, 2)
        point = _summaries(counts.reshape(G, 2, 2))
        dist = _summaries(boot)
        sel, tpr, fpr = _rates(counts.reshape(G, 2, 2))
        cg = counts.reshape(G, 2, 2)
        for i, gi in enumerate(g_idx):
            lo, hi = wilson(int(cg[i, :, 1].sum()), int(cg[i].sum()))
            rows.append(
                [
                    attr,
                    str(levels[gi]),
                    int(sizes[gi]),
                    finite(sel[i]),
                    finite(lo),
                    finite(hi),
                    finite(tpr[i]),
                    finite(fpr[i]),
                ]
            )
        for name, (limit, direction) in limits.items():
            vals = dist[name][np.isfinite(dist[name])]
            ci = (float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))) if len(vals) else None
            m = Metric(
                f"{name}[{attr}]",
                float(point[name]),
                ci=ci,
                n=n,
                threshold=limit,
                direction=direction,  # type: ignore[arg-type]
                bound=bound,
                description=f"{name.replace('_', ' ')} across {attr}",
            )  # type: ignore[arg-type]
            metrics.append(m)
            if m.passed is False:
                lo_g = str(levels[g_idx[int(np.nanargmin(sel))]])
                hi_g = str(levels[g_idx[int(np.nanargmax(sel))]])
                findings.append(
                    Finding(
                        f"{attr}: {m.describe_failure()} (selection rate lowest for {lo_g} {np.nanmin(sel):.3f}, "
                        f"highest for {hi_g} {np.nanmax(sel):.3f})",
                        key=f"{attr}: {name}",
                        metric=m.name,
                    )
                )
    if judged == 0:
        raise NotApplicable(f"no sensitive attribute has two groups with ≥ {min_group_size} test rows")
    fav_name = classes[fav] if classes else fav
    failing = [f for f in findings if f.severity != "info"]
    return Outcome(
        metrics=metrics,
        findings=findings,
        summary=(
            f"{judged} attribute(s) compared on favourable decision {fav_name!r}: "
            + (f"{len(failing)} disparity finding(s)" if failing else "no disparity beyond the thresholds")
        ),
        evidence={
            "groups": {
                "columns": ["attribute", "group", "n", "selection rate", "ci low", "ci high", "TPR", "FPR"],
                "rows": rows[:50],
                "total_rows": len(rows),
            },
            "favorable_label": fav_name,
            "plots": [
                {
                    "type": "bar",
                    "title": "Selection rate per group",
                    "x_label": "group",
                    "y_label": "selection rate",
                    "categories": [f"{r[0]}={r[1]}" for r in rows[:30]],
                    "series": [{"name": "selection rate", "values": [r[3] for r in rows[:30]]}],
                }
            ],
        },
    )
