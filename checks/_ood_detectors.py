"""AK-OOD-001/002 helpers: the OOD detectors, fitted on train and held-out ID data only.

Score convention: every detector returns an *OOD score*, higher = more likely out-of-distribution.
Heavy libraries (torch, faiss) are imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
from auditkit.checks._ood_data import subsample, value_range

from auditkit import NotApplicable, SpecError

if TYPE_CHECKING:
    from auditkit import RunContext
    from auditkit.toolkit import Dataset

# The detectors, as a type: the spec's ``detectors`` and ``gate_detector`` are refused before
# anything runs when they name another.
Detector = Literal["msp", "max_logit", "energy", "mahalanobis", "knn", "odin", "gen", "vim", "react", "ash",
                   "dice", "relative_mahalanobis"]  # fmt: skip
ALL_DETECTORS: tuple[str, ...] = get_args(Detector)
LOGIT_DETECTORS = ("msp", "max_logit", "energy", "gen")
# need penultimate features; HEAD_DETECTORS also reuse the model's last linear layer on them
FEATURE_DETECTORS = ("mahalanobis", "knn", "vim", "react", "ash", "dice", "relative_mahalanobis")
HEAD_DETECTORS = ("vim", "react", "ash", "dice")
INPUT_DETECTORS = ("odin",)  # need the inputs and gradients through the model
DEFAULT_DETECTORS: tuple[Detector, ...] = ("msp", "max_logit", "energy", "mahalanobis", "knn", "gen", "vim", "react", "ash", "dice",
                     "relative_mahalanobis")  # fmt: skip
ODIN_EPS_GRID = (0.0, 0.0005, 0.001, 0.0014, 0.002, 0.003, 0.005, 0.01, 0.02)  # ODIN's ε grid, chosen on ID
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


def safe_embeddings(fn: Any) -> np.ndarray | None:
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
    h = {**HYPER_DEFAULTS, **(hyper or {})}
    train = ctx.dataset("train")
    notes: list[str] = []
    need_features = any(d in FEATURE_DETECTORS for d in detectors)
    train_emb = safe_embeddings(lambda: ctx.embeddings("train")) if need_features else None
    if need_features and train_emb is None:
        skipped = ", ".join(d for d in detectors if d in FEATURE_DETECTORS)
        notes.append(f"the model has no linear head to take penultimate features from: {skipped} skipped")
    has_validation = "validation" in ctx.splits() and len(ctx.dataset("validation")) > 0
    n = len(train)
    if has_validation:
        fit_idx = np.arange(n)
        val = ctx.dataset("validation")
        hold_logits = ctx.predictions("validation").logits
        hold_emb = safe_embeddings(lambda: ctx.embeddings("validation")) if train_emb is not None else None
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


HYPER_DEFAULTS: dict[str, Any] = {
    "react_percentile": 0.9,  # ReAct paper: the 90th percentile of ID activations
    "ash_percentile": 0.9,  # ASH-S paper, ImageNet ResNet-50: p = 90
    "dice_sparsity": 0.9,  # DICE paper, CIFAR: p = 0.9
    "vim_dim": None,  # ViM paper's rule by feature width
    "odin_temperature": 1000.0,  # ODIN paper
    "odin_eps": list(ODIN_EPS_GRID),  # grid, chosen on ID
    "gen_gamma": 0.1,  # GEN paper
    "gen_top_m": 100,  # GEN paper
}


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
        lo, hi = value_range(ctx, train)
        unit = np.full(flat.shape[1], hi - lo)
    else:
        unit = np.nan_to_num(np.nanstd(flat, axis=0))
        cat = np.array([f in train.categorical for f in train.features]) if train.array is None else None
        if cat is not None and len(cat) == len(unit):
            unit = np.where(cat, 0.0, unit)
    odin = ODIN(model, float(h["odin_temperature"]), 0.0, unit)
    pick = subsample(len(x_id), 1000, rng)
    odin.fit_eps(np.asarray(x_id)[pick], [float(e) for e in h["odin_eps"]])
    return odin
