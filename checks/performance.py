"""Built-in checks: held-out performance, generalisation gap, calibration and slices (AK-PERF-001…004).

Every headline metric carries a 95% interval: Wilson for accuracies of slices, the vectorised
percentile bootstrap of `auditkit.toolkit.stats.bootstrap_metrics` for the rest (seeded by the check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from auditkit.checks._data_preflight import slices_preflight
from auditkit.checks._evaluation import finite, labelled, output_problems, slice_masks
from auditkit.checks._regression_perf import (
    calibration_regression,
    gap_regression,
    heldout_regression,
    slices_regression,
)
from pydantic import Field

from auditkit import (
    DEFAULT_MIN_ROWS,
    Finding,
    Metric,
    NotApplicable,
    Outcome,
    check,
    require_rows,
)
from auditkit.toolkit.imports import lazy

if TYPE_CHECKING:
    import pandas as pd

    from auditkit import RunContext
else:
    pd = lazy("pandas")  # imported when a check first needs it: `auditkit checks` stays fast

_LABELS = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro F1",
    "roc_auc": "ROC AUC", "log_loss": "log loss", "brier": "Brier score", "ece": "ECE (equal-width bins)",
    "adaptive_ece": "ECE (equal-mass bins)", "mce": "MCE",
}  # fmt: skip


@check(
    id="AK-PERF-001",
    area="evaluation",
    title="Held-out performance with confidence intervals against declared minimums",
    requires=("model", "test", "label"),
    severity="high",
    nist_ai_rmf=("MEASURE 2.3", "MEASURE 2.5", "MEASURE 1.1"),
    tags=("performance", "evaluation"),
    regression_title="Held-out RMSE, MAE, median absolute error, R² and MAPE with confidence intervals against declared limits",
    regression_description="RMSE, MAE, median absolute error, R² and (for a positive label) MAPE on the test split, each with a bootstrap 95% interval, gated on the conservative bound against declared limits; the model must beat always predicting the train mean.",
)
def heldout_performance(
    ctx: RunContext,
    /,
    *,
    min_accuracy: float | None = None,
    min_balanced_accuracy: float | None = None,
    min_macro_f1: float | None = None,
    min_roc_auc: float | None = None,
    max_log_loss: float | None = None,
    bound: Literal["value", "conservative"] = "conservative",
    beat_majority: bool = True,
    n_boot: int = 1000,
    min_rows: int = DEFAULT_MIN_ROWS,
    max_rmse: float | None = None,
    max_mae: float | None = None,
    max_median_ae: float | None = None,
    min_r2: float | None = None,
    max_mape: float | None = None,
    beat_mean: bool = True,
) -> Outcome:
    """Accuracy, balanced accuracy, macro F1, ROC AUC (binary, or macro one-vs-rest) and log loss
    on the test split, each with a seeded percentile-bootstrap 95% interval.

    Regression (``model.task: regression``): RMSE, MAE, median absolute error, R² and MAPE (when
    every test label is positive) with bootstrap intervals, gated by the declared `max_*`/`min_r2`
    on the conservative bound; with `beat_mean` it fails unless the RMSE's paired-bootstrap upper
    bound is below that of always predicting the train mean (docs/regression.md).

    With `bound: conservative` (the default) a minimum is met only when the lower end of the 95%
    interval reaches it (the upper end, for log loss): the gate is sure, not lucky. With
    `beat_majority` it also fails when accuracy's lower bound does not beat always predicting the
    majority class of the training split. Rows whose label the model has no output for are left out
    and counted.

    Parameters
    ----------
    min_accuracy: declared minimum accuracy (none = report only).
    min_balanced_accuracy: declared minimum balanced accuracy.
    min_macro_f1: declared minimum macro F1.
    min_roc_auc: declared minimum ROC AUC.
    max_log_loss: declared maximum log loss.
    bound: `conservative` (gate on the unfavourable end of the interval) or `value`.
    beat_majority: fail when accuracy does not beat the majority-class rate.
    n_boot: bootstrap resamples.
    min_rows: fewest labelled test rows to judge on; fewer make the check not applicable, never a pass.
    max_rmse: regression: declared maximum RMSE, in label units (none = report only).
    max_mae: regression: declared maximum mean absolute error, in label units.
    max_median_ae: regression: declared maximum median absolute error, in label units.
    min_r2: regression: declared minimum R².
    max_mape: regression: declared maximum mean absolute percentage error, as a share (0.1 = 10%).
    beat_mean: regression: fail when RMSE does not clearly beat always predicting the train mean.
    """
    if ctx.task == "regression":
        return heldout_regression(
            ctx, max_rmse=max_rmse, max_mae=max_mae, max_median_ae=max_median_ae, min_r2=min_r2,
            max_mape=max_mape, bound=bound, beat_baseline=beat_mean, n_boot=n_boot, min_rows=min_rows,
        )  # fmt: skip
    from auditkit.toolkit.stats import bootstrap_metrics, classification_metrics, describe_method, wilson

    broken, problems = output_problems(ctx, "test")
    if broken is not None:
        return broken
    y, proba, _, dropped = labelled(ctx, "test")
    require_rows(len(y), min_rows, what="held-out performance", split="labelled test")
    names = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss")
    point = classification_metrics(y, proba, which=names)
    if len(np.unique(y)) < 2:
        point["roc_auc"] = float("nan")
    cis = bootstrap_metrics(y, proba, names, n_boot=n_boot, rng=ctx.rng())
    limits = {
        "accuracy": min_accuracy,
        "balanced_accuracy": min_balanced_accuracy,
        "macro_f1": min_macro_f1,
        "roc_auc": min_roc_auc,
        "log_loss": max_log_loss,
    }
    metrics = []
    for m in names:
        direction = "lower" if m == "log_loss" else "higher"
        metrics.append(
            Metric(
                m,
                point[m],
                ci=cis[m],
                n=len(y),
                threshold=limits[m],
                direction=direction,  # type: ignore[arg-type]
                bound=bound,
                description=_LABELS[m],
            )
        )  # type: ignore[arg-type]
    findings = list(problems)
    majority = None
    if beat_majority:
        train_y = ctx.dataset("train").y if "train" in ctx.splits() else None
        ref = train_y[train_y >= 0] if train_y is not None else y
        cls = int(np.bincount(ref).argmax())
        majority = float((y == cls).mean())
        mm = Metric(
            "accuracy_over_majority",
            point["accuracy"] - majority,
            ci=(cis["accuracy"][0] - majority, cis["accuracy"][1] - majority),
            n=len(y),
            threshold=0.0,
            direction="higher",
            bound="conservative",
            description=f"accuracy minus the majority-class rate {majority:.4f} (class {cls})",
        )
        if mm.passed is False:
            findings.append(
                Finding(
                    f"the model does not clearly beat predicting the majority class: accuracy "
                    f"{point['accuracy']:.4f} (95% CI lower bound {cis['accuracy'][0]:.4f}) vs "
                    f"majority rate {majority:.4f}",
                    key="majority",
                    metric=mm.name,
                )
            )
        metrics.append(mm)
    if dropped:
        findings.append(
            Finding(
                f"{dropped} test rows have a label the model has no output for; left out",
                severity="info",
                key="unknown labels",
            )
        )
    declared = [k for k, v in limits.items() if v is not None]
    if not declared:
        findings.append(
            Finding(
                "no minimum performance was declared (params min_accuracy, min_roc_auc, ...): "
                "the metrics are reported, not gated",
                severity="info",
                key="no minimums",
            )
        )
    k = proba.shape[1]
    pred = proba.argmax(1)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    classes = [str(c) for c in (ctx.dataset("test").classes or range(k))][:k]
    per_class = []
    for c in range(k):
        tp, support, predicted = int(cm[c, c]), int(cm[c].sum()), int(cm[:, c].sum())
        prec = tp / predicted if predicted else None
        rec = tp / support if support else None
        f1 = 2 * tp / (support + predicted) if support + predicted else None
        lo, hi = wilson(tp, support) if support else (None, None)
        per_class.append([classes[c], support, finite(prec), finite(rec), finite(lo), finite(hi), finite(f1)])
    evidence_extra = {
        "per class": {
            "columns": ["class", "support", "precision", "recall", "recall ci low", "recall ci high", "F1"],
            "rows": per_class[:50],
            "total_rows": k,
        },
    }
    if k <= 20:
        evidence_extra["confusion matrix (rows: true, columns: predicted)"] = {
            "columns": ["true \\ predicted", *classes],
            "rows": [[classes[i], *map(int, cm[i])] for i in range(k)],
        }
    out = Outcome.from_metrics(
        metrics,
        findings=findings,
        evidence={
            **evidence_extra,
            "method": {**describe_method(len(y)), "n_boot": n_boot, "bound": bound},
            "metrics": {
                "columns": ["metric", "value", "ci low", "ci high", "minimum/maximum"],
                "rows": [
                    [
                        _LABELS[m],
                        finite(point[m]),
                        finite(cis[m][0]),
                        finite(cis[m][1]),
                        "not declared" if limits[m] is None else limits[m],
                    ]
                    for m in names
                ],
            },
        },
    )
    # the majority comparison has its own clearer finding: drop the generated duplicate
    out.findings = [f for f in out.findings if not (f.key == "accuracy_over_majority" and f.metric == f.key)]
    out.summary = (
        f"test accuracy {point['accuracy']:.4f} (95% CI {cis['accuracy'][0]:.4f}–{cis['accuracy'][1]:.4f}), "
        f"ROC AUC {point['roc_auc']:.4f}, n={len(y)}"
        + ("" if declared else "; no performance minimum declared: reported, not gated")
    )
    return out


@check(
    id="AK-PERF-002",
    area="evaluation",
    title="Generalisation gap between train and test",
    requires=("model", "train", "test", "label"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.3"),
    tags=("performance", "overfitting"),
    regression_title="Generalisation gap between train and test (R², RMSE)",
    regression_description="Train R² minus test R², the test/train RMSE ratio and the RMSE difference, with intervals from independent bootstraps of the train and test rows.",
)
def generalisation_gap(
    ctx: RunContext,
    /,
    *,
    max_accuracy_gap: float = 0.05,
    bound: Literal["value", "conservative"] = "value",
    min_rows: int = DEFAULT_MIN_ROWS,
    max_r2_gap: float = 0.1,
    max_rmse_ratio: float | None = None,
    n_boot: int = 1000,
) -> Outcome:
    """Accuracy on train minus accuracy on test (Newcombe's interval for the difference of two
    proportions), and the same gap in log loss (bootstrap intervals per split), to flag
    overfitting. A negative gap (test better than train) is reported, never failed.

    Parameters
    ----------
    max_accuracy_gap: largest acceptable train − test accuracy.
    bound: `value` (gate on the point estimate) or `conservative` (on the interval's upper end).
    min_rows: fewest labelled rows in train and in test to judge on; fewer make the check not applicable.
    max_r2_gap: regression: largest acceptable train R² − test R².
    max_rmse_ratio: regression: largest acceptable test RMSE / train RMSE (none = report only).
    n_boot: regression: bootstrap resamples (train and test resampled independently).

    Regression: train R² − test R² (gated), test/train RMSE ratio and test − train RMSE, each with a
    percentile-bootstrap interval.
    """
    if ctx.task == "regression":
        return gap_regression(
            ctx,
            max_r2_gap=max_r2_gap,
            max_rmse_ratio=max_rmse_ratio,
            bound=bound,
            n_boot=n_boot,
            min_rows=min_rows,
        )
    from auditkit.toolkit.stats import bootstrap_metrics, classification_metrics, newcombe_diff

    broken, problems = output_problems(ctx, "train", "test")
    if broken is not None:
        return broken
    yt, pt, _, _ = labelled(ctx, "train")
    ye, pe, _, _ = labelled(ctx, "test")
    require_rows(len(yt), min_rows, what="the generalisation gap", split="labelled train")
    require_rows(len(ye), min_rows, what="the generalisation gap", split="labelled test")
    kt, nt = int((pt.argmax(1) == yt).sum()), len(yt)
    ke, ne = int((pe.argmax(1) == ye).sum()), len(ye)
    gap = kt / nt - ke / ne
    ci = newcombe_diff(kt, nt, ke, ne)
    ll_t = classification_metrics(yt, pt, which=("log_loss",))["log_loss"]
    ll_e = classification_metrics(ye, pe, which=("log_loss",))["log_loss"]
    rng = ctx.rng()
    ci_t = bootstrap_metrics(yt, pt, ("log_loss",), rng=rng)["log_loss"]
    ci_e = bootstrap_metrics(ye, pe, ("log_loss",), rng=rng)["log_loss"]
    metrics = [
        Metric(
            "accuracy_gap",
            gap,
            ci=ci,
            n=nt + ne,
            threshold=max_accuracy_gap,
            direction="lower",
            bound=bound,
            description="train accuracy − test accuracy",
        ),  # type: ignore[arg-type]
        Metric("train_accuracy", kt / nt, n=nt),
        Metric("test_accuracy", ke / ne, n=ne),
        Metric(
            "log_loss_gap",
            ll_e - ll_t,
            n=nt + ne,
            description="test log loss − train log loss",
            details={"train": ll_t, "train_ci": ci_t, "test": ll_e, "test_ci": ci_e},
        ),
    ]
    return Outcome.from_metrics(
        metrics,
        findings=problems,
        summary=(
            f"train accuracy {kt / nt:.4f} vs test {ke / ne:.4f}: gap {gap:+.4f} (95% CI {ci[0]:+.4f} to {ci[1]:+.4f})"
        ),
        evidence={
            "plots": [
                {
                    "type": "bar",
                    "title": "Train vs test",
                    "x_label": "metric",
                    "y_label": "value",
                    "categories": ["accuracy", "log loss"],
                    "series": [
                        {"name": "train", "values": [kt / nt, ll_t]},
                        {"name": "test", "values": [ke / ne, ll_e]},
                    ],
                }
            ]
        },
    )


@check(
    id="AK-PERF-003",
    area="evaluation",
    title="Calibration: ECE (equal-width and adaptive bins), MCE, Brier, reliability diagram",
    requires=("model", "test", "label"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.3"),
    tags=("performance", "calibration"),
    regression_title="Calibration of predictive intervals: coverage, PIT uniformity, sharpness (gaussian or quantile outputs)",
    regression_description="For a regressor with a predictive distribution (model.output gaussian or quantiles): coverage of the central interval against its nominal level (Wilson interval), uniformity of the PIT (KS distance), sharpness (mean interval width) and CRPS or pinball loss.",
)
def calibration(
    ctx: RunContext,
    /,
    *,
    max_ece: float = 0.05,
    max_brier: float | None = None,
    n_bins: int = 15,
    bound: Literal["value", "conservative"] = "value",
    n_boot: int = 1000,
    min_rows: int = DEFAULT_MIN_ROWS,
    coverage_level: Annotated[float, Field(gt=0, lt=1)] = 0.9,
    max_coverage_gap: float = 0.05,
    max_pit_ks: float | None = 0.1,
) -> Outcome:
    """Top-label calibration on the test split: expected calibration error with equal-width bins
    (Guo et al. 2017, bins (lo, hi]) and with equal-mass bins, maximum calibration error, and the
    Brier score (binary: of the positive class; multi-class: summed over classes), each with a
    bootstrap 95% interval (equal-mass bin edges are fixed on the full sample). Evidence: a
    reliability diagram with Wilson intervals per bin. ECE is biased upwards on small samples: read
    it with its interval.

    Parameters
    ----------
    max_ece: largest acceptable ECE (equal-width bins).
    max_brier: largest acceptable Brier score (none = report only).
    n_bins: number of confidence bins.
    bound: `value` (gate on the point estimate) or `conservative` (on the interval's upper end).
    n_boot: bootstrap resamples.
    min_rows: fewest labelled test rows to judge on; fewer make the check not applicable, never a pass.
    coverage_level: regression, gaussian output: the central interval whose coverage is measured
        (quantile outputs use their outermost levels).
    max_coverage_gap: regression: largest acceptable |coverage − nominal| of that interval.
    max_pit_ks: regression: largest acceptable Kolmogorov–Smirnov distance of the PIT from uniform
        (none = report only).

    Regression: for `model.output: gaussian` or quantiles, interval coverage (Wilson interval),
    PIT histogram uniformity and sharpness (mean interval width); not applicable to point outputs.
    """
    if ctx.task == "regression":
        return calibration_regression(
            ctx, coverage_level=coverage_level, max_coverage_gap=max_coverage_gap, max_pit_ks=max_pit_ks,
            n_bins=min(n_bins, 20), bound=bound, n_boot=n_boot, min_rows=min_rows,
        )  # fmt: skip
    from auditkit.toolkit.stats import bootstrap_metrics, classification_metrics, reliability_diagram

    broken, problems = output_problems(ctx, "test")
    if broken is not None:
        return broken
    y, proba, _, _ = labelled(ctx, "test")
    require_rows(len(y), min_rows, what="calibration", split="labelled test")
    names = ("ece", "adaptive_ece", "mce", "brier")
    point = classification_metrics(y, proba, n_bins=n_bins, which=names)
    cis = bootstrap_metrics(y, proba, names, n_boot=n_boot, rng=ctx.rng(), n_bins=n_bins)
    limits = {"ece": max_ece, "adaptive_ece": None, "mce": None, "brier": max_brier}
    metrics = [
        Metric(
            m,
            point[m],
            ci=cis[m],
            n=len(y),
            threshold=limits[m],
            direction="lower",
            bound=bound,
            description=_LABELS[m],
        )
        for m in names
    ]
    rd = reliability_diagram(y, proba, n_bins)
    table = {
        "columns": ["mean confidence", "accuracy", "count", "ci low", "ci high"],
        "rows": [
            [finite(c), finite(a), n, finite(lo), finite(hi)]
            for c, a, n, lo, hi in zip(
                rd["confidence"], rd["accuracy"], rd["count"], rd["lo"], rd["hi"], strict=True
            )
        ],
    }
    return Outcome.from_metrics(
        metrics,
        findings=problems,
        summary=(
            f"ECE {point['ece']:.4f} (95% CI {cis['ece'][0]:.4f}–{cis['ece'][1]:.4f}), Brier {point['brier']:.4f}, n={len(y)}"
        ),
        evidence={
            "reliability diagram": table,
            "plots": [
                {
                    "type": "line",
                    "title": "Reliability diagram (top-label)",
                    "x_label": "confidence",
                    "y_label": "accuracy",
                    "diagonal": True,
                    "series": [
                        {
                            "name": "model",
                            "x": rd["confidence"],
                            "y": rd["accuracy"],
                            "lo": rd["lo"],
                            "hi": rd["hi"],
                        }
                    ],
                },
                {
                    "type": "bar",
                    "title": "Samples per confidence bin",
                    "x_label": "mean confidence",
                    "y_label": "count",
                    "categories": [f"{c:.2f}" for c in rd["confidence"]],
                    "series": [{"name": "count", "values": rd["count"]}],
                },
            ],
        },
    )


@check(
    id="AK-PERF-004",
    preflight=slices_preflight,
    area="evaluation",
    title="Worst slice vs overall performance",
    requires=("model", "test", "label"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.11", "MEASURE 2.5", "MAP 2.3"),
    tags=("performance", "slices", "fairness"),
    regression_title="Worst slice vs overall RMSE",
    regression_description="RMSE and MAE per slice of the test split (sensitive columns, categorical features, numeric sensitive columns in train quartiles, and the user's `data.slices` queries); the worst slice's RMSE / overall RMSE with a bootstrap interval.",
)
def slice_performance(
    ctx: RunContext,
    /,
    *,
    max_gap: float = 0.1,
    min_slice_size: int = 30,
    bound: Literal["value", "conservative"] = "value",
    max_rmse_ratio: float = 1.25,
    n_boot: int = 500,
) -> Outcome:
    """Accuracy per slice of the test split (sensitive columns, categorical features, numeric
    sensitive columns in train quartiles, and the user's `data.slices` queries), each with a
    Wilson interval, compared with overall accuracy. The worst slice of at least
    `min_slice_size` rows is reported with the gap to overall and Newcombe's interval for it
    (slice vs the rest of the test set); every slice whose gap exceeds `max_gap` is a finding.
    Smaller slices are listed and flagged as too small to judge (info), never silently dropped.

    Parameters
    ----------
    max_gap: largest acceptable overall accuracy − slice accuracy.
    min_slice_size: slices with fewer test rows are reported as too small to judge.
    bound: `value` (gate on the point gap) or `conservative` (on the gap interval's upper end:
        pass only when the slice is surely within max_gap).
    max_rmse_ratio: regression: largest acceptable slice RMSE / overall RMSE.
    n_boot: regression: bootstrap resamples for the ratio's interval (slice and rest resampled independently).

    Regression: RMSE and MAE per slice, the ratio to overall with a bootstrap interval and the
    difference; the worst slice (highest RMSE) is the headline.
    """
    if ctx.task == "regression":
        return slices_regression(
            ctx, max_rmse_ratio=max_rmse_ratio, min_slice_size=min_slice_size, bound=bound, n_boot=n_boot
        )
    from auditkit.toolkit.stats import newcombe_diff, wilson

    broken, problems = output_problems(ctx, "test")
    if broken is not None:
        return broken
    y, proba, mask, _ = labelled(ctx, "test")
    correct = proba.argmax(1) == y
    slices = slice_masks(ctx, "test")
    if not slices:
        raise NotApplicable("no slices: no sensitive columns, categorical features or data.slices")
    n, k = len(y), int(correct.sum())
    overall = k / n
    rows, findings, small = [], list(problems), []
    worst: tuple[float, str, int, int] | None = None
    for name, (attr, smask) in slices.items():
        m = smask[mask]
        ns = int(m.sum())
        if ns == 0:
            continue
        ks = int(correct[m].sum())
        acc = ks / ns
        lo, hi = wilson(ks, ns)
        rest_k, rest_n = k - ks, n - ns
        if rest_n > 0:
            glo, ghi = newcombe_diff(rest_k, rest_n, ks, ns)
        else:
            glo, ghi = (float("nan"), float("nan"))
        gap = overall - acc
        too_small = ns < min_slice_size
        rows.append(
            [
                name,
                attr,
                ns,
                finite(acc),
                finite(lo),
                finite(hi),
                finite(gap),
                "too small" if too_small else "",
            ]
        )
        if too_small:
            small.append(name)
            continue
        compared = gap if bound == "value" else (ghi if np.isfinite(ghi) else gap)
        if compared > max_gap:
            findings.append(
                Finding(
                    f"slice {name}: accuracy {acc:.4f} (95% CI {lo:.4f}–{hi:.4f}, n={ns}) is {gap:.4f} below overall "
                    f"{overall:.4f} (> {max_gap:g})",
                    key=name,
                    metric="worst_slice_gap",
                    evidence={"slice vs rest gap ci": [glo, ghi]},
                )
            )
        if worst is None or acc < worst[0]:
            worst = (acc, name, ks, ns)
    if worst is None:  # nothing was judged: never a pass
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
    metrics = [Metric("overall_accuracy", overall, ci=wilson(k, n), n=n)]
    if worst is not None:
        acc, name, ks, ns = worst
        lo, hi = newcombe_diff(k - ks, n - ns, ks, ns) if n > ns else (float("nan"), float("nan"))
        metrics.append(Metric("worst_slice_accuracy", acc, ci=wilson(ks, ns), n=ns, details={"slice": name}))
        metrics.append(
            Metric(
                "worst_slice_gap",
                overall - acc,
                ci=(lo, hi),
                n=ns,
                threshold=max_gap,
                direction="lower",
                bound=bound,
                description=f"overall − accuracy of {name} (CI: rest of test vs slice)",  # type: ignore[arg-type]
                details={"slice": name},
            )
        )
    rows.sort(key=lambda r: (r[7] == "too small", -float(r[6] or 0)))  # type: ignore[arg-type]
    out = Outcome(
        metrics=metrics,
        findings=findings,
        evidence={
            "slices": {
                "columns": [
                    "slice",
                    "attribute",
                    "n",
                    "accuracy",
                    "ci low",
                    "ci high",
                    "gap to overall",
                    "note",
                ],
                "rows": rows[:50],
                "total_rows": len(rows),
            },
            "plots": [
                {
                    "type": "bar",
                    "title": "Accuracy per slice (judged slices, worst first)",
                    "x_label": "slice",
                    "y_label": "accuracy",
                    "categories": [r[0] for r in rows if r[7] == ""][:30],
                    "series": [{"name": "accuracy", "values": [r[3] for r in rows if r[7] == ""][:30]}],
                }
            ],
        },
    )
    out.summary = (
        f"{len(rows)} slices; worst judged slice {worst[1]} at {worst[0]:.4f} vs overall {overall:.4f}"
        if worst
        else f"{len(rows)} slices, all smaller than {min_slice_size} rows"
    )
    return out
