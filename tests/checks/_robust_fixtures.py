"""Small real models for robustness tests, trained in plain torch in about a second at 1 thread.

Stable API (other test modules import it read-only):
``breast_cancer_mlp()`` and ``digits_cnn()`` return ``(module, x_train, y_train, x_test, y_test)``;
both are cached (``functools.lru_cache``): do not train or mutate the returned module in place.
``digits_arrays()`` returns the split digits data; ``train_digits_cnn(x, y, seed)`` trains a
fresh CNN (used by the poisoning fixture).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, d: int, k: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, k)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Two 3×3 conv layers on (1, 8, 8) images, then a 64-unit penultimate layer."""

    def __init__(self, k: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Standardise(nn.Module):
    """Normalisation inside the model, so the model's input is the raw feature table."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _fit(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float, seed: int, batch: int = 64
) -> nn.Module:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def _split(n: int, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * (1 - test_share)))
    return np.sort(perm[:cut]), np.sort(perm[cut:])


@functools.lru_cache(maxsize=1)
def breast_cancer_mlp() -> tuple[nn.Module, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binary MLP on sklearn's breast cancer table (30 raw features; standardisation inside the model)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x, y = data.data.astype(np.float32), data.target.astype(np.int64)
    tr, te = _split(len(x), 0.3, seed=0)
    mean, std = x[tr].mean(0), x[tr].std(0) + 1e-6
    torch.manual_seed(0)
    model = nn.Sequential(Standardise(mean, std), MLP(x.shape[1], 2))
    _fit(model, x[tr], y[tr], epochs=60, lr=3e-3, seed=0)
    return model, x[tr], y[tr], x[te], y[te]


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sklearn digits as (n, 1, 8, 8) float32 in [0, 1]; 70/30 split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    tr, te = _split(len(x), 0.3, seed=1)
    return x[tr], y[tr], x[te], y[te]


def train_digits_cnn(x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 12) -> nn.Module:
    torch.manual_seed(seed)
    return _fit(SmallCNN(10), x, y, epochs=epochs, lr=3e-3, seed=seed)


@functools.lru_cache(maxsize=1)
def digits_cnn() -> tuple[nn.Module, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Small CNN on digits (n, 1, 8, 8) in [0, 1]; about 97% test accuracy."""
    xtr, ytr, xte, yte = digits_arrays()
    return train_digits_cnn(xtr, ytr, seed=0), xtr, ytr, xte, yte
