"""AK-DQ-005 (label errors): confident learning against a direct computation, pass/fail on built data.

The planted-noise data are Gaussian blobs whose classes a linear model separates well, so that
the rows the check should flag are exactly the planted flips (plus few or no natural errors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from auditkit.checks.label_errors import conflicting_rows, crossfit_proba, label_errors

from auditkit import SpecError
from auditkit.testing import check_contract, make_artifacts, run_check
from auditkit.toolkit.confident import (
    bootstrap_noise_rate,
    calibrate,
    confident_joint,
    find_label_issues,
    noise_matrix,
    noise_rate,
    thresholds,
)


def blobs(n: int = 600, k: int = 3, flip: float = 0.0, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """(frame with features f0..f3 and label y, mask of flipped rows)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = np.array([[4.0 * c, -3.0 * c, 2.0 * (c % 2), 0.0] for c in range(k)])
    x = centres[y] + rng.normal(size=(n, 4))
    flipped = np.zeros(n, dtype=bool)
    idx = rng.choice(n, int(round(flip * n)), replace=False)
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, k, len(idx))) % k
    flipped[idx] = True
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["y"] = noisy
    return frame, flipped


# --------------------------------------------------------------------------------------------
# confident learning, checked against a direct computation
# --------------------------------------------------------------------------------------------
def direct_confident_joint(labels: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 1–2 of the paper written as plain loops: t_j, then C[i, j] row by row."""
    n, k = proba.shape
    t = np.array([np.mean([proba[x, j] for x in range(n) if labels[x] == j]) for j in range(k)])
    c = np.zeros((k, k))
    for x in range(n):
        above = [j for j in range(k) if proba[x, j] >= t[j]]
        if above:
            j = max(above, key=lambda j: proba[x, j])
            c[labels[x], j] += 1
    return t, c


def test_confident_joint_equals_a_direct_computation_on_a_small_case() -> None:
    rng = np.random.default_rng(3)
    n, k = 40, 3
    labels = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), size=n)
    t_direct, c_direct = direct_confident_joint(labels, proba)
    np.testing.assert_allclose(thresholds(labels, proba), t_direct)
    c, suggested = confident_joint(labels, proba)
    np.testing.assert_array_equal(c, c_direct)
    assert c.sum() == (suggested >= 0).sum()
    # calibration: each row rescaled to its class count, the whole to 1
    counts = np.bincount(labels, minlength=k)
    q = calibrate(c, counts)
    q_direct = (c_direct / c_direct.sum(axis=1, keepdims=True)) * counts[:, None]
    np.testing.assert_allclose(q, q_direct / q_direct.sum())
    np.testing.assert_allclose(q.sum(axis=1), counts / n)  # row marginals = given-label shares
    assert noise_rate(q) == pytest.approx(1 - np.trace(q_direct) / q_direct.sum())
    np.testing.assert_allclose(noise_matrix(q).sum(axis=0), 1.0)


def test_hand_worked_two_class_case() -> None:
    # class 0 rows: p0 = .9 .8 .7 .2 (t0 = .65); class 1 rows: p1 = .9 .7 (t1 = .8)
    labels = np.array([0, 0, 0, 0, 1, 1])
    p0 = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.3])
    proba = np.column_stack([p0, 1 - p0])
    c, _ = confident_joint(labels, proba)
    # row 3 (given 0, p1 = .8 ≥ t1) is confidently 1; row 5 (given 1, p1 = .7 < .8, p0 = .3 < .65) counts nowhere
    np.testing.assert_array_equal(c, [[3, 1], [0, 1]])
    res = find_label_issues(labels, proba)
    assert res.noise_rate == pytest.approx(1 / 6)  # Q[0,1] = 1/4 × 4/6
    assert np.flatnonzero(res.flagged).tolist() == [3]
    assert res.suggested[3] == 1


def test_prune_methods_are_consistent() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 500)
    proba = rng.dirichlet(np.ones(4) * 0.5, size=500)
    proba[np.arange(500), labels] += 0.6
    proba /= proba.sum(axis=1, keepdims=True)
    both = find_label_issues(labels, proba, prune="both").flagged
    pbnr = find_label_issues(labels, proba, prune="prune_by_noise_rate").flagged
    pbc = find_label_issues(labels, proba, prune="prune_by_class").flagged
    assert both.sum() > 0 and not (both & ~pbnr).any() and not (both & ~pbc).any()
    for flags in (both, pbnr, pbc):
        assert not (flags & (proba.argmax(axis=1) == labels)).any()  # never flag a row the model agrees with
    res = find_label_issues(labels, proba, rank_by="normalized_margin")
    order = res.ranked()
    assert np.all(np.diff(res.score[order]) >= 0)


def test_bootstrap_interval_covers_the_estimate_and_is_seeded() -> None:
    frame, _ = blobs(flip=0.1)
    y = frame["y"].to_numpy()
    p = crossfit_proba(frame[["f0", "f1", "f2", "f3"]].to_numpy(), y, 3, seed=0)
    est = find_label_issues(y, p).noise_rate
    lo, hi = bootstrap_noise_rate(y, p, n_boot=100, rng=np.random.default_rng(1))
    assert lo <= est <= hi and hi - lo < 0.1
    assert (lo, hi) == bootstrap_noise_rate(y, p, n_boot=100, rng=np.random.default_rng(1))


# --------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------
def test_clean_data_pass_and_planted_flips_fail_with_the_rows_listed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clean, _ = blobs(flip=0.0)
    rec = run_check(label_errors, make_artifacts({"train": clean}, label="y"))
    assert rec["status"] == "passed", rec["summary"]
    noisy, flipped = blobs(flip=0.12, seed=1)
    rec = run_check(label_errors, make_artifacts({"train": noisy}, label="y"), workdir=tmp_path)
    assert rec["status"] == "failed"
    m = rec["metrics"][0]
    assert m["name"] == "label_issue_ratio_train" and m["passed"] is False
    assert abs(m["value"] - flipped.mean()) < 0.03 and m["ci"][0] <= m["value"] <= m["ci"][1]
    csv = pd.read_csv(tmp_path / "label_issues.csv")
    found = set(csv["row"])
    truth = set(np.flatnonzero(flipped))
    assert len(found & truth) / len(truth) >= 0.8  # recall
    assert len(found & truth) / len(found) >= 0.8  # precision
    assert m["details"]["flagged_rows"] == len(csv)
    assert (csv["given_label"] != csv["suggested_label"]).all()
    assert list(csv["rank"]) == list(range(1, len(csv) + 1))


def test_gate_threshold_and_conservative_bound_decide() -> None:
    noisy, _ = blobs(flip=0.04, seed=2)
    arts = lambda: make_artifacts({"train": noisy}, label="y")  # noqa: E731
    value = run_check(label_errors, arts(), params={"max_label_issue_ratio": 0.05})
    cons = run_check(label_errors, arts(), params={"max_label_issue_ratio": 0.05, "bound": "conservative"})
    m = value["metrics"][0]
    assert m["value"] < 0.05 < m["ci"][1]
    assert value["status"] == "passed" and cons["status"] == "failed"


def test_test_split_is_examined_and_the_accuracy_impact_is_computed() -> None:
    import torch

    train, _ = blobs(n=600, seed=3)
    test, flipped = blobs(n=300, flip=0.1, seed=4)
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    x = torch.tensor(train[["f0", "f1", "f2", "f3"]].to_numpy(), dtype=torch.float32)
    yt = torch.tensor(train["y"].to_numpy())
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), yt).backward()
        opt.step()
    rec = run_check(label_errors, make_artifacts({"train": train, "test": test}, label="y", model=net))
    by = {m["name"]: m for m in rec["metrics"]}
    assert by["label_issue_ratio_test"]["passed"] is False and by["label_issue_ratio_train"]["passed"] is True
    imp = by["accuracy_hidden_by_label_noise"]
    with torch.no_grad():
        pred = (
            net(torch.tensor(test[["f0", "f1", "f2", "f3"]].to_numpy(), dtype=torch.float32))
            .argmax(1)
            .numpy()
        )
    correct = pred == test["y"].to_numpy()
    assert imp["details"]["accuracy_all"] == pytest.approx(correct.mean())
    assert imp["value"] > 0.05  # the model is right where the label is wrong
    assert imp["ci"][0] <= imp["value"] <= imp["ci"][1]


def test_conflicting_duplicates_are_cross_referenced_not_counted() -> None:
    frame, _ = blobs(n=300, seed=5)
    dup = frame.iloc[:6].copy()
    dup["y"] = (dup["y"] + 1) % 3  # the same features with another label: AK-DQ-003's conflicts
    both = pd.concat([frame, dup], ignore_index=True)
    ds = make_artifacts({"train": both}, label="y").dataset("train")
    conflict = conflicting_rows(ds, ds.y)
    assert np.flatnonzero(conflict).tolist() == [0, 1, 2, 3, 4, 5, 300, 301, 302, 303, 304, 305]
    rec = run_check(label_errors, make_artifacts({"train": both}, label="y"))
    m = rec["metrics"][0]
    assert m["n"] == len(both) - 12
    assert m["details"]["conflicting_duplicate_rows"] == 12
    assert m["details"]["conflicting_duplicates_flagged"] == 6  # the relabelled copies


def test_too_small_a_class_is_not_applicable_and_bad_params_are_input_errors() -> None:
    frame, _ = blobs(n=300)
    frame.loc[frame.index[:296], "y"] = frame["y"].iloc[:296].where(frame["y"].iloc[:296] != 2, 0)
    rec = run_check(label_errors, make_artifacts({"train": frame}, label="y"))
    assert rec["status"] == "not_applicable" and "min_rows_per_class" in rec["skip_reason"]
    with pytest.raises(
        SpecError, match="prune: Input should be"
    ):  # the declared domain, checked before running
        run_check(label_errors, make_artifacts({"train": blobs()[0]}, label="y"), params={"prune": "nope"})


def test_images_use_the_models_embeddings_and_pixels_without_a_model() -> None:
    import torch

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    x = rng.uniform(0, 0.3, size=(240, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, c * 2 : c * 2 + 3, :] += 0.6
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
    )
    rec = run_check(label_errors, make_artifacts({"train": (x, y)}, model=net))
    assert rec["status"] != "error", rec.get("error")
    assert rec["metrics"][0]["details"]["source"] == "embeddings"
    rec = run_check(label_errors, make_artifacts({"train": (x, y)}))
    assert rec["status"] == "passed" and rec["metrics"][0]["details"]["source"] == "pixels"


def test_source_model_cross_fits_the_builtin_architecture() -> None:
    noisy, flipped = blobs(n=300, flip=0.1, seed=6)
    spec = {"model": {"builtin": "mlp", "builtin_args": {"hidden": [16]}},
            "training": {"epochs": 30, "batch_size": 64, "optimizer": {"name": "Adam", "lr": 0.01}}}  # fmt: skip
    rec = run_check(
        label_errors, make_artifacts({"train": noisy}, label="y", spec=spec), params={"source": "model"}
    )
    assert rec["status"] == "failed", rec.get("error") or rec["summary"]
    m = rec["metrics"][0]
    assert m["details"]["source"] == "model" and abs(m["value"] - flipped.mean()) < 0.04
    rec = run_check(label_errors, make_artifacts({"train": noisy}, label="y"), params={"source": "model"})
    assert rec["status"] == "error" and rec["error"]["input"] is True  # no built-in/factory model


def test_contract() -> None:
    check_contract(label_errors, lambda: make_artifacts({"train": blobs(n=200)[0]}, label="y"))


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "digits"])
def test_real_datasets_as_shipped_pass_with_the_default_threshold(name: str) -> None:
    import sklearn.datasets as skd

    frame = getattr(skd, f"load_{name}")(as_frame=True).frame.rename(columns={"target": "label"})
    order = np.random.default_rng(0).permutation(len(frame))
    cut = int(0.7 * len(frame))
    splits = {"train": frame.iloc[order[:cut]], "test": frame.iloc[order[cut:]]}
    rec = run_check(label_errors, make_artifacts(splits, label="label"))
    assert rec["status"] == "passed", rec["summary"]
    # and the same data with 10% of train's labels moved fails
    train = splits["train"].copy()
    rng = np.random.default_rng(1)
    idx = rng.choice(len(train), len(train) // 10, replace=False)
    k = frame["label"].nunique()
    train.iloc[idx, train.columns.get_loc("label")] = (
        train["label"].to_numpy()[idx] + rng.integers(1, k, len(idx))
    ) % k
    rec = run_check(label_errors, make_artifacts({**splits, "train": train}, label="label"))
    assert rec["status"] == "failed"


def test_a_rare_label_only_in_test_is_left_out_with_a_note() -> None:
    train, _ = blobs(n=400, seed=7)
    test, _ = blobs(n=100, seed=8)
    test.loc[test.index[:3], "y"] = 9  # a class train never has, three times
    rec = run_check(label_errors, make_artifacts({"train": train, "test": test}, label="y"))
    assert rec["status"] == "passed", rec.get("skip_reason") or rec["summary"]
    assert any(f["key"] == "rare_labels" and "9: 3 rows" in f["message"] for f in rec["findings"])
    assert {m["name"]: m for m in rec["metrics"]}["label_issue_ratio_test"]["n"] == 97


def test_weakly_predictable_labels_carry_a_note_and_separable_ones_do_not() -> None:
    frame, _ = blobs(n=400, seed=9)
    rec = run_check(label_errors, make_artifacts({"train": frame}, label="y"))
    assert not any(f["key"].startswith("weakly_predictable") for f in rec["findings"])
    assert rec["metrics"][0]["details"]["learner_balanced_accuracy"] > 0.9
    frame["y"] = np.random.default_rng(0).integers(0, 3, len(frame))  # labels unrelated to the features
    rec = run_check(label_errors, make_artifacts({"train": frame}, label="y"))
    assert any(f["key"] == "weakly_predictable:train" and f["severity"] == "info" for f in rec["findings"])


def test_too_few_rows_get_no_verdict() -> None:
    train, _ = blobs(n=300, seed=10)
    test, _ = blobs(n=20, seed=11)
    rec = run_check(label_errors, make_artifacts({"train": train, "test": test}, label="y"))
    assert [m["name"] for m in rec["metrics"]] == ["label_issue_ratio_train"]
    assert any(f["key"] == "too_few_rows:test" for f in rec["findings"])
    rec = run_check(
        label_errors, make_artifacts({"train": train, "test": test}, label="y"), params={"min_rows": 10}
    )
    assert "label_issue_ratio_test" in [m["name"] for m in rec["metrics"]]
    rec = run_check(label_errors, make_artifacts({"train": train}, label="y"), params={"min_rows": 301})
    assert rec["status"] == "not_applicable" and "min_rows" in rec["skip_reason"]


@pytest.mark.parametrize(
    ("param", "value", "needle"),
    [
        ("prune", "nope", "checks.params.AK-DQ-005.prune: Input should be 'prune_by_noise_rate'"),
        ("learner", "svm", "checks.params.AK-DQ-005.learner: Input should be 'auto'"),
        ("folds", 1, "checks.params.AK-DQ-005.folds: Input should be greater than or equal to 2"),
        ("bound", "lucky", "checks.params.AK-DQ-005.bound: Input should be 'value' or 'conservative'"),
    ],
)
def test_a_parameter_outside_its_declared_domain_stops_the_run_before_any_check(
    tmp_path, capsys, param: str, value: object, needle: str
) -> None:  # type: ignore[no-untyped-def]
    import json

    from auditkit.cli import main

    frame, _ = blobs(n=200)
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[:60].to_csv(tmp_path / "test.csv", index=False)
    spec = {
        "version": 1,
        "name": "bad-param",
        "data": {"label": "y", "splits": {"train": "train.csv", "test": "test.csv"}},
        "report": {"formats": ["json"]},
        "checks": {"params": {"AK-DQ-005": {param: value}}},
    }
    (tmp_path / "audit.yaml").write_text(json.dumps(spec))  # JSON is YAML
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tmp_path / "audit.yaml"), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert len(err.splitlines()) == 1 and needle in err and f"(got {value!r})" in err, err
    assert not (tmp_path / "out").exists()
