"""Training with the specified optimizers and schedules, recorded for the AK-TRAIN checks.

Training is a function of what it needs: a frozen ``TrainingInputs`` (the training and model
specs, the spec's folder, task, ``model.output``, the feature layout and the prepared rows as
arrays) that the artifact cache builds and passes down; nothing here reads the cache. It pickles
small, so the same object is the payload sent to training workers. ``train_all(inputs)`` trains the
main configuration once per seed; ``train_compare`` trains each ``training.compare`` optimizer
(× seeds) and ``rerun_first_seed`` repeats the first run (for the reproducibility check); the cache
(``auditkit/inputs/artifacts.py``) keeps each under its own key, so they only run when a check
asks. Training never raises on NaN or divergence: the run stops and records it.

What is trained: the built-in architecture (``model.builtin``, or mlp/cnn by input kind when there
is no model section), or a fresh module from ``model.factory`` (its weights are not used: training
starts from the factory's initialisation).

Schedules (``training.schedule.name``), their defaults, and when they step:

=====================  ============================================================  ==========
name                   default arguments                                              steps per
=====================  ============================================================  ==========
constant               (none)                                                         -
step                   step_size = max(1, epochs // 3), gamma = 0.1                   epoch
multistep              milestones = [epochs // 2, 3 * epochs // 4], gamma = 0.1       epoch
exponential            gamma = 0.95                                                   epoch
cosine                 T_max = epochs after warmup, eta_min = 0                       epoch
cosine_warm_restarts   T_0 = max(1, epochs // 3) epochs (fractional epochs per step)  batch
onecycle               max_lr = lr, total_steps = steps after warmup                  batch
cyclic                 base_lr = lr / 10, max_lr = lr, step_size_up = 1 epoch         batch
reduce_on_plateau      mode=min on validation loss, factor = 0.1, patience = 2        epoch
any other torch class  e.g. LinearLR, PolynomialLR with the given arguments          epoch
=====================  ============================================================  ==========

``deterministic`` (default true) switches on ``torch.use_deterministic_algorithms`` (warn-only)
for the run, and cuBLAS's deterministic workspace on CUDA.

``warmup_epochs`` ramps the learning rate linearly from lr/steps to lr over that many epochs (in
batches) before the schedule starts. Epoch-based arguments (``step_size``, ``milestones``,
``T_max``, ``T_0``) are in epochs counted from the end of warmup.
"""

from __future__ import annotations

import copy
import importlib
import math
import os
import resource
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit.errors import SpecError

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import nn

    from auditkit.inputs.data import Dataset
    from auditkit.spec.schema import LoadedSpec, ModelSpec, TrainingSpec

SCHEDULE_ALIASES = {
    "step": "StepLR", "multistep": "MultiStepLR", "exponential": "ExponentialLR", "cosine": "CosineAnnealingLR",
    "cosine_warm_restarts": "CosineAnnealingWarmRestarts", "onecycle": "OneCycleLR", "cyclic": "CyclicLR",
    "reduce_on_plateau": "ReduceLROnPlateau", "constant": None,
}  # fmt: skip
PER_BATCH = {"OneCycleLR", "CyclicLR", "CosineAnnealingWarmRestarts"}


@dataclass
class TrainingRun:
    """One training run: configuration, curves, costs, and the trained module."""

    config: str  # "main" or "compare:<i>" or "rerun"
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    seed: int
    epochs: int
    batch_size: int
    steps_per_epoch: int
    device: str
    # per step
    step_loss: list[float] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    step_grad_norm: list[float] = field(default_factory=list)
    # per epoch
    train_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    metric_name: str = "accuracy"
    epochs_run: int = 0
    stopped_early: bool = False
    best_epoch: int | None = None
    nonfinite_step: int | None = None  # first step whose loss or gradient norm was NaN/inf
    error: str | None = None  # an exception raised by the optimizer or schedule (recorded, not raised)
    wall_time_s: float = 0.0
    samples_seen: int = 0
    samples_per_s: float = 0.0
    flops_per_sample_train: float | None = None  # forward + backward, from torch's flop counter
    flops_per_sample_forward: float | None = None
    total_flops: float | None = None
    params: int = 0
    peak_memory_bytes: int | None = None
    peak_memory_kind: str = ""
    n_train: int = 0
    n_val: int = 0
    threads: int = 1  # torch CPU threads used
    module: Any = None  # the trained nn.Module (eval mode), not serialised

    @property
    def label(self) -> str:
        return f"{self.optimizer.get('name')} seed {self.seed}"

    @property
    def finite(self) -> bool:
        return self.nonfinite_step is None and self.error is None

    def summary(self) -> dict[str, Any]:
        """JSON-native facts (no curves, no module)."""
        keys = (
            "config",
            "optimizer",
            "schedule",
            "seed",
            "epochs",
            "epochs_run",
            "batch_size",
            "steps_per_epoch",
            "device",
            "stopped_early",
            "best_epoch",
            "nonfinite_step",
            "error",
            "wall_time_s",
            "samples_seen",
            "samples_per_s",
            "flops_per_sample_train",
            "flops_per_sample_forward",
            "total_flops",
            "params",
            "peak_memory_bytes",
            "peak_memory_kind",
            "n_train",
            "n_val",
            "metric_name",
            "threads",
        )
        out = {k: getattr(self, k) for k in keys}
        out["final_train_loss"] = self.train_loss[-1] if self.train_loss else None
        out["final_val_loss"] = self.val_loss[-1] if self.val_loss else None
        out["final_val_metric"] = self.val_metric[-1] if self.val_metric else None
        return out


# --------------------------------------------------------------------------------------------------
# What training reads
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingData:
    """The rows a run fits and validates on, as arrays: rows of unknown label dropped, and the
    validation rows (the validation split, or a seeded share of train)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    n_classes: int  # classes, or the output width of a regressor


@dataclass(frozen=True)
class TrainingInputs:
    """Everything training reads, built by the artifact cache and passed down (pickled, it is the
    payload of parallel training: arrays, no DataFrames).

    ``training``: the training section (its defaults for cross-fitting without one); ``model``: the
    model section or None; ``base``: the spec's folder (a factory module there is importable);
    ``numeric_idx``/``categorical``: the train split's feature layout for the built-in
    preprocessing (categorical: (feature index, number of categories)); ``data``: the prepared
    rows (None for cross-fitting, which brings its own rows)."""

    training: TrainingSpec
    model: ModelSpec | None
    base: Path | None
    task: str = "classification"
    output: Any = "point"  # model.output: point, gaussian or a QuantileOutput
    numeric_idx: tuple[int, ...] = ()
    categorical: tuple[tuple[int, int], ...] = ()
    data: TrainingData | None = None

    @property
    def device(self) -> str:
        """The device policy (``model.device``; auto without a model section)."""
        return str(self.model.device) if self.model is not None else "auto"

    def rows(self) -> TrainingData:
        if self.data is None:
            raise ValueError("training: no prepared rows in these inputs")
        return self.data


def feature_layout(train: Dataset) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """(numeric feature indices, (categorical feature index, its number of categories)) of a split."""
    numeric_idx = tuple(i for i, f in enumerate(train.features) if f not in train.categorical)
    categorical = tuple(
        (i, len(train.categories.get(f, []))) for i, f in enumerate(train.features) if f in train.categorical
    )
    return numeric_idx, categorical


def prepare_data(
    train: Dataset,
    validation: Dataset | None,
    *,
    task: str,
    output: Any,
    training: TrainingSpec | None,
    seed: int,
) -> TrainingData:
    """The rows training uses, with rows of unknown label dropped: the validation split when there
    is one, else a seeded ``validation_fraction`` of train (stratified for classes)."""
    if train.y is None:
        raise ValueError("training needs a label column in the train split")
    regression = task == "regression"
    keep = np.isfinite(train.y) if regression else train.y >= 0
    x, y = train.x[keep], train.y[keep]
    if regression:
        from auditkit.inputs.loading import output_width

        n_classes = output_width(output)
    else:
        n_classes = len(train.classes or []) or int(y.max()) + 1
    spec = training or _default_training()
    if validation is not None:
        if validation.y is None:
            raise ValueError("the validation split has no labels")
        vk = np.isfinite(validation.y) if regression else validation.y >= 0
        return TrainingData(x, y, validation.x[vk], validation.y[vk], n_classes)
    if spec.validation_fraction > 0 and len(y) >= 10:
        if regression:
            tr, va = random_split(len(y), spec.validation_fraction, seed)
        else:
            tr, va = stratified_split(y, spec.validation_fraction, seed)
        return TrainingData(x[tr], y[tr], x[va], y[va], n_classes)
    return TrainingData(x, y, None, None, n_classes)


# --------------------------------------------------------------------------------------------------
# Entry points (called by the artifact cache, which keeps their results)
# --------------------------------------------------------------------------------------------------


def require_seeds(training: TrainingSpec) -> None:
    if not training.seeds:
        raise ValueError("training.seeds is empty: list at least one seed")


def train_all(inputs: TrainingInputs) -> list[TrainingRun]:
    """The main configuration, once per seed (the first is the model under audit for builtin)."""
    spec = inputs.training
    require_seeds(spec)
    from auditkit.inputs.parallel_training import train_many

    return train_many(inputs, [(spec.optimizer.model_dump(), seed, "main") for seed in spec.seeds])


def train_compare(inputs: TrainingInputs) -> dict[str, list[TrainingRun]]:
    """Each ``training.compare`` optimizer × seeds, keyed ``compare:<i>``."""
    from auditkit.inputs.parallel_training import train_many

    spec = inputs.training
    # Every optimizer x seed is one task: all of them run side by side on the compute engine.
    jobs = [
        (opt.model_dump(), seed, f"compare:{i}") for i, opt in enumerate(spec.compare) for seed in spec.seeds
    ]
    runs = train_many(inputs, jobs)
    return {f"compare:{i}": [r for r in runs if r.config == f"compare:{i}"] for i in range(len(spec.compare))}


def rerun_first_seed(inputs: TrainingInputs) -> TrainingRun:
    """The main configuration's first seed trained again (same-seed reproducibility)."""
    spec = inputs.training
    return train_one(inputs, spec.optimizer.model_dump(), spec.seeds[0], config="rerun")


# --------------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------------


def validate_training(loaded: LoadedSpec) -> None:
    """Build every optimizer of the spec on a dummy parameter and resolve its schedule, before any
    check runs: an unknown name, a module that does not import or a wrong keyword is a spec error
    (exit 2), not the same error repeated by every training check."""
    import torch

    t = loaded.spec.training
    if t is None:
        return
    entries = [("training.optimizer", t.optimizer.model_dump())]
    entries += [(f"training.compare.{i}", o.model_dump()) for i, o in enumerate(t.compare)]
    with loaded.importable():
        for where, opt in entries:
            try:
                make_optimizer(opt, torch.nn.Linear(2, 2))
            except Exception as err:
                msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise SpecError(msg.removeprefix("training.optimizer: "), location=where) from None
        try:
            _schedule_class(str(t.schedule.name))
        except Exception as err:
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SpecError(msg.removeprefix("training.schedule: "), location="training.schedule") from None


def resolve_optimizer(name: str) -> type:
    """A torch.optim class by name (case-insensitive) or ``package.module:Class``."""
    import torch

    if ":" in name:
        from auditkit.spec import nocode

        nocode.refuse(
            "training.optimizer.name", f"{name!r} imports Python; name a built-in class such as AdamW"
        )
        mod, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"training.optimizer: cannot import {name!r}: {err}") from None
        return cls  # type: ignore[no-any-return]
    table = {
        n.lower(): getattr(torch.optim, n)
        for n in dir(torch.optim)
        if isinstance(getattr(torch.optim, n), type)
        and issubclass(getattr(torch.optim, n), torch.optim.Optimizer)
    }
    cls = table.get(name.lower())
    if cls is None or cls is torch.optim.Optimizer:
        known = sorted(c.__name__ for c in table.values() if c is not torch.optim.Optimizer)
        raise ValueError(f"training.optimizer: unknown optimizer {name!r}; known: {', '.join(known)}")
    return cls


def make_optimizer(opt_spec: dict[str, Any], module: nn.Module) -> Any:
    import torch

    spec = dict(opt_spec)
    cls = resolve_optimizer(str(spec.pop("name")))
    params = [p for p in module.parameters() if p.requires_grad]
    if cls is torch.optim.SparseAdam:
        raise ValueError(
            "SparseAdam needs sparse gradients (nn.Embedding(sparse=True)); dense models cannot use it"
        )
    if getattr(torch.optim, "Muon", None) is not None and cls is torch.optim.Muon:
        # Muon only updates 2-D weight matrices; biases go to AdamW (the usual pairing), same lr.
        mats = [p for p in params if p.ndim == 2]
        rest = [p for p in params if p.ndim != 2]
        return _PairedOptimizer(
            cls(mats, **spec), torch.optim.AdamW(rest, lr=spec.get("lr", 1e-3)) if rest else None
        )
    return cls(params, **spec)  # type: ignore[no-any-return]


class _PairedOptimizer:
    """Two optimizers stepped together (Muon for matrices, AdamW for the rest), one lr schedule."""

    def __init__(self, main: Any, aux: Any) -> None:
        self.main, self.aux = main, aux
        self.param_groups = main.param_groups + (aux.param_groups if aux else [])
        self.defaults = main.defaults
        self.state = main.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.main.zero_grad(set_to_none)
        if self.aux:
            self.aux.zero_grad(set_to_none)

    def step(self, closure: Any = None) -> Any:
        loss = self.main.step(closure)
        if self.aux:
            self.aux.step()
        return loss


def _schedule_class(name: str) -> Any:
    import torch

    if name.lower() in SCHEDULE_ALIASES:
        cls_name = SCHEDULE_ALIASES[name.lower()]
        return None if cls_name is None else getattr(torch.optim.lr_scheduler, cls_name)
    # only a public class of torch.optim.lr_scheduler: a spec name never reaches another attribute
    cls = None if name.startswith("_") else getattr(torch.optim.lr_scheduler, name, None)
    if not isinstance(cls, type):
        cls = None
    if cls is None and ":" in name:
        from auditkit.spec import nocode

        nocode.refuse("training.schedule.name", f"{name!r} imports Python; name a built-in schedule")
        mod, _, attr = name.partition(":")
        cls = getattr(importlib.import_module(mod), attr, None)
    if cls is None:
        raise ValueError(
            f"training.schedule: unknown schedule {name!r}; use one of {', '.join(SCHEDULE_ALIASES)} "
            "or a torch.optim.lr_scheduler class name"
        )
    return cls


def make_scheduler(
    sched: dict[str, Any], optimizer: Any, *, epochs: int, steps_per_epoch: int, lr: float
) -> tuple[Any, str]:
    """(scheduler or None, 'batch' | 'epoch' | 'plateau') for the epochs left after warmup."""
    cls = _schedule_class(str(sched.get("name", "constant")))
    if cls is None:
        return None, "epoch"
    kw = {k: v for k, v in sched.items() if k not in ("name", "warmup_epochs")}
    cname = cls.__name__
    epochs = max(1, epochs)
    total_steps = max(1, epochs * steps_per_epoch)
    if cname == "StepLR":
        kw.setdefault("step_size", max(1, epochs // 3))
        kw.setdefault("gamma", 0.1)
    elif cname == "MultiStepLR":
        kw.setdefault("milestones", sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)}))
        kw.setdefault("gamma", 0.1)
    elif cname == "ExponentialLR":
        kw.setdefault("gamma", 0.95)
    elif cname == "CosineAnnealingLR":
        kw.setdefault("T_max", epochs)
    elif cname == "CosineAnnealingWarmRestarts":
        kw["T_0"] = int(kw.get("T_0", max(1, epochs // 3)))
    elif cname == "OneCycleLR":
        kw.setdefault("max_lr", lr)
        kw.setdefault("total_steps", total_steps)
        kw.setdefault("cycle_momentum", _has_momentum(optimizer))
    elif cname == "CyclicLR":
        kw.setdefault("base_lr", lr / 10)
        kw.setdefault("max_lr", lr)
        kw.setdefault("step_size_up", max(1, steps_per_epoch))
        kw.setdefault("cycle_momentum", False)
    elif cname == "ReduceLROnPlateau":
        kw.setdefault("factor", 0.1)
        kw.setdefault("patience", 2)
    target = optimizer.main if isinstance(optimizer, _PairedOptimizer) else optimizer
    scheduler = cls(target, **kw)
    if isinstance(optimizer, _PairedOptimizer):
        scheduler = _MirrorLR(scheduler, optimizer)
    mode = "plateau" if cname == "ReduceLROnPlateau" else ("batch" if cname in PER_BATCH else "epoch")
    return scheduler, mode


class _MirrorLR:
    """Steps a scheduler on the main optimizer and copies its lr to the auxiliary one."""

    def __init__(self, sched: Any, opt: _PairedOptimizer) -> None:
        self.sched, self.opt = sched, opt

    def step(self, *args: Any) -> None:
        self.sched.step(*args)
        lr = self.opt.main.param_groups[0]["lr"]
        if self.opt.aux:
            for g in self.opt.aux.param_groups:
                g["lr"] = lr


def _has_momentum(optimizer: Any) -> bool:
    d = getattr(optimizer, "defaults", {})
    return ("momentum" in d and bool(d.get("momentum"))) or "betas" in d


@dataclass(frozen=True)
class Objective:
    """What a training run minimises and reports per epoch.

    Classification: cross-entropy, accuracy. Regression (``training.loss`` mse | huber | l1 for
    point outputs; Gaussian NLL for ``[mean, log_var]``; pinball loss for quantiles), computed on the
    target standardised with the train mean and sd (outputs stay in label units), and the epoch
    metric ``r2`` = 1 − MSE of the point prediction / train variance of the target.
    """

    task: str = "classification"
    loss: str = "cross_entropy"
    output: str = "point"
    levels: tuple[float, ...] = ()
    mean: float = 0.0
    std: float = 1.0

    @property
    def metric_name(self) -> str:
        return "accuracy" if self.task == "classification" else "r2"

    def target_dtype(self) -> Any:
        return np.int64 if self.task == "classification" else np.float32

    def __call__(self, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        if self.task == "classification":
            return F.cross_entropy(out, y, reduction=reduction)
        yz = (y.float() - self.mean) / self.std
        out = out.float().reshape(len(out), -1)
        if self.output == "gaussian":
            mz = (out[:, 0] - self.mean) / self.std
            log_var = out[:, 1] - 2 * math.log(self.std)
            per = 0.5 * (log_var + (yz - mz) ** 2 * torch.exp(-log_var))
        elif self.output == "quantiles":
            qz = (out - self.mean) / self.std
            lv = torch.as_tensor(self.levels, dtype=qz.dtype, device=qz.device)
            d = yz[:, None] - qz
            per = torch.maximum(lv * d, (lv - 1) * d).mean(dim=1)
        else:
            z = (out[:, 0] - self.mean) / self.std
            if self.loss == "huber":
                per = F.huber_loss(z, yz, reduction="none")
            elif self.loss == "l1":
                per = (z - yz).abs()
            else:
                per = (z - yz) ** 2
        return per.sum() if reduction == "sum" else per.mean()

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """Sum over the batch of the epoch metric's per-row term (correct rows; squared z-errors)."""
        if self.task == "classification":
            return float((out.argmax(1) == y).sum())
        out = out.float().reshape(len(out), -1)
        col = 0 if self.output != "quantiles" else out.shape[1] // 2
        if self.output == "quantiles" and 0.5 in self.levels:
            col = self.levels.index(0.5)
        z = (out[:, col] - self.mean) / self.std
        return float((((y.float() - self.mean) / self.std - z) ** 2).sum())

    def metric(self, total: float, n: int) -> float:
        if self.task == "classification":
            return total / max(n, 1)
        return 1.0 - total / max(n, 1)


def objective_for(inputs: TrainingInputs, y_train: np.ndarray | None = None) -> Objective:
    """The training objective of this audit (from the task, ``model.output`` and ``training.loss``)."""
    if inputs.task != "regression":
        return Objective()
    from auditkit.inputs.builtin_models import target_stats

    output = inputs.output
    spec = inputs.training
    if y_train is None:
        y_train = inputs.rows().y_train
    mean, std = target_stats(y_train)
    if output == "point" or output == "gaussian":
        return Objective(
            task="regression", loss=(spec.loss if spec is not None and spec.loss else "mse") if output == "point"
            else "gaussian_nll", output=str(output), mean=mean, std=std,
        )  # fmt: skip
    return Objective(
        task="regression", loss="pinball", output="quantiles", levels=tuple(float(q) for q in output.quantiles),
        mean=mean, std=std,
    )  # fmt: skip


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train idx, validation idx): a seeded random ``fraction`` of the rows (regression targets)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    k = min(max(int(round(fraction * n)), 1), n - 1)
    return np.sort(perm[k:]), np.sort(perm[:k])


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train idx, validation idx): ``fraction`` of each class (at least one when it has ≥ 2 rows)."""
    rng = np.random.default_rng(seed)
    tr, va = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else 0
        va.append(idx[:k])
        tr.append(idx[k:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))


def _arch(model: ModelSpec | None, x: np.ndarray) -> str:
    if model is not None and model.builtin:
        return str(model.builtin)
    return "cnn" if x.ndim == 4 else "mlp"


def build_module(
    inputs: TrainingInputs, x_fit: np.ndarray, n_classes: int, y_fit: np.ndarray | None = None
) -> nn.Module:
    """A fresh, untrained module: the factory's, or a built-in with preprocessing fitted on x_fit
    (and, for regression, the target standardisation on y_fit)."""
    m = inputs.model
    if m is not None and m.factory:
        from auditkit.inputs.loading import call_factory

        return call_factory(m, inputs.base)
    if m is not None and (m.torchscript or m.exported):
        from auditkit.errors import NotApplicable

        raise NotApplicable(
            "training applies to builtin or factory models, not to a loaded TorchScript/export file"
        )
    from auditkit.inputs.builtin_models import build

    args = dict(m.builtin_args) if m is not None else {}
    regression = inputs.task == "regression"
    output = inputs.output
    return build(
        _arch(m, x_fit),
        x_train=x_fit,
        n_classes=n_classes,
        numeric_idx=list(inputs.numeric_idx),
        categorical=dict(inputs.categorical),
        args=args,
        task="regression" if regression else "classification",
        output=output if isinstance(output, str) else "quantiles",
        y_train=y_fit if regression else None,
    )


def _default_training() -> Any:
    from auditkit.spec.schema import TrainingSpec

    return TrainingSpec()


def _warm_dynamo() -> None:
    """Run the flop counter once on a tiny layer (imports what use_deterministic_algorithms needs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False):
        torch.nn.functional.linear(torch.zeros(1, 1), torch.zeros(1, 1))


def _flops(
    module: nn.Module, xb: torch.Tensor, yb: torch.Tensor, objective: Objective | None = None
) -> tuple[float | None, float | None]:
    """(forward+backward FLOPs per sample, forward FLOPs per sample) from torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        probe = copy.deepcopy(module)
        with FlopCounterMode(display=False) as fc:
            out = probe(xb)
        fwd = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc2:
            out = probe(xb)
            (objective or Objective())(out, yb).backward()
        both = fc2.get_total_flops()
        return both / len(xb), fwd / len(xb)
    except Exception:  # a module the counter cannot trace: report unknown rather than fail training
        return None, None


def train_one(inputs: TrainingInputs, opt_spec: dict[str, Any], seed: int, *, config: str) -> TrainingRun:
    """Train one configuration with one seed. Records everything; never raises on divergence."""
    import torch

    from auditkit.inputs.model import resolve_device, set_thread_policy

    # Re-applied for every run: the engine sets it only if torch was imported before checks ran,
    # and other libraries sharing the OpenMP runtime (faiss.omp_set_num_threads) change it.
    threads = set_thread_policy()
    spec = inputs.training
    sched_spec = spec.schedule.model_dump()
    rows = inputs.rows()
    x_tr, y_tr, x_va, y_va, n_classes = rows.x_train, rows.y_train, rows.x_val, rows.y_val, rows.n_classes
    device = resolve_device(inputs.device)
    n = len(y_tr)
    if n == 0:
        raise ValueError("training: the train split has no labelled rows")
    bs = min(spec.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    run = TrainingRun(
        config=config, optimizer=dict(opt_spec), schedule=sched_spec, seed=seed, epochs=spec.epochs,
        batch_size=bs, steps_per_epoch=steps_per_epoch, device=str(device), n_train=n,
        n_val=0 if y_va is None else len(y_va), threads=threads,
    )  # fmt: skip
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    toggle = spec.deterministic
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if toggle:
        # use_deterministic_algorithms imports torch._dynamo on first use (seconds); the flop counter
        # needs the same import, so it is paid once either way. warn_only: ops without a
        # deterministic kernel warn instead of failing the run.
        _warm_dynamo()
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    try:
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        objective = objective_for(inputs, y_tr)
        run.metric_name = objective.metric_name
        module = build_module(inputs, x_tr, n_classes, y_tr).to(device)
        _fit(run, module, spec, sched_spec, opt_spec, x_tr, y_tr, x_va, y_va, device, seed, objective)
    finally:
        if toggle:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
    return run


def _fit(
    run: TrainingRun,
    module: nn.Module,
    spec: Any,
    sched_spec: dict[str, Any],
    opt_spec: dict[str, Any],
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_va: np.ndarray | None,
    y_va: np.ndarray | None,
    device: torch.device,
    seed: int,
    objective: Objective | None = None,
) -> None:
    import torch

    objective = objective or Objective()
    ydt = objective.target_dtype()
    xt = torch.from_numpy(np.ascontiguousarray(x_tr, dtype=np.float32)).to(device)
    yt = torch.from_numpy(np.asarray(y_tr, dtype=ydt)).to(device)
    xv = yv = None
    if x_va is not None and y_va is not None and len(y_va):
        xv = torch.from_numpy(np.ascontiguousarray(x_va, dtype=np.float32)).to(device)
        yv = torch.from_numpy(np.asarray(y_va, dtype=ydt)).to(device)
    n, bs, spe = len(yt), run.batch_size, run.steps_per_epoch
    run.params = sum(p.numel() for p in module.parameters())
    run.flops_per_sample_train, run.flops_per_sample_forward = _flops(module, xt[:bs], yt[:bs], objective)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    lr = float(opt_spec.get("lr", 1e-3))
    is_lbfgs = resolve_optimizer(str(opt_spec["name"])) is torch.optim.LBFGS
    started = time.perf_counter()
    try:
        optimizer = make_optimizer(opt_spec, module)
    except (TypeError, ValueError) as err:
        run.error = f"optimizer: {err}"
        run.module = module.eval()
        return
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    warmup_steps = int(round(float(sched_spec.get("warmup_epochs", 0)) * spe))
    sched_epochs = max(1, spec.epochs - math.ceil(warmup_steps / spe))
    scheduler, mode = None, "epoch"
    if warmup_steps == 0:
        try:
            scheduler, mode = make_scheduler(
                sched_spec, optimizer, epochs=sched_epochs, steps_per_epoch=spe, lr=lr
            )
        except (TypeError, ValueError) as err:
            run.error = f"schedule: {err}"
            run.module = module.eval()
            return
    best_val, best_state, bad_epochs = math.inf, None, 0
    step = 0
    params = [p for p in module.parameters() if p.requires_grad]
    for epoch in range(spec.epochs):
        module.train()
        perm = torch.randperm(n, generator=gen).to(device)
        ep_loss, ep_correct, ep_n = 0.0, 0.0, 0
        for b in range(spe):
            idx = perm[b * bs : (b + 1) * bs]
            xb, yb = xt[idx], yt[idx]
            if step < warmup_steps:
                for g, base in zip(optimizer.param_groups, base_lrs, strict=False):
                    g["lr"] = base * (step + 1) / warmup_steps
            elif step == warmup_steps and warmup_steps > 0 and scheduler is None:
                for g, base in zip(optimizer.param_groups, base_lrs, strict=False):
                    g["lr"] = base
                try:
                    scheduler, mode = make_scheduler(
                        sched_spec, optimizer, epochs=sched_epochs, steps_per_epoch=spe, lr=lr
                    )
                except (TypeError, ValueError) as err:
                    run.error = f"schedule: {err}"
                    break
            holder: dict[str, Any] = {}

            def closure(
                xb: torch.Tensor = xb, yb: torch.Tensor = yb, holder: dict[str, Any] = holder
            ) -> torch.Tensor:
                optimizer.zero_grad(set_to_none=True)
                out = module(xb)
                loss = objective(out, yb)
                loss.backward()
                gn = _clip(params, spec)
                holder.setdefault("loss", loss.detach())
                holder.setdefault("out", out.detach())
                holder.setdefault("gn", gn)
                return loss

            run.step_lr.append(float(optimizer.param_groups[0]["lr"]))
            try:
                if is_lbfgs:
                    optimizer.step(closure)  # type: ignore[arg-type]
                else:
                    closure()
                    loss_v = float(holder["loss"])
                    if math.isfinite(loss_v) and math.isfinite(holder["gn"]):
                        optimizer.step()
            except Exception as err:  # an optimizer/scheduler failing mid-run is recorded, not raised
                run.error = f"{type(err).__name__}: {err}"
                break
            loss_v = float(holder["loss"])
            run.step_loss.append(loss_v)
            run.step_grad_norm.append(float(holder["gn"]))
            if not (math.isfinite(loss_v) and math.isfinite(holder["gn"])):
                run.nonfinite_step = step
                break
            ep_loss += loss_v * len(yb)
            ep_correct += objective.score(holder["out"], yb)
            ep_n += len(yb)
            step += 1
            if scheduler is not None and mode == "batch" and step > warmup_steps:
                if type(scheduler).__name__ == "CosineAnnealingWarmRestarts":
                    scheduler.step((step - warmup_steps) / spe)
                else:
                    _safe_step(scheduler)
        run.samples_seen += ep_n
        if run.nonfinite_step is not None or run.error is not None:
            if ep_n:
                run.train_loss.append(ep_loss / ep_n)
                run.train_metric.append(objective.metric(ep_correct, ep_n))
            break
        run.train_loss.append(ep_loss / max(ep_n, 1))
        run.train_metric.append(objective.metric(ep_correct, ep_n))
        run.epochs_run = epoch + 1
        vloss = None
        if xv is not None and yv is not None:
            vloss, vacc = _evaluate(module, xv, yv, bs, objective)
            run.val_loss.append(vloss)
            run.val_metric.append(vacc)
        monitor = vloss if vloss is not None else run.train_loss[-1]
        if scheduler is not None and step >= warmup_steps:
            if mode == "plateau":
                scheduler.step(monitor)
            elif mode == "epoch":
                _safe_step(scheduler)
        if spec.early_stopping:
            if monitor < best_val - 1e-12:
                best_val, bad_epochs, run.best_epoch = monitor, 0, epoch
                best_state = copy.deepcopy(module.state_dict())
            else:
                bad_epochs += 1
                if bad_epochs >= spec.early_stopping:
                    run.stopped_early = True
                    break
    if spec.early_stopping and best_state is not None and run.finite:
        module.load_state_dict(best_state)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        run.peak_memory_bytes = int(torch.cuda.max_memory_allocated(device))
        run.peak_memory_kind = "cuda max_memory_allocated during training"
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run.peak_memory_bytes = int(rss * (1 if os.uname().sysname == "Darwin" else 1024))
        run.peak_memory_kind = "process peak RSS (CPU; includes everything else in the process)"
    run.wall_time_s = time.perf_counter() - started
    run.samples_per_s = run.samples_seen / run.wall_time_s if run.wall_time_s > 0 else 0.0
    if run.flops_per_sample_train is not None:
        run.total_flops = run.flops_per_sample_train * run.samples_seen
    run.module = module.eval()


def fit_rows(inputs: TrainingInputs, x: np.ndarray, y: np.ndarray, *, seed: int, n_classes: int) -> nn.Module:
    """A fresh module of the audited architecture (built-in or factory) trained on the given rows.

    Uses ``inputs.training`` (the spec's training settings, their defaults without a training
    section) and the main optimizer, with no held-out rows: for cross-fitting the architecture (AK-DQ-005), where
    every row must be predicted by a model that never saw it. Returns the module in eval mode.
    """
    import torch

    from auditkit.inputs.model import resolve_device, set_thread_policy

    threads = set_thread_policy()
    spec = inputs.training
    device = resolve_device(inputs.device)
    n = len(y)
    bs = min(spec.batch_size, n)
    opt_spec, sched_spec = spec.optimizer.model_dump(), spec.schedule.model_dump()
    run = TrainingRun(
        config="crossfit", optimizer=dict(opt_spec), schedule=sched_spec, seed=seed, epochs=spec.epochs,
        batch_size=bs, steps_per_epoch=math.ceil(n / bs), device=str(device), n_train=n, threads=threads,
    )  # fmt: skip
    torch.manual_seed(seed)
    objective = objective_for(inputs, y)
    module = build_module(inputs, x, n_classes, y).to(device)
    _fit(run, module, spec, sched_spec, opt_spec, x, y, None, None, device, seed, objective)
    if run.error is not None or run.nonfinite_step is not None:
        raise RuntimeError(f"cross-fitting the architecture failed: {run.error or 'loss became NaN/inf'}")
    return module.eval()


def _safe_step(scheduler: Any) -> None:
    import contextlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # OneCycle past total_steps / "step before optimizer" notes
        # OneCycleLR raises ValueError once total_steps are exhausted: keep the last lr
        with contextlib.suppress(ValueError):
            scheduler.step()


def _clip(params: list[Any], spec: Any) -> float:
    """Clip by value and/or norm; return the global gradient norm before norm clipping."""
    import torch

    grads = [p for p in params if p.grad is not None]
    if not grads:
        return 0.0
    if spec.grad_clip_value is not None:
        torch.nn.utils.clip_grad_value_(grads, spec.grad_clip_value)
    max_norm = spec.grad_clip if spec.grad_clip is not None else math.inf
    return float(torch.nn.utils.clip_grad_norm_(grads, max_norm))


def _evaluate(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int, objective: Objective | None = None
) -> tuple[float, float]:
    import torch

    objective = objective or Objective()
    module.eval()
    total, correct = 0.0, 0.0
    with torch.inference_mode():
        for s in range(0, len(y), max(bs, 1024)):
            out = module(x[s : s + max(bs, 1024)])
            total += float(objective(out, y[s : s + max(bs, 1024)], reduction="sum"))
            correct += objective.score(out, y[s : s + max(bs, 1024)])
    module.train()
    return total / len(y), objective.metric(correct, len(y))


def state_distance(a: nn.Module, b: nn.Module) -> float:
    """Largest absolute difference between two modules' parameters and buffers (0.0 = identical)."""
    sa, sb = a.state_dict(), b.state_dict()
    worst = 0.0
    for k, v in sa.items():
        w = sb.get(k)
        if w is None or w.shape != v.shape:
            return math.inf
        if v.is_floating_point():
            d = (v.float() - w.float()).abs()
            d = d[~(v.isnan() & w.isnan())]
            worst = max(worst, float(d.max()) if d.numel() else 0.0)
        elif not bool((v == w).all()):
            return math.inf
    return worst
