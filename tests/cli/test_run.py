"""End-to-end runs through the CLI: exit codes, crashing checks, bundle integrity, interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main
from auditkit.results.document import AuditResults

AUDITKIT = [sys.executable, "-m", "auditkit.cli"]

CARD = """
card:
  owners: [{name: ML team, contact: ml@example.com}]
  intended_use: Screening support for trained staff only.
  out_of_scope: Automated decisions without a human in the loop.
  limitations: Trained on a small, old sample from one market.
  ethical_considerations: Error rates by group are monitored each release.
  license: Apache-2.0
"""

LOCAL_CHECKS = '''
import os, time
from auditkit import Finding, InputError, Metric, Outcome, check

@check(id="LOCAL-INPUT-001", title="A check that rejects its input without a message", requires=("train",))
def bare_input_error(ctx, /, *, reject: bool = True):
    """Raises a bare InputError.

    Parameters
    ----------
    reject: raise when true.
    """
    if reject:
        raise InputError()
    return Outcome()

@check(id="LOCAL-CRASH-001", title="A check that raises", requires=("train",), severity="high")
def crash(ctx, /, *, explode: bool = True):
    """Raises to show that a crash becomes status error.

    Parameters
    ----------
    explode: raise when true.
    """
    if explode:
        raise RuntimeError("boom: a bug inside the check")
    return Outcome()

@check(id="LOCAL-SLOW-001", title="A check that takes a while", requires=("train",))
def slow(ctx, /, *, seconds: float = 0.0):
    """Sleeps, so that a run can be interrupted midway.

    Parameters
    ----------
    seconds: how long to sleep.
    """
    if seconds:
        open(os.environ["AK_TEST_STARTED"], "w").write("started")
        time.sleep(seconds)
    return Outcome(summary="slept")

@check(id="LOCAL-METRIC-001", title="A metric with an interval", requires=("train",), severity="high")
def metric(ctx, /, *, value: float = 0.9, minimum: float = 0.5, lo: float = 0.85, hi: float = 0.95):
    """Reports a fixed metric so that the gate and baseline logic can be driven from the spec.

    Parameters
    ----------
    value: the metric value.
    minimum: its threshold.
    lo: lower end of its interval.
    hi: upper end of its interval.
    """
    m = Metric("score", value, ci=(lo, hi), n=100, threshold=minimum, direction="higher")
    return Outcome.from_metrics([m], summary="score")
'''


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80), "y": rng.integers(0, 2, 80)})
    df.iloc[:60].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[60:].to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "mine.py").write_text(LOCAL_CHECKS)
    return tmp_path


def write_spec(root: Path, extra: str = "", *, select: str = "[AK-GOV, LOCAL-METRIC]") -> Path:
    spec = f"""
version: 1
name: cli-test
data:
  label: y
  splits: {{train: train.csv, test: test.csv}}
checks:
  paths: [local]
  select: {select}
report: {{formats: [json]}}
{CARD}
{extra}
"""
    path = root / "audit.yaml"
    path.write_text(textwrap.dedent(spec))
    return path


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def test_passing_run_writes_a_verifiable_bundle(project: Path) -> None:
    spec = write_spec(project)
    out = project / "out"
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 0
    results = AuditResults.load(out / "results.json")
    results.validate()
    assert results["AK-GOV-001"]["status"] == "passed"
    assert results["LOCAL-METRIC-001"]["metrics"][0]["passed"] is True
    assert run(["verify", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    roles = {e["role"] for e in manifest["inputs"]}
    assert {"spec", "data.splits.train", "data.splits.test"} <= roles


def test_failing_metric_fails_the_gate_with_exit_1(project: Path) -> None:
    spec = write_spec(
        project,
        "checks:\n  paths: [local]\n  select: [LOCAL-METRIC]\n  params: {LOCAL-METRIC-001: {value: 0.3, lo: 0.2, hi: 0.4}}\n",
    )
    # A second `checks:` key would be a YAML duplicate; write a spec with params instead.
    spec.write_text(
        spec.read_text().replace("checks:\n  paths: [local]\n  select: [AK-GOV, LOCAL-METRIC]\n", "", 1)
    )
    assert run(["run", str(spec), "-o", str(project / "out"), "-q"]) == 1
    doc = json.loads((project / "out" / "results.json").read_text())
    assert doc["gate"]["decision"] == "fail"
    assert (
        "score = 0.3"
        in next(c for c in doc["checks"] if c["id"] == "LOCAL-METRIC-001")["findings"][0]["message"]
    )
    # Below fail_on the same finding does not block.
    assert run(["run", str(spec), "-o", str(project / "out"), "-q", "--fail-on", "critical"]) == 0


def test_crashing_check_is_error_exit_3_and_bundle_still_complete(project: Path) -> None:
    spec = write_spec(project, select="[AK-GOV, LOCAL-CRASH]")
    out = project / "out"
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 3
    results = AuditResults.load(out / "results.json")
    rec = results["LOCAL-CRASH-001"]
    assert rec["status"] == "error"
    assert "boom: a bug inside the check" in rec["error"]["traceback"]
    assert results["AK-GOV-001"]["status"] == "passed", "other checks still ran"
    assert run(["verify", str(out)]) == 0


def test_a_check_that_finds_its_parameters_wrong_exits_2_with_one_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A parameter that only the data can refute (a card field that does not exist) is a spec
    error: exit 2 and one line naming the check, no traceback — and the bundle is still written,
    with the other checks' results."""
    spec = write_spec(project, select="[AK-GOV, LOCAL-METRIC]")
    out = project / "out"
    code = run(
        ["run", str(spec), "-o", str(out), "-q", "--param", "AK-GOV-001.required=[intended_use, colour]"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("auditkit: error: AK-GOV-001: required: ['colour']"), err
    results = AuditResults.load(out / "results.json")
    results.validate()
    rec = results["AK-GOV-001"]
    assert rec["status"] == "error" and rec["error"]["input"] is True and rec["error"]["traceback"] == ""
    assert results.gate["input_errors"] == ["AK-GOV-001"] and results.gate["exit_code"] == 2
    assert results["LOCAL-METRIC-001"]["status"] == "passed", "other checks still ran"
    assert run(["verify", str(out)]) == 0
    # A crash alongside it is a bug: exit 3 wins.
    spec = write_spec(project, select="[AK-GOV, LOCAL-CRASH]")
    assert run(["run", str(spec), "-o", str(out), "-q", "--param", "AK-GOV-001.required=[colour]"]) == 3
    capsys.readouterr()
    # An input error without a message still gets its one line, named by its type.
    spec = write_spec(project, select="[LOCAL-INPUT]")
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 2
    assert capsys.readouterr().err.strip() == "auditkit: error: LOCAL-INPUT-001: InputError"
    # A report that failed to render makes it 3 even after an input error (the bundle is incomplete).
    results = AuditResults.load(out / "results.json")
    results.render_errors = [{"format": "pdf", "error": "boom"}]
    assert results.exit_code == 3


def test_no_check_ran_exits_4(project: Path) -> None:
    spec = write_spec(project, select="[AK-GOV]")
    spec.write_text(spec.read_text().split("card:")[0])  # no card: governance checks do not apply
    assert run(["run", str(spec), "-o", str(project / "out"), "-q"]) == 4


def test_cli_overrides_select_param_and_seed(project: Path) -> None:
    spec = write_spec(project)
    out = project / "out"
    code = run(["run", str(spec), "-o", str(out), "-q", "--select", "LOCAL-METRIC",
                "--param", "LOCAL-METRIC-001.value=0.1", "--param", "LOCAL-METRIC-001.lo=0.05",
                "--param", "LOCAL-METRIC-001.hi=0.2", "--seed", "5"])  # fmt: skip
    assert code == 1
    results = AuditResults.load(out / "results.json")
    assert results.doc["run"]["seed"] == 5
    assert results["LOCAL-METRIC-001"]["params"]["value"] == 0.1
    assert results["AK-GOV-001"]["status"] == "skipped"


def test_verify_catches_one_byte_change_in_any_listed_file(project: Path) -> None:
    spec = write_spec(project)
    out = project / "out"
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    targets = [out / e["path"] for e in manifest["outputs"]] + [
        Path(e["resolved"]) for e in manifest["inputs"] if "resolved" in e
    ]  # distributions: tests/engine/test_evidence.py
    assert len(targets) >= 4
    for target in targets:
        original = target.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x01
        target.write_bytes(bytes(changed))
        try:
            problems = __import__("auditkit.results.bundle", fromlist=["verify"]).verify(out)
            assert any(target.name in p for p in problems), (target, problems)
        finally:
            target.write_bytes(original)
    assert run(["verify", str(out)]) == 0


def test_same_inputs_give_the_same_results_json(project: Path) -> None:
    spec = write_spec(project)
    docs = []
    for name in ("a", "b"):
        assert run(["run", str(spec), "-o", str(project / name), "-q"]) == 0
        doc = json.loads((project / name / "results.json").read_text())
        for key in ("started_at", "finished_at", "duration_s"):
            doc["run"].pop(key)
        for rec in doc["checks"]:
            rec.pop("duration_s")
        docs.append(doc)
    assert docs[0] == docs[1]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_midway_leaves_no_complete_looking_bundle(project: Path, sig: signal.Signals) -> None:
    spec = write_spec(
        project,
        "checks:\n  paths: [local]\n  select: [AK-GOV, LOCAL-SLOW]\n  params: {LOCAL-SLOW-001: {seconds: 30}}\n",
    )
    spec.write_text(
        spec.read_text().replace("checks:\n  paths: [local]\n  select: [AK-GOV, LOCAL-METRIC]\n", "", 1)
    )
    out = project / "out"
    started = project / "started"
    env = {**os.environ, "AK_TEST_STARTED": str(started)}
    proc = subprocess.Popen([*AUDITKIT, "run", str(spec), "-o", str(out), "-q"], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the slow check never started"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (130, 143), err
    assert "interrupted" in err
    assert not out.exists()
    assert not [p for p in project.iterdir() if p.name.startswith(".out.tmp")], "temporary folder left behind"


def test_waiver_expiry_and_visibility(project: Path) -> None:
    extra = """
gate:
  waivers:
    - {check: LOCAL-METRIC-001, reason: "known and accepted for this release", expires: 2999-01-01, approved_by: risk office}
"""
    spec = write_spec(project, extra)
    text = spec.read_text().replace(
        "select: [AK-GOV, LOCAL-METRIC]",
        "select: [LOCAL-METRIC]\n  params: {LOCAL-METRIC-001: {value: 0.3, lo: 0.2, hi: 0.4}}",
    )
    spec.write_text(text)
    assert run(["run", str(spec), "-o", str(project / "out"), "-q"]) == 0
    doc = json.loads((project / "out" / "results.json").read_text())
    finding = next(c for c in doc["checks"] if c["id"] == "LOCAL-METRIC-001")["findings"][0]
    assert finding["waiver"]["reason"].startswith("known") and finding["waiver"]["expired"] is False
    assert doc["gate"]["waived"] and not doc["gate"]["blocking"]
    spec.write_text(text.replace("2999-01-01", "2020-01-01"))
    assert run(["run", str(spec), "-o", str(project / "out"), "-q"]) == 1
    doc = json.loads((project / "out" / "results.json").read_text())
    assert (
        next(c for c in doc["checks"] if c["id"] == "LOCAL-METRIC-001")["findings"][0]["waiver"]["expired"]
        is True
    )


def test_baseline_regression_beyond_interval_fails(project: Path) -> None:
    spec = write_spec(project, select="[LOCAL-METRIC]")
    assert run(["run", str(spec), "-o", str(project / "v1"), "-q"]) == 0
    base = str(project / "v1" / "results.json")
    # Worse but intervals overlap: no regression.
    args = [
        "--param",
        "LOCAL-METRIC-001.value=0.86",
        "--param",
        "LOCAL-METRIC-001.lo=0.8",
        "--param",
        "LOCAL-METRIC-001.hi=0.9",
    ]
    assert run(["run", str(spec), "-o", str(project / "v2"), "-q", "--baseline", base, *args]) == 0
    # Worse with separated intervals: regression, exit 1 even though the threshold still passes.
    args = [
        "--param",
        "LOCAL-METRIC-001.value=0.7",
        "--param",
        "LOCAL-METRIC-001.lo=0.65",
        "--param",
        "LOCAL-METRIC-001.hi=0.75",
    ]
    assert run(["run", str(spec), "-o", str(project / "v3"), "-q", "--baseline", base, *args]) == 1
    gate = json.loads((project / "v3" / "results.json").read_text())["gate"]
    assert gate["regressions"][0]["metric"] == "score"
    assert "do not overlap" in gate["regressions"][0]["message"]


def test_a_crashing_renderer_exits_3_and_leaves_a_verifiable_bundle(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditkit.render as render

    real = render.get_renderer

    def get_renderer(fmt: str):  # type: ignore[no-untyped-def]
        if fmt != "junit":
            return real(fmt)

        def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("renderer bug")

        return broken

    monkeypatch.setattr(render, "get_renderer", get_renderer)
    spec = write_spec(project)
    spec.write_text(
        spec.read_text().replace("report: {formats: [json]}", "report: {formats: [json, junit, model_card]}")
    )
    out = project / "out"
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 3
    errors = json.loads((out / "render_errors.json").read_text())["render_errors"]
    assert errors[0]["format"] == "junit" and "renderer bug" in errors[0]["error"]
    assert (out / "model_card.md").exists(), "the other formats are still written"
    assert json.loads((out / "results.json").read_text())["gate"]["exit_code"] == 0
    assert run(["verify", str(out)]) == 0
