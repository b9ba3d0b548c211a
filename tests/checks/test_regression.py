"""Regression: toolkit metrics against scikit-learn, bootstrap coverage, and pass/fail cases for each
check's regression path on data built for it (issue #22)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from auditkit.checks import adversarial, balance, corruption, fairness, performance
from sklearn import metrics as skm

from auditkit.testing import make_artifacts, run_check
from auditkit.toolkit import regression as R

# ------------------------------------------------------------------------------------------------
# toolkit.regression
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.lognormal(size=257) + 0.1
    pred = y + rng.standard_t(3, size=257)
    got = R.regression_metrics(y, pred, ("rmse", "mae", "median_ae", "r2", "mape", "mse"))
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred), rel=1e-12)
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, pred), rel=1e-12)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-12)
    assert got["median_ae"] == pytest.approx(skm.median_absolute_error(y, pred), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-12)
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred), rel=1e-12)
    # MAPE is undefined (NaN) once a label is not positive; R² of a constant target too
    assert np.isnan(R.regression_metrics(y - 5, pred, ("mape",))["mape"])
    assert np.isnan(R.regression_metrics(np.ones(5), np.arange(5.0), ("r2",))["r2"])


def test_pinball_loss_and_crps_equal_references() -> None:
    from scipy.integrate import quad
    from scipy.stats import norm

    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    levels = [0.1, 0.5, 0.9]
    q = np.column_stack([rng.normal(loc=norm.ppf(a), size=200) for a in levels])
    got = R.pinball_loss(y, q, levels)
    for j, a in enumerate(levels):
        assert got[a] == pytest.approx(skm.mean_pinball_loss(y, q[:, j], alpha=a), rel=1e-12)
    # CRPS closed form against its definition ∫ (F(t) − 1{t ≥ y})² dt
    mean, sd, yy = 0.3, 1.7, -0.4
    numeric = quad(lambda t: (norm.cdf(t, mean, sd) - (t >= yy)) ** 2, -30, 30, points=[yy], limit=200)[0]
    assert R.gaussian_crps([yy], [mean], [sd])[0] == pytest.approx(numeric, rel=1e-6)


def test_weighted_median_matches_the_median_of_explicit_resamples() -> None:
    rng = np.random.default_rng(4)
    v = np.abs(rng.normal(size=41))
    order = np.argsort(v)
    for n_rows in (41, 40):
        idx = rng.integers(0, 41, size=(200, n_rows))
        w = np.stack([np.bincount(i, minlength=41) for i in idx]).astype(float)
        got = R._weighted_median(v[order], w[:, order])
        want = np.array([np.median(v[i]) for i in idx])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_bootstrap_intervals_cover_the_true_rmse_and_mae_about_95_percent() -> None:
    """Simulation: errors N(0, σ²); true RMSE = σ, true MAE = σ√(2/π)."""
    rng = np.random.default_rng(5)
    sigma, n, sims = 2.0, 200, 400
    hits = {"rmse": 0, "mae": 0}
    truth = {"rmse": sigma, "mae": sigma * np.sqrt(2 / np.pi)}
    for _ in range(sims):
        y = rng.normal(size=n)
        pred = y + rng.normal(scale=sigma, size=n)
        cis = R.bootstrap_regression(y, pred, ("rmse", "mae"), n_boot=400, rng=rng)
        for m in hits:
            hits[m] += cis[m][0] <= truth[m] <= cis[m][1]
    for m, k in hits.items():
        assert 0.92 <= k / sims <= 0.975, (m, k / sims)


def test_large_n_poisson_bootstrap_agrees_with_the_exact_one() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=30_000)
    pred = y + rng.normal(scale=1.5, size=30_000)
    exact = R.bootstrap_regression(
        y, pred, ("rmse", "r2"), n_boot=300, rng=np.random.default_rng(0), exact_max=50_000
    )
    poisson = R.bootstrap_regression(
        y, pred, ("rmse", "r2"), n_boot=300, rng=np.random.default_rng(0), exact_max=10_000
    )
    for m in ("rmse", "r2"):
        w_exact, w_pois = exact[m][1] - exact[m][0], poisson[m][1] - poisson[m][0]
        assert w_pois == pytest.approx(w_exact, rel=0.2)
        assert abs(np.mean(poisson[m]) - np.mean(exact[m])) < 0.25 * w_exact


def test_pit_is_uniform_for_a_calibrated_gaussian_and_not_for_an_overconfident_one() -> None:
    rng = np.random.default_rng(7)
    mean = rng.normal(size=2000)
    y = mean + rng.normal(size=2000)
    good = R.pit_uniformity(R.gaussian_pit(y, mean, np.ones(2000)))
    bad = R.pit_uniformity(R.gaussian_pit(y, mean, np.full(2000, 0.3)))
    assert good["p_value"] > 0.01 and bad["p_value"] < 1e-6 and bad["ks"] > 3 * good["ks"]
    lo, hi = R.gaussian_interval(mean, np.ones(2000), 0.9)
    assert R.interval_coverage(y, lo, hi)[0] == pytest.approx(0.9, abs=0.03)


def test_wasserstein_equals_scipy_and_its_interval_separates_a_shift() -> None:
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(8)
    a, b = rng.normal(size=400), rng.normal(loc=0.5, size=300)
    assert R.wasserstein(a, b) == wasserstein_distance(a, b)
    lo, hi = R.wasserstein_ci(a, b, n_boot=300, rng=rng)
    assert 0.2 < lo <= R.wasserstein(a, b) <= hi
    lo0, _ = R.wasserstein_ci(a, rng.normal(size=300), n_boot=300, rng=rng)
    assert lo0 < 0.1


# ------------------------------------------------------------------------------------------------
# Check fixtures: a linear regression subject with controllable faults
# ------------------------------------------------------------------------------------------------

W = np.array([3.0, -2.0])


def _frame(
    n: int, rng: np.random.Generator, *, noise: float = 0.5, group_noise: float = 0.0, shift: float = 0.0
) -> pd.DataFrame:
    x = rng.normal(size=(n, 2))
    g = rng.choice(["a", "b"], size=n)
    y = (
        x @ W
        + 10.0
        + shift
        + rng.normal(scale=noise, size=n)
        + (g == "b") * rng.normal(scale=group_noise, size=n)
    )
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "g": g, "y": y})


class Linear(torch.nn.Module):
    """f(x) = w·x + b, optionally [mean, log_var] or quantiles (noise sd ``sd``), a group bias."""

    def __init__(self, w: np.ndarray = W, b: float = 10.0, *, out: str = "point", sd: float = 0.5,
                 levels: tuple[float, ...] = (0.05, 0.5, 0.95)) -> None:  # fmt: skip
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)
        with torch.no_grad():
            self.lin.weight[:] = torch.tensor([list(w)], dtype=torch.float32)
            self.lin.bias[:] = b
        self.out, self.sd = out, sd
        from scipy.stats import norm

        self.z = torch.tensor([norm.ppf(a) for a in levels], dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.lin(x)
        if self.out == "gaussian":
            return torch.cat([m, torch.full_like(m, 2 * np.log(self.sd))], dim=1)
        if self.out == "quantiles":
            return m + self.sd * self.z
        return m


def _arts(model: torch.nn.Module, train: pd.DataFrame, test: pd.DataFrame, **spec: object):
    return make_artifacts({"train": train, "test": test}, label="y", features=["x1", "x2"], sensitive=["g"],
                          model=model, spec={"model": {"builtin": "mlp", **spec}})  # fmt: skip


def _metric(rec: dict, name: str) -> dict:
    return next(m for m in rec["metrics"] if m["name"] == name)


# ------------------------------------------------------------------------------------------------
# AK-PERF-001 … 004
# ------------------------------------------------------------------------------------------------


def test_perf001_metrics_equal_sklearn_and_gate_on_the_conservative_bound() -> None:
    rng = np.random.default_rng(10)
    train, test = (
        _frame(400, rng, shift=20.0),
        _frame(300, rng, shift=20.0),
    )  # positive labels: MAPE is defined
    arts = _arts(Linear(b=30.0), train, test)
    pred = test[["x1", "x2"]].to_numpy() @ W + 30.0
    rec = run_check(performance.heldout_performance, arts, params={"max_rmse": 0.6, "min_r2": 0.9})
    assert rec["status"] == "passed", rec["findings"]
    assert _metric(rec, "rmse")["value"] == pytest.approx(skm.root_mean_squared_error(test.y, pred), rel=1e-5)
    assert _metric(rec, "r2")["value"] == pytest.approx(skm.r2_score(test.y, pred), rel=1e-5)
    assert _metric(rec, "median_ae")["value"] == pytest.approx(
        skm.median_absolute_error(test.y, pred), rel=1e-5
    )
    assert _metric(rec, "mape")["value"] == pytest.approx(
        skm.mean_absolute_percentage_error(test.y, pred), rel=1e-4
    )
    rmse = _metric(rec, "rmse")
    assert rmse["ci"][0] < rmse["value"] < rmse["ci"][1] and rmse["unit"] == "y units"
    # a maximum between the point estimate and the upper bound fails conservatively, passes on the value
    limit = (rmse["value"] + rmse["ci"][1]) / 2
    tight = run_check(
        performance.heldout_performance, _arts(Linear(b=30.0), train, test), params={"max_rmse": limit}
    )
    assert tight["status"] == "failed" and [f["key"] for f in tight["findings"]] == ["rmse"]
    loose = run_check(performance.heldout_performance, _arts(Linear(b=30.0), train, test),
                      params={"max_rmse": limit, "bound": "value"})  # fmt: skip
    assert loose["status"] == "passed"


def test_perf001_fails_a_model_that_does_not_beat_the_train_mean() -> None:
    rng = np.random.default_rng(11)
    train, test = _frame(400, rng), _frame(300, rng)
    weak = Linear(
        w=np.array([0.0, 0.3]), b=float(train.y.mean())
    )  # x2's true weight is −2: worse than the mean
    rec = run_check(performance.heldout_performance, _arts(weak, train, test))
    base = _metric(rec, "rmse_minus_mean_baseline")
    assert rec["status"] == "failed" and base["passed"] is False
    assert base["details"]["baseline_rmse"] == pytest.approx(
        skm.root_mean_squared_error(test.y, np.full(len(test), train.y.mean())), rel=1e-9
    )
    assert [f["key"] for f in rec["findings"] if f["severity"] != "info"] == ["mean baseline"]
    negative = run_check(performance.heldout_performance,
                         _arts(Linear(b=-10.0), _frame(400, rng, shift=-20), _frame(300, rng, shift=-20)))  # fmt: skip
    assert "mape" not in {m["name"] for m in negative["metrics"]}  # some labels ≤ 0: MAPE is undefined


def test_perf002_flags_overfitting_and_passes_a_model_that_generalises() -> None:
    rng = np.random.default_rng(12)
    train = _frame(300, rng, noise=0.0)  # the model reproduces train exactly ...
    test = _frame(300, rng, noise=4.0)  # ... and test is mostly noise
    rec = run_check(performance.generalisation_gap, _arts(Linear(), train, test))
    assert rec["status"] == "failed" and _metric(rec, "r2_gap")["ci"][0] > 0.1
    same = run_check(performance.generalisation_gap, _arts(Linear(), _frame(300, rng), _frame(300, rng)))
    assert same["status"] == "passed"
    gap = _metric(same, "r2_gap")
    assert gap["ci"][0] < 0 < gap["ci"][1]


def test_perf003_coverage_and_pit_for_gaussian_and_quantile_outputs() -> None:
    rng = np.random.default_rng(13)
    train, test = _frame(300, rng), _frame(600, rng)
    good = run_check(
        performance.calibration, _arts(Linear(out="gaussian", sd=0.5), train, test, output="gaussian")
    )
    assert good["status"] == "passed", good["findings"]
    cov = _metric(good, "coverage")
    assert cov["details"]["nominal"] == 0.9 and cov["ci"][0] <= 0.9 <= cov["ci"][1]
    over = run_check(
        performance.calibration, _arts(Linear(out="gaussian", sd=0.15), train, test, output="gaussian")
    )
    assert over["status"] == "failed"
    assert {f["key"] for f in over["findings"]} >= {"coverage_gap", "pit_ks"}
    q = {"quantiles": [0.05, 0.5, 0.95]}
    qgood = run_check(performance.calibration, _arts(Linear(out="quantiles", sd=0.5), train, test, output=q))
    assert qgood["status"] == "passed", qgood["findings"]
    assert _metric(qgood, "coverage")["details"]["nominal"] == pytest.approx(0.9)
    qwide = run_check(performance.calibration, _arts(Linear(out="quantiles", sd=2.0), train, test, output=q))
    assert qwide["status"] == "failed" and _metric(qwide, "coverage")["value"] > 0.99
    point = run_check(performance.calibration, _arts(Linear(), train, test))
    assert point["status"] == "not_applicable" and "model.output: point" in point["skip_reason"]


def test_perf004_finds_the_slice_with_larger_errors() -> None:
    rng = np.random.default_rng(14)
    train = _frame(300, rng)
    bad = run_check(performance.slice_performance, _arts(Linear(), train, _frame(600, rng, group_noise=2.0)))
    assert bad["status"] == "failed"
    worst = _metric(bad, "worst_slice_rmse_ratio")
    assert worst["details"]["slice"] == "g=b" and worst["value"] > 1.25
    ok = run_check(performance.slice_performance, _arts(Linear(), train, _frame(600, rng)))
    assert ok["status"] == "passed"


# ------------------------------------------------------------------------------------------------
# AK-FAIR-001
# ------------------------------------------------------------------------------------------------


class GroupBiased(torch.nn.Module):
    """Predicts from x1, x2 and adds ``bias`` for rows whose third input (group code) is 1."""

    def __init__(self, bias: float) -> None:
        super().__init__()
        self.lin = Linear()
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x[:, :2]) + self.bias * x[:, 2:3]


def test_fair001_mean_prediction_gap_and_error_parity() -> None:
    rng = np.random.default_rng(15)
    train, test = _frame(300, rng), _frame(600, rng)
    for df in (train, test):
        df["gcode"] = (df.g == "b").astype(float)

    def arts(model: torch.nn.Module, tr: pd.DataFrame, te: pd.DataFrame):
        return make_artifacts({"train": tr, "test": te}, label="y", features=["x1", "x2", "gcode"], sensitive=["g"],
                              model=model, spec={"model": {"builtin": "mlp"}})  # fmt: skip

    params = {"max_mean_prediction_gap": 0.5}
    biased = run_check(fairness.group_fairness, arts(GroupBiased(4.0), train, test), params=params)
    assert biased["status"] == "failed"
    gap = _metric(biased, "mean_prediction_gap")
    sd = float(test.y.std(ddof=1))
    by_group = test.assign(p=test[["x1", "x2"]].to_numpy() @ W + 10 + 4.0 * test.gcode).groupby("g").p.mean()
    assert gap["value"] == pytest.approx((by_group.max() - by_group.min()) / sd, rel=1e-4)
    assert "g:rmse_ratio" in {f["key"] for f in biased["findings"]}  # the bias is also an error
    fair = run_check(fairness.group_fairness, arts(GroupBiased(0.0), train, test), params=params)
    assert fair["status"] == "passed", fair["findings"]
    noisy = test.copy()
    noisy["y"] = noisy.y + (noisy.g == "b") * rng.normal(scale=2.0, size=len(noisy))
    parity = run_check(fairness.group_fairness, arts(GroupBiased(0.0), train, noisy))
    assert parity["status"] == "failed" and _metric(parity, "rmse_ratio")["ci"][0] > 1.25


# ------------------------------------------------------------------------------------------------
# AK-BAL-001 / 002 (no model)
# ------------------------------------------------------------------------------------------------


def test_bal001_heavy_tailed_target_fails_a_normal_one_passes() -> None:
    rng = np.random.default_rng(16)
    x = rng.normal(size=2000)
    heavy = make_artifacts(
        {"train": pd.DataFrame({"x": x, "y": np.exp(2 * rng.normal(size=2000))})}, label="y"
    )
    rec = run_check(balance.class_imbalance, heavy)
    assert rec["status"] == "failed" and _metric(rec, "tail_ratio")["ci"][0] > 5
    normal = make_artifacts({"train": pd.DataFrame({"x": x, "y": rng.normal(size=2000)})}, label="y")
    ok = run_check(balance.class_imbalance, normal)
    assert ok["status"] == "passed" and 1.4 < _metric(ok, "tail_ratio")["value"] < 2.1


def test_bal002_target_shift_fails_and_the_same_distribution_passes() -> None:
    rng = np.random.default_rng(17)

    def split(n: int, loc: float) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(loc=loc, size=n)})

    shifted = run_check(
        balance.label_shift, make_artifacts({"train": split(800, 0), "test": split(400, 0.6)}, label="y")
    )
    assert shifted["status"] == "failed"
    w = _metric(shifted, "wasserstein_test")
    assert w["value"] == pytest.approx(0.6, abs=0.15) and w["details"]["ks_p_value"] < 1e-6
    same = run_check(
        balance.label_shift, make_artifacts({"train": split(800, 0), "test": split(400, 0)}, label="y")
    )
    assert same["status"] == "passed"


# ------------------------------------------------------------------------------------------------
# AK-ADV-001 / 003
# ------------------------------------------------------------------------------------------------


def test_adv001_pgd_reaches_the_analytic_worst_case_of_a_linear_model() -> None:
    """For f = w·x inside the box, the largest L∞ change is ε Σ|w_j| range_j; PGD must find it."""
    rng = np.random.default_rng(18)
    train, test = _frame(400, rng), _frame(200, rng)
    inner = test[(test.x1.abs() < 1) & (test.x2.abs() < 1)].reset_index(drop=True)  # far from the box edges
    rec = run_check(adversarial.white_box_evasion, _arts(Linear(), train, inner),
                    params={"epsilons": [0.02], "gate_epsilon": 0.02, "norms": ["inf"], "min_rows": 10})  # fmt: skip
    ranges = train[["x1", "x2"]].max().to_numpy() - train[["x1", "x2"]].min().to_numpy()
    analytic = 0.02 * float(np.abs(W) @ ranges)
    assert _metric(rec, "mean_max_deviation")["value"] == pytest.approx(analytic, rel=1e-3)
    grid = rec["evidence"]["epsilon grid"]["rows"]
    assert grid[0][1] == 0.0 and grid[0][3] == 0.0  # ε = 0 changes nothing


def test_adv001_sensitive_regressor_fails_and_a_flat_one_passes() -> None:
    rng = np.random.default_rng(19)
    train, test = _frame(400, rng), _frame(200, rng)
    steep = run_check(
        adversarial.white_box_evasion, _arts(Linear(w=W * 20), train, test), params={"norms": ["inf"]}
    )
    assert steep["status"] == "failed" and _metric(steep, "robust_share")["value"] < 0.5
    flat = run_check(
        adversarial.white_box_evasion, _arts(Linear(w=W * 0.01), train, test), params={"norms": ["inf"]}
    )
    assert flat["status"] == "passed" and _metric(flat, "robust_share")["value"] == 1.0
    assert " y units" in flat["summary"] and " y units" in _metric(flat, "robust_share")["description"]


def test_adv003_rmse_under_corruptions() -> None:
    rng = np.random.default_rng(20)
    train, test = _frame(400, rng), _frame(300, rng)
    rec = run_check(corruption.natural_corruptions, _arts(Linear(), train, test))
    assert rec["status"] == "failed"  # noise on x1, x2 with weights 3, −2 raises RMSE far above 10%
    m = _metric(rec, "mean_relative_rmse_increase")
    assert m["value"] > 1 and m["ci"][0] > 0.1
    robust = run_check(corruption.natural_corruptions, _arts(Linear(w=W * 0.001), train, test))
    assert robust["status"] == "passed"


# ------------------------------------------------------------------------------------------------
# Baseline gate and diff: an RMSE that rises beyond its interval is a regression
# ------------------------------------------------------------------------------------------------


def test_rmse_rising_beyond_its_interval_is_a_gate_regression_and_a_worse_diff() -> None:
    from auditkit.results.diff import diff_results
    from auditkit.results.gate import regressions

    rng = np.random.default_rng(21)
    train, test = _frame(400, rng), _frame(400, rng)
    old = run_check(performance.heldout_performance, _arts(Linear(), train, test))
    worse = run_check(performance.heldout_performance, _arts(Linear(w=W * 1.3), train, test))  # RMSE ≈ 1.3
    found = regressions([worse], {"checks": [old]})
    assert {r["check"] for r in found} == {"AK-PERF-001"}
    assert any("rmse" in r["message"] for r in found)
    assert not regressions([old], {"checks": [worse]})  # the improvement is no regression
    d = diff_results({"checks": [old]}, {"checks": [worse]})
    rmse = next(c for c in d["metric_changes"] if c["metric"] == "rmse")
    assert rmse["trend"] == "worse" and rmse["significant"] is True


# ------------------------------------------------------------------------------------------------
# AK-OOD-001 / 002 regression implementations (checks/_regression_ood.py, dispatched from checks/ood.py)
# ------------------------------------------------------------------------------------------------


def _ctx(arts, check_fn):  # type: ignore[no-untyped-def]
    from auditkit.engine.check import check_info
    from auditkit.engine.context import RunContext

    return RunContext(check_info(check_fn), arts, run_seed=0)


def test_ood_regression_detects_far_inputs_and_not_in_distribution_ones() -> None:
    from auditkit.checks import ood
    from auditkit.checks._regression_ood import ood_detection_regression

    from auditkit.engine.check import NotApplicable

    rng = np.random.default_rng(22)
    train, test = _frame(400, rng), _frame(200, rng)
    far = _frame(200, rng).assign(x1=lambda d: d.x1 + 6.0)
    arts = make_artifacts({"train": train, "test": test, "ood": far}, label="y", features=["x1", "x2"],
                          model=Linear(), spec={"model": {"builtin": "mlp"}})  # fmt: skip
    out = ood_detection_regression(_ctx(arts, ood.ood_detection))
    maha = next(m for m in out.metrics if m.name == "auroc_mahalanobis_ood")
    knn = next(m for m in out.metrics if m.name == "auroc_knn_ood")
    assert (
        out.resolved_status() == "passed" and maha.ci is not None and maha.ci[0] > 0.95 and knn.value > 0.95
    )
    # the same distribution is not separable: the gated AUROC's lower bound stays below 0.8
    same = make_artifacts({"train": train, "test": test, "ood": _frame(200, rng)}, label="y", features=["x1", "x2"],
                          model=Linear(), spec={"model": {"builtin": "mlp"}})  # fmt: skip
    out = ood_detection_regression(_ctx(same, ood.ood_detection))
    assert out.resolved_status() == "failed"
    assert 0.35 < next(m for m in out.metrics if m.name == "auroc_mahalanobis_ood").value < 0.65
    with pytest.raises(NotApplicable, match="logit-based"):
        ood_detection_regression(
            _ctx(same, ood.ood_detection), detectors=["msp", "energy"], gate_detector=None
        )
    # without an ood split: synthetic sets; column_shuffled is reported, never gated
    synth = ood_detection_regression(_ctx(make_artifacts({"train": train, "test": test}, label="y", features=["x1", "x2"],
                                                         model=Linear(), spec={"model": {"builtin": "mlp"}}), ood.ood_detection))  # fmt: skip
    assert {m.name for m in synth.metrics if m.threshold is not None} == {
        "auroc_mahalanobis_uniform_box",
        "auroc_mahalanobis_scaled_outliers",
    }


def test_shift_regression_fails_a_sensitive_model_and_passes_a_flat_one() -> None:
    from auditkit.checks import ood
    from auditkit.checks._regression_ood import shift_regression

    rng = np.random.default_rng(23)
    train, test = _frame(400, rng), _frame(300, rng)
    steep = shift_regression(_ctx(_arts(Linear(), train, test), ood.shift_behaviour))
    assert steep.resolved_status() == "failed"
    noise = next(m for m in steep.metrics if m.name == "relative_rmse_increase_mean_shift")
    # a mean shift of 0.25 sd on x1 (+) and x2 (−) moves w·x by 0.25 (3 sd1 + 2 sd2): RMSE grows accordingly
    sd = train[["x1", "x2"]].std(ddof=0).to_numpy()
    expected_bias = 0.25 * (3 * sd[0] + 2 * sd[1])
    clean = next(m for m in steep.metrics if m.name == "clean_rmse").value
    assert noise.value == pytest.approx(np.sqrt(clean**2 + expected_bias**2) / clean - 1, rel=0.15)
    flat = shift_regression(_ctx(_arts(Linear(w=W * 0.001), train, test), ood.shift_behaviour))
    assert flat.resolved_status() == "passed"
    prod = make_artifacts({"train": train, "test": test, "production": _frame(300, rng, shift=8.0)}, label="y",
                          features=["x1", "x2"], model=Linear(), spec={"model": {"builtin": "mlp"}})  # fmt: skip
    out = shift_regression(_ctx(prod, ood.shift_behaviour))
    assert [m.name for m in out.metrics][
        0
    ] == "relative_rmse_increase_production" and out.resolved_status() == "failed"


def test_ood_checks_dispatch_a_regressor_to_the_regression_implementations() -> None:
    from auditkit.checks import ood

    rng = np.random.default_rng(24)
    train, test = _frame(400, rng), _frame(200, rng)
    far = _frame(200, rng).assign(x1=lambda d: d.x1 + 6.0)
    arts = make_artifacts({"train": train, "test": test, "ood": far}, label="y", features=["x1", "x2"],
                          model=Linear(), spec={"model": {"builtin": "mlp"}})  # fmt: skip
    rec = run_check(ood.ood_detection, arts)
    names = {m["name"] for m in rec["metrics"]}
    assert (
        rec["status"] == "passed" and "auroc_mahalanobis_ood" in names and not any("msp" in n for n in names)
    )
    steep = run_check(ood.shift_behaviour, _arts(Linear(), train, test), params={"max_rmse_increase": 0.01})
    lenient = run_check(ood.shift_behaviour, _arts(Linear(), train, test), params={"max_rmse_increase": 1e6})
    assert (steep["status"], lenient["status"]) == ("failed", "passed")
    assert any(m["name"].startswith("relative_rmse_increase") for m in steep["metrics"])


# ------------------------------------------------------------------------------------------------
# AK-DEPLOY-001
# ------------------------------------------------------------------------------------------------


def test_deploy001_regression_parity_passes_faithful_artifacts_and_fails_a_biased_export(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from auditkit.checks import deployment

    rng = np.random.default_rng(24)
    train, test = _frame(300, rng), _frame(300, rng)
    biased = Linear(b=10.0 + 0.5 * float(train.y.std())).lin  # an export whose bias constant is off by 0.5 sd
    torch.jit.save(torch.jit.script(biased), tmp_path / "biased.pt")
    spec = {"model": {"builtin": "mlp"}, "deployment": {"artifacts": [
        {"name": "bf16", "dtype": "bfloat16"}, {"name": "int8", "quantize": "dynamic_int8"},
        {"name": "biased", "torchscript": str(tmp_path / "biased.pt")}]}}  # fmt: skip
    arts = make_artifacts(
        {"train": train, "test": test}, label="y", features=["x1", "x2"], model=Linear(), spec=spec
    )
    rec = run_check(deployment.deployment_parity, arts)
    failing = {f["key"] for f in rec["findings"] if f["severity"] != "info"}
    assert rec["status"] == "failed" and failing == {
        "prediction_diff_p99_sd[biased, test]",
        "rmse_increase[biased, test]",
    }
    diff = _metric(rec, "prediction_diff_p99_sd[biased, test]")
    assert diff["value"] == pytest.approx(0.5 * train.y.std() / train.y.std(ddof=1), rel=1e-3)
    assert _metric(rec, "prediction_diff_p99_sd[bf16, test]")["passed"] is True
    assert _metric(rec, "rmse_increase[int8, test]")["passed"] is True


# ------------------------------------------------------------------------------------------------
# AK-TRAIN-002 / 003 (built-in MLP trained by auditkit on a regression target)
# ------------------------------------------------------------------------------------------------


def _train_arts(main: dict, compare: list[dict] | None = None, seeds: tuple[int, ...] = (0, 1, 2)):  # type: ignore[no-untyped-def]
    from auditkit.testing import tiny_regression

    data = tiny_regression(n=240, seed=3)
    training = {
        "epochs": 15,
        "batch_size": 32,
        "seeds": list(seeds),
        "optimizer": main,
        "compare": compare or [],
    }
    return make_artifacts({"train": data["train"], "test": data["test"]}, label="y", features=["x1", "x2", "colour"],
                          spec={"model": {"builtin": "mlp"}, "training": training})  # fmt: skip


def test_train002_seed_spread_of_test_rmse() -> None:
    from auditkit.checks import training

    arts = _train_arts({"name": "AdamW", "lr": 0.01})
    rec = run_check(training.seed_variance, arts)
    assert rec["status"] == "passed", rec["findings"]
    rmses = [r[1] for r in rec["evidence"]["per seed"]["rows"]]
    cv = _metric(rec, "seed_cv_rmse")
    assert cv["value"] == pytest.approx(np.std(rmses, ddof=1) / np.mean(rmses), rel=1e-9)
    assert _metric(rec, "same_seed_max_weight_diff")["value"] == 0.0
    strict = run_check(
        training.seed_variance, arts, params={"max_seed_rmse_cv": cv["value"] / 2, "rerun": False}
    )
    assert strict["status"] == "failed" and [f["key"] for f in strict["findings"]] == ["seed_cv_rmse"]


def test_train003_fails_a_chosen_optimizer_that_is_significantly_worse() -> None:
    from auditkit.checks import training

    slow, good = {"name": "SGD", "lr": 1e-4}, {"name": "AdamW", "lr": 0.01}
    worse = run_check(training.optimizer_comparison, _train_arts(slow, [good], seeds=(0, 1)))
    assert worse["status"] == "failed"
    m = next(m for m in worse["metrics"] if m["name"].startswith("rmse_relative_difference_vs_AdamW"))
    assert m["ci"][0] > 0
    better = run_check(training.optimizer_comparison, _train_arts(good, [slow], seeds=(0, 1)))
    assert better["status"] == "passed"
