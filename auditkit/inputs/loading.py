"""Load the model under audit from the spec: TorchScript, torch.export, factory + weights, or built-in.

Security: a full pickle runs arbitrary code when it is loaded, so it is refused unless the spec
says ``model.allow_pickle: true`` (for files you trust). Detection reads the file's bytes and zip
directory only; nothing is unpickled to decide. State dicts are read with ``weights_only=True``
(torch's restricted unpickler) and safetensors never execute code. A pinned ``model.sha256`` that
does not match refuses an unsafe load outright; for safe formats the file is loaded and AK-GOV-003
reports the mismatch.

Every error is an ``InputError`` (exit code 2) naming the spec key and the file.
"""

from __future__ import annotations

import importlib
import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit.errors import InputError
from auditkit.inputs.data import file_sha256
from auditkit.spec import nocode

if TYPE_CHECKING:
    from torch import nn

    from auditkit.inputs.data import Dataset
    from auditkit.inputs.model import ModelAdapter
    from auditkit.spec.schema import ModelSpec

PICKLE_OPCODES = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def sniff(path: Path) -> str:
    """What a model file is, from its bytes: safetensors | torchscript | export | torch-zip | pickle | unknown."""
    with path.open("rb") as fh:
        head = fh.read(16)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        if any(
            n.endswith("/constants.pkl") or n.endswith("/code/__torch__.py") or "/code/" in n for n in names
        ):
            return "torchscript"
        if any(
            n.endswith("serialized_exported_program.json") or "/models/" in n and n.endswith(".json")
            for n in names
        ) or any(n.endswith(".pt2") or "archive_format" in n for n in names):
            return "export"
        if any(n.endswith("/data.pkl") for n in names):
            return "torch-zip"  # torch.save output: a pickle inside a zip
        return "zip"
    if head[:2] in PICKLE_OPCODES or head[:1] in (b"(", b"]", b"}", b"c"):
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"  # 8-byte little-endian header length, then a JSON header
    return "unknown"


def output_width(output: Any) -> int:
    """Columns a regression model outputs for ``model.output``: point 1, gaussian 2, quantiles q."""
    if output == "point":
        return 1
    if output == "gaussian":
        return 2
    return len(output.quantiles)


@dataclass(frozen=True)
class DataFacts:
    """What loading a model needs to know of the data, read by the caller (the artifact cache), so
    that ``load_model`` is a function of its arguments: two rows to probe the model with, the number
    of classes, the feature names (for the width hint), the input kind, and a class that a split has
    but train lacks (for the one-line class-count message)."""

    example: np.ndarray | None = None
    n_classes: int | None = None
    features: tuple[str, ...] = ()
    input_kind: str = "tabular"
    train_classes: int | None = None  # distinct labels in train
    unseen: tuple[str, Any, int, int] | None = None  # (split, class, its rows, further unseen classes)
    task: str = "classification"
    output: Any = "point"  # model.output of a regressor: point, gaussian or quantiles

    @classmethod
    def of(
        cls,
        datasets: Mapping[str, Dataset],
        input_kind: str,
        task: str = "classification",
        output: Any = "point",
    ) -> DataFacts:
        example = next((ds.x[:2] for name in ("train", "test", *datasets)
                        if (ds := datasets.get(name)) is not None and len(ds)), None)  # fmt: skip
        n_classes = next((len(ds.classes) for ds in datasets.values() if ds.classes), None)
        if task == "regression":  # output columns, and no class-count facts: a new label value is normal
            return cls(example, output_width(output), tuple(next(iter(datasets.values())).features) if datasets
                       else (), input_kind, task=task, output=output)  # fmt: skip
        first = next(iter(datasets.values()), None)
        train = datasets.get("train")
        train_classes, unseen = None, None
        if train is not None and train.label in train.frame:
            known = set(train.frame[train.label].dropna().tolist())
            train_classes = len(known)
            for name, ds in datasets.items():
                if name in ("train", "ood") or ds.label not in ds.frame:
                    continue
                values = ds.frame[ds.label].dropna()
                new = values[~values.isin(known)]
                if len(new):
                    c = new.tolist()[0]  # a native value: the message shows 2, not np.int64(2)
                    unseen = (name, c, int((values == c).sum()), int(new.nunique()) - 1)
                    break
        features = tuple(first.features) if first is not None else ()
        return cls(example, n_classes, features, input_kind, train_classes, unseen, task, output)


def _source(fmt: str, path: Path | None, *, safe: bool, pinned: str | None, **extra: Any) -> dict[str, Any]:
    sha = file_sha256(path) if path is not None and path.is_file() else extra.pop("sha256", None)
    out: dict[str, Any] = {
        "format": fmt,
        "path": str(path) if path is not None else extra.pop("path", None),
        "sha256": sha,
        "safe_to_load": safe,
        "pinned_sha256": pinned,
        "pin_matches": (pinned.lower() == sha) if (pinned and sha) else None,
    }
    out.update(extra)
    return out


def _refuse_pickle(path: Path, where: str) -> InputError:
    return InputError(
        f"{where}: {path.name} is a full Python pickle; loading it would run any code it contains, so it "
        "was refused and not opened. Export the model with torch.jit.save / torch.export.save, or save a "
        "state_dict (safetensors) with model.factory; or, only for a file you trust, set model.allow_pickle: true"
    )


def call_factory(m: ModelSpec, base: Path | None) -> nn.Module:
    """A fresh module from ``model.factory`` ('package.module:callable') with ``factory_args``; a
    module in the spec's folder ``base`` is importable."""
    from torch import nn

    if not m.factory:
        raise InputError("model.factory: not set (a 'package.module:callable' that returns the module)")
    nocode.refuse("model.factory", f"{m.factory!r} imports and calls Python")
    mod_name, _, attr = m.factory.partition(":")
    if mod_name.endswith(".py") or "/" in mod_name or "\\" in mod_name:
        dotted = mod_name.removesuffix(".py").replace("\\", "/").strip("./").replace("/", ".")
        raise InputError(
            f"model.factory: {m.factory!r} names a file; write the module's import path, e.g. "
            f"'{dotted}:{attr}' (the spec's folder is importable)"
        )
    folder = str(base) if base is not None else None
    added = False
    if folder and folder not in sys.path:
        sys.path.insert(0, folder)  # a factory module next to the spec is importable
        added = True
    try:
        try:
            fn = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as err:
            raise InputError(f"model.factory: cannot import {m.factory!r}: {err}") from None
        try:
            module = fn(**m.factory_args)
        except Exception as err:
            raise InputError(
                f"model.factory: {m.factory}(**factory_args) failed: {type(err).__name__}: {err}"
            ) from None
    finally:
        if added:
            sys.path.remove(folder)  # type: ignore[arg-type]
    if not isinstance(module, nn.Module):
        raise InputError(
            f"model.factory: {m.factory} returned {type(module).__name__}, not a torch nn.Module"
        )
    return module


def model_device(m: ModelSpec) -> Any:
    """The torch device of ``model.device`` (auto: CUDA when available); an InputError when it is not one."""
    from auditkit.inputs.model import resolve_device, set_thread_policy

    set_thread_policy()  # idempotent; the engine applies it only when torch was imported already
    try:
        device = resolve_device(m.device)
    except RuntimeError as err:
        raise InputError(f"model.device: {m.device!r} is not a device torch knows ({_first(err)})") from None
    if device.type == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError(
                f"model.device: {m.device!r} was asked for but CUDA is not available (use auto or cpu)"
            )
    return device


def load_model(
    m: ModelSpec, base: Path | None, data: DataFacts, device: Any, *, mlflow_tracking_uri: str | None = None
) -> ModelAdapter:
    """The ModelAdapter of a file or factory model: ``m`` (the spec's model section) with its paths
    relative to ``base`` (the spec's folder), probed on ``data.example`` and checked against
    ``data.n_classes``, on ``device``. Reads the model's files and nothing else (the built-in model is
    trained by the artifact cache and adapted by ``builtin_adapter``). Every error is an InputError."""
    if m.builtin:
        raise ValueError("load_model: a built-in model is trained, not loaded (builtin_adapter)")
    if m.torchscript:
        module, source = _load_torchscript(m, base, device)
    elif m.exported:
        module, source = _load_exported(m, base)
    elif m.mlflow:
        module, source = _load_mlflow(m, mlflow_tracking_uri)
    else:
        module, source = _load_factory(m, base)
    return _adapt(m, data, module, source, device)


def _adapt(m: ModelSpec, data: DataFacts, module: Any, source: dict[str, Any], device: Any) -> ModelAdapter:
    import torch

    from auditkit.inputs.model import ModelAdapter

    example = data.example
    shape: tuple[int, ...] | None = (
        tuple(m.input.shape) if m.input.shape else (tuple(example.shape[1:]) if example is not None else None)
    )
    expected = data.n_classes
    embed_fn = None
    for name in ("embed", "embeddings", "features_penultimate"):
        if hasattr(module, name) and callable(getattr(module, name)):
            embed_fn = getattr(module, name)
            break
    if embed_fn is None:
        embed_fn = _scripted_sequential_embed(module)
    n_out = expected
    if example is not None and shape is not None:
        try:
            probe = module.to(device) if hasattr(module, "to") else module
            with torch.inference_mode():
                out = probe(
                    torch.as_tensor(example, dtype=torch.float32, device=device).reshape(
                        (len(example), *shape)
                    )
                )
        except (Exception, SystemExit) as err:  # sys.exit(0) in a forward would otherwise "pass" the gate
            width = _width_problem(data, module, err, shape)
            if width:
                raise InputError(width) from None
            raise InputError(
                f"model: the model fails on two rows of the data (input shape {tuple((len(example), *shape))}): "
                f"{model_error_text(err)[:300]}"
                + (" — export with a dynamic batch dimension" if source["format"] == "export" else "")
            ) from None
        regression = data.task == "regression"
        if (
            regression
            and isinstance(out, torch.Tensor)
            and expected == 1
            and tuple(out.shape) == (len(example),)
        ):
            module = _column_wrapper()(module)  # a regressor returning (batch,): audited as (batch, 1)
            source = {**source, "output": "one value per row, audited as one column"}
            out = out.reshape(len(example), 1)
        if regression and isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] != expected:
            raise InputError(
                f"model: a regression model with model.output {_output_name(data.output)} must "
                f"output {expected} column(s) per row; it outputs {int(out.shape[1])}"
            )
        if (
            not regression
            and isinstance(out, torch.Tensor)
            and expected == 2
            and tuple(out.shape) in ((len(example),), (len(example), 1))
        ):
            # A binary model with one logit (trained with BCEWithLogitsLoss): sigmoid(z) is P(class 1),
            # which is softmax over the logits [0, z]; the wrapper gives the 2-column form checks expect.
            module = _single_logit_wrapper()(module)
            source = {**source, "output": "one logit z per row (sigmoid), audited as the two logits [0, z]"}
            out = torch.zeros((len(example), 2))
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            raise InputError(
                f"model: expected logits shaped (batch, classes); got {getattr(out, 'shape', type(out))}"
            )
        n_out = int(out.shape[1])
        if expected is not None and n_out != expected:
            raise InputError(_class_problem(data, n_out, expected))
    if n_out is None:
        raise InputError("model: cannot tell the number of classes (no labelled split to probe it with)")
    cls = _embed_fn_adapter() if embed_fn is not None else ModelAdapter
    adapter = cls(
        module=module, n_classes=n_out, device=device, input_kind=data.input_kind, input_shape=shape,
        batch_size=m.batch_size, source=source,
    )  # fmt: skip
    if embed_fn is not None:
        adapter.embedding_fn = embed_fn  # type: ignore[attr-defined]
    return adapter


def _output_name(output: Any) -> str:
    return output if isinstance(output, str) else f"quantiles {list(output.quantiles)}"


def _column_wrapper() -> type:
    """An nn.Module turning a regressor's (batch,) output into (batch, 1)."""
    import torch
    from torch import nn

    class ColumnModule(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x).reshape(len(x), -1)

    return ColumnModule


def _single_logit_wrapper() -> type:
    """An nn.Module turning a binary model's single logit z into the two logits [0, z]."""
    import torch
    from torch import nn

    class SingleLogitModule(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = self.inner(x).reshape(len(x), 1)
            return torch.cat([torch.zeros_like(z), z], dim=1)

    return SingleLogitModule


def _scripted_sequential_embed(module: Any) -> Any:
    """For a TorchScript ``nn.Sequential`` ending in a Linear: run every layer but the last.

    Hooks do not fire inside compiled code, so this is how a scripted Sequential gives embeddings.
    """
    if getattr(module, "original_name", None) != "Sequential":
        return None
    children = list(module.children())
    if not children or getattr(children[-1], "original_name", None) != "Linear":
        return None
    body = children[:-1]

    def embed(x: Any) -> Any:
        for layer in body:
            x = layer(x)
        return x

    return embed


def _embed_fn_adapter() -> type:
    """A ModelAdapter whose embeddings come from the module's own ``embed`` method.

    TorchScript and exported modules run their submodules inside compiled code, where forward hooks
    do not fire; a module that exposes ``embed(x)`` still gives penultimate features this way.
    """
    from auditkit.inputs.model import ModelAdapter

    class EmbedFnAdapter(ModelAdapter):
        embedding_fn: Any = None

        def embeddings(self, x: Any) -> np.ndarray:
            fn = self.embedding_fn
            return self._batched(x, lambda t: fn(t).reshape(len(t), -1))

    return EmbedFnAdapter


def _path(base: Path | None, rel: str) -> Path:
    """A model file named in the spec, relative to the spec's folder."""
    p = Path(rel).expanduser()
    if p.is_absolute():
        return p
    if base is None:
        raise InputError("model: file sources need a spec file to resolve paths against")
    return base / p


def _check_pin_before_unsafe(path: Path, pinned: str | None, where: str) -> None:
    if pinned and file_sha256(path) != pinned.lower():
        raise InputError(
            f"{where}: sha256 of {path.name} does not match model.sha256; refusing to unpickle it"
        )


def _load_torchscript(m: ModelSpec, base: Path | None, device: Any) -> tuple[Any, dict[str, Any]]:
    import torch

    assert m.torchscript is not None  # the caller dispatched on it
    path = _path(base, m.torchscript)
    kind = sniff(path)
    if kind in ("pickle", "torch-zip"):
        return _load_pickle(path, "model.torchscript", m.allow_pickle, m.sha256, device)
    if kind == "export":
        raise InputError(
            f"model.torchscript: {path.name} is a torch.export program; name it under model.exported"
        )
    try:
        module = torch.jit.load(str(path), map_location=device)
    except Exception as err:
        raise InputError(
            f"model.torchscript: {path.name} is not a TorchScript archive ({_first(err)})"
        ) from None
    return module, _source("torchscript", path, safe=True, pinned=m.sha256)


def _load_exported(m: ModelSpec, base: Path | None) -> tuple[Any, dict[str, Any]]:
    import torch

    assert m.exported is not None  # the caller dispatched on it
    path = _path(base, m.exported)
    kind = sniff(path)
    if kind in ("pickle", "torch-zip"):
        raise _refuse_pickle(path, "model.exported")
    if kind == "torchscript":
        raise InputError(
            f"model.exported: {path.name} is a TorchScript archive; name it under model.torchscript"
        )
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"model.exported: {path.name} is not a torch.export program (not a zip archive; "
            "write it with torch.export.save)"
        )
    unsafe = export_pickles(path)
    if unsafe and not m.allow_pickle:
        raise InputError(
            f"model.exported: {path.name} {unsafe}; torch.export.load would unpickle it (falling back to "
            "full pickle, which runs any code it contains), so it was refused. Re-export the model with "
            "torch.export.save, or, only for a file you trust, set model.allow_pickle: true"
        )
    if unsafe:
        nocode.refuse("model.allow_pickle", "unpickling a file runs any code it contains")
    import logging

    export_log = logging.getLogger("torch.export")
    level = export_log.level
    export_log.setLevel(logging.CRITICAL)  # torch.export.load logs a full traceback before it raises
    try:
        program = torch.export.load(str(path))
    except Exception as err:
        raise InputError(
            f"model.exported: {path.name} is not a torch.export program ({_first(err)})"
        ) from None
    finally:
        export_log.setLevel(level)
    note = {"note": f"{unsafe}; loaded because model.allow_pickle is true"} if unsafe else {}
    source = _source("export", path, safe=not unsafe, pinned=m.sha256, **note)
    return _exported_wrapper()(program.module()), source


# Members of a torch.export (.pt2) archive, relative to its root folder, that hold no pickle.
_PT2_PLAIN = ("archive_format", "archive_version", "byteorder", ".data/", "models/", "extra/")


def export_pickles(path: Path) -> str | None:
    """Why torch.export.load would unpickle more than plain tensors from ``path``; None if it would not.

    torch.export.load reads sample inputs, pickled weights and constants with ``torch.load``, and
    when ``weights_only=True`` refuses one it retries with ``weights_only=False``: a crafted
    archive then runs code. So every pickle in the archive must load with ``weights_only=True``
    here first, and members torch would load as code or raw pickle (AOTInductor libraries, opaque
    and custom objects, the legacy format) are refused outright. Nothing is unpickled unsafely.
    """
    import io
    import json

    import torch

    def plain(data: bytes) -> bool:
        try:
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception:
            return False
        return True

    with zipfile.ZipFile(path) as zf:
        names = {n.split("/", 1)[1] if "/" in n else n: n for n in zf.namelist() if not n.endswith("/")}
        if "archive_format" not in names:
            return "is a legacy torch.export archive (its state is pickled)"
        pickled: list[str] = []
        for rel, full in sorted(names.items()):
            if rel.startswith(_PT2_PLAIN):
                continue
            if (
                rel.startswith("data/sample_inputs/")
                or rel.startswith("data/constants/")
                and rel.endswith(".pt")
            ):
                pickled.append(rel)
            elif rel.endswith("_config.json") and rel.startswith(("data/weights/", "data/constants/")):
                try:
                    config = json.loads(zf.read(full)).get("config", {})
                except (ValueError, AttributeError):
                    return f"has an unreadable {rel}"
                folder = rel.rsplit("/", 1)[0] + "/"
                for entry in config.values():
                    member = folder + str(entry.get("path_name", ""))
                    if str(entry.get("path_name", "")).startswith(("custom_obj_", "opaque_obj_")):
                        return f"holds a pickled Python object ({member})"
                    if entry.get("use_pickle"):
                        pickled.append(member)
            elif not rel.startswith(("data/weights/weight_", "data/constants/tensor_")):
                return f"holds {rel}, which torch.export.load may load as code"
        for rel in pickled:
            if rel not in names or not plain(zf.read(names[rel])):
                return f"holds a pickle that is not plain tensors ({rel})"
    return None


def _exported_wrapper() -> type:
    """An nn.Module around an exported program's module, whose train()/eval() do not recurse.

    Exported modules refuse ``eval()`` (their train/eval behaviour was fixed when exported); the
    adapter calls it on every model, so the wrapper records the mode and leaves the graph as is.
    """
    from torch import nn

    class ExportedModule(nn.Module):
        def __init__(self, graph: nn.Module) -> None:
            super().__init__()
            self.graph = graph

        def train(self, mode: bool = True) -> ExportedModule:
            self.training = mode
            return self

        def forward(self, x: Any) -> Any:
            return self.graph(x)

    return ExportedModule


def _load_factory(m: ModelSpec, base: Path | None) -> tuple[Any, dict[str, Any]]:
    import torch

    module = call_factory(m, base)
    if not m.weights:
        return module, _source(
            "factory",
            None,
            safe=True,
            pinned=m.sha256,
            factory=m.factory,
            weights=None,
            note="factory initialisation, no weights file",
        )
    path = _path(base, m.weights)
    kind = sniff(path)
    safe = True
    if path.suffix.lower() == ".safetensors" or kind == "safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:
            raise InputError(
                f"model.weights: cannot read {path.name} as safetensors ({_first(err)})"
            ) from None
        fmt = "safetensors"
    else:
        fmt = "state_dict"
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:
            if not m.allow_pickle:
                raise InputError(
                    f"model.weights: {path.name} is not a plain state_dict (torch.load weights_only=True refused it: "
                    f"{_first(err)[:200]}). It was not unpickled; set model.allow_pickle: true only for a file you trust"
                ) from None
            _check_pin_before_unsafe(path, m.sha256, "model.weights")
            nocode.refuse("model.allow_pickle", "unpickling a file runs any code it contains")
            state = torch.load(str(path), map_location="cpu", weights_only=False)  # trusted by the spec
            safe, fmt = False, "pickle"
        if isinstance(state, torch.nn.Module):
            state = state.state_dict()
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise InputError(f"model.weights: {path.name} holds a {type(state).__name__}, not a state_dict")
    try:
        module.load_state_dict(state, strict=True)
    except Exception as err:
        detail = " ".join(line.strip() for line in str(err).strip().splitlines()[1:3]) or _first(err)
        raise InputError(f"model.weights: {path.name} does not fit {m.factory}: {detail[:400]}") from None
    return module, _source(fmt, path, safe=safe, pinned=m.sha256, factory=m.factory)


def _load_mlflow(m: ModelSpec, tracking_uri: str | None) -> tuple[Any, dict[str, Any]]:
    """A model logged with mlflow.pytorch: a torch.export program (MLflow 3's default "pt2" format),
    loaded like ``model.exported``; or a full pickle ("pickle" format), which runs code when loaded
    (and imports the pickle module MLflow names), so only with ``model.allow_pickle: true``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="auditkit-mlflow-") as tmp:  # loaded into memory, then removed
        return _load_mlflow_from(m, tracking_uri, Path(tmp))


def _load_mlflow_from(m: ModelSpec, tracking_uri: str | None, dest: Path) -> tuple[Any, dict[str, Any]]:
    import torch

    from auditkit.integrations.mlflow_io import download_model, model_source

    assert m.mlflow is not None  # the caller dispatched on it
    local, meta = download_model(m.mlflow, dest, tracking_uri=tracking_uri)
    pt2, pth = local / "data" / "model.pt2", local / "data" / "model.pth"
    if pt2.is_file():
        unsafe = export_pickles(pt2)
        if unsafe and not m.allow_pickle:
            raise InputError(
                f"model.mlflow: {m.mlflow}'s model.pt2 {unsafe}; torch.export.load would unpickle it, "
                "so it was refused (set model.allow_pickle: true only for a model you trust)"
            )
        if unsafe:
            nocode.refuse("model.allow_pickle", "unpickling a file runs any code it contains")
        source = model_source(m.mlflow, meta, "mlflow.pytorch/pt2", pt2, safe=not unsafe, pinned=m.sha256)
        try:
            program = torch.export.load(str(pt2))
        except Exception as err:
            raise InputError(
                f"model.mlflow: {m.mlflow}: model.pt2 is not a torch.export program ({_first(err)})"
            ) from None
        return _exported_wrapper()(program.module()), source
    if not pth.is_file():
        raise InputError(f"model.mlflow: {m.mlflow} holds neither data/model.pt2 nor data/model.pth")
    if not m.allow_pickle:
        raise InputError(
            f'model.mlflow: {m.mlflow} was logged in MLflow\'s "pickle" format; loading it would run any code it '
            'contains, so it was refused and not opened. Log it with serialization_format="pt2" (MLflow 3\'s '
            "default), or, only for a model you trust, set model.allow_pickle: true"
        )
    _check_pin_before_unsafe(pth, m.sha256, "model.mlflow")
    nocode.refuse("model.allow_pickle", "unpickling a file runs any code it contains")
    from auditkit.integrations.mlflow_io import import_mlflow

    try:
        module = import_mlflow().pytorch.load_model(
            str(local), map_location="cpu"
        )  # trusted by model.allow_pickle
    except Exception as err:
        raise InputError(f"model.mlflow: mlflow.pytorch could not load {m.mlflow}: {_first(err)}") from None
    source = model_source(m.mlflow, meta, "mlflow.pytorch/pickle", pth, safe=False, pinned=m.sha256)
    source["note"] = "loaded because model.allow_pickle is true"
    return module, source


def _load_pickle(
    path: Path, where: str, allow: bool, pinned: str | None, device: Any
) -> tuple[Any, dict[str, Any]]:
    import torch

    if not allow:
        raise _refuse_pickle(path, where)
    _check_pin_before_unsafe(path, pinned, where)
    nocode.refuse("model.allow_pickle", "unpickling a file runs any code it contains")
    obj = torch.load(str(path), map_location=device, weights_only=False)  # trusted by model.allow_pickle
    if not isinstance(obj, torch.nn.Module):
        raise InputError(f"{where}: {path.name} unpickled to a {type(obj).__name__}, not an nn.Module")
    return obj, _source(
        "pickle", path, safe=False, pinned=pinned, note="loaded because model.allow_pickle is true"
    )


_SHAPES = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
_EXPORT_GUARD = re.compile(r"(?:size\(\)\[1\] == |shape\[1\] to be equal to )(\d+)")


def model_error_text(err: BaseException) -> str:
    """The model's own error in one line: the last line of the message, so a TorchScript
    interpreter traceback shrinks to e.g. ``ValueError: column 2 must be positive``."""
    if isinstance(err, SystemExit):
        return f"SystemExit: the model called sys.exit({err.code!r})"
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    last = lines[-1].removeprefix("builtins.")[:500]
    if not re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b", last):
        return f"{type(err).__name__}: {last}"  # a plain Python exception: its message has no type
    return last


def _first_linear_width(module: Any) -> int | None:
    """in_features of the first Linear layer (also inside a TorchScript module), if any."""
    modules = getattr(module, "modules", None)
    if modules is None:
        return None
    try:
        for m in modules():
            if type(m).__name__ == "Linear" or getattr(m, "original_name", None) == "Linear":
                width = getattr(m, "in_features", None)
                if isinstance(width, int):
                    return width
    except Exception:  # an exotic module whose traversal fails: no hint, the generic message stands
        return None
    return None


def _width_problem(data: DataFacts, module: Any, err: BaseException, shape: tuple[int, ...]) -> str | None:
    """One line for a model whose input width differs from the number of features, or None."""
    if len(shape) != 1:
        return None
    given = shape[0]
    text = str(err)
    match = _SHAPES.search(text)
    guard = _EXPORT_GUARD.search(text)  # torch.export: "Guard failed: x.size()[1] == 4"
    if match and int(match.group(2)) == given:
        expected: int | None = int(match.group(3))
    elif guard:
        expected = int(guard.group(1))
    else:
        expected = _first_linear_width(module)
    if expected is None or expected == given:
        return None
    features = list(data.features)
    shown = ", ".join(map(str, features[:12])) + (
        f", ... ({len(features)} in all)" if len(features) > 12 else ""
    )
    return (f"model: the model takes {expected} inputs per row but the data give {given} features ({shown}); "
            "list the model's input columns, in its order, under data.features")  # fmt: skip


def _class_problem(data: DataFacts, n_out: int, expected: int) -> str:
    """One line naming the split and the class the model has no output for (or the plain mismatch)."""
    if n_out < expected and data.train_classes == n_out and data.unseen is not None:
        name, cls, rows, more = data.unseen
        return (f"model: the {name} split has class {cls!r} ({rows} rows) that the model has no output for: "
                f"it has {n_out} outputs, one per train class"
                + (f" ({more} more unseen class(es) in {name})" if more else ""))  # fmt: skip
    return f"model: it outputs {n_out} logits per row but the labels have {expected} classes"


def _first(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def builtin_adapter(
    m: ModelSpec, run: Any, example: np.ndarray, device: Any, input_kind: str
) -> tuple[ModelAdapter, dict[str, bytes]]:
    """The ModelAdapter of the built-in model trained by auditkit (``run``: the first seed's run of
    the main optimizer) and its files for the bundle (safetensors + TorchScript), by name."""
    import hashlib

    import torch

    from auditkit.inputs.builtin_models import serialise
    from auditkit.inputs.model import ModelAdapter

    module = run.module
    files = serialise(module, torch.as_tensor(example[:2], dtype=torch.float32))
    module = module.to(device).eval()
    n_classes = int(module.head.out_features)
    source = {
        "format": f"builtin-{m.builtin}",
        "path": "model/model.safetensors",
        "sha256": hashlib.sha256(files["model.safetensors"]).hexdigest(),
        "torchscript_path": "model/model.pt",
        "torchscript_sha256": hashlib.sha256(files["model.pt"]).hexdigest(),
        "safe_to_load": True,
        "pinned_sha256": m.sha256,
        "pin_matches": None
        if not m.sha256
        else m.sha256.lower() == hashlib.sha256(files["model.safetensors"]).hexdigest(),
        "trained_by": "auditkit",
        "config": getattr(module, "config", {}),
        "optimizer": run.optimizer,
        "seed": run.seed,
        "diverged": not run.finite,
    }
    adapter = ModelAdapter(
        module=module,
        n_classes=n_classes,
        device=device,
        input_kind=input_kind,
        input_shape=tuple(example.shape[1:]),
        batch_size=m.batch_size,
        embedding_layer=module.head,
        source=source,
    )
    return adapter, files
