"""Training runs as compute tasks: every (optimizer, seed) of a configuration trained in parallel.

The spec and the datasets go to each worker once (``shared``); a worker rebuilds a private
``Artifacts`` from them once and trains the runs it is given with the seeds the spec lists, so each
run (and the audited model, the main configuration's first seed) is the one a serial audit trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditkit.inputs.artifacts import Artifacts
    from auditkit.inputs.training import TrainingRun

# In a worker: the Artifacts rebuilt from the shared payload, keyed by the payload's identity (a
# worker keeps the payload of a map for all of that map's tasks).
_WORKER_ARTIFACTS: dict[int, Any] = {}


def _train_task(shared: Any, item: tuple[dict[str, Any], int, str], seed: int) -> TrainingRun:
    from auditkit.inputs.artifacts import Artifacts
    from auditkit.inputs.training import train_one

    if isinstance(shared, Artifacts):  # in the audit's own process (workers: 1)
        arts = shared
    else:
        key = id(shared)
        if key not in _WORKER_ARTIFACTS:
            _WORKER_ARTIFACTS.clear()
            loaded, datasets = shared
            _WORKER_ARTIFACTS[key] = Artifacts(loaded, datasets=datasets)
        arts = _WORKER_ARTIFACTS[key]
    opt_spec, run_seed, config = item
    return train_one(arts, opt_spec, run_seed, config=config)


def train_many(artifacts: Artifacts, jobs: list[tuple[dict[str, Any], int, str]]) -> list[TrainingRun]:
    """``train_one`` for every (optimizer spec, seed, config) job on the audit's compute engine, in order."""
    from auditkit.engine.compute import current

    executor = current()
    if executor.workers <= 1 or len(jobs) <= 1 or artifacts.loaded is None:
        return [_train_task(artifacts, job, 0) for job in jobs]
    shared = (artifacts.loaded, artifacts.datasets())
    # The task seed is unused: each run keeps the seed the spec gives it (training.seeds).
    return executor.map(_train_task, jobs, seeds=[0] * len(jobs), shared=shared)
