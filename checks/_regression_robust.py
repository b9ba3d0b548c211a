"""Regression implementations of AK-ADV-001 (bounded-perturbation sensitivity) and AK-ADV-003
(RMSE under natural corruptions). adversarial.py and corruption.py dispatch here.

AK-ADV-001 for a regressor: PGD in plain torch maximising the change of the point prediction,
|f(x + δ) − f(x)|, within an L∞ (or L2) ball in the same normalised space as the classifier attacks
(ε is a fraction of each feature's train range; immutable, categorical, binary and constant features
are frozen; values stay in the train box). ART's regressor wrapper is not used: its attacks
maximise the loss against the label, not the deviation from the clean prediction. Two directions
(pushing the prediction up and down) × ``restarts`` runs; per row the largest change over all runs,
iterates and smaller radii counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from auditkit.checks._attacks import image_range, tabular_box

from auditkit import Finding, Metric, NotApplicable, Outcome, SpecError, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext

TABULAR_EPSILONS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]
IMAGE_EPSILONS = [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255]
TABULAR_GATE, IMAGE_GATE = 0.05, 2 / 255


@dataclass
class RegressionSpace:
    """Rows to perturb in normalised units z = (x − offset) / scale, with the perturbation mask."""

    kind: str
    z: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    mask: np.ndarray
    frozen: list[str] = field(default_factory=list)

    def to_x(self, z: np.ndarray) -> np.ndarray:
        return (self.offset + z * self.scale).astype(np.float32)


def regression_space(
    ctx: RunContext, split: str, *, max_samples: int | None, perturb_binary: bool, rng: np.random.Generator
) -> RegressionSpace:
    """Labelled rows of ``split`` with finite inputs (a seeded subsample), in normalised units."""
    ds = ctx.dataset(split)
    if ds.y is None:
        raise NotApplicable(f"split {split!r} has no labels")
    x, y = ds.x, np.asarray(ds.y, dtype=np.float64)
    keep = np.flatnonzero(np.isfinite(y) & np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(keep) == 0:
        raise NotApplicable(f"split {split!r} has no labelled rows with finite inputs")
    if max_samples is not None and len(keep) > max_samples:
        keep = np.sort(rng.choice(keep, size=max_samples, replace=False))
    x, y = x[keep].astype(np.float32), y[keep]
    frozen: list[str] = []
    kind = "image" if (ds.kind == "image" or x.ndim > 2) else "tabular"
    if kind == "image":
        lo, hi = image_range(ctx, x)
        offset: np.ndarray = np.full(x.shape[1:], lo, dtype=np.float32)
        scale: np.ndarray = np.full(x.shape[1:], hi - lo, dtype=np.float32)
        mask: np.ndarray = np.ones(x.shape[1:], dtype=np.float32)
    else:
        offset, scale, mask, frozen = tabular_box(ctx, ds, x, perturb_binary)
    z = (x - offset) / scale
    z = np.where(mask > 0, np.clip(z, 0.0, 1.0), z).astype(np.float32)
    return RegressionSpace(kind, z, y, keep, offset, scale, mask, frozen)


def _point_column(ctx: RunContext, width: int) -> int:
    output = ctx.model_output
    if output == "point" or output == "gaussian":
        return 0
    levels = list(output.quantiles)
    return levels.index(0.5) if 0.5 in levels else width // 2


def point_fn(ctx: RunContext, space: RegressionSpace) -> Any:
    """f(z): the model's point prediction as a differentiable function of normalised inputs."""
    import torch

    adapter = ctx.model()
    device = adapter.device
    offset = torch.from_numpy(space.offset).to(device)
    scale = torch.from_numpy(space.scale).to(device)
    shape = tuple(adapter.input_shape) if adapter.input_shape is not None else None
    quantiles = ctx.model_output not in ("point", "gaussian")
    col = _point_column(ctx, adapter.n_classes)
    module = adapter.module.eval()

    def f(z: torch.Tensor) -> torch.Tensor:
        x = offset + z * scale
        if shape is not None and tuple(x.shape[1:]) != shape:
            x = x.reshape(len(x), *shape)
        out = module(x).float().reshape(len(x), -1)
        if quantiles:
            out = torch.sort(out, dim=1).values
        return out[:, col]

    return f, device


def max_deviation(
    f: Any, device: Any, space: RegressionSpace, *, eps: float, norm: str, steps: int, restarts: int,
    step_ratio: float, batch_size: int, seed: int,
) -> np.ndarray:  # fmt: skip
    """Per row, the largest |f(z + δ) − f(z)| found by PGD within the ε-ball (normalised units)."""
    import torch

    n = len(space.z)
    best = np.zeros(n)
    if eps <= 0 or n == 0:
        return best
    mask = torch.from_numpy(np.broadcast_to(space.mask, space.z.shape[1:]).copy()).to(device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed) % (2**63))
    alpha = step_ratio * eps / steps
    for s in range(0, n, batch_size):
        z0 = torch.from_numpy(space.z[s : s + batch_size]).to(device)
        with torch.no_grad():
            f0 = f(z0)
        worst = torch.zeros(len(z0), device=device)
        for r in range(max(1, restarts)):
            for sign in (1.0, -1.0):
                if r == 0:
                    delta = torch.zeros_like(z0)
                else:
                    delta = (torch.rand(z0.shape, generator=gen).to(device) * 2 - 1) * eps * mask
                    if norm == "l2":
                        nrm = (
                            delta.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * (z0.ndim - 1)))
                        )
                        delta = delta * torch.clamp(eps / nrm, max=1.0)
                delta = (torch.clamp(z0 + delta, 0, 1) - z0) * mask
                for _ in range(steps):
                    delta.requires_grad_(True)
                    out = f(z0 + delta)
                    gain = sign * (out - f0)
                    (grad,) = torch.autograd.grad(gain.sum(), delta)
                    with torch.no_grad():
                        worst = torch.maximum(worst, (out - f0).abs().detach())
                        if norm == "inf":
                            step = alpha * grad.sign()
                            delta = torch.clamp(delta + step, -eps, eps)
                        else:
                            g = grad.flatten(1)
                            g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
                            delta = delta + alpha * g.reshape(grad.shape)
                            nrm = (
                                delta.flatten(1)
                                .norm(dim=1)
                                .clamp_min(1e-12)
                                .reshape(-1, *([1] * (z0.ndim - 1)))
                            )
                            delta = delta * torch.clamp(eps / nrm, max=1.0)
                        delta = ((torch.clamp(z0 + delta, 0, 1) - z0) * mask).detach()
                with torch.no_grad():
                    worst = torch.maximum(worst, (f(z0 + delta) - f0).abs())
        best[s : s + len(z0)] = worst.cpu().numpy()
    return best


def evasion_regression(
    ctx: RunContext, *, split: str, epsilons: list[float] | None, gate_epsilon: float | None, gate_norm: str,
    min_robust_share: float, conservative: bool, norms: Sequence[str], steps: int, restarts: int,
    step_ratio: float, l2_scale: float, max_samples: int, perturb_binary: bool, batch_size: int,
    tolerance: float | None, tolerance_sd: float, min_rows: int,
) -> Outcome:  # fmt: skip
    """AK-ADV-001 for a regressor: the largest prediction change within ε, and the share of rows
    whose prediction stays within the tolerance (the robust share, gated like robust accuracy)."""
    from auditkit.toolkit.stats import wilson

    ds = ctx.dataset(split)
    n_lab = int(np.isfinite(ds.y).sum()) if ds.y is not None else 0
    require_rows(n_lab, min_rows, what="prediction sensitivity", split=f"labelled {split}")
    if gate_norm not in norms:
        raise SpecError(f"gate_norm {gate_norm!r} must be one of norms {list(norms)}")
    space = regression_space(ctx, split, max_samples=max_samples, perturb_binary=perturb_binary,
                             rng=np.random.default_rng(ctx.seed))  # fmt: skip
    if not space.mask.any():
        raise NotApplicable("no input feature may be perturbed (all immutable, categorical or binary)")
    grid = sorted({float(e) for e in (epsilons if epsilons is not None else
                  (IMAGE_EPSILONS if space.kind == "image" else TABULAR_EPSILONS))} | {0.0})  # fmt: skip
    if any(e < 0 for e in grid):
        raise SpecError("epsilons must be ≥ 0")
    gate = (
        float(gate_epsilon)
        if gate_epsilon is not None
        else (IMAGE_GATE if space.kind == "image" else TABULAR_GATE)
    )
    grid = sorted(set(grid) | {gate})
    train_y = ctx.dataset("train").y if "train" in ctx.splits() else space.y
    train_y = np.asarray(train_y, dtype=np.float64)
    train_y = train_y[np.isfinite(train_y)]
    label_sd = float(np.std(train_y, ddof=1)) if len(train_y) > 1 else float("nan")
    tol = float(tolerance) if tolerance is not None else tolerance_sd * label_sd
    if not np.isfinite(tol) or tol <= 0:
        raise NotApplicable("the tolerance is 0: the label has no spread (declare tolerance)")
    f, device = point_fn(ctx, space)
    d_mut = int(np.broadcast_to(space.mask, space.z.shape[1:]).sum())
    rows, plots, dev = [], [], {}
    for norm in norms:
        running = np.zeros(len(space.z))
        for i, e in enumerate(grid):
            radius = e if norm == "inf" else l2_scale * np.sqrt(d_mut) * e
            d = max_deviation(f, device, space, eps=radius, norm=norm, steps=steps, restarts=restarts,
                              step_ratio=step_ratio, batch_size=batch_size, seed=ctx.seed + 7919 * i)  # fmt: skip
            running = np.maximum(running, d)  # a larger ball contains the smaller ones
            dev[(norm, e)] = running.copy()
            k = int((running <= tol).sum())
            lo, hi = wilson(k, len(running))
            rows.append([norm, e, radius, float(np.mean(running)), float(np.median(running)),
                         float(np.quantile(running, 0.95)), float(np.max(running)),
                         float(np.mean(running)) / label_sd if label_sd > 0 else None, k / len(running), lo, hi])  # fmt: skip
        plots.append({"type": "line", "title": f"Largest prediction change vs ε ({norm})", "x_label": "epsilon",
                      "y_label": "mean max |Δ prediction|",
                      "series": [{"name": norm, "x": grid, "y": [float(np.mean(dev[(norm, e)])) for e in grid]}]})  # fmt: skip
    g = dev[(gate_norm, gate)]
    k = int((g <= tol).sum())
    lo, hi = wilson(k, len(g))
    unit = f"{ctx.roles().label} units" if ctx.roles().label else None
    units = f" {unit}" if unit else ""
    metrics = [
        Metric("robust_share", k / len(g), ci=(lo, hi), n=len(g), threshold=min_robust_share, direction="higher",
               bound="conservative" if conservative else "value",
               description=f"share of rows whose prediction moves by at most {tol:.6g}{units} within ε={gate:g} ({gate_norm})",
               details={"epsilon": gate, "norm": gate_norm, "tolerance": tol}),
        Metric("mean_max_deviation", float(np.mean(g)), n=len(g), unit=unit, direction="lower",
               description=f"mean over rows of the largest |f(x+δ) − f(x)| within ε={gate:g}"),
        Metric("p95_max_deviation", float(np.quantile(g, 0.95)), n=len(g), unit=unit, direction="lower"),
        Metric("mean_max_deviation_sd", float(np.mean(g)) / label_sd if label_sd > 0 else None, n=len(g),
               direction="lower", description="mean largest prediction change / train label sd"),
    ]  # fmt: skip
    findings = []
    if space.frozen:
        findings.append(Finding(f"not perturbed: {', '.join(space.frozen[:10])}" + (" ..." if len(space.frozen) > 10 else ""),
                                severity="info", key="frozen features"))  # fmt: skip
    out = Outcome.from_metrics(
        metrics,
        findings=findings,
        summary=(
            f"within ε={gate:g} ({gate_norm}) {k / len(g):.3f} of {len(g)} rows keep their prediction within "
            f"±{tol:.6g}{units} (95% CI {lo:.3f}–{hi:.3f}); mean largest change {float(np.mean(g)):.6g}{units}"
        ),
        evidence={
            "epsilon grid": {
                "columns": [
                    "norm",
                    "epsilon",
                    "radius (normalised)",
                    "mean max |Δ|",
                    "median",
                    "q95",
                    "max",
                    "mean / label sd",
                    "robust share",
                    "ci low",
                    "ci high",
                ],
                "rows": rows,
            },
            "plots": plots,
            "method": {
                "task": "regression",
                "attack": "PGD (plain torch) maximising ±(f(x+δ) − f(x)), best over iterates",
                "steps": steps,
                "restarts": restarts,
                "tolerance": tol,
                "label_sd": label_sd,
                "why_not_art": "ART's attacks maximise the loss against the label, not the change of the prediction",
            },
        },  # fmt: skip
    )
    return out


# ------------------------------------------------------------------------------------------------
# AK-ADV-003
# ------------------------------------------------------------------------------------------------


def corruptions_regression(
    ctx: RunContext, *, split: str, corruptions: list[str] | None, severities: Sequence[int],
    max_relative_error: float, conservative: bool, max_samples: int, min_rows: int,
) -> Outcome:  # fmt: skip
    """RMSE under each corruption × severity, relative to clean RMSE on the same rows (paired
    bootstrap interval); gate on the mean relative RMSE increase."""
    from auditkit.checks._corruptions import (
        _image_corruption,
        _tabular_corruption,
        corruption_plan,
        tabular_corruption_stats,
    )

    ds = ctx.dataset(split)
    if ds.y is None:
        raise NotApplicable(f"split {split!r} has no labels")
    y_all = np.asarray(ds.y, dtype=np.float64)
    keep = np.flatnonzero(np.isfinite(y_all))
    require_rows(len(keep), min_rows, what="RMSE under corruption", split=f"labelled {split}")
    rng = ctx.rng()
    if len(keep) > max_samples:
        keep = np.sort(rng.choice(keep, size=max_samples, replace=False))
    x, y = ds.x[keep].astype(np.float32), y_all[keep]
    kind = "image" if (ds.kind == "image" or x.ndim > 2) else "tabular"
    table, names = corruption_plan(kind, severities, corruptions)
    if kind == "image":
        lo_v, hi_v = image_range(ctx, x)
        z = np.clip((x - lo_v) / (hi_v - lo_v), 0.0, 1.0)

        def apply(name: str, level: float, g: np.random.Generator) -> np.ndarray:
            return (lo_v + _image_corruption(name, z, level, g) * (hi_v - lo_v)).astype(np.float32)

    else:
        sd, noisy, fill = tabular_corruption_stats(ctx, ds)

        def apply(name: str, level: float, g: np.random.Generator) -> np.ndarray:
            return np.asarray(_tabular_corruption(name, x, level, g, sd=sd, noisy=noisy, fill=fill))

    adapter = ctx.model()
    output = ctx.model_output
    col = _point_column(ctx, adapter.n_classes)

    def predict(xx: np.ndarray) -> np.ndarray:
        raw = adapter.logits(xx).astype(np.float64).reshape(len(xx), -1)
        if output not in ("point", "gaussian"):
            raw = np.sort(raw, axis=1)
        return np.asarray(raw[:, col])

    e0 = predict(x) - y
    ok = np.isfinite(e0)
    if not ok.any():
        return Outcome(findings=[Finding("the model outputs NaN/inf on every clean row", key="non-finite outputs")],
                       summary="the model outputs NaN/inf on every clean row")  # fmt: skip
    clean_sq = e0 * e0
    clean = float(np.sqrt(np.mean(clean_sq[ok])))
    n = int(ok.sum())
    idx = rng.integers(0, n, size=(1000, n))
    base_boot = np.sqrt(clean_sq[ok][idx].mean(axis=1))
    rows, rel_all, rel_boot, per_corruption = [], [], [], {}
    for c_idx, name in enumerate(names):
        rels = []
        for sev in severities:
            g = np.random.default_rng([ctx.seed, c_idx, int(sev)])
            e = predict(apply(name, table[name][int(sev) - 1], g)) - y
            sq = np.where(np.isfinite(e), e * e, np.inf)[ok]
            rmse_c = float(np.sqrt(np.mean(sq)))
            boot = np.sqrt(sq[idx].mean(axis=1)) / base_boot - 1
            rel = rmse_c / clean - 1 if clean > 0 else float("inf")
            lo, hi = float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))
            rows.append([name, int(sev), rmse_c, rel, lo, hi])
            rels.append(rel)
            rel_all.append(rel)
            rel_boot.append(boot)
        per_corruption[name] = float(np.mean(rels))
    mean_boot = np.mean(np.stack(rel_boot), axis=0)
    mean_rel = float(np.mean(rel_all))
    ci = (float(np.quantile(mean_boot, 0.025)), float(np.quantile(mean_boot, 0.975)))
    unit = f"{ctx.roles().label} units" if ctx.roles().label else None
    metrics = [
        Metric("mean_relative_rmse_increase", mean_rel, ci=ci, n=n, threshold=max_relative_error, direction="lower",
               bound="conservative" if conservative else "value",
               description="mean over corruptions × severities of RMSE corrupted / RMSE clean − 1 (paired bootstrap)",
               details={"per_corruption": per_corruption}),
        Metric("clean_rmse", clean, n=n, unit=unit, direction="lower"),
    ]  # fmt: skip
    return Outcome.from_metrics(
        metrics,
        summary=(
            f"clean RMSE {clean:.6g}; mean relative RMSE increase {mean_rel:+.3f} (95% CI {ci[0]:+.3f} to {ci[1]:+.3f}) "
            f"over {len(names)} corruptions × {len(severities)} severities (n={n})"
        ),
        evidence={
            "corruptions": {
                "columns": ["corruption", "severity", "RMSE", "RMSE / clean − 1", "ci low", "ci high"],
                "rows": rows,
            },
            "plots": [
                {
                    "type": "line",
                    "title": "RMSE increase by severity",
                    "x_label": "severity",
                    "y_label": "RMSE / clean − 1",
                    "series": [
                        {
                            "name": nm,
                            "x": [int(s) for s in severities],
                            "y": [r[3] for r in rows if r[0] == nm],
                        }
                        for nm in names
                    ],
                }
            ],
            "method": {
                "task": "regression",
                "interval": "paired bootstrap over rows (same resamples for clean and corrupted)",
            },
        },  # fmt: skip
    )
