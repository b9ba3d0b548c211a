"""Regression implementation of AK-DEPLOY-001: each artifact to ship predicts like the audited
regressor (prediction differences in label sd, RMSE change with a paired bootstrap interval).
deployment.py dispatches here. Robustness parity is not compared for regressors yet (said in a note)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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


def parity_regression(
    ctx: RunContext, *, splits: Sequence[str], max_rmse_increase: float, max_prediction_diff_sd: float,
    conservative: bool, n_boot: int,
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
    findings.append(Finding("robustness parity (AK-ADV-001/003 per artifact) is not compared for regressors yet",
                            severity="info", key="robustness parity"))  # fmt: skip
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
            "method": {
                "task": "regression",
                "label_sd": sd,
                "interval": "paired bootstrap over rows",
                "n_boot": n_boot,
            },
        },  # fmt: skip
    )
