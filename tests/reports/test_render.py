"""Report renderers: content, escaping of hostile strings, no fetches, reproducible PDF bytes,
valid model cards, JUnit counts, SARIF. Synthetic results cover every status and evidence shape;
the engine bundle (conftest) covers what run_audit really writes."""

from __future__ import annotations

import hashlib
import io
import json
import re
from html import escape as escape_html
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from synth import HOSTILE, LONG, synthetic_results

from auditkit.frameworks.rmf import subcategories
from auditkit.render.common import build_view, render_html

REFERENCE_MCT = Path("/work/shared/reference/model_card_toolkit.schema.v0.0.2.json")


def _pdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


@pytest.fixture(scope="module")
def synth() -> dict[str, Any]:
    return synthetic_results()


@pytest.fixture(scope="module")
def synth_pdf(synth: dict[str, Any]) -> tuple[bytes, list[tuple[str, str]]]:
    from auditkit.render.pdf import render_bytes

    log: list[tuple[str, str]] = []
    return render_bytes(synth, fetch_log=log), log


# -- view model -------------------------------------------------------------------------------
def test_view_groups_areas_and_caps_tables(synth: dict[str, Any]) -> None:
    v = build_view(synth, max_rows=10)
    areas = {a["key"]: a for a in v["areas"]}
    assert [c["id"] for c in areas["data"]["checks"]] == ["AK-BAL-001", "AK-LEAK-001"]  # failed, sorted by id
    assert [c["id"] for c in areas["training"]["checks"]] == ["AK-TRAIN-001"]
    assert {r["id"] for r in areas["evaluation"]["not_run"]} == {"AK-FAIR-001"}
    assert {r["id"] for r in areas["robustness"]["not_run"]} == {"AK-POIS-001"}
    assert areas["robustness"]["checks"][0]["status"] == "error"
    # the traceback as lines, not the error record as one JSON string
    assert areas["robustness"]["checks"][0]["error"].splitlines()[0] == "Traceback (most recent call last):"
    # A deselected check appears nowhere in the sections.
    assert "AK-DQ-001" not in json.dumps(v["areas"])
    leak = areas["data"]["checks"][1]
    table = leak["evidence"]["tables"][0]
    assert len(table["rows"]) == 10 and table["more_rows"] == 110  # total_rows 120, 10 shown
    # Every status is counted; the deselected check is not.
    assert v["status_counts"] == {"failed": 3, "error": 1, "passed": 5, "not_applicable": 1, "skipped": 1}
    # Long strings are cut for display, and say so.
    assert all(len(c["title"]) < 400 for a in v["areas"] for c in a["checks"])
    assert "more characters in results.json" in areas["other"]["checks"][0]["title"]
    # Executive summary: what failed and why, errors first; the waiver.
    assert [f["id"] for f in v["failed"]][0] == "AK-ADV-001"
    assert v["waivers"][0]["check"] == "AK-BAL-001" and v["waivers"][0]["waiver"]["expires"] == "2027-01-31"


def test_rmf_matrix_lists_all_72(synth: dict[str, Any]) -> None:
    v = build_view(synth)
    rows = [r for fn in v["rmf"]["functions"] for r in fn["rows"]]
    assert len(rows) == 72 == len(subcategories())
    by_id = {r["id"]: r for r in rows}
    assert by_id["GOVERN 1.1"]["state"] == "attested"
    assert by_id["MAP 2.3"]["state"] == "tested"
    assert by_id["MEASURE 2.7"]["checks"] == [{"id": "AK-ADV-001", "status": "error"}]
    evidenced = {
        s for r in synth["checks"] for s in r["nist_ai_rmf"] if r["status"] in ("passed", "failed", "error")
    }
    expected_not = 72 - len(evidenced | {"GOVERN 1.1"})
    assert v["rmf"]["counts"]["not evidenced"] == expected_not
    assert all(r["state"] == "not evidenced" for r in rows if r["id"] not in evidenced | {"GOVERN 1.1"})


def test_plots_are_svg_and_dense_scatter_is_rasterised(synth: dict[str, Any]) -> None:
    from auditkit.render.plots import RASTER_ABOVE, render_plot

    html = render_html(synth, pdf=False)
    assert (
        html.count("<svg") == 6
    )  # bar, loss curves, reliability, robust acc, ROC, scatter (pie is undrawable)
    assert "could not be drawn" in html
    dense = synth["checks"][6]["evidence"]["plots"][1]
    assert len(dense["series"][0]["x"]) > RASTER_ABOVE
    svg = render_plot(dense)
    assert svg is not None and "data:image/png;base64," in svg and "<circle" not in svg
    sparse = {**dense, "series": [{"name": "s", "x": [0, 1, 2], "y": [1, 2, 3]}]}
    svg = render_plot(sparse)
    assert svg is not None and svg.count("<circle") == 3 and "data:image/png" not in svg
    assert render_plot({"type": "line", "series": "nonsense"}) is not None  # malformed → "no data", no crash
    assert render_plot({"type": "unknown"}) is None


def _svg_page(svg: str) -> str:
    from auditkit.render.common import _b64

    return (
        '<html><head><style>@font-face { font-family: "AK Sans"; src: url("fonts/DejaVuSans.ttf"); }'
        '@font-face { font-family: "AK Sans"; src: url("fonts/DejaVuSans-Bold.ttf"); font-weight: bold; }'
        "body { margin: 0; font-family: 'AK Sans'; } p { margin: 0; white-space: nowrap; }</style></head><body>"
        f'<img style="width: 420px; height: 260px" src="data:image/svg+xml;base64,{_b64(svg)}"></body></html>'
    )


def _text_runs(pdf: bytes) -> tuple[list[tuple[str, float, float]], int]:
    """(text, x, y) of every text run pypdf finds on page 1, and the number of text-showing
    operators in the page and its form XObjects (the SVG image is one)."""
    from pypdf import PdfReader

    page = PdfReader(io.BytesIO(pdf)).pages[0]
    runs: list[tuple[str, float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: Any) -> None:
        if text.strip():
            runs.append((text, round(cm[4] + tm[4] * cm[0], 1), round(cm[5] + tm[5] * cm[3], 1)))

    page.extract_text(visitor_text=visit)
    shows, todo, seen = 0, [page], set()
    while todo:
        obj = todo.pop()
        data = obj.get_contents().get_data() if hasattr(obj, "get_contents") else obj.get_data()
        shows += len(re.findall(rb"(?:Tj|TJ)\b", data))
        xobjects = (obj.get("/Resources") or {}).get("/XObject") or {}
        for ref in xobjects.values():
            x = ref.get_object()
            if x.get("/Subtype") == "/Form" and id(x) not in seen:
                seen.add(id(x))
                todo.append(x)
    return runs, shows


def test_plot_labels_fast_path_draws_the_same_text_at_the_same_places() -> None:
    """WeasyPrint 70 draws SVG text letter by letter; render_bytes swaps in a whole-string path
    for plain labels. Same strings at the same positions, far fewer text operators; a label the
    fast path does not handle (per-letter dx) still renders through WeasyPrint."""
    import contextlib

    import weasyprint

    from auditkit.render.pdf import _fast_svg_text, make_fetcher, templates_dir
    from auditkit.render.plots import line_chart, start_anchored

    if not weasyprint.__version__.startswith("70."):
        pytest.skip("the fast path applies to WeasyPrint 70 only")
    svg = line_chart({
        "type": "line", "title": "Loss per step", "x_label": "step", "y_label": "loss",
        "series": [{"name": "seed 0", "x": [0, 1, 2], "y": [1.0, 0.5, 0.25]},
                   {"name": "seed 1", "x": [0, 1, 2], "y": [0.9, 0.6, 0.3]}],
    })  # fmt: skip
    svg = start_anchored(svg).replace(
        "</svg>", '<text x="5" y="250" dx="0 3 3" font-size="9">odd</text></svg>'
    )

    def render(cm: Any) -> bytes:
        with cm:
            doc = weasyprint.HTML(
                string=_svg_page(svg), base_url=templates_dir().as_uri() + "/", url_fetcher=make_fetcher()
            )
            pdf: bytes = doc.write_pdf()
        return pdf

    slow_runs, slow_shows = _text_runs(render(contextlib.nullcontext()))
    fast_runs, fast_shows = _text_runs(render(_fast_svg_text()))
    assert [r[0] for r in fast_runs] == [r[0] for r in slow_runs]
    assert "Loss per step" in [r[0] for r in fast_runs] and "odd" in "".join(r[0] for r in fast_runs).replace(
        " ", ""
    )
    for (_, x1, y1), (_, x2, y2) in zip(slow_runs, fast_runs, strict=True):
        assert abs(x1 - x2) <= 0.2 and abs(y1 - y2) <= 0.2
    letters = sum(len(r[0].replace(" ", "")) for r in slow_runs)
    assert slow_shows >= letters - 3  # one operator per letter
    assert fast_shows <= len(fast_runs) + 3  # one per label (+3 letters of "odd", per-letter dx)
    assert weasyprint.svg.TAGS["text"] is weasyprint.svg.text  # restored after the render
    assert weasyprint.svg.text.__module__ == "weasyprint.svg.text"


def test_start_anchored_labels_land_where_text_anchor_puts_them() -> None:
    """The PDF's plot labels are positioned from the bundled font's advance widths; those widths
    must agree with what Pango (through WeasyPrint) measures for the same strings."""
    import weasyprint

    from auditkit.render.pdf import make_fetcher, templates_dir
    from auditkit.render.plots import line_chart, start_anchored, text_width

    labels = ["Training loss per step", "0.001", "learning rate", "AUROC (test vs ood)", "≤ 1,000.0"]
    body = "".join(f'<p style="font-size: 20px">{escape_html(t)}</p>' for t in labels)
    body += "".join(f'<p style="font-size: 20px; font-weight: bold">{escape_html(t)}</p>' for t in labels)
    html = _svg_page("<svg xmlns='http://www.w3.org/2000/svg'/>").replace("<img", body + "<img")
    doc = weasyprint.HTML(
        string=html, base_url=templates_dir().as_uri() + "/", url_fetcher=make_fetcher()
    ).render()
    widths = []

    def walk(box: Any) -> None:
        if type(box).__name__ == "TextBox":
            widths.append((box.text, box.width, box.style["font_weight"] == 700))
        for child in getattr(box, "children", []):
            walk(child)

    walk(doc.pages[0]._page_box)
    assert len(widths) == 2 * len(labels)
    for text, measured, bold in widths:
        assert text_width(text, 20, bold) == pytest.approx(measured, rel=0.015, abs=0.5), text
    svg = line_chart({"type": "line", "title": "Loss", "x_label": "step", "y_label": "loss",
                      "series": [{"name": "a", "x": list(range(30)), "y": [1 / (1 + i) for i in range(30)]}]})  # fmt: skip
    out = start_anchored(svg)
    assert "text-anchor" in svg and "text-anchor" not in out
    assert out.count("<text") == svg.count("<text")
    title = re.search(r'<text x="([\d.]+)" y="[\d.]+" font-size="13" font-weight="bold">Loss</text>', out)
    assert title is not None and float(title[1]) == pytest.approx(
        210 - text_width("Loss", 13, True) / 2, abs=0.06
    )


# -- hostile strings --------------------------------------------------------------------------
def test_html_escapes_hostile_strings(synth: dict[str, Any], tmp_path: Path) -> None:
    from auditkit.render.html import render

    (out,) = render(synth, tmp_path)
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert html.count("<style>") == 1 and html.count("</style>") == 1  # only ours
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;/style&gt;&lt;style&gt;" in html
    assert "<img" not in html and "<link" not in html
    # Nothing outside the document is referenced (self-contained, works offline).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|file:|//)""", html)
    text = html.replace("<wbr>", "")  # break opportunities in table text (ours)
    assert "url(" not in text.replace("url(file:///etc/passwd)", "")  # only the escaped text
    assert LONG not in html  # 10,000-character strings are cut for display


def test_pdf_renders_hostile_strings_as_text_and_fetches_nothing_outside(
    synth_pdf: tuple[bytes, list[tuple[str, str]]],
) -> None:
    from auditkit.render.pdf import templates_dir

    pdf, log = synth_pdf
    assert log, "the fetcher was not used"
    root = templates_dir().as_uri()
    for url, verdict in log:
        assert verdict == "allowed", url
        assert url.startswith("data:") or url.startswith(root + "/fonts/"), url
    text = _pdf_text(pdf)
    flat = re.sub(r"\s+", "", text)
    assert "<script>alert('x')</script>" in flat
    assert "url(file:///etc/passwd)" in flat
    assert "notevidenced" in flat
    for word in ("Executivesummary", "NISTAIRMFcoverage", "Appendix", "Humandecision", "NO-GO"):
        assert word in flat, word
    assert re.search(r"page1of\d+", flat)
    assert flat.count("Report0123456789abcdef") >= 10  # on every page


def test_fetcher_refuses_files_and_network(tmp_path: Path) -> None:
    from auditkit.render.pdf import make_fetcher, templates_dir

    log: list[tuple[str, str]] = []
    fetch = make_fetcher(log)
    font = templates_dir() / "fonts" / "DejaVuSans.ttf"
    assert fetch.fetch(font.as_uri()).read()[:4] == font.read_bytes()[:4]
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    for url in (
        "file:///etc/passwd",
        secret.as_uri(),
        templates_dir().as_uri() + "/../auditkit/__init__.py",
        templates_dir().as_uri() + "/%2e%2e/pyproject.toml",
        "http://127.0.0.1:9/x.css",
        "https://example.com/a.png",
        "ftp://example.com/x",
    ):
        with pytest.raises(ValueError, match="refused"):
            fetch.fetch(url)
    assert [v for _, v in log] == ["allowed"] + ["blocked"] * 7


def test_pdf_with_hostile_card_never_fetches(tmp_path: Path) -> None:
    """Markup injected everywhere (even as an evidence plot title) is text: no blocked fetch either."""
    from auditkit.render.pdf import render_bytes

    doc = synthetic_results(n_scatter=10, table_rows=5)
    doc["checks"] = doc["checks"][:2]
    doc["checks"][0]["evidence"]["plots"][0]["title"] = '<image href="file:///etc/passwd"/>'
    log: list[tuple[str, str]] = []
    render_bytes(doc, fetch_log=log)
    assert {v for _, v in log} == {"allowed"}
    assert not any("passwd" in u or u.startswith("http") for u, _ in log)


# -- reproducibility and attachments -----------------------------------------------------------
def test_pdf_bytes_are_reproducible_and_carry_attachments(
    synth: dict[str, Any], synth_pdf: tuple[bytes, list[tuple[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditkit.render.pdf import embedded_files, render_bytes
    from auditkit.results.document import dumps

    first, _ = synth_pdf
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")  # the caller's environment must not matter
    second = render_bytes(synth)
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert first.startswith(b"%PDF-")
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(first))
    xmp = reader.xmp_metadata.rdf_root.toxml() if reader.xmp_metadata else ""
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp  # PDF/A-3b
    assert "2026-11-20T10:01:00Z" in xmp  # the audit's date, not the rendering time
    titles = [o["/Title"] for o in reader.outline if not isinstance(o, list)]
    for bookmark in ("Executive summary", "Data", "NIST AI RMF coverage", "Appendix"):
        assert bookmark in titles
    files = embedded_files(first)
    assert files["results.json"] == dumps(synth).encode("utf-8")
    other = synthetic_results()
    other["run"]["finished_at"] = "2026-11-20T10:02:00+00:00"
    assert render_bytes(other) != first  # a different audit date is a different document


# -- model cards ------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["synthetic", "engine"])
def test_model_card_json_validates_against_reference_schema(
    which: str, synth: dict[str, Any], engine_results: dict[str, Any], tmp_path: Path
) -> None:
    from auditkit.render.model_card import mct_schema, render

    doc = synth if which == "synthetic" else engine_results
    md, js = render(doc, tmp_path)
    card = json.loads(js.read_text(encoding="utf-8"))
    reference = (
        json.loads(REFERENCE_MCT.read_text(encoding="utf-8")) if REFERENCE_MCT.is_file() else mct_schema()
    )
    assert reference == mct_schema()  # the shipped copy is the reference, unmodified
    jsonschema.Draft7Validator(reference).validate(card)
    perf = card["quantitative_analysis"]["performance_metrics"]
    if which == "synthetic":
        acc = next(p for p in perf if p["type"] == "AK-PERF-001 accuracy")
        assert acc["value"] == "0.9561" and acc["confidence_interval"] == {
            "lower_bound": "0.912",
            "upper_bound": "0.98",
        }
        assert card["model_details"]["references"] == [{"reference": "https://example.com/paper"}]
        # a reference that is not a URI is kept, as a text citation (and listed in the Markdown)
        cited = [c["citation"] for c in card["model_details"]["citations"]]
        assert doc["spec"]["card"]["references"][1] in cited
        assert "## References" in md.read_text(encoding="utf-8")
    # An invalid document is caught by the same validator (the test can fail).
    bad = {**card, "unexpected": 1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, reference)


def test_model_card_markdown_front_matter(synth: dict[str, Any], tmp_path: Path) -> None:
    from auditkit.render.model_card import render

    md, _ = render(synth, tmp_path)
    text = md.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    fm = yaml.safe_load(text.split("---\n")[1])
    assert fm["license"] == "apache-2.0"
    metrics = fm["model-index"][0]["results"][0]["metrics"]
    ran = [
        (r["id"], m["name"], m["value"])
        for r in synth["checks"]
        if r["status"] in ("passed", "failed")
        and r["id"].split("-")[1] in ("PERF", "FAIR", "ADV", "POIS", "OOD")
        for m in r["metrics"]
    ]
    # the display name is "CHECK METRIC", followed by the interval when there is one
    shown = [(m["name"].split(" (95% CI")[0], m["value"]) for m in metrics]
    assert shown == [(f"{c} {n}", v) for c, n, v in ran]
    body = text.split("---\n", 2)[2]
    assert "<script" not in body and "&lt;script&gt;" in body
    assert "[0.912, 0.98]" in body  # intervals live in the body
    for section in ("## Model Details", "## Uses", "## Bias, Risks, and Limitations", "## Training Details",
                    "## Evaluation", "## Environmental Impact"):  # fmt: skip
        assert section in body


# -- JUnit and SARIF --------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["synthetic", "engine"])
def test_junit_parses_with_right_counts(
    which: str, synth: dict[str, Any], engine_results: dict[str, Any], tmp_path: Path
) -> None:
    from junitparser import Error, Failure, JUnitXml, Skipped

    from auditkit.render.junit import render

    doc = synth if which == "synthetic" else engine_results
    (path,) = render(doc, tmp_path)
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    records = list(doc["checks"])  # one case per check, deselected ones too (as skipped)
    assert any(r["status"] == "skipped" and r["skip_reason"].startswith("not selected") for r in records)
    status = [r["status"] for r in records]
    assert suite.tests == len(records)
    assert suite.failures == status.count("failed")
    assert suite.errors == status.count("error")
    assert suite.skipped == status.count("skipped") + status.count("not_applicable")
    cases = list(suite)
    assert len(cases) == len(records)
    import xml.etree.ElementTree as ET

    case_xml = list(ET.parse(path).getroot().iter("testcase"))  # properties, read with the stdlib parser

    def rec_index(rec: dict[str, Any]) -> int:
        return records.index(rec)

    kinds = {Failure: "failed", Error: "error", Skipped: "skipped"}
    for case, rec in zip(cases, records, strict=True):
        got = {kinds[type(r)] for r in case.result}
        want = {"failed": {"failed"}, "error": {"error"}, "passed": set()}.get(rec["status"], {"skipped"})
        assert got == want, rec["id"]
        if rec["status"] == "error":  # "Type: message" as the message, the traceback as the text
            (err,) = case.result
            assert err.message == f"{rec['error']['type']}: {rec['error']['message']}"[:2000]
            assert err.text.startswith("Traceback (most recent call last):")
        props = {p.get("name"): p.get("value") for p in case_xml[rec_index(rec)].iter("property")}
        for m in rec["metrics"]:
            assert float(props[f"metric.{m['name']}"]) == pytest.approx(m["value"])


def test_sarif_minimal(synth: dict[str, Any], tmp_path: Path) -> None:
    from auditkit.render.sarif import render

    (path,) = render(synth, tmp_path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rule_ids = (
        [r["id"] for r in run["tools"]["driver"]["rules"]]
        if "tools" in run
        else [r["id"] for r in run["tool"]["driver"]["rules"]]
    )
    assert "AK-DQ-001" not in rule_ids and "AK-LEAK-001" in rule_ids
    results = run["results"]
    expected = sum(
        1
        for r in synth["checks"]
        if r["status"] == "failed"
        for f in r["findings"]
        if f["severity"] != "info"
    ) + sum(1 for r in synth["checks"] if r["status"] == "error")
    assert len(results) == expected
    errored = [r for r in results if r["message"]["text"].startswith("AK-ADV-001 errored: ")]
    assert [r["message"]["text"] for r in errored] == [f"AK-ADV-001 errored: RuntimeError: {HOSTILE[0]}"]
    waived = [r for r in results if r.get("suppressions")]
    assert [r["ruleId"] for r in waived] == ["AK-BAL-001"]
    assert all(rule_ids[r["ruleIndex"]] == r["ruleId"] for r in results)


def test_renderers_do_not_import_weasyprint_until_pdf() -> None:
    import subprocess
    import sys

    code = (
        "import sys, auditkit.render.html, auditkit.render.junit, auditkit.render.model_card, auditkit.results.diff;"
        "print('weasyprint' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip() == "False"


HOSTILE_USED = HOSTILE  # keep the import for readers: these are the strings under test


def test_pdf_budgets_cap_rows_and_findings(synth: dict[str, Any]) -> None:
    from auditkit.render.common import LIMITS

    v = build_view(synth, **LIMITS["pdf"])
    checks = {c["id"]: c for a in v["areas"] for c in a["checks"]}
    leak = checks["AK-LEAK-001"]  # failed: up to max_rows rows, the rest counted
    assert len(leak["evidence"]["tables"][0]["rows"]) == LIMITS["pdf"]["max_rows"]
    assert leak["evidence"]["tables"][0]["more_rows"] == 120 - LIMITS["pdf"]["max_rows"]
    tight = build_view(synth, **{**LIMITS["pdf"], "row_budget": 1, "finding_budget": 1})
    tleak = next(c for a in tight["areas"] for c in a["checks"] if c["id"] == "AK-LEAK-001")
    assert len(tleak["evidence"]["tables"][0]["rows"]) == 5  # never fewer than 5
    html = build_view(synth, **LIMITS["html"])
    hleak = next(c for a in html["areas"] for c in a["checks"] if c["id"] == "AK-LEAK-001")
    assert len(hleak["evidence"]["tables"][0]["rows"]) == 50  # the 50 rows the check kept


def test_big_attachment_is_embedded_intact_and_reproducibly(tmp_path: Path) -> None:
    """results.json over 1 MB takes the fast-compression path: still lossless and deterministic."""
    from auditkit.render.pdf import embedded_files, render_bytes
    from auditkit.results.document import dumps

    doc = synthetic_results(hostile=False, n_scatter=5, table_rows=3)
    doc["checks"] = doc["checks"][:1]
    doc["checks"][0]["evidence"]["raw"] = [[i, i * 0.5, f"row {i}"] for i in range(60_000)]
    raw = dumps(doc).encode("utf-8")
    assert len(raw) > 1_000_000
    first = render_bytes(doc, attachments={"results.json": raw})
    assert embedded_files(first)["results.json"] == raw
    assert render_bytes(doc, attachments={"results.json": raw}) == first
