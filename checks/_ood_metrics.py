"""AK-OOD-001/002 helpers: detection metrics, their bootstrap intervals, ECE and risk–coverage.

Metrics come from one vectorised pass over sorted scores, for the point estimate and every
bootstrap resample at once (resamples are count weights, so ties and sklearn's conventions are
kept). AUROC is the toolkit's one AUC (``auditkit.toolkit.stats.weighted_auc``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from auditkit.toolkit import lazy

# scipy, imported when a check first computes (not by `auditkit checks`)
stats = lazy("auditkit.toolkit.stats")

MAX_BOOT_CELLS = 4_000_000  # bootstrap rows × points processed at once (memory bound)


def detection_metrics(
    s_in: np.ndarray,
    s_out: np.ndarray,
    *,
    w_in: np.ndarray | None = None,
    w_out: np.ndarray | None = None,
    tpr: float = 0.95,
) -> dict[str, np.ndarray]:
    """AUROC, AUPR-In, AUPR-Out and FPR at ``tpr`` under both conventions, per weight row.

    ``s_in``/``s_out`` are OOD scores (higher = more OOD) of ID and OOD points; ``w_in`` (B, n_in)
    and ``w_out`` (B, n_out) are non-negative weights (bootstrap counts), default one row of ones.
    AUROC is the trapezoidal area under the ROC with tied scores as one threshold (as sklearn's
    ``roc_auc_score``); AUPR is average precision (as sklearn's ``average_precision_score``).
    ``fpr_in``: ID positive, the threshold keeps ``tpr`` of ID, share of OOD accepted.
    ``fpr_out``: OOD positive, the threshold catches ``tpr`` of OOD, share of ID flagged.
    """
    s_in = np.asarray(s_in, dtype=np.float64)
    s_out = np.asarray(s_out, dtype=np.float64)
    n_in, n_out = len(s_in), len(s_out)
    w_in = np.ones((1, n_in)) if w_in is None else np.atleast_2d(np.asarray(w_in))
    w_out = np.ones((1, n_out)) if w_out is None else np.atleast_2d(np.asarray(w_out))
    pooled = np.concatenate([s_in, s_out])
    order = np.argsort(-pooled, kind="stable")
    sorted_scores = pooled[order]
    # Group id of every point: distinct scores in descending order (ties form one threshold).
    gid = np.empty(n_in + n_out, dtype=np.int64)
    gid[order] = np.cumsum(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]) - 1
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    b = w_in.shape[0]
    # Per distinct score (descending): weight of OOD (positives) and ID (negatives).
    gp = _group_sum(w_out, gid[n_in:], n_groups).astype(np.float64, copy=False)
    gn = _group_sum(w_in, gid[:n_in], n_groups).astype(np.float64, copy=False)
    tp, fp = np.cumsum(gp, axis=1), np.cumsum(gn, axis=1)  # OOD / ID weight with score ≥ group's
    p_tot, n_tot = tp[:, -1:], fp[:, -1:]
    # ID positive, walking up from the lowest score: ID / OOD weight with score ≤ the group's.
    tp_in, fp_in = n_tot - fp + gn, p_tot - tp + gp
    with np.errstate(invalid="ignore", divide="ignore"):
        aupr_out = (gp * (tp / (tp + fp))).sum(axis=1) / p_tot[:, 0]
        aupr_in = (gn * (tp_in / (tp_in + fp_in))).sum(axis=1) / n_tot[:, 0]
        rows = np.arange(b)
        reached = tp >= tpr * p_tot - 1e-9 * p_tot  # first group (descending) catching tpr of OOD
        fpr_out_at = np.where(reached.any(axis=1), fp[rows, np.argmax(reached, axis=1)] / n_tot[:, 0], np.nan)
        reached = tp_in >= tpr * n_tot - 1e-9 * n_tot  # first group (ascending) keeping tpr of ID
        last = n_groups - 1 - np.argmax(reached[:, ::-1], axis=1)
        fpr_in_at = np.where(reached.any(axis=1), fp_in[rows, last] / p_tot[:, 0], np.nan)
    # AUROC, OOD positive: the toolkit's one AUC (Mann–Whitney, ties count one half), float64 weights.
    w = np.concatenate([w_in, w_out], axis=1).astype(np.float64, copy=False)
    pos = np.r_[np.zeros(n_in, dtype=bool), np.ones(n_out, dtype=bool)]
    auroc = stats.weighted_auc(w, pos, pooled, order=order[::-1])  # ascending, ties contiguous
    return {
        "auroc": auroc,
        "aupr_in": aupr_in,
        "aupr_out": aupr_out,
        "fpr_in": fpr_in_at,
        "fpr_out": fpr_out_at,
    }


def _group_sum(w: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(B, n_groups) sums of the columns of ``w`` (B, n) by group id."""
    perm = np.argsort(groups, kind="stable")
    g = groups[perm]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, dtype=np.int64)
    out = np.zeros((w.shape[0], n_groups), dtype=w.dtype)
    if len(g):
        out[:, g[starts]] = np.add.reduceat(w[:, perm], starts, axis=1)
    return out


def boot_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) bootstrap resample counts (float32: exact for counts below 2**24)."""
    draws = rng.integers(0, n, size=(n_boot, n))
    flat = (draws + (np.arange(n_boot) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)


def detection_metrics_ci(
    s_in: np.ndarray,
    s_out: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator,
    tpr: float = 0.95,
    weights: tuple[np.ndarray, np.ndarray] | None = None,
    boots: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[float, tuple[float, float] | None]]:
    """Point estimates and 95% percentile intervals (ID and OOD resampled separately).

    ``weights``: bootstrap count rows (ID, OOD) to reuse, so that several detectors are resampled
    identically (paired); ``boots``, when given, receives the bootstrap values per metric.
    """
    point = {k: float(v[0]) for k, v in detection_metrics(s_in, s_out, tpr=tpr).items()}
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in point}
    if weights is not None or n_boot > 0:
        w_in_all, w_out_all = weights or (
            boot_weights(len(s_in), n_boot, rng),
            boot_weights(len(s_out), n_boot, rng),
        )
        n_boot = len(w_in_all)
        step = max(1, MAX_BOOT_CELLS // max(1, len(s_in) + len(s_out)))
        for lo in range(0, n_boot, step):
            part = detection_metrics(
                s_in, s_out, w_in=w_in_all[lo : lo + step], w_out=w_out_all[lo : lo + step], tpr=tpr
            )
            for k, arr in part.items():
                chunks[k].append(arr)
    out: dict[str, tuple[float, tuple[float, float] | None]] = {}
    for k, value in point.items():
        values = np.concatenate(chunks[k]) if chunks[k] else np.array([])
        if boots is not None:
            boots[k] = values
        values = values[np.isfinite(values)]
        ci = (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))) if len(values) else None
        out[k] = (value, ci)
    return out


def selection_summary(
    results: dict[str, dict[str, Any]], boots: dict[str, dict[str, np.ndarray]]
) -> tuple[str, list[list[Any]]]:
    """Rank the detectors of one OOD set by AUROC; paired bootstrap interval of each one's AUROC
    difference to the best (the same resamples for all). Returns (best, rows): detector, AUROC,
    Δ to best, its 95% interval, whether the interval excludes 0, FPR@TPR both conventions."""
    best = max(results, key=lambda d: (results[d]["auroc"][0], -list(results).index(d)))
    rows = []
    for det in sorted(results, key=lambda d: -results[d]["auroc"][0]):
        diff = results[best]["auroc"][0] - results[det]["auroc"][0]
        paired = (
            boots[best]["auroc"] - boots[det]["auroc"] if len(boots[det].get("auroc", [])) else np.array([])
        )
        ci = quantile_ci(paired) if det != best else None
        rows.append([det, num(results[det]["auroc"][0]), num(diff), num(ci[0]) if ci else None, num(ci[1]) if ci else None,
                     None if det == best or ci is None else bool(ci[0] > 0),
                     num(results[det]["fpr_in"][0]), num(results[det]["fpr_out"][0])])  # fmt: skip
    return best, rows


def expected_calibration_error(
    conf: np.ndarray, correct: np.ndarray, *, n_bins: int = 15, weights: np.ndarray | None = None
) -> np.ndarray:
    """ECE with equal-width (lo, hi] confidence bins, per weight row: Σ_b |Σ w(conf − correct)| / Σ w."""
    conf = np.asarray(conf, dtype=np.float64)
    gap = conf - np.asarray(correct, dtype=np.float64)
    w = np.ones((1, len(conf))) if weights is None else np.atleast_2d(weights)
    from auditkit.toolkit import calibration_bins  # (lo, hi] bins, the same as AK-PERF's ECE

    bins = calibration_bins(conf, n_bins, adaptive=False)
    onehot = np.zeros((len(conf), n_bins))
    onehot[np.arange(len(conf)), bins] = 1.0
    per_bin = (w * gap) @ onehot
    return np.asarray(np.abs(per_bin).sum(axis=1) / w.sum(axis=1))


def quantile_ci(values: np.ndarray) -> tuple[float, float] | None:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    return (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975)))


def roc_points(s_in: np.ndarray, s_out: np.ndarray, max_points: int = 200) -> tuple[list[float], list[float]]:
    """ROC points (FPR, TPR; OOD positive), thinned to at most ``max_points`` for the report."""
    from sklearn.metrics import roc_curve

    labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    fpr, tpr, _ = roc_curve(labels, np.r_[s_in, s_out])
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [float(v) for v in fpr], [float(v) for v in tpr]


def fitted_text(values: dict[str, Any] | None) -> str:
    """Fitted hyperparameters as one short line (floats to 4 significant digits)."""
    if not values:
        return "nothing fitted"
    fmt = {k: (f"{v:.4g}" if isinstance(v, float) else
               "{" + ", ".join(f"{a:g}: {b:.6g}" for a, b in v.items()) + "}" if isinstance(v, dict) else str(v))
           for k, v in values.items()}  # fmt: skip
    return ", ".join(f"{k}={v}" for k, v in fmt.items())


def num(x: float | None) -> float | None:
    """An evidence number at full precision (renderers round); None when missing or NaN."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def risk_coverage(
    scores: np.ndarray, errors: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Selective risk when the most OOD-looking inputs are abstained on first.

    Inputs are accepted in increasing score order; ``risk[k]`` is the error rate among the first
    k+1 accepted, ``coverage[k]`` their share. AURC is the mean risk over all coverages (per row of
    ``weights``, bootstrap counts: the weighted analogue).
    """
    order = np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")
    err = np.asarray(errors, dtype=np.float64)[order]
    w = np.ones((1, len(err))) if weights is None else np.atleast_2d(weights)[:, order]
    cw = np.cumsum(w, axis=1)
    ce = np.cumsum(w * err, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        risk = np.where(cw > 0, ce / np.maximum(cw, 1e-300), 0.0)
    aurc = (w * risk).sum(axis=1) / w.sum(axis=1)
    return {"coverage": cw / cw[:, -1:], "risk": risk, "aurc": aurc}


def risk_at(scores: np.ndarray, errors: np.ndarray, coverage: float) -> tuple[int, int]:
    """(errors, accepted) when the ``coverage`` share with the lowest OOD scores is accepted."""
    k = max(1, int(math.ceil(coverage * len(scores))))
    order = np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return int(np.sum(np.asarray(errors)[order])), k


def thin(x: np.ndarray, y: np.ndarray, max_points: int = 200) -> tuple[list[float], list[float]]:
    keep = np.unique(np.linspace(0, len(x) - 1, min(max_points, len(x))).round().astype(int))
    return [float(v) for v in x[keep]], [float(v) for v in y[keep]]
