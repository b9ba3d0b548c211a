"""Regression tests for bugs found by running the CLI like a user would (QA scenarios).

Each case either works or fails with one line ``auditkit: error: ...``, exit code 2, no traceback.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main

NETS = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, d=4, k=2):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 8), nn.ReLU())
        self.head = nn.Linear(8, k)

    def forward(self, x):
        return self.head(self.body(x))

def make(d=4, k=2):
    return Net(d, k)
"""


def _net_class() -> type:
    from torch import nn

    class Net(nn.Module):
        def __init__(self, d: int = 4, k: int = 2) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(d, 8), nn.ReLU())
            self.head = nn.Linear(8, k)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.head(self.body(x))

    return Net


def _Net() -> object:  # noqa: N802
    return _net_class()()


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    """Four-feature tabular data, a factory module next to the spec, and model files of each kind."""
    import torch
    from safetensors.torch import save_file

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=y)
    df.iloc[:80].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[80:].to_csv(tmp_path / "test.csv", index=False)
    pkg = tmp_path / "qa_scen_nets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(NETS)
    torch.manual_seed(0)
    net = _Net()  # the factory's architecture, built here so the factory module is never imported by the test
    save_file(net.state_dict(), str(tmp_path / "net.safetensors"))
    torch.jit.save(torch.jit.script(net), str(tmp_path / "net_ts.pt"))
    ep = torch.export.export(net, (torch.zeros(4, 4),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(ep, str(tmp_path / "net.pt2"))
    (tmp_path / "garbage.pt2").write_bytes(b"PK\x03\x04" + b"garbage" * 20)
    return tmp_path


def _spec(tmp: Path, model: str, extra: str = "", name: str = "scenario") -> Path:
    p = tmp / f"{abs(hash(model + extra + name))}.yaml"
    p.write_text(
        f"version: 1\nname: {name}\ndata:\n  label: y\n  splits: {{train: train.csv, test: test.csv}}\n"
        f"model:\n{textwrap.indent(model, '  ')}\nreport: {{formats: [json]}}\n{extra}"
    )
    return p


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("exported: net_ts.pt", "model.exported: net_ts.pt is a TorchScript archive; name it under model.torchscript"),
        ("torchscript: net.pt2", "model.torchscript: net.pt2 is a torch.export program; name it under model.exported"),
        ("exported: garbage.pt2", "model.exported: garbage.pt2 is not a torch.export program"),
        ("exported: net.safetensors", "model.exported: net.safetensors is not a torch.export program"),
        ("factory: qa_scen_nets.nets:make\nfactory_args: {k: 3}\nweights: net.safetensors",
         "size mismatch for head.weight"),
        ("factory: qa_scen_nets/nets.py:make\nweights: net.safetensors",
         "names a file; write the module's import path, e.g. 'qa_scen_nets.nets:make'"),
    ],
)  # fmt: skip
def test_model_source_errors_are_one_line(
    models: Path, model: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(["run", str(_spec(models, model)), "-o", str(models / "out"), "-q"], capsys)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err and "torch/export" not in err  # torch.export's logged traceback is muted
    assert len(err.strip().splitlines()) == 1
    assert not (models / "out").exists()


def test_factory_next_to_spec_without_weights(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The spec's folder is importable for model.factory; with no weights file the summary says so."""
    spec = _spec(models, "factory: qa_scen_nets.nets:make", "checks: {select: [AK-GOV-003]}\n")
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code == 0, err
    rec = json.loads((models / "out" / "results.json").read_text())["checks"]
    gov = next(r for r in rec if r["id"] == "AK-GOV-003")
    assert gov["status"] == "passed"
    assert "None" not in gov["summary"] and "no artefact file" in gov["summary"]


def test_baseline_of_another_task_is_refused(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regressions against an audit of another task would compare unrelated metrics: exit 2."""
    df = pd.read_csv(models / "train.csv")
    df.assign(y=np.where(df.y == 1, "yes", "no")).to_csv(models / "other_train.csv", index=False)
    df.assign(y=np.where(df.y == 1, "yes", "no")).to_csv(models / "other_test.csv", index=False)
    extra = "checks: {select: [AK-LEAK-001]}\n"
    other = models / "other.yaml"
    other.write_text(
        "version: 1\nname: another-task\ndata:\n  label: y\n"
        "  splits: {train: other_train.csv, test: other_test.csv}\nreport: {formats: [json]}\n" + extra
    )
    code, _out, err = _run(["run", str(other), "-o", str(models / "base"), "-q"], capsys)
    assert code == 1, err  # test rows copy train rows
    spec = _spec(models, "torchscript: net_ts.pt", extra, name="model-v2")
    base = str(models / "base" / "results.json")
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q", "--baseline", base], capsys)
    assert code == 2
    assert "is an audit of 'another-task', another task than 'model-v2'" in err and "classes" in err
    assert len(err.strip().splitlines()) == 1
    assert not (models / "out").exists()
    # Another version of the same task (a new name, same label, classes and features) is accepted.
    v1 = _spec(models, "torchscript: net_ts.pt", extra, name="model-v1")
    code, _out, err = _run(["run", str(v1), "-o", str(models / "v1"), "-q"], capsys)
    assert code == 0, err
    base = str(models / "v1" / "results.json")
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out2"), "-q", "--baseline", base], capsys)
    assert code == 0, err


def test_unused_waiver_is_reported(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = (
        "checks: {select: [AK-LEAK-001]}\n"
        "gate:\n  waivers:\n    - {check: AK-LEAK-001, key: typo, reason: known, expires: 2099-01-01}\n"
    )
    spec = _spec(models, "torchscript: net_ts.pt", extra)
    code, out, err = _run(["run", str(spec), "-o", str(models / "out")], capsys)
    assert code == 0, err
    assert "unused waiver" in out and "typo" in out
    gate = json.loads((models / "out" / "results.json").read_text())["gate"]
    assert gate["unused_waivers"] == [{"check": "AK-LEAK-001", "key": "typo", "reason": "known"}]


def _training_spec(tmp: Path, training: str) -> Path:
    p = tmp / "train.yaml"
    p.write_text(
        "version: 1\nname: opt\ndata:\n  label: y\n  splits: {train: train.csv, test: test.csv}\n"
        "model: {builtin: mlp, builtin_args: {hidden: [4]}}\n"
        f"training:\n{textwrap.indent(training, '  ')}\n"
        "checks: {select: [AK-TRAIN-001]}\nreport: {formats: [json]}\n"
    )
    return p


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ("optimizer: {name: Adamm}", "training.optimizer: unknown optimizer 'Adamm'"),
        ("optimizer: {name: 'no_such_mod:Opt'}", "training.optimizer: cannot import 'no_such_mod:Opt'"),
        ("compare: [{name: SGD, lr: 0.1}, {name: Adam, momentum: 0.9}]",
         "training.compare.1: Adam.__init__() got an unexpected keyword argument 'momentum'"),
        ("schedule: {name: cosinee}", "training.schedule: unknown schedule 'cosinee'"),
    ],
)  # fmt: skip
def test_training_spec_errors_before_any_check(
    models: Path, training: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """They used to surface as the same error in every training check (exit 3)."""
    code, _out, err = _run(
        ["run", str(_training_spec(models, training)), "-o", str(models / "out"), "-q"], capsys
    )
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (models / "out").exists()


def test_custom_optimizer_next_to_spec(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'mod:Class' optimizers import from the spec's folder, like model.factory, from any cwd."""
    (models / "qa_scen_opt.py").write_text("import torch\n\nclass MySGD(torch.optim.SGD):\n    pass\n")
    spec = _training_spec(models, "epochs: 2\noptimizer: {name: 'qa_scen_opt:MySGD', lr: 0.01}")
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code == 0, err
    rec = json.loads((models / "out" / "results.json").read_text())["checks"]
    assert next(r for r in rec if r["id"] == "AK-TRAIN-001")["status"] == "passed"


@pytest.mark.parametrize(
    ("waiver", "message"),
    [
        ("{check: AK-LEAK-0003, reason: known, expires: 2099-01-01}",
         "gate.waivers.0.check: unknown check id or prefix 'AK-LEAK-0003'; did you mean 'AK-LEAK-003'?"),
        ("{check: AK-LEAK-001, reason: known, expires: 2027-13-01}", "month must be in 1..12"),
    ],
)  # fmt: skip
def test_bad_waivers_are_spec_errors(
    models: Path, waiver: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped waiver id used to waive nothing silently; an impossible date was a traceback."""
    extra = f"checks: {{select: [AK-LEAK-001]}}\ngate:\n  waivers:\n    - {waiver}\n"
    spec = _spec(models, "torchscript: net_ts.pt", extra)
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code == 2, err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("squeeze", [False, True])
def test_single_logit_binary_model(models: Path, squeeze: bool, capsys: pytest.CaptureFixture[str]) -> None:
    """A binary model with one logit (BCEWithLogitsLoss; shape (n, 1) or (n,)) was refused as
    'outputs 1 logits but the labels have 2 classes'; it is audited as the logits [0, z]."""
    import torch
    from sklearn.metrics import accuracy_score, brier_score_loss

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    if squeeze:
        net.append(torch.nn.Flatten(0))
    torch.jit.save(torch.jit.script(net), str(models / "one.pt"))
    spec = _spec(models, "torchscript: one.pt", "checks: {select: [AK-PERF-001, AK-PERF-003]}\n")
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code in (0, 1), err
    doc = json.loads((models / "out" / "results.json").read_text())
    assert "one logit" in doc["subject"]["model"]["output"]
    test = pd.read_csv(models / "test.csv")
    with torch.no_grad():
        p1 = torch.sigmoid(
            net(torch.tensor(test[list("abcd")].to_numpy(), dtype=torch.float32)).reshape(-1)
        ).numpy()
    recs = {r["id"]: r for r in doc["checks"]}
    acc = next(m for m in recs["AK-PERF-001"]["metrics"] if m["name"] == "accuracy")
    assert acc["value"] == pytest.approx(accuracy_score(test.y, p1 > 0.5))
    brier = next(m for m in recs["AK-PERF-003"]["metrics"] if m["name"] == "brier")
    assert brier["value"] == pytest.approx(brier_score_loss(test.y, p1), abs=1e-6)


def test_single_class_labels_with_a_model_are_refused(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every model check passed trivially (accuracy 1.0) on single-class data."""
    for name in ("train", "test"):
        df = pd.read_csv(models / f"{name}.csv")
        df[df.y == 1].to_csv(models / f"{name}.csv", index=False)
    spec = _spec(models, "builtin: mlp", "training: {epochs: 1}\n")
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code == 2
    assert "data.label: 'y' has a single class (1) in every split" in err
    # A continuous (regression) target is refused for a declared classifier.
    for name in ("train", "test"):
        df = pd.read_csv(models / f"{name}.csv")
        df.assign(y=df.a * 3.7).to_csv(models / f"{name}_reg.csv", index=False)
    reg = models / "reg.yaml"
    reg_text = spec.read_text().replace("train.csv", "train_reg.csv").replace("test.csv", "test_reg.csv")
    reg.write_text(reg_text.replace("builtin: mlp", "builtin: mlp\n  task: classification"))
    code, _out, err = _run(["run", str(reg), "-o", str(models / "out"), "-q"], capsys)
    assert code == 2 and "fractional" in err and "a regression target" in err, err
    # Undeclared, the same numeric label (> data.max_classes values) is inferred as regression and audited.
    reg.write_text(
        reg_text.replace(
            "report: {formats: [json]}", "report: {formats: [json]}\nchecks: {select: [AK-PERF-001]}"
        )
    )
    code, _out, err = _run(["run", str(reg), "-o", str(models / "out_reg"), "-q"], capsys)
    doc = json.loads((models / "out_reg" / "results.json").read_text())
    assert doc["subject"]["task"] == "regression" and doc["subject"]["task_inferred"] is True
    perf = next(c for c in doc["checks"] if c["id"] == "AK-PERF-001")
    assert code in (0, 1, 4), err
    assert "rmse" in {m["name"] for m in perf["metrics"]} or "too few rows" in perf["skip_reason"], perf
    # A data-only audit of the same files still runs (AK-BAL-001 reports the single class).
    data_only = models / "data.yaml"
    data_only.write_text("version: 1\nname: d\ndata:\n  label: y\n  splits: {train: train.csv}\n"
                         "checks: {select: [AK-BAL-001]}\nreport: {formats: [json]}\n")  # fmt: skip
    code, _out, err = _run(["run", str(data_only), "-o", str(models / "out2"), "-q"], capsys)
    assert code in (0, 1), err
    rec = json.loads((models / "out2" / "results.json").read_text())["checks"]
    assert next(r for r in rec if r["id"] == "AK-BAL-001")["status"] == "failed"


def test_one_epoch_training_is_not_called_diverged(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With one epoch the final-epoch mean loss contains the first steps: ratio ~1 > 1 = 'diverged'."""
    spec = _training_spec(models, "epochs: 1\nbatch_size: 16\noptimizer: {name: AdamW, lr: 0.05}")
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code == 0, err
    rec = next(r for r in json.loads((models / "out" / "results.json").read_text())["checks"]
               if r["id"] == "AK-TRAIN-001")  # fmt: skip
    assert rec["status"] == "passed", rec["findings"]
    ratio = next(m for m in rec["metrics"] if m["name"] == "worst_final_to_initial_loss")
    assert ratio["value"] < 1.0


@pytest.mark.parametrize(
    ("model", "splits", "message"),
    [
        ("builtin: cnn", "{train: train.csv, test: test.csv}", "model.builtin: cnn needs images shaped"),
        (
            "builtin: mlp",
            "{test: test.csv}",
            "model.builtin: auditkit trains the built-in mlp on data.splits.train",
        ),
        (
            "builtin: mlp, input: {immutable: [bb]}",
            "{train: train.csv, test: test.csv}",
            "model.input.immutable: 'bb' is not a feature; did you mean 'b'?",
        ),
    ],
)
def test_builtin_model_that_cannot_train_is_a_spec_error(
    models: Path, model: str, splits: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every model check used to error (exit 3) with the same training failure."""
    spec = models / "b.yaml"
    spec.write_text(f"version: 1\nname: b\ndata:\n  label: y\n  splits: {splits}\nmodel: {{{model}}}\n"
                    "training: {epochs: 1}\nreport: {formats: [json]}\n")  # fmt: skip
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code == 2 and message in err, err


def test_slice_query_typo_is_a_spec_error(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A data.slices query that does not evaluate used to make AK-PERF-004 error (exit 3)."""
    spec = models / "s.yaml"
    spec.write_text("version: 1\nname: s\ndata:\n  label: y\n  splits: {train: train.csv, test: test.csv}\n"
                    "  slices: {high_a: 'aa > 0'}\nmodel: {torchscript: net_ts.pt}\nreport: {formats: [json]}\n")  # fmt: skip
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert (
        code == 2
        and "data.slices.high_a: unknown column 'aa' in 'aa > 0' on the test split; did you mean 'a'?" in err
    ), err
    fixed = spec.read_text().replace("'aa > 0'", "'a > 0'")
    spec.write_text(fixed + "checks: {select: [AK-PERF-004], params: {AK-PERF-004: {min_slice_size: 5}}}\n")
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code in (0, 1), err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"expectations": [', "data.expectations: suite.json is not valid JSON"),
        ('{"a": 1}', "data.expectations: suite.json is not a Great Expectations suite"),
    ],
)
def test_bad_expectations_suite_is_a_spec_error(
    models: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (models / "suite.json").write_text(content)
    spec = models / "e.yaml"
    spec.write_text("version: 1\nname: e\ndata:\n  label: y\n  splits: {train: train.csv}\n"
                    "  expectations: suite.json\nreport: {formats: [json]}\n")  # fmt: skip
    code, _out, err = _run(["run", str(spec), "-o", str(models / "out"), "-q"], capsys)
    assert code == 2 and message in err, err
