"""RunContext: what one check sees. One per check run; checks are pure functions of it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from auditkit.engine.check import CheckInfo, jsonable
from auditkit.toolkit.seeds import derive_seed as derive_seed  # its home: the toolkit (checks use it)

if TYPE_CHECKING:
    import torch.nn as nn

    from auditkit.inputs.artifacts import Artifacts, Predictions, Roles
    from auditkit.inputs.data import Dataset
    from auditkit.inputs.deployment import Candidate
    from auditkit.inputs.model import ModelAdapter
    from auditkit.inputs.training import TrainingRun

T = TypeVar("T")
R = TypeVar("R")


class RunContext:
    """The inputs of one check run.

    ``dataset(name)``, ``model()``, ``training_runs()``, ``predictions(split)`` and
    ``embeddings(split)`` are computed once per audit and shared; asking for one that the audit
    lacks raises ``NotApplicable``. ``seed``/``rng()`` are derived from the run seed and the check
    id. ``write()`` stores a file in the bundle (under ``artifacts/<check id>/``) and records it.
    """

    def __init__(
        self,
        info: CheckInfo,
        artifacts: Artifacts,
        *,
        run_seed: int = 0,
        params: dict[str, Any] | None = None,
        workdir: Path | None = None,
        device: str = "auto",
    ) -> None:
        self.info = info
        self._artifacts = artifacts
        self.seed = derive_seed(run_seed, info.id)
        self.run_seed = run_seed
        self.params = dict(params or {})
        self._workdir = workdir
        self._device = device
        self.log = logging.getLogger(f"auditkit.engine.check.{info.id}")
        self.written: list[str] = []

    @property
    def spec(self) -> Any:
        """The validated AuditSpec (read only), or None for in-memory audits."""
        return self._artifacts.spec

    @property
    def device(self) -> str:
        spec = self.spec
        if spec is not None and spec.model is not None:
            return str(spec.model.device)
        return self._device

    @property
    def model_input(self) -> Any:
        """The spec's ``model.input`` (kind, range, immutable features), or its defaults."""
        from auditkit.spec.schema import InputSpec

        spec = self.spec
        if spec is not None and spec.model is not None:
            declared = spec.model.input
            if "kind" in declared.model_fields_set:
                return declared
            return declared.model_copy(update={"kind": self._artifacts.input_kind()})
        return InputSpec.model_validate({"kind": self._artifacts.input_kind()})

    @property
    def task(self) -> str:
        """``classification`` or ``regression`` (``model.task``, or inferred from the label)."""
        return self._artifacts.task()

    @property
    def model_output(self) -> Any:
        """The declared ``model.output``: ``point``, ``gaussian`` or an object with ``quantiles``."""
        return self._artifacts.model_output()

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def has(self, requirement: str) -> bool:
        return self._artifacts.satisfies(requirement)[0]

    def dataset(self, name: str) -> Dataset:
        return self._artifacts.dataset(name)

    def splits(self) -> list[str]:
        """Names of the splits this audit has, in canonical order."""
        return list(self._artifacts.datasets())

    def model(self) -> ModelAdapter:
        return self._artifacts.model()

    def training_runs(self, *, include_compare: bool = False) -> list[TrainingRun]:
        """The main configuration's runs, one per ``training.seeds`` (the first is the audited
        model for a built-in architecture); with ``include_compare`` also every
        ``training.compare`` optimizer × seed (trained once per audit, shared by the checks)."""
        runs = list(self._artifacts.training_runs())
        if include_compare:
            runs += [r for group in self.compare_runs().values() for r in group]
        return runs

    def compare_runs(self) -> dict[str, list[TrainingRun]]:
        """Each ``training.compare`` optimizer's runs over the seeds, keyed ``compare:<i>``."""
        return self._artifacts.compare_runs()

    def rerun(self) -> TrainingRun:
        """The main configuration's first seed trained a second time (same-seed reproducibility)."""
        return self._artifacts.rerun()

    def fit_rows(self, x: np.ndarray, y: np.ndarray, *, seed: int, n_classes: int) -> nn.Module:
        """A fresh module of the audited architecture trained on these rows (for cross-fitting)."""
        return self._artifacts.fit_rows(x, y, seed=seed, n_classes=n_classes)

    def roles(self) -> Roles:
        """The column roles the spec declares (label, features, id, group, time, sensitive...)."""
        return self._artifacts.roles()

    def resolve_path(self, rel: str) -> Path | None:
        """A path the spec names, resolved against the spec's folder (None: no folder to resolve in)."""
        loaded = self._artifacts.loaded
        if loaded is not None:
            return Path(loaded.resolve(rel))
        path = Path(rel)
        return path if path.is_absolute() else None

    def deployment_candidates(self) -> list[Candidate]:
        """The audited model (first) and each ``deployment.artifacts`` entry, loaded once per audit."""
        from auditkit.inputs.deployment import candidates

        return candidates(self._artifacts)

    def sample_shape(self) -> tuple[int, ...]:
        """The model's input shape of one row (without the batch dimension)."""
        from auditkit.inputs.deployment import per_sample_shape

        return per_sample_shape(self._artifacts, self.model())

    def seed_for(self, key: str) -> int:
        """A seed derived from the run seed and ``key`` (e.g. ``f"{check id}:{shard}"``)."""
        return derive_seed(self.run_seed, key)

    def map(self, fn: Callable[[Any, Any, int], R], items: Sequence[Any], *, shared: Any = None) -> list[R]:
        """``fn(shared, item, seed)`` for every item on the audit's compute engine (docs/compute.md).

        Results come back in item order; item ``i``'s seed is ``seed_for(f"{check id}:{i}")``, so
        they do not depend on how many workers ran them. ``fn`` must be a module-level function;
        ``shared`` (the model, the data) travels to each worker once. A worker that dies is retried
        once, then the check is recorded ``error``.
        """
        from auditkit.engine.compute import current

        items = list(items)
        seeds = [self.seed_for(f"{self.info.id}:{i}") for i in range(len(items))]
        return current().map(fn, items, seeds=seeds, shared=shared)

    def predictions(self, split: str) -> Predictions:
        return self._artifacts.predictions(split)

    def embeddings(self, split: str) -> np.ndarray:
        return self._artifacts.embeddings(split)

    def cached(self, key: str, factory: Callable[[], T]) -> T:
        """Share an expensive intermediate result between checks (keyed globally)."""
        return self._artifacts.cached(key, factory)

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            import tempfile

            self._workdir = Path(tempfile.mkdtemp(prefix=f"auditkit-{self.info.id}-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir

    def write(self, name: str, content: bytes | str | dict[str, Any] | list[Any]) -> Path:
        """Write a file into this check's folder of the bundle; JSON for dicts and lists."""
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"artefact name {name!r} must be a plain file name")
        path = self.workdir / name
        if isinstance(content, (dict, list)):
            path.write_text(json.dumps(jsonable(content), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        self.written.append(name)
        return path
