"""Benchmark of the data checks at a million rows (issue 3). A script, not a test.

    .venv/bin/python benchmarks/bench_data.py [--train 1000000] [--test 250000] [--seed 0]

A seeded synthetic table: ``--train`` / ``--test`` rows, 20 numeric features (normal, log-normal,
integer and heavy-tailed, on different scales), 5 categorical ones (5 to 20,000 levels, text with
accents), an id, a time, a binary label and a sensitive column. 1% of the test rows are exact copies
of train rows (features; half of them with the label flipped) and 1% are near copies (every
numeric feature moved by 0.001 train standard deviations, categories equal). Every data check runs
once on the same in-memory artefacts, as an audit would run them (shared row hashes, lazy label
coding), in this order: AK-LEAK-001 first, so its time includes hashing both splits. The written
pair files of AK-LEAK-001/002 give precision and recall against the planted rows.

Baselines (same run): a pandas inner merge of test on train's distinct feature rows (exact
overlap), and an exact brute-force kNN (scikit-learn, scaled numeric features) of a 12,500-row
test sample against a 50,000-row train sample, extrapolated ×400 to the full size (its cost is
quadratic: 20× the train rows × 20× the test rows).

Measured 2026-11-21, 2-core shared VM (other helpers' test jobs running alongside: figures are
upper bounds), Python 3.11, pandas 3.1, numpy 2.4, faiss-cpu 1.15.1 (2 OpenMP threads),
great-expectations 1.24.1, default parameters, 1,000,000 train / 250,000 test rows, seed 0:

    AK-LEAK-001  1.73 s (target ≤ 3 s)   precision 1.0000, recall 1.0000 of 2,500 planted exact
                 copies; 1,250 label conflicts found (1,250 planted)
    AK-LEAK-002 23.05 s (target ≤ 60 s)  precision 1.0000, recall 1.0000 of 2,500 planted near copies
    all 13 data checks 55.6 s (target ≤ 120 s); peak RSS 1.62 GB for the whole process, data included
                 (target ≤ 6 GB)
    per check (s): LEAK-001 1.7, LEAK-002 23.0, LEAK-003 0.1, LEAK-004 0.2, LEAK-005 4.7, BAL-001 0.1,
                 BAL-002 0.0, BAL-003 0.2, DQ-002 3.2, DQ-001 7.8 (GE on 1.25M rows), DQ-003 0.5,
                 DQ-004 4.2, DRIFT-001 9.8
    one-time imports (not in the figures above): scipy.stats 1.3 s, faiss 0.1 s, great_expectations 4.3 s
    baseline pandas merge 11.0 s: 6.4× AK-LEAK-001
    baseline exact kNN, 50k × 12.5k sample 7.2 s → about 0.8 h at full size: 125× AK-LEAK-002
    (load average 3–5 on the 2 cores during the run: upper bounds.)

    Earlier runs of nearly final code (before the row hash got a full mix per column) under load 5–7:
    AK-LEAK-001 1.1–1.3 s, AK-LEAK-002 16–22 s, all 40–53 s. A faiss-IVF version of AK-LEAK-002
    took 140 s under the same load, hence the LSH.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGETS = {"AK-LEAK-001": 3.0, "AK-LEAK-002": 60.0, "all": 120.0, "peak_gb": 6.0, "recall": 0.99}


def make_tables(
    n_train: int, n_test: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    cols: dict[str, np.ndarray] = {}
    for i in range(20):
        kind = i % 4
        if kind == 0:
            cols[f"num{i}"] = rng.normal(size=n) * (i + 1)
        elif kind == 1:
            cols[f"num{i}"] = rng.lognormal(3, 1, size=n)
        elif kind == 2:
            cols[f"num{i}"] = rng.integers(0, 1000, size=n).astype(float) + rng.random(n)
        else:
            cols[f"num{i}"] = rng.standard_t(3, size=n) * 1e3
    levels = [5, 30, 300, 2_000, 20_000]
    for j, m in enumerate(levels):
        names = np.array([f"cat{j}-é{k}" for k in range(m)], dtype=object)
        cols[f"cat{j}"] = names[rng.zipf(1.3, size=n) % m]
    frame = pd.DataFrame(cols)
    frame["sex"] = rng.choice(["f", "m"], size=n)
    frame["y"] = (frame["num0"] / 1 + rng.normal(size=n) > 0).astype(int)
    frame["uid"] = np.arange(n)
    frame["ts"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(n) // 100, unit="min")
    train = frame.iloc[:n_train].reset_index(drop=True)
    test = frame.iloc[n_train:].reset_index(drop=True)
    # plant 1% exact and 1% near copies in test
    k = n_test // 100
    rows = rng.permutation(n_test)
    exact_rows, near_rows = np.sort(rows[:k]), np.sort(rows[k : 2 * k])
    src_exact = rng.choice(n_train, k, replace=False)
    src_near = rng.choice(n_train, k, replace=False)
    feats = [c for c in train.columns if c not in ("y", "uid", "ts")]  # the sensitive column is a feature
    num = [c for c in feats if c.startswith("num")]
    test.loc[exact_rows, feats + ["y"]] = train.loc[src_exact, feats + ["y"]].to_numpy()
    test.loc[exact_rows[: k // 2], "y"] = 1 - train.loc[src_exact[: k // 2], "y"].to_numpy()
    test["y"] = test["y"].astype(int)
    sd = train[num].std(ddof=0).to_numpy()
    near = train.loc[src_near, feats].copy()
    near[num] = near[num].to_numpy() + rng.choice([-1.0, 1.0], size=(k, len(num))) * 0.001 * sd
    test.loc[near_rows, feats] = near.to_numpy()
    test[num] = test[num].astype(float)
    truth = {"exact": exact_rows, "exact_src": src_exact, "near": near_rows, "near_src": src_near}
    return train, test, truth


def pr(found: np.ndarray, planted: np.ndarray) -> tuple[float, float]:
    hit = np.intersect1d(found, planted).size
    return (hit / len(found) if len(found) else 1.0), hit / len(planted)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=1_000_000)
    ap.add_argument("--test", type=int, default=250_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from auditkit.checks import balance, drift, leakage, quality

    from auditkit.testing import make_artifacts, run_check

    # one-time imports, paid once per process by any audit: timed apart, not charged to a check
    imports = {}
    for name, load in (("scipy.stats", lambda: __import__("scipy.stats")), ("faiss", lambda: __import__("faiss")),
                       ("great_expectations", quality._ge)):  # fmt: skip
        t = time.perf_counter()
        load()
        imports[name] = time.perf_counter() - t
    print("imports (s): " + ", ".join(f"{k} {v:.1f}" for k, v in imports.items()))
    t0 = time.perf_counter()
    train, test, truth = make_tables(args.train, args.test, args.seed)
    print(f"generated {len(train):,} + {len(test):,} rows in {time.perf_counter() - t0:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="bench-data-"))
    suite = work / "AK-DQ-002" / "profiled_suite.json"
    t0 = time.perf_counter()
    arts = make_artifacts(
        {"train": train, "test": test}, label="y", id="uid", time="ts", sensitive=["sex"],
        spec={"data": {"expectations": str(suite)}},
    )  # fmt: skip
    print(f"artefacts built in {time.perf_counter() - t0:.1f} s")
    order = [
        leakage.train_test_overlap, leakage.near_duplicates, leakage.entity_leakage, leakage.temporal_leakage,
        leakage.target_leakage, balance.class_imbalance, balance.label_shift, balance.representation,
        quality.profiled_schema, quality.expectation_suite, quality.duplicates, quality.missing_and_constant,
        drift.feature_drift,
    ]  # fmt: skip
    times: dict[str, float] = {}
    records = {}
    for fn in order:
        cid = fn.__auditkit_check__.id  # type: ignore[attr-defined]
        t = time.perf_counter()
        rec = run_check(fn, arts, workdir=work / cid)
        times[cid] = time.perf_counter() - t
        records[cid] = rec
        print(f"{cid:13s} {times[cid]:7.2f} s  {rec['status']:14s} {rec['summary'][:90]}")
        assert rec["status"] != "error", rec["error"]
    total = sum(times.values())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2

    ov = pd.read_csv(work / "AK-LEAK-001" / "overlap_rows.csv")
    p1, r1 = pr(ov.test_row.to_numpy(), truth["exact"])
    conflicts = int(ov.label_conflict.sum())
    nd = pd.read_csv(work / "AK-LEAK-002" / "near_duplicate_rows.csv")
    p2, r2 = pr(nd.test_row.to_numpy(), truth["near"])

    # baseline 1: pandas merge on all feature columns
    feats = [c for c in train.columns if c not in ("y", "uid", "ts")]
    t = time.perf_counter()
    merged = test[feats].reset_index().merge(train[feats].drop_duplicates(), on=feats, how="inner")
    t_merge = time.perf_counter() - t
    # baseline 2: exact kNN on a 50k sample, extrapolated
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(1)
    num = [c for c in feats if c.startswith("num")]
    mu, sd = train[num].mean().to_numpy(), train[num].std(ddof=0).to_numpy()
    a = (train[num].to_numpy()[rng.choice(len(train), 50_000, replace=False)] - mu) / sd
    b = (test[num].to_numpy()[rng.choice(len(test), 12_500, replace=False)] - mu) / sd
    t = time.perf_counter()
    NearestNeighbors(n_neighbors=1, algorithm="brute").fit(a).kneighbors(b)
    t_knn = time.perf_counter() - t
    knn_full = t_knn * (len(train) / 50_000) * (len(test) / 12_500)

    lines = [
        f"AK-LEAK-001 {times['AK-LEAK-001']:.2f} s (target ≤ {TARGETS['AK-LEAK-001']:.0f} s); "
        f"precision {p1:.4f}, recall {r1:.4f} of {len(truth['exact']):,} planted exact copies; "
        f"{conflicts:,} label conflicts (planted {len(truth['exact']) // 2:,})",
        f"AK-LEAK-002 {times['AK-LEAK-002']:.2f} s (target ≤ {TARGETS['AK-LEAK-002']:.0f} s); "
        f"precision {p2:.4f}, recall {r2:.4f} of {len(truth['near']):,} planted near copies",
        f"all 13 data checks {total:.1f} s (target ≤ {TARGETS['all']:.0f} s); peak RSS {peak_gb:.2f} GB "
        f"(target ≤ {TARGETS['peak_gb']:.0f} GB, whole process incl. data)",
        f"baseline pandas merge {t_merge:.2f} s ({merged['index'].nunique():,} rows): "
        f"{t_merge / times['AK-LEAK-001']:.1f}× AK-LEAK-001",
        f"baseline exact kNN 50k×12.5k sample {t_knn:.1f} s → ~{knn_full / 3600:.1f} h at full size: "
        f"{knn_full / times['AK-LEAK-002']:.0f}× AK-LEAK-002",
        "per check (s): " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()),
        "one-time imports, not counted above (s): " + ", ".join(f"{k} {v:.1f}" for k, v in imports.items()),
    ]
    print("\n" + "\n".join(lines))
    ok = (times["AK-LEAK-001"] <= TARGETS["AK-LEAK-001"] and times["AK-LEAK-002"] <= TARGETS["AK-LEAK-002"]
          and total <= TARGETS["all"] and peak_gb <= TARGETS["peak_gb"]
          and min(p1, r1, p2, r2) >= TARGETS["recall"])  # fmt: skip
    print("all targets met" if ok else "SOME TARGETS MISSED")


if __name__ == "__main__":
    main()
