"""The Python API (run_audit, AuditResults), `auditkit init`, `auditkit schema`, results schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

import auditkit
from auditkit.results.document import AuditResults

CARD = {
    "owners": [{"name": "ML team", "contact": "ml@example.com"}],
    "intended_use": "Second opinion for trained staff reviewing applications.",
    "out_of_scope": "Any automated decision without human review.",
    "limitations": "Small synthetic sample; not representative of anything real.",
    "ethical_considerations": "Group error rates are reviewed at every release.",
    "license": "Apache-2.0",
}


def test_run_audit_from_a_mapping_without_output() -> None:
    results = auditkit.run_audit({"version": 1, "name": "api", "card": CARD},
                                 overrides=auditkit.Overrides(select=["AK-GOV"]))  # fmt: skip
    assert isinstance(results, AuditResults)
    assert results.exit_code == 0 and results.passed
    assert results["AK-GOV-001"]["status"] == "passed"
    html = results._repr_html_()
    assert "AK-GOV-001" in html and "gate PASS" in html
    results.validate()
    assert "gate pass" in repr(results)


def test_results_round_trip_losslessly(tmp_path: Path) -> None:
    results = auditkit.run_audit({"version": 1, "name": "api", "card": CARD})
    path = results.save(tmp_path / "results.json")
    again = AuditResults.load(path)
    assert again.doc == results.doc
    assert again.dumps() == path.read_text()


def test_results_schema_rejects_a_broken_record() -> None:
    results = auditkit.run_audit({"version": 1, "name": "api", "card": CARD})
    broken = json.loads(results.dumps())
    broken["checks"][0]["status"] = "kind of ok"
    with pytest.raises(jsonschema.ValidationError):
        AuditResults(broken).validate()


def test_init_writes_a_spec_that_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=40), "target": rng.integers(0, 2, 40)})
    df.to_csv(tmp_path / "train.csv", index=False)
    df.to_csv(tmp_path / "test.csv", index=False)
    spec = tmp_path / "audit.yaml"
    subprocess.run([sys.executable, "-m", "auditkit.cli", "init", str(tmp_path / "train.csv"),
                    str(tmp_path / "test.csv"), "-o", str(spec)], check=True, capture_output=True)  # fmt: skip
    doc = yaml.safe_load(spec.read_text())
    assert doc["data"]["label"] == "target"
    assert doc["data"]["splits"] == {"train": "train.csv", "test": "test.csv"}
    from auditkit.spec.schema import load_spec

    load_spec(spec)  # valid as written
    again = subprocess.run([sys.executable, "-m", "auditkit.cli", "init", str(tmp_path / "train.csv"), "-o", str(spec)],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr


def test_schema_command_prints_the_spec_schema() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "auditkit.cli", "schema"], capture_output=True, text=True, check=True
    )
    schema = json.loads(out.stdout)
    assert {"version", "name", "data", "model", "training", "checks", "gate", "card", "report"} <= set(
        schema["properties"]
    )
    out = subprocess.run(
        [sys.executable, "-m", "auditkit.cli", "schema", "--results"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["properties"]["schema_version"] == {"const": "1"}


def test_run_context_imports_without_pandas_torch_or_pydantic() -> None:
    """A check may ``from auditkit import RunContext`` at module top: it costs no heavy import."""
    code = (
        "import sys, auditkit; auditkit.RunContext; from auditkit import RunContext; "
        "print(','.join(m for m in ('pandas', 'torch', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
