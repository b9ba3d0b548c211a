"""Build the edge-deployment example: data, the audited MLP, and the artifacts a team would ship.

From scikit-learn's bundled breast-cancer data (no download): a seeded, stratified 60/20/20 split
into train, test and production. The audited model (`edge_model.EdgeMLP`, normalisation inside)
is trained here and saved as `model.safetensors`; then
  * `model.onnx`            — its ONNX export (torch.onnx.export, dynamic batch axis);
  * `model.int8.onnx`       — that export quantized by onnxruntime (dynamic int8 weights);
  * `model.badnorm.onnx`    — the planted defect: exported after the normalisation mean was
                              replaced by a wrong constant (a quarter standard deviation off, as
                              when an export script reads the statistics of another data version).
`quantize: dynamic_int8` and `dtype: bfloat16` artifacts are derived by auditkit itself.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from edge_model import make_net  # noqa: E402


def splits() -> dict[str, object]:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["malignant"] = 1 - frame.pop("target")
    frame.insert(0, "patient_id", [f"P{i:04d}" for i in range(len(frame))])
    train, rest = train_test_split(frame, test_size=0.40, stratify=frame["malignant"], random_state=0)
    test, production = train_test_split(rest, test_size=0.5, stratify=rest["malignant"], random_state=0)
    return {"train": train, "test": test, "production": production}


def train(frame: object, seed: int = 0, epochs: int = 300) -> torch.nn.Module:
    torch.manual_seed(seed)
    x = torch.tensor(frame.drop(columns=["patient_id", "malignant"]).to_numpy(np.float32))  # type: ignore[attr-defined]
    y = torch.tensor(frame["malignant"].to_numpy(np.int64))  # type: ignore[index]
    model = make_net(x.shape[1])
    with torch.no_grad():
        model.mean.copy_(x.mean(0))
        model.std.copy_(x.std(0))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def export(model: torch.nn.Module, path: Path, n_features: int) -> None:
    torch.onnx.export(
        model, (torch.zeros(2, n_features),), str(path), input_names=["features"], output_names=["logits"],
        dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
    )  # fmt: skip


def main() -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.set_num_threads(1)
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    parts = splits()
    for name, part in parts.items():
        part.sort_values("patient_id").to_csv(out / f"{name}.csv", index=False, float_format="%.6g")  # type: ignore[attr-defined]
    # Train on the rows exactly as written (CSV rounding included), so the audit sees what was trained on.
    import pandas as pd

    model = train(pd.read_csv(out / "train.csv"))
    n = int(model.mean.shape[0])
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    export(model, out / "model.onnx", n)
    quantize_dynamic(str(out / "model.onnx"), str(out / "model.int8.onnx"), weight_type=QuantType.QInt8)
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.mean.add_(0.25 * bad.std)  # the wrong normalisation constant
    export(bad, out / "model.badnorm.onnx", n)
    print(f"wrote {out}: splits {', '.join(f'{k} {len(v)}' for k, v in parts.items())}; model + 3 ONNX files")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
