"""AK-OOD-002 helpers: clean test accuracy and calibration, the same under shift (a labelled
production split, or synthetic shifts run as compute tasks), selective prediction with the
detectors of AK-OOD-001, and the evidence. ``checks/ood.py`` calls them in that order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from auditkit.checks._ood_data import ShiftBase, shift_task, subsample
from auditkit.checks._ood_detectors import FEATURE_DETECTORS, INPUT_DETECTORS, Fitted, safe_embeddings
from auditkit.checks._ood_metrics import (
    boot_weights,
    expected_calibration_error,
    num,
    quantile_ci,
    risk_at,
    risk_coverage,
    thin,
)

from auditkit import Metric, NotApplicable, SpecError, require_rows
from auditkit.toolkit import lazy

if TYPE_CHECKING:
    from auditkit import RunContext
    from auditkit.toolkit import Dataset

# scipy, imported when a check first computes (not by `auditkit checks`)
stats = lazy("auditkit.toolkit.stats")


def prob_stats(logits: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: whether the top class is right and its probability. A non-finite output under shift
    is an error made with full confidence, never a NaN metric."""
    ok = np.isfinite(logits).all(axis=1)
    z = np.where(ok[:, None], logits, 0.0)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    correct = np.where(ok, p.argmax(axis=1) == y, False).astype(np.float64)
    return {"correct": correct, "conf": np.where(ok, p.max(axis=1), 1.0)}


def _ece(
    st: dict[str, np.ndarray], n_bins: int, w: np.ndarray | None
) -> tuple[float, tuple[float, float] | None]:
    """ECE and its bootstrap interval over the resample rows ``w`` (None: no interval)."""
    ece = float(expected_calibration_error(st["conf"], st["correct"], n_bins=n_bins)[0])
    ci = (
        quantile_ci(expected_calibration_error(st["conf"], st["correct"], n_bins=n_bins, weights=w))
        if w is not None
        else None
    )
    return ece, ci


@dataclass
class Clean:
    """The (subsampled) labelled test rows with a finite output, and the model on them."""

    idx: np.ndarray
    y: np.ndarray
    st: dict[str, np.ndarray]
    acc: float
    ece: float
    k: int  # correct rows
    w: np.ndarray | None  # bootstrap resample counts (paired with synthetic shifts)
    notes: list[str]
    metrics: list[Metric]


def clean_test(ctx: RunContext, *, n_bins: int, max_samples: int, n_boot: int, min_rows: int,
               rng: np.random.Generator) -> Clean:  # fmt: skip
    test = ctx.dataset("test")
    y_test = test.y
    if y_test is None or not np.any(y_test >= 0):
        raise NotApplicable("the test split has no labels: accuracy under shift cannot be measured")
    test_logits = ctx.predictions("test").logits
    if test_logits.shape[1] < 2:
        raise NotApplicable(
            "the model has a single output: accuracy and calibration need class probabilities"
        )
    notes: list[str] = []
    finite = np.isfinite(test_logits).all(axis=1)
    labelled = np.flatnonzero((y_test >= 0) & finite)
    if len(labelled) < int(np.sum(y_test >= 0)):
        # As AK-PERF-001: rows whose clean output is undefined (NaN inputs) are left out and counted;
        # a NaN ECE used to compare as "not above the limit" and pass.
        notes.append(f"left out {int(np.sum((y_test >= 0) & ~finite))} labelled test rows whose model output "
                     "is not finite (e.g. missing values the model does not handle)")  # fmt: skip
    if len(labelled) == 0:
        raise NotApplicable("no labelled test row has a finite model output")
    require_rows(len(labelled), min_rows, what="accuracy under shift", split="labelled test")
    idx = labelled[subsample(len(labelled), max_samples, rng)]
    if len(idx) < len(labelled):
        notes.append(
            f"used a seeded subsample of {len(idx)} of {len(labelled)} labelled test rows (max_samples)"
        )
    y0 = y_test[idx]
    st = prob_stats(test_logits[idx], y0)
    w = boot_weights(len(idx), n_boot, rng) if n_boot > 0 else None
    acc = float(st["correct"].mean())
    ece, ece_ci = _ece(st, n_bins, w)
    k0 = int(st["correct"].sum())
    metrics = [
        Metric("accuracy:clean", acc, ci=stats.wilson(k0, len(idx)), n=len(idx), direction="higher",
               description="accuracy on the (unshifted) test set"),
        Metric("ece:clean", ece, ci=ece_ci, n=len(idx), direction="lower",
               description=f"expected calibration error on the test set ({n_bins} equal-width bins)"),
    ]  # fmt: skip
    return Clean(idx, y0, st, acc, ece, k0, w, notes, metrics)


@dataclass
class Shifted:
    """Accuracy and ECE under shift; ``gated``: name -> (embeddings (lazy), logits, labels, inputs
    (lazy)) of the data selective risk is reported on."""

    source: str
    metrics: list[Metric] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    gated: dict[str, tuple[Any, np.ndarray, np.ndarray, Any]] = field(default_factory=dict)
    curves_acc: list[dict[str, Any]] = field(default_factory=list)
    curves_ece: list[dict[str, Any]] = field(default_factory=list)


def production_shift(
    ctx: RunContext, prod: Dataset, clean: Clean, *, n_bins: int, max_samples: int, n_boot: int,
    max_accuracy_drop: float | None, max_ece: float | None, rng: np.random.Generator,
) -> Shifted:  # fmt: skip
    """The labelled production split as the shifted data (resampled on its own: unpaired)."""
    assert prod.y is not None
    p_lab = np.flatnonzero(prod.y >= 0)
    p_idx = p_lab[subsample(len(p_lab), max_samples, rng)]
    p_logits = ctx.predictions("production").logits[p_idx]
    yp = prod.y[p_idx]
    st = prob_stats(p_logits, yp)
    kp = int(st["correct"].sum())
    acc = kp / len(p_idx)
    wp = boot_weights(len(p_idx), n_boot, rng) if n_boot > 0 else None
    ece, ece_ci = _ece(st, n_bins, wp)
    drop_ci = None
    if wp is not None and clean.w is not None:
        w0 = clean.w
        drop_ci = quantile_ci((w0 @ clean.st["correct"]) / w0.sum(1) - (wp @ st["correct"]) / wp.sum(1))
    out = Shifted(f"the labelled production split ({len(p_idx)} rows)")
    details = {"shift": "production", "n_clean": len(clean.idx)}
    out.metrics += [
        Metric("accuracy:production", acc, ci=stats.wilson(kp, len(p_idx)), n=len(p_idx), direction="higher", details=details),
        Metric("accuracy_drop:production", clean.acc - acc, ci=drop_ci, n=len(p_idx), threshold=max_accuracy_drop,
               direction="lower", details=details, description="clean test accuracy minus production accuracy"),
        Metric("ece:production", ece, ci=ece_ci, n=len(p_idx), threshold=max_ece, direction="lower", details=details),
    ]  # fmt: skip
    out.rows.append(["production", None, num(acc), num(clean.acc - acc), num(ece), len(p_idx)])
    out.gated["production"] = (
        lambda: ctx.embeddings("production")[p_idx],
        p_logits,
        yp,
        lambda: prod.x[p_idx],
    )
    return out


def synthetic_shifts(
    ctx: RunContext, names: list[str], severities: list[int], gate_severity: int, clean: Clean, *,
    n_bins: int, max_accuracy_drop: float | None, max_ece: float | None,
) -> Shifted:  # fmt: skip
    """Each shift at each severity of the same test rows (paired with clean), one compute task per
    (shift, severity) with its own seed (docs/compute.md); the model and the rows travel once."""
    model, train, test = ctx.model(), ctx.dataset("train"), ctx.dataset("test")
    base = ShiftBase.of(ctx, train)
    for name in names:
        if name not in base.table:
            raise SpecError(f"shift {name!r} does not apply to {base.kind} inputs; known: {list(base.table)}")
    sevs = sorted(severities)
    items = [(name, sev, sev == gate_severity) for name in names for sev in sevs]
    done = iter(ctx.map(shift_task, items, shared=(model, base, test.x[clean.idx])))
    out = Shifted(
        f"synthetic {base.kind} shifts of the test inputs at severities {sevs} (no labelled production split)"
    )
    n, y0, w0 = len(clean.idx), clean.y, clean.w
    for name in names:
        lo0, hi0 = stats.wilson(clean.k, n)
        accs, los, his, eces = [clean.acc], [lo0], [hi0], [clean.ece]
        for sev in sevs:
            logits, xs = next(done)
            st = prob_stats(logits, y0)
            k = int(st["correct"].sum())
            acc, drop = k / n, clean.acc - k / n
            ece = float(expected_calibration_error(st["conf"], st["correct"], n_bins=n_bins)[0])
            lo, hi = stats.wilson(k, n)
            accs.append(acc)
            los.append(lo)
            his.append(hi)
            eces.append(ece)
            out.rows.append([name, sev, num(acc), num(drop), num(ece), n])
            if sev != gate_severity:
                continue
            drop_ci = ece_ci = None
            if w0 is not None:  # paired: the same resampled rows, clean and shifted
                drop_ci = quantile_ci((w0 @ (clean.st["correct"] - st["correct"])) / w0.sum(1))
                ece_ci = _ece(st, n_bins, w0)[1]
            key = f"{name}@{sev}"
            details = {"shift": name, "severity": sev, "magnitude": base.table[name][sev - 1]}
            out.metrics += [
                Metric(f"accuracy:{key}", acc, ci=(lo, hi), n=n, direction="higher", details=details),
                Metric(f"accuracy_drop:{key}", drop, ci=drop_ci, n=n, threshold=max_accuracy_drop,
                       direction="lower", details=details,
                       description="clean accuracy minus shifted accuracy on the same rows"),
                Metric(f"ece:{key}", ece, ci=ece_ci, n=n, threshold=max_ece, direction="lower", details=details),
            ]  # fmt: skip
            out.gated[key] = (lambda xs=xs: model.embeddings(xs), logits, y0, lambda xs=xs: xs)
        axis = [0, *sevs]
        out.curves_acc.append({"name": name, "x": axis, "y": [num(a) for a in accs],
                               "lo": [num(v) for v in los], "hi": [num(v) for v in his]})  # fmt: skip
        out.curves_ece.append({"name": name, "x": axis, "y": [num(e) for e in eces]})
    return out


@dataclass
class Selective:
    best: str
    how: str
    aurcs: dict[str, float]
    metrics: list[Metric]
    rows: list[list[Any]]
    plot_series: list[dict[str, Any]]


def selective_prediction(
    ctx: RunContext, fitted: Fitted, clean: Clean, shifted: Shifted, *, production: bool, coverage: float,
    gate_severity: int, max_selective_risk: float | None, n_boot: int, rng: np.random.Generator,
) -> Selective:  # fmt: skip
    """Choose the detector by AURC on held-out data (validation, else a seeded half of test), then
    report its selective risk at ``coverage`` and AURC on clean test and on the shifted data."""
    test, idx = ctx.dataset("test"), clean.idx
    features = fitted.uses_features
    test_emb = safe_embeddings(lambda: ctx.embeddings("test")) if features else None
    scores_test = fitted.scores(ctx.predictions("test").logits[idx], test_emb[idx] if test_emb is not None else None,
                                fitted.inputs(test.x, idx))  # fmt: skip
    err_test = 1.0 - clean.st["correct"]
    val = ctx.dataset("validation") if "validation" in ctx.splits() else None
    if val is not None and val.y is not None and np.any(val.y >= 0):
        v_lab = np.flatnonzero(val.y >= 0)
        v_logits = ctx.predictions("validation").logits[v_lab]
        v_emb = safe_embeddings(lambda: ctx.embeddings("validation")) if features else None
        sel_scores = fitted.scores(
            v_logits, v_emb[v_lab] if v_emb is not None else None, fitted.inputs(val.x, v_lab)
        )
        sel_err = (v_logits.argmax(axis=1) != val.y[v_lab]).astype(np.float64)
        report = np.arange(len(idx))
        how = f"chosen by AURC on the validation split ({len(v_lab)} labelled rows)"
    else:
        perm = rng.permutation(len(idx))
        half = len(idx) // 2
        sel, report = np.sort(perm[:half]), np.sort(perm[half:])
        if len(sel) == 0 or len(report) == 0:
            raise NotApplicable("too few labelled test rows to choose a detector and report selective risk")
        sel_scores = {d: s[sel] for d, s in scores_test.items()}
        sel_err = err_test[sel]
        how = f"chosen by AURC on a seeded half of the test rows ({len(sel)}); curves on the other half ({len(report)})"
    aurcs = {d: float(risk_coverage(s, sel_err)["aurc"][0]) for d, s in sel_scores.items()}
    best = min(aurcs, key=lambda d: (aurcs[d], fitted.detectors.index(d)))
    shifted_scores, shifted_err = [], []
    for get_emb, logits, y, get_x in shifted.gated.values():
        emb = safe_embeddings(get_emb) if features and best in FEATURE_DETECTORS else None
        shifted_scores.append(fitted.scores(logits, emb, get_x() if best in INPUT_DETECTORS else None)[best])
        shifted_err.append((logits.argmax(axis=1) != y).astype(np.float64))
    out = Selective(best, how, aurcs, [], [], [])
    shifted_label = "production" if production else "shifted"
    for label, s, e in (("clean test", scores_test[best][report], err_test[report]),
                        (shifted_label, np.concatenate(shifted_scores), np.concatenate(shifted_err))):  # fmt: skip
        errs, kept = risk_at(s, e, coverage)
        rc = risk_coverage(s, e)
        aurc_ci = (
            quantile_ci(risk_coverage(s, e, boot_weights(len(s), n_boot, rng))["aurc"])
            if n_boot > 0
            else None
        )
        suffix = (
            "clean" if label == "clean test" else ("production" if production else f"shifted@{gate_severity}")
        )
        out.metrics += [
            Metric(f"selective_risk@{coverage:g}:{suffix}", errs / kept, ci=stats.wilson(errs, kept), n=kept,
                   threshold=max_selective_risk if suffix != "clean" else None, direction="lower",
                   details={"detector": best, "coverage": coverage, "full_coverage_risk": float(e.mean())},
                   description=f"error rate on the {coverage:.0%} of inputs {best} finds least OOD"),
            Metric(f"aurc:{suffix}", float(rc["aurc"][0]), ci=aurc_ci, n=len(s), direction="lower",
                   details={"detector": best}, description="area under the risk–coverage curve"),
        ]  # fmt: skip
        out.rows.append(
            [label, best, num(float(e.mean())), num(errs / kept), num(float(rc["aurc"][0])), len(s)]
        )
        cx, cy = thin(rc["coverage"][0], rc["risk"][0])
        out.plot_series.append({"name": f"{best} — {label}", "x": cx, "y": cy})
        if best != "msp" and "msp" in scores_test and label == "clean test":
            rc_msp = risk_coverage(scores_test["msp"][report], e)
            mx, my = thin(rc_msp["coverage"][0], rc_msp["risk"][0])
            out.plot_series.append({"name": f"msp — {label}", "x": mx, "y": my})
    return out


def shift_evidence(shifted: Shifted, sel: Selective, *, coverage: float, n_bins: int) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "shift_source": shifted.source,
        "under shift": {"columns": ["shift", "severity", "accuracy", "accuracy drop", "ece", "n"], "rows": shifted.rows},
        "selective prediction": {
            "columns": ["data", "detector", "risk at full coverage", f"risk at {coverage:g} coverage", "aurc", "n"],
            "rows": sel.rows,
        },
        "detector choice": {"columns": ["detector", "aurc (selection data)"],
                            "rows": [[d, num(a)] for d, a in sel.aurcs.items()]},
        "selection": sel.how,
        "ece": f"{n_bins} equal-width bins on the top-class probability",
        "plots": [],
    }  # fmt: skip
    if shifted.curves_acc:
        evidence["plots"] += [
            {"type": "line", "title": "Accuracy under shift (severity 0 = clean)", "x_label": "severity",
             "y_label": "accuracy", "series": shifted.curves_acc},
            {"type": "line", "title": "Expected calibration error under shift", "x_label": "severity",
             "y_label": "ECE", "series": shifted.curves_ece},
        ]  # fmt: skip
    evidence["plots"].append({
        "type": "line", "title": f"Risk–coverage, abstaining with {sel.best}", "x_label": "coverage",
        "y_label": "selective risk (error rate)", "series": sel.plot_series,
    })  # fmt: skip
    return evidence
