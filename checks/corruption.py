"""Built-in checks: robustness to natural corruptions and noise (AK-ADV-003).

Images are corrupted in the normalised value range (``model.input.range``, default [0, 1]) at five
deterministic severities, in the spirit of ImageNet-C; tabular rows get Gaussian noise scaled to
each feature's train spread and feature dropout to the train median (mode for categorical codes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import DEFAULT_MIN_ROWS, Finding, Metric, NotApplicable, Outcome, SpecError, check, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext

# Severity parameters 1..5 (image values in units of the value range).
IMAGE_SEVERITIES: dict[str, list[float]] = {
    "gaussian_noise": [0.04, 0.08, 0.12, 0.18, 0.26],  # noise sd
    "impulse_noise": [0.01, 0.03, 0.05, 0.10, 0.15],  # share of pixels set to 0 or 1
    "gaussian_blur": [0.4, 0.6, 0.8, 1.0, 1.5],  # kernel sd in pixels per 32 pixels of image side
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.2],  # contrast kept around each image's mean
    "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],  # added to every value, then clipped
    "pixelate": [0.85, 0.7, 0.6, 0.5, 0.4],  # resolution kept (area down-, nearest up-sampling)
    "occlusion": [
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
    ],  # side of a blank square at a random place, share of the image side
}
TABULAR_SEVERITIES: dict[str, list[float]] = {
    "gaussian_noise": [0.05, 0.1, 0.2, 0.3, 0.5],  # noise sd as a share of each feature's train sd
    "feature_dropout": [0.05, 0.1, 0.2, 0.3, 0.5],  # chance that a value is replaced by the train median
}


def _image_corruption(name: str, z: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """``z``: (n, ..., h, w) in [0, 1]. Returns the corrupted copy, clipped to [0, 1]."""
    h, w = z.shape[-2], z.shape[-1]
    if name == "gaussian_noise":
        out = z + rng.normal(0.0, level, size=z.shape)
    elif name == "impulse_noise":
        u = rng.random(z.shape)
        out = z.copy()
        out[u < level / 2] = 0.0
        out[(u >= level / 2) & (u < level)] = 1.0
    elif name == "gaussian_blur":
        from scipy.ndimage import gaussian_filter

        sd = level * max(1.0, min(h, w) / 32)
        out = gaussian_filter(z, sigma=[0] * (z.ndim - 2) + [sd, sd], mode="nearest")
    elif name == "contrast":
        mean = z.mean(axis=tuple(range(1, z.ndim)), keepdims=True)
        out = (z - mean) * level + mean
    elif name == "brightness":
        out = z + level
    elif name == "pixelate":
        import torch
        from torch.nn import functional as F

        t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).reshape(-1, 1, h, w)
        small = F.interpolate(t, size=(max(1, round(h * level)), max(1, round(w * level))), mode="area")
        out = F.interpolate(small, size=(h, w), mode="nearest").reshape(z.shape).numpy()
    elif name == "occlusion":
        side_h, side_w = max(1, round(h * level)), max(1, round(w * level))
        out = z.copy()
        top = rng.integers(0, h - side_h + 1, size=len(z))
        left = rng.integers(0, w - side_w + 1, size=len(z))
        for i in range(len(z)):
            out[i, ..., top[i] : top[i] + side_h, left[i] : left[i] + side_w] = 0.0
    else:
        raise SpecError(f"unknown image corruption {name!r}; known: {sorted(IMAGE_SEVERITIES)}")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _tabular_corruption(
    name: str, x: np.ndarray, level: float, rng: np.random.Generator, *, sd: np.ndarray, noisy: np.ndarray,
    fill: np.ndarray,
) -> np.ndarray:  # fmt: skip
    out = x.astype(np.float32).copy()
    if name == "gaussian_noise":
        out[:, noisy] += rng.normal(0.0, 1.0, size=(len(x), int(noisy.sum()))) * (level * sd[noisy])
    elif name == "feature_dropout":
        drop = rng.random(x.shape) < level
        out = np.where(drop, fill[None, :], out).astype(np.float32)
    else:
        raise SpecError(f"unknown tabular corruption {name!r}; known: {sorted(TABULAR_SEVERITIES)}")
    return out


@dataclass
class CorruptionSetup:
    """The rows to corrupt and how: shared by AK-ADV-003 and the deployment parity check."""

    x: np.ndarray
    y: np.ndarray
    kind: str
    table: dict[str, list[float]]
    names: list[str]
    severities: list[int]
    apply: Callable[[str, float, np.random.Generator], np.ndarray]

    def corrupted(self, ci: int, si: int, seed: int) -> np.ndarray:
        """Corruption ``ci`` at severity index ``si``; deterministic per seed, corruption and severity."""
        name, sev = self.names[ci], self.severities[si]
        return self.apply(name, self.table[name][sev - 1], np.random.default_rng([seed, ci, sev]))


def corruption_setup(
    ctx: RunContext, split: str, corruptions: list[str] | None, severities: list[int], max_samples: int,
    rng: np.random.Generator, *, min_rows: int = 0,
) -> CorruptionSetup:  # fmt: skip
    """Labelled rows of ``split`` (a subsample of at most ``max_samples`` drawn from ``rng``) and the corruptions."""
    ds = ctx.dataset(split)
    y = np.asarray(ds.y)
    keep = np.flatnonzero(y >= 0)
    if len(keep) == 0:
        raise NotApplicable(f"split {split!r} has no labelled rows")
    require_rows(len(keep), min_rows, what="accuracy under corruption", split=f"labelled {split}")
    if len(keep) > max_samples:
        keep = np.sort(rng.choice(keep, size=max_samples, replace=False))
    x, y = ds.x[keep].astype(np.float32), y[keep]
    bad = [s for s in severities if s not in (1, 2, 3, 4, 5)]
    if bad or not severities:
        raise SpecError(f"severities must be among 1..5, got {severities}")
    kind = "image" if (ds.kind == "image" or x.ndim > 2) else "tabular"
    table = IMAGE_SEVERITIES if kind == "image" else TABULAR_SEVERITIES
    names = list(corruptions) if corruptions is not None else list(table)
    unknown = [c for c in names if c not in table]
    if unknown:
        raise SpecError(f"corruptions {unknown} are not known for {kind} inputs; known: {sorted(table)}")
    apply: Callable[[str, float, np.random.Generator], np.ndarray]
    if kind == "image":
        if x.ndim < 3:
            raise NotApplicable("image corruptions need inputs shaped (n, ..., height, width)")
        from auditkit.checks.adversarial import image_range

        lo, hi = image_range(ctx, x)
        z = np.clip((x - lo) / (hi - lo), 0.0, 1.0)

        def apply(name: str, level: float, g: np.random.Generator) -> np.ndarray:
            return (lo + _image_corruption(name, z, level, g) * (hi - lo)).astype(np.float32)

    else:
        ref = ctx.dataset("train") if "train" in ctx.splits() else ds
        xr = ref.x.astype(np.float64)
        sd = np.nan_to_num(np.nanstd(xr, axis=0))
        is_cat = np.array([f in ds.categorical for f in ds.features])
        n_unique = np.array([len(np.unique(c[np.isfinite(c)])) for c in xr.T])
        noisy = ~is_cat & (n_unique > 2) & (sd > 0)
        fill = np.nan_to_num(np.nanmedian(xr, axis=0)).astype(np.float32)
        for j in np.flatnonzero(is_cat):
            codes, counts = np.unique(xr[:, j][xr[:, j] >= 0], return_counts=True)
            fill[j] = codes[np.argmax(counts)] if len(codes) else -1

        def apply(name: str, level: float, g: np.random.Generator) -> np.ndarray:
            return _tabular_corruption(name, x, level, g, sd=sd, noisy=noisy, fill=fill)

    return CorruptionSetup(x, y, kind, table, names, list(severities), apply)


@check(
    id="AK-ADV-003",
    area="robustness",
    title="Robustness to natural corruptions and noise (5 severities)",
    requires=("model", "test"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.6", "MEASURE 2.7"),
    tags=("robustness", "corruption", "noise"),
    cost="moderate",
)
def natural_corruptions(
    ctx: RunContext, /, *, split: str = "test", corruptions: list[str] | None = None,
    severities: list[int] = [1, 2, 3, 4, 5], max_relative_error: float = 0.1,  # noqa: B006
    conservative: bool = False, max_samples: int = 5000, baseline_drops: dict[str, float] | None = None,
    max_relative_mce: float | None = None, min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:  # fmt: skip
    """Accuracy under natural corruptions at five deterministic severities, and the mean relative
    corruption error (mean accuracy lost against clean, over corruptions and severities).

    Images (in the declared value range): Gaussian noise, impulse noise, Gaussian blur, contrast,
    brightness, pixelation, occlusion. Tabular: Gaussian noise with a standard deviation that is a
    share of each numeric feature's train standard deviation (categorical codes and binary columns
    untouched), and feature dropout that replaces values by the train median (mode for categorical
    features). Each corruption × severity gets its accuracy with a Wilson interval; the mean
    relative corruption error gets a bootstrap interval over rows. This is Hendrycks & Dietterich's
    relative corruption error without a baseline model to normalise by. The gate compares it with
    ``max_relative_error`` (its upper 95% bound when ``conservative``). Given ``baseline_drops`` (a
    reference model's mean accuracy drop per corruption, e.g. ``details.per_corruption`` of this
    metric in the previous release's results.json), the check also reports their *Relative mCE*:
    the mean over corruptions of this model's drop divided by the baseline's (below 1: degrades
    less than the baseline), with a bootstrap interval over rows, gated by ``max_relative_mce``.

    Parameters
    ----------
    split: split to corrupt.
    corruptions: corruptions to apply; default all for the input kind (image: gaussian_noise, impulse_noise,
        gaussian_blur, contrast, brightness, pixelate, occlusion; tabular: gaussian_noise, feature_dropout).
    severities: severities to run, from 1 (mild) to 5 (severe).
    max_relative_error: largest acceptable mean accuracy drop from clean (0.1 = 10 points).
    conservative: gate on the upper end of the 95% interval instead of the point estimate.
    max_samples: corrupt a seeded random subsample of at most this many labelled rows.
    baseline_drops: per corruption name, a reference model's mean accuracy drop (> 0) over the same
        severities; enables the Relative mCE metric.
    max_relative_mce: largest acceptable Relative mCE (needs ``baseline_drops``); None reports it ungated.
    min_rows: fewest labelled rows of ``split`` to judge on; fewer make the check not applicable, never a pass.
    """
    from auditkit.toolkit.stats import mean_ci, wilson

    adapter = ctx.model()
    rng = ctx.rng()
    setup = corruption_setup(ctx, split, corruptions, severities, max_samples, rng, min_rows=min_rows)
    x, y, kind, table, names = setup.x, setup.y, setup.kind, setup.table, setup.names
    if baseline_drops is not None:
        missing = [c for c in names if c not in baseline_drops]
        if missing or any(not float(baseline_drops[c]) > 0 for c in names):
            raise SpecError(f"baseline_drops needs a positive drop for every corruption run ({names}); "
                             f"missing {missing}" if missing else "baseline_drops values must be > 0")  # fmt: skip
    elif max_relative_mce is not None:
        raise SpecError("max_relative_mce needs baseline_drops (a reference model's drop per corruption)")
    clean = adapter.predict(x) == y
    n = len(y)
    rows: list[list[Any]] = []
    correct = np.zeros((n, len(names), len(severities)), dtype=bool)
    series = []
    for ci, name in enumerate(names):
        accs, los, his = [], [], []
        for si, sev in enumerate(severities):
            correct[:, ci, si] = adapter.predict(setup.corrupted(ci, si, ctx.seed)) == y
            k = int(correct[:, ci, si].sum())
            lo_ci, hi_ci = wilson(k, n)
            accs.append(k / n)
            los.append(lo_ci)
            his.append(hi_ci)
            rows.append([name, sev, table[name][sev - 1], round(k / n, 4), round(lo_ci, 4), round(hi_ci, 4),
                         round(float(clean.mean()) - k / n, 4), n])  # fmt: skip
        series.append({"name": name, "x": list(severities), "y": accs, "lo": los, "hi": his})
    drop_per_row = clean.astype(float) - correct.reshape(n, -1).mean(axis=1)
    mrce = float(drop_per_row.mean())
    ci_mrce = mean_ci(drop_per_row, rng=np.random.default_rng(ctx.seed))
    acc, acc_ci = float(clean.mean()), wilson(int(clean.sum()), n)
    per_corr = (clean.mean() - correct.mean(axis=0).mean(axis=1)).tolist()
    metrics = [
        Metric("clean_accuracy", acc, ci=acc_ci, n=n),
        Metric("mean_corruption_accuracy", float(correct.mean()), ci=mean_ci(correct.reshape(n, -1).mean(axis=1),
               rng=np.random.default_rng(ctx.seed + 1)), n=n, description="accuracy averaged over corruptions and severities"),
        Metric("mean_relative_corruption_error", mrce, ci=ci_mrce, n=n, threshold=max_relative_error, direction="lower",
               bound="conservative" if conservative else "value",
               description="mean over corruptions and severities of (clean accuracy − corrupted accuracy)",
               details={"per_corruption": dict(zip(names, per_corr, strict=True))}),
    ]  # fmt: skip
    if baseline_drops is not None:
        base = np.array([float(baseline_drops[c]) for c in names])
        # Σ_s(E_s − E_clean) / Σ_s(E_s,base − E_clean,base) per corruption, averaged: linear in rows.
        rel_row = ((clean.astype(float)[:, None] - correct.mean(axis=2)) / base).mean(axis=1)
        metrics.append(Metric(
            "relative_mce", float(rel_row.mean()), ci=mean_ci(rel_row, rng=np.random.default_rng(ctx.seed + 2)), n=n,
            threshold=max_relative_mce, direction="lower", bound="conservative" if conservative else "value",
            description="mean over corruptions of (this model's accuracy drop / the baseline's drop)",
            details={"per_corruption": {c: d / b for c, d, b in zip(names, per_corr, base, strict=True)},
                     "baseline_drops": dict(zip(names, base.tolist(), strict=True))},
        ))  # fmt: skip
    worst = int(np.argmax(per_corr))
    findings = [Finding(
        f"Most damaging corruption: {names[worst]} (mean accuracy drop {per_corr[worst]:.3f} over severities "
        f"{severities})", severity="info", key=f"corruption:{names[worst]}",
    )]  # fmt: skip
    evidence = {
        "accuracy by corruption and severity": {
            "columns": ["corruption", "severity", "parameter", "accuracy", "ci_low", "ci_high", "drop", "n"], "rows": rows},
        "plots": [
            {"type": "line", "title": "Accuracy under corruption", "x_label": "severity", "y_label": "accuracy",
             "series": series},
            {"type": "bar", "title": "Mean accuracy drop per corruption", "x_label": "corruption",
             "y_label": "accuracy drop", "categories": names, "series": [{"name": "drop", "values": per_corr}]},
        ],
        "setup": {"kind": kind, "samples": n, "severity_parameters": {c: table[c] for c in names}},
    }  # fmt: skip
    summary = (f"Clean accuracy {acc:.3f}; mean accuracy {float(correct.mean()):.3f} over {len(names)} corruptions × "
               f"{len(severities)} severities; mean relative corruption error {mrce:.3f} (n={n}).")  # fmt: skip
    return Outcome.from_metrics(metrics, summary=summary, findings=findings, evidence=evidence)
