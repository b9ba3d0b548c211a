"""Corruption generators and the shared corruption setup of AK-ADV-003 (and AK-DEPLOY parity).

Private helpers of the built-in checks; see checks/corruption.py for the method."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import NotApplicable, SpecError, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext

# AK-ADV-003's defaults that AK-DEPLOY-001 reuses (a test keeps them equal to natural_corruptions' signature).
CORRUPTION_DEFAULTS: dict[str, Any] = {
    "split": "test",
    "corruptions": None,
    "severities": [1, 2, 3, 4, 5],
    "max_samples": 5000,
}

# Severity parameters 1..5 (image values in units of the value range).
IMAGE_SEVERITIES: dict[str, list[float]] = {
    # The one image severity table (AK-ADV-003 and AK-OOD-002): Hendrycks & Dietterich's ImageNet-C
    # values where they define the corruption the same way (gaussian_noise, contrast).
    "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],  # noise sd, as a share of the value range (ImageNet-C)
    "impulse_noise": [0.01, 0.03, 0.05, 0.10, 0.15],  # share of pixels set to 0 or 1
    "gaussian_blur": [0.4, 0.6, 0.8, 1.0, 1.5],  # kernel sd in pixels per 32 pixels of image side
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],  # contrast kept around each image's mean (ImageNet-C)
    "brightness": [
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
    ],  # added to every value (a share of the value range), then clipped
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
    """The rows to corrupt and how: shared by AK-ADV-003 and the deployment parity check.

    Plain data (no closure), so that it pickles: AK-ADV-003 sends it to compute workers once.
    Images: ``z`` is ``x`` normalised to [0, 1] by the value range ``(lo, hi)``. Tabular: ``sd``,
    ``noisy`` and ``fill`` are the train spread, the columns noise may touch and the dropout fill.
    """

    x: np.ndarray
    y: np.ndarray
    kind: str
    table: dict[str, list[float]]
    names: list[str]
    severities: list[int]
    z: np.ndarray | None = None
    lo: float = 0.0
    hi: float = 1.0
    sd: np.ndarray | None = None
    noisy: np.ndarray | None = None
    fill: np.ndarray | None = None

    def apply(self, name: str, level: float, g: np.random.Generator) -> np.ndarray:
        if self.kind == "image":
            assert self.z is not None
            out = _image_corruption(name, self.z, level, g)
            return (self.lo + out * (self.hi - self.lo)).astype(np.float32)
        assert self.sd is not None and self.noisy is not None and self.fill is not None
        return _tabular_corruption(name, self.x, level, g, sd=self.sd, noisy=self.noisy, fill=self.fill)

    def corrupted(self, ci: int, si: int, seed: int) -> np.ndarray:
        """Corruption ``ci`` at severity index ``si``; deterministic per seed, corruption and severity."""
        name, sev = self.names[ci], self.severities[si]
        return self.apply(name, self.table[name][sev - 1], np.random.default_rng([seed, ci, sev]))


def corruption_task(
    shared: tuple[Any, CorruptionSetup, int], item: tuple[int, int], _seed: int
) -> np.ndarray:
    """AK-ADV-003's compute task (``ctx.map``): per row, correct under corruption ``ci`` at severity
    index ``si``. The corruption's generator comes from (check seed, corruption, severity) as it did
    before the grid ran as tasks, not from the task's seed: the numbers did not move."""
    adapter, setup, seed = shared
    ci, si = item
    return np.asarray(adapter.predict(setup.corrupted(ci, si, seed)) == setup.y)


def corruption_plan(
    kind: str, severities: Sequence[int], corruptions: Sequence[str] | None
) -> tuple[dict[str, Any], list[str]]:
    """The severity table of the input kind and the corruptions to run (default: all of it);
    severities outside 1..5 and corruptions the kind does not know are the user's mistake."""
    if not severities or any(s not in (1, 2, 3, 4, 5) for s in severities):
        raise SpecError(f"severities must be among 1..5, got {list(severities)}")
    table = IMAGE_SEVERITIES if kind == "image" else TABULAR_SEVERITIES
    names = list(corruptions) if corruptions is not None else list(table)
    unknown = [c for c in names if c not in table]
    if unknown:
        raise SpecError(f"corruptions {unknown} are not known for {kind} inputs; known: {sorted(table)}")
    return table, names


def tabular_corruption_stats(ctx: RunContext, ds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From train (else the split itself): each feature's sd, which features take noise (numeric,
    more than two values, sd > 0), and the value a dropped cell is filled with (median; mode of a
    categorical code)."""
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
    return sd, noisy, fill


def corruption_setup(
    ctx: RunContext, split: str, corruptions: list[str] | None, severities: Sequence[int], max_samples: int,
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
    kind = "image" if (ds.kind == "image" or x.ndim > 2) else "tabular"
    table, names = corruption_plan(kind, severities, corruptions)
    if kind == "image":
        if x.ndim < 3:
            raise NotApplicable("image corruptions need inputs shaped (n, ..., height, width)")
        from auditkit.checks._attacks import image_range

        lo, hi = image_range(ctx, x)
        z = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        return CorruptionSetup(x, y, kind, table, names, list(severities), z=z, lo=lo, hi=hi)
    sd, noisy, fill = tabular_corruption_stats(ctx, ds)
    return CorruptionSetup(x, y, kind, table, names, list(severities), sd=sd, noisy=noisy, fill=fill)
