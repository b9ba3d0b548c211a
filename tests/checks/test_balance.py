"""AK-BAL-001..003: both directions of each threshold, independent recomputation, messy input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from auditkit.checks import balance as B

from auditkit import InputError
from auditkit.testing import check_contract, make_artifacts, run_check, tiny_tabular


def _metric(rec: dict, name: str) -> dict:
    return next(m for m in rec["metrics"] if m["name"] == name)


def _labels(counts: dict[str, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.concatenate([[k] * v for k, v in counts.items()])
    return pd.DataFrame({"x": rng.normal(size=len(y)), "y": rng.permutation(y)})


@pytest.mark.parametrize("fn", [B.class_imbalance, B.label_shift, B.representation])
def test_contract(fn) -> None:  # type: ignore[no-untyped-def]
    d = tiny_tabular()
    check_contract(fn, lambda: make_artifacts(d, label="y", sensitive=["sex"]))


def test_imbalance_both_directions() -> None:
    mild = run_check(B.class_imbalance, make_artifacts({"train": _labels({"a": 700, "b": 300})}, label="y"))
    assert mild["status"] == "passed"
    assert _metric(mild, "minority_share")["value"] == pytest.approx(0.3)
    assert _metric(mild, "minority_share")["threshold"] == pytest.approx(0.1)
    severe = run_check(B.class_imbalance, make_artifacts({"train": _labels({"a": 980, "b": 20})}, label="y"))
    assert severe["status"] == "failed"
    assert _metric(severe, "minority_share")["passed"] is False
    assert _metric(severe, "min_class_count")["value"] == 20
    assert "class:b" in {f["key"] for f in severe["findings"]}
    # more imbalance never passes where less fails: monotone in the minority share
    statuses = [run_check(B.class_imbalance, make_artifacts({"train": _labels({"a": 1000 - m, "b": m})}, label="y"),
                          params={"min_class_count": 0})["status"] for m in (500, 200, 120, 80, 40, 5)]  # fmt: skip
    assert statuses == ["passed"] * 3 + ["failed"] * 3


def test_imbalance_class_missing_from_train_and_single_class() -> None:
    train, test = _labels({"a": 500, "b": 500}), _labels({"a": 50, "c": 50})
    rec = run_check(B.class_imbalance, make_artifacts({"train": train, "test": test}, label="y"))
    assert rec["status"] == "failed" and _metric(rec, "min_class_count")["value"] == 0
    one = run_check(B.class_imbalance, make_artifacts({"train": _labels({"a": 100})}, label="y"))
    assert one["status"] == "failed" and "single_class" in {f["key"] for f in one["findings"]}


def test_label_shift_matches_tvd_and_fails_on_shift() -> None:
    train = _labels({"a": 600, "b": 300, "c": 100})
    same = _labels({"a": 300, "b": 150, "c": 50}, seed=1)
    rec = run_check(B.label_shift, make_artifacts({"train": train, "test": same}, label="y"))
    assert rec["status"] == "passed" and _metric(rec, "label_shift_test")["value"] == pytest.approx(0.0)
    shifted = _labels({"a": 200, "b": 200, "c": 100, "d": 10}, seed=2)
    rec = run_check(B.label_shift, make_artifacts({"train": train, "test": shifted}, label="y"))
    p = np.array([0.6, 0.3, 0.1, 0.0])
    q = np.array([200, 200, 100, 10]) / 510
    m = _metric(rec, "label_shift_test")
    assert m["value"] == pytest.approx(0.5 * np.abs(p - q).sum())
    assert m["ci"][0] <= m["value"] <= m["ci"][1] and m["passed"] is False
    assert "test:unseen_classes" in {f["key"] for f in rec["findings"]}


def test_representation_groups_and_intersections() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"x": rng.normal(size=n), "y": rng.integers(0, 2, n),
                       "sex": rng.choice(["f", "m"], n), "race": rng.choice(["a", "b", "c"], n)})  # fmt: skip
    arts = make_artifacts({"train": df, "test": df.iloc[:2000]}, label="y", sensitive=["sex", "race"])
    assert run_check(B.representation, arts)["status"] == "passed"
    df.loc[df.race == "c", "sex"] = "m"  # no women of group c: an empty intersection
    df.loc[:5, "race"] = "d"  # a tiny group
    df.loc[6:8, "race"] = np.nan
    rec = run_check(B.representation, make_artifacts({"train": df}, label="y", sensitive=["sex", "race"]))
    keys = {f["key"] for f in rec["findings"]}
    assert {"train:race=d", "train:race=<missing>", "train:sex=f, race=c"} <= keys
    counts = {r[2]: r[3] for r in rec["evidence"]["Sensitive groups"]["rows"]}
    assert counts["sex=f, race=c"] == 0 and counts["race=d"] == 6
    assert _metric(rec, "under_represented_train")["value"] == len(
        [k for k in keys if k.startswith("train:")]
    )


def test_messy_labels_and_high_cardinality_sensitive() -> None:
    rng = np.random.default_rng(1)
    n = 50_000
    df = pd.DataFrame({"x": rng.normal(size=n), "zip": [f"z{i}" for i in rng.integers(0, 100_000, n)],
                       "y": rng.choice(["ja", "nein", "ü"], n)})  # fmt: skip
    df.loc[:100, "y"] = None
    with pytest.raises(InputError, match="101 of 50000 rows have no label"):
        make_artifacts({"train": df, "test": df.iloc[:1000]}, label="y", sensitive=["zip"])
    arts = make_artifacts(
        {"train": df, "test": df.iloc[:1000]}, label="y", sensitive=["zip"], drop_missing_labels=True
    )
    for fn in (B.class_imbalance, B.label_shift, B.representation):
        rec = run_check(fn, arts)
        assert rec["status"] in ("passed", "failed"), rec["error"]
    rec = run_check(B.representation, arts)
    assert len(rec["findings"]) == 51 and rec["findings"][-1]["severity"] == "info"
    cont = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    # a continuous label is a regression target (issue #22): the target's tail is judged, not class shares
    rec = run_check(B.class_imbalance, make_artifacts({"train": cont}, label="y"))
    assert rec["status"] == "passed" and "tail_ratio" in {m["name"] for m in rec["metrics"]}
    declared = make_artifacts(
        {"train": cont}, label="y", spec={"model": {"builtin": "mlp", "task": "classification"}}
    )
    assert run_check(B.class_imbalance, declared)["status"] == "not_applicable"
