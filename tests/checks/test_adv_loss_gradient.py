"""AK-ADV-001's PGD step computes its loss gradient without ART's per-call bookkeeping: it must be
ART's ``PyTorchClassifier.loss_gradient``, bit for bit, for both losses, on a tabular and an image model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _robust_fixtures import breast_cancer_mlp, digits_cnn
from auditkit.checks._attacks import (
    AttackSpace,
    art_classifier,
    best_pgd_class,
    frozen_params,
    scaled_module,
)

from auditkit.inputs.model import wrap

torch.set_num_threads(1)


def _space(x: np.ndarray, y: np.ndarray, kind: str) -> AttackSpace:
    lo = x.min(0).astype(np.float32)
    scale = np.where(x.max(0) > lo, x.max(0) - lo, 1.0).astype(np.float32)
    z = ((x - lo) / scale).astype(np.float32)
    return AttackSpace(
        kind, z, y.astype(np.int64), np.arange(len(y)), lo, scale, np.ones(x.shape[1:], np.float32)
    )


@pytest.mark.parametrize("kind", ["tabular", "image"])
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_pgd_loss_gradient_is_arts(kind: str, loss: str) -> None:
    module, _, _, x, y = breast_cancer_mlp() if kind == "tabular" else digits_cnn()
    x, y = x[:64], y[:64]
    adapter = wrap(module, device="cpu", input_kind=kind, input_shape=tuple(x.shape[1:]))
    space = _space(x, y, kind)
    model = scaled_module(adapter, space)
    rng = np.random.default_rng(0)
    with frozen_params(module):
        clf = art_classifier(model, space, adapter.n_classes, loss, adapter.device)
        attack = best_pgd_class()(
            clf, norm=np.inf, eps=0.1, eps_step=0.01, max_iter=2, batch_size=64, verbose=False
        )
        attack.scaled = model
        labels = torch.from_numpy(space.y)
        onehot = torch.nn.functional.one_hot(labels, adapter.n_classes).float()
        attack._labels = labels
        # Points inside the ball, as PGD visits them (not only the clean point, where gradients are small).
        z = np.clip(space.z + rng.uniform(-0.1, 0.1, space.z.shape), 0, 1).astype(np.float32)
        zt = torch.from_numpy(z)
        ours = attack._loss_gradient(zt, onehot)
        art = clf.loss_gradient(x=zt, y=onehot)
    assert ours.shape == zt.shape
    assert float(ours.abs().sum()) > 0  # a real gradient, not an all-zero agreement
    assert torch.equal(ours, art)
