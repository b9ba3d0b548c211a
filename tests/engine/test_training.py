"""Training with the specified optimizers and schedules, and the built-in models.

Every torch.optim optimizer and every listed schedule trains the breast-cancer MLP (few epochs, a
subsample: fast). Built-in preprocessing is compared with an independent computation (numpy /
scikit-learn StandardScaler); saved artefacts reload to the same logits.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from auditkit.inputs.training import (
    SCHEDULE_ALIASES,
    resolve_optimizer,
    state_distance,
    stratified_split,
)
from auditkit.testing import make_artifacts


@lru_cache(maxsize=1)
def _cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame
    df.columns = [c.replace(" ", "_") for c in df.columns]
    df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return df.iloc[:400].reset_index(drop=True), df.iloc[400:].reset_index(drop=True)


def cancer_artifacts(
    training: dict[str, Any], n_train: int = 400, model: dict[str, Any] | None = None
) -> Any:
    train, test = _cancer()
    spec = {
        "model": {"builtin": "mlp", "device": "cpu", **(model or {})},
        "training": {"epochs": 3, "batch_size": 64, "seeds": [0], **training},
    }
    return make_artifacts({"train": train.iloc[:n_train], "test": test}, label="target", spec=spec)


ALL_OPTIMIZERS = sorted(
    n for n in dir(torch.optim)
    if isinstance(getattr(torch.optim, n), type) and issubclass(getattr(torch.optim, n), torch.optim.Optimizer)
    and n != "Optimizer"
)  # fmt: skip
# A sensible learning rate per optimizer (defaults of some, e.g. Adadelta lr=1, differ by 1000x).
LR = {"Adadelta": 1.0, "LBFGS": 0.1, "SGD": 0.1, "ASGD": 0.1, "Adagrad": 0.05, "Rprop": 0.01, "Muon": 0.02}


@pytest.mark.parametrize("name", ALL_OPTIMIZERS)
def test_every_torch_optimizer_trains_the_mlp(name: str) -> None:
    arts = cancer_artifacts({"optimizer": {"name": name, "lr": LR.get(name, 0.01)}}, n_train=200)
    if name == "SparseAdam":
        run = arts.training_runs()[0]
        assert run.error and "sparse" in run.error.lower()  # recorded with a reason, not raised
        return
    run = arts.training_runs()[0]
    assert run.finite, run.error
    assert run.epochs_run == 3 and len(run.step_loss) == 3 * run.steps_per_epoch
    assert all(np.isfinite(run.step_loss))
    assert run.train_loss[-1] < run.step_loss[0]  # it learned something
    pred = arts.predictions("test")
    assert (pred.pred == pred.y).mean() > 0.6


SCHEDULES = [*SCHEDULE_ALIASES, "LinearLR", "PolynomialLR"]


@pytest.mark.parametrize("warmup", [0, 1])
@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_trains_with_and_without_warmup(name: str, warmup: int) -> None:
    arts = cancer_artifacts(
        {"optimizer": {"name": "AdamW", "lr": 0.01}, "schedule": {"name": name, "warmup_epochs": warmup},
         "epochs": 4}, n_train=200)  # fmt: skip
    run = arts.training_runs()[0]
    assert run.finite, run.error
    lrs = np.asarray(run.step_lr)
    spe = run.steps_per_epoch
    if warmup:
        # linear warmup: lr rises over the first epoch up to the base lr
        assert lrs[0] < lrs[spe - 1] <= 0.01 + 1e-12
        assert np.all(np.diff(lrs[:spe]) > 0)
    if name == "constant" and not warmup:
        assert np.allclose(lrs, 0.01)
    if name in ("step", "multistep", "exponential", "cosine"):
        assert lrs[-1] < 0.01  # the schedule decayed


def test_step_schedule_steps_per_epoch_with_explicit_args() -> None:
    arts = cancer_artifacts(
        {
            "optimizer": {"name": "SGD", "lr": 0.1},
            "schedule": {"name": "step", "step_size": 1, "gamma": 0.5},
            "epochs": 3,
        }
    )
    run = arts.training_runs()[0]
    spe = run.steps_per_epoch
    assert np.allclose(run.step_lr[:spe], 0.1)
    assert np.allclose(run.step_lr[spe : 2 * spe], 0.05)
    assert np.allclose(run.step_lr[2 * spe :], 0.025)


def test_import_path_optimizer_and_unknown_name() -> None:
    assert resolve_optimizer("torch.optim:Adam") is torch.optim.Adam
    assert resolve_optimizer("adamw") is torch.optim.AdamW
    with pytest.raises(ValueError, match="unknown optimizer"):
        resolve_optimizer("Adamm")


def test_divergence_is_recorded_not_raised() -> None:
    arts = cancer_artifacts({"optimizer": {"name": "SGD", "lr": 1e6}, "epochs": 5})
    run = arts.training_runs()[0]
    assert not run.finite
    assert run.nonfinite_step is not None
    assert not np.isfinite(run.step_loss[-1]) or not np.isfinite(run.step_grad_norm[-1])


def test_gradient_clipping_by_norm_bounds_each_update() -> None:
    clip, lr = 1e-3, 1.0
    arts = cancer_artifacts({"optimizer": {"name": "SGD", "lr": lr}, "grad_clip": clip, "epochs": 1})
    from auditkit.inputs.training import build_module

    inputs = arts.training_inputs()
    torch.manual_seed(0)
    fresh = build_module(inputs, inputs.rows().x_train, 2)
    run = arts.training_runs()[0]
    # plain SGD: total movement ≤ lr × clip × steps (triangle inequality), recorded norms are pre-clip
    with torch.no_grad():
        moved = torch.sqrt(
            sum(
                ((a - b) ** 2).sum() for a, b in zip(fresh.parameters(), run.module.parameters(), strict=True)
            )
        )
    assert float(moved) <= lr * clip * len(run.step_loss) + 1e-6
    assert max(run.step_grad_norm) > clip


def test_gradient_clipping_by_value_runs() -> None:
    arts = cancer_artifacts({"optimizer": {"name": "SGD", "lr": 0.1}, "grad_clip_value": 0.01})
    assert arts.training_runs()[0].finite


def test_validation_split_is_stratified_and_seeded() -> None:
    y = np.array([0] * 80 + [1] * 20)
    tr, va = stratified_split(y, 0.25, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 100
    assert (y[va] == 1).sum() == 5 and (y[va] == 0).sum() == 20
    tr2, va2 = stratified_split(y, 0.25, seed=3)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(y, 0.25, seed=4)[1])


def test_early_stopping_stops_and_restores_best() -> None:
    arts = cancer_artifacts({"optimizer": {"name": "Adam", "lr": 0.05}, "epochs": 60, "early_stopping": 2})
    run = arts.training_runs()[0]
    assert run.stopped_early and run.epochs_run < 60
    assert run.best_epoch is not None and run.val_loss[run.best_epoch] == min(run.val_loss)


def test_same_seed_reproduces_and_seeds_differ() -> None:
    arts = cancer_artifacts({"optimizer": {"name": "AdamW", "lr": 0.01}, "seeds": [0, 1]})
    runs = arts.training_runs()
    again = arts.rerun()
    assert state_distance(runs[0].module, again.module) == 0.0
    assert state_distance(runs[0].module, runs[1].module) > 0.0


def test_recorded_costs_and_curves() -> None:
    arts = cancer_artifacts({"optimizer": {"name": "AdamW", "lr": 0.01}})
    run = arts.training_runs()[0]
    module = run.module
    assert run.params == sum(p.numel() for p in module.parameters())
    # flop counter: a Linear(i, o) forward is 2·i·o FLOPs per sample
    dims = [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert run.flops_per_sample_forward == pytest.approx(sum(2 * i * o for i, o in dims))
    assert run.flops_per_sample_train > run.flops_per_sample_forward
    assert run.total_flops == pytest.approx(run.flops_per_sample_train * run.samples_seen)
    assert run.samples_per_s > 0 and run.wall_time_s > 0 and run.peak_memory_bytes > 0
    assert len(run.train_loss) == len(run.val_loss) == len(run.val_metric) == 3
    assert run.n_val == round(0.15 * (run.n_train + run.n_val)) or abs(run.n_val - 0.15 * 400) <= 2


def test_training_inputs_are_a_small_pickle_that_trains_the_same_run() -> None:
    """The payload of parallel training: arrays and specs (no DataFrames, no cache), and a run
    trained from its unpickled copy is the audited run, bit for bit."""
    import pickle

    from auditkit.inputs.training import train_one

    arts = cancer_artifacts({"optimizer": {"name": "AdamW", "lr": 0.01}})
    inputs = arts.training_inputs()
    assert arts.training_inputs() is inputs
    blob = pickle.dumps(inputs, protocol=pickle.HIGHEST_PROTOCOL)
    rows = inputs.rows()
    arrays = sum(a.nbytes for a in (rows.x_train, rows.y_train, rows.x_val, rows.y_val) if a is not None)
    assert len(blob) < arrays + 20_000
    assert b"pandas" not in blob and b"Artifacts" not in blob
    copy = pickle.loads(blob)
    run = train_one(copy, inputs.training.optimizer.model_dump(), 0, config="main")
    assert state_distance(run.module, arts.training_runs()[0].module) == 0.0
    assert run.step_loss == arts.training_runs()[0].step_loss


def test_compare_configs_are_lazy_and_cached() -> None:
    arts = cancer_artifacts(
        {"optimizer": {"name": "AdamW", "lr": 0.01}, "compare": [{"name": "SGD", "lr": 0.1}]}
    )
    arts.training_runs()
    assert "training_runs:compare" not in arts._cache
    first = arts.compare_runs()
    assert arts.compare_runs() is first
    assert first["compare:0"][0].optimizer["name"] == "SGD"


# ------------------------------------------------------------------------------------------------
# Built-in models
# ------------------------------------------------------------------------------------------------


def test_mlp_preprocessing_inside_the_module_matches_independent_computation() -> None:
    from sklearn.preprocessing import StandardScaler

    from auditkit.inputs.builtin_models import build

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    x[:, 2] = rng.integers(0, 3, 50)  # categorical codes 0..2
    x[[1, 5], 0] = np.nan
    model = build("mlp", x_train=x, n_classes=2, numeric_idx=[0, 1], categorical={2: 3})
    med = np.nanmedian(x[:, 0])
    filled = x[:, :2].copy()
    filled[np.isnan(filled[:, 0]), 0] = med
    expected = StandardScaler().fit(filled).transform(filled)
    got = model.preprocess(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got[:, :2], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got[:, 2:], np.eye(3)[x[:, 2].astype(int)])
    # an unknown category (-1) and a missing one (NaN) become all-zero one-hot rows
    odd = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, float("nan")]])
    assert model.preprocess(odd)[:, 2:].abs().sum() == 0


def test_builtin_model_is_saved_into_the_bundle_and_reloads_identically() -> None:
    import hashlib
    import json

    from safetensors.torch import load

    from auditkit.inputs.builtin_models import rebuild

    arts = cancer_artifacts({"optimizer": {"name": "AdamW", "lr": 0.01}})
    adapter = arts.model()
    x = arts.dataset("test").x
    logits = adapter.logits(x)
    blob = arts.outputs["model/model.safetensors"]
    assert adapter.source["sha256"] == hashlib.sha256(blob).hexdigest()
    assert adapter.source["safe_to_load"] is True
    meta = json.loads(_metadata(blob)["auditkit_config"])
    fresh = rebuild(meta)
    fresh.load_state_dict(load(blob))
    np.testing.assert_allclose(
        fresh.eval()(torch.from_numpy(x)).detach().numpy(), logits, rtol=1e-5, atol=1e-5
    )
    scripted = torch.jit.load(io.BytesIO(arts.outputs["model/model.pt"]))
    np.testing.assert_allclose(scripted(torch.from_numpy(x)).detach().numpy(), logits, rtol=1e-5, atol=1e-5)
    # no source paths in the archive (its members are deflated: read them): the bytes do not depend
    # on where auditkit and torch are installed
    import zipfile

    import auditkit.inputs.builtin_models as bm

    paths = [Path(bm.__file__).parent.as_posix().encode(), Path(torch.__file__).parent.as_posix().encode()]
    with zipfile.ZipFile(io.BytesIO(arts.outputs["model/model.pt"])) as z:
        members = {n: z.read(n) for n in z.namelist()}
    assert members and not any(p in data for data in members.values() for p in paths)
    # penultimate embeddings come from the head's input
    assert adapter.embeddings(x[:5]).shape == (5, 32)


def _metadata(blob: bytes) -> dict[str, str]:
    import json
    import struct

    (n,) = struct.unpack("<Q", blob[:8])
    return dict(json.loads(blob[8 : 8 + n]).get("__metadata__", {}))


def test_builtin_cnn_trains_on_digits() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target
    arts = make_artifacts(
        {"train": (x[:600], y[:600]), "test": (x[1500:], y[1500:])},
        spec={"model": {"builtin": "cnn", "device": "cpu", "input": {"kind": "image", "range": [0, 1]}},
              "training": {"optimizer": {"name": "Adam", "lr": 0.01}, "epochs": 4, "batch_size": 64}},
    )  # fmt: skip
    adapter = arts.model()
    pred = arts.predictions("test")
    assert adapter.n_classes == 10
    assert (pred.pred == pred.y).mean() > 0.7
    assert arts.outputs["model/model.pt"]
