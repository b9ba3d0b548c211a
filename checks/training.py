"""Built-in checks: training convergence, seed variance and reproducibility, optimizer comparison,
and the compute / energy footprint (AK-TRAIN-001…004)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import DEFAULT_MIN_ROWS, Finding, Metric, NotApplicable, Outcome, check, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext

_MAX_POINTS = 400  # per curve in evidence plots


def _thin(values: list[float]) -> tuple[list[int], list[float | None]]:
    """Step indices and values of a curve, thinned to at most _MAX_POINTS (non-finite → None)."""
    n = len(values)
    idx = (
        list(range(n))
        if n <= _MAX_POINTS
        else np.linspace(0, n - 1, _MAX_POINTS).round().astype(int).tolist()
    )
    return idx, [float(values[i]) if math.isfinite(values[i]) else None for i in idx]


def _runs(ctx: RunContext) -> list[Any]:
    runs = ctx.training_runs()
    if not runs:
        raise NotApplicable("no training runs")
    return runs


def _spikes(loss: np.ndarray, factor: float, window: int, min_abs: float) -> list[int]:
    """Steps whose loss exceeds `factor` × the median of the previous `window` steps plus min_abs."""
    if len(loss) <= window:
        return []
    from numpy.lib.stride_tricks import sliding_window_view

    ref = np.median(sliding_window_view(loss, window)[:-1], axis=1)  # median of the previous `window`
    cur = loss[window:]
    with np.errstate(invalid="ignore"):
        hit = np.isfinite(cur) & (cur > factor * ref + min_abs)
    return (np.flatnonzero(hit) + window).tolist()


def _nanmean(a: np.ndarray) -> float:
    """Mean over the non-NaN values; NaN when there are none (np.nanmean warns then)."""
    vals = a[~np.isnan(a)]
    return float(vals.mean()) if len(vals) else math.nan


@check(
    id="AK-TRAIN-001",
    area="training",
    title="Training convergence and stability (NaN, divergence, loss spikes, exploding gradients)",
    requires=("training", "train"),
    severity="high",
    nist_ai_rmf=("MEASURE 2.1", "MEASURE 2.5"),
    tags=("training", "stability"),
    cost="moderate",
)
def training_stability(
    ctx: RunContext,
    /,
    *,
    max_loss_ratio: float = 1.0,
    spike_factor: float = 5.0,
    spike_window: int = 20,
    spike_min_abs: float = 0.25,
    max_spikes: int = 3,
    max_grad_norm_ratio: float = 1000.0,
) -> Outcome:
    """Trains the spec's main configuration for every seed and inspects the recorded curves.

    A run fails when its loss or gradient norm becomes NaN/inf, when the optimizer or schedule
    raised, when its last-epoch training loss is not below its initial loss (divergence), when the
    loss spikes more than `max_spikes` times, or when gradient norms explode. The initial loss is
    the mean of the first five steps. Evidence: per-step loss, learning rate and gradient norm, and
    per-epoch train/validation loss for every seed.

    Parameters
    ----------
    max_loss_ratio: largest acceptable final-epoch train loss / initial loss (1.0 = must decrease).
    spike_factor: a step is a loss spike when its loss exceeds this multiple of the median of the
        previous `spike_window` steps (plus `spike_min_abs` × the initial loss).
    spike_window: number of previous steps whose median is the reference for spike detection.
    spike_min_abs: absolute margin for spikes, as a share of the initial loss (ignores noise near 0).
    max_spikes: most loss spikes tolerated per run.
    max_grad_norm_ratio: largest acceptable max / median gradient norm within a run (before clipping).
    """
    runs = _runs(ctx)
    rows, findings = [], []
    worst_ratio, worst_spikes, worst_gn = 0.0, 0, 0.0
    bad_nonfinite = 0
    plots_loss, plots_lr, plots_gn, plots_epoch = [], [], [], []
    for run in runs:
        loss = np.asarray(run.step_loss, dtype=float)
        gn = np.asarray(run.step_grad_norm, dtype=float)
        init = _nanmean(loss[: min(5, len(loss))])
        final = run.train_loss[-1] if run.train_loss else math.nan
        if len(run.train_loss) < 2 and len(loss) >= 2:
            # One epoch: its mean loss contains the initial steps, so the ratio is ~1 ("diverged")
            # whatever happened; compare the first and last steps instead.
            w = max(1, min(5, len(loss) // 2))
            init, final = _nanmean(loss[:w]), _nanmean(loss[-w:])
        ratio = (
            final / init if init and math.isfinite(init) and init > 0 and math.isfinite(final) else math.inf
        )
        spikes = _spikes(
            loss, spike_factor, spike_window, spike_min_abs * (init if math.isfinite(init) else 0.0)
        )
        finite_gn = gn[np.isfinite(gn) & (gn > 0)]
        gn_ratio = float(finite_gn.max() / np.median(finite_gn)) if len(finite_gn) else 0.0
        key = f"seed {run.seed}"
        if not run.finite:
            bad_nonfinite += 1
            what = (f"raised {run.error}" if run.error else f"loss or gradient norm became NaN/inf at step "
                    f"{run.nonfinite_step} (lr {run.step_lr[run.nonfinite_step]:.3g})")  # fmt: skip
            findings.append(
                Finding(
                    f"{run.label}: training {what}",
                    key=f"{key}: non-finite",
                    evidence={"step": run.nonfinite_step, "error": run.error},
                )
            )
        elif ratio > max_loss_ratio:
            findings.append(
                Finding(
                    f"{run.label}: training diverged — final-epoch loss {final:.4g} vs initial {init:.4g} "
                    f"(ratio {ratio:.3g} > {max_loss_ratio:g})",
                    key=f"{key}: divergence",
                )
            )
        if len(spikes) > max_spikes:
            findings.append(
                Finding(
                    f"{run.label}: {len(spikes)} loss spikes (> {max_spikes}); first at steps {spikes[:5]}",
                    key=f"{key}: spikes",
                    evidence={"steps": spikes[:50], "total": len(spikes)},
                )
            )
        if gn_ratio > max_grad_norm_ratio:
            findings.append(
                Finding(
                    f"{run.label}: exploding gradients — max/median gradient norm {gn_ratio:.3g} > {max_grad_norm_ratio:g}",
                    key=f"{key}: gradients",
                )
            )
        worst_ratio = max(worst_ratio, ratio)
        worst_spikes = max(worst_spikes, len(spikes))
        worst_gn = max(worst_gn, gn_ratio)
        rows.append(
            [
                run.seed,
                run.epochs_run,
                len(loss),
                _finite(init),
                _finite(final),
                _finite(ratio),
                len(spikes),
                _finite(gn_ratio),
                "yes" if run.finite else "no",
                run.stopped_early,
            ]
        )
        x, y = _thin(run.step_loss)
        plots_loss.append({"name": key, "x": x, "y": y})
        x, y = _thin(run.step_lr)
        plots_lr.append({"name": key, "x": x, "y": y})
        x, y = _thin(run.step_grad_norm)
        plots_gn.append({"name": key, "x": x, "y": y})
        ep = list(range(1, len(run.train_loss) + 1))
        plots_epoch.append({"name": f"{key} train", "x": ep, "y": [_finite(v) for v in run.train_loss]})
        if run.val_loss:
            plots_epoch.append(
                {
                    "name": f"{key} validation",
                    "x": ep[: len(run.val_loss)],
                    "y": [_finite(v) for v in run.val_loss],
                }
            )
    n = len(runs)
    metrics = [
        Metric(
            "nonfinite_runs",
            bad_nonfinite,
            n=n,
            threshold=0,
            direction="lower",
            description="runs whose loss/gradient became NaN/inf or whose optimizer raised",
        ),
        Metric(
            "worst_final_to_initial_loss",
            worst_ratio if math.isfinite(worst_ratio) else None,
            n=n,
            threshold=max_loss_ratio,
            direction="lower",
        ),
        Metric("worst_loss_spikes", worst_spikes, n=n, threshold=max_spikes, direction="lower"),
        Metric("worst_grad_norm_ratio", worst_gn, n=n, threshold=max_grad_norm_ratio, direction="lower"),
    ]
    # the per-run findings above carry the details; drop generated duplicates for the same failure
    outcome = Outcome.from_metrics([], findings=findings, summary="", evidence={})
    outcome.metrics = metrics
    bad = {f.key.split(":")[0] for f in findings if f.key}
    outcome.summary = f"{n} run(s) of {runs[0].optimizer.get('name')}: " + (
        "all converged without NaN, divergence, spikes or exploding gradients"
        if not bad
        else f"{len(bad)} unstable ({', '.join(sorted(bad))})"
    )
    outcome.evidence = {
        "runs": {
            "columns": [
                "seed",
                "epochs",
                "steps",
                "initial loss",
                "final loss",
                "ratio",
                "spikes",
                "grad-norm max/median",
                "finite",
                "stopped early",
            ],
            "rows": rows,
        },
        "plots": [
            {
                "type": "line",
                "title": "Training loss per step",
                "x_label": "step",
                "y_label": "loss",
                "series": plots_loss,
                "log_y": True,
            },
            {
                "type": "line",
                "title": "Learning rate per step",
                "x_label": "step",
                "y_label": "lr",
                "series": plots_lr,
            },
            {
                "type": "line",
                "title": "Gradient norm per step (before clipping)",
                "x_label": "step",
                "y_label": "global L2 norm",
                "series": plots_gn,
                "log_y": True,
            },
            {
                "type": "line",
                "title": "Loss per epoch",
                "x_label": "epoch",
                "y_label": "loss",
                "series": plots_epoch,
            },
        ],
        "config": {
            "optimizer": runs[0].optimizer,
            "schedule": runs[0].schedule,
            "epochs": runs[0].epochs,
            "batch_size": runs[0].batch_size,
            "seeds": [r.seed for r in runs],
        },
    }
    return outcome


def _finite(v: float | None) -> float | None:
    """A value as evidence holds it: full precision (renderers round), None for NaN/inf."""
    if v is None or not math.isfinite(v):
        return None
    return float(v)


def _require_test_rows(ctx: RunContext, min_rows: int) -> None:
    """A test accuracy per run is a proportion: on fewer than ``min_rows`` labelled rows it is not judged."""
    y = ctx.dataset("test").y
    n = int(np.sum(y >= 0)) if y is not None else 0
    require_rows(n, min_rows, what="test accuracy across runs", split="labelled test")


def _test_correct(ctx: RunContext, runs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(runs × test rows) correctness matrix and the labels, for the runs' trained modules."""
    import torch

    test = ctx.dataset("test")
    if test.y is None:
        raise NotApplicable("the test split has no labels")
    keep = test.y >= 0
    x, y = test.x[keep], test.y[keep]
    if len(y) == 0:
        raise NotApplicable("the test split has no labelled rows")
    out = np.zeros((len(runs), len(y)), dtype=bool)
    for i, run in enumerate(runs):
        module = run.module
        if module is None or not run.finite:
            continue  # a diverged run scores 0 (all wrong): it did not produce a usable model
        dev = next(module.parameters()).device
        with torch.inference_mode():
            preds = []
            for s in range(0, len(y), 4096):
                preds.append(module(torch.as_tensor(x[s : s + 4096], device=dev)).argmax(1).cpu().numpy())
        out[i] = np.concatenate(preds) == y
    return out, y


@check(
    id="AK-TRAIN-002",
    area="training",
    title="Seed-to-seed variance of the test metric and same-seed reproducibility",
    requires=("training", "train", "test"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.1", "MEASURE 2.5", "MEASURE 2.9"),
    tags=("training", "reproducibility"),
    cost="moderate",
    regression_description="Measures how much the test RMSE moves between training seeds (sd relative to the mean), and retrains the first seed to see whether the same seed reproduces the same weights.",
)
def seed_variance(
    ctx: RunContext, /, *, max_seed_std: float = 0.02, max_weight_diff: float = 0.0, rerun: bool = True,
    min_rows: int = DEFAULT_MIN_ROWS, max_seed_rmse_cv: float = 0.1,
) -> Outcome:  # fmt: skip
    """Measures how much the test accuracy moves between training seeds, and retrains the first
    seed to see whether the same seed reproduces the same weights.

    The spread is the standard deviation of test accuracy across seeds (with a bootstrap interval
    over seeds when there are ≥ 3); it needs at least two seeds (`training.seeds`). The
    reproducibility test compares every parameter and buffer of the rerun with the original.

    Parameters
    ----------
    max_seed_std: largest acceptable standard deviation of test accuracy across seeds.
    max_weight_diff: largest acceptable absolute weight difference between two runs with the same
        seed (0.0 = bitwise identical).
    rerun: retrain the first seed to test reproducibility (costs one more training run).
    min_rows: fewest labelled test rows to judge on; fewer make the check not applicable, never a pass.
    max_seed_rmse_cv: regression: largest acceptable sd of test RMSE across seeds / its mean.

    Regression: the spread of test RMSE across seeds (sd, relative to the mean RMSE, and range).
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_train import seed_variance_regression

        return seed_variance_regression(
            ctx,
            max_seed_rmse_cv=max_seed_rmse_cv,
            max_weight_diff=max_weight_diff,
            rerun=rerun,
            min_rows=min_rows,
        )
    from auditkit.toolkit import mean_ci, state_distance, wilson

    _require_test_rows(ctx, min_rows)
    runs = _runs(ctx)
    correct, y = _test_correct(ctx, runs)
    accs = correct.mean(axis=1)
    metrics, findings = [], []
    rows = []
    for run, row in zip(runs, correct, strict=True):
        k, n = int(row.sum()), len(row)
        lo, hi = wilson(k, n)
        rows.append([run.seed, _finite(k / n), _finite(lo), _finite(hi), "yes" if run.finite else "no"])
    if len(runs) >= 2:
        std = float(np.std(accs, ddof=1))
        ci = None
        if len(runs) >= 3:
            rng = ctx.rng()
            boots = [np.std(accs[rng.integers(0, len(accs), len(accs))], ddof=1) for _ in range(1000)]
            ci = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))
        metrics.append(
            Metric(
                "seed_std_accuracy",
                std,
                ci=ci,
                n=len(runs),
                threshold=max_seed_std,
                direction="lower",
                description="standard deviation of test accuracy across training seeds",
            )
        )
        metrics.append(
            Metric(
                "seed_range_accuracy",
                float(accs.max() - accs.min()),
                n=len(runs),
                description="best minus worst seed's test accuracy",
            )
        )
        metrics.append(
            Metric("mean_accuracy", float(accs.mean()), ci=mean_ci(accs, rng=ctx.rng()), n=len(runs))
        )
    else:
        findings.append(
            Finding(
                "only one training seed: seed-to-seed variance is not measured "
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
                )
            )
            if not math.isfinite(diff):
                findings.append(
                    Finding(
                        f"seed {first.seed} retrained gives a differently shaped or NaN model",
                        key="same_seed_max_weight_diff",
                    )
                )
    parts = []
    if len(runs) >= 2:
        parts.append(
            f"test accuracy {accs.mean():.4f} ± {np.std(accs, ddof=1):.4f} (sd) over {len(runs)} seeds"
        )
    if diff is not None:
        parts.append(
            "same seed reproduces the weights exactly" if diff == 0 else f"same-seed weight diff {diff:.3g}"
        )
    return Outcome.from_metrics(
        metrics,
        findings=findings,
        summary="; ".join(parts) or "reproducibility not measured",
        evidence={
            "per seed": {"columns": ["seed", "test accuracy", "ci low", "ci high", "finite"], "rows": rows},
            "plots": [
                {
                    "type": "bar",
                    "title": "Test accuracy per seed",
                    "x_label": "seed",
                    "y_label": "accuracy",
                    "categories": [str(r.seed) for r in runs],
                    "series": [{"name": "accuracy", "values": [float(a) for a in accs]}],
                }
            ],
        },
    )


def _steps_to_95(run: Any) -> int | None:
    curve = run.val_metric or run.train_metric
    if not curve:
        return None
    best = max(curve)
    for i, v in enumerate(curve):
        if v >= 0.95 * best:
            return (i + 1) * run.steps_per_epoch
    return None


@check(
    id="AK-TRAIN-003",
    area="training",
    title="Optimizer comparison over training.compare (ablation with a paired test)",
    requires=("training.compare", "train", "test"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.1", "MEASURE 2.5", "MANAGE 2.1"),
    tags=("training", "optimizer"),
    cost="slow",
    regression_description="Trains every `training.compare` optimizer with the same seeds, data, schedule and epochs, and tabulates seed-averaged test RMSE (with a bootstrap interval over test rows), diverged runs and wall time; the chosen optimizer's RMSE relative to each other one with a paired bootstrap.",
)
def optimizer_comparison(
    ctx: RunContext, /, *, min_difference: float = 0.0, n_boot: int = 2000, min_rows: int = DEFAULT_MIN_ROWS
) -> Outcome:
    """Trains every `training.compare` optimizer with the same seeds, data, schedule and epochs,
    and tabulates test accuracy (mean over seeds, with a bootstrap interval over test rows), steps to reach 95% of the best validation
    accuracy, stability (seed sd, diverged runs) and wall time.

    It fails when the chosen optimizer is significantly worse than an alternative on the same test
    rows: a paired bootstrap over test rows of the per-row accuracy difference (averaged over
    seeds), significant when the whole 95% interval lies below `-min_difference`.

    Parameters
    ----------
    min_difference: accuracy deficit that counts as material (0.0 = any significant deficit);
        regression: the relative RMSE excess (0.05 = 5% higher RMSE) that counts as material.
    n_boot: bootstrap resamples of the test rows for the paired interval.
    min_rows: fewest labelled test rows to judge on (checked before any extra training).

    Regression: seed-averaged test RMSE per optimizer, and the chosen one's relative RMSE excess
    over each alternative with a paired bootstrap interval over test rows.
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_train import comparison_regression

        return comparison_regression(ctx, min_difference=min_difference, n_boot=n_boot, min_rows=min_rows)
    _require_test_rows(ctx, min_rows)

    main = _runs(ctx)
    compare = ctx.compare_runs()
    if not compare:
        raise NotApplicable("training.compare is empty")
    configs = [("main", main)] + sorted(compare.items(), key=lambda kv: int(kv[0].split(":")[1]))
    main_correct, y = _test_correct(ctx, main)
    main_row = main_correct.mean(axis=0)
    rows, findings, metrics, timings = [], [], [], []
    rng = ctx.rng()
    n = len(y)
    idx = rng.integers(0, n, size=(n_boot, n))
    chosen = main[0].optimizer.get("name")
    for key, runs in configs:
        correct = main_correct if key == "main" else _test_correct(ctx, runs)[0]
        per_row = correct.mean(axis=0)
        accs = correct.mean(axis=1)
        # interval of the seed-averaged accuracy: bootstrap over test rows (the same resamples for all)
        acc_boot = per_row[idx].mean(axis=1)
        lo, hi = float(np.quantile(acc_boot, 0.025)), float(np.quantile(acc_boot, 0.975))
        steps = [s for s in (_steps_to_95(r) for r in runs) if s is not None]
        name = runs[0].optimizer.get("name")
        label = f"{name} ({key})"
        row = [label, _finite(float(accs.mean())), _finite(lo), _finite(hi),
               _finite(float(np.std(accs, ddof=1))) if len(accs) > 1 else None,
               int(np.median(steps)) if steps else None, sum(not r.finite for r in runs)]  # fmt: skip
        timings.append(
            [
                label,
                _finite(float(np.mean([r.wall_time_s for r in runs]))),
                _finite(float(np.mean([r.samples_per_s for r in runs]))),
            ]
        )
        if key != "main":
            d = main_row - per_row
            boots = d[idx].mean(axis=1)
            dlo, dhi = float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))
            row += [_finite(float(d.mean())), _finite(dlo), _finite(dhi)]
            metrics.append(
                Metric(
                    f"accuracy_difference_vs_{name}_{key.split(':')[1]}",
                    float(d.mean()),
                    ci=(dlo, dhi),
                    n=n,
                    description=f"{chosen} minus {name}, paired over test rows",
                )
            )
            if dhi < -min_difference:
                findings.append(
                    Finding(
                        f"the chosen optimizer {chosen} is significantly worse than {name} on the test set: accuracy "
                        f"difference {d.mean():+.4f} (95% CI {dlo:+.4f} to {dhi:+.4f}, paired over {n} rows)",
                        key=f"{name} ({key})",
                        metric=metrics[-1].name,
                    )
                )
        else:
            row += [None, None, None]
        rows.append(row)
    best = max(rows, key=lambda r: r[1] or 0)
    summary = (
        f"{len(configs)} optimizers × {len(main)} seed(s); best {best[0]} at {best[1]:.4f}; chosen {chosen} "
        + ("is significantly worse than an alternative" if findings else "is not significantly worse")
    )
    columns = [
        "optimizer",
        "test accuracy (mean over seeds)",
        "ci low",
        "ci high",
        "seed sd",
        "steps to 95% of best",
        "diverged runs",
        "chosen − this",
        "diff ci low",
        "diff ci high",
    ]
    series = []
    for key, runs in configs:
        r0 = runs[0]
        curve = r0.val_metric or r0.train_metric
        series.append(
            {
                "name": f"{r0.optimizer.get('name')} ({key})",
                "x": [(i + 1) * r0.steps_per_epoch for i in range(len(curve))],
                "y": [_finite(v) for v in curve],
            }
        )
    return Outcome.from_metrics(
        metrics,
        findings=findings,
        summary=summary,
        evidence={
            "optimizers": {"columns": columns, "rows": rows},
            "timings": {"columns": ["optimizer", "mean wall time s", "mean samples/s"], "rows": timings},
            "plots": [
                {
                    "type": "line",
                    "title": "Validation accuracy during training (first seed)",
                    "x_label": "step",
                    "y_label": "accuracy",
                    "series": series,
                }
            ],
        },
    )


def _audited_runs(ctx: RunContext) -> list[Any]:
    """Every training run the spec makes the audit train, in a fixed order: the main
    configuration's seeds, each ``training.compare`` optimizer's seeds, then the reproducibility
    rerun. A function of the spec alone, so AK-TRAIN-004 reads the same whichever checks run (the
    runs are cached per audit: nothing trains twice when AK-TRAIN-002/003 also run).

    The rerun is counted when the spec has a test split because that is when AK-TRAIN-002 (which
    requires one and reruns by default) trains it; counting it keeps the compute of a default audit
    whole. The price: with AK-TRAIN-002 deselected (or ``rerun: false``) this check still trains
    the rerun, one extra run, to report a footprint that does not depend on the selection."""
    runs = list(_runs(ctx)) + [r for group in ctx.compare_runs().values() for r in group]
    if "test" in ctx.splits():
        runs.append(ctx.rerun())
    return runs


@check(
    id="AK-TRAIN-004",
    area="training",
    title="Compute and estimated energy / CO2eq of training and evaluation",
    requires=("training", "train"),
    severity="low",
    nist_ai_rmf=("MEASURE 2.12",),
    tags=("training", "sustainability"),
)
def compute_footprint(
    ctx: RunContext,
    /,
    *,
    device_watts: float | None = None,
    pue: float = 1.0,
    carbon_intensity_g_per_kwh: float = 475.0,
    location: str = "unspecified",
    max_co2_grams: float | None = None,
) -> Outcome:
    """Reports the compute of the audited training runs (FLOPs from torch's flop counter, wall
    time, samples/s, parameters, peak memory) and evaluation FLOPs on the test split, and estimates
    energy and CO2eq as wall time × assumed device power × PUE × grid carbon intensity.

    The estimate is only as good as its assumptions, which are stated in the evidence; the
    `co2_eq_emissions` block is in Hugging Face model-card format (grams). It counts the main
    configuration's runs (all seeds), every `training.compare` run, and AK-TRAIN-002's same-seed
    rerun when the spec has a test split (see `_audited_runs`): what the spec makes the audit train,
    whichever checks run.

    Parameters
    ----------
    device_watts: assumed average power draw of the device while training; default 300 W for a
        GPU, 15 W per CPU thread used by torch.
    pue: data-centre power usage effectiveness multiplier.
    carbon_intensity_g_per_kwh: grid carbon intensity (default 475 g/kWh, the IEA 2019 world average).
    location: where training ran (free text, goes into co2_eq_emissions.geographical_location).
    max_co2_grams: fail above this many grams CO2eq (none = report only).
    """
    import torch

    runs = _audited_runs(ctx)
    on_gpu = any(r.device.startswith("cuda") for r in runs)
    threads = max(getattr(r, "threads", 1) for r in runs)
    watts = device_watts if device_watts is not None else (300.0 if on_gpu else 15.0 * threads)
    wall = float(sum(r.wall_time_s for r in runs))
    flops = [r.total_flops for r in runs if r.total_flops is not None]
    total_flops = float(sum(flops)) if flops else None
    kwh = wall * watts * pue / 3.6e6
    grams = kwh * carbon_intensity_g_per_kwh
    eval_flops = None
    fwd = runs[0].flops_per_sample_forward
    if fwd is not None and "test" in ctx.splits():
        eval_flops = fwd * len(ctx.dataset("test"))
    rows = [
        [
            r.config,
            r.optimizer.get("name"),
            r.seed,
            r.epochs_run,
            r.samples_seen,
            r.total_flops,
            r.params,
            r.device,
        ]
        for r in runs
    ]
    timings = [
        [r.config, r.seed, _finite(r.wall_time_s), _finite(r.samples_per_s), r.peak_memory_bytes]
        for r in runs
    ]
    co2 = {
        "emissions": grams,
        "source": f"auditkit estimate: {wall:.1f} s × {watts:g} W × PUE {pue:g} × {carbon_intensity_g_per_kwh:g} g/kWh",
        "training_type": "pre-training",
        "geographical_location": location,
        "hardware_used": ("GPU " + torch.cuda.get_device_name(0))
        if on_gpu and torch.cuda.is_available()
        else f"CPU ({threads} torch thread(s))",
    }
    timing = {"timing": True}  # measured on this machine: left out of determinism comparisons
    metrics = [
        Metric(
            "training_flops",
            total_flops,
            n=len(runs),
            unit="FLOP",
            description="forward+backward FLOPs per sample × samples seen, summed over runs",
        ),
        Metric(
            "evaluation_flops_test",
            eval_flops,
            unit="FLOP",
            description="one forward pass over the test split",
        ),
        Metric("parameters", runs[0].params),
        Metric("training_wall_time_s", wall, n=len(runs), unit="s", details=timing),
        Metric(
            "energy_kwh",
            kwh,
            unit="kWh",
            description="estimate: wall time × assumed power × PUE",
            details=timing,
        ),
        Metric(
            "co2eq_grams",
            grams,
            unit="g",
            threshold=max_co2_grams,
            direction="lower" if max_co2_grams is not None else None,
            description="estimate: energy × grid carbon intensity",
            details={**timing, "co2_eq_emissions": co2},
        ),
    ]
    outcome = Outcome.from_metrics(
        metrics,
        summary=f"{len(runs)} training run(s)"
        + (f", {total_flops:.3g} FLOPs" if total_flops else "")
        + f", {runs[0].params} parameters; energy and CO2eq estimated from wall time × {watts:g} W (see metrics)",
        evidence={
            "runs": {
                "columns": [
                    "config",
                    "optimizer",
                    "seed",
                    "epochs",
                    "samples seen",
                    "FLOPs",
                    "params",
                    "device",
                ],
                "rows": rows[:50],
                "total_rows": len(rows),
            },
            "timings": {
                "columns": ["config", "seed", "wall s", "samples/s", "peak memory bytes"],
                "rows": timings[:50],
                "total_rows": len(timings),
            },
            "assumptions": {
                "device_watts": watts,
                "pue": pue,
                "carbon_intensity_g_per_kwh": carbon_intensity_g_per_kwh,
                "location": location,
                "peak_memory": runs[0].peak_memory_kind,
                "flops": "torch.utils.flop_counter.FlopCounterMode on one batch (matmul/conv ops)",
            },
        },
    )
    return outcome
