"""AK-ADV-003: corruption accuracy recomputed independently, severity ordering, tabular semantics, gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _robust_fixtures import breast_cancer_mlp, digits_cnn
from auditkit.checks.corruption import natural_corruptions
from torch import nn

from auditkit.testing import check_contract, make_artifacts, run_check

torch.set_num_threads(1)
IMG_SPEC = {"model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}}


def digits_arts():  # type: ignore[no-untyped-def]
    m, xtr, ytr, xte, yte = digits_cnn()
    return make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=m, spec=IMG_SPEC)


def rows_of(rec: dict) -> dict[tuple[str, int], list]:  # type: ignore[type-arg]
    return {(r[0], r[1]): r for r in rec["evidence"]["accuracy by corruption and severity"]["rows"]}


def test_image_corruptions_recomputed_independently() -> None:
    m, xtr, ytr, xte, yte = digits_cnn()
    rec = run_check(natural_corruptions, digits_arts())
    rows = rows_of(rec)
    assert len(rows) == 7 * 5
    with torch.no_grad():

        def acc(x: np.ndarray) -> float:
            return float((m(torch.from_numpy(x.astype(np.float32))).argmax(1).numpy() == yte).mean())

        assert abs(rows[("brightness", 3)][3] - acc(np.clip(xte + 0.3, 0, 1))) < 1e-4
        mean = xte.mean(axis=(1, 2, 3), keepdims=True)
        assert abs(rows[("contrast", 4)][3] - acc((xte - mean) * 0.1 + mean)) < 1e-4  # ImageNet-C: 0.1
        # 2×2 block averages = pixelation to half resolution
        blocks = xte.reshape(-1, 1, 4, 2, 4, 2).mean(axis=(3, 5)).repeat(2, axis=2).repeat(2, axis=3)
        assert abs(rows[("pixelate", 4)][3] - acc(blocks)) < 1e-4
        clean = acc(xte)
    metrics = {x["name"]: x for x in rec["metrics"]}
    assert metrics["clean_accuracy"]["value"] == clean
    drops = [clean - r[3] for r in rows.values()]
    assert abs(metrics["mean_relative_corruption_error"]["value"] - np.mean(drops)) < 1e-3
    lo, hi = metrics["mean_relative_corruption_error"]["ci"]
    assert lo < metrics["mean_relative_corruption_error"]["value"] < hi
    # severity 5 hurts more than severity 1 for the monotone corruptions
    for c in ("gaussian_noise", "impulse_noise", "gaussian_blur", "contrast", "brightness", "occlusion"):
        assert rows[(c, 5)][3] < rows[(c, 1)][3] - 0.05, c


def test_gate_pass_and_fail() -> None:
    ok = run_check(natural_corruptions, digits_arts(), params={"max_relative_error": 0.3})
    assert ok["status"] == "passed"
    bad = run_check(natural_corruptions, digits_arts(), params={"max_relative_error": 0.05})
    assert bad["status"] == "failed"
    assert any(f["metric"] == "mean_relative_corruption_error" for f in bad["findings"])
    # a milder subset: noise at severities 1-2 barely moves a digits CNN
    mild = run_check(natural_corruptions, digits_arts(),
                     params={"corruptions": ["gaussian_noise"], "severities": [1, 2], "max_relative_error": 0.05})  # fmt: skip
    assert mild["status"] == "passed"
    assert len(mild["evidence"]["accuracy by corruption and severity"]["rows"]) == 2


def test_deterministic_for_a_seed() -> None:
    a = run_check(
        natural_corruptions, digits_arts(), seed=5, params={"corruptions": ["impulse_noise", "occlusion"]}
    )
    b = run_check(
        natural_corruptions, digits_arts(), seed=5, params={"corruptions": ["impulse_noise", "occlusion"]}
    )
    assert a["metrics"] == b["metrics"]
    check_contract(natural_corruptions)


class OnlyColumn(nn.Module):
    def __init__(self, j: int, t: float) -> None:
        super().__init__()
        self.j, self.t = j, t
        self.lin = nn.Linear(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = (x[:, self.j : self.j + 1] > self.t).float()
        return torch.cat([1 - v, v], dim=1) + 0 * self.lin(x[:, :1])


def test_tabular_noise_spares_categorical_dropout_does_not() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int) -> pd.DataFrame:
        region = rng.choice(["n", "s"], n, p=[0.3, 0.7])
        return pd.DataFrame(
            {"income": rng.normal(50, 10, n), "region": region, "y": (region == "n").astype(int)}
        )

    # region is coded n=0, s=1 (train categories sorted); the model predicts 1 when the code is < 0.5
    arts = make_artifacts({"train": frame(300), "test": frame(300)}, label="y",
                          model=nn.Sequential(OnlyColumn(1, 0.5), nn.Linear(2, 2)))  # fmt: skip
    model = arts.model().module
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        model[1].bias.zero_()
    rec = run_check(natural_corruptions, arts)
    rows = rows_of(rec)
    assert rec["metrics"][0]["value"] == 1.0
    assert all(rows[("gaussian_noise", s)][3] == 1.0 for s in range(1, 6))  # codes untouched by noise
    # dropout puts the code to the train mode ("s"): the "n" rows (30%) dropped at rate p are lost
    assert rows[("feature_dropout", 5)][3] < 0.95


def test_breast_cancer_mlp() -> None:
    m, xtr, ytr, xte, yte = breast_cancer_mlp()
    arts = make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=m)
    rec = run_check(natural_corruptions, arts)
    assert rec["status"] == "passed"
    rows = rows_of(rec)
    assert set(c for c, _ in rows) == {"gaussian_noise", "feature_dropout"}
    assert rows[("feature_dropout", 5)][3] < rows[("feature_dropout", 1)][3]


def test_relative_mce_against_a_baseline_model() -> None:
    """Hendrycks & Dietterich's Relative mCE: this model's drop per corruption over a reference
    model's, averaged. The reference is the previous release's results (its per-corruption drops)."""
    from _robust_fixtures import train_digits_cnn

    m, xtr, ytr, xte, yte = digits_cnn()
    weak = train_digits_cnn(xtr, ytr, seed=3, epochs=2)
    params = {"corruptions": ["gaussian_blur", "contrast"], "severities": [2, 4]}
    old = run_check(natural_corruptions, make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=weak,
                                                        spec=IMG_SPEC), params=params)  # fmt: skip
    base = {x["name"]: x for x in old["metrics"]}["mean_relative_corruption_error"]["details"][
        "per_corruption"
    ]
    new = run_check(natural_corruptions, digits_arts(), params={**params, "baseline_drops": base,
                                                                "max_relative_mce": 10.0, "max_relative_error": 1.0})  # fmt: skip
    rel = {x["name"]: x for x in new["metrics"]}["relative_mce"]

    # independent arithmetic from both evidence tables: Σ_s (acc_clean − acc_s) per corruption
    def drops(rec: dict) -> dict[str, float]:  # type: ignore[type-arg]
        return {c: sum(r[6] for r in rows_of(rec).values() if r[0] == c) for c in params["corruptions"]}

    d_new, d_old = drops(new), drops(old)
    expected = np.mean([d_new[c] / d_old[c] for c in params["corruptions"]])
    assert abs(rel["value"] - expected) < 2e-3
    assert rel["ci"][0] <= rel["value"] <= rel["ci"][1]
    assert new["status"] == "passed"
    strict = run_check(natural_corruptions, digits_arts(), params={**params, "baseline_drops": base,
                                                                   "max_relative_mce": 0.5 * rel["value"]})  # fmt: skip
    assert strict["status"] == "failed" and any(f["metric"] == "relative_mce" for f in strict["findings"])
    # against itself the ratio is exactly one
    own = {x["name"]: x for x in new["metrics"]}["mean_relative_corruption_error"]["details"][
        "per_corruption"
    ]
    same = run_check(natural_corruptions, digits_arts(), params={**params, "baseline_drops": own})
    assert abs({x["name"]: x for x in same["metrics"]}["relative_mce"]["value"] - 1.0) < 1e-9
    # a baseline that misses a corruption is an error, not a silent pass
    partial = run_check(
        natural_corruptions, digits_arts(), params={**params, "baseline_drops": {"contrast": 0.1}}
    )
    assert partial["status"] == "error" and "gaussian_blur" in partial["error"]["message"]


@pytest.mark.parametrize(
    ("fn_path", "name", "value", "needle"),
    [
        (
            "auditkit.checks.corruption:natural_corruptions",
            "severities",
            [0, 2],
            "Input should be 1, 2, 3, 4 or 5",
        ),
        ("auditkit.checks.adversarial:white_box_evasion", "norms", ["l1"], "Input should be 'inf' or 'l2'"),
        ("auditkit.checks.adversarial:white_box_evasion", "steps", 0, "greater than or equal to 1"),
        ("auditkit.checks.deployment:inference_cost", "repeats", 4, "greater than or equal to 5"),
        (
            "auditkit.checks.adversarial:black_box_and_masking",
            "losses",
            ["hinge"],
            "Input should be 'ce' or 'margin'",
        ),
        ("auditkit.checks.adversarial:black_box_and_masking", "losses", [], "at least 1 item"),
        ("auditkit.checks.adversarial:black_box_and_masking", "n_blackbox", 0, "greater than or equal to 1"),
        (
            "auditkit.checks.adversarial:black_box_and_masking",
            "unbounded_steps",
            0,
            "greater than or equal to 1",
        ),
        (
            "auditkit.checks.adversarial:black_box_and_masking",
            "max_unbounded_accuracy",
            1.5,
            "less than or equal to 1",
        ),
        (
            "auditkit.checks.adversarial:black_box_and_masking",
            "epsilons",
            [0.1, -0.1],
            "greater than or equal to 0",
        ),
        ("auditkit.checks.adversarial:black_box_and_masking", "step_ratio", 0, "greater than 0"),
    ],
)
def test_typed_param_domains_are_refused_before_the_run(
    fn_path: str, name: str, value: object, needle: str
) -> None:
    import importlib

    from auditkit import SpecError, check_info
    from auditkit.engine.runner import validate_params

    mod, attr = fn_path.split(":")
    info = check_info(getattr(importlib.import_module(mod), attr))
    assert info is not None
    with pytest.raises(SpecError, match=needle):
        validate_params(info, {name: value}, f"checks.params.{info.id}")


def test_corruption_grid_tasks_identical_inline_two_workers_and_ray(ray_cluster: object) -> None:
    """AK-ADV-003 runs one task per corruption × severity: the same record whatever ran them."""
    from auditkit.engine import compute

    params = {"max_samples": 150, "severities": [1, 3, 5]}

    def record(executor: compute.Executor) -> dict:  # type: ignore[type-arg]
        with compute.use(executor):
            rec = run_check(natural_corruptions, digits_arts(), params=params)
        return {k: v for k, v in rec.items() if k != "duration_s"}

    inline = record(compute.InlineExecutor())
    assert inline["status"] != "error", inline["error"]
    assert record(compute.LocalPool(2)) == inline
    assert record(compute.make_executor(compute.ComputeConfig(kind="ray"))) == inline
