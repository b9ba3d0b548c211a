"""Deployment candidates: what a team ships instead of the audited module, behind one interface.

Each entry of ``deployment.artifacts`` becomes a :class:`Candidate` with a numpy-in / numpy-out
``forward`` (float32 rows in the audited model's input shape → float32 logits), its signature, its
file size and stored-value count, and — when it is a differentiable torch module — a float-in /
float-out ``module`` that attacks can take gradients through. Sources:

* ``onnx``: onnxruntime's CPU provider (the ``auditkit[onnx]`` extra), imported only here;
* ``torchscript``: ``torch.jit.load`` on the audited model's device;
* ``quantize: dynamic_int8``: ``torch.ao.quantization.quantize_dynamic`` of the audited module's
  ``nn.Linear`` layers (qint8 weights, CPU), derived here;
* ``dtype: bfloat16 | float16``: the audited module cast to that dtype (inputs cast on the way in,
  logits back to float32); float16 needs CUDA and is unavailable, with the reason, without it.

An artifact whose input/output signature differs from the audited model's is an input error
(exit 2) showing both signatures. Timing and memory helpers for AK-DEPLOY-002 live here too.
torch is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import copy
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit.errors import InputError, SpecError

if TYPE_CHECKING:
    from auditkit.inputs.artifacts import Artifacts
    from auditkit.inputs.model import ModelAdapter

AUDITED = "audited model"


@dataclass
class Signature:
    """Input and output tensors as (name, dtype, shape); ``N`` is a dynamic batch dimension."""

    inputs: list[tuple[str, str, tuple[Any, ...]]]
    outputs: list[tuple[str, str, tuple[Any, ...]]]

    def __str__(self) -> str:
        def one(items: list[tuple[str, str, tuple[Any, ...]]]) -> str:
            return (
                ", ".join(f"{n + ': ' if n else ''}{d}[{', '.join(map(str, s))}]" for n, d, s in items) or "?"
            )

        return f"{one(self.inputs)} → {one(self.outputs)}"


@dataclass
class Candidate:
    """One model that may ship (an artifact) or the audited model itself."""

    name: str
    kind: str  # onnx | torchscript | dynamic_int8 | bfloat16 | float16 | audited
    where: str  # spec location, e.g. deployment.artifacts.0
    device: str = "cpu"
    runtime: str = ""
    threads: int = 1
    path: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    size_kind: str = "file"
    stored_values: int | None = None
    signature: Signature | None = None
    forward: Callable[[np.ndarray], np.ndarray] | None = None
    module: Any = None  # differentiable float-in / float-out torch module, when there is one
    unavailable: str | None = None  # why it cannot run on this machine
    notes: list[str] = field(default_factory=list)

    def logits(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        if self.forward is None:
            raise RuntimeError(f"{self.name} cannot run here: {self.unavailable}")
        outs = [self.forward(np.ascontiguousarray(x[s : s + batch_size], dtype=np.float32))
                for s in range(0, len(x), batch_size)]  # fmt: skip
        return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, 0), dtype=np.float32)

    def facts(self) -> dict[str, Any]:
        """JSON-native description for evidence (no callables)."""
        return {
            "name": self.name, "kind": self.kind, "device": self.device, "runtime": self.runtime,
            "threads": self.threads, "path": self.path, "sha256": self.sha256, "size_bytes": self.size_bytes,
            "size_kind": self.size_kind, "stored_values": self.stored_values,
            "signature": str(self.signature) if self.signature else None, "differentiable": self.module is not None,
            "unavailable": self.unavailable, "notes": list(self.notes),
        }  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
def candidates(artifacts: Artifacts) -> list[Candidate]:
    """The audited model (first) and every ``deployment.artifacts`` entry, loaded once per audit.

    Raises InputError/SpecError (exit 2) for an artifact that cannot be read or whose signature
    differs from the audited model's; the failure is cached, so every check reports the same one.
    """
    return artifacts.cached("deployment:candidates", lambda: _load_all(artifacts))


def _load_all(artifacts: Artifacts) -> list[Candidate]:
    spec = artifacts.spec
    if spec is None or spec.deployment is None:
        from auditkit.errors import NotApplicable

        raise NotApplicable("no deployment section in the spec")
    adapter = artifacts.model()
    shape = per_sample_shape(artifacts, adapter)
    reference = Signature([("", "float32", ("N", *shape))], [("", "float32", ("N", adapter.n_classes))])
    out = [_audited(adapter, reference)]
    for i, art in enumerate(spec.deployment.artifacts):
        where = f"deployment.artifacts.{i}"
        cand = _load_one(art, where, artifacts, adapter)
        if cand.forward is not None:
            if adapter.n_classes == 1 and artifacts.task() == "regression":
                cand.forward = _one_column(cand.forward)  # a (batch,) regressor output is one column
            _check_signature(cand, reference, shape, adapter.n_classes, spec.deployment.batch_sizes)
        out.append(cand)
    return out


def per_sample_shape(artifacts: Artifacts, adapter: ModelAdapter) -> tuple[int, ...]:
    if adapter.input_shape is not None:
        return tuple(int(d) for d in adapter.input_shape)
    ds = next(iter(artifacts.datasets().values()), None)
    if ds is None:
        raise InputError("deployment: no data split to read the model's input shape from")
    return tuple(int(d) for d in ds.x.shape[1:])


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _audited(adapter: ModelAdapter, reference: Signature) -> Candidate:
    src = adapter.source or {}
    path = src.get("path")
    size, kind = _file_size(path)
    if size is None:
        size, kind = _state_dict_bytes(adapter.module), "serialised state_dict (torch.save)"
    return Candidate(
        name=AUDITED, kind=f"audited ({src.get('format', 'in-memory')})", where="model", device=str(adapter.device),
        runtime=_torch_runtime(), threads=_threads(), path=path, sha256=src.get("sha256"), size_bytes=size,
        size_kind=kind, stored_values=_stored_values(adapter.module), signature=reference,
        forward=adapter.logits, module=adapter.module,
    )  # fmt: skip


def _file_size(path: Any) -> tuple[int | None, str]:
    if path and Path(str(path)).is_file():
        return Path(str(path)).stat().st_size, "file"
    return None, ""


def _torch_runtime() -> str:
    import torch

    return f"torch {torch.__version__}"


def _load_one(art: Any, where: str, artifacts: Artifacts, adapter: ModelAdapter) -> Candidate:
    if art.onnx:
        return _load_onnx(art.name, where, artifacts.loaded.resolve(art.onnx))  # type: ignore[union-attr]
    if art.torchscript:
        return _load_torchscript(art.name, where, artifacts.loaded.resolve(art.torchscript), adapter)  # type: ignore[union-attr]
    if art.quantize:
        return _dynamic_int8(art.name, where, adapter)
    return _cast(art.name, where, adapter, art.dtype)


def _load_onnx(name: str, where: str, path: Path) -> Candidate:
    from auditkit.inputs.data import file_sha256

    cand = Candidate(name=name, kind="onnx", where=where, path=str(path), sha256=file_sha256(path),
                     size_bytes=_onnx_bytes(path), size_kind="file (+ external data)")  # fmt: skip
    try:
        import onnxruntime as ort
    except ImportError:
        cand.unavailable = "onnxruntime is not installed: pip install 'auditkit[onnx]'"
        return cand
    opts = ort.SessionOptions()
    cand.threads = _threads()  # the run's thread policy, the same as torch's
    opts.intra_op_num_threads = cand.threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        raise InputError(
            f"{where}.onnx: onnxruntime cannot load {path.name}: {str(err).splitlines()[0][:300]}"
        ) from None
    ins, outs = sess.get_inputs(), sess.get_outputs()
    cand.signature = Signature(
        [(i.name, _ort_dtype(i.type), tuple(_dim(d) for d in i.shape)) for i in ins],
        [(o.name, _ort_dtype(o.type), tuple(_dim(d) for d in o.shape)) for o in outs],
    )
    cand.runtime = f"onnxruntime {ort.__version__} (CPUExecutionProvider)"
    cand.stored_values = _onnx_values(path)
    if len(ins) == 1 and outs:
        in_name, out_name = ins[0].name, outs[0].name
        in_dtype = np.float16 if "float16" in ins[0].type else np.float32

        def forward(x: np.ndarray) -> np.ndarray:
            return np.asarray(
                sess.run([out_name], {in_name: x.astype(in_dtype, copy=False)})[0], dtype=np.float32
            )

        cand.forward = forward
    else:
        cand.forward = lambda x: np.zeros((0, 0), dtype=np.float32)  # the signature check rejects it
    return cand


def _ort_dtype(t: str) -> str:
    name = t.removeprefix("tensor(").removesuffix(")")
    return {"float": "float32", "double": "float64"}.get(name, name)


def _dim(d: Any) -> Any:
    return d if isinstance(d, int) else "N"


def _onnx_bytes(path: Path) -> int:
    sidecar = path.with_name(path.name + ".data")
    return path.stat().st_size + (sidecar.stat().st_size if sidecar.is_file() else 0)


def _onnx_values(path: Path) -> int | None:
    """Stored values of the graph's initializers (weights, biases, scales), via the onnx package."""
    try:
        import onnx
    except ImportError:
        return None
    graph = onnx.load(str(path), load_external_data=False).graph
    return int(sum(int(np.prod(t.dims)) if len(t.dims) else 1 for t in graph.initializer))


def _load_torchscript(name: str, where: str, path: Path, adapter: ModelAdapter) -> Candidate:
    import torch

    from auditkit.inputs.data import file_sha256

    try:
        module = torch.jit.load(str(path), map_location=adapter.device).eval()
    except Exception as err:
        raise InputError(
            f"{where}.torchscript: not a TorchScript file ({path.name}): {str(err).splitlines()[0][:300]}"
        ) from None
    cand = Candidate(name=name, kind="torchscript", where=where, device=str(adapter.device), runtime=_torch_runtime(),
                     threads=_threads(), path=str(path), sha256=file_sha256(path), size_bytes=path.stat().st_size,
                     stored_values=_stored_values(module))  # fmt: skip
    _torch_forward(cand, module, adapter.device, None)
    return cand


def _dynamic_int8(name: str, where: str, adapter: ModelAdapter) -> Candidate:
    import warnings

    import torch
    from torch import nn

    if isinstance(adapter.module, torch.jit.ScriptModule):
        raise SpecError("a TorchScript model cannot be re-quantized here: quantize the eager module and give the file "
                        "as `torchscript:` or `onnx:`", location=f"{where}.quantize")  # fmt: skip
    eager = copy.deepcopy(adapter.module).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice (torchao migration)
        q = torch.ao.quantization.quantize_dynamic(eager, {nn.Linear}, dtype=torch.qint8)
    if not any("quantized" in type(m).__module__ for m in q.modules()):
        raise SpecError("the model has no nn.Linear layer for dynamic int8 quantization (a torch.export "
                        "program keeps none)", location=f"{where}.quantize")  # fmt: skip
    cand = Candidate(name=name, kind="dynamic_int8", where=where, device="cpu", runtime=_torch_runtime() + " (qint8)",
                     threads=_threads(), size_bytes=_state_dict_bytes(q), size_kind="serialised state_dict (torch.save)",
                     stored_values=_stored_values(q))  # fmt: skip
    cand.notes.append("derived by auditkit: torch.ao.quantization.quantize_dynamic({nn.Linear}, qint8)")
    _torch_forward(cand, q, torch.device("cpu"), None)
    return cand


def _cast(name: str, where: str, adapter: ModelAdapter, dtype_name: str) -> Candidate:
    import torch

    dtype = getattr(torch, dtype_name)
    device = adapter.device
    cand = Candidate(name=name, kind=dtype_name, where=where, runtime=_torch_runtime() + f" ({dtype_name})",
                     threads=_threads())  # fmt: skip
    if dtype_name == "float16" and device.type != "cuda":
        if not torch.cuda.is_available():
            cand.unavailable = "float16 artifacts run on CUDA (CPU half-precision kernels are not a deployment target); no CUDA device here"
            return cand
        device = torch.device("cuda")
    cast = copy.deepcopy(adapter.module).to(device=device, dtype=dtype).eval()
    cand.device = str(device)
    cand.size_bytes, cand.size_kind = _state_dict_bytes(cast), "serialised state_dict (torch.save)"
    cand.stored_values = _stored_values(cast)
    cand.notes.append(
        f"derived by auditkit: the audited module cast to {dtype_name}; inputs cast to {dtype_name}"
    )
    _torch_forward(cand, cast, device, dtype)
    return cand


def _torch_forward(cand: Candidate, module: Any, device: Any, dtype: Any) -> None:
    """A batched forward and, when gradients reach the input, a float-in / float-out module."""
    import torch
    from torch import nn

    class FloatIO(nn.Module):
        """float32 in, float32 logits out, whatever the inner module's dtype."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.to(device)
            return self.inner(x.to(dtype) if dtype is not None else x).float()

    wrapped = FloatIO().eval()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return wrapped(torch.from_numpy(x)).cpu().numpy()

    cand.forward = forward
    cand.module = wrapped  # dropped by the signature probe when no gradient reaches the input


def _stored_values(module: Any) -> int:
    """Numbers the module stores (weights, biases, buffers; packed quantized weights unpacked)."""
    import torch

    def count(v: Any) -> int:
        if isinstance(v, torch.Tensor):
            return int(v.numel())
        if isinstance(v, (tuple, list)):
            return sum(count(x) for x in v)
        return 0

    total = sum(count(v) for v in module.state_dict().values())
    if isinstance(module, torch.jit.ScriptModule):  # packed quantized weights are not in its state_dict
        for m in module.modules():
            if hasattr(m, "_weight_bias"):
                total += count(getattr(m, "_weight_bias")())  # noqa: B009 (a TorchScript method)
    return total


def _state_dict_bytes(module: Any) -> int:
    import torch

    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell()


def _one_column(forward: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A regressor's artifact that returns one value per row as a ``(batch,)`` array, as the
    audited model may (docs/regression.md), seen as the ``(batch, 1)`` column the checks compare."""

    def run(x: np.ndarray) -> np.ndarray:
        out = forward(x)
        return out.reshape(len(out), 1) if getattr(out, "ndim", 2) == 1 else out

    return run


def _check_signature(
    cand: Candidate, reference: Signature, shape: tuple[int, ...], k: int, batch_sizes: list[int]
) -> None:
    """Same input and output as the audited model, else exit 2 with both signatures shown."""
    problems = []
    sig = cand.signature
    if sig is not None:  # declared (ONNX)
        if len(sig.inputs) != 1:
            problems.append(f"{len(sig.inputs)} inputs instead of 1")
        else:
            dims = sig.inputs[0][2]
            if len(dims) != len(shape) + 1 or any(
                isinstance(d, int) and d != s for d, s in zip(dims[1:], shape, strict=False)
            ):
                problems.append("input shape differs")
            elif isinstance(dims[0], int) and any(b != dims[0] for b in batch_sizes):
                problems.append(f"batch dimension fixed at {dims[0]} (export with a dynamic batch axis)")
            if sig.inputs[0][1] not in ("float32", "float16"):
                problems.append(f"input type {sig.inputs[0][1]}")
        if not sig.outputs:
            problems.append("no output")
        elif not (k == 1 and len(sig.outputs[0][2]) == 1) and (
            len(sig.outputs[0][2]) != 2
            or (isinstance(sig.outputs[0][2][1], int) and sig.outputs[0][2][1] != k)
        ):
            problems.append("output shape differs")
    if not problems:
        probe = np.zeros((2, *shape), dtype=np.float32)
        try:
            out = cand.forward(probe)  # type: ignore[misc]
            if out.shape != (2, k):
                problems.append(f"output of a batch of 2 has shape {list(out.shape)}, expected [2, {k}]")
        except Exception as err:
            problems.append(
                f"a batch of 2 rows in the audited input shape fails: {str(err).splitlines()[0][:200] if str(err) else type(err).__name__}"
            )
        if cand.signature is None:
            cand.signature = Signature([("", "float32", ("N", *shape))], [("", "float32", ("N", k))])
    if problems:
        shown = (
            str(cand.signature)
            if cand.signature is not None
            else f"float32[N, {', '.join(map(str, shape))}] → ?"
        )
        raise InputError(f"{cand.where} ({cand.name}): its signature differs from the audited model's "
                         f"({'; '.join(problems)}): audited model {reference}; artifact {shown}")  # fmt: skip
    if cand.module is not None and not _grad_reaches_input(cand.module, shape):
        cand.module = None
        cand.notes.append(
            "no input gradient (quantized kernels): robustness measured by transfer from the audited model"
        )


def _grad_reaches_input(module: Any, shape: tuple[int, ...]) -> bool:
    import warnings

    import torch

    x = torch.zeros((2, *shape), dtype=torch.float32, requires_grad=True)
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantized kernels warn that they have no autograd formula
            module(x).sum().backward()
    except RuntimeError:
        return False
    return x.grad is not None


# ------------------------------------------------------------------------------------------------
# Cost: latency, memory
# ------------------------------------------------------------------------------------------------
def time_calls(
    forward: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, *, warmup: int, repeats: int
) -> np.ndarray:
    """Seconds per call of ``forward(batch)`` over ``repeats`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        forward(batch)
    out = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        t0 = time.perf_counter_ns()
        forward(batch)
        out[i] = (time.perf_counter_ns() - t0) / 1e9
    return out


def percentile_cis(
    seconds: np.ndarray, qs: tuple[float, ...], *, n_boot: int, rng: np.random.Generator
) -> dict[float, tuple[float, tuple[float, float]]]:
    """Each percentile of the timings with a 95% percentile-bootstrap interval over the timed calls."""
    n = len(seconds)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = seconds[idx]
    out = {}
    for q in qs:
        reps = np.quantile(boot, q / 100, axis=1)
        out[q] = (
            float(np.quantile(seconds, q / 100)),
            (float(np.quantile(reps, 0.025)), float(np.quantile(reps, 0.975))),
        )
    return out


def peak_memory(
    forward: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, device: str, calls: int = 3
) -> tuple[int | None, str]:
    """Bytes of memory that running ``forward(batch)`` adds at its peak, and how it was measured.

    CUDA: the allocator's peak above its level before. CPU (Linux): the rise of the process's peak
    resident set (VmHWM, reset through /proc/self/clear_refs) above the resident set before — a
    lower bound when the allocator reuses pages freed earlier. Elsewhere: None.
    """
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(calls):
            forward(batch)
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - before), "CUDA allocator peak above the level before"
    if not _hwm_resettable():
        return None, "not measured (needs Linux /proc/self/clear_refs)"
    rss = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    for _ in range(calls):
        forward(batch)
    return max(
        0, (_status_kb("VmHWM") - rss) * 1024
    ), "rise of the process's peak resident set (VmHWM) while running"


def _hwm_resettable() -> bool:
    return os.path.exists("/proc/self/clear_refs") and os.access("/proc/self/clear_refs", os.W_OK)


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0
