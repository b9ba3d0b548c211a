"""Built-in architectures that auditkit trains itself: a tabular MLP and a small image CNN.

Preprocessing lives INSIDE the module and is fitted on the training rows, so the model takes the
raw ``Dataset.x`` (categorical features as train category codes, -1 for unknown; NaN allowed) and
attacks, OOD detectors and users all work in raw feature space:

* numeric features: NaN → train median, then standardised with the train mean and std;
* categorical codes: one-hot over the train categories (code -1 or NaN → all zeros);
* images: scaled by the train pixel mean and std (one scalar each).

Both modules are TorchScript-able (``torch.jit.script``) and keep every fitted statistic in
buffers, so the safetensors file of the state_dict plus ``config`` rebuilds the model exactly.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import torch
from torch import nn


class TabularMLP(nn.Module):
    """Raw tabular features → (impute, standardise, one-hot) → MLP → logits."""

    numeric_idx: torch.Tensor
    cat_col: torch.Tensor
    cat_val: torch.Tensor
    median: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        n_features: int,
        numeric_idx: list[int],
        categorical: dict[int, int],
        n_classes: int,
        hidden: list[int] | tuple[int, ...] = (64, 32),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.config = {
            "arch": "mlp", "n_features": n_features, "numeric_idx": list(numeric_idx),
            "categorical": {str(k): int(v) for k, v in categorical.items()}, "n_classes": n_classes,
            "hidden": list(hidden), "dropout": float(dropout),
        }  # fmt: skip
        n_num = len(numeric_idx)
        cat_col: list[int] = []
        cat_val: list[float] = []
        for col, size in sorted(categorical.items()):
            cat_col.extend([col] * size)
            cat_val.extend(float(v) for v in range(size))
        self.register_buffer("numeric_idx", torch.tensor(list(numeric_idx), dtype=torch.long))
        self.register_buffer("cat_col", torch.tensor(cat_col, dtype=torch.long))
        self.register_buffer("cat_val", torch.tensor(cat_val, dtype=torch.float32))
        self.register_buffer("median", torch.zeros(n_num))
        self.register_buffer("mean", torch.zeros(n_num))
        self.register_buffer("std", torch.ones(n_num))
        layers: list[nn.Module] = []
        width = n_num + len(cat_col)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(float(dropout)))
            width = int(h)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)

    def fit_preprocessing(self, x: np.ndarray) -> TabularMLP:
        """Fit imputation and scaling on the training rows (raw feature space)."""
        idx = self.numeric_idx.cpu().numpy()
        if len(idx):
            num = x[:, idx].astype(np.float64)
            med = np.nanmedian(np.where(np.isfinite(num), num, np.nan), axis=0)
            med = np.where(np.isfinite(med), med, 0.0)
            filled = np.where(np.isfinite(num), num, med)
            mean = filled.mean(axis=0)
            std = filled.std(axis=0)
            std = np.where(std > 1e-12, std, 1.0)
            self.median.copy_(torch.as_tensor(med, dtype=torch.float32))
            self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        return self

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        num = x.index_select(1, self.numeric_idx)
        num = torch.where(torch.isnan(num), self.median.expand_as(num), num)
        num = (num - self.mean) / self.std
        codes = x.index_select(1, self.cat_col)
        onehot = (codes == self.cat_val).to(num.dtype)  # -1 and NaN match nothing → zeros
        return torch.cat([num, onehot], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.preprocess(x)))


class SmallCNN(nn.Module):
    """Images (C, H, W) → standardise → two conv blocks → global pool → MLP head → logits."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        channels: list[int] | tuple[int, ...] = (16, 32),
        hidden: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.config = {
            "arch": "cnn",
            "in_channels": in_channels,
            "n_classes": n_classes,
            "channels": list(channels),
            "hidden": int(hidden),
            "dropout": float(dropout),
        }
        c1, c2 = int(channels[0]), int(channels[1])
        self.register_buffer("mean", torch.zeros(1))
        self.register_buffer("std", torch.ones(1))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )  # fmt: skip
        self.body = nn.Sequential(nn.Linear(c2 * 4, int(hidden)), nn.ReLU(), nn.Dropout(float(dropout)))
        self.head = nn.Linear(int(hidden), n_classes)

    def fit_preprocessing(self, x: np.ndarray) -> SmallCNN:
        finite = x[np.isfinite(x)]
        mean = float(finite.mean()) if finite.size else 0.0
        std = float(finite.std()) if finite.size else 1.0
        self.mean.fill_(mean)
        self.std.fill_(std if std > 1e-12 else 1.0)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nan_to_num((x - self.mean) / self.std)
        return self.head(self.body(self.features(x)))


def _output_affine(output: str, width: int, mean: float, std: float) -> tuple[list[float], list[float]]:
    """(scale, shift) per output column that turn standardised outputs into label units.

    point and quantile columns: z·std + mean; gaussian [mean, log_var]: the mean as above and
    log_var + 2·log(std) (the variance scales with std²)."""
    if output == "gaussian":
        return [std, 1.0], [mean, float(2 * np.log(std))]
    return [std] * width, [mean] * width


class TabularMLPRegressor(TabularMLP):
    """A TabularMLP whose outputs are in label units: the head predicts the standardised target
    (train mean and sd, fitted by ``fit_target``) and ``forward`` undoes the standardisation."""

    out_scale: torch.Tensor
    out_shift: torch.Tensor

    def __init__(
        self,
        n_features: int,
        numeric_idx: list[int],
        categorical: dict[int, int],
        n_outputs: int,
        hidden: list[int] | tuple[int, ...] = (64, 32),
        dropout: float = 0.0,
        output: str = "point",
    ) -> None:
        super().__init__(n_features, numeric_idx, categorical, n_outputs, hidden=hidden, dropout=dropout)
        self.config.update({"task": "regression", "output": output})
        self.register_buffer("out_scale", torch.ones(n_outputs))
        self.register_buffer("out_shift", torch.zeros(n_outputs))

    def fit_target(self, y: np.ndarray) -> TabularMLPRegressor:
        scale, shift = _target_affine(str(self.config["output"]), int(self.out_scale.numel()), y)
        self.out_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.out_shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.preprocess(x))) * self.out_scale + self.out_shift


class SmallCNNRegressor(SmallCNN):
    """A SmallCNN whose outputs are in label units (see TabularMLPRegressor)."""

    out_scale: torch.Tensor
    out_shift: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        n_outputs: int,
        channels: list[int] | tuple[int, ...] = (16, 32),
        hidden: int = 64,
        dropout: float = 0.0,
        output: str = "point",
    ) -> None:
        super().__init__(in_channels, n_outputs, channels=channels, hidden=hidden, dropout=dropout)
        self.config.update({"task": "regression", "output": output})
        self.register_buffer("out_scale", torch.ones(n_outputs))
        self.register_buffer("out_shift", torch.zeros(n_outputs))

    def fit_target(self, y: np.ndarray) -> SmallCNNRegressor:
        scale, shift = _target_affine(str(self.config["output"]), int(self.out_scale.numel()), y)
        self.out_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.out_shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nan_to_num((x - self.mean) / self.std)
        return self.head(self.body(self.features(x))) * self.out_scale + self.out_shift


def target_stats(y: np.ndarray) -> tuple[float, float]:
    """(mean, sd) of a regression target's finite values; sd 1 for a constant target."""
    v = np.asarray(y, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return 0.0, 1.0
    sd = float(v.std())
    return float(v.mean()), sd if sd > 1e-12 else 1.0


def _target_affine(output: str, width: int, y: np.ndarray) -> tuple[list[float], list[float]]:
    mean, std = target_stats(y)
    return _output_affine(output, width, mean, std)


def build(
    arch: str,
    *,
    x_train: np.ndarray,
    n_classes: int,
    numeric_idx: list[int] | None = None,
    categorical: dict[int, int] | None = None,
    args: dict[str, Any] | None = None,
    task: str = "classification",
    output: str = "point",
    y_train: np.ndarray | None = None,
) -> nn.Module:
    """A fresh built-in model with its preprocessing fitted on ``x_train`` (raw model input).

    ``task: regression``: ``n_classes`` is the output width (1 point, 2 gaussian, q quantiles), and
    the target standardisation is fitted on ``y_train`` inside the module (outputs in label units).
    """
    args = dict(args or {})
    regression = task == "regression"
    if arch == "cnn":
        if x_train.ndim != 4:
            raise ValueError(f"builtin cnn needs images shaped (n, C, H, W); got {x_train.shape}")
        if regression:
            model: nn.Module = SmallCNNRegressor(int(x_train.shape[1]), n_classes, output=output, **args)
        else:
            model = SmallCNN(int(x_train.shape[1]), n_classes, **args)
    elif arch == "mlp":
        n_features = int(np.prod(x_train.shape[1:]))
        if x_train.ndim > 2:
            numeric_idx, categorical = list(range(n_features)), {}
        elif numeric_idx is None:
            numeric_idx = list(range(n_features))
        if regression:
            model = TabularMLPRegressor(
                n_features, list(numeric_idx), dict(categorical or {}), n_classes, output=output, **args
            )
        else:
            model = TabularMLP(n_features, list(numeric_idx), dict(categorical or {}), n_classes, **args)
    else:
        raise ValueError(f"unknown builtin model {arch!r} (mlp or cnn)")
    model.fit_preprocessing(x_train.reshape(len(x_train), -1) if arch == "mlp" else x_train)  # type: ignore[operator]
    if regression:
        if y_train is None:
            raise ValueError("a regression model needs y_train to fit its target standardisation")
        model.fit_target(y_train)  # type: ignore[operator]
    return model


def rebuild(config: dict[str, Any]) -> nn.Module:
    """An untrained module of the same architecture (load the state_dict into it)."""
    cfg = dict(config)
    arch = cfg.pop("arch")
    regression = cfg.get("task") == "regression"
    if arch == "mlp":
        if regression:
            return TabularMLPRegressor(
                cfg["n_features"], cfg["numeric_idx"], {int(k): v for k, v in cfg["categorical"].items()},
                cfg["n_classes"], hidden=cfg["hidden"], dropout=cfg["dropout"], output=cfg["output"],
            )  # fmt: skip
        return TabularMLP(
            cfg["n_features"], cfg["numeric_idx"], {int(k): v for k, v in cfg["categorical"].items()},
            cfg["n_classes"], hidden=cfg["hidden"], dropout=cfg["dropout"],
        )  # fmt: skip
    if regression:
        return SmallCNNRegressor(
            cfg["in_channels"], cfg["n_classes"], channels=cfg["channels"], hidden=cfg["hidden"],
            dropout=cfg["dropout"], output=cfg["output"],
        )  # fmt: skip
    return SmallCNN(
        cfg["in_channels"],
        cfg["n_classes"],
        channels=cfg["channels"],
        hidden=cfg["hidden"],
        dropout=cfg["dropout"],
    )


def serialise(model: nn.Module, example: torch.Tensor) -> dict[str, bytes]:
    """safetensors (state_dict + config in its metadata) and TorchScript bytes of a trained model."""
    import io
    import warnings

    from safetensors.torch import save

    module = model.cpu().eval()
    state = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    config = getattr(module, "config", {})
    st = _sorted_metadata(
        save(state, metadata={"auditkit_config": json.dumps(config, sort_keys=True), "format": "pt"})
    )
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scripted = torch.jit.script(module)
        except Exception:  # scripting can fail on exotic configs; tracing is equivalent for these nets
            scripted = torch.jit.trace(module, example.cpu())
        torch.jit.save(scripted, buf)
    return {"model.safetensors": st, "model.pt": _without_debug_info(buf.getvalue())}


def _without_debug_info(blob: bytes) -> bytes:
    """The TorchScript archive without its ``*.debug_pkl`` source maps, and with a serialization id
    computed from what is left.

    The code records list each module's constants (``name : Final[int] = 3``) in set order, which
    changes with ``PYTHONHASHSEED``: two runs of the same audit wrote different bytes. Each run of
    consecutive constant lines is sorted (declarations; their order means nothing to TorchScript).
    The source maps record the absolute path and line numbers of the Python code each module was
    compiled from, so the same model saved from two checkouts (or a venv and a site-packages
    install) had different bytes and a different hash in the manifest; torch's
    ``.data/serialization_id`` is a checksum over every record, source maps included, so it moved
    with them. ``torch.jit.load`` needs neither; errors inside the scripted model then name
    TorchScript code lines instead of the original source. The id is rewritten as a decimal digest
    of the kept records (same width as torch's), so it still identifies the archive's content.
    """
    import hashlib
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as src:
        kept = [(i.filename, _sorted_constants(i.filename, src.read(i)))
                for i in src.infolist() if not i.filename.endswith(".debug_pkl")]  # fmt: skip
    digest = hashlib.sha256()
    for name, data in kept:
        if not name.endswith(".data/serialization_id"):
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    ident = str(int.from_bytes(digest.digest()[:16], "big")).zfill(40).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name, data in kept:
            data = ident if name.endswith(".data/serialization_id") else data
            dst.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


_CONSTANT = re.compile(rb"^\s+\w+ : Final\[.*\] = .*$")


def _sorted_constants(name: str, data: bytes) -> bytes:
    """A TorchScript code record with each run of consecutive ``Final`` constant lines sorted."""
    if "/code/" not in f"/{name}" or not name.endswith(".py"):
        return data
    lines, out, run = data.split(b"\n"), [], []
    for line in lines:
        if _CONSTANT.match(line):
            run.append(line)
            continue
        out.extend(sorted(run))
        run = []
        out.append(line)
    out.extend(sorted(run))
    return b"\n".join(out)


def _sorted_metadata(blob: bytes) -> bytes:
    """The safetensors bytes with ``__metadata__`` keys in sorted order.

    safetensors writes metadata from a Rust HashMap, so its key order (and the file's sha256) changed
    from run to run; the header is rewritten with the same length so the tensor offsets stay valid.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta else {}) | header
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:
        return blob  # cannot happen for ASCII metadata; keep the original rather than corrupt it
    return blob[:8] + text.ljust(n, b" ") + blob[8 + n :]
