"""AK-GOV-003: artefact format, safe loading and pinned sha256, from real files loaded by the spec."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from auditkit.checks.provenance import artefact_provenance

from auditkit.inputs.artifacts import Artifacts
from auditkit.spec.schema import load_spec
from auditkit.testing import make_artifacts, run_check


def _arts(tmp: Path, model: dict[str, Any]) -> Artifacts:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    df = pd.DataFrame(x, columns=list("abcd"))
    df["y"] = (x[:, 0] > 0).astype(int)
    df.to_csv(tmp / "d.csv", index=False)
    doc = {
        "version": 1,
        "name": "t",
        "data": {"label": "y", "splits": {"train": "d.csv", "test": "d.csv"}},
        "model": {"device": "cpu", **model},
    }
    (tmp / "audit.yaml").write_text(yaml.safe_dump(doc))
    return Artifacts(load_spec(tmp / "audit.yaml"))


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 2))


def _keys(rec: dict[str, Any], severity: str | None = None) -> list[str]:
    return [f["key"] for f in rec["findings"] if severity is None or f["severity"] == severity]


def test_pinned_torchscript_passes(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(_net()), str(tmp_path / "m.pt"))
    sha = hashlib.sha256((tmp_path / "m.pt").read_bytes()).hexdigest()
    rec = run_check(artefact_provenance, _arts(tmp_path, {"torchscript": "m.pt", "sha256": sha}))
    assert rec["status"] == "passed", rec["findings"]
    table = dict(rec["evidence"]["artefact"]["rows"])
    assert table["sha256"] == sha and table["format"] == "torchscript"


def test_pin_mismatch_is_critical(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(_net()), str(tmp_path / "m.pt"))
    rec = run_check(artefact_provenance, _arts(tmp_path, {"torchscript": "m.pt", "sha256": "ab" * 32}))
    assert rec["status"] == "failed"
    assert "pin mismatch" in _keys(rec, "critical")


def test_unpinned_is_noted_or_failed_on_request(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(_net()), str(tmp_path / "m.pt"))
    a = _arts(tmp_path, {"torchscript": "m.pt"})
    rec = run_check(artefact_provenance, a)
    assert rec["status"] == "passed" and "no pin" in _keys(rec, "info")
    assert run_check(artefact_provenance, a, params={"require_pin": True})["status"] == "failed"


def test_trusted_pickle_is_flagged_unsafe(tmp_path: Path) -> None:
    torch.save(_net(), str(tmp_path / "full.pt"))
    rec = run_check(artefact_provenance, _arts(tmp_path, {"torchscript": "full.pt", "allow_pickle": True}))
    assert rec["status"] == "failed"
    assert "unsafe format" in _keys(rec, "high")


def test_builtin_model_hash_is_the_bundle_file() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    df = pd.DataFrame(x, columns=list("abc"))
    df["y"] = (x[:, 0] > 0).astype(int)
    a = make_artifacts(
        {"train": df, "test": df},
        label="y",
        spec={"model": {"builtin": "mlp", "device": "cpu"}, "training": {"epochs": 1}},
    )
    rec = run_check(artefact_provenance, a)
    assert rec["status"] == "passed"
    table = dict(rec["evidence"]["artefact"]["rows"])
    assert table["sha256"] == hashlib.sha256(a.outputs["model/model.safetensors"]).hexdigest()


def test_not_applicable_without_model() -> None:
    assert run_check(artefact_provenance, make_artifacts({}))["status"] == "not_applicable"
