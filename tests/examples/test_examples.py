"""The small examples run with one command and end with the exit code their README promises.

The larger ones (breast_cancer, loan_approval, digits) are timed in benchmarks/bench_examples.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
BIN = Path(sys.executable).parent


def _copy(name: str, tmp: Path) -> Path:
    dest = tmp / name
    shutil.copytree(EX / name, dest, ignore=shutil.ignore_patterns("data", "out"))
    return dest


def test_panel_wages_naive_split_leaks_and_correct_split_passes(tmp_path: Path) -> None:
    ex = _copy("panel_wages", tmp_path)
    subprocess.run([sys.executable, str(ex / "prepare.py")], check=True, capture_output=True)
    codes = {}
    for variant in ("naive", "correct"):
        proc = subprocess.run([str(BIN / "auditkit"), "run", str(ex / f"{variant}.yaml"), "-o", str(ex / variant),
                               "-q", "--format", "json"], capture_output=True, text=True)  # fmt: skip
        codes[variant] = proc.returncode
        doc = json.loads((ex / variant / "results.json").read_text())
        status = {c["id"]: c["status"] for c in doc["checks"]}
        if variant == "naive":
            assert status["AK-LEAK-003"] == "failed" and status["AK-LEAK-004"] == "failed"
        else:
            assert status["AK-LEAK-003"] == "passed" and status["AK-LEAK-004"] == "passed"
    assert codes == {"naive": 1, "correct": 0}


def test_house_prices_regression_passes_and_the_leaked_target_column_fails(tmp_path: Path) -> None:
    ex = _copy("house_prices", tmp_path)
    subprocess.run([sys.executable, str(ex / "prepare.py")], check=True, capture_output=True)
    codes, docs = {}, {}
    for variant in ("audit", "leaky"):
        proc = subprocess.run([str(BIN / "auditkit"), "run", str(ex / f"{variant}.yaml"), "-o", str(ex / variant),
                               "-q", "--format", "json"], capture_output=True, text=True)  # fmt: skip
        codes[variant] = proc.returncode
        docs[variant] = json.loads((ex / variant / "results.json").read_text())
    assert codes == {"audit": 0, "leaky": 1}, codes
    clean = {c["id"]: c for c in docs["audit"]["checks"]}
    assert docs["audit"]["subject"]["task"] == "regression" and docs["audit"]["subject"]["task_inferred"]
    assert clean["AK-LEAK-005"]["status"] == "passed" and clean["AK-PERF-001"]["status"] == "passed"
    assert clean["AK-FAIR-001"]["status"] == "passed" and clean["AK-PERF-003"]["status"] == "not_applicable"
    assert {m["name"] for m in clean["AK-PERF-001"]["metrics"]} >= {
        "rmse",
        "mae",
        "r2",
        "rmse_minus_mean_baseline",
    }
    leaky = {c["id"]: c for c in docs["leaky"]["checks"]}
    assert leaky["AK-LEAK-005"]["status"] == "failed"
    assert [f["key"] for f in leaky["AK-LEAK-005"]["findings"]] == ["lprice"]


def test_release_gate_v2_fails_against_v1(tmp_path: Path) -> None:
    ex = _copy("release_gate", tmp_path)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ex / "run.sh")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "v1 exit code: 0" in proc.stdout and "v2 exit code: 1" in proc.stdout
    gate = json.loads((ex / "out" / "v2" / "results.json").read_text())["gate"]
    assert any(r["check"] == "AK-LEAK-001" for r in gate["regressions"])
    assert "AK-LEAK-001" in (ex / "out" / "diff.md").read_text()


@pytest.mark.slow  # about 100 s on a loaded 2-core machine; tests/checks/test_deployment.py covers the same paths
def test_edge_deploy_correct_artifacts_pass_and_the_wrong_normalisation_fails(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    ex = _copy("edge_deploy", tmp_path)
    env = {**os.environ, "PYTHON": sys.executable, "AUDITKIT": f"{sys.executable} -m auditkit.cli"}
    proc = subprocess.run(["bash", str(ex / "run.sh")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "audit.yaml exit code: 0" in proc.stdout and "defect.yaml exit code: 1" in proc.stdout
    doc = json.loads((ex / "out" / "defect" / "results.json").read_text())
    rec = next(c for c in doc["checks"] if c["id"] == "AK-DEPLOY-001")
    failing = {f["key"] for f in rec["findings"] if f["severity"] != "info"}
    assert "agreement[onnx-badnorm, test]" in failing
    assert not any("[onnx," in k for k in failing)  # the correct export in the same audit passes
