"""Test helpers and the check contract kit.

``run_check`` runs one check on in-memory data (DataFrames or arrays) and an optional model and
returns its results record, exactly as results.json would hold it. ``check_contract`` holds any
check to the contract: valid metadata, documented parameters that round-trip through YAML and
JSON, ``not_applicable`` without inputs, and determinism for a seed. auditkit's own test suite
applies it to every built-in check; plugin authors can do the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from auditkit.engine.check import CheckInfo, check_info
from auditkit.engine.runner import Planned, run_one, validate_params
from auditkit.frameworks.rmf import validate_subcategory_ids
from auditkit.inputs.artifacts import Artifacts
from auditkit.inputs.data import Roles, build_datasets, from_arrays
from auditkit.spec.schema import parse_spec

Split = Any  # a DataFrame, or (x, y) / (x, y, {name: 1-D array}) numpy arrays


def make_artifacts(
    data: Mapping[str, Split] | None = None,
    *,
    label: str | None = None,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    id: str | None = None,
    group: str | None = None,
    time: str | None = None,
    sensitive: Sequence[str] = (),
    model: Any = None,
    input_kind: str | None = None,
    spec: Mapping[str, Any] | None = None,
    training_runs: list[Any] | None = None,
    drop_missing_labels: bool = False,
) -> Artifacts:
    """In-memory Artifacts. ``data`` maps split name to a DataFrame or (x, y[, extra arrays]).

    ``model`` may be an ``nn.Module`` (wrapped with ``auditkit.inputs.model.wrap``) or a ModelAdapter.
    ``spec`` is a partial audit spec (e.g. ``{"card": {...}, "model": {"input": {...}}}``): file
    paths are not needed because data and model are given here. Rows with an empty label are an
    ``InputError`` unless ``drop_missing_labels`` (as ``data.drop_missing_labels`` in a spec).
    """
    frames: dict[str, tuple[pd.DataFrame, np.ndarray | None, None]] = {}
    arrays = False
    for name, split in (data or {}).items():
        if isinstance(split, pd.DataFrame):
            frames[name] = (split.reset_index(drop=True), None, None)
        else:
            x, y, *rest = split
            extra = rest[0] if rest else {}
            frame, arr = from_arrays(x, y, **extra)
            frames[name] = (frame, arr if np.asarray(x).ndim > 2 else None, None)
            arrays = True
    roles = Roles(
        label=label or ("y" if arrays else None),
        features=tuple(features) if features is not None else None,
        categorical=tuple(categorical) if categorical is not None else None,
        id=id,
        group=group,
        time=time,
        sensitive=tuple(sensitive),
        drop_missing_labels=drop_missing_labels,
    )
    doc: dict[str, Any] = {"version": 1, "name": "test-audit", **dict(spec or {})}
    doc.setdefault("data", {})
    doc["data"] = {
        **{k: v for k, v in {"label": roles.label, "id": id, "group": group, "time": time}.items() if v},
        "sensitive": list(sensitive),
        **doc["data"],
    }
    loaded = parse_spec(doc, check_files=False)
    declared = loaded.spec.model.task if loaded.spec.model is not None else None
    datasets = (
        build_datasets(frames, roles, task=declared, max_classes=loaded.spec.data.max_classes)
        if frames
        else {}
    )
    adapter = None
    if model is not None:
        from auditkit.inputs.model import ModelAdapter, wrap

        if isinstance(model, ModelAdapter):
            adapter = model
        else:
            kind = input_kind or ("image" if any(d.kind == "image" for d in datasets.values()) else "tabular")
            shape = next((tuple(d.x.shape[1:]) for d in datasets.values()), None)
            adapter = wrap(model, device="cpu", input_kind=kind, input_shape=shape)
    arts = Artifacts(loaded, datasets=datasets, model=adapter, training_runs=training_runs)
    arts.roles = lambda: roles  # type: ignore[method-assign]
    return arts


def run_check(
    fn: Callable[..., Any],
    artifacts: Artifacts | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    severity: str | None = None,
    workdir: str | PathLike[str] | None = None,
    **artifact_kwargs: Any,
) -> dict[str, Any]:
    """Run one decorated check and return its results record (status, metrics, findings, ...).

    ``workdir`` (a str or a path) is the folder the check's files are written to; a fresh
    temporary folder when omitted.
    """
    info = _info(fn)
    arts = artifacts if artifacts is not None else make_artifacts(**artifact_kwargs)
    p = Planned(
        info, validate_params(info, dict(params or {}), f"params.{info.id}"), severity or info.severity, True
    )
    return run_one(p, arts, run_seed=seed, workdir=Path(workdir) if workdir is not None else None)


def _info(fn: Callable[..., Any]) -> CheckInfo:
    info = check_info(fn)
    if info is None:
        raise TypeError(f"{fn!r} is not decorated with @auditkit.engine.check")
    return info


def _comparable(rec: dict[str, Any]) -> str:
    keep = {k: rec[k] for k in ("status", "metrics", "findings", "summary", "evidence")}
    # Durations measure the machine, not the subject (DESIGN §7: "timestamps and durations aside"):
    # metrics marked details.timing and evidence["timings"] are left out of the determinism test.
    timed = {m["name"] for m in keep["metrics"] if (m.get("details") or {}).get("timing")}
    keep["metrics"] = [m for m in keep["metrics"] if m["name"] not in timed]
    keep["findings"] = [f for f in keep["findings"] if f.get("metric") not in timed]  # e.g. a latency budget
    keep["evidence"] = {k: v for k, v in (keep["evidence"] or {}).items() if k != "timings"}
    if isinstance(keep["evidence"].get("plots"), list):  # plots of timings carry "timing": true
        keep["evidence"]["plots"] = [
            p for p in keep["evidence"]["plots"] if not (isinstance(p, dict) and p.get("timing"))
        ]
    return json.dumps(keep, sort_keys=True, default=str)


def check_contract(fn: Callable[..., Any], tiny: Artifacts | Callable[[], Artifacts] | None = None) -> None:
    """Assert that a check honours the contract; raises AssertionError naming the breach.

    ``tiny`` supplies small inputs the check applies to (an Artifacts or a factory of fresh ones);
    without it, only the static parts and the no-input behaviour are checked.
    """
    info = _info(fn)
    assert info.title and len(info.title) < 120, f"{info.id}: title must be one short line"
    assert not validate_subcategory_ids(info.nist_ai_rmf), f"{info.id}: invalid NIST AI RMF ids"
    assert info.description, f"{info.id}: needs a docstring summary"
    defaults = info.defaults()
    assert yaml.safe_load(yaml.safe_dump(defaults)) == defaults, f"{info.id}: defaults do not round-trip YAML"
    assert json.loads(json.dumps(defaults)) == defaults, f"{info.id}: defaults do not round-trip JSON"
    assert validate_params(info, defaults, "params") == json.loads(json.dumps(defaults)), (
        f"{info.id}: its own defaults do not validate against its signature"
    )
    for p in info.params:
        assert p.doc.strip(), f"{info.id}: parameter {p.name} is undocumented"
    empty = make_artifacts({})
    rec = run_check(fn, empty)
    assert rec["status"] in ("not_applicable", "skipped"), (
        f"{info.id}: with no inputs it must be not_applicable, got {rec['status']}: {rec.get('error') or rec['summary']}"
    )
    if tiny is None:
        return
    make = tiny if callable(tiny) else (lambda: tiny)
    first = run_check(fn, make(), seed=7)
    assert first["status"] != "error", f"{info.id} errored on tiny inputs: {first['error']}"
    second = run_check(fn, make(), seed=7)
    assert _comparable(first) == _comparable(second), f"{info.id}: not deterministic for a fixed seed"


def tiny_tabular(n: int = 160, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Small synthetic tabular splits with every column role, for contract tests."""
    rng = np.random.default_rng(seed)

    def split(m: int, offset: int) -> pd.DataFrame:
        x1 = rng.normal(size=m)
        x2 = rng.normal(size=m)
        cat = rng.choice(["a", "b", "c"], size=m)
        y = (x1 + 0.5 * x2 + rng.normal(scale=0.5, size=m) > 0).astype(int)
        return pd.DataFrame({
            "uid": np.arange(offset, offset + m), "household": (np.arange(offset, offset + m) // 3),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(offset, offset + m), unit="D"),
            "x1": x1, "x2": x2, "colour": cat, "sex": rng.choice(["f", "m"], size=m), "y": y,
        })  # fmt: skip

    return {"train": split(n, 0), "test": split(n // 2, n), "production": split(n // 2, 2 * n)}


def tiny_regression(n: int = 160, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Small synthetic tabular splits with a numeric target (``y``, > 50 distinct values: inferred
    regression) and every column role, for contract tests of regression checks."""
    rng = np.random.default_rng(seed)

    def split(m: int, offset: int) -> pd.DataFrame:
        x1 = rng.normal(size=m)
        x2 = rng.normal(size=m)
        cat = rng.choice(["a", "b", "c"], size=m)
        y = 3.0 * x1 - 1.5 * x2 + (cat == "a") + rng.normal(scale=0.5, size=m) + 10.0
        return pd.DataFrame({
            "uid": np.arange(offset, offset + m), "household": (np.arange(offset, offset + m) // 3),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(offset, offset + m), unit="D"),
            "x1": x1, "x2": x2, "colour": cat, "sex": rng.choice(["f", "m"], size=m), "y": y,
        })  # fmt: skip

    return {"train": split(n, 0), "test": split(n // 2, n), "production": split(n // 2, 2 * n)}
