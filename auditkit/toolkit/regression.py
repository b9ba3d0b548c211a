"""Regression metrics with seeded bootstrap intervals, interval coverage, PIT and Wasserstein.

Point estimates equal scikit-learn's on the same predictions (the tests compare them):
``rmse`` = ``root_mean_squared_error``, ``mae`` = ``mean_absolute_error``, ``median_ae`` =
``median_absolute_error``, ``r2`` = ``r2_score``, ``mape`` = ``mean_absolute_percentage_error``
(a share, not a percentage; only defined here for a positive label).

Intervals are percentile bootstraps over rows, built like ``auditkit.toolkit.stats``: up to
``exact_max`` rows one ``(n_boot, n)`` matrix of resample counts (an exact multinomial resample),
shared by every metric; above it Poisson(1) weights drawn in chunks of replicates (the Poisson
bootstrap, memory bounded by ``chunk_cells``). All metrics are weighted functions of the rows, so a
replicate is one weight vector; the median uses a weighted median on the sorted errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

REGRESSION_METRICS = ("rmse", "mae", "median_ae", "r2", "mape")
LOWER_IS_BETTER = frozenset({"rmse", "mae", "median_ae", "mape", "mse"})


def _arrays(y: Any, pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    if y.shape != pred.shape:
        raise ValueError(f"y and pred differ in length: {len(y)} vs {len(pred)}")
    return y, pred


def regression_metrics(y: Any, pred: Any, which: Sequence[str] = REGRESSION_METRICS) -> dict[str, float]:
    """Point estimates of ``which`` (rmse, mae, median_ae, r2, mape, mse); NaN where undefined
    (R² of a constant target; MAPE when a label is ≤ 0)."""
    y, pred = _arrays(y, pred)
    out: dict[str, float] = {}
    if len(y) == 0:
        return {m: float("nan") for m in which}
    e = pred - y
    for m in which:
        if m == "mse":
            out[m] = float(np.mean(e * e))
        elif m == "rmse":
            out[m] = float(np.sqrt(np.mean(e * e)))
        elif m == "mae":
            out[m] = float(np.mean(np.abs(e)))
        elif m == "median_ae":
            out[m] = float(np.median(np.abs(e)))
        elif m == "r2":
            ss_tot = float(np.sum((y - y.mean()) ** 2))
            out[m] = float(1 - np.sum(e * e) / ss_tot) if ss_tot > 0 else float("nan")
        elif m == "mape":
            out[m] = float(np.mean(np.abs(e) / y)) if (y > 0).all() else float("nan")
        else:
            raise ValueError(f"unknown regression metric {m!r}")
    return out


def _weights(n: int, n_boot: int, rng: np.random.Generator, exact_max: int, chunk_cells: int) -> Any:
    """Yield (rows, n) blocks of bootstrap weights: multinomial counts up to exact_max, else Poisson."""
    if n <= exact_max:
        from auditkit.toolkit.stats import _row_weights

        yield _row_weights(n, n_boot, rng).astype(np.float64)
        return
    step = max(1, chunk_cells // n)
    for s in range(0, n_boot, step):
        rows = min(step, n_boot - s)
        yield rng.poisson(1.0, size=(rows, n)).astype(np.float64)


def _weighted_median(values_sorted: np.ndarray, w_sorted: np.ndarray) -> np.ndarray:
    """Weighted median of each row of weights (values already sorted ascending)."""
    cum = np.cumsum(w_sorted, axis=1)
    half = cum[:, -1:] / 2.0
    lo = np.argmax(cum >= half, axis=1)
    # an even total whose half falls exactly on a boundary: average with the next value (np.median)
    exact = np.isclose(cum[np.arange(len(cum)), lo], half[:, 0])
    nxt = np.minimum(lo + 1, len(values_sorted) - 1)
    # the next value with positive weight after lo
    hi = nxt.copy()
    for i in np.flatnonzero(exact):
        after = np.flatnonzero(w_sorted[i, lo[i] + 1 :] > 0)
        hi[i] = lo[i] + 1 + after[0] if len(after) else lo[i]
    return np.where(exact, (values_sorted[lo] + values_sorted[hi]) / 2.0, values_sorted[lo])


def bootstrap_regression(
    y: Any,
    pred: Any,
    which: Sequence[str] = REGRESSION_METRICS,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
    exact_max: int = 20_000,
    chunk_cells: int = 10_000_000,
    interval: str = "studentized",
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of each metric in ``which`` (see the module docstring). RMSE and MSE:
    bootstrap-t on log MSE (``interval="studentized"``, the default; the same replicates give each
    one's standard error in closed form); the other metrics, and all with
    ``interval="percentile"``: the percentile interval. Coverage of the true RMSE, n = 200, 1,000
    data sets (2026-12-04): normal errors 93.6% percentile → 94.3% studentized; t₅ errors 89.9% →
    91.7%; centred log-normal errors 71.6% → 86.6% (heavy tails: no bootstrap is exact there). BCa
    was tried and moved the normal case by 0.2 points only."""
    from auditkit.toolkit.stats import _percentile

    y, pred = _arrays(y, pred)
    rng = rng or np.random.default_rng(0)
    n = len(y)
    if n == 0:
        return {m: (float("nan"), float("nan")) for m in which}
    e = pred - y
    e2, ae = e * e, np.abs(e)
    ape = ae / y if (y > 0).all() else None
    studentize = interval == "studentized" and n >= 3 and ("rmse" in which or "mse" in which)
    tstats: list[np.ndarray] = []
    log_mse = float(np.log(np.mean(e2))) if studentize and np.mean(e2) > 0 else 0.0
    order = np.argsort(ae, kind="stable")
    ae_sorted = ae[order]
    vals: dict[str, list[np.ndarray]] = {m: [] for m in which}
    for w in _weights(n, n_boot, rng, exact_max, chunk_cells):
        s = w.sum(axis=1)
        s = np.where(s > 0, s, 1.0)
        sse = w @ e2
        if studentize:
            m_b = sse / s
            v_b = np.maximum((w @ (e2 * e2)) / s - m_b * m_b, 0.0) / max(n - 1, 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                tstats.append((np.log(m_b) - log_mse) / (np.sqrt(v_b) / m_b))
        for m in which:
            if m == "mse":
                v = sse / s
            elif m == "rmse":
                v = np.sqrt(sse / s)
            elif m == "mae":
                v = (w @ ae) / s
            elif m == "median_ae":
                v = _weighted_median(ae_sorted, w[:, order])
            elif m == "r2":
                sy, syy = w @ y, w @ (y * y)
                ss_tot = syy - sy * sy / s
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.where(ss_tot > 1e-300, 1 - sse / ss_tot, np.nan)
            elif m == "mape":
                v = (w @ ape) / s if ape is not None else np.full(len(w), np.nan)
            else:
                raise ValueError(f"unknown regression metric {m!r}")
            vals[m].append(np.asarray(v, dtype=np.float64))
    out = {m: _percentile(np.concatenate(v), confidence) for m, v in vals.items()}
    if interval == "studentized" and n >= 3:
        for m in which:
            if m in ("rmse", "mse"):
                lo, hi = _log_mse_t(e2, tstats, confidence)
                out[m] = (float(np.sqrt(lo)), float(np.sqrt(hi))) if m == "rmse" else (lo, hi)
    return out


def _log_mse_t(e2: np.ndarray, tstats: list[np.ndarray], confidence: float) -> tuple[float, float]:
    """Bootstrap-t interval of the MSE on the log scale: the pivot (log MSE* − log MSE) / se*, with
    se = sd(e²) / (√n · MSE) (delta method), computed per replicate from the same weights."""
    from auditkit.toolkit.stats import _percentile

    n = len(e2)
    mse = float(e2.mean())
    if not mse > 0:
        return (mse, mse)
    se = float(np.sqrt(e2.var(ddof=1) / n)) / mse
    t = np.concatenate(tstats)
    t = t[np.isfinite(t)]
    if not se > 0 or len(t) < 10:
        return (mse, mse)
    t_lo, t_hi = _percentile(t, confidence)
    return (float(np.exp(np.log(mse) - t_hi * se)), float(np.exp(np.log(mse) - t_lo * se)))


def bootstrap_stat(
    arrays: Sequence[Any],
    statistic: Any,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
    paired: bool = False,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(*resampled arrays)``, each array resampled on its own
    (independent samples, e.g. a group and the rest, or train and test), or with ``paired`` the
    same rows of every array (arrays of one length: two models' errors on the same rows).
    Resamples are drawn one replicate at a time from ``rng`` (memory O(n); results depend only on
    the seed)."""
    from auditkit.toolkit.stats import _percentile

    rng = rng or np.random.default_rng(0)
    arrs = [np.asarray(a, dtype=np.float64) for a in arrays]
    if any(len(a) == 0 for a in arrs):
        return (float("nan"), float("nan"))
    if paired and len({len(a) for a in arrs}) != 1:
        raise ValueError("paired resampling needs arrays of one length")
    # one replicate's indices at a time: memory O(n), whatever n_boot (1M rows × 1000 would be 8 GB)
    values = np.empty(n_boot)
    for b in range(n_boot):
        if paired:
            i = rng.integers(0, len(arrs[0]), size=len(arrs[0]))
            values[b] = statistic(*(a[i] for a in arrs))
        else:
            values[b] = statistic(*(a[rng.integers(0, len(a), size=len(a))] for a in arrs))
    return _percentile(values, confidence)


def percentile_interval(values: Any, confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap replicates (non-finite ones dropped)."""
    from auditkit.toolkit.stats import _percentile

    return _percentile(np.asarray(values, dtype=np.float64), confidence)


def rmse(e: Any) -> float:
    """Root mean square of the errors ``e``."""
    e = np.asarray(e, dtype=np.float64)
    return float(np.sqrt(np.mean(e * e))) if len(e) else float("nan")


def mae(e: Any) -> float:
    """Mean absolute value of the errors ``e``."""
    e = np.asarray(e, dtype=np.float64)
    return float(np.mean(np.abs(e))) if len(e) else float("nan")


# --------------------------------------------------------------------------------------------------
# Probabilistic outputs: interval coverage, PIT, sharpness
# --------------------------------------------------------------------------------------------------


def interval_coverage(y: Any, lo: Any, hi: Any) -> tuple[float, int, int]:
    """(share of y inside [lo, hi], rows inside, rows): a Wilson interval goes with the counts."""
    y = np.asarray(y, dtype=np.float64)
    inside = (y >= np.asarray(lo)) & (y <= np.asarray(hi))
    k, n = int(inside.sum()), len(y)
    return (k / n if n else float("nan"), k, n)


def gaussian_pit(y: Any, mean: Any, sd: Any) -> np.ndarray:
    """Probability integral transform Φ((y − mean)/sd): uniform on [0, 1] for a calibrated model."""
    from scipy.stats import norm

    sd = np.maximum(np.asarray(sd, dtype=np.float64), 1e-300)
    return np.asarray(norm.cdf((np.asarray(y, dtype=np.float64) - np.asarray(mean)) / sd))


def gaussian_interval(mean: Any, sd: Any, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` interval of N(mean, sd²)."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    mean, sd = np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64)
    return mean - z * sd, mean + z * sd


def quantile_pit(y: Any, quantiles: Any, levels: Sequence[float]) -> np.ndarray:
    """PIT from predicted quantiles: the predictive CDF at y, linear between the levels and flat
    (0 or 1 beyond the extremes split evenly: the outer level halves) outside them. With few levels
    the PIT is coarse; read its histogram with the levels in mind."""
    y = np.asarray(y, dtype=np.float64)
    q = np.sort(np.asarray(quantiles, dtype=np.float64), axis=1)
    lv = np.asarray(levels, dtype=np.float64)
    out = np.empty(len(y))
    for i in range(len(y)):
        qi = q[i]
        if y[i] < qi[0]:
            out[i] = lv[0] / 2
        elif y[i] > qi[-1]:
            out[i] = (1 + lv[-1]) / 2
        else:
            out[i] = float(np.interp(y[i], qi, lv)) if qi[-1] > qi[0] else float(lv[len(lv) // 2])
    return out


def pinball_loss(y: Any, quantiles: Any, levels: Sequence[float]) -> dict[float, float]:
    """Mean pinball (quantile) loss per level; equals scikit-learn's ``mean_pinball_loss``."""
    y = np.asarray(y, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    out = {}
    for j, a in enumerate(levels):
        d = y - q[:, j]
        out[float(a)] = float(np.mean(np.maximum(a * d, (a - 1) * d)))
    return out


def gaussian_crps(y: Any, mean: Any, sd: Any) -> np.ndarray:
    """Per-row CRPS of N(mean, sd²) at y (Gneiting & Raftery 2007, closed form), in label units."""
    from scipy.stats import norm

    sd = np.maximum(np.asarray(sd, dtype=np.float64), 1e-300)
    z = (np.asarray(y, dtype=np.float64) - np.asarray(mean)) / sd
    return np.asarray(sd * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)))


def pit_uniformity(pit: Any, n_bins: int = 10) -> dict[str, Any]:
    """PIT histogram (counts per equal bin of [0, 1]), the Kolmogorov–Smirnov distance to the
    uniform with its p-value, and the largest bin share deviation from 1/n_bins."""
    from scipy.stats import kstest

    pit = np.asarray(pit, dtype=np.float64)
    counts = np.histogram(np.clip(pit, 0, 1), bins=n_bins, range=(0, 1))[0]
    res = kstest(pit, "uniform")
    share = counts / max(len(pit), 1)
    return {
        "counts": [int(c) for c in counts],
        "ks": float(res.statistic),
        "p_value": float(res.pvalue),
        "max_bin_deviation": float(np.max(np.abs(share - 1 / n_bins))) if len(pit) else float("nan"),
    }


# --------------------------------------------------------------------------------------------------
# Distribution shift of a numeric target
# --------------------------------------------------------------------------------------------------


def wasserstein(a: Any, b: Any) -> float:
    """1-Wasserstein distance between two samples (scipy's ``wasserstein_distance``)."""
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))


def _w1_sorted(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b))


def wasserstein_ci(
    a: Any,
    b: Any,
    *,
    n_boot: int = 500,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
    max_rows: int = 20_000,
) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval of the 1-Wasserstein distance, clipped at 0,
    resampling each sample on its own (each subsampled to ``max_rows`` first, with the same rng,
    when larger).

    The distance is biased upwards on small samples (two samples of one distribution are never at
    distance 0) and its bootstrap replicates are biased upwards again, so a percentile interval sits
    above the truth (in a simulation of two N(0, 1) samples of 160 and 80 rows its lower bound
    exceeded 0.1 sd in 93% of draws). The basic interval 2·W − (upper, lower quantile) reflects that
    bias back: there the lower bound exceeded 0.1 sd in 7.5% of draws, and a 0.5 sd shift was found
    in 80% (100% with 330/112 rows). Its coverage of the true distance was 0.68–0.88 in that
    simulation: read it as a shift screen, not an exact interval."""
    est = wasserstein_shift(a, b, n_boot=n_boot, confidence=confidence, rng=rng, max_rows=max_rows)
    return est["ci"]


def wasserstein_shift(
    a: Any,
    b: Any,
    *,
    n_boot: int = 500,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
    max_rows: int = 20_000,
) -> dict[str, Any]:
    """The 1-Wasserstein distance between two samples as a shift estimate: ``plugin`` (scipy's
    distance on the samples, each subsampled to ``max_rows`` when larger), ``estimate`` the
    bootstrap bias-corrected distance 2·W − mean(replicates), clipped at 0, and ``ci`` the basic
    interval of :func:`wasserstein_ci`. Report ``estimate`` with ``ci``: the plug-in is biased
    upwards (two samples of one distribution are never at distance 0) and on such samples often lies
    above the basic interval's upper bound (0.060 with an interval 0.000–0.052 for 833 and 358 rows
    of one distribution); the bias-corrected estimate lies inside it."""
    rng = rng or np.random.default_rng(0)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) > max_rows:
        a = rng.choice(a, size=max_rows, replace=False)
    if len(b) > max_rows:
        b = rng.choice(b, size=max_rows, replace=False)
    from auditkit.toolkit.stats import _percentile

    w = _w1_sorted(a, b)
    reps = np.empty(n_boot)
    for i in range(n_boot):  # one replicate at a time: memory O(n)
        reps[i] = _w1_sorted(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))])
    lo, hi = _percentile(reps, confidence)
    ok = reps[np.isfinite(reps)]
    estimate = max(0.0, 2 * w - float(np.mean(ok))) if len(ok) else w
    return {"plugin": w, "estimate": estimate, "ci": (max(0.0, 2 * w - hi), max(0.0, 2 * w - lo))}


def tail_summary(y: Any) -> dict[str, float]:
    """Shape of a target's distribution: skewness, excess kurtosis, and the tail ratio
    (q99 − q50) / (q75 − q25) (a normal gives ≈ 1.72)."""
    from scipy.stats import kurtosis, skew

    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y)]
    q25, q50, q75, q99 = np.quantile(y, [0.25, 0.5, 0.75, 0.99])
    iqr = q75 - q25
    return {
        "skewness": float(skew(y)),
        "excess_kurtosis": float(kurtosis(y)),
        "tail_ratio": float((q99 - q50) / iqr) if iqr > 0 else float("inf"),
    }
