"""Confidence intervals and classification metrics.

Wilson for proportions; a seeded, vectorised percentile bootstrap otherwise.

``classification_metrics`` computes point estimates that equal scikit-learn's (accuracy, balanced
accuracy, macro F1, ROC AUC, log loss, Brier) and calibration errors (ECE with equal-width and
equal-mass bins, MCE). ``bootstrap_metrics`` gives their percentile intervals:

* up to ``exact_max`` rows, every bootstrap replicate is an explicit resample of the rows (one
  ``(n_boot, n)`` count matrix shared by all metrics, built in chunks);
* above it, rows are compressed into *cells* and the replicate counts are drawn from a multinomial
  over the cells, which is the exact distribution of the resample's cell counts. Cells are exact
  for the confusion-matrix metrics (cells = (label, prediction)), and fine quantile bins for the
  others (log loss, Brier: value bins plus a Gaussian term for the variance inside a bin; ROC AUC:
  score bins, the interval shifted by the binning error of the point estimate; ECE: the calibration
  bin × correctness × 64 confidence sub-bins; 1,024 quantile cells by default). For multi-class ROC AUC above ``exact_max`` the
  one-vs-rest AUCs are resampled independently (their correlation is ignored; at that size the
  interval is narrow anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as _st

EPS = 1e-15  # scikit-learn's log_loss clips probabilities to [eps, 1 - eps] with float64 eps; see _log_loss
METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss", "brier")
CALIBRATION = ("ece", "adaptive_ece", "mce")


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (sensible at 0 and n, unlike the Wald one)."""
    if n <= 0:
        return (0.0, 1.0)
    z = float(_st.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_diff(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2 of two independent proportions."""
    p1 = k1 / n1 if n1 else 0.0
    p2 = k2 / n2 if n2 else 0.0
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (float(max(-1.0, lo)), float(min(1.0, hi)))


def bootstrap_indices(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) resample indices; drawn in one call so results depend only on the seed."""
    return rng.integers(0, n, size=(n_boot, n), dtype=np.int64 if n > 2**31 - 1 else np.int32)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(idx)`` over bootstrap resamples ``idx`` of range(n).

    The statistic gets an index array so that paired quantities (y, p) resample together.
    """
    rng = rng or np.random.default_rng(0)
    values = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_boot)], dtype=float)
    return _percentile(values, confidence)


def mean_ci(
    values: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Bootstrap interval of a mean (vectorised; cells above 20,000 values, see the module doc)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = rng or np.random.default_rng(0)
    if n <= 20_000:
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
        means = counts @ values / n
    else:
        means = _binned_mean_boot(values, n_boot, rng)
    return _percentile(means, confidence)


def _percentile(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))


# --------------------------------------------------------------------------------------------------
# Point estimates (each equals scikit-learn's on the same predictions; the tests compare them)
# --------------------------------------------------------------------------------------------------


def _per_sample(y: np.ndarray, proba: np.ndarray) -> dict[str, np.ndarray]:
    n, k = proba.shape
    p_true = proba[np.arange(n), y]
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    # scikit-learn renormalises rows and clips at the float64 machine epsilon
    eps = np.finfo(proba.dtype).eps if proba.dtype.kind == "f" else np.finfo(float).eps
    ll = -np.log(np.clip(p_true.astype(np.float64), eps, 1 - eps))
    if k == 2:
        brier = (proba[:, 1].astype(np.float64) - (y == 1)) ** 2  # sklearn's binary Brier (positive class)
    else:
        brier = ((proba.astype(np.float64) - onehot) ** 2).sum(axis=1)
    return {"log_loss": ll, "brier": brier}


def classification_metrics(
    y: np.ndarray, proba: np.ndarray, *, n_bins: int = 15, which: Sequence[str] | None = None
) -> dict[str, float]:
    """Point estimates: accuracy, balanced_accuracy, macro_f1, roc_auc, log_loss, brier, ece,
    adaptive_ece, mce. ``y`` holds codes 0..k-1 (rows with -1 must be removed first)."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    which = tuple(which or (METRICS + CALIBRATION))
    n, k = proba.shape
    pred = proba.argmax(axis=1)
    w = np.ones((1, n))
    out: dict[str, float] = {}
    conf = _confusion_weights(w, y, pred, k)
    for m in ("accuracy", "balanced_accuracy", "macro_f1"):
        if m in which:
            out[m] = float(_from_confusion(m, conf, y, k)[0])
    if "roc_auc" in which:
        out["roc_auc"] = float(_auc_weighted(w, y, proba, k)[0])
    ps = _per_sample(y, proba)
    for m in ("log_loss", "brier"):
        if m in which:
            out[m] = float(ps[m].mean())
    for m in CALIBRATION:
        if m in which:
            out[m] = float(_calibration_weighted(w, y, proba, n_bins, m)[0])
    return out


def _confusion_weights(w: np.ndarray, y: np.ndarray, pred: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Weighted per-class counts for each replicate row of ``w``: true, predicted, true positives."""
    cells = y * k + pred
    # (n, k*k) sparse one-hot avoided: accumulate replicate weights per cell with bincount per row
    b = w.shape[0]
    flat = np.zeros((b, k * k))
    for c in np.unique(cells):
        flat[:, c] = w[:, cells == c].sum(axis=1)
    cm = flat.reshape(b, k, k)  # [replicate, true, pred]
    return {"cm": cm, "labels": np.union1d(np.unique(y), np.unique(pred))}


def _from_confusion(metric: str, conf: dict[str, np.ndarray], y: np.ndarray, k: int) -> np.ndarray:
    cm = conf["cm"]
    tp = np.diagonal(cm, axis1=1, axis2=2)
    true = cm.sum(axis=2)
    predicted = cm.sum(axis=1)
    total = cm.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "accuracy":
            return np.asarray(tp.sum(axis=1) / total)
        present = np.zeros(k, dtype=bool)
        present[np.unique(y)] = True
        if metric == "balanced_accuracy":
            # sklearn averages recall over classes present in y_true
            recall = np.where(true > 0, tp / true, 0.0)[:, present]
            return np.asarray(recall.mean(axis=1))
        if metric == "macro_f1":
            # sklearn macro F1 over the union of labels in y_true and y_pred; F1 = 2tp / (2tp + fp + fn)
            denom = 2 * tp + (predicted - tp) + (true - tp)
            f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
            return np.asarray(f1[:, conf.get("labels", np.arange(k))].mean(axis=1))
    raise ValueError(metric)


def auc(score: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Binary ROC AUC of ``score`` for the rows where ``positive`` is true (ties count one half),
    equal to scikit-learn's ``roc_auc_score``; ``weights`` are per-row counts (default 1). NaN
    when either class is absent. The one AUC of auditkit: every check uses it or ``weighted_auc``."""
    w = np.ones(len(score)) if weights is None else np.asarray(weights, dtype=float)
    return float(
        weighted_auc(w[None, :], np.asarray(positive, dtype=bool), np.asarray(score, dtype=float))[0]
    )


def weighted_auc(
    w: np.ndarray, pos: np.ndarray, score: np.ndarray, order: np.ndarray | None = None
) -> np.ndarray:
    """Weighted binary ROC AUC (ties count one half) for each replicate row of ``w`` (a bootstrap's
    row counts, shape ``(n_boot, n)``)."""
    if order is None:
        order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    wp = w[:, order] * pos[order]
    wn = w[:, order] * (~pos[order])
    gp = np.add.reduceat(wp, starts, axis=1)
    gn = np.add.reduceat(wn, starts, axis=1)
    below = np.cumsum(gn, axis=1) - gn
    num = (gp * (below + 0.5 * gn)).sum(axis=1)
    denom = gp.sum(axis=1) * gn.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(denom > 0, num / denom, np.nan))


def _auc_weighted(w: np.ndarray, y: np.ndarray, proba: np.ndarray, k: int) -> np.ndarray:
    """Binary: AUC of P(class 1). Multi-class: macro one-vs-rest over classes present (sklearn's)."""
    if k == 2:
        return weighted_auc(w, y == 1, proba[:, 1])
    classes = np.unique(y)
    vals = [weighted_auc(w, y == c, proba[:, c]) for c in classes]
    return np.asarray(np.mean(vals, axis=0))


def calibration_bins(conf: np.ndarray, n_bins: int, adaptive: bool) -> np.ndarray:
    """Bin index of each confidence: equal-width bins on [0, 1], or equal-mass bins (quantiles)."""
    if adaptive:
        order = np.argsort(conf, kind="mergesort")
        bins = np.empty(len(conf), dtype=np.int64)
        bins[order] = (np.arange(len(conf)) * n_bins) // max(len(conf), 1)
        return bins
    # (lo, hi] bins as in Guo et al. 2017; a confidence of exactly 0 goes to the first bin
    return np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def _calibration_weighted(
    w: np.ndarray, y: np.ndarray, proba: np.ndarray, n_bins: int, metric: str
) -> np.ndarray:
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    bins = calibration_bins(conf, n_bins, adaptive=metric == "adaptive_ece")
    b = w.shape[0]
    diff = np.zeros((b, n_bins))
    cnt = np.zeros((b, n_bins))
    for j in np.unique(bins):
        m = bins == j
        diff[:, j] = w[:, m] @ (correct[m] - conf[m])
        cnt[:, j] = w[:, m].sum(axis=1)
    total = cnt.sum(axis=1)
    if metric == "mce":
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.where(cnt > 0, np.abs(diff) / np.where(cnt > 0, cnt, 1), 0.0)
        return np.asarray(gap.max(axis=1))
    return np.asarray(np.abs(diff).sum(axis=1) / total)


def reliability_diagram(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> dict[str, list[float]]:
    """Equal-width bins: mean confidence, accuracy and count per non-empty bin."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = calibration_bins(conf, n_bins, adaptive=False)
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": [], "lo": [], "hi": []}
    for j in range(n_bins):
        m = bins == j
        c = int(m.sum())
        if c == 0:
            continue
        k = int(correct[m].sum())
        lo, hi = wilson(k, c)
        out["confidence"].append(float(conf[m].mean()))
        out["accuracy"].append(k / c)
        out["count"].append(c)
        out["lo"].append(lo)
        out["hi"].append(hi)
    return out


# --------------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------------


def _row_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) resample counts, from one index draw, built in chunks of bincount."""
    idx = rng.integers(0, n, size=(n_boot, n), dtype=np.int32 if n < 2**31 - 1 else np.int64)
    out = np.empty((n_boot, n), dtype=np.float32)
    chunk = max(1, 20_000_000 // max(n, 1))
    for s in range(0, n_boot, chunk):
        part = idx[s : s + chunk].astype(np.int64)
        rows = part.shape[0]
        flat = (part + (np.arange(rows, dtype=np.int64) * n)[:, None]).ravel()
        out[s : s + rows] = np.bincount(flat, minlength=rows * n).reshape(rows, n)
    return out


def _quantile_cells(values: np.ndarray, n_cells: int) -> np.ndarray:
    """Compact cell index of each value: about equal-mass bins, equal values always in one cell.

    Edges are quantiles of a strided subsample (≤ 200,000 values; deterministic), so binning is
    O(n log cells) without sorting all n values.
    """
    step = max(1, len(values) // 200_000)
    edges = np.unique(np.quantile(values[::step], np.linspace(0, 1, n_cells + 1)[1:-1]))
    cells = np.searchsorted(edges, values, side="right")
    used = np.bincount(cells, minlength=len(edges) + 1) > 0
    remap = np.cumsum(used) - 1
    return np.asarray(remap[cells])


def _cells_from_order(values: np.ndarray, order: np.ndarray, n_cells: int) -> np.ndarray:
    """Like ``_quantile_cells`` but exact equal-mass bins from a sort order already at hand."""
    n = len(values)
    sv = values[order]
    r = (np.arange(n, dtype=np.int64) * n_cells) // max(n, 1)
    first = np.r_[True, sv[1:] != sv[:-1]]
    r = np.maximum.accumulate(np.where(first, r, 0))  # ties share the cell of their first member
    compact = np.cumsum(np.r_[True, r[1:] != r[:-1]]) - 1
    cells = np.empty(n, dtype=np.int64)
    cells[order] = compact
    return cells


def _multinomial_counts(
    cells: np.ndarray, n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Replicate counts per cell, (n_boot, K), drawn from the multinomial of the cell shares."""
    sizes = np.bincount(cells).astype(np.float64)
    n = int(sizes.sum())
    return rng.multinomial(n, sizes / n, size=n_boot).astype(np.float64), sizes


def _binned_mean_boot(
    values: np.ndarray, n_boot: int, rng: np.random.Generator, n_cells: int = 1024
) -> np.ndarray:
    """Bootstrap means over cells, plus a Gaussian term for the resample inside each cell."""
    cells = _quantile_cells(values, n_cells)
    counts, sizes = _multinomial_counts(cells, n_boot, rng)
    sums = np.bincount(cells, weights=values)
    sq = np.bincount(cells, weights=values * values)
    mean = sums / sizes
    var = np.maximum(sq / sizes - mean * mean, 0.0)
    total = counts @ mean + rng.standard_normal((n_boot,)) * np.sqrt(counts @ var)
    return np.asarray(total / len(values))


def bootstrap_metrics(
    y: np.ndarray,
    proba: np.ndarray,
    metrics: Sequence[str] = METRICS,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
    n_bins: int = 15,
    exact_max: int = 20_000,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of each metric (see the module docstring for the method)."""
    rng = rng or np.random.default_rng(0)
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n, k = proba.shape
    pred = proba.argmax(axis=1)
    out: dict[str, tuple[float, float]] = {}
    if n == 0:
        return {m: (float("nan"), float("nan")) for m in metrics}
    ps = _per_sample(y, proba)
    if n <= exact_max:
        w = _row_weights(n, n_boot, rng).astype(np.float64)
        conf = _confusion_weights(w, y, pred, k)
        for m in metrics:
            if m in ("accuracy", "balanced_accuracy", "macro_f1"):
                vals = _from_confusion(m, conf, y, k)
            elif m == "roc_auc":
                vals = _auc_weighted(w, y, proba, k)
            elif m in ("log_loss", "brier"):
                vals = (w @ ps[m]) / n
            elif m in CALIBRATION:
                vals = _calibration_weighted(w, y, proba, n_bins, m)
            else:
                raise ValueError(f"unknown metric {m!r}")
            out[m] = _percentile(vals, confidence)
        return out
    # Large n: multinomial over cells.
    confusion: dict[str, np.ndarray] | None = None
    for m in metrics:
        if m in ("accuracy", "balanced_accuracy", "macro_f1"):
            if confusion is None:  # one draw of (label, prediction) cells serves all three metrics
                counts, _ = _multinomial_counts(y * k + pred, n_boot, rng)
                flat = np.zeros((n_boot, k * k))
                flat[:, : counts.shape[1]] = counts
                labels = np.union1d(np.unique(y), np.unique(pred))
                confusion = {"cm": flat.reshape(n_boot, k, k), "labels": labels}
            vals = _from_confusion(m, confusion, y, k)
        elif m in ("log_loss", "brier"):
            vals = _binned_mean_boot(ps[m], n_boot, rng)
        elif m == "roc_auc":
            vals = _binned_auc_boot(y, proba, k, n_boot, rng)
        elif m in CALIBRATION:
            vals = _binned_calibration_boot(y, proba, n_bins, m, n_boot, rng)
        else:
            raise ValueError(f"unknown metric {m!r}")
        out[m] = _percentile(vals, confidence)
    return out


def _binnedweighted_auc(
    pos: np.ndarray, score: np.ndarray, n_boot: int, rng: np.random.Generator, n_cells: int = 1024
) -> np.ndarray:
    order = np.argsort(score, kind="stable")
    sbin = _cells_from_order(score, order, n_cells)
    nb = int(sbin.max()) + 1
    cells = sbin * 2 + pos.astype(np.int64)
    counts, sizes = _multinomial_counts(cells, n_boot, rng)
    full = np.zeros((n_boot + 1, nb * 2))
    full[:n_boot, : counts.shape[1]] = counts
    full[n_boot, : len(sizes)] = sizes  # last row: the sample itself, binned
    gp = full[:, 1::2]
    gn = full[:, 0::2]
    below = np.cumsum(gn, axis=1) - gn
    num = (gp * (below + 0.5 * gn)).sum(axis=1)
    denom = gp.sum(axis=1) * gn.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.where(denom > 0, num / denom, np.nan)
    exact = weighted_auc(np.ones((1, len(score))), pos, score, order)[0]
    return np.asarray(auc[:n_boot] - auc[n_boot] + exact)  # shift by the binning error


def _binned_auc_boot(
    y: np.ndarray, proba: np.ndarray, k: int, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    if k == 2:
        return _binnedweighted_auc(y == 1, proba[:, 1], n_boot, rng)
    cells = max(256, 1024 // (k - 1))  # one draw per class: fewer cells each
    vals = [_binnedweighted_auc(y == c, proba[:, c], n_boot, rng, cells) for c in np.unique(y)]
    return np.asarray(np.mean(vals, axis=0))


def _binned_calibration_boot(
    y: np.ndarray,
    proba: np.ndarray,
    n_bins: int,
    metric: str,
    n_boot: int,
    rng: np.random.Generator,
    sub: int = 64,
) -> np.ndarray:
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.int64)
    bins = calibration_bins(conf, n_bins, adaptive=metric == "adaptive_ece")
    subbin = np.clip((conf * sub).astype(np.int64), 0, sub - 1)
    cells_raw = (bins * 2 + correct) * sub + subbin
    uniq, cells = np.unique(cells_raw, return_inverse=True)
    counts, sizes = _multinomial_counts(cells, n_boot, rng)
    mean_d = np.bincount(cells, weights=correct - conf) / sizes
    cell_bin = uniq // (2 * sub)
    diff = np.zeros((n_boot, n_bins))
    cnt = np.zeros((n_boot, n_bins))
    for j in np.unique(cell_bin):
        m = cell_bin == j
        diff[:, j] = counts[:, m] @ mean_d[m]
        cnt[:, j] = counts[:, m].sum(axis=1)
    if metric == "mce":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(cnt > 0, np.abs(diff) / np.where(cnt > 0, cnt, 1), 0.0).max(axis=1))
    return np.asarray(np.abs(diff).sum(axis=1) / cnt.sum(axis=1))


def metric_direction(name: str) -> str:
    """``higher`` for scores, ``lower`` for losses and calibration errors."""
    return "lower" if name in ("log_loss", "brier", "ece", "adaptive_ece", "mce") else "higher"


def describe_method(n: int, exact_max: int = 20_000) -> dict[str, Any]:
    """What the interval method was, for evidence."""
    return {
        "method": "percentile bootstrap"
        + (" (row resamples)" if n <= exact_max else " (multinomial over cells)"),
        "confidence": 0.95,
    }
