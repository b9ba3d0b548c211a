"""Regression implementation of AK-DEPLOY-001: each artifact to ship predicts like the audited
regressor (prediction differences in label sd, RMSE change with a paired bootstrap interval) and
keeps its robustness (AK-ADV-001's robust share at the gate ε, white-box on each artifact with a
torch module). deployment.py dispatches here. Corruption parity is not compared for regressors yet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from auditkit.checks._deploy import is_audited

from auditkit import Finding, Metric, NotApplicable, Outcome

if TYPE_CHECKING:
    from auditkit import RunContext
    from auditkit.toolkit import Candidate


def _point(ctx: RunContext, raw: np.ndarray) -> np.ndarray:
    out = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
    output = ctx.model_output
    if output == "point" or output == "gaussian":
        return np.asarray(out[:, 0])
    levels = list(output.quantiles)
    out = np.sort(out, axis=1)
    return np.asarray(out[:, levels.index(0.5) if 0.5 in levels else out.shape[1] // 2])


def _predict(ctx: RunContext, cand: Candidate, split: str) -> np.ndarray:
    if is_audited(cand):
        return _point(ctx, ctx.predictions(split).logits)

    def compute() -> np.ndarray:
        x = ctx.dataset(split).x
        return _point(ctx, cand.logits(x.reshape((len(x), *ctx.sample_shape()))))

    return ctx.cached(f"deployment:regression:{cand.name}:{split}", compute)


def point_predictions(ctx: RunContext, cand: Candidate, split: str) -> np.ndarray:
    """The point prediction of ``cand`` (the audited model or an artifact) on ``split``."""
    return _predict(ctx, cand, split)


def _robust_shares(ctx: RunContext, audited: Candidate, artifacts: list[Candidate]) -> dict[str, Any]:
    """AK-ADV-001's regressor question asked of each artifact: the share of test rows whose
    prediction stays within the tolerance under PGD at AK-ADV-001's gate ε and norm (its settings
    from checks.params), white-box on each artifact that has a differentiable torch module, on the
    same rows and seed as the audited model. Artifacts without one (ONNX) are listed in a note."""
    import torch
    from auditkit.checks._attacks import WHITE_BOX_DEFAULTS
    from auditkit.checks._regression_robust import (
        IMAGE_GATE,
        TABULAR_GATE,
        _point_column,
        max_deviation,
        regression_space,
    )

    from auditkit.toolkit.stats import wilson

    p: dict[str, Any] = {**WHITE_BOX_DEFAULTS, "tolerance": None, "tolerance_sd": 0.25}
    if ctx.spec is not None:
        p.update(ctx.spec.checks.params.get("AK-ADV-001", {}))
    seed = ctx.seed_for("AK-ADV-001")
    space = regression_space(ctx, str(p["split"]), max_samples=int(p["max_samples"]),
                             perturb_binary=bool(p["perturb_binary"]), rng=np.random.default_rng(seed))  # fmt: skip
    if not space.mask.any():
        raise NotApplicable("no input feature may be perturbed")
    gate = (
        float(p["gate_epsilon"])
        if p["gate_epsilon"] is not None
        else (IMAGE_GATE if space.kind == "image" else TABULAR_GATE)
    )
    norm = str(p["gate_norm"])
    d_mut = int(np.broadcast_to(space.mask, space.z.shape[1:]).sum())
    radius = gate if norm == "inf" else float(p["l2_scale"]) * np.sqrt(d_mut) * gate
    ty = np.asarray(ctx.dataset("train").y if "train" in ctx.splits() else space.y, dtype=np.float64)
    ty = ty[np.isfinite(ty)]
    tol = (
        float(p["tolerance"])
        if p["tolerance"] is not None
        else float(p["tolerance_sd"]) * float(np.std(ty, ddof=1))
    )
    if not np.isfinite(tol) or tol <= 0:
        raise NotApplicable("the tolerance is 0: the label has no spread")
    adapter = ctx.model()
    quantiles = ctx.model_output not in ("point", "gaussian")
    col = _point_column(ctx, adapter.n_classes)
    shape = tuple(adapter.input_shape) if adapter.input_shape is not None else None

    def share(module: Any, device: Any) -> tuple[int, int, float]:
        offset = torch.from_numpy(space.offset).to(device)
        scale = torch.from_numpy(space.scale).to(device)
        module = module.eval()

        def f(z: torch.Tensor) -> torch.Tensor:
            x = offset + z * scale
            if shape is not None and tuple(x.shape[1:]) != shape:
                x = x.reshape(len(x), *shape)
            out = module(x).float().reshape(len(x), -1)
            return (torch.sort(out, dim=1).values if quantiles else out)[:, col]

        d = max_deviation(f, device, space, eps=radius, norm=norm, steps=int(p["steps"]),
                          restarts=int(p["restarts"]), step_ratio=float(p["step_ratio"]),
                          batch_size=int(p["batch_size"]), seed=seed)  # fmt: skip
        return int((d <= tol).sum()), len(d), float(np.mean(d))

    out: dict[str, Any] = {"setup": {"epsilon": gate, "norm": norm, "tolerance": tol, "rows": len(space.z)},
                           "shares": {}, "notes": []}  # fmt: skip
    out["audited"] = share(adapter.module, adapter.device)
    for cand in artifacts:
        if cand.module is None:
            out["notes"].append(
                f"robustness parity not measured for {cand.name} ({cand.kind}): no differentiable torch module"
            )
            continue
        out["shares"][cand.name] = share(cand.module, torch.device(cand.device))
    out["wilson"] = wilson
    return out


def parity_regression(
    ctx: RunContext, *, splits: Sequence[str], max_rmse_increase: float, max_prediction_diff_sd: float,
    conservative: bool, n_boot: int, robustness: bool = True, max_robust_share_drop: float | None = 0.05,
) -> Outcome:  # fmt: skip
    """Per artifact and split: the 99th percentile and maximum |Δ prediction| in train label sd
    (gated: the 99th percentile ≤ ``max_prediction_diff_sd``), the relative RMSE increase over the
    audited model (paired bootstrap; gated by ``max_rmse_increase``, on the upper bound when
    ``conservative``), and the share of rows within 0.01 label sd."""
    everything = ctx.deployment_candidates()
    ready = [c for c in everything if c.forward is not None]
    findings = [Finding(f"{c.name} ({c.kind}) not evaluated: {c.unavailable}", severity="info",
                        key=f"unavailable:{c.name}") for c in everything if c.forward is None]  # fmt: skip
    artifacts = [c for c in ready if not is_audited(c)]
    audited = next((c for c in ready if is_audited(c)), None)
    if audited is None or not artifacts:
        raise NotApplicable("no deployment artifact can run here")
    present = [s for s in splits if s in ctx.splits()]
    if "test" not in present:
        raise NotApplicable("deployment parity needs the test split")
    ty = ctx.dataset("train").y if "train" in ctx.splits() else ctx.dataset("test").y
    ty = np.asarray(ty, dtype=np.float64)
    sd = float(np.nanstd(ty, ddof=1)) if np.isfinite(ty).sum() > 1 else 1.0
    sd = sd if sd > 0 else 1.0
    rng = np.random.default_rng(ctx.seed)
    metrics, rows = [], []
    for split in present:
        y = ctx.dataset(split).y
        if y is None:
            continue
        y = np.asarray(y, dtype=np.float64)
        pm = _predict(ctx, audited, split)
        for cand in artifacts:
            pa = _predict(ctx, cand, split)
            ok = np.isfinite(pm) & np.isfinite(pa)
            d = np.abs(pa - pm)[ok] / sd
            lab = ok & np.isfinite(y)
            em, ea = (pm - y)[lab], (pa - y)[lab]
            key = f"{cand.name}, {split}"
            p99 = float(np.quantile(d, 0.99)) if len(d) else float("nan")
            metrics.append(Metric(f"prediction_diff_p99_sd[{key}]", p99, n=int(ok.sum()), threshold=max_prediction_diff_sd,
                                  direction="lower", description="99th percentile of |artifact − audited| / train label sd",
                                  details={"max_sd": float(d.max()) if len(d) else None,
                                           "share_within_0.01_sd": float(np.mean(d <= 0.01)) if len(d) else None}))  # fmt: skip
            if (~ok).any():
                findings.append(Finding(f"{cand.name} gives NaN/inf on {int((~ok).sum())} {split} rows the audited "
                                        "model predicts", key=f"non-finite[{key}]"))  # fmt: skip
            if len(em) >= 2:
                rm, ra = float(np.sqrt(np.mean(em * em))), float(np.sqrt(np.mean(ea * ea)))
                boots = np.empty(n_boot)
                for b in range(n_boot):  # one replicate at a time: memory O(n)
                    i = rng.integers(0, len(em), len(em))
                    boots[b] = np.sqrt(np.mean((ea * ea)[i])) / np.sqrt(np.mean((em * em)[i])) - 1
                ci = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))
                metrics.append(Metric(f"rmse_increase[{key}]", ra / rm - 1 if rm > 0 else None, ci=ci, n=len(em),
                                      threshold=max_rmse_increase, direction="lower",
                                      bound="conservative" if conservative else "value",
                                      description="artifact RMSE / audited RMSE − 1 (paired bootstrap)",
                                      details={"rmse_audited": rm, "rmse_artifact": ra}))  # fmt: skip
                rows.append(
                    [
                        cand.name,
                        cand.kind,
                        split,
                        int(ok.sum()),
                        p99,
                        float(d.max()),
                        rm,
                        ra,
                        ra / rm - 1 if rm > 0 else None,
                    ]
                )
    rob_rows: list[list[Any]] = []
    if robustness:
        try:
            rob = _robust_shares(ctx, audited, artifacts)
        except NotApplicable as exc:
            findings.append(
                Finding(f"robustness parity not measured: {exc}", severity="info", key="robustness")
            )
        else:
            k0, n0, dev0 = rob["audited"]
            setup = rob["setup"]
            findings += [Finding(n, severity="info", key="robustness") for n in rob["notes"]]
            for name, (k, n, dev) in rob["shares"].items():
                drop = k0 / n0 - k / n
                metrics.append(Metric(f"robust_share_drop[{name}]", drop, n=n, threshold=max_robust_share_drop,
                                      direction="lower",
                                      description=f"audited minus artifact share of rows whose prediction moves by at most "
                                      f"{setup['tolerance']:.6g} under PGD at ε = {setup['epsilon']:g} ({setup['norm']}), white-box on each",
                                      details={"audited": k0 / n0, "artifact": k / n, "audited_ci": rob["wilson"](k0, n0),
                                               "artifact_ci": rob["wilson"](k, n), "mean_max_deviation_audited": dev0,
                                               "mean_max_deviation_artifact": dev}))  # fmt: skip
                rob_rows.append([name, k0 / n0, k / n, drop, dev0, dev])
    else:
        findings.append(
            Finding("robustness parity not compared (robustness: false)", severity="info", key="robustness")
        )
    return Outcome.from_metrics(
        metrics,
        findings=findings,
        summary=f"{len(artifacts)} artifact(s) compared with the audited regressor on {', '.join(present)}",
        evidence={
            "parity": {
                "columns": [
                    "artifact",
                    "kind",
                    "split",
                    "n",
                    "|Δ| p99 (sd)",
                    "|Δ| max (sd)",
                    "RMSE audited",
                    "RMSE artifact",
                    "RMSE / audited − 1",
                ],
                "rows": rows,
            },
            "robustness by artifact": {
                "columns": [
                    "artifact",
                    "robust share audited",
                    "robust share artifact",
                    "drop",
                    "mean max |Δ| audited",
                    "mean max |Δ| artifact",
                ],
                "rows": rob_rows,
            },
            "method": {
                "task": "regression",
                "label_sd": sd,
                "interval": "paired bootstrap over rows",
                "n_boot": n_boot,
            },
        },  # fmt: skip
    )
