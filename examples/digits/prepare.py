"""Build the digits audit's arrays: scikit-learn digits as 1×8×8 images, faces as far-OOD.

1797 handwritten digits (8×8, 16 grey levels) scaled to [0, 1]; a stratified, seeded split.
The OOD split holds the 200 faces of scikit-image's ``lfw_subset`` resized to 8×8 — inputs the
classifier was never meant to see (labels absent). Stored as .npz (x, y), read without pickle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.data import lfw_subset
from skimage.transform import resize
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    faces = lfw_subset()
    ood = np.stack([resize(f, (8, 8), anti_aliasing=True) for f in faces]).astype(np.float32)[:, None]
    ood = (ood - ood.min()) / (ood.max() - ood.min())
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    np.savez(out / "train.npz", x=x_train, y=y_train)
    np.savez(out / "test.npz", x=x_test, y=y_test)
    np.savez(out / "ood.npz", x=ood)
    print(f"wrote {out}: train {len(x_train)}, test {len(x_test)}, ood {len(ood)} images")


if __name__ == "__main__":
    main()
