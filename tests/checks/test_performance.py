"""AK-PERF-001…004 and the metrics/bootstrap in auditkit.toolkit.stats.

Metrics are compared with scikit-learn on the same predictions, ECE with an independent loop
implementation, and a simulation measures the bootstrap interval's coverage. The model in most
tests is an identity layer over logit columns, so the predictions are exactly what the test sets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from auditkit.checks.performance import (
    calibration,
    generalisation_gap,
    heldout_performance,
    slice_performance,
)
from sklearn import metrics as skm

from auditkit.testing import make_artifacts, run_check
from auditkit.toolkit.stats import bootstrap_metrics, classification_metrics, mean_ci


def identity(k: int) -> torch.nn.Module:
    lin = torch.nn.Linear(k, k)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(k))
        lin.bias.zero_()
    return lin


def frame(logits: np.ndarray, y: np.ndarray, **extra: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({f"l{i}": logits[:, i] for i in range(logits.shape[1])})
    df["y"] = y
    for k, v in extra.items():
        df[k] = v
    return df


def calibrated(n: int, seed: int, sharp: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Binary logits whose softmax is the true P(y=1): perfectly calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=sharp, size=n)
    p = 1 / (1 + np.exp(-z))
    y = (rng.random(n) < p).astype(int)
    return np.c_[np.zeros(n), z], y


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def arts_for(test: pd.DataFrame, train: pd.DataFrame | None = None, k: int = 2, **kw: object) -> object:
    train = test if train is None else train
    return make_artifacts({"train": train, "test": test}, label="y", model=identity(k), **kw)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("k", [2, 3])
def test_metrics_equal_scikit_learn(k: int) -> None:
    rng = np.random.default_rng(k)
    n = 500
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    z[np.arange(n), y] += 1.0
    p = softmax(z)
    got = classification_metrics(y, p)
    pred = p.argmax(1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    auc = skm.roc_auc_score(y, p[:, 1]) if k == 2 else skm.roc_auc_score(y, p, multi_class="ovr")
    assert got["roc_auc"] == pytest.approx(auc, abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    brier = skm.brier_score_loss(y, p[:, 1]) if k == 2 else skm.brier_score_loss(y, p)
    assert got["brier"] == pytest.approx(brier, abs=1e-12)


def ece_loop(y: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[float, float]:
    """Independent ECE / MCE: explicit loop over (lo, hi] bins (Guo et al. 2017)."""
    conf = p.max(1)
    acc = (p.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    ece, mce = 0.0, 0.0
    for i in range(n_bins):
        lo, hi = edges[i], edges[i + 1]
        inside = [j for j in range(len(y)) if (conf[j] > lo or (i == 0 and conf[j] >= lo)) and conf[j] <= hi]
        if not inside:
            continue
        gap = abs(np.mean(acc[inside]) - np.mean(conf[inside]))
        ece += len(inside) / len(y) * gap
        mce = max(mce, gap)
    return ece, mce


def test_ece_equals_an_independent_implementation() -> None:
    z, y = calibrated(700, 3, sharp=3.0)
    p = softmax(z * 1.7)  # overconfident
    got = classification_metrics(y, p, n_bins=10)
    ece, mce = ece_loop(y, p, 10)
    assert got["ece"] == pytest.approx(ece, abs=1e-12)
    assert got["mce"] == pytest.approx(mce, abs=1e-12)
    # adaptive ECE: equal-mass bins of 70 sorted confidences each
    order = np.argsort(p.max(1), kind="mergesort")
    gaps = [
        abs((p.argmax(1)[b] == y[b]).mean() - p.max(1)[b].mean()) * len(b) for b in np.array_split(order, 10)
    ]
    assert got["adaptive_ece"] == pytest.approx(sum(gaps) / len(y), abs=1e-12)


def _coverage(reps: int, n: int, exact_max: int, metric: str, truth: float, sample) -> float:  # type: ignore[no-untyped-def]
    hits = 0
    for r in range(reps):
        y, p = sample(np.random.default_rng(10_000 + r))
        lo, hi = bootstrap_metrics(
            y, p, (metric,), n_boot=400, rng=np.random.default_rng(r), exact_max=exact_max
        )[metric]
        hits += lo <= truth <= hi
    return hits / reps


def test_bootstrap_interval_covers_the_truth_95_percent() -> None:
    acc = 0.8

    def sampler(n: int):  # type: ignore[no-untyped-def]
        def sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            y = rng.integers(0, 2, n)
            right = rng.random(n) < acc
            pred = np.where(right, y, 1 - y)
            return y, np.where(pred[:, None] == np.arange(2), 0.9, 0.1)

        return sample

    # row resamples (n ≤ exact_max) and the multinomial-over-cells path (forced with exact_max=0)
    cov_rows = _coverage(600, 500, 20_000, "accuracy", acc, sampler(500))
    cov_cells = _coverage(2000, 1000, 0, "accuracy", acc, sampler(1000))
    assert 0.93 <= cov_rows <= 0.97, cov_rows
    assert 0.93 <= cov_cells <= 0.97, cov_cells


def test_bootstrap_coverage_of_a_mean_metric_through_cells() -> None:
    # Brier of calibrated predictions: its expectation is E[p(1-p)], computed by Monte Carlo
    big_z, _ = calibrated(1_000_000, 99)
    pp = 1 / (1 + np.exp(-big_z[:, 1]))
    truth = float(np.mean(pp * (1 - pp)))

    def sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        z, y = calibrated(400, int(rng.integers(1 << 30)))
        return y, softmax(z)

    cov = _coverage(500, 400, 0, "brier", truth, sample)
    assert 0.93 <= cov <= 0.97, cov


def test_cell_path_agrees_with_row_resamples() -> None:
    z, y = calibrated(6_000, 5)
    p = softmax(z)
    names = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss", "brier", "ece")
    rows = bootstrap_metrics(y, p, names, rng=np.random.default_rng(0), exact_max=10**9)
    cells = bootstrap_metrics(y, p, names, rng=np.random.default_rng(1), exact_max=0)
    for m in names:
        width = rows[m][1] - rows[m][0]
        assert abs(rows[m][0] - cells[m][0]) < 0.2 * width, m
        assert abs(rows[m][1] - cells[m][1]) < 0.2 * width, m


def test_bootstrap_is_seeded_and_mean_ci_keeps_its_signature() -> None:
    z, y = calibrated(200, 1)
    a = bootstrap_metrics(y, softmax(z), rng=np.random.default_rng(3))
    b = bootstrap_metrics(y, softmax(z), rng=np.random.default_rng(3))
    assert a == b
    lo, hi = mean_ci(np.arange(100.0), rng=np.random.default_rng(0))
    assert lo < 49.5 < hi


# -------------------------------------------------------------------------------------- PERF-001


def test_perf001_metrics_match_sklearn_and_gate_on_the_lower_bound() -> None:
    z, y = calibrated(400, 7)
    a = arts_for(frame(z, y))
    rec = run_check(heldout_performance, a, params={"min_accuracy": 0.5})
    m = {x["name"]: x for x in rec["metrics"]}
    p = softmax(z)
    assert m["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    assert m["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]), abs=1e-6)
    assert m["log_loss"]["value"] == pytest.approx(skm.log_loss(y, p), abs=1e-5)
    assert rec["status"] == "passed"
    prec, recall, f1, support = skm.precision_recall_fscore_support(y, p.argmax(1))
    rows = rec["evidence"]["per class"]["rows"]
    for c, row in enumerate(rows):
        assert row[1] == support[c]
        assert row[2:4] == pytest.approx([prec[c], recall[c]], abs=1e-6) and row[6] == pytest.approx(
            f1[c], abs=1e-6
        )
    cm = rec["evidence"]["confusion matrix (rows: true, columns: predicted)"]["rows"]
    assert [r[1:] for r in cm] == skm.confusion_matrix(y, p.argmax(1)).tolist()
    acc, lo = m["accuracy"]["value"], m["accuracy"]["ci"][0]
    between = (acc + lo) / 2  # above the point estimate's lower bound, below the estimate
    assert run_check(heldout_performance, a, params={"min_accuracy": between})["status"] == "failed"
    assert (
        run_check(heldout_performance, a, params={"min_accuracy": between, "bound": "value"})["status"]
        == "passed"
    )
    assert run_check(heldout_performance, a, params={"max_log_loss": 0.01})["status"] == "failed"


def test_perf001_a_constant_model_does_not_beat_the_majority() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(int)
    z = np.c_[np.ones(300), np.zeros(300)]  # always class 0 (the majority)
    rec = run_check(heldout_performance, arts_for(frame(z, y)))
    assert rec["status"] == "failed"
    assert [f["key"] for f in rec["findings"] if f["severity"] != "info"] == ["majority"]


# -------------------------------------------------------------------------------------- PERF-002


def test_perf002_overfit_model_fails_and_a_general_one_passes() -> None:
    rng = np.random.default_rng(1)
    y_tr, y_te = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    perfect = np.c_[np.zeros(300), np.where(y_tr == 1, 3.0, -3.0)]
    noise = np.c_[np.zeros(300), rng.normal(size=300)]
    rec = run_check(generalisation_gap, arts_for(frame(noise, y_te), frame(perfect, y_tr)))
    assert rec["status"] == "failed"
    gap = next(m for m in rec["metrics"] if m["name"] == "accuracy_gap")
    assert gap["value"] == pytest.approx(1.0 - ((noise[:, 1] > 0).astype(int) == y_te).mean())
    z1, y1 = calibrated(300, 1)
    z2, y2 = calibrated(300, 2)
    assert run_check(generalisation_gap, arts_for(frame(z2, y2), frame(z1, y1)))["status"] == "passed"


# -------------------------------------------------------------------------------------- PERF-003


def test_perf003_calibrated_passes_overconfident_fails() -> None:
    z, y = calibrated(3000, 11)
    good = run_check(calibration, arts_for(frame(z, y)))
    assert good["status"] == "passed", good["summary"]
    bad = run_check(calibration, arts_for(frame(z * 4, y)))
    assert bad["status"] == "failed"
    m = {x["name"]: x for x in bad["metrics"]}
    ece, _ = ece_loop(y, softmax(z * 4), 15)
    assert m["ece"]["value"] == pytest.approx(ece, abs=1e-6)
    assert m["ece"]["ci"][0] <= m["ece"]["value"] <= m["ece"]["ci"][1]
    plot = bad["evidence"]["plots"][0]
    assert plot["diagonal"] and len(plot["series"][0]["x"]) == len(
        bad["evidence"]["reliability diagram"]["rows"]
    )


# -------------------------------------------------------------------------------------- PERF-004


def test_perf004_worst_slice_fails_small_slices_flagged() -> None:
    rng = np.random.default_rng(4)
    n = 600
    region = rng.choice(["north", "south", "east"], n, p=[0.45, 0.45, 0.10])
    y = rng.integers(0, 2, n)
    correct = np.where(region == "east", rng.random(n) < 0.55, rng.random(n) < 0.95)
    pred = np.where(correct, y, 1 - y)
    z = np.c_[np.zeros(n), np.where(pred == 1, 2.0, -2.0)]
    tiny = np.where(np.arange(n) < 10, "rare", "common")
    df = frame(z, y, region=region, site=tiny, age=rng.integers(18, 90, n))
    a = arts_for(
        df,
        features=["l0", "l1"],
        sensitive=["region", "site"],
        spec={"data": {"slices": {"older": "age > 70"}}},
    )
    rec = run_check(slice_performance, a)
    assert rec["status"] == "failed"
    assert "region=east" in [f["key"] for f in rec["findings"] if f["severity"] != "info"]
    assert any(f["key"] == "small slices" and "site=rare" in f["message"] for f in rec["findings"])
    names = [r[0] for r in rec["evidence"]["slices"]["rows"]]
    assert "slice:older" in names
    row = next(r for r in rec["evidence"]["slices"]["rows"] if r[0] == "region=east")
    east = region == "east"
    assert row[2] == east.sum() and row[3] == pytest.approx((pred[east] == y[east]).mean())
    fair = frame(z, y, region=rng.choice(["north", "south"], n))
    assert (
        run_check(slice_performance, arts_for(fair, features=["l0", "l1"], sensitive=["region"]))["status"]
        == "passed"
    )


def test_nan_outputs_fail_instead_of_passing_silently() -> None:
    z, y = calibrated(300, 3)
    z[:20, 1] = np.nan  # 20 rows with NaN logits
    for fn in (heldout_performance, calibration, generalisation_gap):
        rec = run_check(fn, arts_for(frame(z, y)))
        assert rec["status"] == "failed", (fn.__name__, rec["summary"])
        assert any("20 of 300" in f["message"] for f in rec["findings"])
    z[:, 1] = np.nan
    rec = run_check(calibration, arts_for(frame(z, y)))
    assert rec["status"] == "failed" and "all 300" in rec["summary"]
