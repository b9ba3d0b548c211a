"""Built-in checks: out-of-distribution detection (AK-OOD-001) and behaviour under shift (AK-OOD-002).

Score convention used throughout: every detector returns an *OOD score*, higher = more likely
out-of-distribution. AUROC and AUPR-Out treat OOD as the positive class; AUPR-In treats
in-distribution (ID) as positive with the score negated. AUROC does not depend on that choice
(flipping the positive class and the score sign together leaves it unchanged). FPR at 95% TPR
does, so the convention is a parameter and is written into every result.

Heavy libraries (torch, faiss, scipy) are imported inside functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import DEFAULT_MIN_ROWS, Finding, Metric, NotApplicable, Outcome, SpecError, check, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext
    from auditkit.data import Dataset

ALL_DETECTORS = ("msp", "max_logit", "energy", "mahalanobis", "knn")
FEATURE_DETECTORS = ("mahalanobis", "knn")
IMAGE_SETS = ("uniform_noise", "gaussian_noise", "inverted", "pixel_shuffled")
TABULAR_SETS = ("uniform_box", "column_shuffled", "scaled_outliers")
# Synthetic shifts for AK-OOD-002 and their magnitude at severity 1..5.
IMAGE_SHIFTS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # sd, as a share of the value range (ImageNet-C)
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # factor towards each image's mean (ImageNet-C)
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # offset, as a share of the value range, clipped
}
TABULAR_SHIFTS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.1, 0.25, 0.5, 1.0, 2.0),  # noise sd in train standard deviations
    "mean_shift": (0.1, 0.25, 0.5, 1.0, 2.0),  # offset in train sds, + on even and − on odd features
    "scale": (0.1, 0.25, 0.5, 1.0, 2.0),  # spread around the train mean multiplied by 1 + s
}
_MAX_BOOT_CELLS = 4_000_000  # bootstrap rows × points processed at once (memory bound)


# ---------------------------------------------------------------------------------------------
# Metrics: one vectorised pass over sorted scores, for the point estimate and every bootstrap
# resample at once (resamples are count weights, so ties and sklearn's conventions are kept).
# ---------------------------------------------------------------------------------------------


def detection_metrics(
    s_in: np.ndarray,
    s_out: np.ndarray,
    *,
    w_in: np.ndarray | None = None,
    w_out: np.ndarray | None = None,
    tpr: float = 0.95,
) -> dict[str, np.ndarray]:
    """AUROC, AUPR-In, AUPR-Out and FPR at ``tpr`` under both conventions, per weight row.

    ``s_in``/``s_out`` are OOD scores (higher = more OOD) of ID and OOD points; ``w_in`` (B, n_in)
    and ``w_out`` (B, n_out) are non-negative weights (bootstrap counts), default one row of ones.
    AUROC is the trapezoidal area under the ROC with tied scores as one threshold (as sklearn's
    ``roc_auc_score``); AUPR is average precision (as sklearn's ``average_precision_score``).
    ``fpr_in``: ID positive, the threshold keeps ``tpr`` of ID, share of OOD accepted.
    ``fpr_out``: OOD positive, the threshold catches ``tpr`` of OOD, share of ID flagged.
    """
    s_in = np.asarray(s_in, dtype=np.float64)
    s_out = np.asarray(s_out, dtype=np.float64)
    n_in, n_out = len(s_in), len(s_out)
    w_in = np.ones((1, n_in)) if w_in is None else np.atleast_2d(np.asarray(w_in))
    w_out = np.ones((1, n_out)) if w_out is None else np.atleast_2d(np.asarray(w_out))
    pooled = np.concatenate([s_in, s_out])
    order = np.argsort(-pooled, kind="stable")
    sorted_scores = pooled[order]
    # Group id of every point: distinct scores in descending order (ties form one threshold).
    gid = np.empty(n_in + n_out, dtype=np.int64)
    gid[order] = np.cumsum(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]) - 1
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    b = w_in.shape[0]
    # Per distinct score (descending): weight of OOD (positives) and ID (negatives).
    gp = _group_sum(w_out, gid[n_in:], n_groups).astype(np.float64, copy=False)
    gn = _group_sum(w_in, gid[:n_in], n_groups).astype(np.float64, copy=False)
    tp, fp = np.cumsum(gp, axis=1), np.cumsum(gn, axis=1)  # OOD / ID weight with score ≥ group's
    p_tot, n_tot = tp[:, -1:], fp[:, -1:]
    # ID positive, walking up from the lowest score: ID / OOD weight with score ≤ the group's.
    tp_in, fp_in = n_tot - fp + gn, p_tot - tp + gp
    with np.errstate(invalid="ignore", divide="ignore"):
        # Mann–Whitney form of the trapezoidal AUROC: OOD above ID, ties count one half.
        auroc = (gp * (n_tot - fp + 0.5 * gn)).sum(axis=1) / (p_tot * n_tot)[:, 0]
        aupr_out = (gp * (tp / (tp + fp))).sum(axis=1) / p_tot[:, 0]
        aupr_in = (gn * (tp_in / (tp_in + fp_in))).sum(axis=1) / n_tot[:, 0]
        rows = np.arange(b)
        reached = tp >= tpr * p_tot - 1e-9 * p_tot  # first group (descending) catching tpr of OOD
        fpr_out_at = np.where(reached.any(axis=1), fp[rows, np.argmax(reached, axis=1)] / n_tot[:, 0], np.nan)
        reached = tp_in >= tpr * n_tot - 1e-9 * n_tot  # first group (ascending) keeping tpr of ID
        last = n_groups - 1 - np.argmax(reached[:, ::-1], axis=1)
        fpr_in_at = np.where(reached.any(axis=1), fp_in[rows, last] / p_tot[:, 0], np.nan)
    return {
        "auroc": auroc,
        "aupr_in": aupr_in,
        "aupr_out": aupr_out,
        "fpr_in": fpr_in_at,
        "fpr_out": fpr_out_at,
    }


def _group_sum(w: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(B, n_groups) sums of the columns of ``w`` (B, n) by group id."""
    perm = np.argsort(groups, kind="stable")
    g = groups[perm]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, dtype=np.int64)
    out = np.zeros((w.shape[0], n_groups), dtype=w.dtype)
    if len(g):
        out[:, g[starts]] = np.add.reduceat(w[:, perm], starts, axis=1)
    return out


def _boot_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) bootstrap resample counts (float32: exact for counts below 2**24)."""
    draws = rng.integers(0, n, size=(n_boot, n))
    flat = (draws + (np.arange(n_boot) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)


def detection_metrics_ci(
    s_in: np.ndarray, s_out: np.ndarray, *, n_boot: int, rng: np.random.Generator, tpr: float = 0.95
) -> dict[str, tuple[float, tuple[float, float] | None]]:
    """Point estimates and 95% percentile intervals (ID and OOD resampled separately)."""
    point = {k: float(v[0]) for k, v in detection_metrics(s_in, s_out, tpr=tpr).items()}
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in point}
    if n_boot > 0:
        w_in_all = _boot_weights(len(s_in), n_boot, rng)
        w_out_all = _boot_weights(len(s_out), n_boot, rng)
        step = max(1, _MAX_BOOT_CELLS // max(1, len(s_in) + len(s_out)))
        for lo in range(0, n_boot, step):
            part = detection_metrics(
                s_in, s_out, w_in=w_in_all[lo : lo + step], w_out=w_out_all[lo : lo + step], tpr=tpr
            )
            for k, arr in part.items():
                chunks[k].append(arr)
    out: dict[str, tuple[float, tuple[float, float] | None]] = {}
    for k, value in point.items():
        boots = np.concatenate(chunks[k]) if chunks[k] else np.array([])
        boots = boots[np.isfinite(boots)]
        ci = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))) if len(boots) else None
        out[k] = (value, ci)
    return out


def expected_calibration_error(
    conf: np.ndarray, correct: np.ndarray, *, n_bins: int = 15, weights: np.ndarray | None = None
) -> np.ndarray:
    """ECE with equal-width (lo, hi] confidence bins, per weight row: Σ_b |Σ w(conf − correct)| / Σ w."""
    conf = np.asarray(conf, dtype=np.float64)
    gap = conf - np.asarray(correct, dtype=np.float64)
    w = np.ones((1, len(conf))) if weights is None else np.atleast_2d(weights)
    from auditkit.stats import calibration_bins  # (lo, hi] bins, the same as AK-PERF's ECE

    bins = calibration_bins(conf, n_bins, adaptive=False)
    onehot = np.zeros((len(conf), n_bins))
    onehot[np.arange(len(conf)), bins] = 1.0
    per_bin = (w * gap) @ onehot
    return np.asarray(np.abs(per_bin).sum(axis=1) / w.sum(axis=1))


def _quantile_ci(values: np.ndarray) -> tuple[float, float] | None:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    return (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975)))


# ---------------------------------------------------------------------------------------------
# Detectors
# ---------------------------------------------------------------------------------------------


def logit_scores(logits: np.ndarray) -> dict[str, np.ndarray]:
    """OOD scores from logits: negative max softmax probability, negative max logit, energy."""
    z = np.asarray(logits, dtype=np.float64)
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    msp = np.exp(m - lse)
    return {"msp": -msp, "max_logit": -m, "energy": -lse}


@dataclass
class Mahalanobis:
    """Class-conditional Gaussians with one shared covariance (Lee et al. 2018), fitted on train.

    The score is the smallest squared Mahalanobis distance to a class mean. The covariance gets a
    small ridge (``ridge`` × mean variance) so that rank-deficient ReLU features stay invertible.
    """

    whiten: np.ndarray
    means_w: np.ndarray
    classes: list[int]

    @classmethod
    def fit(cls, emb: np.ndarray, y: np.ndarray, ridge: float = 1e-6) -> Mahalanobis:
        classes = sorted(int(c) for c in np.unique(y) if c >= 0)
        if not classes:
            raise NotApplicable("no labelled training rows to fit class means on")
        keep = y >= 0
        x = np.asarray(emb)[keep]
        code = np.searchsorted(classes, y[keep])
        counts = np.bincount(code, minlength=len(classes)).astype(np.float64)
        order = np.argsort(code, kind="stable")
        starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        sums = np.add.reduceat(x[order].astype(np.float64), starts, axis=0)
        means = sums / counts[:, None]
        # Shared covariance accumulated in float64 over row blocks (bounded memory at 50k × 512).
        cov = np.zeros((x.shape[1], x.shape[1]))
        for lo in range(0, len(x), 8192):
            c = x[lo : lo + 8192].astype(np.float64) - means[code[lo : lo + 8192]]
            cov += c.T @ c
        cov /= max(1, len(x))
        cov += np.eye(len(cov)) * (ridge * max(float(np.trace(cov)) / len(cov), 1e-12))
        vals, vecs = np.linalg.eigh(cov)
        whiten = vecs / np.sqrt(np.maximum(vals, 1e-12))[None, :]
        return cls(
            whiten=whiten.astype(np.float32), means_w=(means @ whiten).astype(np.float32), classes=classes
        )

    def score(self, emb: np.ndarray, batch: int = 8192) -> np.ndarray:
        out = np.empty(len(emb), dtype=np.float64)
        m2 = (self.means_w.astype(np.float64) ** 2).sum(axis=1)
        for lo in range(0, len(emb), batch):
            zw = (np.asarray(emb[lo : lo + batch], dtype=np.float32) @ self.whiten).astype(np.float64)
            d = (zw**2).sum(axis=1)[:, None] - 2 * zw @ self.means_w.T.astype(np.float64) + m2[None, :]
            out[lo : lo + batch] = d.min(axis=1)
        return out


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return np.ascontiguousarray(
        x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float32
    )


@dataclass
class KNN:
    """Distance to the k-th nearest training embedding after L2 normalisation (Sun et al. 2022).

    Exact search. ``backend="torch"``: blocked matrix products and ``topk`` on ``device`` (the
    model's: CUDA when the model runs there; on CPU the faster one on the 2-core machine we
    measured, see benchmarks/bench_ood.py); ``"faiss"``: ``IndexFlatIP`` on CPU.
    """

    bank: np.ndarray
    k: int
    backend: str = "torch"
    device: str = "cpu"
    _index: Any = field(default=None, repr=False)
    _bank_t: Any = field(default=None, repr=False)  # torch: the bank on ``device``, transposed

    @classmethod
    def fit(cls, emb: np.ndarray, k: int, backend: str = "torch", device: str = "cpu") -> KNN:
        if k < 1:
            raise SpecError("knn_k must be at least 1")
        if backend not in ("torch", "faiss"):
            raise SpecError("knn_backend must be 'torch' or 'faiss'")
        bank = _l2_normalise(emb)
        if len(bank) == 0:
            raise NotApplicable("no training embeddings for the kNN detector")
        obj = cls(bank=bank, k=min(k, len(bank)), backend=backend, device=str(device))
        if backend == "faiss":
            import faiss

            index = faiss.IndexFlatIP(bank.shape[1])
            index.add(bank)
            obj._index = index
        else:
            import torch

            obj._bank_t = torch.from_numpy(bank).to(torch.device(obj.device)).T  # no copy on CPU
        return obj

    def score(self, emb: np.ndarray) -> np.ndarray:
        q = _l2_normalise(emb)
        if len(q) == 0:
            return np.zeros(0)
        if self._index is not None:
            sims, _ = self._index.search(q, self.k)
            kth = sims[:, -1].astype(np.float64)
        else:
            import torch

            dev = torch.device(self.device)
            bank_t = self._bank_t
            block = max(64, (1 << 24) // len(self.bank))  # about 64 MB of similarities at a time
            parts = []
            with torch.inference_mode():
                for lo in range(0, len(q), block):
                    s = torch.from_numpy(q[lo : lo + block]).to(dev) @ bank_t
                    top = torch.topk(s, self.k, dim=1, sorted=True).values[:, -1]
                    parts.append(top.double().cpu().numpy())
            kth = np.concatenate(parts)
        return np.sqrt(np.maximum(0.0, 2.0 - 2.0 * kth))


@dataclass
class Fitted:
    """Detectors fitted on train and the held-out ID scores that set thresholds."""

    detectors: list[str]
    mahalanobis: Mahalanobis | None
    knn: KNN | None
    holdout_source: str
    holdout_scores: dict[str, np.ndarray]
    notes: list[str]

    def scores(self, logits: np.ndarray, emb: np.ndarray | None) -> dict[str, np.ndarray]:
        base = logit_scores(logits)
        out = {d: base[d] for d in self.detectors if d in base}
        if emb is not None and self.mahalanobis is not None:
            out["mahalanobis"] = self.mahalanobis.score(emb)
        if emb is not None and self.knn is not None:
            out["knn"] = self.knn.score(emb)
        # A NaN score (the model's output is undefined, e.g. on missing values) counts as most OOD.
        return {d: np.where(np.isnan(out[d]), np.inf, out[d]) for d in self.detectors if d in out}


def _safe_embeddings(fn: Any) -> np.ndarray | None:
    """Embeddings, or None when the model has no linear head to hook (feature detectors skipped)."""
    try:
        emb = np.asarray(fn(), dtype=np.float32)
    except ValueError:
        return None
    if emb.ndim != 2 or emb.shape[1] == 0:
        return None
    return np.nan_to_num(emb, nan=0.0, posinf=0.0, neginf=0.0)


def logits_and_embeddings(
    model: Any, x: np.ndarray, want_embeddings: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits and penultimate features of new inputs in one forward pass (a hook on the head)."""
    layer = getattr(model, "embedding_layer", None)
    if not want_embeddings or layer is None:
        return model.logits(x), None
    captured: list[Any] = []
    handle = layer.register_forward_pre_hook(
        lambda _m, inputs: captured.append(inputs[0].detach().float().reshape(len(inputs[0]), -1).cpu())
    )
    try:
        logits = model.logits(x)
    finally:
        handle.remove()
    if not captured:
        return logits, None
    import torch

    emb = torch.cat(captured).numpy()
    return logits, np.nan_to_num(emb, nan=0.0, posinf=0.0, neginf=0.0) if emb.shape[1] else None


def fit_detectors(
    ctx: RunContext,
    detectors: list[str],
    *,
    knn_k: int,
    knn_backend: str = "torch",
    holdout_fraction: float,
    rng: np.random.Generator,
) -> Fitted:
    """Fit the feature-space detectors on train and score held-out ID data for thresholds.

    Held-out ID data: the ``validation`` split when the audit has one; otherwise a seeded
    ``holdout_fraction`` of train that is left out of the Mahalanobis/kNN fit.
    """
    unknown = [d for d in detectors if d not in ALL_DETECTORS]
    if unknown or not detectors:
        raise SpecError(f"detectors: unknown {unknown or '(empty list)'}; known: {list(ALL_DETECTORS)}")
    if not 0.0 < holdout_fraction < 1.0:
        raise SpecError("holdout_fraction must be between 0 and 1")
    train = ctx.dataset("train")
    notes: list[str] = []
    need_features = any(d in FEATURE_DETECTORS for d in detectors)
    train_emb = _safe_embeddings(lambda: ctx.embeddings("train")) if need_features else None
    if need_features and train_emb is None:
        notes.append(
            "the model has no linear head to take penultimate features from: Mahalanobis and kNN skipped"
        )
    has_validation = "validation" in ctx.splits() and len(ctx.dataset("validation")) > 0
    n = len(train)
    if has_validation:
        fit_idx = np.arange(n)
        val = ctx.dataset("validation")
        hold_logits = ctx.predictions("validation").logits
        hold_emb = _safe_embeddings(lambda: ctx.embeddings("validation")) if train_emb is not None else None
        source = f"validation split ({len(val)} rows)"
    else:
        perm = rng.permutation(n)
        n_hold = int(round(n * holdout_fraction))
        if n_hold < 1 or n - n_hold < 2:
            raise NotApplicable(f"train has {n} rows: too few to hold some out for thresholds")
        hold_idx, fit_idx = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
        hold_logits = ctx.predictions("train").logits[hold_idx]
        hold_emb = train_emb[hold_idx] if train_emb is not None else None
        source = (
            f"seeded {holdout_fraction:.0%} of train ({n_hold} rows) left out of the detector fit; the model "
            "itself saw these rows, so thresholds may be stricter than on unseen ID data"
        )
    maha = knn = None
    if train_emb is not None:
        fit_emb = train_emb[fit_idx]
        y = train.y
        if "mahalanobis" in detectors:
            if y is None or not np.any(y[fit_idx] >= 0):
                notes.append("train has no labels: Mahalanobis skipped")
            else:
                maha = Mahalanobis.fit(fit_emb, y[fit_idx])
        if "knn" in detectors:
            knn = KNN.fit(fit_emb, knn_k, knn_backend, str(getattr(ctx.model(), "device", "cpu")))
    fitted = Fitted(list(detectors), maha, knn, source, {}, notes)
    fitted.holdout_scores = fitted.scores(hold_logits, hold_emb)
    fitted.detectors = [d for d in detectors if d in fitted.holdout_scores]
    return fitted


# ---------------------------------------------------------------------------------------------
# Synthetic OOD sets and shifts
# ---------------------------------------------------------------------------------------------


def _value_range(ctx: RunContext, train: Dataset) -> tuple[float, float]:
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
        lo, hi = _value_range(ctx, train)
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
                raise SpecError(
                    f"synthetic set {name!r} does not apply to images; known: {list(IMAGE_SETS)}"
                )
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


def apply_shift(
    kind: str,
    name: str,
    severity: int,
    x: np.ndarray,
    train: Dataset,
    value_range: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """A covariate shift of ``x`` at severity 1..5 (magnitudes in IMAGE_SHIFTS / TABULAR_SHIFTS)."""
    table = IMAGE_SHIFTS if kind == "image" else TABULAR_SHIFTS
    if name not in table:
        raise SpecError(f"shift {name!r} does not apply to {kind} inputs; known: {list(table)}")
    if not 1 <= severity <= 5:
        raise SpecError("severities are integers from 1 to 5")
    s = table[name][severity - 1]
    x = np.asarray(x, dtype=np.float64)
    if kind == "image":
        lo, hi = value_range
        width = hi - lo
        if name == "gaussian_noise":
            y = x + rng.normal(0.0, s * width, size=x.shape)
        elif name == "contrast":
            m = x.reshape(len(x), -1).mean(axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
            y = (x - m) * s + m
        else:
            y = x + s * width
        return np.clip(y, lo, hi).astype(np.float32)
    xt = train.x2d.astype(np.float64)
    num = np.array([f not in train.categorical for f in train.features])
    sd = np.nan_to_num(np.nanstd(xt, axis=0))
    mean = np.nan_to_num(np.nanmean(xt, axis=0))
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


def _subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    if cap <= 0 or n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=cap, replace=False))


def _curve_points(
    s_in: np.ndarray, s_out: np.ndarray, max_points: int = 200
) -> tuple[list[float], list[float]]:
    """ROC points (FPR, TPR; OOD positive), thinned to at most ``max_points`` for the report."""
    from sklearn.metrics import roc_curve

    labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    fpr, tpr, _ = roc_curve(labels, np.r_[s_in, s_out])
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [round(float(v), 5) for v in fpr], [round(float(v), 5) for v in tpr]


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)


# ---------------------------------------------------------------------------------------------
# AK-OOD-001
# ---------------------------------------------------------------------------------------------


@check(
    id="AK-OOD-001",
    title="Out-of-distribution detection: MSP, max logit, energy, Mahalanobis and kNN",
    requires=("model", "train", "test", "classification"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.6", "MAP 2.3", "MANAGE 2.3"),
    tags=("ood", "robustness", "model"),
    cost="moderate",
)
def ood_detection(
    ctx: RunContext,
    /,
    *,
    detectors: list[str] = ["msp", "max_logit", "energy", "mahalanobis", "knn"],  # noqa: B006
    gate_detector: str | None = "mahalanobis",
    min_auroc: float = 0.8,
    gate_sets: list[str] | None = None,
    synthetic: list[str] | None = None,
    fpr_convention: str = "in",
    tpr: float = 0.95,
    knn_k: int = 10,
    knn_backend: str = "torch",
    outlier_scale: float = 5.0,
    holdout_fraction: float = 0.2,
    max_samples: int = 5000,
    n_boot: int = 200,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:
    """How well the model's scores separate in-distribution test inputs from out-of-distribution ones.

    Five detectors, each an OOD score (higher = more OOD): maximum softmax probability, max logit,
    energy (−logsumexp of the logits), Mahalanobis (class-conditional Gaussians with a shared
    covariance on penultimate features fitted on train) and kNN (distance to the k-th nearest
    L2-normalised train embedding). OOD data: the ``ood`` split when the audit has one; otherwise
    synthetic sets fitted to the input kind, each reported on its own (images: uniform noise,
    Gaussian noise with the train pixel mean/sd, inverted and pixel-shuffled test images; tabular:
    uniform samples in the train box, test rows with every column shuffled independently, test rows
    scaled away from the train mean). Metrics per set and detector: AUROC and AUPR-Out (OOD
    positive), AUPR-In (ID positive) and FPR at ``tpr`` TPR, with 95% bootstrap intervals (ID and
    OOD resampled separately). Deployment thresholds are set on held-out ID data only (the
    ``validation`` split, else a seeded part of train left out of the detector fit) so that
    ``tpr`` of it is kept; the share of test ID kept and of OOD accepted at them is reported.
    Gate: for each gated OOD set, the lower 95% bound of the declared detector's AUROC must reach
    ``min_auroc`` (conservative bound). The detector is declared in advance, never picked on the
    test OOD sets. By default every set is gated except column_shuffled: shuffling columns that
    are independent gives in-distribution rows, so that set is measured and reported only.

    Parameters
    ----------
    detectors: detectors to run, any of msp, max_logit, energy, mahalanobis, knn.
    gate_detector: the detector whose AUROC is gated (one of ``detectors``); null reports without a gate.
    min_auroc: smallest acceptable lower 95% bound of the gated detector's AUROC on each gated OOD set.
    gate_sets: OOD sets whose AUROC is gated (names as reported: "ood" or synthetic set names);
        default every set except column_shuffled.
    synthetic: synthetic OOD sets to build when there is no ``ood`` split; default all for the input
        kind (images: uniform_noise, gaussian_noise, inverted, pixel_shuffled; tabular: uniform_box,
        column_shuffled, scaled_outliers).
    fpr_convention: "in" (ID positive, ODIN/Energy papers: share of OOD accepted when ``tpr`` of ID
        is kept) or "out" (OOD positive, OpenOOD: share of ID flagged when ``tpr`` of OOD is caught).
    tpr: true-positive rate for FPR@TPR and for the held-out deployment threshold.
    knn_k: which nearest neighbour's distance is the kNN score.
    knn_backend: exact kNN search with "torch" (blocked matrix products on the model's device) or "faiss" (IndexFlatIP, CPU).
    outlier_scale: factor by which the scaled_outliers set moves numeric features away from the train mean.
    holdout_fraction: share of train held out (seeded) for thresholds when there is no validation split.
    max_samples: at most this many ID test rows and OOD rows per set are scored (seeded subsample, reported).
    n_boot: bootstrap resamples for the intervals.
    min_rows: fewest test rows (and ood rows) to judge detection on; fewer make the check not applicable.
    """
    if fpr_convention not in ("in", "out"):
        raise SpecError("fpr_convention must be 'in' or 'out'")
    if not 0.0 < tpr < 1.0:
        raise SpecError("tpr must be between 0 and 1")
    if gate_detector is not None and gate_detector not in detectors:
        raise SpecError(f"gate_detector {gate_detector!r} is not among detectors {detectors}")
    model = ctx.model()
    train, test = ctx.dataset("train"), ctx.dataset("test")
    require_rows(len(test), max(min_rows, 2), what="OOD detection", split="test")
    if "ood" in ctx.splits():
        require_rows(len(ctx.dataset("ood")), max(min_rows, 1), what="OOD detection", split="ood")
    test_logits = ctx.predictions("test").logits
    if test_logits.ndim != 2 or test_logits.shape[1] < 2:
        raise NotApplicable("the model has a single output: softmax-based detectors need class logits")
    rng = ctx.rng()
    fitted = fit_detectors(
        ctx, detectors, knn_k=knn_k, knn_backend=knn_backend, holdout_fraction=holdout_fraction, rng=rng
    )
    features = fitted.mahalanobis is not None or fitted.knn is not None

    idx = _subsample(len(test), max_samples, rng)
    test_emb = _safe_embeddings(lambda: ctx.embeddings("test")) if features else None
    id_scores = fitted.scores(test_logits[idx], test_emb[idx] if test_emb is not None else None)

    kind = ctx.model_input.kind
    notes = list(fitted.notes)
    if "ood" in ctx.splits():
        ood = ctx.dataset("ood")
        if len(ood) == 0:
            raise NotApplicable("the ood split is empty")
        o_idx = _subsample(len(ood), max_samples, rng)
        o_logits = ctx.predictions("ood").logits[o_idx]
        o_emb = _safe_embeddings(lambda: ctx.embeddings("ood")) if features else None
        sets = {"ood": fitted.scores(o_logits, o_emb[o_idx] if o_emb is not None else None)}
        sizes = {"ood": (len(o_idx), len(ood))}
        source = "the audit's ood split"
    else:
        names = synthetic if synthetic is not None else list(IMAGE_SETS if kind == "image" else TABULAR_SETS)
        if not names:
            raise NotApplicable("no ood split and no synthetic sets requested")
        arrays = synthetic_ood_sets(ctx, kind, test.x[idx], train, names, rng, outlier_scale=outlier_scale)
        sets, sizes = {}, {}
        for name, x in arrays.items():
            logits, emb = logits_and_embeddings(model, x, features)
            sets[name] = fitted.scores(logits, emb)
            sizes[name] = (len(x), len(x))
        source = f"synthetic sets for {kind} inputs (no ood split)"
    if len(idx) < len(test):
        notes.append(f"scored a seeded subsample of {len(idx)} of {len(test)} test rows (max_samples)")
    for name, (used, total) in sizes.items():
        if used < total:
            notes.append(f"scored a seeded subsample of {used} of {total} rows of {name} (max_samples)")

    gated_sets = set(gate_sets) if gate_sets is not None else {s for s in sets if s != "column_shuffled"}
    unknown_sets = gated_sets - set(sets)
    if unknown_sets:
        raise SpecError(f"gate_sets {sorted(unknown_sets)} are not among the OOD sets {list(sets)}")

    # Deployment thresholds from held-out ID data.
    thresholds = {d: float(np.quantile(fitted.holdout_scores[d], tpr)) for d in fitted.detectors}
    fpr_key = "fpr_in" if fpr_convention == "in" else "fpr_out"
    from auditkit.stats import wilson

    rows: list[list[Any]] = []
    metrics: list[Metric] = []
    findings: list[Finding] = []
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for set_name, ood_scores in sets.items():
        results[set_name] = {}
        for det in fitted.detectors:
            s_in, s_out = id_scores[det], ood_scores[det]
            m = detection_metrics_ci(s_in, s_out, n_boot=n_boot, rng=rng, tpr=tpr)
            accepted = int(np.sum(s_out <= thresholds[det]))
            results[set_name][det] = {**{k: v for k, v in m.items()}, "accepted": accepted}
            au, au_ci = m["auroc"]
            fpr, fpr_ci = m[fpr_key]
            rows.append([
                set_name, det, _r(au), _r(au_ci[0]) if au_ci else None, _r(au_ci[1]) if au_ci else None,
                _r(m["aupr_in"][0]), _r(m["aupr_out"][0]), _r(fpr), _r(accepted / len(s_out)), len(s_in), len(s_out),
            ])  # fmt: skip
        if gate_detector in fitted.detectors:
            g = results[set_name][gate_detector]
            n_in, n_out = len(id_scores[gate_detector]), len(ood_scores[gate_detector])
            details = {"detector": gate_detector, "set": set_name, "n_id": n_in, "n_ood": n_out}
            metrics += [
                Metric(f"auroc:{set_name}", g["auroc"][0], ci=g["auroc"][1], n=n_in + n_out,
                       threshold=min_auroc if set_name in gated_sets else None,
                       direction="higher", bound="conservative", details={**details, "positive": "ood"},
                       description=f"AUROC of {gate_detector} separating test ID from {set_name} (OOD positive)"),
                Metric(f"aupr_in:{set_name}", g["aupr_in"][0], ci=g["aupr_in"][1], n=n_in + n_out, direction="higher",
                       details={**details, "positive": "id"},
                       description="average precision with ID as positive (score negated)"),
                Metric(f"aupr_out:{set_name}", g["aupr_out"][0], ci=g["aupr_out"][1], n=n_in + n_out,
                       direction="higher", details={**details, "positive": "ood"},
                       description="average precision with OOD as positive"),
                Metric(f"fpr_at_{round(tpr * 100)}tpr:{set_name}", g[fpr_key][0], ci=g[fpr_key][1], n=n_in + n_out,
                       direction="lower",
                       details={**details, "convention": fpr_convention, "positive": "id" if fpr_convention == "in" else "ood"},
                       description=("share of OOD accepted when the threshold keeps "
                                    f"{tpr:.0%} of ID (ID positive)") if fpr_convention == "in" else
                                   f"share of ID flagged when the threshold catches {tpr:.0%} of OOD (OOD positive)"),
                Metric(f"ood_accepted_at_threshold:{set_name}", g["accepted"] / n_out,
                       ci=wilson(g["accepted"], n_out), n=n_out, direction="lower", details=details,
                       description="share of OOD accepted at the threshold set on held-out ID data"),
            ]  # fmt: skip
    if gate_detector is not None and gate_detector not in fitted.detectors:
        findings.append(Finding(
            f"the declared gate detector {gate_detector} could not run ({'; '.join(fitted.notes) or 'unavailable'}),"
            " so detection is not evidenced", key=f"unavailable:{gate_detector}",
        ))  # fmt: skip
    id_rows = []
    for det in fitted.detectors:
        kept = int(np.sum(id_scores[det] <= thresholds[det]))
        id_rows.append([det, _r(thresholds[det], 6), _r(kept / len(idx)), len(idx)])
        if det == gate_detector:
            metrics.append(Metric(
                "id_kept_at_threshold", kept / len(idx), ci=wilson(kept, len(idx)), n=len(idx), direction="higher",
                details={"detector": det, "target": tpr},
                description=f"share of test ID inputs kept at the threshold set to keep {tpr:.0%} of held-out ID",
            ))  # fmt: skip

    # Best detector per set as a note (reporting only: the gate uses the declared detector).
    best = {s: max(r, key=lambda d: r[d]["auroc"][0]) for s, r in results.items() if r}
    for s, d in best.items():
        if gate_detector and d != gate_detector and gate_detector in results[s]:
            findings.append(Finding(
                f"on {s}, {d} separates better (AUROC {results[s][d]['auroc'][0]:.3f}) than the gated "
                f"{gate_detector} ({results[s][gate_detector]['auroc'][0]:.3f})", severity="info", key=f"best:{s}",
            ))  # fmt: skip
    for note in notes:
        findings.append(Finding(note, severity="info", key="note:" + note.split(":")[0][:40]))

    convention = {
        "score": "higher = more out-of-distribution (MSP and max logit negated; energy = −logsumexp)",
        "auroc": "OOD positive (unchanged if the positive class and score sign flip together)",
        "aupr_out": "OOD positive", "aupr_in": "ID positive, score negated",
        "fpr_at_tpr": (f"{fpr_convention}: " + ("ID positive (ODIN/Energy): share of OOD accepted when "
                       f"{tpr:.0%} of ID is kept" if fpr_convention == "in" else "OOD positive (OpenOOD): share of"
                       f" ID flagged when {tpr:.0%} of OOD is caught")),
        "thresholds": f"set on held-out ID data only: {fitted.holdout_source}",
        "intervals": f"95% percentile bootstrap, {n_boot} resamples, ID and OOD resampled separately",
    }  # fmt: skip
    evidence: dict[str, Any] = {
        "convention": {"columns": ["quantity", "convention"], "rows": [[k, v] for k, v in convention.items()]},
        "ood_source": source,
        "gated_sets": sorted(gated_sets) if gate_detector in fitted.detectors else [],
        "detection": {
            "columns": ["ood set", "detector", "auroc", "auroc lo", "auroc hi", "aupr_in", "aupr_out",
                        f"fpr@{round(tpr * 100)}tpr ({fpr_convention})", "ood accepted at threshold", "n id", "n ood"],
            "rows": rows,
        },  # fmt: skip
        "thresholds": {"columns": ["detector", "threshold", "test ID kept", "n"], "rows": id_rows},
        "plots": [
            {"type": "bar", "title": "AUROC by detector and OOD set", "x_label": "OOD set", "y_label": "AUROC",
             "categories": list(sets), "series": [
                 {"name": d, "values": [_r(results[s][d]["auroc"][0]) for s in sets]} for d in fitted.detectors]},
        ],
    }  # fmt: skip
    if gate_detector in fitted.detectors:
        curves = []
        for s, sc in sets.items():
            fx, fy = _curve_points(id_scores[gate_detector], sc[gate_detector])
            curves.append({"name": s, "x": fx, "y": fy})
        evidence["plots"].append({
            "type": "line", "title": f"ROC of {gate_detector} (OOD positive)", "x_label": "false positive rate (ID flagged)",
            "y_label": "true positive rate (OOD caught)", "series": curves, "diagonal": True,
        })  # fmt: skip
    summary_bits = [
        f"{s}: best {best[s]} AUROC {results[s][best[s]]['auroc'][0]:.3f}"
        + (
            f", gated {gate_detector} {results[s][gate_detector]['auroc'][0]:.3f}"
            if gate_detector in results[s]
            else ""
        )
        for s in sets
    ]
    return Outcome.from_metrics(
        metrics,
        summary=f"OOD detection vs {source}: " + "; ".join(summary_bits),
        findings=findings,
        evidence=evidence,
    )


# ---------------------------------------------------------------------------------------------
# AK-OOD-002
# ---------------------------------------------------------------------------------------------


def risk_coverage(
    scores: np.ndarray, errors: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Selective risk when the most OOD-looking inputs are abstained on first.

    Inputs are accepted in increasing score order; ``risk[k]`` is the error rate among the first
    k+1 accepted, ``coverage[k]`` their share. AURC is the mean risk over all coverages (per row of
    ``weights``, bootstrap counts: the weighted analogue).
    """
    order = np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")
    err = np.asarray(errors, dtype=np.float64)[order]
    w = np.ones((1, len(err))) if weights is None else np.atleast_2d(weights)[:, order]
    cw = np.cumsum(w, axis=1)
    ce = np.cumsum(w * err, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        risk = np.where(cw > 0, ce / np.maximum(cw, 1e-300), 0.0)
    aurc = (w * risk).sum(axis=1) / w.sum(axis=1)
    return {"coverage": cw / cw[:, -1:], "risk": risk, "aurc": aurc}


def _risk_at(scores: np.ndarray, errors: np.ndarray, coverage: float) -> tuple[int, int]:
    """(errors, accepted) when the ``coverage`` share with the lowest OOD scores is accepted."""
    k = max(1, int(math.ceil(coverage * len(scores))))
    order = np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return int(np.sum(np.asarray(errors)[order])), k


def _thin(x: np.ndarray, y: np.ndarray, max_points: int = 200) -> tuple[list[float], list[float]]:
    keep = np.unique(np.linspace(0, len(x) - 1, min(max_points, len(x))).round().astype(int))
    return [round(float(v), 5) for v in x[keep]], [round(float(v), 5) for v in y[keep]]


@check(
    id="AK-OOD-002",
    title="Accuracy, calibration and selective prediction under distribution shift",
    requires=("model", "train", "test", "label", "classification"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.6", "MEASURE 2.4", "MANAGE 2.3"),
    tags=("ood", "shift", "calibration", "robustness", "model"),
    cost="moderate",
)
def shift_behaviour(
    ctx: RunContext,
    /,
    *,
    shifts: list[str] | None = None,
    severities: list[int] = [1, 2, 3, 4, 5],  # noqa: B006
    gate_severity: int = 2,
    max_accuracy_drop: float | None = 0.1,
    max_ece: float | None = 0.15,
    use_production: bool = True,
    n_bins: int = 15,
    detectors: list[str] = ["msp", "max_logit", "energy", "mahalanobis", "knn"],  # noqa: B006
    coverage: float = 0.8,
    max_selective_risk: float | None = None,
    knn_k: int = 10,
    knn_backend: str = "torch",
    holdout_fraction: float = 0.2,
    max_samples: int = 5000,
    n_boot: int = 200,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:
    """Accuracy and calibration when inputs shift, and what abstaining on OOD-looking inputs buys.

    Shifted data: a labelled ``production`` split when the audit has one (and ``use_production``);
    otherwise synthetic covariate shifts of the test inputs at severities 1–5 (images: Gaussian
    noise with sd 0.08–0.38 of the value range, contrast reduced to 0.4–0.05 of each image's
    spread, brightness +0.1–0.5 of the range, clipped; tabular, numeric features in train standard
    deviations: Gaussian noise 0.1–2 sd, a mean shift of 0.1–2 sd (+ on even-numbered, − on
    odd-numbered features), spread scaled by 1.1–3). For each: accuracy (Wilson interval), accuracy drop against the clean test
    set (paired bootstrap for synthetic shifts) and expected calibration error (equal-width bins,
    bootstrap interval). Gate: at ``gate_severity`` (or on production) the drop must stay within
    ``max_accuracy_drop`` and ECE within ``max_ece`` (point estimates). Selective prediction: every
    detector of AK-OOD-001 ranks inputs; the best is chosen by area under the risk–coverage curve
    (AURC) on the validation split, or on a seeded half of the test set when there is none (the
    curve is then reported on the other half); its risk at ``coverage`` and AURC are reported on
    clean test data and on the shifted data (at ``gate_severity``, all shifts pooled).

    Parameters
    ----------
    shifts: synthetic shifts to apply; default all for the input kind (images: gaussian_noise,
        contrast, brightness; tabular: gaussian_noise, mean_shift, scale).
    severities: severities (integers 1–5) at which each synthetic shift is measured.
    gate_severity: severity whose accuracy drop and ECE are gated (must be among ``severities``).
    max_accuracy_drop: largest acceptable accuracy drop from clean test to shifted data; null: no gate.
    max_ece: largest acceptable expected calibration error on shifted data; null: no gate.
    use_production: use a labelled production split as the shifted data when there is one.
    n_bins: equal-width confidence bins for ECE.
    detectors: detectors compared for selective prediction (as in AK-OOD-001).
    coverage: share of inputs kept when reporting selective risk.
    max_selective_risk: largest acceptable error rate at ``coverage`` on shifted data; null: reported only.
    knn_k: which nearest neighbour's distance is the kNN score.
    knn_backend: exact kNN search with "torch" (blocked matrix products on the model's device) or "faiss" (IndexFlatIP, CPU).
    holdout_fraction: share of train held out of the detector fit when there is no validation split.
    max_samples: at most this many labelled test rows are used (seeded subsample, reported).
    n_boot: bootstrap resamples for the intervals.
    min_rows: fewest labelled test rows with a finite output to judge on; fewer make the check not applicable.
    """
    from auditkit.stats import wilson

    if not 0.0 < coverage <= 1.0:
        raise SpecError("coverage must be in (0, 1]")
    if n_bins < 1:
        raise SpecError("n_bins must be at least 1")
    model = ctx.model()
    train, test = ctx.dataset("train"), ctx.dataset("test")
    y_test = test.y
    if y_test is None or not np.any(y_test >= 0):
        raise NotApplicable("the test split has no labels: accuracy under shift cannot be measured")
    rng = ctx.rng()
    test_logits = ctx.predictions("test").logits
    if test_logits.shape[1] < 2:
        raise NotApplicable(
            "the model has a single output: accuracy and calibration need class probabilities"
        )
    notes: list[str] = []
    finite = np.isfinite(test_logits).all(axis=1)
    labelled = np.flatnonzero((y_test >= 0) & finite)
    if len(labelled) < int(np.sum(y_test >= 0)):
        # As AK-PERF-001: rows whose clean output is undefined (NaN inputs) are left out and counted;
        # a NaN ECE used to compare as "not above the limit" and pass.
        notes.append(f"left out {int(np.sum((y_test >= 0) & ~finite))} labelled test rows whose model output "
                     "is not finite (e.g. missing values the model does not handle)")
    if len(labelled) == 0:
        raise NotApplicable("no labelled test row has a finite model output")
    require_rows(len(labelled), min_rows, what="accuracy under shift", split="labelled test")
    idx = labelled[_subsample(len(labelled), max_samples, rng)]
    kind = ctx.model_input.kind
    if len(idx) < len(labelled):
        notes.append(
            f"used a seeded subsample of {len(idx)} of {len(labelled)} labelled test rows (max_samples)"
        )

    def stats(logits: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        ok = np.isfinite(logits).all(axis=1)
        z = np.where(ok[:, None], logits, 0.0)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        # A non-finite output under shift is an error made with full confidence, never a NaN metric.
        correct = np.where(ok, p.argmax(axis=1) == y, False).astype(np.float64)
        return {"correct": correct, "conf": np.where(ok, p.max(axis=1), 1.0)}

    y0 = y_test[idx]
    clean = stats(test_logits[idx], y0)
    w_clean = _boot_weights(len(idx), n_boot, rng) if n_boot > 0 else None
    clean_acc = float(clean["correct"].mean())
    clean_ece = float(expected_calibration_error(clean["conf"], clean["correct"], n_bins=n_bins)[0])
    clean_ece_ci = (
        _quantile_ci(expected_calibration_error(clean["conf"], clean["correct"], n_bins=n_bins, weights=w_clean))
        if w_clean is not None else None
    )  # fmt: skip
    k0 = int(clean["correct"].sum())
    metrics: list[Metric] = [
        Metric("accuracy:clean", clean_acc, ci=wilson(k0, len(idx)), n=len(idx), direction="higher",
               description="accuracy on the (unshifted) test set"),
        Metric("ece:clean", clean_ece, ci=clean_ece_ci, n=len(idx), direction="lower",
               description=f"expected calibration error on the test set ({n_bins} equal-width bins)"),
    ]  # fmt: skip

    # Shifted data: production, or synthetic shifts of the same test rows (paired).
    value_range = _value_range(ctx, train)
    rows: list[list[Any]] = []
    # name -> (embeddings of the shifted inputs (lazy), logits, labels): the data selective risk is reported on.
    gated: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
    prod = ctx.dataset("production") if use_production and "production" in ctx.splits() else None
    prod_labelled = prod is not None and prod.y is not None and bool(np.any(prod.y >= 0))
    curves_acc: list[dict[str, Any]] = []
    curves_ece: list[dict[str, Any]] = []
    if prod_labelled:
        assert prod is not None and prod.y is not None
        p_lab = np.flatnonzero(prod.y >= 0)
        p_idx = p_lab[_subsample(len(p_lab), max_samples, rng)]
        p_logits = ctx.predictions("production").logits[p_idx]
        yp = prod.y[p_idx]
        st = stats(p_logits, yp)
        kp = int(st["correct"].sum())
        acc = kp / len(p_idx)
        wp = _boot_weights(len(p_idx), n_boot, rng) if n_boot > 0 else None
        ece = float(expected_calibration_error(st["conf"], st["correct"], n_bins=n_bins)[0])
        ece_ci = (
            _quantile_ci(expected_calibration_error(st["conf"], st["correct"], n_bins=n_bins, weights=wp))
            if wp is not None
            else None
        )
        drop_ci = None
        if wp is not None and w_clean is not None:  # unpaired: resample each split on its own
            boot_drop = (w_clean @ clean["correct"]) / w_clean.sum(1) - (wp @ st["correct"]) / wp.sum(1)
            drop_ci = _quantile_ci(boot_drop)
        details = {"shift": "production", "n_clean": len(idx)}
        metrics += [
            Metric("accuracy:production", acc, ci=wilson(kp, len(p_idx)), n=len(p_idx), direction="higher", details=details),
            Metric("accuracy_drop:production", clean_acc - acc, ci=drop_ci, n=len(p_idx), threshold=max_accuracy_drop,
                   direction="lower", details=details, description="clean test accuracy minus production accuracy"),
            Metric("ece:production", ece, ci=ece_ci, n=len(p_idx), threshold=max_ece, direction="lower", details=details),
        ]  # fmt: skip
        rows.append(["production", None, _r(acc), _r(clean_acc - acc), _r(ece), len(p_idx)])
        gated["production"] = (lambda: ctx.embeddings("production")[p_idx], p_logits, yp)
        source = f"the labelled production split ({len(p_idx)} rows)"
    else:
        table = IMAGE_SHIFTS if kind == "image" else TABULAR_SHIFTS
        names = shifts if shifts is not None else list(table)
        bad = [s for s in severities if not isinstance(s, int) or not 1 <= s <= 5]
        if bad or not severities:
            raise SpecError(f"severities must be integers from 1 to 5, got {severities}")
        if gate_severity not in severities:
            raise SpecError(f"gate_severity {gate_severity} is not among severities {severities}")
        if not names:
            raise NotApplicable("no labelled production split and no synthetic shifts requested")
        x0 = test.x[idx]
        for name in names:
            accs, los, his, eces = (
                [clean_acc],
                [wilson(k0, len(idx))[0]],
                [wilson(k0, len(idx))[1]],
                [clean_ece],
            )
            for sev in sorted(severities):
                xs = apply_shift(kind, name, sev, x0, train, value_range, rng)
                logits = model.logits(xs)
                st = stats(logits, y0)
                k = int(st["correct"].sum())
                acc, drop = k / len(idx), clean_acc - k / len(idx)
                ece = float(expected_calibration_error(st["conf"], st["correct"], n_bins=n_bins)[0])
                accs.append(acc)
                lo, hi = wilson(k, len(idx))
                los.append(lo)
                his.append(hi)
                eces.append(ece)
                rows.append([name, sev, _r(acc), _r(drop), _r(ece), len(idx)])
                if sev != gate_severity:
                    continue
                drop_ci = ece_ci = None
                if w_clean is not None:  # paired: the same resampled rows, clean and shifted
                    drop_ci = _quantile_ci((w_clean @ (clean["correct"] - st["correct"])) / w_clean.sum(1))
                    ece_ci = _quantile_ci(
                        expected_calibration_error(st["conf"], st["correct"], n_bins=n_bins, weights=w_clean)
                    )
                key = f"{name}@{sev}"
                details = {"shift": name, "severity": sev, "magnitude": table[name][sev - 1]}
                metrics += [
                    Metric(f"accuracy:{key}", acc, ci=(lo, hi), n=len(idx), direction="higher", details=details),
                    Metric(f"accuracy_drop:{key}", drop, ci=drop_ci, n=len(idx), threshold=max_accuracy_drop,
                           direction="lower", details=details,
                           description="clean accuracy minus shifted accuracy on the same rows"),
                    Metric(f"ece:{key}", ece, ci=ece_ci, n=len(idx), threshold=max_ece, direction="lower",
                           details=details),
                ]  # fmt: skip
                gated[key] = (lambda xs=xs: model.embeddings(xs), logits, y0)
            xs_axis = [0, *sorted(severities)]
            curves_acc.append({"name": name, "x": xs_axis, "y": [_r(a) for a in accs],
                               "lo": [_r(v) for v in los], "hi": [_r(v) for v in his]})  # fmt: skip
            curves_ece.append({"name": name, "x": xs_axis, "y": [_r(e) for e in eces]})
        source = f"synthetic {kind} shifts of the test inputs at severities {sorted(severities)} (no labelled production split)"

    # Selective prediction: choose the detector on held-out data, report on test and shifted data.
    fitted = fit_detectors(
        ctx, detectors, knn_k=knn_k, knn_backend=knn_backend, holdout_fraction=holdout_fraction, rng=rng
    )
    features = fitted.mahalanobis is not None or fitted.knn is not None
    test_emb = _safe_embeddings(lambda: ctx.embeddings("test")) if features else None
    scores_test = fitted.scores(test_logits[idx], test_emb[idx] if test_emb is not None else None)
    err_test = 1.0 - clean["correct"]
    val = ctx.dataset("validation") if "validation" in ctx.splits() else None
    if val is not None and val.y is not None and np.any(val.y >= 0):
        v_lab = np.flatnonzero(val.y >= 0)
        v_logits = ctx.predictions("validation").logits[v_lab]
        v_emb = _safe_embeddings(lambda: ctx.embeddings("validation")) if features else None
        sel_scores = fitted.scores(v_logits, v_emb[v_lab] if v_emb is not None else None)
        sel_err = (v_logits.argmax(axis=1) != val.y[v_lab]).astype(np.float64)
        report = np.arange(len(idx))
        how = f"chosen by AURC on the validation split ({len(v_lab)} labelled rows)"
    else:
        perm = rng.permutation(len(idx))
        half = len(idx) // 2
        sel, report = np.sort(perm[:half]), np.sort(perm[half:])
        if len(sel) == 0 or len(report) == 0:
            raise NotApplicable("too few labelled test rows to choose a detector and report selective risk")
        sel_scores = {d: s[sel] for d, s in scores_test.items()}
        sel_err = err_test[sel]
        how = f"chosen by AURC on a seeded half of the test rows ({len(sel)}); curves on the other half ({len(report)})"
    aurcs = {d: float(risk_coverage(s, sel_err)["aurc"][0]) for d, s in sel_scores.items()}
    best = min(aurcs, key=lambda d: (aurcs[d], fitted.detectors.index(d)))

    shifted_scores: list[np.ndarray] = []
    shifted_err: list[np.ndarray] = []
    for get_emb, logits, y in gated.values():
        emb = _safe_embeddings(get_emb) if features and best in FEATURE_DETECTORS else None
        shifted_scores.append(fitted.scores(logits, emb)[best])
        shifted_err.append((logits.argmax(axis=1) != y).astype(np.float64))
    sel_rows = []
    plot_series = []
    for label, s, e in (
        ("clean test", scores_test[best][report], err_test[report]),
        (
            "shifted" if not prod_labelled else "production",
            np.concatenate(shifted_scores),
            np.concatenate(shifted_err),
        ),
    ):
        errs, kept = _risk_at(s, e, coverage)
        rc = risk_coverage(s, e)
        aurc_ci = (
            _quantile_ci(risk_coverage(s, e, _boot_weights(len(s), n_boot, rng))["aurc"])
            if n_boot > 0
            else None
        )
        suffix = (
            "clean"
            if label == "clean test"
            else ("production" if prod_labelled else f"shifted@{gate_severity}")
        )
        metrics += [
            Metric(f"selective_risk@{coverage:g}:{suffix}", errs / kept, ci=wilson(errs, kept), n=kept,
                   threshold=max_selective_risk if suffix != "clean" else None, direction="lower",
                   details={"detector": best, "coverage": coverage, "full_coverage_risk": float(e.mean())},
                   description=f"error rate on the {coverage:.0%} of inputs {best} finds least OOD"),
            Metric(f"aurc:{suffix}", float(rc["aurc"][0]), ci=aurc_ci, n=len(s), direction="lower",
                   details={"detector": best}, description="area under the risk–coverage curve"),
        ]  # fmt: skip
        sel_rows.append([label, best, _r(float(e.mean())), _r(errs / kept), _r(float(rc["aurc"][0])), len(s)])
        cx, cy = _thin(rc["coverage"][0], rc["risk"][0])
        plot_series.append({"name": f"{best} — {label}", "x": cx, "y": cy})
        if best != "msp" and "msp" in scores_test and label == "clean test":
            rc_msp = risk_coverage(scores_test["msp"][report], e)
            mx, my = _thin(rc_msp["coverage"][0], rc_msp["risk"][0])
            plot_series.append({"name": f"msp — {label}", "x": mx, "y": my})

    findings = [Finding(n, severity="info", key="note:" + n.split(":")[0][:40]) for n in notes + fitted.notes]
    evidence: dict[str, Any] = {
        "shift_source": source,
        "under shift": {
            "columns": ["shift", "severity", "accuracy", "accuracy drop", "ece", "n"],
            "rows": rows,
        },
        "selective prediction": {
            "columns": [
                "data",
                "detector",
                "risk at full coverage",
                f"risk at {coverage:g} coverage",
                "aurc",
                "n",
            ],
            "rows": sel_rows,
        },
        "detector choice": {
            "columns": ["detector", "aurc (selection data)"],
            "rows": [[d, _r(a, 5)] for d, a in aurcs.items()],
        },
        "selection": how,
        "ece": f"{n_bins} equal-width bins on the top-class probability",
        "plots": [],
    }
    if curves_acc:
        evidence["plots"] += [
            {"type": "line", "title": "Accuracy under shift (severity 0 = clean)", "x_label": "severity",
             "y_label": "accuracy", "series": curves_acc},
            {"type": "line", "title": "Expected calibration error under shift", "x_label": "severity",
             "y_label": "ECE", "series": curves_ece},
        ]  # fmt: skip
    evidence["plots"].append({
        "type": "line", "title": f"Risk–coverage, abstaining with {best}", "x_label": "coverage",
        "y_label": "selective risk (error rate)", "series": plot_series,
    })  # fmt: skip
    worst = max(rows, key=lambda r: r[3] if r[3] is not None else -1) if rows else None
    summary = f"clean accuracy {clean_acc:.3f}, ECE {clean_ece:.3f}; shifts: {source}"
    if worst:
        summary += (
            f"; largest drop {worst[3]:.3f} ({worst[0]}{'' if worst[1] is None else ' @' + str(worst[1])})"
        )
    summary += f"; abstaining with {best}: risk {sel_rows[0][3]:.3f} at {coverage:.0%} coverage on clean test"
    return Outcome.from_metrics(metrics, summary=summary, findings=findings, evidence=evidence)
