"""A regressor's audit reads as a regressor's in every report (issue #22, review): check titles and
descriptions without "accuracy"/"ECE", the cover's criteria and task, the model card's units, the
console's task line, and a text label that holds numbers refused with what to do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import auditkit
from auditkit.cli import main
from auditkit.render.common import render_html, task_text

CLASSIFIER_WORDS = re.compile(r"\baccuracy\b|\bECE\b|Brier|reliability diagram|majority class|log loss", re.I)


def _data(tmp: Path, n: int = 300, seed: int = 0) -> None:
    """Wage-like data: a log-normal target with a sensitive column, 70/30 split."""
    rng = np.random.default_rng(seed)
    educ = rng.integers(8, 19, n).astype(float)
    df = pd.DataFrame({"educ": educ, "exper": rng.integers(0, 40, n).astype(float),
                       "female": rng.choice(["f", "m"], n)})  # fmt: skip
    df["wage"] = np.round(np.exp(0.1 * educ + rng.normal(0, 0.5, n)), 2)
    df.iloc[: int(0.7 * n)].to_csv(tmp / "train.csv", index=False)
    df.iloc[int(0.7 * n) :].to_csv(tmp / "test.csv", index=False)


def _spec(
    tmp: Path, checks: str, extra: str = "", model: str = "{builtin: mlp, builtin_args: {hidden: [8]}}"
) -> Path:
    p = tmp / "audit.yaml"
    p.write_text(
        "version: 1\nname: wages\ndata:\n  label: wage\n  sensitive: [female]\n"
        "  splits: {train: train.csv, test: test.csv}\n"
        f"model: {model}\ntraining: {{epochs: 3, batch_size: 64}}\n"
        f"checks: {{select: {checks}}}\n{extra}report: {{formats: [json]}}\n"
    )
    return p


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("wages")
    _data(tmp)
    spec = _spec(tmp, "[AK-PERF, AK-FAIR-001, AK-BAL-001, AK-BAL-002, AK-OOD-002]")
    return auditkit.run_audit(spec).doc


def test_check_titles_and_descriptions_describe_a_regressor(audited: dict) -> None:
    ran = {r["id"]: r for r in audited["checks"] if r["status"] in ("passed", "failed", "not_applicable")}
    for cid in ("AK-PERF-001", "AK-PERF-002", "AK-PERF-003", "AK-PERF-004", "AK-FAIR-001", "AK-BAL-001",
                "AK-BAL-002", "AK-OOD-002"):  # fmt: skip
        rec = ran[cid]
        text = f"{rec['title']} {rec['description']}"
        assert not CLASSIFIER_WORDS.search(text), f"{cid}: {text}"
    assert "RMSE" in ran["AK-PERF-001"]["title"] and "R²" in ran["AK-PERF-001"]["title"]
    assert "coverage" in ran["AK-PERF-003"]["title"].lower()
    assert "tail" in ran["AK-BAL-001"]["title"].lower()


def test_a_classifier_keeps_its_own_titles() -> None:
    from auditkit.checks import performance

    from auditkit.testing import make_artifacts, run_check

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=120), "y": rng.integers(0, 2, 120)})
    rec = run_check(performance.heldout_performance, make_artifacts({"train": df, "test": df}, label="y"))
    assert rec["title"] == "Held-out performance with confidence intervals against declared minimums"


def test_cover_names_the_task_and_regression_criteria(audited: dict) -> None:
    html = render_html(audited, pdf=False)
    cover = html.split('<section class="summary"')[0]
    assert "regression, inferred" in cover and "more than data.max_classes (50)" in cover
    assert "No performance limit was declared" in cover and "max_rmse" in cover
    assert "majority class" not in cover and "min_accuracy" not in cover


def test_model_card_shows_label_units_and_the_task(audited: dict, tmp_path: Path) -> None:
    from auditkit.render import model_card

    model_card.render(audited, tmp_path)
    md = (tmp_path / "model_card.md").read_text()
    assert "| Task | regression, inferred" in md
    assert re.search(r"\| AK-PERF-001 \| rmse \(wage units\) \|", md), md
    assert not re.search(r"\baccuracy\b", md, re.I)


def test_an_inferred_classification_of_a_count_says_how_to_audit_it_as_a_number() -> None:
    doc = {
        "subject": {"task": "classification", "task_inferred": True,
                    "datasets": {"train": {"class_counts": {"0": 700, "1": 200, "2": 50, "10": 1}}}},
        "spec": {"data": {"label": "narr86"}},
    }  # fmt: skip
    text = task_text(doc)
    assert "classification, inferred" in text and "declare model.task: regression" in text
    doc["subject"]["datasets"]["train"]["class_counts"] = {"no": 3, "yes": 4}
    assert "model.task: regression" not in task_text(doc)
    doc["subject"]["task_inferred"] = False
    assert task_text(doc) == "classification, declared (model.task)"


def test_console_prints_the_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _data(tmp_path, n=200)
    spec = _spec(tmp_path, "[AK-BAL-001]", model="{builtin: mlp, task: regression}")
    with pytest.raises(SystemExit):
        main(["run", str(spec), "-o", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "task: regression, declared (model.task)" in " ".join(out.split())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (lambda i: f"${5 + i * 0.37:.2f}", "holds numbers stored as text (e.g. '$5.00')"),
        (lambda i: f"grade-{i}", "is text with 140 distinct values (more than data.max_classes 50)"),
    ],
    ids=["currency_text", "free_text"],
)
def test_a_text_label_with_many_values_and_no_task_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: object, message: str
) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200)})
    df["wage"] = [values(i % 140) for i in range(200)]  # type: ignore[operator]
    df.iloc[:140].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[140:].to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        "version: 1\nname: t\ndata:\n  label: wage\n  splits: {train: train.csv, test: test.csv}\n"
        "model: {builtin: mlp}\nreport: {formats: [json]}\n"
    )
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    # declared, it is audited as the classes the user says they are (no refusal at load time)
    from auditkit.inputs.artifacts import Artifacts
    from auditkit.spec.schema import load_spec

    (tmp_path / "c.yaml").write_text(
        (tmp_path / "s.yaml").read_text().replace("{builtin: mlp}", "{builtin: mlp, task: classification}")
    )
    assert Artifacts(load_spec(tmp_path / "c.yaml")).task() == "classification"
    json.dumps(message)


def test_a_flat_output_torchscript_artifact_is_compared_for_parity_and_robustness_and_cost_ranks_on_rmse(
    tmp_path: Path,
) -> None:
    """A regressor returning one value per row as (batch,) — accepted for the audited model — was
    refused as a deployment artifact ('output of a batch of 2 has shape [2], expected [2, 1]'), and
    AK-DEPLOY-002's Pareto table had no quality column for a regressor (every candidate 'optimal')."""
    import torch

    _data(tmp_path, n=300)
    (tmp_path / "flatreg.py").write_text(
        "import torch\n\nclass Flat(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.lin = torch.nn.Linear(2, 1)\n"
        "    def forward(self, x):\n        return self.lin(x).squeeze(1)\n\n"
        "def make():\n    return Flat()\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        from flatreg import make  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    model = make()
    with torch.no_grad():
        model.lin.weight.copy_(torch.tensor([[0.5, 0.01]]))
        model.lin.bias.fill_(-1.0)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    torch.jit.save(torch.jit.script(model), tmp_path / "same.pt")
    with torch.no_grad():
        model.lin.bias.fill_(2.0)
    torch.jit.save(torch.jit.script(model), tmp_path / "off.pt")
    with torch.no_grad():  # three times as sensitive to its inputs: less robust within AK-ADV-001's ε
        model.lin.weight.mul_(3.0)
        model.lin.bias.fill_(-1.0)
    torch.jit.save(torch.jit.script(model), tmp_path / "steep.pt")
    spec = _spec(
        tmp_path, "[AK-DEPLOY]",
        extra="deployment:\n  artifacts:\n    - {name: same, torchscript: same.pt}\n    - {name: shifted, torchscript: off.pt}\n"
        "    - {name: steep, torchscript: steep.pt}\n"
        "  batch_sizes: [1]\n",
        model="{factory: 'flatreg:make', weights: w.pt, task: regression}",
    )  # fmt: skip
    spec.write_text(spec.read_text().replace("  sensitive: [female]\n", "  features: [educ, exper]\n"))
    sys.path.insert(0, str(tmp_path))
    try:
        res = auditkit.run_audit(spec).doc
    finally:
        sys.path.remove(str(tmp_path))
    recs = {r["id"]: r for r in res["checks"]}
    parity = {m["name"]: m for m in recs["AK-DEPLOY-001"]["metrics"]}
    assert parity["prediction_diff_p99_sd[same, test]"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert parity["prediction_diff_p99_sd[shifted, test]"]["value"] > 0.5
    # robustness parity (was an info note "not compared for regressors yet")
    assert parity["robust_share_drop[same]"]["value"] == 0.0
    steep = parity["robust_share_drop[steep]"]
    assert steep["value"] > 0.05 and steep["details"]["artifact"] < steep["details"]["audited"]
    assert any(f["metric"] == "robust_share_drop[steep]" for f in recs["AK-DEPLOY-001"]["findings"])
    cost = recs["AK-DEPLOY-002"]
    assert cost["status"] == "passed", cost["summary"]
    table = cost["evidence"]["timings"]["RMSE vs p95 latency vs size (Pareto)"]
    assert table["columns"][1] == "RMSE (test, label units)"
    rmse = {r[0]: r[1] for r in table["rows"]}
    assert rmse["same"] == pytest.approx(rmse["audited model"], rel=1e-5) and rmse["shifted"] > rmse["same"]
