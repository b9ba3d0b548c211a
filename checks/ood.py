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
from auditkit.checks._corruptions import IMAGE_SEVERITIES

from auditkit import DEFAULT_MIN_ROWS, Finding, Metric, NotApplicable, Outcome, SpecError, check, require_rows

if TYPE_CHECKING:
    from auditkit import RunContext
    from auditkit.toolkit import Dataset

ALL_DETECTORS = ("msp", "max_logit", "energy", "mahalanobis", "knn", "odin", "gen", "vim", "react", "ash", "dice",
                 "relative_mahalanobis")  # fmt: skip
LOGIT_DETECTORS = ("msp", "max_logit", "energy", "gen")
# need penultimate features; HEAD_DETECTORS also reuse the model's last linear layer on them
FEATURE_DETECTORS = ("mahalanobis", "knn", "vim", "react", "ash", "dice", "relative_mahalanobis")
HEAD_DETECTORS = ("vim", "react", "ash", "dice")
INPUT_DETECTORS = ("odin",)  # need the inputs and gradients through the model
DEFAULT_DETECTORS = ["msp", "max_logit", "energy", "mahalanobis", "knn", "gen", "vim", "react", "ash", "dice",
                     "relative_mahalanobis"]  # fmt: skip
# The paper behind each detector, for the evidence and docs/ood.md.
PAPERS = {
    "msp": "Hendrycks & Gimpel, ICLR 2017 (maximum softmax probability)",
    "max_logit": "Hendrycks et al., ICML 2022 (Scaling OOD detection to real-world settings)",
    "energy": "Liu et al., NeurIPS 2020 (Energy-based OOD detection)",
    "mahalanobis": "Lee et al., NeurIPS 2018 (class-conditional Gaussians, shared covariance)",
    "knn": "Sun et al., ICML 2022 (deep nearest neighbours)",
    "odin": "Liang, Li & Srikant, ICLR 2018 (ODIN); ε chosen on ID as in Hsu et al., CVPR 2020",
    "gen": "Liu, Lochman & Zach, CVPR 2023 (GEN, generalised entropy)",
    "vim": "Wang et al., CVPR 2022 (ViM, virtual-logit matching)",
    "react": "Sun, Guo & Li, NeurIPS 2021 (ReAct, rectified activations) over energy",
    "ash": "Djurisic et al., ICLR 2023 (ASH-S, activation shaping) over energy",
    "dice": "Sun & Li, ECCV 2022 (DICE, sparsified head) over energy",
    "relative_mahalanobis": "Ren et al., 2021, arXiv:2106.09022 (relative Mahalanobis distance)",
}
IMAGE_SETS = ("uniform_noise", "gaussian_noise", "inverted", "pixel_shuffled")
TABULAR_SETS = ("uniform_box", "column_shuffled", "scaled_outliers")
# Synthetic shifts for AK-OOD-002 and their magnitude at severity 1..5.
IMAGE_SHIFTS: dict[str, tuple[float, ...]] = {  # the shared image severity table (checks/_corruptions.py)
    name: tuple(IMAGE_SEVERITIES[name]) for name in ("gaussian_noise", "contrast", "brightness")
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
    s_in: np.ndarray,
    s_out: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator,
    tpr: float = 0.95,
    weights: tuple[np.ndarray, np.ndarray] | None = None,
    boots: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[float, tuple[float, float] | None]]:
    """Point estimates and 95% percentile intervals (ID and OOD resampled separately).

    ``weights``: bootstrap count rows (ID, OOD) to reuse, so that several detectors are resampled
    identically (paired); ``boots``, when given, receives the bootstrap values per metric.
    """
    point = {k: float(v[0]) for k, v in detection_metrics(s_in, s_out, tpr=tpr).items()}
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in point}
    if weights is not None or n_boot > 0:
        w_in_all, w_out_all = weights or (
            _boot_weights(len(s_in), n_boot, rng),
            _boot_weights(len(s_out), n_boot, rng),
        )
        n_boot = len(w_in_all)
        step = max(1, _MAX_BOOT_CELLS // max(1, len(s_in) + len(s_out)))
        for lo in range(0, n_boot, step):
            part = detection_metrics(
                s_in, s_out, w_in=w_in_all[lo : lo + step], w_out=w_out_all[lo : lo + step], tpr=tpr
            )
            for k, arr in part.items():
                chunks[k].append(arr)
    out: dict[str, tuple[float, tuple[float, float] | None]] = {}
    for k, value in point.items():
        values = np.concatenate(chunks[k]) if chunks[k] else np.array([])
        if boots is not None:
            boots[k] = values
        values = values[np.isfinite(values)]
        ci = (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))) if len(values) else None
        out[k] = (value, ci)
    return out


def selection_summary(
    results: dict[str, dict[str, Any]], boots: dict[str, dict[str, np.ndarray]]
) -> tuple[str, list[list[Any]]]:
    """Rank the detectors of one OOD set by AUROC; paired bootstrap interval of each one's AUROC
    difference to the best (the same resamples for all). Returns (best, rows): detector, AUROC,
    Δ to best, its 95% interval, whether the interval excludes 0, FPR@TPR both conventions."""
    best = max(results, key=lambda d: (results[d]["auroc"][0], -list(results).index(d)))
    rows = []
    for det in sorted(results, key=lambda d: -results[d]["auroc"][0]):
        diff = results[best]["auroc"][0] - results[det]["auroc"][0]
        paired = (
            boots[best]["auroc"] - boots[det]["auroc"] if len(boots[det].get("auroc", [])) else np.array([])
        )
        ci = _quantile_ci(paired) if det != best else None
        rows.append([det, _num(results[det]["auroc"][0]), _num(diff), _num(ci[0]) if ci else None, _num(ci[1]) if ci else None,
                     None if det == best or ci is None else bool(ci[0] > 0),
                     _num(results[det]["fpr_in"][0]), _num(results[det]["fpr_out"][0])])  # fmt: skip
    return best, rows


def expected_calibration_error(
    conf: np.ndarray, correct: np.ndarray, *, n_bins: int = 15, weights: np.ndarray | None = None
) -> np.ndarray:
    """ECE with equal-width (lo, hi] confidence bins, per weight row: Σ_b |Σ w(conf − correct)| / Σ w."""
    conf = np.asarray(conf, dtype=np.float64)
    gap = conf - np.asarray(correct, dtype=np.float64)
    w = np.ones((1, len(conf))) if weights is None else np.atleast_2d(weights)
    from auditkit.toolkit import calibration_bins  # (lo, hi] bins, the same as AK-PERF's ECE

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


def _sym_inverse_sqrt(x: np.ndarray, ridge: float) -> np.ndarray:
    """Whitening matrix of the covariance of ``x`` (rows centred by the caller), ridge as in Mahalanobis."""
    cov = np.zeros((x.shape[1], x.shape[1]))
    for lo in range(0, len(x), 8192):
        c = x[lo : lo + 8192].astype(np.float64)
        cov += c.T @ c
    cov /= max(1, len(x))
    cov += np.eye(len(cov)) * (ridge * max(float(np.trace(cov)) / max(len(cov), 1), 1e-12))
    vals, vecs = np.linalg.eigh(cov)
    return np.asarray(vecs / np.sqrt(np.maximum(vals, 1e-12))[None, :])


@dataclass
class RelativeMahalanobis:
    """Relative Mahalanobis distance (Ren et al. 2021, "A Simple Fix to Mahalanobis Distance for
    Improving Near-OOD Detection", arXiv:2106.09022): the class-conditional Mahalanobis score minus
    the squared distance under one background Gaussian fitted to all train features,
    ``min_k [MD_k(z) − MD_0(z)]``, which removes the directions every class shares."""

    classes: Mahalanobis
    mean0: np.ndarray
    whiten0: np.ndarray

    @classmethod
    def fit(cls, emb: np.ndarray, y: np.ndarray, ridge: float = 1e-6) -> RelativeMahalanobis:
        per_class = Mahalanobis.fit(emb, y, ridge)
        x = np.asarray(emb)[y >= 0].astype(np.float64)
        mean0 = x.mean(axis=0)
        return cls(per_class, mean0, _sym_inverse_sqrt(x - mean0, ridge))

    def score(self, emb: np.ndarray) -> np.ndarray:
        z0 = (np.asarray(emb, dtype=np.float64) - self.mean0) @ self.whiten0
        return self.classes.score(emb) - (z0**2).sum(axis=1)


@dataclass
class Head:
    """The model's last linear layer, ``logits = z @ W.T + b`` on penultimate features ``z``."""

    w: np.ndarray  # (C, D) float64
    b: np.ndarray  # (C,)

    @classmethod
    def of(cls, model: Any, emb: np.ndarray, logits: np.ndarray) -> Head | None:
        """The head, or None unless it reproduces the model's logits from the captured features
        (a head followed by more layers, or without a plain Linear, cannot be reused)."""
        layer = getattr(model, "embedding_layer", None)
        weight = getattr(layer, "weight", None)
        if weight is None or weight.ndim != 2 or weight.shape[1] != emb.shape[1]:
            return None
        bias = getattr(layer, "bias", None)
        w = weight.detach().double().cpu().numpy()
        b = bias.detach().double().cpu().numpy() if bias is not None else np.zeros(len(w))
        head = cls(w, b)
        if len(emb) and (logits.shape[1] != len(w)):
            return None
        if len(emb):
            k = min(len(emb), 256)
            err = np.abs(head(emb[:k]) - np.asarray(logits[:k], dtype=np.float64)).max()
            if not err <= 1e-3 * (1.0 + float(np.abs(logits[:k]).max())):
                return None
        return head

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) @ self.w.T + self.b


def _energy(logits: np.ndarray) -> np.ndarray:
    """OOD score −logsumexp (Liu et al. 2020)."""
    z = np.asarray(logits, dtype=np.float64)
    m = z.max(axis=1)
    return np.asarray(-(m + np.log(np.exp(z - m[:, None]).sum(axis=1))))


def gen_score(logits: np.ndarray, gamma: float = 0.1, top_m: int = 100) -> np.ndarray:
    """GEN (Liu, Lochman & Zach, CVPR 2023, "GEN: Pushing the Limits of Softmax-Based
    Out-of-Distribution Detection"): the generalised entropy ``Σ_{top M} p^γ (1 − p)^γ`` of the
    softmax (higher = more OOD). γ = 0.1 and M = 100 are the paper's; nothing is fitted."""
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p = np.clip(p / p.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
    p = -np.sort(-p, axis=1)[:, :top_m]
    return np.asarray((p**gamma * (1 - p) ** gamma).sum(axis=1))


@dataclass
class ViM:
    """Virtual-logit matching (Wang et al., CVPR 2022, "ViM: Out-Of-Distribution with
    Virtual-logit Matching"). Features are centred at ``u = −W⁺b``; the principal subspace (the
    ``dim`` largest eigenvectors of train's feature covariance) is removed and the residual norm,
    scaled by ``α = mean max logit / mean residual norm`` on train, is a virtual logit. OOD score:
    ``α‖z^{P⊥}‖ − logsumexp(logits)``. ``dim`` follows the paper's rule by feature width D (1000 for
    D ≥ 2048, 512 for D ≥ 768, else D/2), applied to the effective rank of the features."""

    u: np.ndarray
    residual: np.ndarray  # (D, D − dim) basis of the residual space
    alpha: float
    dim: int
    rank: int = 0  # effective rank of the centred train features

    @staticmethod
    def default_dim(width: int) -> int:
        return 1000 if width >= 2048 else 512 if width >= 768 else max(1, width // 2)

    @classmethod
    def fit(cls, emb: np.ndarray, head: Head, dim: int | None = None) -> ViM:
        width = emb.shape[1]
        u = -np.linalg.pinv(head.w) @ head.b
        x = np.asarray(emb, dtype=np.float64) - u
        vals, vecs = np.linalg.eigh(x.T @ x / max(len(x), 1))  # ascending eigenvalues
        # ReLU features with dead units span fewer than D directions; the paper's rule applied to D
        # would then cut inside the null space (a residual of exactly 0 on train, α without bound,
        # a score set by rounding), so the rule is applied to the effective rank.
        rank = int(np.sum(vals > 1e-9 * max(float(vals[-1]), 1e-300)))
        dim = min(dim if dim is not None else cls.default_dim(rank), width - 1)
        if dim < 1:
            raise NotApplicable("ViM needs penultimate features with at least 2 effective dimensions")
        residual = vecs[:, : width - dim]
        norms = np.linalg.norm(x @ residual, axis=1)
        alpha = float(head(emb).max(axis=1).mean() / max(norms.mean(), 1e-12))
        return cls(u, residual, alpha, dim, rank)

    def score(self, emb: np.ndarray, logits: np.ndarray) -> np.ndarray:
        x = np.asarray(emb, dtype=np.float64) - self.u
        return np.asarray(self.alpha * np.linalg.norm(x @ self.residual, axis=1) + _energy(logits))


def react_threshold(emb: np.ndarray, percentile: float) -> float:
    """ReAct's clipping level (Sun, Guo & Li, NeurIPS 2021, "ReAct: Out-of-distribution Detection
    With Rectified Activations"): the ``percentile`` of all train penultimate activations."""
    return float(np.percentile(np.asarray(emb, dtype=np.float64).ravel(), percentile * 100))


def react_score(emb: np.ndarray, head: Head, threshold: float) -> np.ndarray:
    """Energy of the logits recomputed from activations clipped at ``threshold`` (ReAct)."""
    return _energy(head(np.minimum(np.asarray(emb, dtype=np.float64), threshold)))


def ash_score(emb: np.ndarray, head: Head, percentile: float) -> np.ndarray:
    """ASH-S (Djurisic et al., ICLR 2023, "Extremely Simple Activation Shaping for
    Out-of-Distribution Detection"): per input, zero the activations below its ``percentile``,
    scale the rest by ``exp(s1/s2)`` (sums before and after pruning), energy of the new logits.
    Per-input shaping: nothing is fitted."""
    z = np.asarray(emb, dtype=np.float64)
    n = z.shape[1]
    keep = n - int(np.round(n * percentile))
    if keep < 1:
        raise SpecError("ash_percentile leaves no activation")
    top = np.argpartition(-z, keep - 1, axis=1)[:, :keep]
    pruned = np.zeros_like(z)
    np.put_along_axis(pruned, top, np.take_along_axis(z, top, axis=1), axis=1)
    s1, s2 = z.sum(axis=1), pruned.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.exp(np.where(s2 != 0, s1 / s2, 0.0))
    return _energy(head(pruned * scale[:, None]))


def dice_head(emb: np.ndarray, head: Head, sparsity: float) -> Head:
    """DICE (Sun & Li, ECCV 2022, "DICE: Leveraging Sparsification for Out-of-Distribution
    Detection"): keep the head's weights whose contribution ``W ⊙ mean train activation`` is above
    its ``sparsity`` quantile, zero the rest; the score is the energy of the sparsified head."""
    contrib = head.w * np.asarray(emb, dtype=np.float64).mean(axis=0)[None, :]
    cut = float(np.quantile(contrib.ravel(), sparsity))
    return Head(np.where(contrib > cut, head.w, 0.0), head.b)


@dataclass
class ODIN:
    """ODIN (Liang, Li & Srikant, ICLR 2018, "Enhancing The Reliability of Out-of-distribution
    Image Detection in Neural Networks"): temperature-scaled MSP after a small input step that
    raises the predicted class's softmax, ``x − ε·sign(−∇ₓ log S_ŷ(x; T))``. The paper tuned ε on
    OOD data; here ε is chosen on held-out ID data alone, as the largest mean scaled MSP over a grid
    (the criterion of Hsu et al., CVPR 2020, "Generalized ODIN"); T = 1000 as in the paper. ε is in
    units of the input range (images) or of each feature's train sd (tabular); categorical
    features are not moved."""

    model: Any
    temperature: float
    eps: float
    unit: np.ndarray  # per-element step scale, broadcast over a batch
    grid_scores: dict[float, float] = field(default_factory=dict)

    def _grad_sign(self, x: np.ndarray) -> np.ndarray:
        import torch

        adapter = self.model
        out = []
        with torch.inference_mode(False), torch.enable_grad():
            for lo in range(0, len(x), adapter.batch_size):
                t = adapter.to_tensor(x[lo : lo + adapter.batch_size]).clone().requires_grad_(True)
                logits = adapter.module(t).double() / self.temperature
                loss = torch.nn.functional.cross_entropy(logits, logits.argmax(dim=1), reduction="sum")
                (g,) = torch.autograd.grad(loss, t)
                out.append(g.sign().reshape(len(t), -1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.unit.size))

    def _msp(self, x: np.ndarray, sign: np.ndarray, eps: float) -> np.ndarray:
        moved = (x.reshape(len(x), -1) - eps * self.unit * sign).astype(np.float32)
        z = np.asarray(self.model.logits(moved.reshape(x.shape)), dtype=np.float64) / self.temperature
        m = z.max(axis=1)
        return np.asarray(np.exp(m - (m + np.log(np.exp(z - m[:, None]).sum(axis=1)))))

    def fit_eps(self, x_id: np.ndarray, grid: list[float]) -> None:
        sign = self._grad_sign(x_id)
        self.grid_scores = {float(e): float(self._msp(x_id, sign, e).mean()) for e in grid}
        self.eps = max(self.grid_scores, key=lambda e: (self.grid_scores[e], -e))

    def score(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0)
        return -self._msp(x, self._grad_sign(x), self.eps)


@dataclass
class Fitted:
    """Detectors fitted on train (ID only) and the held-out ID scores that set thresholds."""

    detectors: list[str]
    mahalanobis: Mahalanobis | None
    knn: KNN | None
    holdout_source: str
    holdout_scores: dict[str, np.ndarray]
    notes: list[str]
    relative: RelativeMahalanobis | None = None
    head: Head | None = None
    vim: ViM | None = None
    react: float | None = None
    dice: Head | None = None
    odin: ODIN | None = None
    ash_percentile: float = 0.9
    fitted: dict[str, Any] = field(default_factory=dict)  # hyperparameters as fitted, for the evidence

    @property
    def uses_features(self) -> bool:
        return any(d is not None for d in (self.mahalanobis, self.knn, self.relative, self.head))

    def inputs(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
        """``x[idx]`` when an input-space detector (ODIN) needs it; None spares the copy."""
        return x[idx] if self.odin is not None else None

    def scores(
        self, logits: np.ndarray, emb: np.ndarray | None, x: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        base = logit_scores(logits)
        out = {d: base[d] for d in self.detectors if d in base}
        if "gen" in self.detectors:
            out["gen"] = gen_score(logits, **self.fitted.get("gen", {}))
        if emb is not None:
            if self.mahalanobis is not None:
                out["mahalanobis"] = self.mahalanobis.score(emb)
            if self.knn is not None:
                out["knn"] = self.knn.score(emb)
            if self.relative is not None:
                out["relative_mahalanobis"] = self.relative.score(emb)
            if self.head is not None:
                if self.vim is not None:
                    out["vim"] = self.vim.score(emb, logits)
                if self.react is not None:
                    out["react"] = react_score(emb, self.head, self.react)
                if "ash" in self.detectors:
                    out["ash"] = ash_score(emb, self.head, self.ash_percentile)
                if self.dice is not None:
                    out["dice"] = _energy(self.dice(emb))
        if x is not None and self.odin is not None:
            out["odin"] = self.odin.score(x)
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
    hyper: dict[str, Any] | None = None,
) -> Fitted:
    """Fit the detectors on train and score held-out ID data for thresholds.

    Held-out ID data: the ``validation`` split when the audit has one; otherwise a seeded
    ``holdout_fraction`` of train that is left out of the detector fit. Every hyperparameter that
    is fitted (ReAct's clip, DICE's mask, ViM's subspace and α, ODIN's ε) is fitted on this ID
    data only, never on an OOD set. ``hyper``: react_percentile, ash_percentile, dice_sparsity,
    vim_dim, odin_temperature, odin_eps (a list: the grid), gen_gamma, gen_top_m.
    """
    h = {**_HYPER_DEFAULTS, **(hyper or {})}
    unknown = [d for d in detectors if d not in ALL_DETECTORS]
    if unknown or not detectors:
        raise SpecError(f"detectors: unknown {unknown or '(empty list)'}; known: {list(ALL_DETECTORS)}")
    if not 0.0 < holdout_fraction < 1.0:
        raise SpecError("holdout_fraction must be between 0 and 1")
    _validate_hyper(h)
    train = ctx.dataset("train")
    notes: list[str] = []
    need_features = any(d in FEATURE_DETECTORS for d in detectors)
    train_emb = _safe_embeddings(lambda: ctx.embeddings("train")) if need_features else None
    if need_features and train_emb is None:
        skipped = ", ".join(d for d in detectors if d in FEATURE_DETECTORS)
        notes.append(f"the model has no linear head to take penultimate features from: {skipped} skipped")
    has_validation = "validation" in ctx.splits() and len(ctx.dataset("validation")) > 0
    n = len(train)
    if has_validation:
        fit_idx = np.arange(n)
        val = ctx.dataset("validation")
        hold_logits = ctx.predictions("validation").logits
        hold_emb = _safe_embeddings(lambda: ctx.embeddings("validation")) if train_emb is not None else None
        hold_x: Any = lambda: val.x  # noqa: E731
        source = f"validation split ({len(val)} rows)"
    else:
        perm = rng.permutation(n)
        n_hold = int(round(n * holdout_fraction))
        if n_hold < 1 or n - n_hold < 2:
            raise NotApplicable(f"train has {n} rows: too few to hold some out for thresholds")
        hold_idx, fit_idx = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
        hold_logits = ctx.predictions("train").logits[hold_idx]
        hold_emb = train_emb[hold_idx] if train_emb is not None else None
        hold_x = lambda: train.x[hold_idx]  # noqa: E731
        source = (
            f"seeded {holdout_fraction:.0%} of train ({n_hold} rows) left out of the detector fit; the model "
            "itself saw these rows, so thresholds may be stricter than on unseen ID data"
        )
    fitted = Fitted(list(detectors), None, None, source, {}, notes, ash_percentile=h["ash_percentile"])
    fitted.fitted["gen"] = {"gamma": h["gen_gamma"], "top_m": h["gen_top_m"]}
    if train_emb is not None:
        _fit_feature_detectors(ctx, fitted, train_emb[fit_idx], train, fit_idx, h, knn_k, knn_backend)
    if "odin" in detectors:
        fitted.odin = _fit_odin(ctx, train, hold_x(), h, rng)
        fitted.fitted["odin"] = {"temperature": fitted.odin.temperature, "eps": fitted.odin.eps,
                                 "eps_grid_mean_id_msp": fitted.odin.grid_scores}  # fmt: skip
    fitted.holdout_scores = fitted.scores(
        hold_logits, hold_emb, hold_x() if fitted.odin is not None else None
    )
    fitted.detectors = [d for d in detectors if d in fitted.holdout_scores]
    return fitted


_HYPER_DEFAULTS: dict[str, Any] = {
    "react_percentile": 0.9,  # ReAct paper: the 90th percentile of ID activations
    "ash_percentile": 0.9,  # ASH-S paper, ImageNet ResNet-50: p = 90
    "dice_sparsity": 0.9,  # DICE paper, CIFAR: p = 0.9
    "vim_dim": None,  # ViM paper's rule by feature width
    "odin_temperature": 1000.0,  # ODIN paper
    "odin_eps": [0.0, 0.0005, 0.001, 0.0014, 0.002, 0.003, 0.005, 0.01, 0.02],  # grid, chosen on ID
    "gen_gamma": 0.1,  # GEN paper
    "gen_top_m": 100,  # GEN paper
}


def _validate_hyper(h: dict[str, Any]) -> None:
    for key in ("react_percentile", "ash_percentile", "dice_sparsity"):
        if not 0.0 < float(h[key]) < 1.0:
            raise SpecError(f"{key} must be between 0 and 1")
    if h["vim_dim"] is not None and int(h["vim_dim"]) < 1:
        raise SpecError("vim_dim must be at least 1 (or null for the paper's rule)")
    if float(h["odin_temperature"]) <= 0 or not h["odin_eps"] or min(h["odin_eps"]) < 0:
        raise SpecError("odin_temperature must be > 0 and odin_eps a non-empty list of steps ≥ 0")
    if float(h["gen_gamma"]) <= 0 or int(h["gen_top_m"]) < 1:
        raise SpecError("gen_gamma must be > 0 and gen_top_m ≥ 1")


def _fit_feature_detectors(
    ctx: RunContext, fitted: Fitted, fit_emb: np.ndarray, train: Dataset, fit_idx: np.ndarray,
    h: dict[str, Any], knn_k: int, knn_backend: str,
) -> None:  # fmt: skip
    dets = fitted.detectors
    y = train.y
    labelled = y is not None and bool(np.any(y[fit_idx] >= 0))
    for d in ("mahalanobis", "relative_mahalanobis"):
        if d in dets and not labelled:
            fitted.notes.append(f"train has no labels: {d} skipped")
    if labelled and y is not None:
        if "mahalanobis" in dets:
            fitted.mahalanobis = Mahalanobis.fit(fit_emb, y[fit_idx])
        if "relative_mahalanobis" in dets:
            fitted.relative = RelativeMahalanobis.fit(fit_emb, y[fit_idx])
    if "knn" in dets:
        fitted.knn = KNN.fit(fit_emb, knn_k, knn_backend, str(getattr(ctx.model(), "device", "cpu")))
    wanted = [d for d in dets if d in HEAD_DETECTORS]
    if not wanted:
        return
    fitted.head = Head.of(ctx.model(), fit_emb, ctx.predictions("train").logits[fit_idx])
    if fitted.head is None:
        fitted.notes.append(f"the model's logits are not its last linear layer applied to the penultimate "
                            f"features: {', '.join(wanted)} skipped")  # fmt: skip
        return
    if "vim" in dets:
        fitted.vim = ViM.fit(fit_emb, fitted.head, h["vim_dim"])
        fitted.fitted["vim"] = {
            "principal_dim": fitted.vim.dim,
            "feature_rank": fitted.vim.rank,
            "alpha": fitted.vim.alpha,
        }
    if "react" in dets:
        fitted.react = react_threshold(fit_emb, h["react_percentile"])
        fitted.fitted["react"] = {"percentile": h["react_percentile"], "clip": fitted.react}
    if "dice" in dets:
        fitted.dice = dice_head(fit_emb, fitted.head, h["dice_sparsity"])
        fitted.fitted["dice"] = {"sparsity": h["dice_sparsity"]}
    if "ash" in dets:
        fitted.fitted["ash"] = {"variant": "ASH-S", "percentile": h["ash_percentile"]}


def _fit_odin(
    ctx: RunContext, train: Dataset, x_id: np.ndarray, h: dict[str, Any], rng: np.random.Generator
) -> ODIN:
    """ODIN with ε chosen on (at most 1000 rows of) held-out ID data."""
    model = ctx.model()
    flat = train.x.reshape(len(train), -1).astype(np.float64)
    if ctx.model_input.kind == "image":
        lo, hi = _value_range(ctx, train)
        unit = np.full(flat.shape[1], hi - lo)
    else:
        unit = np.nan_to_num(np.nanstd(flat, axis=0))
        cat = np.array([f in train.categorical for f in train.features]) if train.array is None else None
        if cat is not None and len(cat) == len(unit):
            unit = np.where(cat, 0.0, unit)
    odin = ODIN(model, float(h["odin_temperature"]), 0.0, unit)
    pick = _subsample(len(x_id), 1000, rng)
    odin.fit_eps(np.asarray(x_id)[pick], [float(e) for e in h["odin_eps"]])
    return odin


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
    return [float(v) for v in fpr], [float(v) for v in tpr]


def _fitted_text(values: dict[str, Any] | None) -> str:
    """Fitted hyperparameters as one short line (floats to 4 significant digits)."""
    if not values:
        return "nothing fitted"
    fmt = {k: (f"{v:.4g}" if isinstance(v, float) else
               "{" + ", ".join(f"{a:g}: {b:.6g}" for a, b in v.items()) + "}" if isinstance(v, dict) else str(v))
           for k, v in values.items()}  # fmt: skip
    return ", ".join(f"{k}={v}" for k, v in fmt.items())


def _num(x: float | None) -> float | None:
    """An evidence number at full precision (renderers round); None when missing or NaN."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# ---------------------------------------------------------------------------------------------
# AK-OOD-001
# ---------------------------------------------------------------------------------------------


@check(
    id="AK-OOD-001",
    area="ood",
    title="Out-of-distribution detection: softmax, energy, feature-space and activation-shaping detectors",
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
    detectors: list[str] = list(DEFAULT_DETECTORS),  # noqa: B006, B008
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
    react_percentile: float = 0.9,
    ash_percentile: float = 0.9,
    dice_sparsity: float = 0.9,
    vim_dim: int | None = None,
    odin_temperature: float = 1000.0,
    odin_eps: list[float] = [0.0, 0.0005, 0.001, 0.0014, 0.002, 0.003, 0.005, 0.01, 0.02],  # noqa: B006
    gen_gamma: float = 0.1,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:
    """How well the model's scores separate in-distribution test inputs from out-of-distribution ones.

    Detectors, each an OOD score (higher = more OOD; the paper of each is in the evidence and in
    docs/ood.md): maximum softmax probability, max logit, energy (−logsumexp of the logits), GEN
    (generalised entropy of the softmax), ODIN (temperature-scaled MSP after an input step; opt-in:
    it needs a gradient per input), Mahalanobis and relative Mahalanobis (class Gaussians on the
    penultimate features, the latter minus one background Gaussian), kNN (distance to the k-th
    nearest L2-normalised train embedding), ViM (virtual logit from the feature residual), and three
    that reshape the penultimate activations before the model's own last layer and take the energy:
    ReAct (clipped), ASH-S (pruned and rescaled per input), DICE (sparsified head weights). Every
    fitted hyperparameter (ReAct's clip, DICE's mask, ViM's subspace and scale, ODIN's step) comes
    from train or held-out ID data only, never from an OOD set. OOD data: the ``ood`` split when the audit has one; otherwise
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
    n_boot: bootstrap resamples for the intervals (the same resamples for every detector, so that
        AUROC differences between detectors get paired intervals).
    react_percentile: ReAct clips penultimate activations at this quantile of train's (paper: 0.9).
    ash_percentile: share of each input's activations ASH-S prunes (paper: 0.9).
    dice_sparsity: share of the head's weight contributions DICE zeroes (paper: 0.9).
    vim_dim: ViM's principal-subspace dimension; null: the paper's rule (D/2 below 768 features).
    odin_temperature: ODIN's softmax temperature (paper: 1000).
    odin_eps: ODIN's input-step grid (units of the input range, or of each feature's train sd for
        tabular data); the step with the highest mean scaled MSP on held-out ID data is used.
    gen_gamma: GEN's exponent γ (paper: 0.1; the top 100 classes are summed, as in the paper).
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
    hyper = {"react_percentile": react_percentile, "ash_percentile": ash_percentile, "dice_sparsity": dice_sparsity,
             "vim_dim": vim_dim, "odin_temperature": odin_temperature, "odin_eps": list(odin_eps),
             "gen_gamma": gen_gamma}  # fmt: skip
    fitted = fit_detectors(
        ctx, detectors, knn_k=knn_k, knn_backend=knn_backend, holdout_fraction=holdout_fraction, rng=rng,
        hyper=hyper,
    )  # fmt: skip
    features = fitted.uses_features

    idx = _subsample(len(test), max_samples, rng)
    test_emb = _safe_embeddings(lambda: ctx.embeddings("test")) if features else None
    id_scores = fitted.scores(
        test_logits[idx], test_emb[idx] if test_emb is not None else None, fitted.inputs(test.x, idx)
    )

    kind = ctx.model_input.kind
    notes = list(fitted.notes)
    if "ood" in ctx.splits():
        ood = ctx.dataset("ood")
        if len(ood) == 0:
            raise NotApplicable("the ood split is empty")
        o_idx = _subsample(len(ood), max_samples, rng)
        o_logits = ctx.predictions("ood").logits[o_idx]
        o_emb = _safe_embeddings(lambda: ctx.embeddings("ood")) if features else None
        sets = {
            "ood": fitted.scores(
                o_logits, o_emb[o_idx] if o_emb is not None else None, fitted.inputs(ood.x, o_idx)
            )
        }
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
            sets[name] = fitted.scores(logits, emb, x)
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
    other = "out" if fpr_convention == "in" else "in"
    other_key = f"fpr_{other}"
    from auditkit.toolkit import wilson

    rows: list[list[Any]] = []
    metrics: list[Metric] = []
    findings: list[Finding] = []
    results: dict[str, dict[str, dict[str, Any]]] = {}
    selection: list[list[Any]] = []
    for set_name, ood_scores in sets.items():
        results[set_name] = {}
        n_in, n_out = len(idx), len(next(iter(ood_scores.values())))
        # one set of resamples per OOD set, shared by every detector: paired AUROC differences
        shared = (_boot_weights(n_in, n_boot, rng), _boot_weights(n_out, n_boot, rng)) if n_boot > 0 else None
        set_boots: dict[str, dict[str, np.ndarray]] = {}
        for det in fitted.detectors:
            s_in, s_out = id_scores[det], ood_scores[det]
            set_boots[det] = {}
            m = detection_metrics_ci(s_in, s_out, n_boot=n_boot, rng=rng, tpr=tpr, weights=shared,
                                     boots=set_boots[det])  # fmt: skip
            accepted = int(np.sum(s_out <= thresholds[det]))
            results[set_name][det] = {**{k: v for k, v in m.items()}, "accepted": accepted}
            au, au_ci = m["auroc"]
            rows.append([
                set_name, det, _num(au), _num(au_ci[0]) if au_ci else None, _num(au_ci[1]) if au_ci else None,
                _num(m["aupr_in"][0]), _num(m["aupr_out"][0]), _num(m["fpr_in"][0]), _num(m["fpr_out"][0]),
                _num(accepted / len(s_out)), len(s_in), len(s_out),
            ])  # fmt: skip
        if results[set_name]:
            best_det, ranked = selection_summary(results[set_name], set_boots)
            selection += [[set_name, *r] for r in ranked]
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
                Metric(f"fpr_at_{round(tpr * 100)}tpr_{other}:{set_name}", g[other_key][0], ci=g[other_key][1],
                       n=n_in + n_out, direction="lower",
                       details={**details, "convention": other, "positive": "id" if other == "in" else "ood"},
                       description=("the other FPR convention, for comparison with papers: "
                                    + (f"share of OOD accepted when {tpr:.0%} of ID is kept (ID positive)"
                                       if other == "in" else
                                       f"share of ID flagged when {tpr:.0%} of OOD is caught (OOD positive)"))),
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
        id_rows.append([det, _num(thresholds[det]), _num(kept / len(idx)), len(idx)])
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
        "fpr_both": ("the detection table lists FPR@TPR under both conventions; the gate metric uses "
                     f"fpr_convention={fpr_convention}, the other is metric fpr_at_{round(tpr * 100)}tpr_{other}"),
        "thresholds": f"set on held-out ID data only: {fitted.holdout_source}",
        "intervals": f"95% percentile bootstrap, {n_boot} resamples, ID and OOD resampled separately",
    }  # fmt: skip
    evidence: dict[str, Any] = {
        "convention": {"columns": ["quantity", "convention"], "rows": [[k, v] for k, v in convention.items()]},
        "ood_source": source,
        "gated_sets": sorted(gated_sets) if gate_detector in fitted.detectors else [],
        "detection": {
            "columns": ["ood set", "detector", "auroc", "auroc lo", "auroc hi", "aupr_in", "aupr_out",
                        f"fpr@{round(tpr * 100)}tpr, ID positive (ODIN/Energy papers: OOD accepted)",
                        f"fpr@{round(tpr * 100)}tpr, OOD positive (OpenOOD, pytorch-ood: ID flagged)",
                        "ood accepted at threshold", "n id", "n ood"],
            "rows": rows,
        },
        "detector selection": {
            "columns": ["ood set", "detector", "auroc", "auroc below best", "difference lo", "difference hi",
                        "worse than best (interval excludes 0)", f"fpr@{round(tpr * 100)}tpr ID positive",
                        f"fpr@{round(tpr * 100)}tpr OOD positive"],
            "rows": selection,
            "note": ("reporting only, chosen on the test OOD sets: the gate uses the declared detector; "
                     f"differences are paired (the same {n_boot} bootstrap resamples for every detector)"),
        },
        "detectors": {"columns": ["detector", "paper", "fitted on ID data"],
                      "rows": [[d, PAPERS[d], _fitted_text(fitted.fitted.get(d))] for d in fitted.detectors]},
        "thresholds": {"columns": ["detector", "threshold", "test ID kept", "n"], "rows": id_rows},
        "plots": [
            {"type": "bar", "title": "AUROC by detector and OOD set", "x_label": "OOD set", "y_label": "AUROC",
             "categories": list(sets), "series": [
                 {"name": d, "values": [_num(results[s][d]["auroc"][0]) for s in sets]} for d in fitted.detectors]},
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
    return [float(v) for v in x[keep]], [float(v) for v in y[keep]]


@check(
    id="AK-OOD-002",
    area="ood",
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
    detectors: detectors compared for selective prediction (any of AK-OOD-001's, with their paper
        default hyperparameters).
    coverage: share of inputs kept when reporting selective risk.
    max_selective_risk: largest acceptable error rate at ``coverage`` on shifted data; null: reported only.
    knn_k: which nearest neighbour's distance is the kNN score.
    knn_backend: exact kNN search with "torch" (blocked matrix products on the model's device) or "faiss" (IndexFlatIP, CPU).
    holdout_fraction: share of train held out of the detector fit when there is no validation split.
    max_samples: at most this many labelled test rows are used (seeded subsample, reported).
    n_boot: bootstrap resamples for the intervals.
    min_rows: fewest labelled test rows with a finite output to judge on; fewer make the check not applicable.
    """
    from auditkit.toolkit import wilson

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
        notes.append(
            f"left out {int(np.sum((y_test >= 0) & ~finite))} labelled test rows whose model output "
            "is not finite (e.g. missing values the model does not handle)"
        )
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
    # name -> (embeddings of the shifted inputs (lazy), logits, labels, inputs (lazy)): the data selective
    # risk is reported on.
    gated: dict[str, tuple[Any, np.ndarray, np.ndarray, Any]] = {}
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
        rows.append(["production", None, _num(acc), _num(clean_acc - acc), _num(ece), len(p_idx)])
        gated["production"] = (
            lambda: ctx.embeddings("production")[p_idx],
            p_logits,
            yp,
            lambda: prod.x[p_idx],
        )
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
                rows.append([name, sev, _num(acc), _num(drop), _num(ece), len(idx)])
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
                gated[key] = (lambda xs=xs: model.embeddings(xs), logits, y0, lambda xs=xs: xs)
            xs_axis = [0, *sorted(severities)]
            curves_acc.append({"name": name, "x": xs_axis, "y": [_num(a) for a in accs],
                               "lo": [_num(v) for v in los], "hi": [_num(v) for v in his]})  # fmt: skip
            curves_ece.append({"name": name, "x": xs_axis, "y": [_num(e) for e in eces]})
        source = f"synthetic {kind} shifts of the test inputs at severities {sorted(severities)} (no labelled production split)"

    # Selective prediction: choose the detector on held-out data, report on test and shifted data.
    fitted = fit_detectors(
        ctx, detectors, knn_k=knn_k, knn_backend=knn_backend, holdout_fraction=holdout_fraction, rng=rng
    )
    features = fitted.uses_features
    test_emb = _safe_embeddings(lambda: ctx.embeddings("test")) if features else None
    scores_test = fitted.scores(test_logits[idx], test_emb[idx] if test_emb is not None else None,
                                fitted.inputs(test.x, idx))  # fmt: skip
    err_test = 1.0 - clean["correct"]
    val = ctx.dataset("validation") if "validation" in ctx.splits() else None
    if val is not None and val.y is not None and np.any(val.y >= 0):
        v_lab = np.flatnonzero(val.y >= 0)
        v_logits = ctx.predictions("validation").logits[v_lab]
        v_emb = _safe_embeddings(lambda: ctx.embeddings("validation")) if features else None
        sel_scores = fitted.scores(
            v_logits, v_emb[v_lab] if v_emb is not None else None, fitted.inputs(val.x, v_lab)
        )
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
    for get_emb, logits, y, get_x in gated.values():
        emb = _safe_embeddings(get_emb) if features and best in FEATURE_DETECTORS else None
        shifted_scores.append(fitted.scores(logits, emb, get_x() if best in INPUT_DETECTORS else None)[best])
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
        sel_rows.append(
            [label, best, _num(float(e.mean())), _num(errs / kept), _num(float(rc["aurc"][0])), len(s)]
        )
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
            "rows": [[d, _num(a)] for d, a in aurcs.items()],
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
