"""Build the breast-cancer audit's splits from scikit-learn's bundled copy (no download).

Wisconsin Diagnostic Breast Cancer: 569 tumours × 30 features, 37% malignant. A stratified,
seeded 70/15/15 split into train, test and a "production" sample that stands in for recent data.
The label is 1 = malignant (scikit-learn codes malignant as 0; we flip it so the positive class is
the one a screening model must find).
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["malignant"] = 1 - frame.pop("target")
    frame.insert(0, "patient_id", [f"P{i:04d}" for i in range(len(frame))])
    train, rest = train_test_split(frame, test_size=0.30, stratify=frame["malignant"], random_state=0)
    test, production = train_test_split(rest, test_size=0.5, stratify=rest["malignant"], random_state=0)
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    for name, part in (("train", train), ("test", test), ("production", production)):
        part.sort_values("patient_id").to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
    print(f"wrote {out}: train {len(train)}, test {len(test)}, production {len(production)} rows")


if __name__ == "__main__":
    main()
