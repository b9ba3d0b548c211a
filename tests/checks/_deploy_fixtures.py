"""A real breast-cancer MLP (normalisation inside the module) and deployment artifacts built from it:
a correct ONNX export, one exported with a wrong normalisation constant, dynamic-int8 TorchScript."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def net(mean: Any, std: Any, hidden: int = 32, k: int = 2) -> Any:
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
            self.body = nn.Sequential(nn.Linear(len(mean), hidden), nn.ReLU(), nn.Linear(hidden, k))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body((x - self.mean) / self.std)

    return Net()


def make_net(n_features: int = 30, hidden: int = 32, k: int = 2) -> Any:
    """Factory for ``model.factory``: the architecture with placeholder constants (the weights file sets them)."""
    return net(np.zeros(n_features), np.ones(n_features), hidden, k)


def breast_cancer_splits(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "y"})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.insert(0, "patient", [f"p{i:04d}" for i in range(len(frame))])
    train, test = train_test_split(frame, test_size=0.25, random_state=seed, stratify=frame["y"])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def train_model(train: pd.DataFrame, seed: int = 0, epochs: int = 300) -> Any:
    import torch

    torch.manual_seed(seed)
    x = torch.tensor(train.drop(columns=["patient", "y"]).to_numpy(np.float32))
    y = torch.tensor(train["y"].to_numpy(np.int64))
    model = net(x.mean(0), x.std(0))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def export_onnx(model: Any, path: Path, n_features: int) -> Path:
    import torch

    torch.onnx.export(
        model, (torch.zeros(2, n_features),), str(path), input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
    )  # fmt: skip
    return path


def wrong_normalisation(model: Any) -> Any:
    """The planted defect: exported with a wrong normalisation constant (the mean of another data
    version: a quarter of a standard deviation off for every feature)."""
    import torch

    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.mean.add_(0.25 * bad.std)
    return bad.eval()


def int8_torchscript(model: Any, path: Path) -> Path:
    import torch
    from torch import nn

    q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    torch.jit.script(q).save(str(path))
    return path
