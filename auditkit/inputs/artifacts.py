"""Lazy, cached inputs shared by all checks: datasets, model, training runs, predictions, embeddings.

Each is computed once per audit. A failure to compute one (say, training diverged into an
exception) is cached too and re-raised for every check that asks, so each of them becomes
``error`` with the same cause while the rest of the audit goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from auditkit.errors import NotApplicable
from auditkit.inputs.data import Dataset, Roles, build_datasets, read_table
from auditkit.spec.schema import SPLIT_NAMES, LoadedSpec

if TYPE_CHECKING:
    from torch import nn

    from auditkit.inputs.model import ModelAdapter
    from auditkit.inputs.training import TrainingInputs, TrainingRun

T = TypeVar("T")


@dataclass
class Predictions:
    """Model outputs on one split, aligned with the split's rows.

    Classification: ``logits``, ``proba`` (softmax) and ``y`` (class codes). Regression
    (``task == "regression"``): ``logits`` is the raw output, ``point`` the point prediction in label
    units (``pred`` too), ``y`` the numeric target; with ``model.output: gaussian`` also ``mean``
    and ``sd`` (from ``[mean, log_var]``), with quantiles ``quantiles`` (one column per level of
    ``levels``; the point is the median level, or the middle column). ``proba`` is empty (n, 0).
    """

    split: str
    logits: np.ndarray
    proba: np.ndarray
    y: np.ndarray | None
    task: str = "classification"
    point: np.ndarray | None = None
    sd: np.ndarray | None = None
    quantiles: np.ndarray | None = None
    levels: tuple[float, ...] = ()

    @property
    def pred(self) -> np.ndarray:
        if self.point is not None:
            return self.point
        return self.proba.argmax(axis=1)


def regression_predictions(split: str, raw: np.ndarray, y: np.ndarray | None, output: Any) -> Predictions:
    """Predictions of a regression model from its raw output and the declared ``model.output``."""
    raw = np.asarray(raw, dtype=np.float64)
    out2 = raw.reshape(len(raw), -1)
    empty = np.zeros((len(raw), 0))
    if output == "gaussian":
        mean, log_var = out2[:, 0], out2[:, 1]
        sd = np.exp(0.5 * np.clip(log_var, -60, 60))
        return Predictions(split, raw, empty, y, task="regression", point=mean, sd=sd)
    if not isinstance(output, str):  # quantiles
        levels = tuple(float(q) for q in output.quantiles)
        q = np.sort(out2, axis=1)  # crossing quantiles are sorted (rearrangement, Chernozhukov et al.)
        mid = levels.index(0.5) if 0.5 in levels else len(levels) // 2
        return Predictions(
            split, raw, empty, y, task="regression", point=q[:, mid], quantiles=q, levels=levels
        )
    return Predictions(split, raw, empty, y, task="regression", point=out2[:, 0])


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Artifacts:
    """Everything a check may read. Built from a spec, or from in-memory objects (tests, the API)."""

    def __init__(
        self,
        loaded: LoadedSpec | None = None,
        *,
        datasets: Mapping[str, Dataset] | None = None,
        model: ModelAdapter | None = None,
        training_runs: list[Any] | None = None,
    ) -> None:
        self.loaded = loaded
        self._cache: dict[str, Any] = {}
        self._lock = threading.RLock()
        # Files the engine adds to the bundle (e.g. the trained model): relative path -> bytes.
        self.outputs: dict[str, bytes] = {}
        if datasets is not None:
            self._cache["datasets"] = dict(datasets)
        if model is not None:
            self._cache["model"] = model
        if training_runs is not None:
            self._cache["training_runs"] = training_runs

    # -- generic memo -------------------------------------------------------------------------
    def cached(self, key: str, factory: Callable[[], T]) -> T:
        """Compute ``factory()`` once per audit under ``key``; failures are cached and re-raised."""
        with self._lock:
            if key not in self._cache:
                try:
                    self._cache[key] = factory()
                except NotApplicable:
                    raise
                except Exception as exc:
                    self._cache[key] = _Failed(exc)
            value = self._cache[key]
        if isinstance(value, _Failed):
            raise value.exc
        return value  # type: ignore[no-any-return]

    @property
    def spec(self) -> Any:
        return self.loaded.spec if self.loaded else None

    # -- data ---------------------------------------------------------------------------------
    def roles(self) -> Roles:
        d = self.spec.data if self.spec else None
        if d is None:
            return Roles()
        return Roles(
            label=d.label,
            features=None if d.features == "auto" else tuple(d.features),
            categorical=tuple(d.categorical) if d.categorical is not None else None,
            id=d.id,
            group=d.group,
            time=d.time,
            sensitive=tuple(d.sensitive),
            exclude=tuple(d.exclude),
            drop_missing_labels=d.drop_missing_labels,
        )

    def datasets(self) -> dict[str, Dataset]:
        return self.cached("datasets", self._load_datasets)

    def _load_datasets(self) -> dict[str, Dataset]:
        if self.loaded is None:
            return {}
        frames = {}
        for name in SPLIT_NAMES:
            rel = getattr(self.spec.data.splits, name)
            if rel is None:
                continue
            path = self.loaded.resolve(rel)
            frame, array = read_table(path, where=f"data.splits.{name}")
            frames[name] = (frame, array, path)
        roles = self.roles()
        if roles.label is None and any(arr is not None for _, arr, _ in frames.values()):
            roles = Roles(**{**roles.__dict__, "label": "y"})
        spec = self.spec
        declared = spec.model.task if spec is not None and spec.model is not None else None
        return build_datasets(frames, roles, task=declared, max_classes=spec.data.max_classes)

    def task(self) -> str:
        """``classification`` or ``regression``: ``model.task`` when declared, else inferred from the
        label (a numeric label with more than ``data.max_classes`` distinct values is regression)."""
        spec = self.spec
        declared = spec.model.task if spec is not None and spec.model is not None else None
        if declared is not None:
            return str(declared)
        datasets = self.datasets()  # a data error surfaces here as the InputError it is
        ds = datasets.get("train") or next(iter(datasets.values()), None)
        return ds.task if ds is not None else "classification"

    def task_inferred(self) -> bool:
        spec = self.spec
        return not (spec is not None and spec.model is not None and spec.model.task is not None)

    def model_output(self) -> Any:
        """The declared ``model.output`` (point, gaussian or a QuantileOutput); point by default."""
        spec = self.spec
        return spec.model.output if spec is not None and spec.model is not None else "point"

    def has_split(self, name: str) -> bool:
        return name in self.datasets()

    def dataset(self, name: str) -> Dataset:
        ds = self.datasets().get(name)
        if ds is None:
            raise NotApplicable(f"no '{name}' split in data.splits")
        return ds

    # -- model --------------------------------------------------------------------------------
    def has_model(self) -> bool:
        return "model" in self._cache or bool(self.spec and self.spec.model)

    def model(self) -> ModelAdapter:
        if not self.has_model():
            raise NotApplicable("no model in the spec")

        return self.cached("model", self._load_model)

    def _load_model(self) -> ModelAdapter:
        """The model of the spec, through the pure loader: the cache reads what it needs (data
        facts, the trained run of a built-in model) and calls downward; data errors propagate."""
        from auditkit.inputs.loading import DataFacts, builtin_adapter, load_model, model_device

        m = self.spec.model
        device = model_device(m)
        if m.builtin:
            run = self.training_runs()[0]
            adapter, files = builtin_adapter(m, run, self.dataset("train").x[:2], device, self.input_kind())
            self.outputs.update({f"model/{name}": blob for name, blob in files.items()})
            return adapter
        mlflow = self.spec.report.mlflow
        return load_model(
            m, self.loaded.base if self.loaded is not None else None, DataFacts.of(self.datasets(), self.input_kind(), self.task(), self.model_output()),
            device, mlflow_tracking_uri=mlflow.tracking_uri if mlflow else None,
        )  # fmt: skip

    # -- training -----------------------------------------------------------------------------
    # Training is a function of a TrainingInputs the cache builds here and passes down; the cache
    # keeps the inputs and every group of runs under its own key.
    def training_inputs(self) -> TrainingInputs:
        """What the training runs read: the training and model specs, the spec's folder, task,
        ``model.output``, the train split's feature layout and the prepared rows (cached)."""
        return self.cached("training:data", lambda: self._training_inputs(with_rows=True))

    def _training_inputs(self, *, with_rows: bool) -> TrainingInputs:
        from auditkit.inputs.training import TrainingInputs, feature_layout, prepare_data
        from auditkit.spec.schema import TrainingSpec

        spec = self.spec
        train = self.dataset("train")
        task, output = self.task(), self.model_output()
        rows = None
        if with_rows:
            rows = prepare_data(
                train, self.datasets().get("validation"), task=task, output=output,
                training=spec.training, seed=spec.seed,
            )  # fmt: skip
        numeric_idx, categorical = feature_layout(train)
        return TrainingInputs(
            training=spec.training or TrainingSpec(), model=spec.model,
            base=self.loaded.base if self.loaded is not None else None, task=task, output=output,
            numeric_idx=numeric_idx, categorical=categorical, data=rows,
        )  # fmt: skip

    def training_runs(self) -> list[TrainingRun]:
        if "training_runs" not in self._cache and not (self.spec and self.spec.training):
            raise NotApplicable("no training section in the spec")

        def train() -> list[TrainingRun]:
            from auditkit.inputs.training import require_seeds, train_all

            require_seeds(self.spec.training)  # before the data: an empty seed list is named first
            return train_all(self.training_inputs())

        return self.cached("training_runs", train)

    def compare_runs(self) -> dict[str, list[TrainingRun]]:
        """Each ``training.compare`` optimizer × seeds, keyed ``compare:<i>`` (trained on first ask)."""

        def train() -> dict[str, list[TrainingRun]]:
            from auditkit.inputs.training import train_compare

            return train_compare(self.training_inputs())

        return self.cached("training_runs:compare", train)

    def rerun(self) -> TrainingRun:
        """The main configuration's first seed trained again (same-seed reproducibility)."""

        def train() -> TrainingRun:
            from auditkit.inputs.training import rerun_first_seed

            return rerun_first_seed(self.training_inputs())

        return self.cached("training_runs:rerun", train)

    def fit_rows(self, x: np.ndarray, y: np.ndarray, *, seed: int, n_classes: int) -> nn.Module:
        """A fresh module of the audited architecture trained on these rows (cross-fitting; not cached)."""
        from auditkit.inputs.training import fit_rows

        return fit_rows(self._training_inputs(with_rows=False), x, y, seed=seed, n_classes=n_classes)

    def predictions(self, split: str) -> Predictions:
        def compute() -> Predictions:
            ds = self.dataset(split)
            model = self.model()
            logits = model.logits(ds.x)
            if self.task() == "regression":
                return regression_predictions(split, logits, ds.y, self.model_output())
            proba = _softmax(logits)
            return Predictions(split=split, logits=logits, proba=proba, y=ds.y)

        return self.cached(f"predictions:{split}", compute)

    def embeddings(self, split: str) -> np.ndarray:
        return self.cached(f"embeddings:{split}", lambda: self.model().embeddings(self.dataset(split).x))

    # -- requirements ---------------------------------------------------------------------------
    def satisfies(self, requirement: str) -> tuple[bool, str]:
        """Whether one ``requires`` entry (alternatives "a|b") is met; the reason when not."""
        reasons = []
        for alt in requirement.split("|"):
            ok, why = self._satisfies_one(alt)
            if ok:
                return True, ""
            reasons.append(why)
        return False, " or ".join(reasons)

    def _satisfies_one(self, req: str) -> tuple[bool, str]:
        spec = self.spec
        datasets = self.datasets()
        roles = self.roles()
        if req in SPLIT_NAMES:
            return req in datasets, f"needs the '{req}' split (data.splits.{req})"
        if req == "model":
            return self.has_model(), "needs a model (model section)"
        if req == "training":
            ok = "training_runs" in self._cache or bool(spec and spec.training)
            return ok, "needs a training section"
        if req == "training.compare":
            ok = bool(spec and spec.training and spec.training.compare)
            return ok, "needs training.compare"
        if req == "card":
            return bool(spec and spec.card), "needs a card section"
        if req == "deployment":
            return bool(spec and spec.deployment), "needs a deployment section (deployment.artifacts)"
        if req == "expectations":
            return bool(spec and spec.data.expectations), "needs data.expectations"
        if req in ("label", "id", "group", "time"):
            col = getattr(roles, req) or (
                "y" if req == "label" and any(d.array is not None for d in datasets.values()) else None
            )
            return bool(col), f"needs data.{req}"
        if req == "sensitive":
            return bool(roles.sensitive), "needs data.sensitive"
        if req == "classification":
            return (
                self.task() == "classification",
                "applies to classification only (model.task is regression)",
            )
        if req == "regression":
            return self.task() == "regression", "applies to regression only"
        if req in ("tabular", "image"):
            return self.input_kind() == req, f"applies to {req} inputs only"
        return False, f"unknown requirement {req!r}"

    def input_kind(self) -> str:
        # An explicit model.input.kind wins; otherwise the data decide (an NPZ of images is "image").
        if self.spec and self.spec.model and "kind" in self.spec.model.input.model_fields_set:
            return str(self.spec.model.input.kind)
        if "model" in self._cache and not isinstance(self._cache["model"], _Failed):
            return str(self._cache["model"].input_kind)
        ds = next(iter(self.datasets().values()), None)
        return ds.kind if ds is not None else "tabular"

    # -- subject ------------------------------------------------------------------------------
    def subject(self) -> dict[str, Any]:
        """Fingerprints of the data and model, as they stand now (model only if already loaded)."""
        out: dict[str, Any] = {"datasets": {n: d.fingerprint() for n, d in self.datasets().items()}}
        if self.has_model() or self.roles().label:
            out["task"] = self.task()
            out["task_inferred"] = self.task_inferred()
            if out["task"] == "regression":
                output = self.model_output()
                out["output"] = output if isinstance(output, str) else output.model_dump(mode="json")
        model = self._cache.get("model")
        if model is not None and not isinstance(model, _Failed):
            out["model"] = dict(model.source)
        elif self.spec and self.spec.model:
            out["model"] = {"format": self.spec.model.source, "loaded": False}
        if self.spec and self.spec.deployment and self.loaded:
            out["deployment"] = [self._artifact_fingerprint(a) for a in self.spec.deployment.artifacts]
        return out

    def _artifact_fingerprint(self, art: Any) -> dict[str, Any]:
        """A deployment artifact as the subject names it: its file's sha256, or what it is derived by."""
        from auditkit.inputs.data import file_sha256

        rel = art.onnx or art.torchscript
        if rel is None:
            return {"name": art.name, "format": art.source, "derived": art.quantize or art.dtype}
        path = self.loaded.resolve(rel)  # type: ignore[union-attr]
        sha = file_sha256(path) if path.is_file() else None
        return {"name": art.name, "format": art.source, "path": rel, "sha256": sha}

    def input_files(self) -> list[tuple[str, Path]]:
        """(role, path) of every input file named in the spec, for the manifest."""
        if self.loaded is None:
            return []
        spec = self.spec
        files: list[tuple[str, Path]] = []
        if self.loaded.path:
            files.append(("spec", self.loaded.path))
        for name in SPLIT_NAMES:
            rel = getattr(spec.data.splits, name)
            if rel:
                files.append((f"data.splits.{name}", self.loaded.resolve(rel)))
        if spec.data.expectations:
            files.append(("data.expectations", self.loaded.resolve(spec.data.expectations)))
        if spec.model:
            for key in ("torchscript", "exported", "weights"):
                rel = getattr(spec.model, key)
                if rel:
                    files.append((f"model.{key}", self.loaded.resolve(rel)))
        if spec.gate.baseline:
            files.append(("gate.baseline", self.loaded.resolve(spec.gate.baseline)))
        for i, art in enumerate(spec.deployment.artifacts if spec.deployment else []):
            rel = art.onnx or art.torchscript
            if rel:
                path = self.loaded.resolve(rel)
                files.append((f"deployment.artifacts.{i}.{art.source}", path))
                # ONNX weights saved as external data live beside the graph: they are the model too.
                sidecar = path.with_name(path.name + ".data")
                if art.onnx and sidecar.is_file():
                    files.append((f"deployment.artifacts.{i}.onnx_data", sidecar))
        return files


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))
