"""Crosswalks (EU AI Act, ISO/IEC 42001) beside the NIST AI RMF, and the Hugging Face model-index.

Coverage is recomputed here independently from the data files; the rendered PDF (pypdf text) and
HTML must carry every item; the model card's front matter must parse with huggingface_hub.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import write_spec
from synth import HOSTILE

from auditkit.frameworks import crosswalk as frameworks
from auditkit.frameworks.rmf import subcategories

ALL = ["nist_ai_rmf", "eu_ai_act", "iso_42001"]


def _doc(fw: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        files("auditkit").joinpath(f"resources/{fw}.json").read_text(encoding="utf-8")
    )
    return doc


def _spec_with(root: Path, *, fws: list[str] | None, extra_atts: dict[str, Any] | None = None) -> Path:
    path = write_spec(root, formats=["json", "html", "pdf", "model_card"])
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if fws is not None:
        spec["report"]["frameworks"] = fws
    spec["card"]["attestations"].update(extra_atts or {})
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


ATT = {"status": "met", "evidence": "oversight SOP-3", "by": "R. Roe", "date": "2026-11-02"}


@pytest.fixture(scope="module")
def fw_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from auditkit.engine.audit import run_audit

    root = tmp_path_factory.mktemp("fw")
    hostile = {**ATT, "evidence": HOSTILE[0], "by": HOSTILE[3]}
    spec = _spec_with(root / "spec", fws=ALL, extra_atts={"article 14(1)": hostile, "iso 42001 A.3.3": ATT})
    run_audit(spec, output=root / "out", today=dt.date(2026, 11, 21))
    return root / "out"


# -- the data ---------------------------------------------------------------------------------
def test_crosswalk_data_is_complete_and_maps_only_to_real_subcategories() -> None:
    subs = subcategories()
    iso = _doc("iso_42001")
    assert [g["id"] for g in iso["groups"]] == [f"A.{i}" for i in range(2, 11)]
    ids = [it["id"] for g in iso["groups"] for it in g["items"]]
    assert len(ids) == len(set(ids)) == 38  # Annex A of ISO/IEC 42001:2023 has 38 controls
    assert all(i.startswith(g["id"] + ".") for g in iso["groups"] for i in (it["id"] for it in g["items"]))
    assert iso["provenance"]["crosswalk"]["url"].startswith("https://airc.nist.gov/")
    eu = _doc("eu_ai_act")
    assert [g["id"] for g in eu["groups"]] == [f"Art. {i}" for i in range(9, 16)]
    assert [a["id"] for a in eu["annex_iv"]][0] == "Annex IV 1" and eu["annex_iv"][-1]["id"] == "Annex IV 9"
    assert "2024/1689" in eu["provenance"]["source"] and eu["provenance"]["mapping"] == "judgement"
    for fw in frameworks.CROSSWALKS:
        for it in frameworks.items(fw):
            m = it["nist_ai_rmf"]
            assert set(m) == {"crosswalk", "judgement"}
            # every item reaches a subcategory, except what only a person can give (a declaration)
            assert bool(frameworks.mapped(it)) != bool(it.get("attestation_only")), it["id"]
            assert all(s in subs for s in frameworks.mapped(it)), it["id"]
    # every Annex IV pointer names a section the report has
    assert all(s in eu["sections"] for a in eu["annex_iv"] for s in a["sections"])


# -- coverage from checks ---------------------------------------------------------------------
def _expected(fw: str, checks: list[dict[str, Any]], atts: dict[str, Any]) -> dict[str, str]:
    """Independent recomputation from the JSON files alone."""
    doc = _doc(fw)
    items = [it for g in doc["groups"] for it in g["items"]] + doc.get("annex_iv", [])
    out = {}
    for it in items:
        subs = set(it["nist_ai_rmf"]["crosswalk"]) | set(it["nist_ai_rmf"]["judgement"])
        ran = any(
            c["status"] in ("passed", "failed", "error") and subs & set(c["nist_ai_rmf"]) for c in checks
        )
        att = it["id"] in atts
        out[it["id"]] = {
            (True, True): "tested and attested",
            (True, False): "tested",
            (False, True): "attested",
            (False, False): "not evidenced",
        }[(ran, att)]
    return out


CHECKS = [
    {"id": "AK-ADV-001", "status": "failed", "nist_ai_rmf": ["MEASURE 2.7"]},
    {"id": "AK-DQ-004", "status": "passed", "nist_ai_rmf": ["MAP 2.3", "MEASURE 2.9"]},
    {"id": "AK-OOD-001", "status": "skipped", "nist_ai_rmf": ["MEASURE 2.4"]},  # did not run: no evidence
    {"id": "AK-PERF-001", "status": "error", "nist_ai_rmf": ["MEASURE 2.3"]},
]


@pytest.mark.parametrize("fw", frameworks.CROSSWALKS)
def test_coverage_is_computed_from_checks_and_never_hides_a_row(fw: str) -> None:
    atts = {"A.3.3": ATT, "Art. 12(1)": ATT, "GOVERN 1.1": ATT}
    rows = frameworks.coverage(fw, CHECKS, atts)
    expected = _expected(fw, CHECKS, atts)
    assert [r["id"] for r in rows] == list(expected)  # every item, in document order
    assert {r["id"]: r["state"] for r in rows} == expected
    states = {r["state"] for r in rows}
    assert {"tested", "not evidenced"} <= states
    by_id = {r["id"]: r for r in rows}
    if fw == "iso_42001":
        assert by_id["A.2.3"]["state"] == "tested"  # MEASURE 2.7 (crosswalk), evidenced by a failed check
        assert [c["id"] for c in by_id["A.2.3"]["checks"]] == ["AK-ADV-001"]
        assert by_id["A.3.3"]["state"] == "attested"
        # a NIST attestation is shown beside the control but is not an attestation of the control
        assert (
            by_id["A.2.2"]["nist_attestations"] == ["GOVERN 1.1"]
            and by_id["A.2.2"]["state"] == "not evidenced"
        )
        assert (
            by_id["A.6.2.6"]["state"] == "tested"
        )  # MEASURE 2.3: an errored check is evidence (of a problem)
    else:
        assert by_id["Art. 15(5)"]["state"] == "tested"
        assert by_id["Art. 12(1)"]["state"] == "attested"
        assert by_id["Art. 12(2)"]["state"] == "not evidenced"  # MEASURE 2.4 only via a skipped check
        assert by_id["Annex IV 8"]["state"] == "not evidenced" and not by_id["Annex IV 8"]["nist"]
        attested = frameworks.coverage(fw, CHECKS, {"Annex IV 8": ATT})
        assert next(r for r in attested if r["id"] == "Annex IV 8")["state"] == "attested"
    # with no checks and no attestations, everything is listed and nothing is evidenced
    empty = frameworks.coverage(fw, [], {})
    assert len(empty) == len(rows) and {r["state"] for r in empty} == {"not evidenced"}


# -- attestation ids --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, canonical",
    [("article 9(2)(a)", "Art. 9(2)(a)"), ("EU AI Act Art.15(5)", "Art. 15(5)"), ("annex iv 2(g)", "Annex IV 2(g)"),
     ("ISO/IEC 42001 A.6.2.4", "A.6.2.4"), ("a.10.4", "A.10.4"), ("ms-2.5", "MEASURE 2.5")],
)  # fmt: skip
def test_attestation_ids_of_every_framework_are_normalised(raw: str, canonical: str) -> None:
    assert frameworks.normalise_attestation_id(raw) == canonical


@pytest.mark.parametrize(
    "bad, hint", [("A.6.2.9", "A.6.2.8"), ("Art. 15(9)", "Art. 15(5)"), ("GOVRN 1.1", "GOVERN 1.1")]
)
def test_unknown_attestation_id_is_exit_2_with_did_you_mean(
    bad: str, hint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from auditkit.cli import main

    spec = _spec_with(tmp_path / "spec", fws=["eu_ai_act"], extra_atts={bad: ATT})
    with pytest.raises(SystemExit) as exc:
        main(["run", str(spec), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert err.startswith("auditkit: error: card.attestations") and f"did you mean {hint!r}" in err
    assert not (tmp_path / "out").exists()


def test_unknown_framework_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from auditkit.cli import main

    spec = _spec_with(tmp_path / "spec", fws=["nist_ai_rmf", "iso_4201"])
    with pytest.raises(SystemExit) as exc:
        main(["run", str(spec), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip()
    assert (
        exc.value.code == 2 and err.startswith("auditkit: error: report.frameworks") and "'iso_42001'" in err
    )


# -- rendered matrices ------------------------------------------------------------------------
def _pdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)


def test_pdf_and_html_carry_every_matrix_row_and_the_annex_iv_toc(fw_bundle: Path) -> None:
    results = json.loads((fw_bundle / "results.json").read_text(encoding="utf-8"))
    assert results["spec"]["report"]["frameworks"] == ALL
    assert set(results["rmf"]["attestations"]) == {"GOVERN 1.1", "Art. 14(1)", "A.3.3"}
    html = (fw_bundle / "report.html").read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", _pdf_text((fw_bundle / "report.pdf").read_bytes()))
    for heading in ("NIST AI RMF coverage", "EU AI Act coverage", "ISO/IEC 42001:2023 Annex A coverage",
                    "Annex IV technical documentation"):  # fmt: skip
        assert heading in text and heading in html
    records = results["checks"]
    atts = results["rmf"]["attestations"]
    for fw in frameworks.CROSSWALKS:
        expected = _expected(fw, records, atts)
        for item_id, state in expected.items():
            row = re.search(rf'<tr class="rmf-([a-z-]+)">\s*<td class="sid">{re.escape(item_id)}</td>', html)
            assert row and row.group(1) == state.replace(" ", "-"), item_id
            assert item_id in text, item_id
        assert "not evidenced" in expected.values()
    # Annex IV links land on sections that exist in the document
    annex = html[html.index('id="annex-iv"') :]
    targets = set(re.findall(r'<a href="#([^"]+)">', annex[: annex.index("</table>")]))
    assert {"area-data", "area-evaluation", "summary", "appendix"} <= targets
    assert all(f'id="{t}"' in html for t in targets)
    # attestation text is escaped: the hostile evidence shows as text in the EU matrix, never as markup
    eu = html[html.index('id="fw-eu_ai_act"') : html.index('id="fw-iso_42001"')]
    assert "<script" not in eu and "<img" not in eu and "&lt;script&gt;" in eu
    # the table of contents lists the new sections
    toc = html[html.index('<nav class="toc">') : html.index("</nav>")]
    assert 'href="#fw-eu_ai_act"' in toc and 'href="#fw-iso_42001"' in toc


def test_default_is_nist_only(engine_bundle: Path) -> None:
    html = (engine_bundle / "report.html").read_text(encoding="utf-8")
    assert "NIST AI RMF coverage" in html and "EU AI Act coverage" not in html and "fw-iso_42001" not in html


def test_pdf_with_crosswalks_rerenders_byte_identical(fw_bundle: Path) -> None:
    from auditkit.render.pdf import render_bytes

    results = json.loads((fw_bundle / "results.json").read_text(encoding="utf-8"))
    assert render_bytes(results) == render_bytes(results)


# -- Hugging Face model-index ------------------------------------------------------------------
def test_model_index_parses_with_huggingface_hub(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard, ModelCardData, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results
    from synth import synthetic_results

    from auditkit.render.model_card import render

    results = synthetic_results()
    md, _ = render(results, tmp_path)
    meta = metadata_load(md)
    assert meta is not None
    card = ModelCard.load(md)  # parses the YAML front matter into ModelCardData, EvalResult objects
    evals = card.data.eval_results
    assert evals and len(evals) == len(meta["model-index"][0]["results"][0]["metrics"])
    # rebuilding the model-index from huggingface_hub's own objects gives back exactly what we wrote
    name, parsed = model_index_to_eval_results(meta["model-index"])
    rebuilt = ModelCardData(model_name=name, eval_results=parsed).to_dict()["model-index"]
    assert rebuilt == meta["model-index"]
    # values, intervals and the dataset fingerprint, against results.json
    split = evals[0].dataset_split
    ds = results["subject"]["datasets"][split]
    assert evals[0].dataset_args == {"sha256": ds["sha256"], "rows": ds["rows"]}
    assert ds["sha256"][:12] in evals[0].dataset_name
    assert re.fullmatch(r"[A-Za-z0-9._-]+", evals[0].dataset_type)
    perf = next(r for r in results["checks"] if r["id"] == "AK-PERF-001")
    acc = next(m for m in perf["metrics"] if m["name"] == "accuracy")
    hub = next(e for e in evals if e.metric_name.startswith("AK-PERF-001 accuracy"))
    assert hub.metric_value == acc["value"] and hub.metric_type == "accuracy" and hub.verified is False
    assert hub.metric_args == {
        "ci_low": acc["ci"][0],
        "ci_high": acc["ci"][1],
        "confidence": 0.95,
        "n": acc["n"],
    }
    assert "95% CI" in hub.metric_name


def test_model_index_is_omitted_without_metrics(engine_bundle: Path) -> None:
    from huggingface_hub import ModelCard

    card = ModelCard.load(engine_bundle / "model_card.md")
    assert card.data.eval_results is None and card.data.license == "apache-2.0"
