"""Training runs as compute tasks: every (optimizer, seed) of a configuration trained in parallel.

The ``TrainingInputs`` (specs and the prepared rows as arrays, no DataFrames) go to each worker
once (``shared``); a worker trains the runs it is given with the seeds the spec lists, so each run
(and the audited model, the main configuration's first seed) is the one a serial audit trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditkit.inputs.training import TrainingInputs, TrainingRun


def _train_task(shared: TrainingInputs, item: tuple[dict[str, Any], int, str], seed: int) -> TrainingRun:
    from auditkit.inputs.training import train_one

    opt_spec, run_seed, config = item
    return train_one(shared, opt_spec, run_seed, config=config)


def train_many(inputs: TrainingInputs, jobs: list[tuple[dict[str, Any], int, str]]) -> list[TrainingRun]:
    """``train_one`` for every (optimizer spec, seed, config) job on the audit's compute engine, in order."""
    from auditkit.engine.compute import current

    executor = current()
    if executor.workers <= 1 or len(jobs) <= 1:
        return [_train_task(inputs, job, 0) for job in jobs]
    # The task seed is unused: each run keeps the seed the spec gives it (training.seeds).
    return executor.map(_train_task, jobs, seeds=[0] * len(jobs), shared=inputs)
