"""AK-OOD-001 helpers: score the ID test rows and every OOD set, measure each detector, judge the
declared one, write the evidence. ``checks/ood.py`` calls them in that order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from auditkit.checks._ood_data import IMAGE_SETS, TABULAR_SETS, subsample, synthetic_ood_sets
from auditkit.checks._ood_detectors import PAPERS, Fitted, logits_and_embeddings, safe_embeddings
from auditkit.checks._ood_metrics import (
    boot_weights,
    detection_metrics_ci,
    fitted_text,
    num,
    roc_points,
    selection_summary,
)

from auditkit import Finding, Metric, NotApplicable
from auditkit.toolkit import lazy

if TYPE_CHECKING:
    from auditkit import RunContext

# scipy, imported when a check first computes (not by `auditkit checks`)
stats = lazy("auditkit.toolkit.stats")


@dataclass
class Scored:
    """OOD scores per detector of the (subsampled) ID test rows and of every OOD set."""

    id_scores: dict[str, np.ndarray]
    sets: dict[str, dict[str, np.ndarray]]
    n_test: int  # test rows scored
    source: str
    notes: list[str]


def score_sets(
    ctx: RunContext, fitted: Fitted, *, synthetic: list[str] | None, outlier_scale: float, max_samples: int,
    rng: np.random.Generator,
) -> Scored:  # fmt: skip
    """Scores of test (ID) and of the ``ood`` split, or of synthetic sets built from test rows."""
    model, train, test = ctx.model(), ctx.dataset("train"), ctx.dataset("test")
    features = fitted.uses_features
    idx = subsample(len(test), max_samples, rng)
    test_emb = safe_embeddings(lambda: ctx.embeddings("test")) if features else None
    id_scores = fitted.scores(
        ctx.predictions("test").logits[idx], test_emb[idx] if test_emb is not None else None,
        fitted.inputs(test.x, idx),
    )  # fmt: skip
    kind = ctx.model_input.kind
    notes = list(fitted.notes)
    if "ood" in ctx.splits():
        ood = ctx.dataset("ood")
        if len(ood) == 0:
            raise NotApplicable("the ood split is empty")
        o_idx = subsample(len(ood), max_samples, rng)
        o_logits = ctx.predictions("ood").logits[o_idx]
        o_emb = safe_embeddings(lambda: ctx.embeddings("ood")) if features else None
        sets = {"ood": fitted.scores(o_logits, o_emb[o_idx] if o_emb is not None else None,
                                     fitted.inputs(ood.x, o_idx))}  # fmt: skip
        sizes = {"ood": (len(o_idx), len(ood))}
        source = "the audit's ood split"
    else:
        names = synthetic if synthetic is not None else list(IMAGE_SETS if kind == "image" else TABULAR_SETS)
        if not names:
            raise NotApplicable("no ood split and no synthetic sets requested")
        arrays = synthetic_ood_sets(ctx, kind, test.x[idx], train, names, rng, outlier_scale=outlier_scale)
        sets, sizes = {}, {}
        for name, x in arrays.items():
            logits, emb = logits_and_embeddings(model, x, features)
            sets[name] = fitted.scores(logits, emb, x)
            sizes[name] = (len(x), len(x))
        source = f"synthetic sets for {kind} inputs (no ood split)"
    if len(idx) < len(test):
        notes.append(f"scored a seeded subsample of {len(idx)} of {len(test)} test rows (max_samples)")
    for name, (used, total) in sizes.items():
        if used < total:
            notes.append(f"scored a seeded subsample of {used} of {total} rows of {name} (max_samples)")
    return Scored(id_scores, sets, len(idx), source, notes)


@dataclass
class Measured:
    """Per OOD set and detector: each metric as (value, 95% interval) and the OOD accepted count."""

    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    rows: list[list[Any]] = field(default_factory=list)  # the detection table
    fpr_rows: list[list[Any]] = field(default_factory=list)  # FPR@TPR with intervals, both conventions
    selection: list[list[Any]] = field(default_factory=list)  # ranking by AUROC, paired differences


def measure(
    scored: Scored, detectors: list[str], thresholds: dict[str, float], *, n_boot: int, tpr: float,
    rng: np.random.Generator,
) -> Measured:  # fmt: skip
    """Every detector on every set; one set of resamples per OOD set, shared by every detector
    (paired AUROC differences)."""
    out = Measured()
    for set_name, ood_scores in scored.sets.items():
        out.results[set_name] = {}
        n_in, n_out = scored.n_test, len(next(iter(ood_scores.values())))
        shared = (boot_weights(n_in, n_boot, rng), boot_weights(n_out, n_boot, rng)) if n_boot > 0 else None
        set_boots: dict[str, dict[str, np.ndarray]] = {}
        for det in detectors:
            s_in, s_out = scored.id_scores[det], ood_scores[det]
            set_boots[det] = {}
            m = detection_metrics_ci(s_in, s_out, n_boot=n_boot, rng=rng, tpr=tpr, weights=shared,
                                     boots=set_boots[det])  # fmt: skip
            accepted = int(np.sum(s_out <= thresholds[det]))
            out.results[set_name][det] = {**m, "accepted": accepted}
            au, au_ci = m["auroc"]
            out.rows.append([
                set_name, det, num(au), _lo(au_ci), _hi(au_ci), num(m["aupr_in"][0]), num(m["aupr_out"][0]),
                num(m["fpr_in"][0]), num(m["fpr_out"][0]), num(accepted / len(s_out)), len(s_in), len(s_out),
            ])  # fmt: skip
            (fi, fi_ci), (fo, fo_ci) = m["fpr_in"], m["fpr_out"]
            out.fpr_rows.append([set_name, det, num(fi), _lo(fi_ci), _hi(fi_ci), num(fo), _lo(fo_ci), _hi(fo_ci),
                                 len(s_in), len(s_out)])  # fmt: skip
        if out.results[set_name]:
            _, ranked = selection_summary(out.results[set_name], set_boots)
            out.selection += [[set_name, *r] for r in ranked]
    return out


def _lo(ci: tuple[float, float] | None) -> float | None:
    return num(ci[0]) if ci else None


def _hi(ci: tuple[float, float] | None) -> float | None:
    return num(ci[1]) if ci else None


def _fpr_description(convention: str, tpr: float, *, other: bool = False) -> str:
    if other:
        return "the other FPR convention, for comparison with papers: " + (
            f"share of OOD accepted when {tpr:.0%} of ID is kept (ID positive)" if convention == "in"
            else f"share of ID flagged when {tpr:.0%} of OOD is caught (OOD positive)"
        )  # fmt: skip
    if convention == "in":
        return f"share of OOD accepted when the threshold keeps {tpr:.0%} of ID (ID positive)"
    return f"share of ID flagged when the threshold catches {tpr:.0%} of OOD (OOD positive)"


def gate_metrics(
    scored: Scored, measured: Measured, gate_detector: str, gated_sets: set[str], *, min_auroc: float,
    tpr: float, fpr_convention: str,
) -> list[Metric]:  # fmt: skip
    """The declared detector's metrics per set (AUROC gated at ``min_auroc`` on the gated sets)."""
    fpr_key, other = f"fpr_{fpr_convention}", "out" if fpr_convention == "in" else "in"
    pct = round(tpr * 100)
    metrics: list[Metric] = []
    for set_name, per_det in measured.results.items():
        g = per_det[gate_detector]
        n_in, n_out = len(scored.id_scores[gate_detector]), len(scored.sets[set_name][gate_detector])
        n = n_in + n_out
        details = {"detector": gate_detector, "set": set_name, "n_id": n_in, "n_ood": n_out}
        metrics += [
            Metric(f"auroc:{set_name}", g["auroc"][0], ci=g["auroc"][1], n=n,
                   threshold=min_auroc if set_name in gated_sets else None,
                   direction="higher", bound="conservative", details={**details, "positive": "ood"},
                   description=f"AUROC of {gate_detector} separating test ID from {set_name} (OOD positive)"),
            Metric(f"aupr_in:{set_name}", g["aupr_in"][0], ci=g["aupr_in"][1], n=n, direction="higher",
                   details={**details, "positive": "id"},
                   description="average precision with ID as positive (score negated)"),
            Metric(f"aupr_out:{set_name}", g["aupr_out"][0], ci=g["aupr_out"][1], n=n,
                   direction="higher", details={**details, "positive": "ood"},
                   description="average precision with OOD as positive"),
            Metric(f"fpr_at_{pct}tpr:{set_name}", g[fpr_key][0], ci=g[fpr_key][1], n=n, direction="lower",
                   details={**details, "convention": fpr_convention, "positive": "id" if fpr_convention == "in" else "ood"},
                   description=_fpr_description(fpr_convention, tpr)),
            Metric(f"fpr_at_{pct}tpr_{other}:{set_name}", g[f"fpr_{other}"][0], ci=g[f"fpr_{other}"][1], n=n,
                   direction="lower", details={**details, "convention": other, "positive": "id" if other == "in" else "ood"},
                   description=_fpr_description(other, tpr, other=True)),
            Metric(f"ood_accepted_at_threshold:{set_name}", g["accepted"] / n_out,
                   ci=stats.wilson(g["accepted"], n_out), n=n_out, direction="lower", details=details,
                   description="share of OOD accepted at the threshold set on held-out ID data"),
        ]  # fmt: skip
    return metrics


def threshold_rows(
    scored: Scored, detectors: list[str], thresholds: dict[str, float], gate_detector: str | None, tpr: float
) -> tuple[list[list[Any]], list[Metric]]:
    """Per detector: its held-out threshold and the share of test ID kept at it (a metric for the gated one)."""
    rows, metrics = [], []
    n = scored.n_test
    for det in detectors:
        kept = int(np.sum(scored.id_scores[det] <= thresholds[det]))
        rows.append([det, num(thresholds[det]), num(kept / n), n])
        if det == gate_detector:
            metrics.append(Metric(
                "id_kept_at_threshold", kept / n, ci=stats.wilson(kept, n), n=n, direction="higher",
                details={"detector": det, "target": tpr},
                description=f"share of test ID inputs kept at the threshold set to keep {tpr:.0%} of held-out ID",
            ))  # fmt: skip
    return rows, metrics


def notes_and_best(
    measured: Measured, fitted: Fitted, gate_detector: str | None, notes: list[str]
) -> tuple[dict[str, str], list[Finding]]:
    """The best detector per set (reporting only: the gate uses the declared one) and the info findings."""
    results, findings = measured.results, []
    if gate_detector is not None and gate_detector not in fitted.detectors:
        findings.append(Finding(
            f"the declared gate detector {gate_detector} could not run ({'; '.join(fitted.notes) or 'unavailable'}),"
            " so detection is not evidenced", key=f"unavailable:{gate_detector}",
        ))  # fmt: skip
    best = {s: max(r, key=lambda d: r[d]["auroc"][0]) for s, r in results.items() if r}
    for s, d in best.items():
        if gate_detector and d != gate_detector and gate_detector in results[s]:
            findings.append(Finding(
                f"on {s}, {d} separates better (AUROC {results[s][d]['auroc'][0]:.3f}) than the gated "
                f"{gate_detector} ({results[s][gate_detector]['auroc'][0]:.3f})", severity="info", key=f"best:{s}",
            ))  # fmt: skip
    for note in notes:
        findings.append(Finding(note, severity="info", key="note:" + note.split(":")[0][:40]))
    return best, findings


def detection_evidence(
    scored: Scored, measured: Measured, fitted: Fitted, *, gate_detector: str | None, gated_sets: set[str],
    threshold_table: list[list[Any]], fpr_convention: str, tpr: float, n_boot: int,
) -> dict[str, Any]:  # fmt: skip
    """The convention, the tables (detection, FPR@TPR with intervals, selection, detectors,
    thresholds) and the plots of AK-OOD-001."""
    pct, other = round(tpr * 100), "out" if fpr_convention == "in" else "in"
    sets, results = scored.sets, measured.results
    convention = {
        "score": "higher = more out-of-distribution (MSP and max logit negated; energy = −logsumexp)",
        "auroc": "OOD positive (unchanged if the positive class and score sign flip together)",
        "aupr_out": "OOD positive", "aupr_in": "ID positive, score negated",
        "fpr_at_tpr": (f"{fpr_convention}: " + ("ID positive (ODIN/Energy): share of OOD accepted when "
                       f"{tpr:.0%} of ID is kept" if fpr_convention == "in" else "OOD positive (OpenOOD): share of"
                       f" ID flagged when {tpr:.0%} of OOD is caught")),
        "fpr_both": ("the detection table lists FPR@TPR under both conventions; the gate metric uses "
                     f"fpr_convention={fpr_convention}, the other is metric fpr_at_{pct}tpr_{other}"),
        "thresholds": f"set on held-out ID data only: {fitted.holdout_source}",
        "intervals": f"95% percentile bootstrap, {n_boot} resamples, ID and OOD resampled separately",
    }  # fmt: skip
    evidence: dict[str, Any] = {
        "convention": {"columns": ["quantity", "convention"], "rows": [[k, v] for k, v in convention.items()]},
        "ood_source": scored.source,
        "gated_sets": sorted(gated_sets) if gate_detector in fitted.detectors else [],
        "detection": {
            "columns": ["ood set", "detector", "auroc", "auroc lo", "auroc hi", "aupr_in", "aupr_out",
                        f"fpr@{pct}tpr, ID positive (ODIN/Energy papers: OOD accepted)",
                        f"fpr@{pct}tpr, OOD positive (OpenOOD, pytorch-ood: ID flagged)",
                        "ood accepted at threshold", "n id", "n ood"],
            "rows": measured.rows,
        },
        f"fpr@{pct}tpr with 95% intervals": {
            "columns": ["ood set", "detector", "ID positive", "lo", "hi", "OOD positive", "lo", "hi", "n id",
                        "n ood"],
            "rows": measured.fpr_rows,
            "note": (f"FPR at {tpr:.0%} TPR under both conventions with its {n_boot}-resample percentile "
                     "bootstrap interval (ID and OOD resampled separately)"),
        },
        "detector selection": {
            "columns": ["ood set", "detector", "auroc", "auroc below best", "difference lo", "difference hi",
                        "worse than best (interval excludes 0)", f"fpr@{pct}tpr ID positive",
                        f"fpr@{pct}tpr OOD positive"],
            "rows": measured.selection,
            "note": ("reporting only, chosen on the test OOD sets: the gate uses the declared detector; "
                     f"differences are paired (the same {n_boot} bootstrap resamples for every detector)"),
        },
        "detectors": {"columns": ["detector", "paper", "fitted on ID data"],
                      "rows": [[d, PAPERS[d], fitted_text(fitted.fitted.get(d))] for d in fitted.detectors]},
        "thresholds": {"columns": ["detector", "threshold", "test ID kept", "n"], "rows": threshold_table},
        "plots": [
            {"type": "bar", "title": "AUROC by detector and OOD set", "x_label": "OOD set", "y_label": "AUROC",
             "categories": list(sets), "series": [
                 {"name": d, "values": [num(results[s][d]["auroc"][0]) for s in sets]} for d in fitted.detectors]},
        ],
    }  # fmt: skip
    if gate_detector is not None and gate_detector in fitted.detectors:
        curves = []
        for s, sc in sets.items():
            fx, fy = roc_points(scored.id_scores[gate_detector], sc[gate_detector])
            curves.append({"name": s, "x": fx, "y": fy})
        evidence["plots"].append({
            "type": "line", "title": f"ROC of {gate_detector} (OOD positive)", "x_label": "false positive rate (ID flagged)",
            "y_label": "true positive rate (OOD caught)", "series": curves, "diagonal": True,
        })  # fmt: skip
    return evidence
