"""Built-in checks: robustness to natural corruptions and noise (AK-ADV-003).

Images are corrupted in the normalised value range (``model.input.range``, default [0, 1]) at five
deterministic severities, in the spirit of ImageNet-C; tabular rows get Gaussian noise scaled to
each feature's train spread and feature dropout to the train median (mode for categorical codes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from auditkit.checks._corruptions import corruption_setup, corruption_task
from pydantic import Field

from auditkit import DEFAULT_MIN_ROWS, Finding, Metric, Outcome, SpecError, check

if TYPE_CHECKING:
    from auditkit import RunContext


@check(
    id="AK-ADV-003",
    area="robustness",
    title="Robustness to natural corruptions and noise (5 severities)",
    requires=("model", "test"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.6", "MEASURE 2.7"),
    tags=("robustness", "corruption", "noise"),
    cost="moderate",
    regression_title="RMSE under natural corruptions and noise (5 severities), relative to clean",
    regression_description="Test RMSE under natural corruptions at five deterministic severities, and the relative RMSE increase over clean (RMSE / clean − 1, paired bootstrap over the same rows).",
)
def natural_corruptions(
    ctx: RunContext, /, *, split: str = "test", corruptions: list[str] | None = None,
    severities: Annotated[list[Literal[1, 2, 3, 4, 5]], Field(min_length=1)] = [1, 2, 3, 4, 5],  # noqa: B006
    max_relative_error: float = 0.1,
    conservative: bool = False, max_samples: int = 5000, baseline_drops: dict[str, float] | None = None,
    max_relative_mce: float | None = None, min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:  # fmt: skip
    """Accuracy under natural corruptions at five deterministic severities, and the mean relative
    corruption error (mean accuracy lost against clean, over corruptions and severities).

    Images (in the declared value range): Gaussian noise, impulse noise, Gaussian blur, contrast,
    brightness, pixelation, occlusion. Tabular: Gaussian noise with a standard deviation that is a
    share of each numeric feature's train standard deviation (categorical codes and binary columns
    untouched), and feature dropout that replaces values by the train median (mode for categorical
    features). Each corruption × severity gets its accuracy with a Wilson interval; the mean
    relative corruption error gets a bootstrap interval over rows. This is Hendrycks & Dietterich's
    relative corruption error without a baseline model to normalise by. The gate compares it with
    ``max_relative_error`` (its upper 95% bound when ``conservative``). Given ``baseline_drops`` (a
    reference model's mean accuracy drop per corruption, e.g. ``details.per_corruption`` of this
    metric in the previous release's results.json), the check also reports their *Relative mCE*:
    the mean over corruptions of this model's drop divided by the baseline's (below 1: degrades
    less than the baseline), with a bootstrap interval over rows, gated by ``max_relative_mce``.

    Parameters
    ----------
    split: split to corrupt.
    corruptions: corruptions to apply; default all for the input kind (image: gaussian_noise, impulse_noise,
        gaussian_blur, contrast, brightness, pixelate, occlusion; tabular: gaussian_noise, feature_dropout).
    severities: severities to run, from 1 (mild) to 5 (severe).
    max_relative_error: largest acceptable mean accuracy drop from clean (0.1 = 10 points).
    conservative: gate on the upper end of the 95% interval instead of the point estimate.
    max_samples: corrupt a seeded random subsample of at most this many labelled rows.
    baseline_drops: per corruption name, a reference model's mean accuracy drop (> 0) over the same
        severities; enables the Relative mCE metric.
    max_relative_mce: largest acceptable Relative mCE (needs ``baseline_drops``); None reports it ungated.
    min_rows: fewest labelled rows of ``split`` to judge on; fewer make the check not applicable, never a pass.

    Regression: RMSE under each corruption × severity relative to clean RMSE on the same rows
    (paired bootstrap); ``max_relative_error`` bounds the mean relative RMSE increase (0.1 = 10%).
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_robust import corruptions_regression

        return corruptions_regression(
            ctx, split=split, corruptions=corruptions, severities=severities, max_relative_error=max_relative_error,
            conservative=conservative, max_samples=max_samples, min_rows=min_rows,
        )  # fmt: skip
    from auditkit.toolkit import mean_ci, wilson

    adapter = ctx.model()
    rng = ctx.rng()
    setup = corruption_setup(ctx, split, corruptions, severities, max_samples, rng, min_rows=min_rows)
    x, y, kind, table, names = setup.x, setup.y, setup.kind, setup.table, setup.names
    if baseline_drops is not None:
        missing = [c for c in names if c not in baseline_drops]
        if missing or any(not float(baseline_drops[c]) > 0 for c in names):
            raise SpecError(f"baseline_drops needs a positive drop for every corruption run ({names}); "
                             f"missing {missing}" if missing else "baseline_drops values must be > 0")  # fmt: skip
    elif max_relative_mce is not None:
        raise SpecError("max_relative_mce needs baseline_drops (a reference model's drop per corruption)")
    clean = adapter.predict(x) == y
    n = len(y)
    rows: list[list[Any]] = []
    correct = np.zeros((n, len(names), len(severities)), dtype=bool)
    series = []
    # One compute task per corruption × severity (docs/compute.md), combined in grid order; each
    # corruption's generator comes from (check seed, corruption, severity), so the numbers are the
    # same whatever ran the tasks. The model and the rows travel once.
    grid = [(ci, si) for ci in range(len(names)) for si in range(len(severities))]
    for (ci, si), ok in zip(
        grid, ctx.map(corruption_task, grid, shared=(adapter, setup, ctx.seed)), strict=True
    ):
        correct[:, ci, si] = ok
    for ci, name in enumerate(names):
        accs, los, his = [], [], []
        for si, sev in enumerate(severities):
            k = int(correct[:, ci, si].sum())
            lo_ci, hi_ci = wilson(k, n)
            accs.append(k / n)
            los.append(lo_ci)
            his.append(hi_ci)
            rows.append([name, sev, table[name][sev - 1], float(k / n), float(lo_ci), float(hi_ci),
                         round(float(clean.mean()) - k / n, 4), n])  # fmt: skip
        series.append({"name": name, "x": list(severities), "y": accs, "lo": los, "hi": his})
    drop_per_row = clean.astype(float) - correct.reshape(n, -1).mean(axis=1)
    mrce = float(drop_per_row.mean())
    ci_mrce = mean_ci(drop_per_row, rng=np.random.default_rng(ctx.seed))
    acc, acc_ci = float(clean.mean()), wilson(int(clean.sum()), n)
    per_corr = (clean.mean() - correct.mean(axis=0).mean(axis=1)).tolist()
    metrics = [
        Metric("clean_accuracy", acc, ci=acc_ci, n=n),
        Metric("mean_corruption_accuracy", float(correct.mean()), ci=mean_ci(correct.reshape(n, -1).mean(axis=1),
               rng=np.random.default_rng(ctx.seed + 1)), n=n, description="accuracy averaged over corruptions and severities"),
        Metric("mean_relative_corruption_error", mrce, ci=ci_mrce, n=n, threshold=max_relative_error, direction="lower",
               bound="conservative" if conservative else "value",
               description="mean over corruptions and severities of (clean accuracy − corrupted accuracy)",
               details={"per_corruption": dict(zip(names, per_corr, strict=True))}),
    ]  # fmt: skip
    if baseline_drops is not None:
        base = np.array([float(baseline_drops[c]) for c in names])
        # Σ_s(E_s − E_clean) / Σ_s(E_s,base − E_clean,base) per corruption, averaged: linear in rows.
        rel_row = ((clean.astype(float)[:, None] - correct.mean(axis=2)) / base).mean(axis=1)
        metrics.append(Metric(
            "relative_mce", float(rel_row.mean()), ci=mean_ci(rel_row, rng=np.random.default_rng(ctx.seed + 2)), n=n,
            threshold=max_relative_mce, direction="lower", bound="conservative" if conservative else "value",
            description="mean over corruptions of (this model's accuracy drop / the baseline's drop)",
            details={"per_corruption": {c: d / b for c, d, b in zip(names, per_corr, base, strict=True)},
                     "baseline_drops": dict(zip(names, base.tolist(), strict=True))},
        ))  # fmt: skip
    worst = int(np.argmax(per_corr))
    findings = [Finding(
        f"Most damaging corruption: {names[worst]} (mean accuracy drop {per_corr[worst]:.3f} over severities "
        f"{severities})", severity="info", key=f"corruption:{names[worst]}",
    )]  # fmt: skip
    evidence = {
        "accuracy by corruption and severity": {
            "columns": ["corruption", "severity", "parameter", "accuracy", "ci_low", "ci_high", "drop", "n"], "rows": rows},
        "plots": [
            {"type": "line", "title": "Accuracy under corruption", "x_label": "severity", "y_label": "accuracy",
             "series": series},
            {"type": "bar", "title": "Mean accuracy drop per corruption", "x_label": "corruption",
             "y_label": "accuracy drop", "categories": names, "series": [{"name": "drop", "values": per_corr}]},
        ],
        "setup": {"kind": kind, "samples": n, "severity_parameters": {c: table[c] for c in names}},
    }  # fmt: skip
    summary = (f"Clean accuracy {acc:.3f}; mean accuracy {float(correct.mean()):.3f} over {len(names)} corruptions × "
               f"{len(severities)} severities; mean relative corruption error {mrce:.3f} (n={n}).")  # fmt: skip
    return Outcome.from_metrics(metrics, summary=summary, findings=findings, evidence=evidence)
