"""Confident learning (Northcutt, Jiang & Chuang, 2021, JAIR 70), implemented from the paper.

Given labels ``s`` (the given, possibly noisy labels, codes 0..k-1) and out-of-sample class
probabilities ``P`` (n × k), confident learning estimates the joint distribution of given and
true labels and finds the rows whose given label is likely wrong:

1. per-class thresholds ``t_j`` = mean of ``P[x, j]`` over the rows *given* label ``j`` (the
   model's average self-confidence in class ``j``; eq. 2 of the paper);
2. the confident joint ``C[i, j]`` counts the rows given label ``i`` whose probability for ``j``
   reaches ``t_j``; a row above several thresholds goes to its most probable one, a row above none
   is not counted (eq. 1);
3. calibration (eq. 3): each row of ``C`` is rescaled to the number of rows given that label, and
   the whole to a joint ``Q`` that sums to 1. ``1 - trace(Q)`` is the estimated noise rate; the
   noise matrix is ``P(given = i | true = j) = Q[i, j] / sum_i Q[i, j]``;
4. pruning (section 3.2): ``prune_by_noise_rate`` flags, for each off-diagonal cell, the
   ``n·Q[i, j]`` rows given ``i`` with the largest margin ``P[x, j] - P[x, i]``;
   ``prune_by_class`` flags, per given class ``i``, the ``n·sum_{j≠i} Q[i, j]`` rows with the
   lowest self-confidence; ``both`` is their intersection; ``confident_joint`` flags the
   off-diagonal rows of ``C`` itself. In every method a row whose most probable class is its
   given label is never flagged: the model agrees with the label.

Pure numpy, no check logic: the AK-DQ-005 check, its tests and its benchmark share these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRUNE_METHODS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_joint")
RANKINGS = ("self_confidence", "normalized_margin")


def thresholds(labels: np.ndarray, proba: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-class thresholds ``t_j``: the (weighted) mean ``P[x, j]`` over rows given label ``j``.

    NaN for a class no row is given (it has no threshold: no row can be confidently put there).
    """
    k = proba.shape[1]
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(labels, weights=w, minlength=k)
    own = proba[np.arange(len(labels)), labels].astype(np.float64)  # P[x, s(x)]
    sums = np.bincount(labels, weights=w * own, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)


def confident_labels(proba: np.ndarray, t: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Per row, the most probable class among those whose probability reaches its threshold; -1 if none."""
    n = len(proba)
    out = np.empty(n, dtype=np.int64)
    limit = np.where(np.isnan(t), np.inf, t)  # a class without threshold never qualifies
    for a in range(0, n, chunk):  # chunks keep the n×k temporaries small at a million rows
        p = proba[a : a + chunk]
        masked = np.where(p >= limit, p, -1.0)
        best = masked.argmax(axis=1)
        ok = masked[np.arange(len(p)), best] >= 0
        out[a : a + chunk] = np.where(ok, best, -1)
    return out


def confident_joint(
    labels: np.ndarray, proba: np.ndarray, t: np.ndarray | None = None, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(C, suggested): the k × k confident joint (rows: given label, columns: confident label) and
    each row's confident label (-1 where no class reaches its threshold)."""
    k = proba.shape[1]
    t = thresholds(labels, proba, weights) if t is None else t
    suggested = confident_labels(proba, t)
    ok = suggested >= 0
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[ok]
    cells = np.bincount(labels[ok] * k + suggested[ok], weights=w, minlength=k * k)
    return cells.reshape(k, k).astype(np.float64), suggested


def calibrate(c: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """The calibrated joint ``Q`` (sums to 1): each row of ``C`` rescaled to its label count.

    A given class with no confident row at all keeps its rows on the diagonal (no evidence of noise).
    """
    c = np.asarray(c, dtype=np.float64)
    counts = np.asarray(label_counts, dtype=np.float64)
    rows = c.sum(axis=1)
    q = np.zeros_like(c)
    has = rows > 0
    q[has] = c[has] / rows[has, None] * counts[has, None]
    idx = np.flatnonzero(~has & (counts > 0))
    q[idx, idx] = counts[idx]
    total = q.sum()
    return q / total if total > 0 else q


def noise_rate(q: np.ndarray) -> float:
    """Estimated share of rows whose given label differs from the true one: ``1 - trace(Q)``."""
    return float(max(0.0, 1.0 - np.trace(q)))


def noise_matrix(q: np.ndarray) -> np.ndarray:
    """``P(given = i | true = j)``: column-normalised joint (a column without mass is the identity)."""
    cols = q.sum(axis=0)
    out = np.eye(len(q))
    has = cols > 0
    out[:, has] = q[:, has] / cols[has]
    return out


def scores(labels: np.ndarray, proba: np.ndarray, rank_by: str) -> np.ndarray:
    """Label quality per row (lower = more likely mislabelled).

    ``self_confidence``: ``P[x, s(x)]``; ``normalized_margin``: ``P[x, s(x)] - max_{j≠s(x)} P[x, j]``.
    """
    n = len(labels)
    own = proba[np.arange(n), labels].astype(np.float64)
    if rank_by == "self_confidence":
        return own
    if rank_by == "normalized_margin":
        other = proba.astype(np.float64, copy=True)
        other[np.arange(n), labels] = -np.inf
        return own - other.max(axis=1)
    raise ValueError(f"rank_by must be one of {RANKINGS}, not {rank_by!r}")


def _prune_by_noise_rate(labels: np.ndarray, proba: np.ndarray, n_cell: np.ndarray) -> np.ndarray:
    k = proba.shape[1]
    flag = np.zeros(len(labels), dtype=bool)
    for i in range(k):
        rows = np.flatnonzero(labels == i)
        for j in range(k):
            m = int(min(n_cell[i, j], len(rows)))
            if i == j or m <= 0:
                continue
            margin = proba[rows, j].astype(np.float64) - proba[rows, i]
            top = np.lexsort((rows, -margin))[:m]  # largest margin first; ties by row: deterministic
            flag[rows[top]] = True
    return flag


def _prune_by_class(labels: np.ndarray, proba: np.ndarray, n_cell: np.ndarray) -> np.ndarray:
    k = proba.shape[1]
    flag = np.zeros(len(labels), dtype=bool)
    own = proba[np.arange(len(labels)), labels].astype(np.float64)
    for i in range(k):
        rows = np.flatnonzero(labels == i)
        m = int(min(n_cell[i].sum() - n_cell[i, i], len(rows)))
        if m <= 0:
            continue
        flag[rows[np.lexsort((rows, own[rows]))[:m]]] = True
    return flag


@dataclass
class LabelIssues:
    """What confident learning found on one set of rows."""

    thresholds: np.ndarray  # t_j (NaN: class not given to any row)
    confident_joint: np.ndarray  # C, counts (rows: given, columns: confident label)
    joint: np.ndarray  # Q, calibrated, sums to 1
    noise_rate: float  # 1 - trace(Q)
    flagged: np.ndarray  # bool per row
    suggested: np.ndarray  # per row: the most probable other class (argmax of P excluding s)
    score: np.ndarray  # label quality per row (lower = worse), by ``rank_by``
    label_counts: np.ndarray

    @property
    def noise_matrix(self) -> np.ndarray:
        return noise_matrix(self.joint)

    def ranked(self) -> np.ndarray:
        """Flagged row positions, most likely errors first (lowest score, then row order)."""
        idx = np.flatnonzero(self.flagged)
        return idx[np.lexsort((idx, self.score[idx]))]


def find_label_issues(
    labels: np.ndarray,
    proba: np.ndarray,
    *,
    prune: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
) -> LabelIssues:
    """Confident learning on ``labels`` (codes 0..k-1) and out-of-sample ``proba`` (n × k)."""
    if prune not in PRUNE_METHODS:
        raise ValueError(f"prune must be one of {PRUNE_METHODS}, not {prune!r}")
    labels = np.asarray(labels, dtype=np.int64)
    proba = np.asarray(proba)
    n, k = proba.shape
    counts = np.bincount(labels, minlength=k)
    t = thresholds(labels, proba)
    c, confident = confident_joint(labels, proba, t)
    q = calibrate(c, counts)
    n_cell = np.rint(q * n).astype(np.int64)  # expected rows per (given, true) cell
    if prune == "prune_by_noise_rate":
        flag = _prune_by_noise_rate(labels, proba, n_cell)
    elif prune == "prune_by_class":
        flag = _prune_by_class(labels, proba, n_cell)
    elif prune == "both":
        flag = _prune_by_noise_rate(labels, proba, n_cell) & _prune_by_class(labels, proba, n_cell)
    else:
        flag = (confident >= 0) & (confident != labels)
    flag &= proba.argmax(axis=1) != labels  # never flag a row the model agrees with
    other = proba.astype(np.float64, copy=True)
    other[np.arange(n), labels] = -np.inf
    return LabelIssues(
        thresholds=t, confident_joint=c, joint=q, noise_rate=noise_rate(q), flagged=flag,
        suggested=other.argmax(axis=1), score=scores(labels, proba, rank_by), label_counts=counts,
    )  # fmt: skip


def bootstrap_noise_rate(
    labels: np.ndarray, proba: np.ndarray, *, n_boot: int, rng: np.random.Generator, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the estimated noise rate over row resamples (thresholds, confident
    joint and calibration recomputed on every resample; the probabilities are held fixed)."""
    labels = np.asarray(labels, dtype=np.int64)
    n, k = proba.shape
    if n == 0 or n_boot <= 0:
        return (float("nan"), float("nan"))
    values = np.empty(n_boot)
    p32 = np.asarray(proba, dtype=np.float32)  # half the memory traffic: the resamples scan n × k each
    own = p32[np.arange(n), labels].astype(np.float64)
    for b in range(n_boot):
        w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        wc = np.bincount(labels, weights=w, minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(
                wc > 0, np.bincount(labels, weights=w * own, minlength=k) / np.where(wc > 0, wc, 1), np.nan
            )
        c, _ = confident_joint(labels, p32, t.astype(np.float32), w)
        values[b] = noise_rate(calibrate(c, wc))
    alpha = (1 - confidence) / 2
    return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))
