"""AK-LEAK-005 helpers: a feature coded into levels or quantile bins, and its out-of-fold
target-encoding AUC (exact, from group counts, with a Hanley–McNeil interval) or R² (on the label
and on its ranks, with a delta-method interval)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auditkit.toolkit import lazy
from auditkit.toolkit.hashing import text_codes

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


def feature_codes(s: pd.Series, categorical: bool, bins: int, max_levels: int) -> np.ndarray:
    """Integer codes 0..m-1 for a feature: levels for categories and few-valued numbers, quantile
    bins otherwise; missing values get a code of their own."""
    if categorical:
        codes, _ = text_codes(s)
    else:
        v = pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        finite = v[np.isfinite(v)]
        uniq = np.unique(finite) if len(finite) else finite
        # by value only when each level has ~20 rows on average; otherwise out-of-fold encoding
        # of near-unique values would learn nothing and hide a leak
        if len(uniq) <= min(max_levels, max(2, len(v) // 20)):
            codes = np.searchsorted(uniq, v)
        else:
            nb = int(min(bins, max(2, len(v) // 20)))
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, nb + 1)[1:-1]))
            codes = np.searchsorted(edges, v, side="right")
        codes = np.where(np.isfinite(v), codes, -1)
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes < 0, codes.max(initial=0) + 1, codes)


def auc_from_groups(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC (ties count 1/2) from per-group scores and positive/negative counts: the toolkit's one
    AUC over each group written twice, once as its positives and once as its negatives, weighted
    by the counts (so it equals roc_auc_score on the expanded rows, at O(groups) cost)."""
    from auditkit.toolkit import auc

    positive = np.r_[np.ones(len(score), dtype=bool), np.zeros(len(score), dtype=bool)]
    return auc(np.r_[score, score], positive, weights=np.r_[pos, neg])


def _hanley_mcneil(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    """95% interval of an AUC from the Hanley–McNeil standard error."""
    if not np.isfinite(auc) or n_pos == 0 or n_neg == 0:
        return (float("nan"), float("nan"))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    se = float(np.sqrt(max(var, 0.0)))
    return (max(0.0, auc - 1.96 * se), min(1.0, auc + 1.96 * se))


def oof_feature_auc(
    codes: np.ndarray, y: np.ndarray, folds: np.ndarray, n_folds: int, smoothing: float = 1.0
) -> tuple[float, tuple[float, float]]:
    """Out-of-fold one-vs-rest macro AUC of a target encoding of one coded feature.

    The score of a row is, per class, the smoothed class share among the *other folds'* rows with
    the same code; the AUC is computed exactly from (fold, code) group counts, so it costs O(n).
    """
    m = int(codes.max()) + 1
    k = int(y.max()) + 1
    cell = folds * m + codes
    counts = np.bincount(cell * k + y, minlength=n_folds * m * k).reshape(n_folds, m, k).astype(np.float64)
    total = counts.sum(axis=0)  # (m, k)
    prior = np.bincount(y, minlength=k) / len(y)
    oof = total[None, :, :] - counts  # (folds, m, k): counts of the other folds
    rate = (oof + smoothing * prior) / (oof.sum(axis=2, keepdims=True) + smoothing)
    present = counts.sum(axis=2).reshape(-1) > 0
    aucs, weights, cis = [], [], []
    classes = range(k) if k > 2 else [1]
    for c in classes:
        pos = counts[:, :, c].reshape(-1)[present]
        neg = (counts.sum(axis=2) - counts[:, :, c]).reshape(-1)[present]
        a = auc_from_groups(rate[:, :, c].reshape(-1)[present], pos, neg)
        if np.isfinite(a):
            aucs.append(a)
            weights.append(1.0)
            cis.append(_hanley_mcneil(a, int(pos.sum()), int(neg.sum())))
    if not aucs:
        return float("nan"), (float("nan"), float("nan"))
    auc = float(np.average(aucs, weights=weights))
    lo = float(np.mean([c[0] for c in cis]))
    hi = float(np.mean([c[1] for c in cis]))
    return auc, (lo, hi)


def _oof_errors(
    codes: np.ndarray, y: np.ndarray, folds: np.ndarray, n_folds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Squared out-of-fold errors of predicting ``y`` by the other folds' mean per code, and the
    squared deviations from the overall mean (R² = 1 − Σ first / Σ second)."""
    m = int(codes.max()) + 1
    cell = folds * m + codes
    s = np.bincount(cell, weights=y, minlength=n_folds * m).reshape(n_folds, m)
    c = np.bincount(cell, minlength=n_folds * m).reshape(n_folds, m).astype(np.float64)
    s_o, c_o = s.sum(axis=0)[None] - s, c.sum(axis=0)[None] - c
    mean_all = y.mean()
    pred = np.where(c_o > 0, s_o / np.maximum(c_o, 1), mean_all).reshape(-1)[cell]
    return (y - pred) ** 2, (y - mean_all) ** 2


def _r2_interval(res: np.ndarray, dev: np.ndarray) -> tuple[float, tuple[float, float]]:
    """R² = 1 − mean(res)/mean(dev) with a 95% delta-method interval for the ratio of means."""
    n, mr, md = len(res), float(res.mean()), float(dev.mean())
    if md <= 0:
        return float("nan"), (float("nan"), float("nan"))
    ratio = mr / md
    cov = np.cov(res, dev) if n > 1 else np.zeros((2, 2))
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (md**2 * n)
    half = 1.959963984540054 * float(np.sqrt(max(var, 0.0)))
    return 1.0 - ratio, (1.0 - ratio - half, 1.0 - ratio + half)


def oof_feature_r2(
    codes: np.ndarray, y: np.ndarray, folds: np.ndarray, n_folds: int
) -> tuple[float, tuple[float, float], str]:
    """Out-of-fold R² of a feature's target encoding, on the label and on its ranks (so that a
    monotone copy such as the log of a long-tailed label is seen: its bins predict the ranks almost
    exactly); the higher of the two, its 95% interval, and the scale it was measured on."""
    from scipy.stats import rankdata

    best: tuple[float, tuple[float, float], str] = (float("nan"), (float("nan"), float("nan")), "label")
    for scale, target in (("label", y), ("rank", rankdata(y) / len(y))):
        value, ci = _r2_interval(*_oof_errors(codes, target, folds, n_folds))
        if np.isfinite(value) and not (np.isfinite(best[0]) and value <= best[0]):
            best = (value, ci, scale)
    return best
