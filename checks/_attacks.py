"""Attacks and evidence tables behind the adversarial checks (AK-ADV-001/002) and AK-DEPLOY parity.

Private helpers of the built-in checks; see checks/adversarial.py for the method."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import Finding, Metric, NotApplicable, Outcome, SpecError, require_rows

if TYPE_CHECKING:
    from collections.abc import Iterator

    from auditkit import RunContext
    from auditkit.toolkit import ModelAdapter

IMAGE_EPSILONS = [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255]
TABULAR_EPSILONS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]
IMAGE_GATE = 2 / 255
TABULAR_GATE = 0.05
NORMS = {"inf": math.inf, "l2": 2}

# AK-ADV-001's defaults that AK-DEPLOY-001 reuses to repeat its attack on each artifact (a test
# keeps them equal to white_box_evasion's signature).
WHITE_BOX_DEFAULTS: dict[str, Any] = {
    "split": "test", "epsilons": None, "gate_epsilon": None, "gate_norm": "inf", "norms": ["inf", "l2"],
    "steps": 20, "restarts": 3, "losses": ["ce", "margin"], "step_ratio": 2.5, "l2_scale": 0.25,
    "max_samples": 1000, "perturb_binary": False, "batch_size": 2048,
}  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The attack space: normalised inputs, valid box, mask
# ------------------------------------------------------------------------------------------------
@dataclass
class AttackSpace:
    """Inputs to attack, in normalised units, with what may move."""

    kind: str
    z: np.ndarray  # (n, *shape) in [0, 1]
    y: np.ndarray  # true labels
    rows: np.ndarray  # row positions in the split
    offset: np.ndarray  # shape (*shape,)
    scale: np.ndarray  # shape (*shape,), > 0
    mask: np.ndarray  # shape (*shape,), 1 = may be perturbed
    n_outside: int = 0  # rows with a value outside the valid box (projected onto it)
    frozen: list[str] = field(default_factory=list)  # features not perturbed, with why
    n_total: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.z.shape[1:])

    @property
    def n_mutable(self) -> int:
        return int(self.mask.sum())

    def to_x(self, z: np.ndarray) -> np.ndarray:
        return (self.offset + z * self.scale).astype(np.float32)


def image_range(ctx: RunContext, x: np.ndarray) -> tuple[float, float]:
    """Declared ``model.input.range``, else [0, 1] or [0, 255] when the data fit, else data min/max."""
    declared = getattr(ctx.model_input, "range", None)
    if declared is not None:
        return float(declared[0]), float(declared[1])
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    if lo >= 0 and hi <= 255:
        return 0.0, 255.0
    return lo, (hi if hi > lo else lo + 1.0)  # a constant image set still gets a non-empty box


def tabular_box(
    ctx: RunContext, ds: Any, x: np.ndarray, perturb_binary: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The box of tabular inputs (declared ``model.input.range``, else train's min/max per feature)
    as offset and scale, and the mask of features an attack may move: immutable, categorical,
    constant and (unless ``perturb_binary``) binary/one-hot features are frozen, each listed with
    the reason."""
    frozen: list[str] = []
    ref = ctx.dataset("train") if "train" in ctx.splits() else ds
    xr = ref.x.astype(np.float64)
    declared = getattr(ctx.model_input, "range", None)
    if declared is not None:
        lo_f = np.full(x.shape[1], float(declared[0]))
        hi_f = np.full(x.shape[1], float(declared[1]))
    else:
        lo_f, hi_f = np.nanmin(xr, axis=0), np.nanmax(xr, axis=0)
    features = list(ds.features)
    immutable = list(getattr(ctx.model_input, "immutable", []) or [])
    unknown = [f for f in immutable if f not in features]
    if unknown:
        raise SpecError(f"model.input.immutable: {unknown} are not features (known: {features[:10]}...)")
    mask = np.ones(x.shape[1], dtype=np.float32)
    for j, f in enumerate(features):
        why = None
        if f in immutable:
            why = "immutable"
        elif f in ds.categorical:
            why = "categorical"
        elif not hi_f[j] > lo_f[j]:
            why = "constant in train"
        elif not perturb_binary and len(np.unique(xr[:, j][np.isfinite(xr[:, j])])) <= 2:
            why = "binary / one-hot"
        if why:
            mask[j] = 0.0
            frozen.append(f"{f} ({why})")
    offset = lo_f.astype(np.float32)
    scale = np.where(hi_f > lo_f, hi_f - lo_f, 1.0).astype(np.float32)
    return offset, scale, mask, frozen


def build_space(
    ctx: RunContext,
    split: str,
    *,
    max_samples: int | None,
    perturb_binary: bool = False,
    rng: np.random.Generator,
) -> AttackSpace:
    """Labelled rows of ``split`` (a seeded subsample of at most ``max_samples``) in normalised units."""
    ds = ctx.dataset(split)
    x, y = ds.x, np.asarray(ds.y)
    n_total = len(x)
    keep = np.flatnonzero((y >= 0) & np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(keep) == 0:
        raise NotApplicable(f"split {split!r} has no labelled rows with finite inputs")
    if max_samples is not None and len(keep) > max_samples:
        keep = np.sort(rng.choice(keep, size=max_samples, replace=False))
    x, y = x[keep].astype(np.float32), y[keep].astype(np.int64)
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
    outside = ((z < -1e-6) | (z > 1 + 1e-6)).reshape(len(z), -1)
    # Only mutable coordinates are clipped; a frozen coordinate outside the box keeps its value.
    flat_mask = np.broadcast_to(mask, z.shape[1:]).reshape(-1) > 0
    n_outside = int(outside[:, flat_mask].any(axis=1).sum())
    z = np.where(mask > 0, np.clip(z, 0.0, 1.0), z).astype(np.float32)
    return AttackSpace(kind, z, y, keep, offset, scale, mask, n_outside, frozen, n_total)


# ------------------------------------------------------------------------------------------------
# torch / ART plumbing (imported lazily)
# ------------------------------------------------------------------------------------------------
def scaled_module(adapter: ModelAdapter, space: AttackSpace) -> Any:
    """The model as a function of normalised inputs; records its last logits (for best-iterate PGD).

    The wrapped model is held in eval mode with frozen parameters for the whole attack
    (``frozen_params``), so it is kept out of the module registry: ART's ``loss_gradient`` calls
    ``train(False)`` and ``zero_grad()`` on every step, and walking the submodules of a small
    tabular model each time costs as much as its forward pass. Recurrent models stay registered,
    because ART must see them to put cuDNN RNNs in train mode for backward.
    """
    import torch
    from torch import nn

    inner = adapter.module
    visible = any(isinstance(m, nn.RNNBase) for m in inner.modules())

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if visible:
                self.inner = inner
            else:
                self.__dict__["inner"] = inner  # not a submodule: see above
            self.register_buffer("offset", torch.from_numpy(space.offset).to(adapter.device))
            self.register_buffer("scale", torch.from_numpy(space.scale).to(adapter.device))
            self.in_shape = tuple(adapter.input_shape) if adapter.input_shape is not None else None
            self.last: torch.Tensor | None = None

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            x = torch.addcmul(self.offset, z.float(), self.scale)  # type: ignore[arg-type]
            if self.in_shape is not None and tuple(x.shape[1:]) != self.in_shape:
                x = x.reshape(len(x), *self.in_shape)
            out = self.inner(x).float()
            # Plain attribute write: nn.Module.__setattr__ scans its registries on every PGD step.
            self.__dict__["last"] = out.detach()
            return out

    return Scaled().eval()


def margin_loss() -> Any:
    """max_{j≠y} logit_j − logit_y summed over the batch: works for 2 classes (unlike DLR)."""
    import torch
    from torch import nn

    class Margin(nn.Module):
        def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            idx = target.argmax(1) if target.ndim == 2 else target.long()
            true = logits.gather(1, idx[:, None]).squeeze(1)
            others = logits.masked_fill(nn.functional.one_hot(idx, logits.shape[1]).bool(), float("-inf"))
            return (others.amax(1) - true).sum()

    return Margin()


@contextmanager
def frozen_params(module: Any) -> Iterator[None]:
    """No parameter gradients during attacks (backward then computes only the input gradient)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
        module.train(was_training)


def art_classifier(model: Any, space: AttackSpace, n_classes: int, loss: str, device: Any) -> Any:
    import torch
    from art.estimators.classification import PyTorchClassifier

    fn = torch.nn.CrossEntropyLoss(reduction="sum") if loss == "ce" else margin_loss()
    return PyTorchClassifier(
        model=model, loss=fn, input_shape=space.shape, nb_classes=n_classes, clip_values=(0.0, 1.0),
        preprocessing=None,  # ART's default (0, 1) standardisation is an identity op per call
        device_type="gpu" if getattr(device, "type", "cpu") == "cuda" else "cpu",
    )  # fmt: skip


_BEST_PGD: Any = None


def best_pgd_class() -> Any:
    """ART's PyTorch PGD, returning per sample the first iterate that fools the model (else the last)."""
    global _BEST_PGD
    if _BEST_PGD is not None:
        return _BEST_PGD
    import torch
    from art.attacks.evasion import ProjectedGradientDescentPyTorch

    class BestIteratePGD(ProjectedGradientDescentPyTorch):  # type: ignore[misc]
        scaled: Any = None  # the Scaled module whose ``last`` holds the logits of the evaluated point

        def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
            """ART's generate without its per-sample DataLoader (slow on large batches) and without the
            success-rate logging pass; restarts are run by the caller (``num_random_init`` ≤ 1)."""
            if self.num_random_init > 1:
                raise ValueError("run restarts as separate calls (num_random_init ≤ 1)")
            mask = self._get_mask(x, **kwargs)
            self._check_compatibility_input_and_eps(x=x)
            self._random_eps()
            targets = self._set_targets(x, y)
            adv = np.array(x, dtype=np.float32, copy=True)
            xt = torch.from_numpy(adv.copy())
            tt = torch.from_numpy(np.asarray(targets, dtype=np.float32))
            mt = torch.from_numpy(np.asarray(mask, dtype=np.float32)) if mask is not None else None
            for b, s in enumerate(range(0, len(adv), self.batch_size)):
                self._batch_id = b
                e = s + self.batch_size
                mb = mt[s:e] if (mt is not None and mt.ndim == adv.ndim) else mt
                adv[s:e] = self._generate_batch(xt[s:e], tt[s:e], mb, self.eps, self.eps_step)
            return adv

        def _compute_pytorch(self, x, x_init, y, mask, eps, eps_step, random_init, momentum):  # type: ignore[no-untyped-def]
            """One step with ART's loss gradient and the same update as ART's (step, clip to the box,
            project onto the ball) in a few fused tensor ops: ART's version spends about as long in
            small tensor ops as a small tabular model spends in forward + backward. For L∞, clipping
            to [0, 1] and then to [x₀ − ε, x₀ + ε] is one clamp to their intersection (``bounds``)."""
            if (
                random_init
                or self.decay is not None
                or not np.isscalar(eps)
                or self.norm not in (np.inf, "inf", 2)
            ):
                return super()._compute_pytorch(x, x_init, y, mask, eps, eps_step, random_init, momentum)
            grad = self._loss_gradient(x, y)
            with torch.no_grad():
                if mask is not None:
                    grad = grad * mask
                if self.norm != 2:
                    lo, hi = self.bounds
                    return torch.add(x, grad.sign_(), alpha=float(eps_step)).clamp_(lo, hi)
                norm = grad.reshape(len(grad), -1).norm(dim=1).clamp_min(1e-12)
                step = grad / norm.reshape((-1,) + (1,) * (grad.ndim - 1))
                adv = (x + float(eps_step) * step).clamp_(0.0, 1.0)
                delta = adv - x_init
                dn = delta.reshape(len(delta), -1).norm(dim=1)
                factor = torch.clamp(float(eps) / dn.clamp_min(1e-12), max=1.0)  # type: ignore[arg-type]
                return x_init + delta * factor.reshape((-1,) + (1,) * (delta.ndim - 1))

        def _loss_gradient(self, x: Any, y: Any) -> Any:
            """ART's ``PyTorchClassifier.loss_gradient`` with ``preprocessing=None``, without its per-call
            bookkeeping: the same forward, loss (on the index labels ART reduces one-hot targets to) and
            input gradient, so the same bits. ART's version also sets the train mode, zeroes parameter
            gradients, reduces the labels and wraps the model's output in a list on every step — on a
            small tabular model as long as the forward pass itself. Recurrent models go through ART
            (it switches cuDNN RNNs to train mode for backward), as does a classifier with preprocessing."""
            if self.estimator.is_rnn or self.estimator.preprocessing_operations:
                return self.estimator.loss_gradient(x=x, y=y)
            xg = x.clone().detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.estimator._loss(self.scaled(xg), self._labels), xg)
            return grad

        def _generate_batch(self, x, targets, mask, eps, eps_step):  # type: ignore[no-untyped-def]
            dev = self.estimator.device
            inputs, targets = x.to(dev), targets.to(dev)
            y_idx = targets.argmax(1) if targets.ndim == 2 else targets.long()
            self._labels = y_idx  # the labels ART's loss_gradient would reduce ``targets`` to
            mask = mask.to(dev) if mask is not None else None
            if np.isscalar(eps):
                e = float(eps)  # type: ignore[arg-type]
                # min/max with x₀: an immutable value outside the box must not make lo > hi.
                self.bounds = (torch.minimum((inputs - e).clamp_(min=0.0), inputs),
                               torch.maximum((inputs + e).clamp_(max=1.0), inputs))  # fmt: skip
            # Immutable coordinates may lie outside [0, 1] (a test value beyond the train range is
            # kept as it is); ART's clip to the box would move them, so they are put back each step.
            frozen = (mask == 0) if mask is not None else None
            adv = inputs.clone()
            best = inputs.clone()
            alive = torch.ones(len(inputs), dtype=torch.bool, device=dev)  # not fooled yet
            momentum = torch.zeros(inputs.shape, device=dev)
            random_init = self.num_random_init > 0
            for i in range(self.max_iter):
                self._i_max_iter = i
                prev = adv
                adv = self._compute_pytorch(
                    adv, inputs, targets, mask, eps, eps_step, random_init and i == 0, momentum
                )
                if frozen is not None:
                    adv = torch.where(frozen, inputs, adv)
                # The loss gradient was taken at ``prev`` (unless it was the random start): its logits are free.
                last = self.scaled.last
                if (i > 0 or not random_init) and last is not None and len(last) == len(prev):
                    new = (last.argmax(1) != y_idx).logical_and_(alive)
                    if bool(new.any()):  # most steps fool nobody new: skip the copy
                        best[new] = prev[new]
                        alive.logical_xor_(new)
            # Not fooled on the way: the last iterate (which may fool at the end).
            best = torch.where(alive.reshape((-1,) + (1,) * (best.ndim - 1)), adv, best)
            return best.cpu().detach().numpy()

    _BEST_PGD = BestIteratePGD
    return _BEST_PGD


def predict_z(model: Any, z: np.ndarray, device: Any, batch_size: int) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(z), batch_size):
            out.append(model(torch.from_numpy(z[s : s + batch_size]).to(device)).argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# White-box evaluation
# ------------------------------------------------------------------------------------------------
@dataclass
class WhiteBox:
    """Per-sample correctness after each attack: ``correct[norm][attack]`` is (n_eps, n) bool."""

    space: AttackSpace
    eps: dict[str, list[float]]  # per norm, the radii in normalised units (eps grid order)
    grid: list[float]  # the declared (L∞) grid
    clean: np.ndarray
    correct: dict[str, dict[str, np.ndarray]]
    seconds: float = 0.0
    unbounded: np.ndarray | None = None

    def worst(self, norm: str) -> np.ndarray:
        """Correct under every attack at this radius and every smaller one (a δ that works at ε works above)."""
        both = np.logical_and.reduce([c for c in self.correct[norm].values()])
        return np.logical_and.accumulate(both, axis=0)


def l2_radii(grid: Sequence[float], space: AttackSpace, l2_scale: float) -> list[float]:
    return [float(e) * l2_scale * math.sqrt(max(space.n_mutable, 1)) for e in grid]


def run_pgd(
    model: Any, clfs: dict[str, Any], space: AttackSpace, z: np.ndarray, y: np.ndarray, *, norm: float, eps: float,
    steps: int, restarts: int, losses: Sequence[str], step_ratio: float, batch_size: int, device: Any,
) -> np.ndarray:  # fmt: skip
    """PGD with ``restarts`` runs, best per sample: returns a correct-after-attack mask for ``z``."""
    cls = best_pgd_class()
    correct = np.ones(len(z), dtype=bool)
    mask = space.mask if space.n_mutable < space.mask.size else None
    for r in range(max(1, restarts)):
        todo = np.flatnonzero(correct)
        if len(todo) == 0:
            break
        loss = losses[r % len(losses)]
        attack = cls(
            clfs[loss], norm=norm, eps=eps, eps_step=step_ratio * eps / steps, max_iter=steps,
            num_random_init=1 if r >= len(losses) else 0, batch_size=batch_size, verbose=False,
        )  # fmt: skip
        attack.scaled = model
        kwargs = {"mask": mask} if mask is not None else {}
        adv = attack.generate(z[todo], y[todo], **kwargs)
        correct[todo] = predict_z(model, adv, device, batch_size) == y[todo]
    return correct


# Rows per white-box task: a fixed size (never from the worker count), so the shards and their seeds
# are the same whatever ran them.
WB_ROWS = 512

Mapper = Callable[[Callable[[Any, Any, int], Any], Sequence[Any], Any], list[Any]]


def inline_map(fn: Callable[[Any, Any, int], Any], items: Sequence[Any], shared: Any) -> list[Any]:
    """Every task here, in order (white-box runs outside a check context, e.g. AK-DEPLOY-001's)."""
    return [fn(shared, item, 0) for item in items]


def shard_seed(seed: int, index: int) -> int:
    """Shard ``index``'s seed from the white-box seed (the mapper's own seed is not used: any
    mapper, a check's ``ctx.map`` or ``inline_map``, gives the same numbers)."""
    return int(np.random.SeedSequence([int(seed) % 2**63, index]).generate_state(1)[0])


def white_box_task(shared: tuple[Any, AttackSpace, dict[str, Any]], item: tuple[Any, ...], _seed: int) -> Any:
    """One white-box shard (a compute task): rows ``lo:hi`` of the clean-correct rows, and either

    - ``("radius", norm, [(i, eps)], lo, hi, members, seed)``: FGSM and/or PGD at one radius;
    - ``("chain", norm, [(i, eps), ...], lo, hi, members, seed)``: the ensemble members over every
      radius in order (each attacks only the rows it has not broken at the smaller radius; FAB-T,
      minimum-norm, runs once for all radii);
    - ``("unbounded", "inf", [], lo, hi, (), seed)``: PGD over the whole valid range (ε = 1).

    Returns, per member, correct-after-attack of shape (radii, rows) (unbounded: (rows,))."""
    import torch
    from art.attacks.evasion import FastGradientMethod

    adapter, space, cfg = shared
    kind, name, radii, lo, hi, members, seed = item
    np.random.seed(seed % 2**32)  # ART draws random starts from numpy's global generator
    torch.manual_seed(seed)
    rows = cfg["todo"][lo:hi]
    z, y = space.z[rows], space.y[rows]
    bs, device, losses = cfg["batch_size"], adapter.device, cfg["losses"]
    model = scaled_module(adapter, space)
    mask = space.mask if space.n_mutable < space.mask.size else None
    with frozen_params(adapter.module):
        clfs = {
            loss: art_classifier(model, space, adapter.n_classes, loss, device)
            for loss in set(losses) | {"ce"}
        }
        if kind == "unbounded":
            return run_pgd(
                model, clfs, space, z, y, norm=math.inf, eps=1.0, steps=cfg["unbounded_steps"], restarts=len(losses),
                losses=losses, step_ratio=2.5, batch_size=bs, device=device,
            )  # fmt: skip
        norm = NORMS[name]
        res = {a: np.zeros((len(radii), len(rows)), dtype=bool) for a in members}
        fab = None
        for k, (i, eps) in enumerate(radii):
            if "fgsm" in res:
                fgm = FastGradientMethod(clfs["ce"], norm=norm, eps=eps, eps_step=eps, batch_size=bs)
                adv = fgm.generate(z, y, **({"mask": mask} if mask is not None else {}))
                if mask is not None:  # ART clips to the box: put immutable values outside it back
                    adv = np.where(mask > 0, adv, z).astype(np.float32)
                res["fgsm"][k] = predict_z(model, adv, device, bs) == y
            if "pgd" in res:
                res["pgd"][k] = run_pgd(
                    model, clfs, space, z, y, norm=norm, eps=eps, steps=cfg["steps"], restarts=cfg["restarts"],
                    losses=losses, step_ratio=cfg["step_ratio"], batch_size=bs, device=device,
                )  # fmt: skip
            if "fab-t" in res:
                if fab is None:  # minimum-norm: one run answers every radius
                    fab = fab_distances(model, space, z, y, steps=cfg["apgd_steps"], n_targets=cfg["apgd_targets"],
                                        batch_size=bs, device=device)  # fmt: skip
                res["fab-t"][k] = ~(fab <= eps + 1e-6)
            for a in (m for m in members if m not in ("fgsm", "pgd", "fab-t")):
                # A perturbation that fools at a smaller radius lies in this ball too: ensemble members
                # attack only the rows they have not broken yet (FGSM and PGD run on all rows, so that
                # AK-ADV-002 can still see a PGD curve that rises with ε).
                alive = res[a][k - 1] if k > 0 else np.ones(len(rows), dtype=bool)
                got = np.zeros(len(rows), dtype=bool)
                if alive.any():
                    got[alive] = ensemble_attack(
                        model, space, z[alive], y[alive], attack=a, norm=name, eps=eps, steps=cfg["apgd_steps"],
                        n_targets=cfg["apgd_targets"], queries=cfg["square_queries"], batch_size=bs, device=device,
                        seed=seed + i,
                    )  # fmt: skip
                res[a][k] = got
    return res


def white_box(
    adapter: ModelAdapter, space: AttackSpace, *, grid: Sequence[float], norms: Sequence[str], steps: int,
    restarts: int, losses: Sequence[str], step_ratio: float, l2_scale: float, batch_size: int, seed: int,
    unbounded_steps: int = 0, attacks: Sequence[str] = ("fgsm", "pgd"), apgd_steps: int = 100,
    apgd_targets: int = 9, square_queries: int = 5000, mapper: Mapper | None = None,
) -> WhiteBox:  # fmt: skip
    """The attacks at every radius of the grid, for each norm, on the clean-correct samples (Square
    is L∞ only: it is left out of the L2 evaluation).

    The work is a list of shards (``white_box_task``): blocks of ``WB_ROWS`` clean-correct rows ×
    (norm, radius) for FGSM/PGD, × norm for the ensemble members (which chain over the radii), and
    row blocks of the unbounded PGD. Shard ``j`` is seeded by ``shard_seed(seed, j)``; ``mapper``
    (a check's ``ctx.map``) runs them, by default here one after another, with the same numbers.
    PGD's restarts stay inside a shard: later restarts attack only the rows the earlier ones left.
    """
    import time

    t0 = time.perf_counter()
    model = scaled_module(adapter, space)
    clean = predict_z(model, space.z, adapter.device, batch_size) == space.y
    todo = np.flatnonzero(clean)
    blocks = [(lo, min(lo + WB_ROWS, len(todo))) for lo in range(0, len(todo), WB_ROWS)]
    radii: dict[str, list[float]] = {}
    plan: list[tuple[Any, ...]] = []
    for name in norms:
        radii[name] = list(map(float, grid)) if name == "inf" else l2_radii(grid, space, l2_scale)
        members = [a for a in attacks if not (a in LINF_ONLY and name != "inf")]
        positive = [(i, e) for i, e in enumerate(radii[name]) if e > 0]
        fast = tuple(a for a in members if a in ("fgsm", "pgd"))
        chained = tuple(a for a in members if a not in ("fgsm", "pgd"))
        for lo, hi in blocks:
            if fast:
                plan += [("radius", name, [r], lo, hi, fast) for r in positive]
            if chained and positive:
                plan.append(("chain", name, positive, lo, hi, chained))
    if unbounded_steps > 0:
        plan += [("unbounded", "inf", [], lo, hi, ()) for lo, hi in blocks]
    items = [(*p, shard_seed(seed, j)) for j, p in enumerate(plan)]
    cfg = {
        "todo": todo, "steps": steps, "restarts": restarts, "losses": list(losses), "step_ratio": step_ratio,
        "batch_size": batch_size, "unbounded_steps": unbounded_steps, "apgd_steps": apgd_steps,
        "apgd_targets": apgd_targets, "square_queries": square_queries,
    }  # fmt: skip
    results = (mapper or inline_map)(white_box_task, items, (adapter, space, cfg)) if items else []
    correct: dict[str, dict[str, np.ndarray]] = {}
    for name in norms:
        members = [a for a in attacks if not (a in LINF_ONLY and name != "inf")]
        # Radius 0 (and every radius when no row is clean-correct): correct = clean.
        correct[name] = {a: np.tile(clean, (len(grid), 1)) for a in members}
    unbounded = clean.copy() if unbounded_steps > 0 else None
    for (kind, name, rs, lo, hi, _members, _seed), out in zip(items, results, strict=True):
        rows = todo[lo:hi]
        if kind == "unbounded":
            assert unbounded is not None
            unbounded[rows] = out
            continue
        for a, got in out.items():
            for k, (i, _eps) in enumerate(rs):
                correct[name][a][i, rows] = got[k]
    return WhiteBox(space, radii, list(map(float, grid)), clean, correct, time.perf_counter() - t0, unbounded)


# ------------------------------------------------------------------------------------------------
# AutoAttack-style ensemble (Croce & Hein, ICML 2020): auditkit's own PyTorch implementations
# ------------------------------------------------------------------------------------------------
FAST_ATTACKS = ["fgsm", "pgd"]
STANDARD_ATTACKS = ["apgd-ce", "apgd-t", "fab-t", "square"]
KNOWN_ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-t", "fab-t", "square")
LINF_ONLY = ("fab-t", "square")


def resolve_attacks(attacks: str | list[str]) -> list[str]:
    """``fast`` (FGSM + PGD, the default), ``standard`` (APGD-CE, APGD-T, FAB-T, Square) or a list."""
    if attacks == "fast":
        return list(FAST_ATTACKS)
    if attacks == "standard":
        return list(STANDARD_ATTACKS)
    names = [attacks] if isinstance(attacks, str) else list(attacks)
    bad = [a for a in names if a not in KNOWN_ATTACKS]
    if bad or not names:
        raise SpecError(
            f"attacks: {bad or names} — use 'fast', 'standard' or a list of {list(KNOWN_ATTACKS)}"
        )
    return list(dict.fromkeys(names))


def _bshape(v: Any, ndim: int) -> Any:
    return v.reshape((-1,) + (1,) * (ndim - 1))


def _project(x: Any, x0: Any, eps: float, norm: str, mask: Any) -> Any:
    """Onto the ε-ball around ``x0`` (L∞ exactly; L2 by rescaling), the box [0, 1] and the mask
    (frozen coordinates keep their value, even outside the box)."""
    import torch

    if norm == "inf":
        lo = torch.minimum((x0 - eps).clamp(min=0.0), x0)
        hi = torch.maximum((x0 + eps).clamp(max=1.0), x0)
        x = torch.max(torch.min(x, hi), lo)
    else:
        d = (x - x0) * mask
        n = d.reshape(len(d), -1).norm(dim=1).clamp_min(1e-12)
        x = (x0 + d * _bshape(torch.clamp(eps / n, max=1.0), d.ndim)).clamp(0.0, 1.0)
    return torch.where(mask > 0, x, x0)


def dlr_loss(logits: Any, y: Any, target: Any | None = None) -> Any:
    """Per-sample DLR loss (Croce & Hein 2020) to maximise; targeted when ``target`` is given.

    Untargeted: −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3). Targeted: −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2).
    The denominators need 3 (4) classes; with fewer the plain margin (z_max_other − z_y, or
    z_t − z_y) is used: the margin loss of a binary model.
    """
    import torch

    k = logits.shape[1]
    srt = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, y[:, None]).squeeze(1)
    if target is None:
        other = logits.masked_fill(torch.nn.functional.one_hot(y, k).bool(), float("-inf")).amax(1)
        num = other - true
        den = srt[:, 0] - srt[:, 2] if k >= 3 else None
    else:
        num = logits.gather(1, target[:, None]).squeeze(1) - true
        den = srt[:, 0] - 0.5 * (srt[:, 2] + srt[:, 3]) if k >= 4 else None
    return num if den is None else num / (den + 1e-12)


def apgd(
    model: Any, z: Any, y: Any, mask: Any, *, eps: float, norm: str, steps: int, loss: str,
    target: Any | None = None, seed: int = 0,
) -> Any:  # fmt: skip
    """APGD (Croce & Hein 2020, Algorithm 1): momentum 0.75, step 2ε halved at the checkpoints
    p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) when fewer than 75% of the
    steps since the last checkpoint raised the loss or the step and best loss did not change;
    restart from the best point. Random start in the ball. Returns a bool mask: still correct after
    every iterate (a sample fooled by any iterate counts as broken)."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = len(z)
    if norm == "inf":
        start = z + eps * (2 * torch.rand(z.shape, generator=gen) - 1).to(z.device) * mask
    else:
        r = torch.randn(z.shape, generator=gen).to(z.device) * mask
        start = z + eps * r / _bshape(r.reshape(n, -1).norm(dim=1).clamp_min(1e-12), z.ndim)
    x = _project(start, z, eps, norm, mask)
    ce = torch.nn.CrossEntropyLoss(reduction="none")

    def loss_grad(xa: Any) -> tuple[Any, Any, Any]:
        xa = xa.clone().requires_grad_(True)
        out = model(xa)
        per = ce(out, y) if loss == "ce" else dlr_loss(out, y, target)
        (g,) = torch.autograd.grad(per.sum(), xa)
        return per.detach(), g.detach() * mask, out.detach()

    checkpoints, p = [0], [0.0, 0.22]
    while p[-1] < 1:
        checkpoints.append(math.ceil(p[-1] * steps))
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    checkpoints = sorted(set(c for c in checkpoints if 0 < c < steps))
    eta = torch.full((n,), 2.0 * eps, device=z.device)
    f, g, out = loss_grad(x)
    alive = out.argmax(1) == y
    best_f, best_x, prev_f = f.clone(), x.clone(), f.clone()
    prev, last_check, increases = x.clone(), 0, torch.zeros(n, device=z.device)
    f_at_check, eta_at_check = best_f.clone(), eta.clone()
    for k in range(steps):
        if norm == "inf":
            step = g.sign()
        else:
            step = g / _bshape(g.reshape(n, -1).norm(dim=1).clamp_min(1e-12), g.ndim)
        zk = _project(x + _bshape(eta, x.ndim) * step, z, eps, norm, mask)
        a = 0.75 if k > 0 else 1.0
        new = _project(x + a * (zk - x) + (1 - a) * (x - prev), z, eps, norm, mask)
        prev, x = x, new
        f, g, out = loss_grad(x)
        alive &= out.argmax(1) == y
        up = f > best_f
        increases += (f > prev_f).float()
        prev_f = f
        best_f = torch.where(up, f, best_f)
        best_x = torch.where(_bshape(up, x.ndim), x, best_x)
        if k + 1 in checkpoints:
            span = k + 1 - last_check
            cond = (increases < 0.75 * span) | ((eta_at_check == eta) & (f_at_check == best_f))
            eta = torch.where(cond, eta / 2, eta)
            x = torch.where(_bshape(cond, x.ndim), best_x, x)
            if bool(cond.any()):
                f, g, out = loss_grad(x)
            last_check, increases = k + 1, torch.zeros(n, device=z.device)
            f_at_check, eta_at_check = best_f.clone(), eta.clone()
        if not bool(alive.any()):
            break
    return alive


def square_attack(
    model: Any, z: Any, y: Any, mask: Any, *, eps: float, queries: int, seed: int, p_init: float = 0.8
) -> Any:
    """Square attack, L∞ (Andriushchenko et al., ECCV 2020): score-based random search. Starts from
    vertical stripes of ±ε; each query redraws ±ε on a random square window (images: side
    √(p·h·w), per channel) or a random share p of the mutable features (tabular), kept when the
    margin z_y − max_{j≠y} z_j falls; p halves on the paper's schedule (rescaled to the query
    budget). Returns a bool mask: still correct."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = len(z)
    dev = z.device

    image = z.ndim == 4
    if image:
        c, h, w = z.shape[1:]
        stripes = (2 * torch.randint(0, 2, (n, c, 1, w), generator=gen) - 1).float().to(dev)
        delta = eps * stripes.expand(n, c, h, w)
    else:
        delta = eps * (2 * torch.randint(0, 2, z.shape, generator=gen) - 1).float().to(dev)
    x = _project(z + delta * mask, z, eps, "inf", mask)
    m = margin_of(model, x, y)
    mutable = (mask.reshape(-1) > 0).nonzero().flatten() if not image else None
    for i in range(queries):
        active = (m > 0).nonzero().flatten()
        if len(active) == 0:
            break
        frac = p_init * 0.5 ** sum(
            i > q * queries / 10_000 for q in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
        )
        xa, za = x[active], z[active]
        cand = xa.clone()
        if image:
            s = max(1, min(h, w, int(round(math.sqrt(frac * h * w)))))
            r = int(torch.randint(0, h - s + 1, (1,), generator=gen))
            col = int(torch.randint(0, w - s + 1, (1,), generator=gen))
            signs = (2 * torch.randint(0, 2, (len(active), c, 1, 1), generator=gen) - 1).float().to(dev)
            cand[:, :, r : r + s, col : col + s] = za[:, :, r : r + s, col : col + s] + eps * signs
        else:
            assert mutable is not None
            k = max(1, int(round(frac * len(mutable))))
            pick = mutable[torch.randperm(len(mutable), generator=gen)[:k]]
            flat = cand.reshape(len(active), -1)
            signs = (2 * torch.randint(0, 2, (len(active), k), generator=gen) - 1).float().to(dev)
            flat[:, pick] = za.reshape(len(active), -1)[:, pick] + eps * signs
        cand = _project(cand, za, eps, "inf", mask)
        mc = margin_of(model, cand, y[active])
        better = mc < m[active]
        x[active[better]] = cand[better]
        m[active[better]] = mc[better]
    return m > 0


def _linf_hyperplane_step(w: Any, f: Any, room_up: Any, room_down: Any, iters: int = 40) -> Any:
    """Smallest-L∞ step d with w·d = −f inside the box (room_up/room_down: how far each coordinate
    may rise/fall; 0 for frozen ones), by bisection on t = ‖d‖∞: d_i = s_i·min(t, room_i) with
    s = −sign(f)·sign(w). Where the hyperplane is out of reach, the step goes as far as the box allows."""
    import torch

    s = -torch.sign(f)[:, None] * torch.sign(w)
    room = torch.where(s > 0, room_up, room_down) * (s != 0)
    need = f.abs()
    aw = w.abs()
    lo = torch.zeros_like(need)
    hi = room.amax(1)
    for _ in range(iters):
        mid = (lo + hi) / 2
        reach = (aw * torch.minimum(room, mid[:, None])).sum(1)
        ok = reach >= need
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    return s * torch.minimum(room, hi[:, None])


def fab_linf(
    model: Any, z: Any, y: Any, mask: Any, target: Any, *, steps: int, eta: float = 1.05, beta: float = 0.9,
    alpha_max: float = 0.1,
) -> Any:  # fmt: skip
    """FAB-T, L∞ (Croce & Hein, ICML 2020, "Minimally distorted adversarial examples with a fast
    adaptive boundary attack"): at each step, project the current point and the original onto the
    linearised boundary between the true and the ``target`` class (inside the box, frozen features
    fixed), move to a convex combination of the two (extrapolated by ``eta``, weight of the original
    ≤ ``alpha_max``), and after a success step back towards the original by ``beta``. Returns each
    sample's smallest L∞ distance at which it was fooled (inf when never)."""
    import torch

    n = len(z)
    flat0 = z.reshape(n, -1)
    m = mask.reshape(1, -1).expand(n, -1)
    best = torch.full((n,), float("inf"), device=z.device)
    x = flat0.clone()
    rows = torch.arange(n, device=z.device)
    for _ in range(steps):
        xa = x.clone().requires_grad_(True)
        out = model(xa.reshape(z.shape))
        f = out[rows, y] - out[rows, target]  # > 0 while correct (against this target)
        (w,) = torch.autograd.grad(f.sum(), xa)
        f, w, out = f.detach(), w.detach() * m, out.detach()
        fooled = out.argmax(1) != y
        dist = (x - flat0).abs().amax(1)
        best = torch.where(fooled & (dist < best), dist, best)
        up, down = (1.0 - x).clamp(min=0) * m, x.clamp(min=0) * m
        d1 = _linf_hyperplane_step(w, f, up, down)
        f0 = f + (w * (flat0 - x)).sum(1)  # the linearisation, seen from the original point
        d2 = _linf_hyperplane_step(w, f0, (1.0 - flat0).clamp(min=0) * m, flat0.clamp(min=0) * m)
        n1, n2 = d1.abs().amax(1), d2.abs().amax(1)
        alpha = torch.clamp(n1 / (n1 + n2).clamp_min(1e-12), 0.0, alpha_max)[:, None]
        x = ((x + eta * d1) * (1 - alpha) + (flat0 + eta * d2) * alpha).clamp(0.0, 1.0)
        x = torch.where(m > 0, x, flat0)
        with torch.no_grad():
            now = model(x.reshape(z.shape)).argmax(1) != y
        dist = (x - flat0).abs().amax(1)
        best = torch.where(now & (dist < best), dist, best)
        x = torch.where(now[:, None], flat0 + beta * (x - flat0), x)
    return best


def fab_distances(
    model: Any, space: AttackSpace, z: np.ndarray, y: np.ndarray, *, steps: int, n_targets: int, batch_size: int,
    device: Any,
) -> np.ndarray:  # fmt: skip
    """FAB-T against the ``n_targets`` most likely wrong classes: per sample the smallest L∞
    distance (normalised units) at which it was fooled, inf when never. Run once per norm: a
    minimum-norm attack answers every radius of the grid."""
    import torch

    mask_t = torch.from_numpy(np.broadcast_to(space.mask, space.shape).copy()).to(device)
    out = np.full(len(z), np.inf)
    for s in range(0, len(z), batch_size):
        zb = torch.from_numpy(z[s : s + batch_size]).to(device)
        yb = torch.from_numpy(y[s : s + batch_size]).to(device)
        with torch.no_grad():
            logits = model(zb)
        ranked = logits.masked_fill(torch.nn.functional.one_hot(yb, logits.shape[1]).bool(), float("-inf"))
        ranked = ranked.argsort(1, descending=True)
        best = torch.full((len(zb),), float("inf"), device=device)
        for t in range(min(n_targets, ranked.shape[1] - 1)):
            best = torch.minimum(best, fab_linf(model, zb, yb, mask_t, ranked[:, t], steps=steps))
        out[s : s + batch_size] = best.cpu().numpy()
    return out


def margin_of(model: Any, x: Any, y: Any) -> Any:
    import torch

    with torch.no_grad():
        out = model(x)
    true = out.gather(1, y[:, None]).squeeze(1)
    other = out.masked_fill(torch.nn.functional.one_hot(y, out.shape[1]).bool(), float("-inf")).amax(1)
    return true - other


def ensemble_attack(
    model: Any, space: AttackSpace, z: np.ndarray, y: np.ndarray, *, attack: str, norm: str, eps: float,
    steps: int, n_targets: int, queries: int, batch_size: int, device: Any, seed: int,
) -> np.ndarray:  # fmt: skip
    """One member of the ensemble on ``z``: a correct-after-attack mask. APGD-T runs once per target
    class, the ``n_targets`` classes with the highest clean logits after the true one."""
    import torch

    mask_t = torch.from_numpy(np.broadcast_to(space.mask, space.shape).copy()).to(device)
    correct = np.ones(len(z), dtype=bool)
    for s in range(0, len(z), batch_size):
        zb = torch.from_numpy(z[s : s + batch_size]).to(device)
        yb = torch.from_numpy(y[s : s + batch_size]).to(device)
        if attack == "apgd-ce":
            ok = apgd(model, zb, yb, mask_t, eps=eps, norm=norm, steps=steps, loss="ce", seed=seed)
        elif attack == "apgd-t":
            with torch.no_grad():
                out = model(zb)
                ranked = out.masked_fill(torch.nn.functional.one_hot(yb, out.shape[1]).bool(), float("-inf"))
                ranked = ranked.argsort(1, descending=True)
            ok = torch.ones(len(zb), dtype=torch.bool, device=device)
            for t in range(min(n_targets, ranked.shape[1] - 1)):
                todo = ok.nonzero().flatten()
                if len(todo) == 0:
                    break
                ok[todo] = apgd(model, zb[todo], yb[todo], mask_t, eps=eps, norm=norm, steps=steps, loss="dlr",
                                target=ranked[todo, t], seed=seed + t)  # fmt: skip
        elif attack == "square":
            ok = square_attack(model, zb, yb, mask_t, eps=eps, queries=queries, seed=seed)
        else:
            raise SpecError(f"unknown attack {attack!r}")
        correct[s : s + batch_size] = ok.cpu().numpy()
    return correct


def wilson_row(correct: np.ndarray) -> tuple[float, tuple[float, float], int]:
    from auditkit.toolkit import wilson

    n = int(len(correct))
    k = int(np.sum(correct))
    return (k / n if n else float("nan")), wilson(k, n), n


def _grid_and_gate(
    kind: str, epsilons: list[float] | None, gate_epsilon: float | None
) -> tuple[list[float], float]:
    grid = [
        float(e)
        for e in (
            epsilons if epsilons is not None else (IMAGE_EPSILONS if kind == "image" else TABULAR_EPSILONS)
        )
    ]
    if any(e < 0 for e in grid):
        raise SpecError("epsilons must be ≥ 0")
    gate = (
        float(gate_epsilon) if gate_epsilon is not None else (IMAGE_GATE if kind == "image" else TABULAR_GATE)
    )
    grid = sorted(set(grid) | {0.0, gate})
    return grid, gate


def attack_inputs(
    ctx: RunContext, split: str, max_samples: int | None, perturb_binary: bool, seed: int
) -> tuple[ModelAdapter, AttackSpace]:
    """The model and the rows to attack (a private generator: every check sharing it sees the same rows)."""
    adapter = ctx.model()
    if adapter.n_classes < 2:
        raise NotApplicable("the model has fewer than 2 outputs")
    space = build_space(
        ctx, split, max_samples=max_samples, perturb_binary=perturb_binary, rng=np.random.default_rng(seed)
    )
    if space.n_mutable == 0:
        raise NotApplicable("no input feature may be perturbed (all immutable, categorical or binary)")
    return adapter, space


def shared_white_box(
    ctx: RunContext, split: str, params: dict[str, Any], unbounded_steps: int = 0
) -> tuple[WhiteBox, float]:
    """The white-box run, shared between AK-ADV-001 and AK-ADV-002 when their parameters agree."""
    key = "adv-white-box:" + repr(sorted(params.items())) + f":{split}:{unbounded_steps}"

    def compute() -> tuple[WhiteBox, float]:
        seed = ctx.seed_for("AK-ADV-001")
        adapter, space = attack_inputs(ctx, split, params["max_samples"], params["perturb_binary"], seed)
        grid, gate = _grid_and_gate(space.kind, params["epsilons"], params["gate_epsilon"])
        wb = white_box(
            adapter, space, grid=grid, norms=params["norms"], steps=params["steps"], restarts=params["restarts"],
            losses=params["losses"], step_ratio=params["step_ratio"], l2_scale=params["l2_scale"],
            batch_size=params["batch_size"], seed=seed, unbounded_steps=unbounded_steps,
            attacks=resolve_attacks(params.get("attacks", "fast")), apgd_steps=params.get("apgd_steps", 100),
            apgd_targets=params.get("apgd_targets", 9), square_queries=params.get("square_queries", 5000),
            mapper=lambda fn, items, shared: ctx.map(fn, items, shared=shared),
        )  # fmt: skip
        return wb, gate

    return ctx.cached(key, compute)


def require_attack_rows(ctx: RunContext, split: str, min_rows: int) -> None:
    """Robust accuracy is a proportion: below ``min_rows`` labelled rows it is not judged."""
    y = ctx.dataset(split).y
    n = int(np.sum(y >= 0)) if y is not None else 0
    require_rows(n, min_rows, what="robust accuracy", split=f"labelled {split}")


def validate_attack_params(norms: Sequence[str], losses: Sequence[str], steps: int, restarts: int) -> None:
    bad = [n for n in norms if n not in NORMS]
    if bad or not norms:
        raise SpecError(f"norms: {bad or norms} — use 'inf' and/or 'l2'")
    badl = [x for x in losses if x not in ("ce", "margin")]
    if badl or not losses:
        raise SpecError(f"losses: {badl or losses} — use 'ce' and/or 'margin'")
    if steps < 1 or restarts < 1:
        raise SpecError("steps and restarts must be ≥ 1")


def fmt_eps(e: float, kind: str, name: str) -> str:
    if kind == "image" and name == "inf":
        return f"{e * 255:.3g}/255"
    return f"{e:.4g}"


def report_white_box(
    ctx: RunContext, wb: WhiteBox, gate: float, gate_norm: str, min_acc: float, conservative: bool
) -> Outcome:
    space = wb.space
    n = len(space.y)
    gi = wb.grid.index(gate)
    acc, ci, _ = wilson_row(wb.clean)
    metrics = [
        Metric("clean_accuracy", acc, ci=ci, n=n, description="accuracy on the attacked rows, no attack")
    ]
    rows: list[list[Any]] = []
    plots: list[dict[str, Any]] = []
    for name, per_attack in wb.correct.items():
        worst = wb.worst(name)
        series = []
        for attack, mat in [*per_attack.items(), ("worst case", worst)]:
            vals = [wilson_row(mat[i]) for i in range(len(wb.grid))]
            for i, (v, (lo, hi), _) in enumerate(vals):
                rows.append([name, attack, fmt_eps(wb.grid[i], space.kind, "inf"), float(wb.eps[name][i]),
                             float(v), float(lo), float(hi), n])  # fmt: skip
            series.append({"name": attack, "x": wb.eps[name], "y": [v[0] for v in vals],
                           "lo": [v[1][0] for v in vals], "hi": [v[1][1] for v in vals]})  # fmt: skip
        plots.append({"type": "line", "title": f"Robust accuracy under {'L∞' if name == 'inf' else 'L2'} attacks",
                      "x_label": "epsilon (normalised units)", "y_label": "robust accuracy", "series": series})  # fmt: skip
        v, ci, _ = wilson_row(worst[gi])
        is_gate = name == gate_norm
        metrics.append(Metric(
            f"robust_accuracy_{name}", v, ci=ci, n=n, threshold=min_acc if is_gate else None,
            direction="higher", bound="conservative" if (conservative and is_gate) else "value",
            description=f"worst case of FGSM and PGD ({name}) at ε = {fmt_eps(wb.grid[gi], space.kind, 'inf')}"
            + (f" (L2 radius {wb.eps[name][gi]:.4g})" if name == "l2" else ""),
            details={"epsilon": wb.grid[gi], "radius": wb.eps[name][gi], "norm": name},
        ))  # fmt: skip
    # Per class at the gate radius; smallest successful epsilon per sample (gate norm).
    worst = wb.worst(gate_norm)
    per_class = []
    findings: list[Finding] = []
    for c in np.unique(space.y):
        sel = space.y == c
        v, (lo, hi), m = wilson_row(worst[gi][sel])
        per_class.append(
            [
                int(c),
                round(float(wilson_row(wb.clean[sel])[0]), 4),
                float(v),
                float(lo),
                float(hi),
                m,
            ]
        )
    per_class.sort(key=lambda r: r[2])
    if per_class and len(per_class) > 1:
        weakest = per_class[0]
        findings.append(Finding(
            f"Least robust class: {weakest[0]} (robust accuracy {weakest[2]:.3f}, n={weakest[5]}) at "
            f"ε = {fmt_eps(gate, space.kind, 'inf')} ({gate_norm})", severity="info", key=f"class:{weakest[0]}",
        ))  # fmt: skip
    broken = ~worst  # (n_eps, n): fooled at this radius or below
    first = np.where(broken.any(axis=0), broken.argmax(axis=0), -1)
    dist_rows = [[fmt_eps(e, space.kind, "inf"), int((first == i).sum())] for i, e in enumerate(wb.grid)]
    dist_rows.append(["not broken within the grid", int((first == -1).sum())])
    smallest = np.array([wb.grid[i] if i >= 0 else np.nan for i in first])
    plots.append({"type": "bar", "title": f"Smallest successful epsilon per sample ({gate_norm})",
                  "x_label": "epsilon", "y_label": "samples", "categories": [r[0] for r in dist_rows],
                  "series": [{"name": "samples", "values": [r[1] for r in dist_rows]}]})  # fmt: skip
    finite = smallest[np.isfinite(smallest)]
    note = []
    if space.n_outside:
        note.append(f"{space.n_outside} rows had values outside the valid range and were projected onto it")
    if space.frozen:
        note.append(
            f"not perturbed: {', '.join(space.frozen[:20])}" + (" ..." if len(space.frozen) > 20 else "")
        )
    if note:
        findings.append(Finding("; ".join(note), severity="info", key="input-space"))
    g = next(m for m in metrics if m.name == f"robust_accuracy_{gate_norm}")
    summary = (
        f"Clean accuracy {acc:.3f}; worst-case robust accuracy {g.value:.3f} at ε = "
        f"{fmt_eps(gate, space.kind, 'inf')} ({gate_norm}), n={n}."
    )
    evidence = {
        "robust accuracy by attack and epsilon": {
            "columns": ["norm", "attack", "epsilon", "radius", "robust_accuracy", "ci_low", "ci_high", "n"], "rows": rows},
        "robust accuracy by class at the gate epsilon": {
            "columns": ["class", "clean_accuracy", "robust_accuracy", "ci_low", "ci_high", "n"], "rows": per_class[:50],
            "total_rows": len(per_class)},
        "smallest successful epsilon": {"columns": ["epsilon", "samples"], "rows": dist_rows,
                                        "median": float(np.median(finite)) if len(finite) else None},
        "plots": plots,
        "setup": {"samples": n, "split_rows": space.n_total, "kind": space.kind, "mutable_inputs": space.n_mutable,
                  "grid": wb.grid, "robust_accuracy": "correct after attack / all evaluated",
                  # the values used for parameters left at None (the report's appendix shows them)
                  "epsilons": wb.grid, "gate_epsilon": gate},
    }  # fmt: skip
    return Outcome.from_metrics(metrics, summary=summary, findings=findings, evidence=evidence)


# ------------------------------------------------------------------------------------------------
# AK-ADV-002: black-box attack and gradient-masking verdict
# ------------------------------------------------------------------------------------------------
def hop_skip_jump(
    model: Any, space: AttackSpace, n_classes: int, device: Any, z: np.ndarray, y: np.ndarray, *, norm: str,
    max_iter: int, max_eval: int, init_eval: int, batch_size: int, rng: np.random.Generator, init_draws: int = 50,
) -> np.ndarray:  # fmt: skip
    """ART HopSkipJump (decision-based, minimal perturbation): per sample the size of the perturbation
    it found (inf when it found none). The attack only sees predicted labels.

    ART draws HopSkipJump's starting points from an unseeded generator; they are drawn here instead
    (uniform images in the valid box, mutable inputs only, from ``rng``) so that results are
    reproducible. A sample with no misclassified draw among ``init_draws`` counts as not broken."""
    from art.attacks.evasion import HopSkipJump

    clf = art_classifier(model, space, n_classes, "ce", device)
    attack = HopSkipJump(
        clf, batch_size=batch_size, targeted=False, norm=NORMS[norm], max_iter=max_iter, max_eval=max_eval,
        init_eval=init_eval, init_size=init_draws, verbose=False,
    )  # fmt: skip
    mask = space.mask if space.n_mutable < space.mask.size else None
    init = np.array(z, copy=True)
    found = np.zeros(len(z), dtype=bool)
    for _ in range(init_draws):
        todo = np.flatnonzero(~found)
        if len(todo) == 0:
            break
        cand = rng.uniform(0.0, 1.0, size=(len(todo), *space.shape)).astype(np.float32)
        if mask is not None:
            cand = cand * mask + z[todo] * (1 - mask)
        ok = predict_z(model, cand, device, batch_size) != y[todo]
        init[todo[ok]] = cand[ok]
        found[todo[ok]] = True
    size = np.full(len(z), np.inf)
    idx = np.flatnonzero(found)
    if len(idx) == 0:
        return size
    kwargs: dict[str, Any] = {"x_adv_init": init[idx]}
    if mask is not None:
        kwargs["mask"] = mask
    adv = attack.generate(z[idx], y[idx], **kwargs).astype(np.float32)
    if mask is not None:  # immutable values outside the box, which ART's clipping would move
        adv = np.where(mask > 0, adv, z[idx]).astype(np.float32)
    fooled = predict_z(model, adv, device, batch_size) != y[idx]
    delta = (adv - z[idx]).reshape(len(idx), -1)
    dist = np.abs(delta).max(axis=1) if norm == "inf" else np.linalg.norm(delta, axis=1)
    size[idx] = np.where(fooled, dist, np.inf)
    return size


def hop_skip_jump_task(
    shared: tuple[Any, AttackSpace, dict[str, Any]], item: tuple[np.ndarray, np.ndarray], seed: int
) -> np.ndarray:
    """HopSkipJump on one shard of samples (a compute task of ``ctx.map``; its seed drives both the
    starting draws and ART's gradient estimates, which use numpy's global generator)."""
    adapter, space, params = shared
    z, y = item
    np.random.seed(seed % (2**32))
    model = scaled_module(adapter, space)
    with frozen_params(adapter.module):
        return hop_skip_jump(
            model, space, adapter.n_classes, adapter.device, z, y, rng=np.random.default_rng(seed), **params
        )
