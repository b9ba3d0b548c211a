"""Confidence intervals: Wilson for proportions, a seeded, vectorised percentile bootstrap otherwise."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats as _st


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
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))


def mean_ci(values: np.ndarray, *, n_boot: int = 1000, confidence: float = 0.95,
            rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Bootstrap interval of a mean, vectorised through a Poisson-free multinomial count matrix."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = rng or np.random.default_rng(0)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    means = counts @ values / n
    alpha = (1 - confidence) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))
