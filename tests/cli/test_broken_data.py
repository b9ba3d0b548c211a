"""Broken data and mismatched models get one clear line, never a silent verdict or an interpreter dump.

Missing labels, automatic features that would take sensitive or datetime columns, a model whose
input width or classes do not fit the data, a model that raises, and ``auditkit init``'s guesses.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from auditkit.cli import main
from auditkit.inputs.artifacts import Artifacts
from auditkit.spec.schema import parse_spec

NETS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, d: int = 4, k: int = 2):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 8), nn.ReLU())
        self.head = nn.Linear(8, k)

    def forward(self, x):
        return self.head(self.body(x))


class Picky(nn.Module):
    def __init__(self, limit: float = 100.0):
        super().__init__()
        self.limit = limit
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        if bool((x.abs() > self.limit).any()):
            raise ValueError("picky model: inputs must stay within the calibrated range")
        return self.head(x)


class Quitter(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        import sys

        sys.exit(0)  # hostile: would end auditkit with exit code 0, a "passed" gate


def make(d: int = 4, k: int = 2):
    return Net(d, k)


def quitter():
    return Quitter()


def picky(limit: float = 100.0):
    return Picky(limit)
"""


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _one_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("auditkit: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=(x[:, 0] + x[:, 1] > 0).astype(int))
    df.iloc[:100].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[100:].to_csv(tmp_path / "test.csv", index=False)
    pkg = tmp_path / "vd_nets_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(NETS)
    return tmp_path


def _spec(root: Path, body: str, name: str = "audit.yaml") -> Path:
    path = root / name
    path.write_text("version: 1\nname: broken-data\n" + body + "report: {formats: [json]}\n")
    return path


DATA = "data:\n  label: y\n  splits: {train: train.csv, test: test.csv}\n"


# -- missing labels -------------------------------------------------------------------------------
def _with_missing_labels(root: Path, n: int = 57) -> None:
    test = pd.read_csv(root / "test.csv")
    test.loc[test.index[:n], "y"] = np.nan
    test.to_csv(root / "test.csv", index=False)


def test_missing_labels_are_an_input_error_naming_the_split_and_count(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_missing_labels(project)
    spec = _spec(project, DATA + "checks: {select: [AK-DQ]}\n")
    line = _one_line(*_run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)[::2])
    assert "data.splits.test" in line and "57 of 100 rows have no label" in line
    assert "drop_missing_labels" in line
    assert not (project / "out").exists()


def test_text_labels_that_are_blank_count_as_missing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for split in ("train", "test"):
        df = pd.read_csv(project / f"{split}.csv")
        df["y"] = np.where(df["y"] == 1, "yes", "no").astype(object)
        if split == "train":
            df.loc[df.index[:3], "y"] = "  "
        df.to_csv(project / f"{split}.csv", index=False)
    spec = _spec(project, DATA + "checks: {select: [AK-DQ]}\n")
    line = _one_line(*_run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)[::2])
    assert "data.splits.train: 3 of 100 rows have no label" in line


def test_dropped_missing_labels_are_counted_in_results_and_a_finding(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_missing_labels(project)
    spec = _spec(project, DATA.replace("  label: y\n", "  label: y\n  drop_missing_labels: true\n")
                 + "checks: {select: [AK-DQ-004]}\n")  # fmt: skip
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    assert code in (0, 1), err
    doc = json.loads((project / "out" / "results.json").read_text())
    test_fp = doc["subject"]["datasets"]["test"]
    assert test_fp["dropped_missing_labels"] == 57 and test_fp["rows"] == 43
    assert doc["subject"]["datasets"]["train"]["dropped_missing_labels"] == 0
    dq = next(r for r in doc["checks"] if r["id"] == "AK-DQ-004")
    finding = next(f for f in dq["findings"] if f["key"] == "test:y:missing_labels")
    assert "57 of 100 rows" in finding["message"] and finding["severity"] != "info"
    assert next(m for m in dq["metrics"] if m["name"] == "dropped_missing_labels_test")["value"] == 57


def test_an_unlabelled_production_split_is_still_fine(project: Path) -> None:
    prod = pd.read_csv(project / "test.csv").assign(y=np.nan)
    prod.to_csv(project / "prod.csv", index=False)
    loaded = parse_spec(
        {
            "version": 1,
            "name": "p",
            "data": {"label": "y", "splits": {"train": "train.csv", "production": "prod.csv"}},
        },
        path=project / "audit.yaml",
    )
    ds = Artifacts(loaded).datasets()
    assert len(ds["production"]) == 100 and ds["production"].dropped_missing_labels == 0


# -- features: auto -------------------------------------------------------------------------------
def _roles_project(root: Path) -> dict[str, object]:
    rng = np.random.default_rng(1)
    n = 60
    df = pd.DataFrame({
        "uid": np.arange(n), "a": rng.normal(size=n), "b": rng.normal(size=n),
        "sex": rng.choice(["f", "m"], size=n), "age_band": rng.choice(["<30", "30+"], size=n),
        "signup": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "noise": rng.normal(size=n), "y": rng.integers(0, 2, n),
    })  # fmt: skip
    df.to_csv(root / "roles.csv", index=False)
    return {"version": 1, "name": "roles", "data": {
        "label": "y", "id": "uid", "sensitive": ["sex", "age_band"], "exclude": ["noise"],
        "splits": {"train": "roles.csv"}}}  # fmt: skip


def test_auto_features_never_take_sensitive_role_or_datetime_columns(tmp_path: Path) -> None:
    doc = _roles_project(tmp_path)
    ds = Artifacts(parse_spec(doc, path=tmp_path / "audit.yaml")).datasets()["train"]
    assert ds.features == ["a", "b"]
    assert list(ds.sensitive.columns) == ["sex", "age_band"]  # still there for slices and fairness
    doc["data"]["features"] = ["a", "b", "sex"]  # type: ignore[index]
    ds = Artifacts(parse_spec(doc, path=tmp_path / "audit.yaml")).datasets()["train"]
    assert ds.features == ["a", "b", "sex"]  # listed explicitly: the user's choice


# -- models that do not fit the data ----------------------------------------------------------------
def _script(project: Path, cls: str, path: str, **kw: object) -> None:
    import torch

    sys.path.insert(0, str(project))
    try:
        mod = importlib.import_module("vd_nets_pkg.nets")
        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(getattr(mod, cls)(**kw)), str(project / path))
    finally:
        sys.path.remove(str(project))
        for name in [m for m in sys.modules if m.startswith("vd_nets_pkg")]:
            del sys.modules[name]


def _export(project: Path, d: int) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, 2))
    ep = torch.export.export(
        net, (torch.zeros(4, d),), dynamic_shapes={"input": {0: torch.export.Dim("batch")}}
    )
    torch.export.save(ep, str(project / "net5.pt2"))


@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
def test_a_model_of_another_input_width_says_both_numbers_and_the_features(
    project: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if fmt == "torchscript":
        _script(project, "Net", "net5.pt", d=5)
    else:
        _export(project, 5)
    spec = _spec(
        project,
        DATA
        + ("model: {torchscript: net5.pt}\n" if fmt == "torchscript" else "model: {exported: net5.pt2}\n"),
    )
    line = _one_line(*_run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)[::2])
    assert "takes 5 inputs per row but the data give 4 features (a, b, c, d)" in line
    assert "TorchScript" not in line and "HERE" not in line


def test_a_class_the_model_has_no_output_for_names_split_and_class(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = pd.read_csv(project / "test.csv")
    test.loc[test.index[:7], "y"] = 2
    test.to_csv(project / "test.csv", index=False)
    spec = _spec(project, DATA + "model: {factory: 'vd_nets_pkg.nets:make'}\n")
    line = _one_line(*_run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)[::2])
    assert "the test split has class 2 (7 rows) that the model has no output for" in line


@pytest.mark.parametrize("kind", ["torchscript", "factory"])
def test_a_model_that_raises_keeps_its_own_words_in_one_line(
    project: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "torchscript":
        _script(project, "Picky", "picky.pt", limit=0.0)
        model = "model: {torchscript: picky.pt}\n"
    else:
        model = "model: {factory: 'vd_nets_pkg.nets:picky', factory_args: {limit: 0.0}}\n"
    spec = _spec(project, DATA + model)
    line = _one_line(*_run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)[::2])
    assert "ValueError: picky model: inputs must stay within the calibrated range" in line
    assert "interpreter" not in line and "Traceback" not in line


def test_a_model_that_raises_midway_errors_the_check_with_its_own_words(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = pd.read_csv(project / "test.csv")
    test.loc[test.index[50], "a"] = 1e6  # passes the two-row probe, fails on the whole split
    test.to_csv(project / "test.csv", index=False)
    _script(project, "Picky", "picky.pt", limit=1e5)
    spec = _spec(project, DATA + "model: {torchscript: picky.pt}\nchecks: {select: [AK-PERF-001]}\n")
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    assert code == 3, err
    rec = json.loads((project / "out" / "results.json").read_text())["checks"]
    perf = next(r for r in rec if r["id"] == "AK-PERF-001")
    assert perf["status"] == "error"
    assert perf["error"]["message"] == (
        "the model fails on rows 0–99: ValueError: picky model: inputs must stay within the calibrated range"
    )
    assert "TorchScript" not in perf["error"]["traceback"]


# -- auditkit init -----------------------------------------------------------------------------
def test_init_writes_its_guesses_with_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=40), "seen": pd.date_range("2024-01-01", periods=40).strftime("%Y-%m-%d"),
                       "target": rng.integers(0, 2, 40)})  # fmt: skip
    df.to_csv(tmp_path / "train.csv", index=False)
    spec = tmp_path / "audit.yaml"
    code, _out, err = _run(["init", str(tmp_path / "train.csv"), "-o", str(spec)], capsys)
    assert code == 0, err
    text = spec.read_text()
    label_line = next(ln for ln in text.splitlines() if ln.strip().startswith("label:"))
    assert "target" in label_line and "guessed" in label_line
    assert "# auto takes these 1 columns: a" in text
    assert "left out as datetimes" in text and "seen" in text
    assert yaml.safe_load(text)["data"]["label"] == "target"


@pytest.mark.parametrize(
    ("columns", "candidates"),
    [
        ({"label": [0, 1], "target": [1, 0]}, "label, target"),
        ({"grade": [0, 1], "score": [0.5, 0.7]}, "grade"),
    ],
)
def test_init_refuses_an_ambiguous_label_without_label_option(
    tmp_path: Path, columns: dict[str, list[object]], candidates: str, capsys: pytest.CaptureFixture[str]
) -> None:
    df = pd.DataFrame({k: v * 20 for k, v in columns.items()})
    df.to_csv(tmp_path / "train.csv", index=False)
    spec = tmp_path / "audit.yaml"
    line = _one_line(*_run(["init", str(tmp_path / "train.csv"), "-o", str(spec)], capsys)[::2])
    assert "cannot tell the label column" in line and "--label" in line and candidates in line
    assert not spec.exists()
    first = next(iter(columns))
    code, _out, err = _run(["init", str(tmp_path / "train.csv"), "-o", str(spec), "--label", first], capsys)
    assert code == 0, err
    assert yaml.safe_load(spec.read_text())["data"]["label"] == first


def test_init_asks_on_a_terminal_when_the_label_is_ambiguous(tmp_path: Path) -> None:
    from auditkit.spec.scaffold import write_spec

    pd.DataFrame({"label": [0, 1] * 20, "target": [1, 0] * 20}).to_csv(tmp_path / "train.csv", index=False)
    asked: list[list[str]] = []

    def ask(candidates: list[str], reason: str) -> str:
        asked.append(candidates)
        return "target"

    text = write_spec([tmp_path / "train.csv"], tmp_path / "audit.yaml", ask=ask)
    assert asked == [["label", "target"]]
    assert yaml.safe_load(text)["data"]["label"] == "target" and "chosen at the prompt" in text


def test_a_model_that_calls_sys_exit_cannot_pass_the_gate(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(project, DATA + "model: {factory: 'vd_nets_pkg.nets:quitter'}\n")
    line = _one_line(*_run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)[::2])
    assert "SystemExit: the model called sys.exit(0)" in line
