"""Built-in checks: out-of-distribution detection (AK-OOD-001) and behaviour under shift (AK-OOD-002).

Score convention used throughout: every detector returns an *OOD score*, higher = more likely
out-of-distribution. AUROC and AUPR-Out treat OOD as the positive class; AUPR-In treats
in-distribution (ID) as positive with the score negated. AUROC does not depend on that choice
(flipping the positive class and the score sign together leaves it unchanged). FPR at 95% TPR
does, so the convention is a parameter and is written into every result.

Heavy libraries (torch, faiss, scipy) are imported inside functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from auditkit.checks._ood_data import IMAGE_SHIFTS, TABULAR_SHIFTS, ShiftName, SyntheticSet
from auditkit.checks._ood_detection import (
    detection_evidence,
    gate_metrics,
    measure,
    notes_and_best,
    score_sets,
    threshold_rows,
)
from auditkit.checks._ood_detectors import DEFAULT_DETECTORS, ODIN_EPS_GRID, Detector, fit_detectors
from auditkit.checks._ood_shift import (
    clean_test,
    production_shift,
    selective_prediction,
    shift_evidence,
    synthetic_shifts,
)
from pydantic import Field

from auditkit import DEFAULT_MIN_ROWS, Finding, NotApplicable, Outcome, SpecError, check, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext

# Parameter domains, validated by the engine before anything runs (exit 2, one located line).
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]  # open interval (0, 1)
Positive = Annotated[float, Field(gt=0.0)]
AtLeast1 = Annotated[int, Field(ge=1)]
Severity = Annotated[int, Field(ge=1, le=5, strict=True)]
Detectors = Annotated[tuple[Detector, ...], Field(min_length=1)]


# ---------------------------------------------------------------------------------------------
# AK-OOD-001
# ---------------------------------------------------------------------------------------------


@check(
    id="AK-OOD-001",
    area="ood",
    title="Out-of-distribution detection: softmax, energy, feature-space and activation-shaping detectors",
    requires=("model", "train", "test"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.6", "MAP 2.3", "MANAGE 2.3"),
    tags=("ood", "robustness", "model"),
    cost="moderate",
    regression_title="Out-of-distribution detection for a regressor: feature-space detectors (Mahalanobis, kNN)",
    regression_description="How well distances in feature space (Mahalanobis to one Gaussian, distance to the k-th nearest train row, on embeddings or z-scored inputs) separate in-distribution test inputs from out-of-distribution ones; logit-based detectors need classes.",
)
def ood_detection(
    ctx: RunContext,
    /,
    *,
    detectors: Detectors = DEFAULT_DETECTORS,
    gate_detector: Detector | None = "mahalanobis",
    min_auroc: float = 0.8,
    gate_sets: tuple[str, ...] | None = None,
    synthetic: tuple[SyntheticSet, ...] | None = None,
    fpr_convention: Literal["in", "out"] = "in",
    tpr: Fraction = 0.95,
    knn_k: AtLeast1 = 10,
    knn_backend: Literal["torch", "faiss"] = "torch",
    outlier_scale: float = 5.0,
    holdout_fraction: Fraction = 0.2,
    max_samples: int = 5000,
    n_boot: int = 200,
    react_percentile: Fraction = 0.9,
    ash_percentile: Fraction = 0.9,
    dice_sparsity: Fraction = 0.9,
    vim_dim: AtLeast1 | None = None,
    odin_temperature: Positive = 1000.0,
    odin_eps: Annotated[tuple[Annotated[float, Field(ge=0.0)], ...], Field(min_length=1)] = ODIN_EPS_GRID,
    gen_gamma: Positive = 0.1,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:
    """How well the model's scores separate in-distribution test inputs from out-of-distribution ones.

    Detectors, each an OOD score (higher = more OOD; the paper of each is in the evidence and in
    docs/ood.md): maximum softmax probability, max logit, energy (−logsumexp of the logits), GEN
    (generalised entropy of the softmax), ODIN (temperature-scaled MSP after an input step; opt-in:
    it needs a gradient per input), Mahalanobis and relative Mahalanobis (class Gaussians on the
    penultimate features, the latter minus one background Gaussian), kNN (distance to the k-th
    nearest L2-normalised train embedding), ViM (virtual logit from the feature residual), and three
    that reshape the penultimate activations before the model's own last layer and take the energy:
    ReAct (clipped), ASH-S (pruned and rescaled per input), DICE (sparsified head weights). Every
    fitted hyperparameter (ReAct's clip, DICE's mask, ViM's subspace and scale, ODIN's step) comes
    from train or held-out ID data only, never from an OOD set. OOD data: the ``ood`` split when the audit has one; otherwise
    synthetic sets fitted to the input kind, each reported on its own (images: uniform noise,
    Gaussian noise with the train pixel mean/sd, inverted and pixel-shuffled test images; tabular:
    uniform samples in the train box, test rows with every column shuffled independently, test rows
    scaled away from the train mean). Metrics per set and detector: AUROC and AUPR-Out (OOD
    positive), AUPR-In (ID positive) and FPR at ``tpr`` TPR, with 95% bootstrap intervals (ID and
    OOD resampled separately). Deployment thresholds are set on held-out ID data only (the
    ``validation`` split, else a seeded part of train left out of the detector fit) so that
    ``tpr`` of it is kept; the share of test ID kept and of OOD accepted at them is reported.
    Gate: for each gated OOD set, the lower 95% bound of the declared detector's AUROC must reach
    ``min_auroc`` (conservative bound). The detector is declared in advance, never picked on the
    test OOD sets. By default every set is gated except column_shuffled: shuffling columns that
    are independent gives in-distribution rows, so that set is measured and reported only.

    Parameters
    ----------
    detectors: detectors to run, any of msp, max_logit, energy, gen, odin, mahalanobis,
        relative_mahalanobis, knn, vim, react, ash, dice.
    gate_detector: the detector whose AUROC is gated (one of ``detectors``); null reports without a gate.
    min_auroc: smallest acceptable lower 95% bound of the gated detector's AUROC on each gated OOD set.
    gate_sets: OOD sets whose AUROC is gated (names as reported: "ood" or synthetic set names);
        default every set except column_shuffled.
    synthetic: synthetic OOD sets to build when there is no ``ood`` split; default all for the input
        kind (images: uniform_noise, gaussian_noise, inverted, pixel_shuffled; tabular: uniform_box,
        column_shuffled, scaled_outliers).
    fpr_convention: "in" (ID positive, ODIN/Energy papers: share of OOD accepted when ``tpr`` of ID
        is kept) or "out" (OOD positive, OpenOOD: share of ID flagged when ``tpr`` of OOD is caught).
    tpr: true-positive rate for FPR@TPR and for the held-out deployment threshold.
    knn_k: which nearest neighbour's distance is the kNN score.
    knn_backend: exact kNN search with "torch" (blocked matrix products on the model's device) or "faiss" (IndexFlatIP, CPU).
    outlier_scale: factor by which the scaled_outliers set moves numeric features away from the train mean.
    holdout_fraction: share of train held out (seeded) for thresholds when there is no validation split.
    max_samples: at most this many ID test rows and OOD rows per set are scored (seeded subsample, reported).
    n_boot: bootstrap resamples for the intervals (the same resamples for every detector, so that
        AUROC differences between detectors get paired intervals).
    react_percentile: ReAct clips penultimate activations at this quantile of train's (paper: 0.9).
    ash_percentile: share of each input's activations ASH-S prunes (paper: 0.9).
    dice_sparsity: share of the head's weight contributions DICE zeroes (paper: 0.9).
    vim_dim: ViM's principal-subspace dimension; null: the paper's rule (D/2 below 768 features).
    odin_temperature: ODIN's softmax temperature (paper: 1000).
    odin_eps: ODIN's input-step grid (units of the input range, or of each feature's train sd for
        tabular data); the step with the highest mean scaled MSP on held-out ID data is used.
    gen_gamma: GEN's exponent γ (paper: 0.1; the top 100 classes are summed, as in the paper).
    min_rows: fewest test rows (and ood rows) to judge detection on; fewer make the check not applicable.
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_ood import ood_detection_regression

        return ood_detection_regression(
            ctx, detectors=detectors, gate_detector=gate_detector, min_auroc=min_auroc, gate_sets=gate_sets,
            synthetic=synthetic, fpr_convention=fpr_convention, tpr=tpr, knn_k=knn_k,
            outlier_scale=outlier_scale, max_samples=max_samples, n_boot=n_boot, min_rows=min_rows,
        )  # fmt: skip
    if gate_detector is not None and gate_detector not in detectors:
        raise SpecError(f"gate_detector {gate_detector!r} is not among detectors {list(detectors)}")
    test = ctx.dataset("test")
    require_rows(len(test), max(min_rows, 2), what="OOD detection", split="test")
    if "ood" in ctx.splits():
        require_rows(len(ctx.dataset("ood")), max(min_rows, 1), what="OOD detection", split="ood")
    test_logits = ctx.predictions("test").logits
    if test_logits.ndim != 2 or test_logits.shape[1] < 2:
        raise NotApplicable("the model has a single output: softmax-based detectors need class logits")
    rng = ctx.rng()
    hyper = {"react_percentile": react_percentile, "ash_percentile": ash_percentile, "dice_sparsity": dice_sparsity,
             "vim_dim": vim_dim, "odin_temperature": odin_temperature, "odin_eps": list(odin_eps),
             "gen_gamma": gen_gamma}  # fmt: skip
    # Compute: detectors fitted on ID data only, then every detector on every OOD set.
    fitted = fit_detectors(ctx, list(detectors), knn_k=knn_k, knn_backend=knn_backend,
                           holdout_fraction=holdout_fraction, rng=rng, hyper=hyper)  # fmt: skip
    scored = score_sets(ctx, fitted, synthetic=None if synthetic is None else list(synthetic),
                        outlier_scale=outlier_scale, max_samples=max_samples, rng=rng)  # fmt: skip
    sets = scored.sets
    gated_sets = set(gate_sets) if gate_sets is not None else {s for s in sets if s != "column_shuffled"}
    if gated_sets - set(sets):
        raise SpecError(f"gate_sets {sorted(gated_sets - set(sets))} are not among the OOD sets {list(sets)}")
    thresholds = {
        d: float(np.quantile(fitted.holdout_scores[d], tpr)) for d in fitted.detectors
    }  # held-out ID
    measured = measure(scored, fitted.detectors, thresholds, n_boot=n_boot, tpr=tpr, rng=rng)
    # Judge: the declared detector only, never one picked on the test OOD sets.
    metrics = []
    if gate_detector is not None and gate_detector in fitted.detectors:
        metrics = gate_metrics(scored, measured, gate_detector, gated_sets, min_auroc=min_auroc, tpr=tpr,
                               fpr_convention=fpr_convention)  # fmt: skip
    id_rows, kept = threshold_rows(scored, fitted.detectors, thresholds, gate_detector, tpr)
    best, findings = notes_and_best(measured, fitted, gate_detector, scored.notes)
    # Evidence.
    evidence = detection_evidence(scored, measured, fitted, gate_detector=gate_detector, gated_sets=gated_sets,
                                  threshold_table=id_rows, fpr_convention=fpr_convention, tpr=tpr, n_boot=n_boot)  # fmt: skip
    results = measured.results
    summary_bits = [
        f"{s}: best {best[s]} AUROC {results[s][best[s]]['auroc'][0]:.3f}"
        + (
            f", gated {gate_detector} {results[s][gate_detector]['auroc'][0]:.3f}"
            if gate_detector in results[s]
            else ""
        )
        for s in sets
    ]
    return Outcome.from_metrics(metrics + kept, summary=f"OOD detection vs {scored.source}: " + "; ".join(summary_bits),
                                findings=findings, evidence=evidence)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# AK-OOD-002
# ---------------------------------------------------------------------------------------------


@check(
    id="AK-OOD-002",
    area="ood",
    title="Accuracy, calibration and selective prediction under distribution shift",
    requires=("model", "train", "test", "label"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.6", "MEASURE 2.4", "MANAGE 2.3"),
    tags=("ood", "shift", "calibration", "robustness", "model"),
    cost="moderate",
    regression_title="RMSE under distribution shift (synthetic covariate shifts or a labelled production split)",
    regression_description="Test RMSE when inputs shift (synthetic shifts at five severities, or a labelled production split), and the relative RMSE increase over clean with a bootstrap interval.",
)
def shift_behaviour(
    ctx: RunContext,
    /,
    *,
    shifts: tuple[ShiftName, ...] | None = None,
    severities: Annotated[tuple[Severity, ...], Field(min_length=1)] = (1, 2, 3, 4, 5),
    gate_severity: Severity = 2,
    max_accuracy_drop: float | None = 0.1,
    max_ece: float | None = 0.15,
    max_rmse_increase: float | None = 0.25,
    use_production: bool = True,
    n_bins: AtLeast1 = 15,
    detectors: Detectors = ("msp", "max_logit", "energy", "mahalanobis", "knn"),
    coverage: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8,
    max_selective_risk: float | None = None,
    knn_k: AtLeast1 = 10,
    knn_backend: Literal["torch", "faiss"] = "torch",
    holdout_fraction: Fraction = 0.2,
    max_samples: int = 5000,
    n_boot: int = 200,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:
    """Accuracy and calibration when inputs shift, and what abstaining on OOD-looking inputs buys.

    Shifted data: a labelled ``production`` split when the audit has one (and ``use_production``);
    otherwise synthetic covariate shifts of the test inputs at severities 1–5 (images: Gaussian
    noise with sd 0.08–0.38 of the value range, contrast reduced to 0.4–0.05 of each image's
    spread, brightness +0.1–0.5 of the range, clipped; tabular, numeric features in train standard
    deviations: Gaussian noise 0.1–2 sd, a mean shift of 0.1–2 sd (+ on even-numbered, − on
    odd-numbered features), spread scaled by 1.1–3). For each: accuracy (Wilson interval), accuracy drop against the clean test
    set (paired bootstrap for synthetic shifts) and expected calibration error (equal-width bins,
    bootstrap interval). Gate: at ``gate_severity`` (or on production) the drop must stay within
    ``max_accuracy_drop`` and ECE within ``max_ece`` (point estimates). Selective prediction: every
    detector of AK-OOD-001 ranks inputs; the best is chosen by area under the risk–coverage curve
    (AURC) on the validation split, or on a seeded half of the test set when there is none (the
    curve is then reported on the other half); its risk at ``coverage`` and AURC are reported on
    clean test data and on the shifted data (at ``gate_severity``, all shifts pooled).

    Parameters
    ----------
    shifts: synthetic shifts to apply; default all for the input kind (images: gaussian_noise,
        contrast, brightness; tabular: gaussian_noise, mean_shift, scale).
    severities: severities (integers 1–5) at which each synthetic shift is measured.
    gate_severity: severity whose accuracy drop and ECE are gated (must be among ``severities``).
    max_accuracy_drop: largest acceptable accuracy drop from clean test to shifted data; null: no gate.
    max_ece: largest acceptable expected calibration error on shifted data; null: no gate.
    max_rmse_increase: regression only: largest acceptable relative RMSE increase from clean test to
        shifted data (0.25 = a quarter more); null: no gate.
    use_production: use a labelled production split as the shifted data when there is one.
    n_bins: equal-width confidence bins for ECE.
    detectors: detectors compared for selective prediction (any of AK-OOD-001's, with their paper
        default hyperparameters).
    coverage: share of inputs kept when reporting selective risk.
    max_selective_risk: largest acceptable error rate at ``coverage`` on shifted data; null: reported only.
    knn_k: which nearest neighbour's distance is the kNN score.
    knn_backend: exact kNN search with "torch" (blocked matrix products on the model's device) or "faiss" (IndexFlatIP, CPU).
    holdout_fraction: share of train held out of the detector fit when there is no validation split.
    max_samples: at most this many labelled test rows are used (seeded subsample, reported).
    n_boot: bootstrap resamples for the intervals.
    min_rows: fewest labelled test rows with a finite output to judge on; fewer make the check not applicable.
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_ood import shift_regression

        return shift_regression(
            ctx, shifts=shifts, severities=severities, gate_severity=gate_severity,
            max_rmse_increase=max_rmse_increase, use_production=use_production, max_samples=max_samples,
            n_boot=n_boot, min_rows=min_rows,
        )  # fmt: skip
    rng = ctx.rng()
    # Compute: clean test, then production or synthetic shifts of the same rows (paired).
    clean = clean_test(ctx, n_bins=n_bins, max_samples=max_samples, n_boot=n_boot, min_rows=min_rows, rng=rng)
    prod = ctx.dataset("production") if use_production and "production" in ctx.splits() else None
    production = prod is not None and prod.y is not None and bool(np.any(prod.y >= 0))
    gates = {"max_accuracy_drop": max_accuracy_drop, "max_ece": max_ece}
    if prod is not None and production:
        shifted = production_shift(ctx, prod, clean, n_bins=n_bins, max_samples=max_samples, n_boot=n_boot,
                                   rng=rng, **gates)  # fmt: skip
    else:
        if gate_severity not in severities:
            raise SpecError(f"gate_severity {gate_severity} is not among severities {list(severities)}")
        table = IMAGE_SHIFTS if ctx.model_input.kind == "image" else TABULAR_SHIFTS
        names: list[str] = list(shifts) if shifts is not None else list(table)
        if not names:
            raise NotApplicable("no labelled production split and no synthetic shifts requested")
        shifted = synthetic_shifts(ctx, names, list(severities), gate_severity, clean, n_bins=n_bins, **gates)
    # Selective prediction: the detector chosen on held-out data, reported on test and shifted data.
    fitted = fit_detectors(ctx, list(detectors), knn_k=knn_k, knn_backend=knn_backend,
                           holdout_fraction=holdout_fraction, rng=rng)  # fmt: skip
    sel = selective_prediction(ctx, fitted, clean, shifted, production=production, coverage=coverage,
                               gate_severity=gate_severity, max_selective_risk=max_selective_risk, n_boot=n_boot,
                               rng=rng)  # fmt: skip
    # Judge (Outcome.from_metrics: each metric against its threshold) and evidence.
    findings = [
        Finding(n, severity="info", key="note:" + n.split(":")[0][:40]) for n in clean.notes + fitted.notes
    ]
    evidence = shift_evidence(shifted, sel, coverage=coverage, n_bins=n_bins)
    rows = shifted.rows
    worst = max(rows, key=lambda r: r[3] if r[3] is not None else -1) if rows else None
    summary = f"clean accuracy {clean.acc:.3f}, ECE {clean.ece:.3f}; shifts: {shifted.source}"
    if worst:
        summary += (
            f"; largest drop {worst[3]:.3f} ({worst[0]}{'' if worst[1] is None else ' @' + str(worst[1])})"
        )
    summary += (
        f"; abstaining with {sel.best}: risk {sel.rows[0][3]:.3f} at {coverage:.0%} coverage on clean test"
    )
    return Outcome.from_metrics(clean.metrics + shifted.metrics + sel.metrics, summary=summary, findings=findings,
                                evidence=evidence)  # fmt: skip
