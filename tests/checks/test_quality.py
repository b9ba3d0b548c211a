"""AK-DQ-001..004: real Great Expectations validation (one shared context), duplicates, missing values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from auditkit.checks import quality as Q

from auditkit.testing import check_contract, make_artifacts, run_check, tiny_tabular


def _metric(rec: dict, name: str) -> dict:
    return next(m for m in rec["metrics"] if m["name"] == name)


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 90, n), "income": rng.lognormal(10, 1, n),
        "city": rng.choice(["Zürich", "Genève", "Αθήνα"], n), "y": rng.choice(["no", "yes"], n),
    })  # fmt: skip


@pytest.mark.parametrize("fn", [Q.expectation_suite, Q.profiled_schema, Q.duplicates, Q.missing_and_constant])
def test_contract(fn) -> None:  # type: ignore[no-untyped-def]
    d = tiny_tabular()
    check_contract(fn, lambda: make_artifacts(d, label="y", id="uid", group="household", time="when"))


# ---------------------------------------------------------------- Great Expectations (one context)
def test_profiled_schema_pass_fail_and_suite_round_trip(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    train, test = _frame(5000, 0), _frame(2000, 1)
    rec = run_check(Q.profiled_schema, make_artifacts({"train": train, "test": test}, label="y"),
                    workdir=tmp_path / "ok")  # fmt: skip
    assert rec["status"] == "passed", rec["findings"]
    suite_file = tmp_path / "ok" / "profiled_suite.json"
    doc = json.loads(suite_file.read_text())
    kinds = {(e["type"], e["kwargs"].get("column")) for e in doc["expectations"]}
    assert ("expect_column_values_to_be_in_set", "city") in kinds
    assert ("expect_column_values_to_be_between", "income") in kinds
    assert ("expect_column_values_to_be_in_set", "y") in kinds  # the label's classes

    bad = test.copy()
    bad["income"] = bad["income"].astype(float)
    bad.loc[:99, "income"] = 1e9  # 5% far outside train's range (mostly = 0.99)
    bad.loc[100:159, "city"] = "Bern"  # 3% unseen category
    bad.loc[200:399, "age"] = np.nan  # 10% missing where train had none
    ood = bad.copy()
    arts = make_artifacts({"train": train, "test": bad, "ood": ood}, label="y")
    rec = run_check(Q.profiled_schema, arts, workdir=tmp_path / "bad")
    assert rec["status"] == "failed"
    by_key = {f["key"]: f for f in rec["findings"]}
    assert by_key["test:expect_column_values_to_be_between:income"]["evidence"]["unexpected_count"] == 100
    assert by_key["test:expect_column_values_to_be_in_set:city"]["evidence"]["unexpected_count"] == 60
    assert by_key["test:expect_column_values_to_not_be_null:age"]["evidence"]["unexpected_count"] == 200
    assert "Bern" in by_key["test:expect_column_values_to_be_in_set:city"]["message"]
    assert all(f["severity"] == "info" for f in rec["findings"] if f["key"].startswith("ood:"))
    assert _metric(rec, "failed_expectations_test")["value"] == 3

    # the written suite is a valid GE suite: fed back to AK-DQ-001 it validates every split
    arts = make_artifacts({"train": train, "test": bad}, label="y",
                          spec={"data": {"expectations": str(suite_file)}})  # fmt: skip
    rec = run_check(Q.expectation_suite, arts)
    assert _metric(rec, "failed_expectations_train")["value"] == 0
    assert _metric(rec, "failed_expectations_test")["value"] == 3
    assert "Calculating Metrics" not in capfd.readouterr().err  # GE's tqdm bars are silenced


def test_user_suite_findings_name_expectation_column_and_count(tmp_path: Path) -> None:
    train, test = _frame(3000, 2), _frame(1000, 3)
    test.loc[:24, "age"] = 150
    suite = {
        "name": "loans",
        "expectations": [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "age", "min_value": 18, "max_value": 120},
            },  # fmt: skip
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "city", "value_set": ["Zürich", "Genève", "Αθήνα"]},
            },
            {"expectation_type": "expect_column_to_exist", "kwargs": {"column": "income"}},  # 0.x spelling
        ],
    }
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
    arts = make_artifacts(
        {"train": train, "test": test}, label="y", spec={"data": {"expectations": str(path)}}
    )
    rec = run_check(Q.expectation_suite, arts)
    assert rec["status"] == "failed"
    [finding] = rec["findings"]
    assert finding["key"] == "test:expect_column_values_to_be_between:age"
    assert finding["evidence"]["unexpected_count"] == int((test.age > 120).sum()) == 25
    assert "'age'" in finding["message"] and "25 of 1000" in finding["message"]
    assert _metric(rec, "failed_expectations_train")["value"] == 0
    lenient = run_check(Q.expectation_suite, arts, params={"max_failed": 1})
    assert lenient["status"] == "passed" and lenient["findings"][0]["severity"] == "info"
    path.write_text(json.dumps({"expectations": [{"type": "expect_no_such_thing", "kwargs": {}}]}))
    assert run_check(Q.expectation_suite, arts)["status"] == "error"


# ---------------------------------------------------------------- AK-DQ-003
def test_duplicates_and_conflicts_match_pandas() -> None:
    train = _frame(2000, 4)
    train["income"] = train["income"].round(2)
    clean = run_check(Q.duplicates, make_artifacts({"train": train}, label="y"))
    assert clean["status"] == "passed"
    dup = pd.concat([train, train.iloc[:80]], ignore_index=True)
    flipped = train.iloc[80:90].copy()
    flipped["y"] = np.where(flipped.y == "yes", "no", "yes")
    dup = pd.concat([dup, flipped], ignore_index=True)
    rec = run_check(Q.duplicates, make_artifacts({"train": dup}, label="y"))
    feats = ["age", "income", "city"]
    assert _metric(rec, "duplicate_ratio_train")["details"]["count"] == int(dup.duplicated(feats).sum()) == 90
    conflicting = dup.groupby(feats)["y"].transform("nunique") > 1
    assert _metric(rec, "conflict_ratio_train")["details"]["count"] == int(conflicting.sum()) == 20
    assert rec["status"] == "failed"
    rows = rec["evidence"]["Duplicate rows in train"]["rows"]
    assert dup.loc[rows[0][0], feats].tolist() == dup.loc[rows[0][1], feats].tolist()


# ---------------------------------------------------------------- AK-DQ-004
def test_missing_constant_all_null_mixed() -> None:
    train = _frame(3000, 5)
    ok = run_check(
        Q.missing_and_constant, make_artifacts({"train": train, "test": _frame(1000, 6)}, label="y")
    )
    assert ok["status"] == "passed"
    train["const"] = 1.0
    train["void"] = np.nan
    train["sparse"] = np.where(np.arange(3000) % 2 == 0, np.nan, 1.5 * np.arange(3000))
    train["mixed"] = pd.Series([1, "a", 2.5, "ß"] * 750, dtype=object)
    rec = run_check(
        Q.missing_and_constant, make_artifacts({"train": train}, label="y", categorical=["city", "mixed"])
    )
    keys = {f["key"]: f["severity"] for f in rec["findings"]}
    assert keys == {"train:const:constant": "low", "train:void:all_null": "medium", "train:sparse:missing": "medium",
                    "train:mixed:mixed_types": "low"}  # fmt: skip
    assert _metric(rec, "max_missing_share_train")["value"] == 1.0
    assert (
        _metric(rec, "all_null_columns_train")["value"] == 1
        and _metric(rec, "constant_columns_train")["value"] == 1
    )


def test_messy_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)

    def split(n: int) -> pd.DataFrame:
        num = rng.normal(size=n)
        num[:50] = np.nan
        return pd.DataFrame({
            "num": num, "mixed": np.array(rng.choice([1, "1", "x", None, "ü"], n), dtype=object),
            "level": [f"l{i}" for i in rng.integers(0, 100_000, n)], "const": 0, "void": np.nan,
            "emoji": rng.choice(["😀", "ä", ""], n), "y": 1,
        })  # fmt: skip

    arts = make_artifacts({"train": split(20_000), "test": split(5_000)}, label="y",
                          categorical=["mixed", "level", "emoji"])  # fmt: skip
    for fn in (Q.profiled_schema, Q.duplicates, Q.missing_and_constant):
        rec = run_check(fn, arts, workdir=tmp_path)
        assert rec["status"] in ("passed", "failed"), rec["error"]
