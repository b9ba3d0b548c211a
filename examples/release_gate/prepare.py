"""Build two releases of the breast-cancer model's data: v1 (clean) and v2 (leaky and degraded).

v1: the stratified split of examples/breast_cancer. v2: the same test set, but a quarter of the
test rows were copied into train (exact leakage — the kind a careless re-split introduces) and 15%
of the remaining training labels were flipped (a broken labelling job): v2's model is worse and
its data leaks. Against v1 as baseline, v2 must fail the gate with exit code 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["malignant"] = 1 - frame.pop("target")
    train, test = train_test_split(frame, test_size=0.3, stratify=frame["malignant"], random_state=0)
    rng = np.random.default_rng(0)
    for version in ("v1", "v2"):
        out = HERE / "data" / version
        out.mkdir(parents=True, exist_ok=True)
        tr = train.copy()
        if version == "v2":
            flip = rng.random(len(tr)) < 0.15
            tr.loc[flip, "malignant"] = 1 - tr.loc[flip, "malignant"]
            tr = pd.concat([tr, test.sample(frac=0.25, random_state=0)])
        tr.to_csv(out / "train.csv", index=False, float_format="%.6g")
        test.to_csv(out / "test.csv", index=False, float_format="%.6g")
    print(f"wrote {HERE / 'data'}/v1 and v2")


if __name__ == "__main__":
    main()
