"""AK-OOD-001/002 helpers: synthetic OOD sets and covariate shifts, built from train statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from auditkit.checks._corruptions import IMAGE_SEVERITIES

from auditkit import SpecError

if TYPE_CHECKING:
    from auditkit import RunContext
    from auditkit.toolkit import Dataset

IMAGE_SETS = ("uniform_noise", "gaussian_noise", "inverted", "pixel_shuffled")
TABULAR_SETS = ("uniform_box", "column_shuffled", "scaled_outliers")
# The names as types, so that a misspelt set or shift is refused before anything runs; whether it
# applies to the audit's input kind is known only at run time.
SyntheticSet = Literal["uniform_noise", "gaussian_noise", "inverted", "pixel_shuffled", "uniform_box",
                       "column_shuffled", "scaled_outliers"]  # fmt: skip
ShiftName = Literal["gaussian_noise", "contrast", "brightness", "mean_shift", "scale"]
# Synthetic shifts for AK-OOD-002 and their magnitude at severity 1..5.
IMAGE_SHIFTS: dict[str, tuple[float, ...]] = {  # the shared image severity table (checks/_corruptions.py)
    name: tuple(IMAGE_SEVERITIES[name]) for name in ("gaussian_noise", "contrast", "brightness")
}
TABULAR_SHIFTS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.1, 0.25, 0.5, 1.0, 2.0),  # noise sd in train standard deviations
    "mean_shift": (0.1, 0.25, 0.5, 1.0, 2.0),  # offset in train sds, + on even and − on odd features
    "scale": (0.1, 0.25, 0.5, 1.0, 2.0),  # spread around the train mean multiplied by 1 + s
}


def value_range(ctx: RunContext, train: Dataset) -> tuple[float, float]:
    rng_spec = getattr(ctx.model_input, "range", None)
    if rng_spec is not None:
        return float(rng_spec[0]), float(rng_spec[1])
    x = train.x
    return float(np.nanmin(x)), float(np.nanmax(x))


def synthetic_ood_sets(
    ctx: RunContext,
    kind: str,
    base: np.ndarray,
    train: Dataset,
    names: list[str],
    rng: np.random.Generator,
    *,
    outlier_scale: float,
) -> dict[str, np.ndarray]:
    """Synthetic OOD inputs shaped like ``base`` (ID test rows): one array per requested set."""
    n = len(base)
    out: dict[str, np.ndarray] = {}
    if kind == "image":
        lo, hi = value_range(ctx, train)
        flat_train = train.x.reshape(len(train), -1)
        mu, sd = float(np.nanmean(flat_train)), float(np.nanstd(flat_train))
        for name in names:
            if name == "uniform_noise":
                out[name] = rng.uniform(lo, hi, size=base.shape)
            elif name == "gaussian_noise":
                out[name] = np.clip(rng.normal(mu, max(sd, 1e-6), size=base.shape), lo, hi)
            elif name == "inverted":
                out[name] = (hi + lo) - base
            elif name == "pixel_shuffled":
                flat = base.reshape(n, -1)
                perm = np.argsort(rng.random(flat.shape), axis=1)
                out[name] = np.take_along_axis(flat, perm, axis=1).reshape(base.shape)
            else:
                raise SpecError(f"synthetic set {name!r} does not apply to images; known: {list(IMAGE_SETS)}")
    else:
        xt = train.x2d.astype(np.float64)
        cat_idx = [i for i, f in enumerate(train.features) if f in train.categorical]
        num_idx = [i for i in range(xt.shape[1]) if i not in cat_idx]
        lo_f, hi_f = np.nanmin(xt, axis=0), np.nanmax(xt, axis=0)
        mean_f = np.nanmean(xt, axis=0)
        for name in names:
            if name == "uniform_box":
                x = rng.uniform(lo_f, hi_f, size=(n, xt.shape[1]))
                for i in cat_idx:  # categorical codes stay valid codes
                    codes = np.unique(xt[:, i][np.isfinite(xt[:, i])])
                    x[:, i] = rng.choice(codes, size=n) if len(codes) else -1
            elif name == "column_shuffled":
                x = base.reshape(n, -1).astype(np.float64).copy()
                for i in range(x.shape[1]):
                    x[:, i] = x[rng.permutation(n), i]
            elif name == "scaled_outliers":
                x = base.reshape(n, -1).astype(np.float64).copy()
                x[:, num_idx] = mean_f[num_idx] + outlier_scale * (x[:, num_idx] - mean_f[num_idx])
            else:
                raise SpecError(
                    f"synthetic set {name!r} does not apply to tabular data; known: {list(TABULAR_SETS)}"
                )
            out[name] = x
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


@dataclass(frozen=True)
class ShiftBase:
    """What a covariate shift needs of train, computed once: the value range (images); which
    features are numeric and their train sd and mean (tabular)."""

    kind: str
    value_range: tuple[float, float]
    numeric: np.ndarray | None = None
    sd: np.ndarray | None = None
    mean: np.ndarray | None = None

    @classmethod
    def of(cls, ctx: RunContext, train: Dataset) -> ShiftBase:
        kind, vr = ctx.model_input.kind, value_range(ctx, train)
        if kind == "image":
            return cls(kind, vr)
        xt = train.x2d.astype(np.float64)
        numeric = np.array([f not in train.categorical for f in train.features])
        return cls(
            kind, vr, numeric, np.nan_to_num(np.nanstd(xt, axis=0)), np.nan_to_num(np.nanmean(xt, axis=0))
        )

    @property
    def table(self) -> dict[str, tuple[float, ...]]:
        return IMAGE_SHIFTS if self.kind == "image" else TABULAR_SHIFTS


def apply_shift(
    base: ShiftBase, name: str, severity: int, x: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A covariate shift of ``x`` at severity 1..5 (magnitudes in IMAGE_SHIFTS / TABULAR_SHIFTS)."""
    if name not in base.table:
        raise SpecError(f"shift {name!r} does not apply to {base.kind} inputs; known: {list(base.table)}")
    s = base.table[name][severity - 1]
    x = np.asarray(x, dtype=np.float64)
    if base.kind == "image":
        lo, hi = base.value_range
        width = hi - lo
        if name == "gaussian_noise":
            y = x + rng.normal(0.0, s * width, size=x.shape)
        elif name == "contrast":
            m = x.reshape(len(x), -1).mean(axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
            y = (x - m) * s + m
        else:
            y = x + s * width
        return np.clip(y, lo, hi).astype(np.float32)
    assert base.numeric is not None and base.sd is not None and base.mean is not None
    num, sd, mean = base.numeric, base.sd, base.mean
    y = x.reshape(len(x), -1).copy()
    if name == "gaussian_noise":
        delta = rng.normal(0.0, 1.0, size=y.shape) * (s * sd)
    elif name == "mean_shift":
        sign = np.where(np.arange(y.shape[1]) % 2 == 0, 1.0, -1.0)  # fixed direction: alternating signs
        delta = np.broadcast_to(s * sd * sign, y.shape)
    else:
        delta = (y - mean) * s
    y[:, num] = y[:, num] + delta[:, num]
    return y.astype(np.float32)


def shift_task(
    shared: tuple[Any, ShiftBase, np.ndarray], item: tuple[str, int, bool], seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """One (shift, severity) of AK-OOD-002, a compute task (``ctx.map``; docs/compute.md): the
    shifted test inputs drawn with the task's own seed and the model's logits on them; the inputs
    come back too when ``item``'s flag asks (the gated severity: selective prediction scores them)."""
    model, base, x0 = shared
    name, severity, keep_inputs = item
    xs = apply_shift(base, name, severity, x0, np.random.default_rng(seed))
    return np.asarray(model.logits(xs)), (xs if keep_inputs else None)


def subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    if cap <= 0 or n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=cap, replace=False))
