"""The model under audit behind one adapter: batched logits, probabilities and embeddings.

Loading from files (TorchScript, torch.export, factory + weights, built-in architectures) lives in
``auditkit.inputs.loading``; this module only wraps an ``nn.Module`` that is already in memory.
torch is imported lazily by callers: importing this module imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn


class ModelError(RuntimeError):
    """The model under audit raised on its forward pass (the message keeps the model's own text)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_thread_policy(threads: int | None = None) -> int:
    """One torch thread policy for the whole run (on 2 cores, 1 thread is often fastest).

    ``AUDITKIT_THREADS`` overrides; default is 1 thread on machines with ≤ 2 cores, else half.
    """
    from auditkit.toolkit.threads import default_threads

    if threads is None:
        threads = default_threads()
    torch.set_num_threads(threads)
    return threads


@dataclass
class ModelAdapter:
    """An nn.Module in eval mode with batched numpy-in / numpy-out inference.

    ``embedding_layer``: the module whose *input* is the penultimate representation (by default
    the last ``nn.Linear``); ``embeddings`` captures it with a forward hook.
    """

    module: nn.Module
    n_classes: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    input_kind: str = "tabular"
    input_shape: tuple[int, ...] | None = None
    batch_size: int = 1024
    embedding_layer: nn.Module | None = None
    # Facts about the artefact for AK-GOV-003 and results: format, path, sha256, safe_to_load.
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.module = self.module.to(self.device).eval()
        if self.embedding_layer is None:
            self.embedding_layer = _last_linear(self.module)

    def to_tensor(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if self.input_shape is not None and tuple(t.shape[1:]) != tuple(self.input_shape):
            t = t.reshape((len(t), *self.input_shape))
        return t.to(self.device, dtype=torch.float32)

    @torch.inference_mode()
    def _batched(
        self, x: np.ndarray | torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> np.ndarray:
        outs = []
        for start in range(0, len(x), self.batch_size):
            batch = self.to_tensor(x[start : start + self.batch_size])
            try:
                out = fn(batch)
            except (Exception, SystemExit) as err:  # a model calling sys.exit() must not end the audit
                from auditkit.inputs.loading import model_error_text

                # The model's own words, not the TorchScript interpreter's traceback around them.
                end = min(start + self.batch_size, len(x))
                raise ModelError(
                    f"the model fails on rows {start}–{end - 1}: {model_error_text(err)}"
                ) from None
            outs.append(out.float().cpu())
        if not outs:
            return np.zeros((0, self.n_classes), dtype=np.float32)
        return torch.cat(outs).numpy()

    def logits(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        return self._batched(x, self.module)

    def proba(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        return self._batched(x, lambda t: torch.softmax(self.module(t).float(), dim=1))

    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        return self.logits(x).argmax(axis=1)

    def embeddings(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Penultimate-layer features (the input of ``embedding_layer``), flattened per sample."""
        layer = self.embedding_layer
        if layer is None:
            raise ValueError("this model has no nn.Linear head; set embedding_layer to capture embeddings")
        captured: list[torch.Tensor] = []

        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            captured.append(inputs[0].detach().float().reshape(len(inputs[0]), -1).cpu())

        handle = layer.register_forward_pre_hook(hook)
        try:
            self._batched(x, self.module)
        finally:
            handle.remove()
        if not captured:
            return np.zeros((0, 0), dtype=np.float32)
        return torch.cat(captured).numpy()


def _last_linear(module: nn.Module) -> nn.Module | None:
    last = None
    for m in module.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last


def wrap(
    module: nn.Module,
    *,
    n_classes: int | None = None,
    device: str = "auto",
    input_kind: str = "tabular",
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = 1024,
    source: dict[str, Any] | None = None,
) -> ModelAdapter:
    """Wrap an in-memory module; ``n_classes`` defaults to the out_features of the last Linear."""
    if n_classes is None:
        last = _last_linear(module)
        if last is None:
            raise ValueError("pass n_classes: the model has no nn.Linear head to read it from")
        n_classes = int(last.out_features)  # type: ignore[union-attr,arg-type]
    return ModelAdapter(
        module=module,
        n_classes=n_classes,
        device=resolve_device(device),
        input_kind=input_kind,
        input_shape=input_shape,
        batch_size=batch_size,
        source=dict(source or {"format": "in-memory"}),
    )
