"""Where model work runs: this process, a local pool of worker processes, or a Ray cluster.

An audit's expensive work (training runs, attack and evaluation shards) is a list of independent
tasks. An ``Executor`` maps a module-level function over them::

    results = executor.map(fn, items, seeds=seeds, shared=payload)   # fn(shared, item, seed)

- Results come back in item order, whatever order the tasks finished in, and each task's seed is
  given by the caller (``RunContext.map`` derives it from the run seed, the check id and the shard
  index): a result never depends on how many workers ran it.
- ``shared`` (the model, the data) travels to the workers once per ``map``: local workers read one
  pickle from shared memory (``/dev/shm``) and keep it; Ray puts it in the object store once.
- A task whose worker process dies (killed, out of memory) is retried once, alone, so the task
  that kills its worker is known; if it dies again ``map`` raises ``WorkerLost`` with the reason
  (the check is recorded ``error``, the other checks run on). An exception the task raises is
  re-raised as is (no retry: it would raise again).
- KeyboardInterrupt / SIGTERM in the caller stops every worker before it propagates.

``workers: 1`` runs tasks in the audit's own process, one after another (today's behaviour).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import os
import pickle
import socket
import sys
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from auditkit.errors import InputError

log = logging.getLogger("auditkit.compute")

KINDS = ("local", "ray")
Task = Callable[[Any, Any, int], Any]  # fn(shared, item, seed) -> result, a module-level function


class WorkerLost(RuntimeError):
    """A task's worker process died twice (killed, or out of memory)."""


@dataclass(frozen=True)
class ComputeConfig:
    """``engine.compute`` of the spec, with the command line's overrides applied."""

    kind: str = "local"
    workers: int | None = None  # None: auto
    address: str | None = None  # Ray: a cluster address ("auto", "host:port", "ray://host:port")
    num_cpus_per_task: float = 1.0
    num_gpus_per_task: float = 0.0
    runtime_env: dict[str, Any] | None = None


def task_threads() -> int:
    """Threads each task computes with: the thread policy of ``auditkit.toolkit.threads``.

    The same count whatever the number of workers, so that a task's floating-point result (torch
    splits reductions by thread) does not depend on how many ran beside it.
    """
    from auditkit.toolkit.threads import default_threads

    return default_threads()


def auto_workers() -> int:
    """As many workers as fit the cores at ``task_threads()`` threads each (at least 1)."""
    return max(1, (os.cpu_count() or 1) // task_threads())


def gpu_count() -> int:
    """CUDA devices visible here, without importing torch when it is not loaded yet."""
    if "torch" not in sys.modules:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and visible.strip() in ("", "-1"):
            return 0
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0


class Executor(Protocol):
    kind: str
    workers: int

    def map(
        self, fn: Task, items: Sequence[Any], *, seeds: Sequence[int], shared: Any = None
    ) -> list[Any]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def _check_seeds(items: Sequence[Any], seeds: Sequence[int]) -> None:
    if len(items) != len(seeds):
        raise ValueError(f"map: {len(items)} items but {len(seeds)} seeds")


class InlineExecutor:
    """Every task in this process, in order (``workers: 1``; also what checks get outside an audit)."""

    kind = "local"
    workers = 1

    def map(self, fn: Task, items: Sequence[Any], *, seeds: Sequence[int], shared: Any = None) -> list[Any]:
        _check_seeds(items, seeds)
        return [fn(shared, item, seed) for item, seed in zip(items, seeds, strict=True)]

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "workers": 1, "devices": _devices_here(), "address": None}

    def close(self) -> None:
        pass


def _devices_here() -> list[str]:
    n = gpu_count()
    return [f"cuda:{i}" for i in range(n)] if n else ["cpu"]


# --------------------------------------------------------------------------------------------------
# Local process pool (spawn)
# --------------------------------------------------------------------------------------------------

# In a worker: the shared payloads it has loaded, by token (a few, for maps that run side by side).
_WORKER_SHARED: OrderedDict[str, Any] = OrderedDict()


class _PayloadUnavailable(Exception):
    """The worker could not unpickle the shared payload (e.g. a model class it cannot import)."""


def _worker_init(threads: int, gpu_slots: list[str] | None, counter: Any) -> None:
    # Before torch or OpenMP load: the thread policy, and this worker's GPU (round robin).
    os.environ["AUDITKIT_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if gpu_slots:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_slots[index % len(gpu_slots)]


def _load_shared(token: str, path: str) -> Any:
    if token in _WORKER_SHARED:
        _WORKER_SHARED.move_to_end(token)
        return _WORKER_SHARED[token]
    try:
        with open(path, "rb") as fh:
            value = pickle.load(fh)
    except (ImportError, AttributeError, pickle.UnpicklingError) as exc:
        raise _PayloadUnavailable(f"{type(exc).__name__}: {exc}") from None
    _WORKER_SHARED[token] = value
    while len(_WORKER_SHARED) > 4:
        _WORKER_SHARED.popitem(last=False)
    return value


def _run_pooled(fn: Task, token: str | None, path: str | None, item: Any, seed: int) -> Any:
    shared = _load_shared(token, path) if token and path else None
    if "torch" in sys.modules:  # libraries that set their own count (faiss) change torch's
        sys.modules["torch"].set_num_threads(int(os.environ.get("AUDITKIT_THREADS", "1")))
    return fn(shared, item, seed)


def _shm_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


# Pools outlive one audit (a test session, a notebook runs many): worker start-up (a fresh
# interpreter importing torch, about 2 s) is paid once per process. Keyed by (workers, gpus).
_POOLS: dict[tuple[int, tuple[str, ...]], Any] = {}


def _new_pool(workers: int, gpu_slots: Sequence[str]) -> Any:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    counter = ctx.Value("i", 0)
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(task_threads(), list(gpu_slots) or None, counter),
    )


def _kill_pool(pool: Any) -> None:
    """Stop a pool now: cancel what is queued, terminate its processes (a task may run for minutes)."""
    processes = list(getattr(pool, "_processes", {}).values() or [])
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def _drop_pool(key: tuple[int, tuple[str, ...]]) -> None:
    pool = _POOLS.pop(key, None)
    if pool is not None:
        _kill_pool(pool)


@atexit.register
def _shutdown_pools() -> None:
    for key in list(_POOLS):
        _drop_pool(key)


class LocalPool:
    """A pool of ``workers`` spawned processes on this machine; no server."""

    kind = "local"

    def __init__(self, workers: int, *, num_gpus_per_task: float = 0.0) -> None:
        self.workers = workers
        n_gpu = gpu_count()
        self.gpu_slots: tuple[str, ...] = tuple(str(i) for i in range(n_gpu))
        self.note: str | None = None
        if num_gpus_per_task > 0 and not n_gpu:
            self.note = "num_gpus_per_task is set but no GPU is visible: tasks run on CPU"
            log.warning(self.note)

    def _key(self, workers: int) -> tuple[int, tuple[str, ...]]:
        return (workers, self.gpu_slots)

    def _pool(self, workers: int) -> Any:
        key = self._key(workers)
        if key not in _POOLS:
            _POOLS[key] = _new_pool(workers, self.gpu_slots)
        return _POOLS[key]

    def describe(self) -> dict[str, Any]:
        devices = [f"cuda:{g}" for g in self.gpu_slots] or ["cpu"]
        out: dict[str, Any] = {"kind": "local", "workers": self.workers, "devices": devices, "address": None}
        if self.note:
            out["note"] = self.note
        return out

    def close(self) -> None:
        pass  # pools are reused by the next audit in this process; atexit stops them

    def map(self, fn: Task, items: Sequence[Any], *, seeds: Sequence[int], shared: Any = None) -> list[Any]:
        _check_seeds(items, seeds)
        if len(items) <= 1 or self.workers <= 1:
            return InlineExecutor().map(fn, items, seeds=seeds, shared=shared)
        token = path = None
        if shared is not None:
            try:
                blob = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # a lambda inside the model, an open handle: run here instead
                log.warning(
                    "compute: the shared inputs cannot be pickled (%s); tasks run in this process", exc
                )
                return InlineExecutor().map(fn, items, seeds=seeds, shared=shared)
            token = uuid.uuid4().hex
            fd, path = tempfile.mkstemp(prefix="auditkit-shared-", suffix=".pkl", dir=_shm_dir())
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            del blob
        try:
            return self._map(fn, list(items), list(seeds), token, path, shared)
        except BaseException:
            # An interrupt (SIGINT, SIGTERM raised as an exception) or an error: stop every worker
            # now rather than letting queued tasks run on.
            _drop_pool(self._key(self.workers))
            _drop_pool(self._key(1))
            raise
        finally:
            if path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _map(
        self, fn: Task, items: list[Any], seeds: list[int], token: str | None, path: str | None, shared: Any
    ) -> list[Any]:
        width = min(self.workers, len(items))
        done, lost = self._round(width, fn, items, seeds, range(len(items)), token, path)
        if done is None:  # the workers cannot load the payload: run every task here
            return InlineExecutor().map(fn, items, seeds=seeds, shared=shared)
        for i in lost:  # retried alone: only this task can have killed the worker this time
            again, still_lost = self._round(1, fn, items, seeds, [i], token, path)
            if still_lost or again is None:
                raise WorkerLost(
                    f"task {i} of {len(items)} ({getattr(fn, '__name__', fn)}): its worker process died "
                    "twice (killed, or out of memory)"
                )
            done.update(again)
        return [done[i] for i in range(len(items))]

    def _round(
        self,
        width: int,
        fn: Task,
        items: list[Any],
        seeds: list[int],
        indices: Sequence[int],
        token: str | None,
        path: str | None,
    ) -> tuple[dict[int, Any] | None, list[int]]:
        """Run ``indices`` on a pool of ``width``; return their results and the tasks whose worker died."""
        from concurrent.futures.process import BrokenProcessPool

        pool = self._pool(width)
        futures = {i: pool.submit(_run_pooled, fn, token, path, items[i], seeds[i]) for i in indices}
        done: dict[int, Any] = {}
        lost: list[int] = []
        try:
            for i, fut in futures.items():
                try:
                    done[i] = fut.result()
                except BrokenProcessPool:
                    lost.append(i)
                except _PayloadUnavailable as exc:
                    log.warning("compute: workers cannot load the shared inputs (%s); tasks run here", exc)
                    return None, []
        except BaseException:
            for fut in futures.values():
                fut.cancel()
            raise
        if lost:
            _drop_pool(
                self._key(width)
            )  # a broken pool takes no more work: the next round starts a fresh one
        return done, lost


# --------------------------------------------------------------------------------------------------
# Ray
# --------------------------------------------------------------------------------------------------


def _ray_shared(box: list[Any]) -> Any:
    """The map's payload in this Ray worker: fetched and deserialised once per worker (a model's
    tensors are unpickled, not zero-copy), then kept by its object id for the map's other tasks."""
    ref = box[0]
    if ref is None:
        return None
    key = "ray:" + ref.hex()
    if key in _WORKER_SHARED:
        _WORKER_SHARED.move_to_end(key)
        return _WORKER_SHARED[key]
    value = sys.modules["ray"].get(ref)  # a Ray worker has ray loaded (no import here: ray is an extra)
    _WORKER_SHARED[key] = value
    while len(_WORKER_SHARED) > 4:
        _WORKER_SHARED.popitem(last=False)
    return value


def _ray_task(fn: Task, box: list[Any], item: Any, seed: int, threads: int) -> Any:
    os.environ["AUDITKIT_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return fn(_ray_shared(box), item, seed)


def _reachable(address: str, timeout: float = 5.0) -> str | None:
    """None if ``host:port`` (or ``ray://host:port``) accepts a TCP connection, else why not."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return f"not host:port (got {address!r})"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


class RayExecutor:
    """Tasks as Ray remote functions on a cluster (``address``) or a local one started here."""

    kind = "ray"

    def __init__(self, cfg: ComputeConfig) -> None:
        try:
            import ray
        except ImportError:
            raise InputError("engine.compute.kind ray needs Ray: pip install 'auditkit[ray]'") from None
        self._ray = ray
        self.cfg = cfg
        self.address = cfg.address or os.environ.get("RAY_ADDRESS") or None
        self._owns = False
        if self.address and self.address != "auto":
            why = _reachable(self.address)
            if why is not None:
                raise InputError(f"engine.compute.address {self.address}: Ray cluster unreachable ({why})")
        if not ray.is_initialized():
            self._connect()
        resources = ray.cluster_resources()
        cpus = float(resources.get("CPU", 1.0))
        self.gpus = int(resources.get("GPU", 0))
        per_task = max(cfg.num_cpus_per_task, 1e-3)
        self.workers = cfg.workers or max(1, int(cpus // per_task))
        self.note: str | None = None
        if cfg.num_gpus_per_task > 0 and not self.gpus:
            # A task asking for a GPU would wait for ever on a cluster without one.
            self.note = "num_gpus_per_task is set but the cluster has no GPU: tasks run on CPU"
            log.warning(self.note)

    def _connect(self) -> None:
        ray = self._ray
        address = self.address
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if self.cfg.runtime_env:
            kwargs["runtime_env"] = self.cfg.runtime_env
        if address:
            kwargs["address"] = address
        else:  # a local cluster: as many CPUs as workers were asked for, else all
            if self.cfg.workers:
                kwargs["num_cpus"] = int(self.cfg.workers * max(self.cfg.num_cpus_per_task, 1))
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"engine.compute: cannot start or reach Ray ({first})") from None
        self._owns = True

    def describe(self) -> dict[str, Any]:
        devices = (
            [f"gpu:{i}" for i in range(self.gpus)]
            if self.cfg.num_gpus_per_task > 0 and self.gpus
            else ["cpu"]
        )
        out: dict[str, Any] = {
            "kind": "ray",
            "workers": self.workers,
            "devices": devices,
            "address": self.address if self.address else "local",
        }
        if self.note:
            out["note"] = self.note
        return out

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False

    def map(self, fn: Task, items: Sequence[Any], *, seeds: Sequence[int], shared: Any = None) -> list[Any]:
        _check_seeds(items, seeds)
        if not items:
            return []
        ray = self._ray
        rex = ray.exceptions  # imported with ray (an import here would be unguarded: ray is an extra)

        gpus = self.cfg.num_gpus_per_task if self.gpus else 0.0
        options: dict[str, Any] = {}
        if not self.address:
            # A local cluster: tasks see this process's sys.path, as spawned local workers do, so a
            # model class from a module on it (a test helper, a notebook's folder) unpickles there.
            env = dict(self.cfg.runtime_env or {})
            env_vars = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **env.get("env_vars", {})}
            options["runtime_env"] = {**env, "env_vars": env_vars}
        remote = ray.remote(_ray_task).options(
            num_cpus=self.cfg.num_cpus_per_task,
            num_gpus=gpus,
            max_retries=1,
            retry_exceptions=False,
            **options,
        )
        # Once in the object store; passed inside a list, so that Ray does not resolve (deserialise) it
        # for every task: each worker fetches it once (_ray_shared).
        box = [ray.put(shared) if shared is not None else None]
        threads = task_threads()
        refs = [remote.remote(fn, box, item, seed, threads) for item, seed in zip(items, seeds, strict=True)]
        out: list[Any] = []
        try:
            for i, ref in enumerate(refs):
                try:
                    out.append(ray.get(ref))
                except rex.RayTaskError as exc:
                    cause = exc.as_instanceof_cause()
                    raise cause from None
                except (rex.WorkerCrashedError, rex.OutOfMemoryError, rex.NodeDiedError) as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise WorkerLost(
                        f"task {i} of {len(items)} ({getattr(fn, '__name__', fn)}): its Ray worker died "
                        f"twice ({type(exc).__name__}: {first[:300]})"
                    ) from None
        except BaseException:
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return out


# --------------------------------------------------------------------------------------------------
# Selection and the audit's current executor
# --------------------------------------------------------------------------------------------------


def config_from(spec_compute: Any, *, kind: str | None = None, workers: int | None = None,
                address: str | None = None) -> ComputeConfig:  # fmt: skip
    """The spec's ``engine.compute`` (a ComputeSpec, or None) with command-line overrides."""
    base = ComputeConfig()
    if spec_compute is not None:
        w = spec_compute.workers
        base = ComputeConfig(
            kind=spec_compute.kind,
            workers=None if w == "auto" else int(w),
            address=spec_compute.address,
            num_cpus_per_task=float(spec_compute.num_cpus_per_task),
            num_gpus_per_task=float(spec_compute.num_gpus_per_task),
            runtime_env=dict(spec_compute.runtime_env) if spec_compute.runtime_env else None,
        )
    return ComputeConfig(
        kind=kind or base.kind,
        workers=workers if workers is not None else base.workers,
        address=address if address is not None else base.address,
        num_cpus_per_task=base.num_cpus_per_task,
        num_gpus_per_task=base.num_gpus_per_task,
        runtime_env=base.runtime_env,
    )


def make_executor(cfg: ComputeConfig) -> Executor:
    """Start the engine ``cfg`` names (Ray: connect now, so an unreachable cluster is exit 2 here)."""
    if cfg.kind not in KINDS:
        raise InputError(f"engine.compute.kind: {cfg.kind!r} is not one of {', '.join(KINDS)}")
    if cfg.kind == "ray":
        return RayExecutor(cfg)
    workers = cfg.workers or auto_workers()
    if workers <= 1:
        return InlineExecutor()
    return LocalPool(workers, num_gpus_per_task=cfg.num_gpus_per_task)


_CURRENT: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("auditkit_executor", default=None)


def current() -> Executor:
    """The running audit's executor; outside an audit, tasks run in this process."""
    return _CURRENT.get() or InlineExecutor()


@contextlib.contextmanager
def use(executor: Executor) -> Iterator[Executor]:
    """Make ``executor`` the current one for the duration (an audit's run)."""
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)
