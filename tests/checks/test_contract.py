"""Every built-in check is held to the check contract (auditkit.testing.check_contract).

Each check runs on tiny tabular and tiny image inputs (twice, same seed: same result), must be
``not_applicable`` without inputs, and its parameters must round-trip through YAML and JSON.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from auditkit.engine.registry import build_registry
from auditkit.inputs.artifacts import Artifacts
from auditkit.testing import check_contract, make_artifacts, tiny_tabular

CARD = {
    "owners": [{"name": "ML team", "contact": "ml@example.com"}],
    "intended_use": "Second opinion for trained staff reviewing applications.",
    "out_of_scope": "Any automated decision without human review.",
    "limitations": "Small synthetic sample; not representative of anything real.",
    "ethical_considerations": "Group error rates are reviewed at every release.",
    "license": "Apache-2.0",
    "attestations": {
        "GOVERN 1.1": {"status": "met", "evidence": "policy P-1", "by": "A. Auditor", "date": "2026-11-01"}
    },
}
TRAINING = {"epochs": 2, "batch_size": 32, "seeds": [0, 1], "compare": [{"name": "SGD", "lr": 0.05}]}


@lru_cache(maxsize=1)
def _tab_model_state() -> dict:
    import torch

    torch.manual_seed(0)
    # x1, x2, colour: features: auto leaves out the sensitive 'sex' and the datetime 'when'
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return {k: v.clone() for k, v in net.state_dict().items()}


def tiny_tab() -> Artifacts:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    net.load_state_dict(_tab_model_state())
    return make_artifacts(
        tiny_tabular(), label="y", id="uid", group="household", time="when", sensitive=["sex"],
        model=net, spec={"card": CARD, "model": {"builtin": "mlp"}, "training": TRAINING},
    )  # fmt: skip


def tiny_img() -> Artifacts:
    import torch

    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        x = rng.uniform(0, 0.3, size=(n, 1, 8, 8)).astype(np.float32)
        for i, c in enumerate(y):
            x[i, 0, c * 2 : c * 2 + 3, :] += 0.6  # a class-dependent band: learnable
        return np.clip(x, 0, 1), y

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(256, 16),
        torch.nn.ReLU(), torch.nn.Linear(16, 3),
    )  # fmt: skip
    return make_artifacts(
        {"train": split(120), "test": split(60)}, model=net,
        spec={"card": CARD, "model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}, "training": TRAINING},
    )  # fmt: skip


CHECKS = build_registry(autoload=False).sorted()


@pytest.mark.parametrize("info", CHECKS, ids=[c.id for c in CHECKS])
def test_contract_on_tiny_tabular(info) -> None:  # type: ignore[no-untyped-def]
    check_contract(info.func, tiny_tab)


@pytest.mark.parametrize("info", CHECKS, ids=[c.id for c in CHECKS])
def test_contract_on_tiny_images(info) -> None:  # type: ignore[no-untyped-def]
    check_contract(info.func, tiny_img)


@lru_cache(maxsize=1)
def _reg_model_state() -> dict:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    return {k: v.clone() for k, v in net.state_dict().items()}


def tiny_reg() -> Artifacts:
    """A tiny regression subject: numeric target inferred as regression, a one-output model."""
    import torch

    from auditkit.testing import tiny_regression

    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    net.load_state_dict(_reg_model_state())
    return make_artifacts(
        tiny_regression(), label="y", id="uid", group="household", time="when", sensitive=["sex"],
        model=net, spec={"card": CARD, "model": {"builtin": "mlp"}, "training": TRAINING},
    )  # fmt: skip


@pytest.mark.parametrize("info", CHECKS, ids=[c.id for c in CHECKS])
def test_contract_on_tiny_regression(info) -> None:  # type: ignore[no-untyped-def]
    """Every check works on a regression subject or says not_applicable with a reason."""
    from auditkit.testing import run_check

    check_contract(info.func, tiny_reg)
    rec = run_check(info.func, tiny_reg(), seed=7)
    if rec["status"] == "not_applicable":
        assert rec.get("skip_reason"), f"{info.id}: not_applicable without a reason"
