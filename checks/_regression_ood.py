"""Regression implementations of AK-OOD-001 (feature-space OOD detection) and AK-OOD-002 (RMSE under
distribution shift). Not wired yet: ood.py dispatches here once the lead adds the lines given in
docs/regression.md ("OOD"); until then AK-OOD-001/002 are not applicable to regression (they require
``classification``). Tested by calling the functions directly.

Detectors for a regressor are feature-space only: Mahalanobis distance to one Gaussian fitted on
the train features, and the distance to the k-th nearest train row. The features are the model's
penultimate embeddings when it has them, else the inputs standardised with train's mean and sd.
Logit-based detectors (MSP, max logit, energy, GEN, ODIN, ReAct, ASH, DICE, ViM) need class logits
and are listed as not applicable with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import Finding, Metric, NotApplicable, Outcome, SpecError, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext

FEATURE_DETECTORS = ("mahalanobis", "knn")
LOGIT_DETECTORS = (
    "msp",
    "max_logit",
    "energy",
    "gen",
    "odin",
    "react",
    "ash",
    "dice",
    "vim",
    "relative_mahalanobis",
)
TABULAR_SYNTHETIC = ("uniform_box", "column_shuffled", "scaled_outliers")
IMAGE_SYNTHETIC = ("uniform_noise", "gaussian_noise")
REPORT_ONLY = ("column_shuffled",)


def _finite_rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x[np.isfinite(x.reshape(len(x), -1)).all(axis=1)], dtype=np.float32)


def _subsample(x: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) > max_samples:
        return x[np.sort(rng.choice(len(x), size=max_samples, replace=False))]
    return x


def synthetic_sets(
    kind: str,
    train: np.ndarray,
    test: np.ndarray,
    names: Sequence[str],
    outlier_scale: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Synthetic OOD inputs fitted to the input kind (the same families as the classifier check)."""
    out: dict[str, np.ndarray] = {}
    flat_tr = train.reshape(len(train), -1).astype(np.float64)
    lo, hi = np.nanmin(flat_tr, axis=0), np.nanmax(flat_tr, axis=0)
    for name in names:
        if kind == "image":
            if name == "uniform_noise":
                out[name] = rng.uniform(lo.min(), hi.max(), size=test.shape).astype(np.float32)
            elif name == "gaussian_noise":
                out[name] = rng.normal(flat_tr.mean(), flat_tr.std(), size=test.shape).astype(np.float32)
            else:
                raise SpecError(
                    f"unknown synthetic OOD set {name!r} for images; known: {list(IMAGE_SYNTHETIC)}"
                )
            continue
        t = test.reshape(len(test), -1).astype(np.float64)
        if name == "uniform_box":
            out[name] = rng.uniform(lo, hi, size=t.shape).astype(np.float32)
        elif name == "column_shuffled":
            out[name] = np.column_stack([rng.permutation(c) for c in t.T]).astype(np.float32)
        elif name == "scaled_outliers":
            mean = np.nanmean(flat_tr, axis=0)
            out[name] = (mean + outlier_scale * (t - mean)).astype(np.float32)
        else:
            raise SpecError(
                f"unknown synthetic OOD set {name!r} for tabular data; known: {list(TABULAR_SYNTHETIC)}"
            )
    return out


class FeatureSpace:
    """Train-fitted features for the detectors: embeddings when the model has them, else z-scored inputs."""

    def __init__(self, ctx: RunContext, train_x: np.ndarray) -> None:
        self.adapter = ctx.model()
        self.source = "inputs (z-scored with train mean and sd)"
        self.use_embeddings = False
        try:
            emb = self.adapter.embeddings(train_x[:2])
            self.use_embeddings = emb.ndim == 2 and emb.shape[1] > 0
        except Exception:  # a model without an nn.Linear head: fall back to inputs
            self.use_embeddings = False
        if self.use_embeddings:
            self.source = "penultimate embeddings (the input of the last nn.Linear)"
        flat = self._raw(train_x)
        self.mean = flat.mean(axis=0)
        sd = flat.std(axis=0)
        self.sd = np.where(sd > 1e-12, sd, 1.0)
        self.train = (flat - self.mean) / self.sd

    def _raw(self, x: np.ndarray) -> np.ndarray:
        if self.use_embeddings:
            return np.asarray(self.adapter.embeddings(x), dtype=np.float64)
        flat = x.reshape(len(x), -1).astype(np.float64)
        return np.nan_to_num(flat)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (self._raw(x) - self.mean) / self.sd


def detector_scores(
    space: FeatureSpace, z: np.ndarray, names: Sequence[str], knn_k: int
) -> dict[str, np.ndarray]:
    """OOD scores (higher = more OOD) of z-scored features ``z`` for each feature-space detector."""
    out: dict[str, np.ndarray] = {}
    tr = space.train
    if "mahalanobis" in names:
        cov = np.cov(tr, rowvar=False).reshape(tr.shape[1], tr.shape[1])
        ridge = 1e-6 * max(float(np.trace(cov)) / max(len(cov), 1), 1e-12)
        prec = np.linalg.pinv(cov + ridge * np.eye(len(cov)))
        d = z - tr.mean(axis=0)
        out["mahalanobis"] = np.einsum("ij,jk,ik->i", d, prec, d)
    if "knn" in names:
        from sklearn.neighbors import NearestNeighbors

        k = min(knn_k, len(tr))
        nn = NearestNeighbors(n_neighbors=k).fit(tr)
        out["knn"] = nn.kneighbors(z, n_neighbors=k)[0][:, -1]
    return out


def _auroc_ci(
    id_s: np.ndarray, ood_s: np.ndarray, n_boot: int, rng: np.random.Generator
) -> tuple[float, tuple[float, float]]:
    from auditkit.toolkit.regression import percentile_interval
    from auditkit.toolkit.stats import auc

    score = np.r_[id_s, ood_s]
    pos = np.r_[np.zeros(len(id_s), bool), np.ones(len(ood_s), bool)]
    value = float(auc(score, pos))
    boots = []
    for _ in range(n_boot):
        a = id_s[rng.integers(0, len(id_s), len(id_s))]
        b = ood_s[rng.integers(0, len(ood_s), len(ood_s))]
        boots.append(auc(np.r_[a, b], pos))
    return value, percentile_interval(np.asarray(boots))


def ood_detection_regression(
    ctx: RunContext, *, detectors: Sequence[str] = FEATURE_DETECTORS, gate_detector: str | None = "mahalanobis",
    min_auroc: float = 0.8, gate_sets: Sequence[str] | None = None, synthetic: Sequence[str] | None = None,
    fpr_convention: str = "in", tpr: float = 0.95, knn_k: int = 10, outlier_scale: float = 5.0,
    max_samples: int = 5000, n_boot: int = 200, min_rows: int = 30, **_ignored: Any,
) -> Outcome:  # fmt: skip
    """AK-OOD-001 for a regressor: feature-space detectors (Mahalanobis, kNN) separating the ID test
    inputs from the ``ood`` split (or synthetic sets); AUROC (OOD positive) with bootstrap intervals
    (ID and OOD resampled separately); gate on the lower bound of ``gate_detector``'s AUROC.
    Parameters the classifier check takes for logit-based detectors are accepted and ignored."""
    rng = ctx.rng()
    train_x = _finite_rows(ctx.dataset("train").x)
    test_x = _finite_rows(ctx.dataset("test").x)
    require_rows(len(test_x), min_rows, what="OOD detection", split="test")
    usable = [d for d in detectors if d in FEATURE_DETECTORS]
    skipped = [d for d in detectors if d not in FEATURE_DETECTORS]
    if not usable:
        raise NotApplicable(
            f"the detectors {list(detectors)} are logit-based: a regressor has no class logits; "
            "use mahalanobis or knn (feature space)"
        )
    if gate_detector is not None and gate_detector not in usable:
        raise SpecError(
            f"gate_detector {gate_detector!r} must be one of the feature-space detectors run: {usable}"
        )
    test_x = _subsample(test_x, max_samples, rng)
    kind = "image" if test_x.ndim > 2 else "tabular"
    if "ood" in ctx.splits():
        sets = {"ood": _subsample(_finite_rows(ctx.dataset("ood").x), max_samples, rng)}
    else:
        names = (
            list(synthetic)
            if synthetic is not None
            else list(IMAGE_SYNTHETIC if kind == "image" else TABULAR_SYNTHETIC)
        )
        sets = synthetic_sets(kind, train_x, test_x, names, outlier_scale, rng)
    gated = set(gate_sets) if gate_sets is not None else {s for s in sets if s not in REPORT_ONLY}
    fit_x = _subsample(train_x, max_samples, rng)
    space = FeatureSpace(ctx, fit_x)
    id_scores = detector_scores(space, space(test_x), usable, knn_k)
    metrics, rows, findings = [], [], []
    for set_name, x in sets.items():
        if len(x) == 0:
            continue
        ood_scores = detector_scores(space, space(x), usable, knn_k)
        for det in usable:
            value, ci = _auroc_ci(id_scores[det], ood_scores[det], n_boot, rng)
            if fpr_convention == "in":  # share of OOD accepted when tpr of ID test is kept
                thr = float(np.quantile(id_scores[det], tpr))
                fpr = float(np.mean(ood_scores[det] <= thr))
            else:  # share of ID flagged when tpr of OOD is caught
                thr = float(np.quantile(ood_scores[det], 1 - tpr))
                fpr = float(np.mean(id_scores[det] >= thr))
            is_gate = det == gate_detector and set_name in gated
            metrics.append(
                Metric(
                    f"auroc_{det}_{set_name}",
                    value,
                    ci=ci,
                    n=len(x) + len(test_x),
                    threshold=min_auroc if is_gate else None,
                    direction="higher",
                    bound="conservative",
                    description=f"AUROC of {det} scores, ID test vs {set_name} (OOD positive)",
                    details={"fpr_at_tpr": fpr, "tpr": tpr, "fpr_convention": fpr_convention},
                )  # fmt: skip
            )
            rows.append([set_name, det, len(x), value, ci[0], ci[1], fpr, "gated" if is_gate else "reported"])
    if skipped:
        findings.append(
            Finding(
                f"not applicable to a regressor (need class logits): {', '.join(skipped)}",
                severity="info",
                key="logit-based detectors",
            )  # fmt: skip
        )
    return Outcome.from_metrics(
        metrics,
        findings=findings,
        summary=f"{len(sets)} OOD set(s) × {len(usable)} feature-space detector(s) on {space.source}",
        evidence={
            "detectors": {
                "columns": [
                    "OOD set",
                    "detector",
                    "n OOD",
                    "AUROC",
                    "ci low",
                    "ci high",
                    f"FPR@{tpr:g}TPR ({fpr_convention})",
                    "use",
                ],
                "rows": rows,
            },
            "method": {
                "task": "regression",
                "features": space.source,
                "not_applicable": {
                    d: "logit-based: a regressor has no class logits" for d in LOGIT_DETECTORS
                },
                "auroc_interval": "percentile bootstrap, ID and OOD resampled separately",
                "n_boot": n_boot,
            },
        },  # fmt: skip
    )


# ------------------------------------------------------------------------------------------------
# AK-OOD-002
# ------------------------------------------------------------------------------------------------

TABULAR_SHIFTS = {
    "gaussian_noise": [0.1, 0.25, 0.5, 1.0, 2.0],
    "mean_shift": [0.1, 0.25, 0.5, 1.0, 2.0],
    "scale": [1.1, 1.25, 1.5, 2.0, 3.0],
}
IMAGE_SHIFTS = {
    "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
    "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
}


def _shifted(name: str, level: float, x: np.ndarray, train: np.ndarray, numeric: np.ndarray, rng: np.random.Generator,
             kind: str, lo: float, hi: float) -> np.ndarray:  # fmt: skip
    if kind == "image":
        z = (x - lo) / (hi - lo)
        if name == "gaussian_noise":
            z = z + rng.normal(0, level, size=z.shape)
        elif name == "contrast":
            m = z.reshape(len(z), -1).mean(axis=1).reshape(-1, *([1] * (z.ndim - 1)))
            z = m + (z - m) * level
        elif name == "brightness":
            z = z + level
        return (lo + np.clip(z, 0, 1) * (hi - lo)).astype(np.float32)
    out = x.astype(np.float64).copy()
    mean = np.nanmean(train, axis=0)
    sd = np.nan_to_num(np.nanstd(train, axis=0))
    cols = np.flatnonzero(numeric & (sd > 0))
    if name == "gaussian_noise":
        out[:, cols] += rng.normal(size=(len(out), len(cols))) * level * sd[cols]
    elif name == "mean_shift":
        sign = np.where(np.arange(len(cols)) % 2 == 0, 1.0, -1.0)
        out[:, cols] += sign * level * sd[cols]
    elif name == "scale":
        out[:, cols] = mean[cols] + (out[:, cols] - mean[cols]) * level
    return out.astype(np.float32)


def shift_regression(
    ctx: RunContext, *, shifts: Sequence[str] | None = None, severities: Sequence[int] = (1, 2, 3, 4, 5),
    gate_severity: int = 2, max_rmse_increase: float | None = 0.25, use_production: bool = True,
    max_samples: int = 5000, n_boot: int = 200, min_rows: int = 30, **_ignored: Any,
) -> Outcome:  # fmt: skip
    """AK-OOD-002 for a regressor: RMSE on shifted inputs relative to clean test RMSE (paired
    bootstrap for synthetic shifts of the test rows; independent for a labelled production split).
    Gate: at ``gate_severity`` (or on production) the relative RMSE increase stays within
    ``max_rmse_increase`` (point estimate, as the classifier check gates its accuracy drop)."""
    from auditkit.toolkit.regression import percentile_interval

    if gate_severity not in severities:
        raise SpecError(f"gate_severity {gate_severity} must be among severities {list(severities)}")
    test = ctx.dataset("test")
    y_all = np.asarray(test.y, dtype=np.float64) if test.y is not None else None
    if y_all is None:
        raise NotApplicable("the test split has no labels")
    keep = np.flatnonzero(np.isfinite(y_all) & np.isfinite(test.x.reshape(len(test.x), -1)).all(axis=1))
    require_rows(len(keep), min_rows, what="RMSE under shift", split="labelled test")
    rng = ctx.rng()
    if len(keep) > max_samples:
        keep = np.sort(rng.choice(keep, size=max_samples, replace=False))
    x, y = test.x[keep].astype(np.float32), y_all[keep]
    adapter = ctx.model()
    output = ctx.model_output
    col = 0
    if output not in ("point", "gaussian"):
        levels = list(output.quantiles)
        col = levels.index(0.5) if 0.5 in levels else len(levels) // 2

    def predict(xx: np.ndarray) -> np.ndarray:
        raw = adapter.logits(xx).astype(np.float64).reshape(len(xx), -1)
        if output not in ("point", "gaussian"):
            raw = np.sort(raw, axis=1)
        return np.asarray(raw[:, col])

    e0 = predict(x) - y
    clean = float(np.sqrt(np.mean(e0 * e0)))
    n = len(y)
    idx = rng.integers(0, n, size=(n_boot, n))
    base = np.sqrt((e0 * e0)[idx].mean(axis=1))
    metrics, rows = [], []
    if use_production and "production" in ctx.splits():
        prod = ctx.dataset("production")
        py = np.asarray(prod.y, dtype=np.float64) if prod.y is not None else np.zeros(0)
        pk = np.flatnonzero(np.isfinite(py)) if len(py) else np.zeros(0, dtype=np.int64)
        if len(pk) >= min_rows:
            ep = predict(prod.x[pk].astype(np.float32)) - py[pk]
            rmse_p = float(np.sqrt(np.mean(ep * ep)))
            pidx = rng.integers(0, len(ep), size=(n_boot, len(ep)))
            ratio = np.sqrt((ep * ep)[pidx].mean(axis=1)) / base - 1
            ci = percentile_interval(ratio)
            metrics.append(Metric("relative_rmse_increase_production", rmse_p / clean - 1, ci=ci, n=len(ep),
                                  threshold=max_rmse_increase, direction="lower",
                                  description="production RMSE / clean test RMSE − 1"))  # fmt: skip
            rows.append(["production", None, rmse_p, rmse_p / clean - 1, ci[0], ci[1]])
    if not metrics:
        kind = "image" if x.ndim > 2 else "tabular"
        table = IMAGE_SHIFTS if kind == "image" else TABULAR_SHIFTS
        names = list(shifts) if shifts is not None else list(table)
        unknown = [s for s in names if s not in table]
        if unknown:
            raise SpecError(f"shifts {unknown} are not known for {kind} inputs; known: {sorted(table)}")
        train_x = ctx.dataset("train").x.reshape(len(ctx.dataset("train").x), -1).astype(np.float64)
        numeric = (
            np.array([f not in test.categorical for f in test.features])
            if kind == "tabular"
            else np.ones(1, bool)
        )
        if kind == "tabular":
            numeric &= np.array([len(np.unique(c[np.isfinite(c)])) > 2 for c in train_x.T])
        lo, hi = (float(np.nanmin(train_x)), float(np.nanmax(train_x))) if kind == "image" else (0.0, 1.0)
        for s_i, name in enumerate(names):
            for sev in severities:
                g = np.random.default_rng([ctx.seed, s_i, int(sev)])
                xs = _shifted(name, table[name][int(sev) - 1], x, train_x, numeric, g, kind, lo, hi)
                e = predict(xs) - y
                r = float(np.sqrt(np.mean(e * e)))
                boot = np.sqrt((e * e)[idx].mean(axis=1)) / base - 1
                ci = percentile_interval(boot)
                rows.append([name, int(sev), r, r / clean - 1, ci[0], ci[1]])
                if sev == gate_severity:
                    metrics.append(Metric(f"relative_rmse_increase_{name}", r / clean - 1, ci=ci, n=n,
                                          threshold=max_rmse_increase, direction="lower",
                                          description=f"RMSE under {name} (severity {sev}) / clean RMSE − 1, paired"))  # fmt: skip
    metrics.append(Metric("clean_rmse", clean, n=n, direction="lower"))
    if rows and rows[0][0] == "production":
        m0 = metrics[0]
        lo, hi = m0.ci or (float("nan"), float("nan"))
        summary = (f"production RMSE {rows[0][2]:.6g} vs clean test RMSE {clean:.6g}: relative RMSE change "
                   f"{m0.value or 0.0:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}), n={m0.n}; "
                   "synthetic shifts not run (use_production)")  # fmt: skip
    else:
        summary = (f"clean RMSE {clean:.6g}; worst relative RMSE increase at severity {gate_severity} "
                   f"{max(m.value or 0.0 for m in metrics if m.name != 'clean_rmse'):+.3f}")  # fmt: skip
    return Outcome.from_metrics(
        metrics,
        summary=summary,
        evidence={
            "shifts": {
                "columns": ["shift", "severity", "RMSE", "RMSE / clean − 1", "ci low", "ci high"],
                "rows": rows,
            },
            "method": {
                "task": "regression",
                "gate_severity": gate_severity,
                "interval": "bootstrap of RMSE ratios (paired for synthetic shifts)",
            },
        },  # fmt: skip
    )
