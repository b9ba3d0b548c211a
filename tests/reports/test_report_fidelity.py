"""The report an auditor signs (#18): nothing clipped, no word broken, no noise shown as a finding,
defaults shown as the values used, the audit's scope and criteria on the cover."""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from svgbox import outside, overlapping
from synth import _metric, _rec, synthetic_results

from auditkit.numbers import fmt_num
from auditkit.render.common import build_view, render_html
from auditkit.render.plots import render_plot

POIS_TITLE = "Spectral statistic by class (vs permutation null 99th percentile)"  # clipped on main


def _stress_plots() -> list[dict[str, Any]]:
    """Plots at the limits of what checks emit: long titles and labels, eight series with long
    names, 40 categories (slanted ticks), huge and tiny numbers, a log axis, no data."""
    long_title = "Robust accuracy under L∞ attacks with restarts, per epsilon, for every norm and loss used"
    names = [f"series_with_a_rather_long_name_{i}" for i in range(8)]
    xs = list(range(12))
    return [
        {"type": "bar", "title": POIS_TITLE, "x_label": "class", "y_label": "variance ratio",
         "categories": ["0", "1"], "series": [{"name": "statistic", "values": [0.78, 1.2]},
                                               {"name": "null 99th percentile", "values": [1.6, 2.6]}]},
        {"type": "line", "title": long_title, "x_label": "epsilon (normalised units, per feature range)" * 2,
         "y_label": "robust accuracy (correct after attack / all evaluated)" * 2,
         "series": [{"name": n, "x": xs, "y": [1e6 * (i + 1) + x for x in xs]} for i, n in enumerate(names)]},
        {"type": "bar", "title": "W" * 200, "x_label": "feature", "y_label": "effect size",
         "categories": [f"mean_concave_points_error_{i}" for i in range(40)],
         "series": [{"name": "test", "values": [0.01 * i for i in range(40)]}]},
        {"type": "bar", "title": "Mean accuracy drop per corruption", "x_label": "corruption", "y_label": "drop",
         "categories": ["gaussian_noise", "impulse_noise", "gaussian_blur", "contrast", "brightness", "pixelate",
                        "occlusion"], "series": [{"name": "drop", "values": [0.02, 0.07, 0.14, 0.13, 0.29, 0.36, 0.22]}]},
        {"type": "line", "title": "log", "log_y": True, "x_label": "step", "y_label": "lr",
         "series": [{"name": "lr", "x": xs, "y": [10.0 ** -(x + 1) for x in xs]}]},
        {"type": "line", "title": "categorical", "x_label": "corruption", "y_label": "drop",
         "series": [{"name": "gaussian_noise_and_more", "x": [f"occlusion_{i}" for i in xs], "y": xs}]},
        {"type": "scatter", "title": "Embedding of every test row " * 4, "x_label": "pc1", "y_label": "pc2",
         "series": [{"name": n, "x": [-123456.7, 0.0001], "y": [1e-9, 2e9]} for n in names[:3]]},
        {"type": "line", "title": "empty", "series": []},
        {"type": "bar", "title": "empty", "categories": [], "series": []},
    ]  # fmt: skip


def _all_plots(engine_results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    docs = [synthetic_results(), synthetic_results(hostile=False), engine_results]
    found = [
        (r["id"], p) for d in docs for r in d["checks"] for p in (r.get("evidence") or {}).get("plots") or []
    ]
    return found + [("stress", p) for p in _stress_plots()]


def test_every_plot_text_lies_inside_its_view_box_and_apart(engine_results: dict[str, Any]) -> None:
    plots = _all_plots(engine_results)
    assert {p.get("type") for _, p in plots} >= {"line", "bar", "scatter"}
    drawn = 0
    for cid, plot in plots:
        svg = render_plot(plot)
        if svg is None:
            continue
        drawn += 1
        assert outside(svg) == [], (cid, plot.get("title"))
        assert overlapping(svg) == [], (cid, plot.get("title"))  # e.g. category labels side by side
    assert drawn >= 15


def test_a_long_title_is_wrapped_or_shrunk_not_cut() -> None:
    svg = render_plot(_stress_plots()[0])
    assert svg is not None and outside(svg) == []
    titles = re.findall(r'<text [^>]*font-weight="bold">([^<]*)</text>', svg)
    assert " ".join(titles) == POIS_TITLE  # every word is there, on one or two lines


# -- tables: no word broken in the PDF text layer ------------------------------------------------
WORDS = ["production", "robust_accuracy", "gaussian_noise", "p_adjusted", "rows_above_reference",
         "reference_rows", "train_rows", "mean_concave_points_error", "suspected"]  # fmt: skip


def _wide_table_results() -> dict[str, Any]:
    doc = synthetic_results(hostile=False)
    table = {"columns": WORDS, "rows": [[w for w in WORDS] for _ in range(4)]}
    doc["checks"].append(_rec("AK-POIS-002", "Wide evidence table", "failed", tags=["robustness"],
                              evidence={"spectral screen by class": table},
                              metrics=[_metric("ood_accepted_at_threshold:column_shuffled", 0.5, (0.4, 0.6),
                                               85, None, None, None)]))  # fmt: skip
    return doc


def test_pdf_tables_never_break_inside_a_word(tmp_path: Path) -> None:
    from pypdf import PdfReader

    from auditkit.render.pdf import render_bytes

    pdf = render_bytes(_wide_table_results())
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
    joined = re.sub(r"([_:/])\s+", r"\1", text)  # a line may end after "_" (the allowed break)
    tokens = set(re.split(r"\s+", joined))
    for word in [*WORDS, "ood_accepted_at_threshold:column_shuffled"]:
        assert word in tokens, f"{word!r} is broken inside a word in the PDF text layer"
    assert "producti" not in tokens and "robust_acc" not in tokens


# -- numbers, defaults --------------------------------------------------------------------------
def test_numerical_noise_is_shown_as_zero_but_p_values_are_kept() -> None:
    assert fmt_num(1.3597399555105182e-16) == "0" and fmt_num(-6.530723674265627e-19) == "0"
    assert fmt_num(3e-5) == "3.000e-05" and fmt_num(2e-30, keep_tiny=True) == "2.000e-30"
    doc = synthetic_results(hostile=False)
    doc["checks"].append(_rec("AK-TRAIN-002", "Seeds", "passed", tags=["training"], metrics=[
        _metric("seed_std_accuracy", 1.36e-16, (1.36e-16, 1.36e-16), 3, None, None, None),
        _metric("p_value", 2e-30, None, 3, None, None, None)],
        evidence={"t": {"columns": ["drop", "p_adjusted"], "rows": [[-6.5e-19, 1e-20]]}}))  # fmt: skip
    before = copy.deepcopy(doc)
    view = build_view(doc)
    check = next(c for a in view["areas"] for c in a["checks"] if c["id"] == "AK-TRAIN-002")
    metrics = {m["name"]: m for m in check["metrics"]}
    assert (metrics["seed_std_accuracy"]["value"], metrics["seed_std_accuracy"]["ci"]) == ("0", "[0, 0]")
    assert metrics["p_value"]["value"] == "2.000e-30"
    assert check["evidence"]["tables"][0]["rows"] == [["0", "1.000e-20"]]
    assert doc == before  # results keep full precision


def test_parameters_left_at_default_show_the_value_used() -> None:
    doc = synthetic_results(hostile=False)
    doc["checks"].append(_rec("AK-ADV-099", "Evasion", "passed", tags=["robustness"],
                              params={"gate_epsilon": None, "steps": 20, "restarts": 5, "epsilons": None,
                                      "norms": ["inf"]},
                              evidence={"setup": {"gate_epsilon": 0.05, "grid": [0, 0.05]}}))  # fmt: skip
    doc["spec"].setdefault("checks", {})["params"] = {"AK-ADV-099": {"steps": 20}}
    doc["run"]["argv"] = ["auditkit", "run", "audit.yaml", "--param", "AK-ADV-099.restarts=5"]
    row = dict(next(p for p in build_view(doc)["params"] if p["id"] == "AK-ADV-099")["params"])
    assert row["gate_epsilon"] == "0.05 (default, chosen by the check)"
    assert row["steps"] == "20" and row["restarts"] == "5"  # set by the user: not marked
    assert row["norms"] == '["inf"] (default)'
    assert row["epsilons"].startswith("none (default")
    html = render_html(doc, pdf=False).replace("<wbr>", "")
    assert "gate_epsilon&#8239;=&#8239;0.05 (default, chosen by the check)" in html


# -- the cover: scope, criteria, findings below the gate ----------------------------------------
def _narrowed() -> dict[str, Any]:
    """Two checks selected out of the catalogue, both passed/failed below the gate: GO on main."""
    doc = synthetic_results(hostile=False)
    keep = {"AK-LEAK-001", "AK-BAL-001"}
    for r in doc["checks"]:
        if r["id"] not in keep:
            r.update(
                status="skipped", skip_reason="not selected: outside checks.select", metrics=[], findings=[]
            )
    for i in range(28):
        doc["checks"].append(_rec(f"AK-X-{i:03d}", f"Check {i}", "skipped",
                                  skip_reason="not selected: outside checks.select"))  # fmt: skip
    doc["gate"].update(decision="pass", exit_code=0, blocking=[], errored=[], regressions=[],
                       reason="no unwaived finding at or above 'high'", recommendation="go")  # fmt: skip
    return doc


def test_cover_states_a_narrowed_scope_and_lists_deselected_checks() -> None:
    doc = _narrowed()
    total = len(doc["checks"])
    html = render_html(doc, pdf=False)
    cover = html.split('<section class="summary"')[0]
    assert f"Narrowed audit: 2 of {total} checks" in cover
    assert f"{total - 2} deselected" in cover
    appendix = html.split('id="appendix"')[1]
    for r in doc["checks"]:
        if r["id"] not in ("AK-LEAK-001", "AK-BAL-001"):
            assert r["id"] in appendix
    full = synthetic_results(hostile=False)
    full["checks"] = [
        r for r in full["checks"] if not r.get("skip_reason", "") or "not selected" not in r["skip_reason"]
    ]
    assert "Narrowed audit" not in render_html(full, pdf=False)  # nothing left out: not narrowed


def test_failures_below_the_gate_are_worded_as_such() -> None:
    doc = _narrowed()
    html = render_html(doc, pdf=False)
    cover = html.split('<section class="summary"')[0]
    assert "Gate: PASSED" in cover
    assert re.search(
        r"2 failed check\(s\) with findings below the gate's threshold \(<code>fail_on: high</code>\)", cover
    )
    assert "AK-BAL-001, AK-LEAK-001" in cover and "2 below gate" in html
    blocked = synthetic_results(hostile=False)  # AK-LEAK-001 blocks here: not "below the gate"
    assert "AK-LEAK-001" not in build_view(blocked)["below_gate"]


@pytest.mark.parametrize("declared", [False, True])
def test_cover_states_the_declared_performance_criteria(declared: bool) -> None:
    doc = synthetic_results(hostile=False)
    perf = next(r for r in doc["checks"] if r["id"] == "AK-PERF-001")
    perf["status"] = "passed"
    perf["metrics"] = [_metric("accuracy", 0.94, (0.9, 0.97), 85, 0.9 if declared else None, "higher", True),
                       _metric("accuracy_over_majority", 0.3, (0.2, 0.4), 85, 0.0, "higher", True)]  # fmt: skip
    cover = render_html(doc, pdf=False).split('<section class="summary"')[0]
    if declared:
        assert "Performance minimums (AK-PERF-001): accuracy ≥ 0.9" in cover
        assert "No performance minimum" not in cover
    else:
        assert "No performance minimum was declared" in cover


def test_init_writes_minimums_commented_out_with_a_train_hint(tmp_path: Path) -> None:
    from auditkit.spec.scaffold import write_spec

    data = tmp_path / "train.csv"
    data.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'yes' if i % 4 else 'no'}\n" for i in range(40)))
    text = write_spec([data], tmp_path / "audit.yaml", label="label")
    spec = yaml.safe_load(text)
    assert spec["checks"]["params"] == {}  # commented out: nothing declared by accident
    assert re.search(r"#\s+min_accuracy: 0\.750 .*majority class \"yes\" is 75\.0% of rows", text)
    block = [ln.split("# ", 1)[1] for ln in text.splitlines() if ln.lstrip().startswith("#") and
             re.match(r"\s*#\s+(params:|AK-PERF-001:|min_)", ln)]  # fmt: skip
    uncommented = yaml.safe_load("\n".join(block))
    assert uncommented["params"]["AK-PERF-001"]["min_accuracy"] == 0.75


# -- diff ---------------------------------------------------------------------------------------
def test_diff_table_never_truncates_ids_or_metric_names() -> None:
    import io as _io

    from rich.console import Console

    from auditkit.results.diff import diff_results, render_diff

    base, new = synthetic_results(hostile=False), synthetic_results(hostile=False)
    long_metric = "ood_accepted_at_threshold:column_shuffled_and_scaled"
    for doc, value in ((base, 0.5), (new, 0.7)):
        rec = next(r for r in doc["checks"] if r["id"] == "AK-LEAK-001")
        rec["metrics"].append(
            _metric(long_metric, value, (value - 0.01, value + 0.01), 85, None, "higher", None)
        )
        next(r for r in doc["checks"] if r["id"] == "AK-GOV-001")["status"] = (
            "failed" if value > 0.6 else "passed"
        )
    console = Console(file=_io.StringIO(), width=80, record=True)
    render_diff(diff_results(base, new), console=console)
    out = console.export_text()
    assert long_metric in out and "AK-LEAK-001" in out and "AK-GOV-001" in out
    assert "…" not in out


def test_perf001_says_when_no_minimum_was_declared() -> None:
    from auditkit.checks.performance import heldout_performance
    from test_performance import arts_for, calibrated, frame  # tests/checks helpers (pythonpath)

    from auditkit.testing import run_check

    z, y = calibrated(300, 3)
    a = arts_for(frame(z, y))
    bare = run_check(heldout_performance, a)
    assert "no performance minimum declared" in bare["summary"]
    table = bare["evidence"]["metrics"]["rows"]
    assert all(row[-1] == "not declared" for row in table)
    declared = run_check(heldout_performance, a, params={"min_accuracy": 0.5})
    assert "no performance minimum declared" not in declared["summary"]
    assert [row[-1] for row in declared["evidence"]["metrics"]["rows"]][0] == 0.5
