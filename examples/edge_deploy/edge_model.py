"""The audited model's architecture: a small MLP for the edge with its normalisation inside, so the
audited module and every export are fed the same raw features (`model.factory` in audit.yaml)."""

from __future__ import annotations

import torch
from torch import nn


class EdgeMLP(nn.Module):
    def __init__(self, n_features: int = 30, hidden: int = 32, n_classes: int = 2) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)


def make_net(n_features: int = 30, hidden: int = 32, n_classes: int = 2) -> nn.Module:
    return EdgeMLP(n_features, hidden, n_classes)
