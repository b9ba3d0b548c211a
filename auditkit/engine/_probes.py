"""Tasks for testing an executor (importable by spawned and Ray workers, unlike a test module)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np


def noisy_sum(shared: Any, item: int, seed: int) -> float:
    """A result that depends on the shared payload, the item and the task's seed."""
    rng = np.random.default_rng(seed)
    base = np.asarray(shared if shared is not None else [0.0], dtype=float)
    return float(base.sum() * item + rng.normal(size=64).sum())


def pid_of(shared: Any, item: int, seed: int) -> int:
    return os.getpid()


def die_once(shared: Any, item: tuple[str, int], seed: int) -> int:
    """Kill the worker the first time (a marker file remembers), then return the value."""
    marker, value = item
    if marker and not Path(marker).exists():
        Path(marker).write_text("died once\n")
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def always_die(shared: Any, item: int, seed: int) -> int:
    if item < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def raise_value_error(shared: Any, item: int, seed: int) -> int:
    if item == 1:
        raise ValueError("task 1 fails on purpose")
    return item


def sleep_then(shared: Any, item: float, seed: int) -> float:
    import time

    time.sleep(item)
    return item


def payload_identity(shared: Any, item: int, seed: int) -> tuple[int, int]:
    """(worker pid, id of the payload object it computed with): one payload object per worker per map."""
    return os.getpid(), id(shared)
