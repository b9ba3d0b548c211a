"""AK-LEAK-002 helpers: rows embedded in train-standardised units, the adaptive radius fitted on
train alone, and the exact (faiss) or hashed (grid LSH) search, every candidate re-checked in float64."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit.toolkit import default_threads, lazy
from auditkit.toolkit.hashing import text_codes

if TYPE_CHECKING:
    import pandas as pd

    from auditkit.toolkit import Dataset
else:
    pd = lazy("pandas")

_CAT_SCALE = 4.0  # categorical levels are embedded as random 2-d points with this spread (z units)


def embed(
    train: Dataset, other: Dataset, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Scaled numeric features (train mean/std; NaN → train mean) and categorical codes.

    Returns (train vectors, other vectors, train cat codes, other cat codes, numeric dims). The
    vectors append a random 2-d embedding per categorical level, so that rows with different
    categories lie far apart in the index; equality of categories is then checked exactly.
    """
    num, cat = train.numeric, train.categorical
    if train.array is not None and other.array is not None and not cat:
        a_tr, a_te = train.x2d.astype(np.float64), other.x2d.astype(np.float64)
    else:
        a_tr = np.column_stack([pd.to_numeric(train.frame[f], errors="coerce").to_numpy(np.float64, na_value=np.nan)
                                for f in num]) if num else np.zeros((len(train), 0))  # fmt: skip
        a_te = np.column_stack([pd.to_numeric(other.frame[f], errors="coerce").to_numpy(np.float64, na_value=np.nan)
                                for f in num]) if num else np.zeros((len(other), 0))  # fmt: skip
    with warnings.catch_warnings():  # all-NaN columns: mean/std NaN, replaced below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(a_tr, axis=0) if len(a_tr) else np.zeros(a_tr.shape[1])
        std = np.nanstd(a_tr, axis=0) if len(a_tr) else np.ones(a_tr.shape[1])
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    z_tr = np.nan_to_num((a_tr - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)
    z_te = np.nan_to_num((a_te - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)
    c_tr = np.zeros((len(train), len(cat)), dtype=np.int64)
    c_te = np.zeros((len(other), len(cat)), dtype=np.int64)
    e_tr, e_te = [], []
    for j, f in enumerate(cat):
        both = pd.concat([train.frame[f], other.frame[f]], ignore_index=True)
        codes, uniques = text_codes(both)
        codes = np.where(codes < 0, len(uniques), codes)
        c_tr[:, j], c_te[:, j] = codes[: len(train)], codes[len(train) :]
        points = rng.normal(scale=_CAT_SCALE, size=(len(uniques) + 1, 2))
        e_tr.append(points[c_tr[:, j]])
        e_te.append(points[c_te[:, j]])
    v_tr = np.hstack([z_tr, *e_tr]).astype(np.float32)
    v_te = np.hstack([z_te, *e_te]).astype(np.float32)
    return np.ascontiguousarray(v_tr), np.ascontiguousarray(v_te), c_tr, c_te, z_tr.shape[1]


def _verify(
    v_tr: np.ndarray,
    v_q: np.ndarray,
    c_tr: np.ndarray,
    c_q: np.ndarray,
    qi: np.ndarray,
    ti: np.ndarray,
    d_num: int,
    radius: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact float64 check of candidate pairs (query row, train row): RMS over the numeric dims
    within ``radius`` and equal categories. Returns the pairs that pass with their distances."""
    diff = v_q[qi, :d_num].astype(np.float64) - v_tr[ti, :d_num].astype(np.float64)
    rms = np.sqrt((diff * diff).sum(axis=1) / max(d_num, 1))
    ok = rms <= radius
    if c_tr.shape[1]:
        ok &= (c_tr[ti] == c_q[qi]).all(axis=1)
    return qi[ok], ti[ok], rms[ok]


def train_nn_distances(
    v: np.ndarray, c: np.ndarray, d_num: int, *, sample: int, budget: float, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """RMS distance (numeric dims, categories equal) from sampled distinct train rows to their
    nearest *other* train row: the scale of "near" in this data, fitted on train only.

    ``sample`` query rows are searched exactly (faiss) against the train rows, or against a random
    subset of them when queries × rows would exceed ``budget`` (stated: a subset's neighbours lie
    farther, so the radius comes out larger). A query with no equal-category row among its ``k``
    nearest counts as infinitely far.
    """
    import faiss

    n = len(v)
    q_idx = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    ref = np.arange(n)
    if float(len(q_idx)) * n > budget:
        ref = np.union1d(q_idx, rng.choice(n, size=max(int(budget // len(q_idx)), 1), replace=False))
    faiss.omp_set_num_threads(default_threads())  # torch's policy: both share OpenMP
    index = faiss.IndexFlatL2(v.shape[1])
    index.add(np.ascontiguousarray(v[ref]))
    kk = min(k + 1, len(ref))
    _, idx = index.search(np.ascontiguousarray(v[q_idx]), kk)
    qi = np.repeat(np.arange(len(q_idx)), kk)
    ti = ref[np.maximum(idx.reshape(-1), 0)]
    keep = (idx.reshape(-1) >= 0) & (ti != q_idx[qi])  # not the row itself
    qi, ti = qi[keep], ti[keep]
    diff = v[q_idx[qi], :d_num].astype(np.float64) - v[ti, :d_num].astype(np.float64)
    rms = np.sqrt((diff * diff).sum(axis=1) / max(d_num, 1))
    if c.shape[1]:
        rms = np.where((c[ti] == c[q_idx[qi]]).all(axis=1), rms, np.inf)
    nearest = np.full(len(q_idx), np.inf)
    np.minimum.at(nearest, qi, rms)
    return nearest, {"sampled_train_rows": int(len(q_idx)), "reference_train_rows": int(len(ref)),
                     "train_rows": int(n)}  # fmt: skip


def adaptive_radius(
    v: np.ndarray,
    c: np.ndarray,
    d_num: int,
    *,
    floor: float,
    quantile: float,
    factor: float,
    rng: np.random.Generator,
    sample: int = 2000,
    budget: float = 5e8,
    k: int = 8,
) -> tuple[float, dict[str, Any]]:
    """The near-duplicate radius: ``factor`` × the ``quantile`` of train's own nearest-neighbour
    distances, never below the absolute ``floor``. Returns the radius and how it was derived."""
    if len(v) < 2:
        return floor, {"radius": floor, "from": "floor (fewer than 2 distinct train rows)"}
    nearest, info = train_nn_distances(v, c, d_num, sample=sample, budget=budget, k=k, rng=rng)
    finite = nearest[np.isfinite(nearest)]
    q_val = float(np.quantile(nearest, quantile)) if len(finite) else float("inf")
    adaptive = factor * q_val if np.isfinite(q_val) else float("inf")
    radius = max(floor, adaptive) if np.isfinite(adaptive) else floor
    qs = np.quantile(finite, [0.0, 0.01, 0.05, 0.5]) if len(finite) else [float("nan")] * 4
    return radius, {
        "radius": radius,
        "from": "adaptive" if radius > floor else "floor (max_distance)",
        "floor": floor,
        "adaptive_radius": adaptive if np.isfinite(adaptive) else None,
        "quantile": quantile,
        "factor": factor,
        "train_nn_quantile_value": q_val if np.isfinite(q_val) else None,
        "train_nn_distance_quantiles": dict(zip(("min", "p1", "p5", "median"), map(float, qs), strict=True)),
        **info,
    }


def _keep_best(best: np.ndarray, partner: np.ndarray, qi: np.ndarray, ti: np.ndarray, d: np.ndarray) -> None:
    """Per query, keep the closest verified train row."""
    if not len(qi):
        return
    order = np.lexsort((ti, d, qi))
    qi, ti, d = qi[order], ti[order], d[order]
    first = np.r_[True, qi[1:] != qi[:-1]]
    qi, ti, d = qi[first], ti[first], d[first]
    better = ~(best[qi] <= d)  # NaN (nothing yet) or farther
    best[qi[better]], partner[qi[better]] = d[better], ti[better]


def exact_search(
    v_tr: np.ndarray, v_q: np.ndarray, c_tr: np.ndarray, c_q: np.ndarray, d_num: int, radius: float, k: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Exact k nearest neighbours (faiss IndexFlatL2), then the exact check of those candidates."""
    import faiss

    faiss.omp_set_num_threads(default_threads())  # torch's policy: both share OpenMP
    index = faiss.IndexFlatL2(v_tr.shape[1])
    index.add(v_tr)
    k = min(k, len(v_tr))
    _, idx = index.search(v_q, k)
    best, partner = np.full(len(v_q), np.nan), np.full(len(v_q), -1, dtype=np.int64)
    qi = np.repeat(np.arange(len(v_q)), k)
    ti = idx.reshape(-1)
    keep = ti >= 0
    _keep_best(best, partner, *_verify(v_tr, v_q, c_tr, c_q, qi[keep], ti[keep], d_num, radius))
    return best, partner, {"search": "exact (faiss IndexFlatL2)", "neighbours": k}


def lsh_search(
    v_tr: np.ndarray,
    v_q: np.ndarray,
    c_tr: np.ndarray,
    c_q: np.ndarray,
    d_num: int,
    radius: float,
    *,
    seed: int,
    miss_probability: float,
    max_bucket: int,
    target_candidates: float = 4.0,
    max_tables: int = 200,
    chunk_pairs: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Grid LSH for a fixed radius: sub-quadratic, vectorised, with a proven recall bound.

    Each table projects the vectors on ``m`` random orthonormal directions and cuts every
    direction into cells of width ``w = 16 r`` with a random offset (``r`` = Euclidean radius).
    Projection never lengthens a difference, so two rows within ``r`` share a cell in one
    direction with probability at least ``1 - r/w``, and a table's bucket with probability at
    least ``p = (15/16)^m``; ``L`` tables miss such a pair with probability at most
    ``(1 - p)^L <= miss_probability``. ``m`` is the smallest that leaves about
    ``target_candidates`` train rows per bucket (estimated on a sample), so the work is about
    linear in the rows. Buckets are capped at ``max_bucket`` rows (counted and reported).
    """
    rng = np.random.default_rng(seed)
    n, dims = v_tr.shape
    euclid = radius * np.sqrt(max(d_num, 1))
    w = 16.0 * euclid if euclid > 0 else 1e-9
    mult = rng.integers(1, 2**63 - 1, size=64, dtype=np.int64).astype(np.uint64) | np.uint64(1)

    def table(m: int) -> tuple[np.ndarray, np.ndarray]:
        basis, _ = np.linalg.qr(rng.normal(size=(dims, m)))
        return basis.astype(np.float32), rng.uniform(0.0, w, size=m).astype(np.float32)

    def keys(v: np.ndarray, basis: np.ndarray, off: np.ndarray) -> np.ndarray:
        cells = np.floor((v @ basis + off) / w).astype(np.int64).view(np.uint64)
        return (cells * mult[: cells.shape[1]]).sum(axis=1, dtype=np.uint64)

    # choose m on samples: expected train rows sharing a query's bucket
    sample_tr = v_tr[rng.choice(n, size=min(n, 100_000), replace=False)]
    sample_q = v_q[rng.choice(len(v_q), size=min(len(v_q), 5_000), replace=False)]
    m_max = min(dims, 64)
    m = m_max
    for cand in sorted({min(c, m_max) for c in (2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64)}):
        basis, off = table(cand)
        sk = np.sort(keys(sample_tr, basis, off))
        kq = keys(sample_q, basis, off)
        hits = (np.searchsorted(sk, kq, "right") - np.searchsorted(sk, kq, "left")).mean()
        if hits * n / len(sample_tr) <= target_candidates:
            m = cand
            break
    p_hit = (1.0 - euclid / w) ** m
    n_tables = int(np.ceil(np.log(miss_probability) / np.log(1.0 - p_hit))) if p_hit < 1 else 1
    n_tables = min(n_tables, max_tables)  # very dense data: the bound achieved is reported
    achieved = float((1.0 - p_hit) ** n_tables) if p_hit < 1 else 0.0
    best, partner = np.full(len(v_q), np.nan), np.full(len(v_q), -1, dtype=np.int64)
    compared = truncated = 0
    for _ in range(n_tables):
        basis, off = table(m)
        k_tr = keys(v_tr, basis, off)
        order = np.argsort(k_tr, kind="stable")
        sk = k_tr[order]
        kq = keys(v_q, basis, off)
        lo = np.searchsorted(sk, kq, "left")
        size = np.searchsorted(sk, kq, "right") - lo
        truncated += int((size > max_bucket).sum())
        size = np.minimum(size, max_bucket)
        active = np.flatnonzero(size)
        # expand (query, train) pairs in chunks that bound memory
        cum = np.cumsum(size[active])
        start = 0
        while start < len(active):
            base = int(cum[start - 1]) if start else 0
            stop = max(int(np.searchsorted(cum, base + chunk_pairs, "right")), start + 1)
            part = active[start:stop]
            start = stop
            cnt = size[part]
            qi = np.repeat(part, cnt)
            step = np.arange(len(qi)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            ti = order[np.repeat(lo[part], cnt) + step]
            compared += len(qi)
            _keep_best(best, partner, *_verify(v_tr, v_q, c_tr, c_q, qi, ti, d_num, radius))
    info = {"search": "grid LSH (random orthonormal projections)", "projected_dims": m, "tables": n_tables,
            "cell_width": w, "miss_probability_bound": achieved, "pairs_compared": compared,
            "buckets_truncated": truncated}  # fmt: skip
    return best, partner, info


@dataclass
class Near:
    """Per test row: whether a near-duplicate was found, its RMS distance and train row (-1: none)."""

    found: np.ndarray
    best: np.ndarray
    partner: np.ndarray
    radius: float
    fitted: dict[str, Any]  # how the radius was derived
    info: dict[str, Any]  # how the search ran
    d_num: int
    queried: int


def find_near(
    train: Dataset, test: Dataset, h_tr: np.ndarray, exact: np.ndarray, *, max_distance: float, adaptive: bool,
    radius_quantile: float, radius_factor: float, exact_below: float, neighbours: int, miss_probability: float,
    max_bucket: int, rng: np.random.Generator, seed: int,
) -> Near:  # fmt: skip
    """Near-duplicates in train of the test rows that are not exact copies (``exact``); repeated
    train rows (equal hashes ``h_tr``) are searched once."""
    v_tr, v_te, c_tr, c_te, d_num = embed(train, test, rng)
    d_num = max(d_num, 1)
    reps = np.sort(np.unique(h_tr, return_index=True)[1])  # one train row per distinct feature row
    radius, fitted = max_distance, {"radius": max_distance, "from": "max_distance (adaptive off)"}
    if adaptive:
        radius, fitted = adaptive_radius(v_tr[reps], c_tr[reps], d_num, floor=max_distance,
                                         quantile=radius_quantile, factor=radius_factor, rng=rng)  # fmt: skip
    query = np.flatnonzero(~exact)
    n = len(test)
    found = np.zeros(n, dtype=bool)
    best = np.full(n, np.nan)
    partner = np.full(n, -1, dtype=np.int64)
    info: dict[str, Any] = {"search": "none (every test row is an exact duplicate)"}
    if len(query):
        args = (v_tr[reps], v_te[query], c_tr[reps], c_te[query], d_num, radius)
        if float(len(reps)) * float(len(query)) <= exact_below:
            b, pt, info = exact_search(*args, k=neighbours)
        else:
            b, pt, info = lsh_search(
                *args, seed=seed, miss_probability=miss_probability, max_bucket=max_bucket
            )
        best[query] = b
        partner[query] = np.where(pt >= 0, reps[np.maximum(pt, 0)], -1)
        found[query] = np.isfinite(b)
    return Near(found, best, partner, radius, fitted, info, d_num, int(len(query)))
