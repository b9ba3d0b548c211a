"""The engine writes every report into the bundle; `auditkit verify` checks the PDF's attachments;
`auditkit report` and `auditkit diff` work from results.json files."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from synth import synthetic_results

from auditkit.cli import cli
from auditkit.results.bundle import verify


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_engine_bundle_has_every_report_and_verifies(engine_bundle: Path) -> None:
    from auditkit.render.pdf import embedded_files

    names = {p.name for p in engine_bundle.iterdir()}
    assert {"results.json", "manifest.json", "report.pdf", "report.html", "model_card.md", "model_card.json",
            "junit.xml", "results.sarif"} <= names  # fmt: skip
    doc = json.loads((engine_bundle / "results.json").read_text(encoding="utf-8"))
    assert "render_errors" not in doc["gate"]
    assert verify(engine_bundle) == []
    manifest = json.loads((engine_bundle / "manifest.json").read_text(encoding="utf-8"))
    assert "report.pdf" in {e["path"] for e in manifest["outputs"]}
    files = embedded_files(engine_bundle / "report.pdf")
    assert _sha(files["results.json"]) == _sha((engine_bundle / "results.json").read_bytes())
    assert json.loads(files["manifest.json"])["inputs"] == manifest["inputs"]


def _tampered_copy(
    src: Path, dst: Path, results: bytes | None = None, manifest: dict[str, Any] | None = None
) -> Path:
    """Copy the bundle, re-render its PDF with other attachments and re-hash it in the manifest, so
    that only the PDF hook can notice."""
    from auditkit.render.pdf import render_bytes

    shutil.copytree(src, dst)
    doc = json.loads((dst / "results.json").read_text(encoding="utf-8"))
    man = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    embedded_manifest = manifest if manifest is not None else {
        "inputs": man["inputs"], "outputs": [e for e in man["outputs"] if e["path"] == "results.json"]}  # fmt: skip
    atts = {"results.json": results if results is not None else (dst / "results.json").read_bytes(),
            "manifest.json": json.dumps(embedded_manifest).encode()}  # fmt: skip
    doc["checks"] = doc["checks"][:1]  # a short PDF is enough here
    pdf = render_bytes(doc, attachments=atts)
    (dst / "report.pdf").write_bytes(pdf)
    for e in man["outputs"]:
        if e["path"] == "report.pdf":
            e["sha256"], e["bytes"] = _sha(pdf), len(pdf)
    (dst / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    return dst


def test_verify_catches_a_tampered_pdf_attachment(engine_bundle: Path, tmp_path: Path) -> None:
    good = _tampered_copy(engine_bundle, tmp_path / "good")
    assert verify(good) == []  # the control: a consistent re-rendered PDF passes
    original = (engine_bundle / "results.json").read_bytes()
    bad = _tampered_copy(
        engine_bundle, tmp_path / "bad", results=original.replace(b'"passed"', b'"failed"', 1)
    )
    problems = verify(bad)
    assert problems == ["report.pdf: embedded results.json does not match the bundle's results.json"]


def test_verify_catches_embedded_manifest_with_other_inputs(engine_bundle: Path, tmp_path: Path) -> None:
    man = json.loads((engine_bundle / "manifest.json").read_text(encoding="utf-8"))
    inputs = copy.deepcopy(man["inputs"])
    inputs[1]["sha256"] = "0" * 64
    bad = _tampered_copy(engine_bundle, tmp_path / "bad", manifest={"inputs": inputs, "outputs": []})
    assert any("embedded manifest inputs differ" in p for p in verify(bad))


def test_verify_reports_a_pdf_without_attachments(engine_bundle: Path, tmp_path: Path) -> None:
    dst = tmp_path / "b"
    shutil.copytree(engine_bundle, dst)
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(str(dst / "report.pdf")).pages[:1]:
        writer.add_page(page)
    with open(dst / "report.pdf", "wb") as fh:
        writer.write(fh)
    problems = verify(dst)
    assert "changed output: report.pdf" in problems
    assert "report.pdf: no embedded results.json" in problems


def test_cli_report_renders_from_results(engine_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    res = CliRunner().invoke(cli, ["report", str(engine_bundle / "results.json"), "--format", "html,model_card",
                                   "--format", "junit,sarif", "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "junit.xml", "manifest.json", "model_card.json", "model_card.md", "report.html", "results.sarif"]  # fmt: skip
    assert json.loads((out / "manifest.json").read_text())["format"] == "auditkit-report"
    # Rendering never recomputes: the same results give the same files as the engine wrote.
    for name in ("junit.xml", "model_card.json", "model_card.md", "results.sarif"):
        assert (out / name).read_bytes() == (engine_bundle / name).read_bytes(), name


def test_cli_report_pdf_matches_the_bundle(engine_bundle: Path, tmp_path: Path) -> None:
    """`auditkit report` embeds the results file and the manifest next to it: same bytes as the run."""
    out = tmp_path / "pdf"
    res = CliRunner().invoke(
        cli, ["report", str(engine_bundle / "results.json"), "--format", "pdf", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    from auditkit.render.pdf import embedded_files

    files = embedded_files(out / "report.pdf")
    assert files["results.json"] == (engine_bundle / "results.json").read_bytes()
    assert files["manifest.json"] == (engine_bundle / "manifest.json").read_bytes()


def test_cli_report_rejects_unknown_format(engine_bundle: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["report", str(engine_bundle / "results.json"), "--format", "docx", "-o", str(tmp_path)]
    )
    assert res.exit_code != 0


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The console entry point (errors become one line and an exit code), with its stderr."""
    from auditkit.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0), capsys.readouterr().err


def test_cli_report_input_errors_are_one_line_exit_2(
    engine_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = engine_bundle / "results.json"
    code, err = _main(["report", str(src), "--format", "json", "-o", str(tmp_path / "x")], capsys)
    assert code == 2 and "no report format" in err
    doc = json.loads(src.read_text())
    del doc["checks"][0]["status"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, err = _main(["report", str(bad), "--format", "junit", "-o", str(tmp_path / "y")], capsys)
    assert code == 2 and "checks/0" in err and "status" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "y").exists()
    # A manifest next to a different results file is not embedded (it would vouch for other data).
    shutil.copy(engine_bundle / "manifest.json", tmp_path / "manifest.json")
    doc = json.loads(src.read_text())
    doc["subject"]["name"] = "another audit"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["report", str(other), "--format", "pdf", "-o", str(tmp_path / "z")])
    assert res.exit_code == 0, res.output
    from auditkit.render.pdf import embedded_files

    assert set(embedded_files(tmp_path / "z" / "report.pdf")) == {"results.json"}


def test_verify_rejects_a_manifest_it_did_not_write(
    engine_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(engine_bundle, bundle)
    mpath = bundle / "manifest.json"
    good = json.loads(mpath.read_text())
    edited = copy.deepcopy(good)
    edited["outputs"][0]["bytes"] += 1  # a size that no longer matches: a changed entry
    mpath.write_text(json.dumps(edited))
    assert any(p.startswith("changed output") for p in verify(bundle))
    edited = copy.deepcopy(good)
    edited["outputs"].append({"path": "../../outside.txt", "sha256": "0" * 64})
    mpath.write_text(json.dumps(edited))
    assert "output path outside the bundle: ../../outside.txt" in verify(bundle)
    for broken in (
        {"outputs": [{"path": "results.json"}]},
        {**good, "algorithm": "md5"},
        {**good, "outputs": "x"},
    ):
        mpath.write_text(json.dumps(broken))
        code, err = _main(["verify", str(bundle)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err


# -- diff -------------------------------------------------------------------------------------
def _pair() -> tuple[dict[str, Any], dict[str, Any]]:
    base = synthetic_results(hostile=False, n_scatter=5, table_rows=3)
    new = copy.deepcopy(base)
    new["run"]["id"] = "fedcba9876543210"
    perf = next(r for r in new["checks"] if r["id"] == "AK-PERF-001")
    perf["status"] = "failed"
    perf["metrics"][0].update(value=0.80, ci=[0.72, 0.86], passed=False)  # worse, intervals separated
    perf["metrics"][1].update(value=0.949, ci=[0.90, 0.975])  # within noise
    perf["findings"] = [
        {
            "message": "accuracy 0.80 below 0.9",
            "severity": "high",
            "key": "accuracy",
            "metric": "accuracy",
            "evidence": {},
        }
    ]
    leak = next(r for r in new["checks"] if r["id"] == "AK-LEAK-001")
    leak["status"] = "passed"
    leak["findings"] = []
    new["checks"] = [r for r in new["checks"] if r["id"] != "AK-OOD-001"]
    new["checks"].append({**copy.deepcopy(perf), "id": "AK-PERF-004", "title": "Worst slice", "status": "passed",
                          "metrics": [], "findings": []})  # fmt: skip
    new["gate"]["decision"] = "fail"
    return base, new


def test_diff_reports_metrics_that_appear_disappear_or_lose_their_value() -> None:
    from auditkit.results.diff import diff_results, render_diff

    base = synthetic_results(hostile=False, n_scatter=5, table_rows=3)
    new = copy.deepcopy(base)
    perf = next(r for r in new["checks"] if r["id"] == "AK-PERF-001")
    first, second = perf["metrics"][0]["name"], perf["metrics"][1]["name"]
    perf["metrics"][0]["value"] = None  # e.g. NaN, written as null
    perf["metrics"][1]["name"] = "renamed"
    d = diff_results(base, new)
    got = {(m["metric"], m["trend"]) for m in d["metric_changes"] if m["check"] == "AK-PERF-001"}
    assert got == {(first, "changed"), ("renamed", "added"), (second, "removed")}
    md = render_diff(d, markdown=True)
    assert "No change" not in md and "| removed |" in md
    assert diff_results(base, copy.deepcopy(base))["metric_changes"] == []
    # A finding message is text: no image fetch or link in the Markdown, no escape codes on a terminal.
    perf["findings"] = [{"message": "![t](http://evil.example/t.png) \x1b[31mred [x](javascript:1)",
                         "severity": "high", "key": "k", "evidence": {}}]  # fmt: skip
    d = diff_results(base, new)
    md = render_diff(d, markdown=True)
    assert "](http" not in md.replace("\\]", "") and "![" not in md and "\x1b" not in md
    assert "\x1b" not in render_diff(d)


def test_diff_results_reports_changes_with_intervals() -> None:
    from auditkit.results.diff import diff_results

    base, new = _pair()
    d = diff_results(base, new)
    assert {(s["check"], s["base"], s["new"], s["trend"]) for s in d["status_changes"]} == {
        ("AK-PERF-001", "passed", "failed", "worse"), ("AK-LEAK-001", "failed", "passed", "better")}  # fmt: skip
    by = {m["metric"]: m for m in d["metric_changes"]}
    acc = by["accuracy"]
    assert acc["base"] == 0.9561 and acc["new"] == 0.80 and acc["delta"] == pytest.approx(0.80 - 0.9561)
    assert acc["trend"] == "worse" and acc["significant"] is True
    assert acc["base_ci"] == [0.912, 0.98] and acc["new_ci"] == [0.72, 0.86]
    assert by["macro_f1"]["significant"] is False
    assert [a["check"] for a in d["added"]] == ["AK-PERF-004"]
    assert [a["check"] for a in d["removed"]] == ["AK-OOD-001"]
    assert any(f["check"] == "AK-PERF-001" for f in d["new_findings"])
    assert {f["check"] for f in d["resolved_findings"]} == {"AK-LEAK-001"}
    assert d["worse"] == 2  # one status, one significant metric
    assert diff_results(base, copy.deepcopy(base))["metric_changes"] == []


def test_render_diff_markdown_and_table() -> None:
    from auditkit.results.diff import diff_results, render_diff

    base, new = _pair()
    new["checks"][0]["title"] = "overlap | <script>x</script>"
    new["checks"][0]["status"] = "error"
    d = diff_results(base, new)
    md = render_diff(d, markdown=True)
    assert md.startswith("### auditkit: audit diff")
    assert "| AK-PERF-001 | accuracy | 0.9561 [0.912, 0.98] | 0.8 [0.72, 0.86] |" in md
    assert "<script>" not in md and "overlap \\| &lt;script&gt;" in md
    text = render_diff(d)
    assert "metric changes" in text and "AK-PERF-001" in text and "worse" in text
    same = render_diff(diff_results(base, base), markdown=True)
    assert "No change" in same


def test_cli_diff(tmp_path: Path) -> None:
    base, new = _pair()
    b, n = tmp_path / "base.json", tmp_path / "new.json"
    b.write_text(json.dumps(base), encoding="utf-8")
    n.write_text(json.dumps(new), encoding="utf-8")
    runner = CliRunner()
    md = runner.invoke(cli, ["diff", str(b), str(n), "--format", "markdown"])
    assert md.exit_code == 1, md.output  # 1: the audits differ
    assert "#### Metric changes" in md.output and "AK-PERF-001" in md.output
    js = runner.invoke(cli, ["diff", str(b), str(n), "--format", "json"])
    assert js.exit_code == 1
    assert json.loads(js.output)["worse"] == 2
    table = runner.invoke(cli, ["diff", str(b), str(n)])
    assert table.exit_code == 1 and "accuracy" in table.output
    same = runner.invoke(cli, ["diff", str(b), str(b)])
    assert same.exit_code == 0 and "no change" in same.output  # 0: the same audit
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    from auditkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["diff", str(bad), str(n)])
    assert exit_info.value.code == 2  # 2: bad input


def test_diff_coverage_change_is_not_called_worse() -> None:
    from auditkit.results.diff import diff_results

    base = synthetic_results(hostile=False, n_scatter=5, table_rows=3)
    new = copy.deepcopy(base)
    perf = next(r for r in new["checks"] if r["id"] == "AK-PERF-001")
    perf["status"], perf["skip_reason"] = "not_applicable", "no model"
    d = diff_results(base, new)
    assert [(s["check"], s["trend"]) for s in d["status_changes"]] == [("AK-PERF-001", "changed")]
    assert d["worse"] == 0
