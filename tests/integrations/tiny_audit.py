"""A tiny tabular audit for the integration tests: train/test CSVs with planted leakage (test
rows copied from train) and planted duplicates inside train (waived), a local check that crashes
and one that counts how often the audit ran."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

LOCAL_CHECKS = '''
import os
from auditkit import Outcome, check

@check(id="LOCAL-CRASH-001", title="A check that raises", requires=("train",), severity="high")
def crash(ctx, /, *, explode: bool = True):
    """Raises to show that a crash becomes status error.

    Parameters
    ----------
    explode: raise when true.
    """
    if explode:
        raise RuntimeError("boom: a bug inside the check")
    return Outcome(summary="did not explode")

@check(id="LOCAL-COUNT-001", title="Counts how often the audit runs", requires=("train",))
def count(ctx, /, *, path: str = ""):
    """Appends a line to a file each time it runs.

    Parameters
    ----------
    path: the file to append to (nothing when empty).
    """
    if path:
        with open(path, "a") as fh:
            fh.write("ran\\n")
    return Outcome(summary="counted")
'''

SELECT = ["AK-LEAK-001", "AK-LEAK-003", "AK-BAL-001", "AK-DQ-003", "AK-DQ-004", "LOCAL"]


def write_audit(folder: Path, *, leak: bool = True, duplicates: bool = True, crash: bool = True,
                count_file: Path | None = None, extra: str = "") -> Path:  # fmt: skip
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "y": (rng.random(n) < 0.5).astype(int)}
    )
    train, test = df.iloc[:150], df.iloc[150:]
    if duplicates:
        train = pd.concat([train, train.iloc[:6]])  # 6 duplicate rows inside train (AK-DQ-003)
    if leak:
        test = pd.concat([test, df.iloc[:5]])  # 5 test rows that occur in train (AK-LEAK-001)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    (folder / "local_checks").mkdir(exist_ok=True)
    (folder / "local_checks" / "local.py").write_text(LOCAL_CHECKS)
    params = {"LOCAL-CRASH-001": {"explode": crash}, "LOCAL-COUNT-001": {"path": str(count_file or "")}}
    spec = folder / "audit.yaml"
    spec.write_text(
        "version: 1\nname: tiny\n"
        "data: {label: y, splits: {train: train.csv, test: test.csv}}\n"
        f"checks:\n  select: {json.dumps(SELECT)}\n  paths: [local_checks]\n  params: {json.dumps(params)}\n"
        "gate:\n  waivers:\n"
        "    - {check: AK-DQ-003, reason: duplicates are repeated applications, expires: 2099-01-01,"
        " approved_by: risk office}\n"
        "report: {formats: [json]}\n" + extra
    )
    return spec
