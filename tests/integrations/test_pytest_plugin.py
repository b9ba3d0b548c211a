"""The pytest plugin (``pytest --auditkit audit.yaml``), run by real pytest through ``pytester``.

Each test builds a tiny tabular audit: train/test CSVs with planted leakage (test rows copied from
train) and planted duplicates inside train, plus a local check that crashes. The expected outcome
of every item is derived from ``auditkit run`` on the same spec (an independent path: the CLI).
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tiny_audit import SELECT, write_audit  # tests/integrations is on pythonpath (pyproject)

from auditkit.cli import main as auditkit_main

pytest_plugins = ("pytester",)


def cli_results(spec: Path, out: Path, *args: str) -> dict:
    with pytest.raises(SystemExit):
        auditkit_main(["run", str(spec), "-o", str(out), "-q", *args])
    return json.loads((out / "results.json").read_text())


def junit_outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """testcase name → (outcome, message) from pytest's JUnit XML."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = [c for c in case if c.tag in ("failure", "error", "skipped")]
        if not kinds:
            out[case.get("name")] = ("passed", "")
        else:
            el = kinds[0]
            kind = el.get("type") if el.tag == "skipped" and el.get("type") == "pytest.xfail" else el.tag
            out[case.get("name")] = (kind, (el.get("message") or "") + (el.text or ""))
    return out


def test_every_status_maps_to_its_pytest_outcome(pytester: pytest.Pytester, tmp_path: Path) -> None:
    spec = write_audit(pytester.path)
    expected = cli_results(spec, tmp_path / "cli-out")
    by_status: dict[str, list[str]] = {}
    for rec in expected["checks"]:
        by_status.setdefault(rec["status"], []).append(rec["id"])
    # the planted data gives every status once (waived DQ-003 is "failed" with all findings waived)
    assert by_status["failed"] == ["AK-DQ-003", "AK-LEAK-001"]
    assert by_status["error"] == ["LOCAL-CRASH-001"]
    assert by_status["not_applicable"] == ["AK-LEAK-003"]
    deselected = [r for r in expected["checks"] if (r.get("skip_reason") or "").startswith("not selected")]

    result = pytester.runpytest_subprocess("--auditkit", str(spec), "--junitxml=junit.xml", "-rA")
    result.assert_outcomes(passed=len(by_status["passed"]), failed=2, errors=1, skipped=1, xfailed=1,
                           deselected=len(deselected))  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = junit_outcomes(pytester.path / "junit.xml")
    assert set(cases) == {r["id"] for r in expected["checks"] if r not in deselected} | {"gate"}
    leak = next(r for r in expected["checks"] if r["id"] == "AK-LEAK-001")
    kind, message = cases["AK-LEAK-001"]
    assert kind == "failure" and leak["findings"][0]["message"] in message and leak["summary"] in message
    kind, message = cases["AK-DQ-003"]
    assert (
        kind == "pytest.xfail"
        and "duplicates are repeated applications" in message
        and "risk office" in message
    )
    kind, message = cases["LOCAL-CRASH-001"]
    assert kind == "error" and "RuntimeError: boom: a bug inside the check" in message
    kind, message = cases["AK-LEAK-003"]
    assert kind == "skipped" and "not_applicable" in message
    for cid in by_status["passed"]:
        assert cases[cid][0] == "passed"
    kind, message = cases["gate"]
    assert kind == "failure" and f"exit {expected['gate']['exit_code']}" in message
    # metrics travel as JUnit properties (record_property style), as in auditkit's own junit.xml
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for c in root.iter("testcase") if c.get("name") == "AK-LEAK-001"
             for p in c.iter("property")}  # fmt: skip
    assert float(props["metric.overlap_ratio"]) == pytest.approx(5 / 55)
    assert "Traceback" not in result.stdout.str()


def test_clean_data_passes_and_overrides_apply(pytester: pytest.Pytester) -> None:
    spec = write_audit(pytester.path, leak=False, duplicates=False, crash=False)
    result = pytester.runpytest_subprocess("--auditkit", str(spec))
    result.assert_outcomes(
        passed=len(SELECT) - 2 + 2 + 1, skipped=1
    )  # LOCAL is 2 checks; + gate; LEAK-003 n/a
    assert result.ret == pytest.ExitCode.OK
    # on the leaky spec, a looser threshold turns AK-LEAK-001 (and so the gate) green; the bundle
    # is written where asked and records the override
    leaky = pytester.mkdir("leaky")
    spec = write_audit(leaky)
    result = pytester.runpytest_subprocess("--auditkit", str(spec), "--auditkit-select", "AK-LEAK-001",
                                "--auditkit-param", "AK-LEAK-001.max_overlap_ratio=0.5",
                                "--auditkit-output", str(leaky / "bundle"))  # fmt: skip
    result.assert_outcomes(passed=2)
    doc = json.loads((leaky / "bundle" / "results.json").read_text())
    ran = [r["id"] for r in doc["checks"] if r["status"] != "skipped"]
    assert ran == ["AK-LEAK-001"] and doc["checks"][[r["id"] for r in doc["checks"]].index("AK-LEAK-001")][
        "params"]["max_overlap_ratio"] == 0.5  # fmt: skip
    assert (leaky / "bundle" / "manifest.json").is_file()
    result = pytester.runpytest_subprocess(
        "--auditkit", str(spec), "--auditkit-select", "AK-LEAK-001", "--auditkit-fail-on", "critical"
    )
    result.assert_outcomes(passed=1, failed=1)  # the check still fails; the gate (fail_on critical) passes


def test_k_deselection_narrows_the_audit(pytester: pytest.Pytester) -> None:
    spec = write_audit(pytester.path)
    result = pytester.runpytest_subprocess(
        "--auditkit", str(spec), "-k", "LEAK", "--auditkit-output", "bundle"
    )
    result.assert_outcomes(failed=1, skipped=1)
    doc = json.loads((pytester.path / "bundle" / "results.json").read_text())
    ran = sorted(
        r["id"] for r in doc["checks"] if not (r.get("skip_reason") or "").startswith("not selected")
    )
    assert ran == ["AK-LEAK-001", "AK-LEAK-003"]


def test_fixture_runs_the_audit_once_for_items_and_tests(pytester: pytest.Pytester) -> None:
    count = pytester.path / "runs.txt"
    spec = write_audit(pytester.path, count_file=count)
    pytester.makepyfile(
        test_release="""
        def test_leak_is_found(auditkit_results):
            rec = auditkit_results["AK-LEAK-001"]
            assert rec["status"] == "failed"
            assert abs(auditkit_results.metric("AK-LEAK-001", "overlap_ratio")["value"] - 5 / 55) < 1e-12

        def test_gate(auditkit_results):
            assert auditkit_results.exit_code == 3  # the crashing local check fails the gate closed
    """
    )
    # collecting plans the checks but runs nothing
    result = pytester.runpytest_subprocess("--auditkit", str(spec), "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*audit.yaml::AK-LEAK-001*", "*audit.yaml::gate*"])
    assert not count.exists()
    result = pytester.runpytest_subprocess("--auditkit", str(spec), "-p", "no:randomly")
    # the checks: BAL-001, DQ-004, LOCAL-COUNT-001 pass; LEAK-001 and the gate fail; + the 2 tests
    result.assert_outcomes(passed=3 + 2, failed=2, errors=1, skipped=1, xfailed=1)
    assert count.read_text() == "ran\n"
    # without --auditkit the fixture skips with the reason, and no audit item is collected
    result = pytester.runpytest_subprocess("test_release.py", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no audit: run pytest with --auditkit SPEC*"])


def test_inert_and_cheap_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_nothing_heavy_imported(request):
            assert request.config.pluginmanager.hasplugin("auditkit")
            heavy = [m for m in ("torch", "auditkit.engine.audit", "auditkit.engine.registry", "pandas") if m in sys.modules]
            assert heavy == []
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")  # a fresh interpreter: real import state
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--auditkit=SPEC*", "*--auditkit-output=DIR*", "*--auditkit-select=IDS*"])


def test_spec_and_input_errors_are_one_line(pytester: pytest.Pytester) -> None:
    spec = write_audit(pytester.path, extra="chekcs: {}\n")
    result = pytester.runpytest_subprocess("--auditkit", str(spec))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*auditkit: error: *chekcs*", "*1 error*"])
    assert "Traceback" not in result.stdout.str()
    spec = write_audit(pytester.path)
    for bad, says in ((["--auditkit-fail-on", "severe"], "--auditkit-fail-on: 'severe' is not one of info"),
                      (["--auditkit-param", "AK-LEAK-001=1"], "expected CHECK-ID.name=value"),
                      (["--auditkit-param", "AK-LEAK-001.max_overlap=1"], "did you mean 'max_overlap_ratio'")):  # fmt: skip
        result = pytester.runpytest_subprocess("--auditkit", str(spec), *bad)
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines([f"*auditkit: error: *{says}*"])
        assert "Traceback" not in result.stdout.str()
    # found only when the data is read (a label column that is not there): every item errors
    spec = write_audit(pytester.path)
    spec.write_text(spec.read_text().replace("label: y", "label: approved"))
    expected = pytester.run(sys.executable, "-m", "auditkit", "run", str(spec), "-q").errlines
    line = next(x for x in expected if x.startswith("auditkit: error:"))
    result = pytester.runpytest_subprocess("--auditkit", str(spec))
    result.assert_outcomes(errors=len(SELECT) + 1 + 1)  # LOCAL is 2 checks; + the gate
    result.stdout.fnmatch_lines([f"*{line}*"])
    assert "label column 'approved' not found" in line
    assert "Traceback" not in result.stdout.str()
