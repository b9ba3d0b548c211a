"""Regression through the engine: spec keys, task inference, built-in training with each loss and
output, factory models, bad input (exit 2, one line) and determinism (issue #22)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

import auditkit
from auditkit.cli import main
from auditkit.errors import InputError


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's diabetes data (442 rows, target 25–346), a seeded 75/25 split, sex as text."""
    tmp = tmp_path_factory.mktemp("diabetes")
    d = load_diabetes(as_frame=True).frame
    d["sex"] = np.where(d["sex"] > 0, "m", "f")
    idx = np.random.default_rng(0).permutation(len(d))
    d.iloc[idx[:330]].to_csv(tmp / "train.csv", index=False)
    d.iloc[idx[330:]].to_csv(tmp / "test.csv", index=False)
    return tmp


def _spec(
    tmp: Path, name: str, model: str = "builtin: mlp", training: str = "", checks: str = "[AK-PERF-001]"
) -> Path:
    p = tmp / f"{name}.yaml"
    model_lines = "\n".join("  " + line.strip() for line in model.splitlines())
    p.write_text(
        f"version: 1\nname: {name}\ndata:\n  label: target\n  sensitive: [sex]\n"
        "  splits: {train: train.csv, test: test.csv}\n"
        f"model:\n{model_lines}\n"
        + ("  builtin_args: {hidden: [16]}\n" if "builtin" in model else "")
        + "training: {epochs: 40, batch_size: 32, optimizer: {name: AdamW, lr: 0.003, weight_decay: 0.1}"
        + f"{training}}}\n"
        f"checks: {{select: {checks}}}\nreport: {{formats: [json]}}\n"
    )
    return p


def _metric(results: auditkit.AuditResults, check: str, name: str) -> dict:
    return next(m for m in results[check]["metrics"] if m["name"] == name)


def test_builtin_mlp_learns_the_target_in_label_units(diabetes: Path) -> None:
    res = auditkit.run_audit(_spec(diabetes, "mlp", checks="[AK-PERF-001, AK-TRAIN-001]"))
    subject = res.doc["subject"]
    assert (
        subject["task"] == "regression" and subject["task_inferred"] is True and subject["output"] == "point"
    )
    assert subject["datasets"]["train"]["class_counts"] == {}
    assert subject["datasets"]["train"]["target"]["mean"] == pytest.approx(
        pd.read_csv(diabetes / "train.csv").target.mean()
    )
    from sklearn.linear_model import LinearRegression

    train, test = pd.read_csv(diabetes / "train.csv"), pd.read_csv(diabetes / "test.csv")
    feats = [c for c in train.columns if c not in ("target", "sex")]
    linear = LinearRegression().fit(train[feats], train.target).score(test[feats], test.target)
    assert _metric(res, "AK-PERF-001", "r2")["value"] > linear - 0.15  # close to least squares on this split
    assert _metric(res, "AK-PERF-001", "rmse_minus_mean_baseline")["passed"] is True
    assert res["AK-TRAIN-001"]["status"] == "passed"


@pytest.mark.parametrize("loss", ["mse", "huber", "l1"])
def test_each_regression_loss_trains(diabetes: Path, loss: str) -> None:
    from auditkit.inputs.artifacts import Artifacts
    from auditkit.spec.schema import load_spec

    arts = Artifacts(load_spec(_spec(diabetes, f"loss-{loss}", training=f", loss: {loss}")))
    run = arts.training_runs()[0]
    assert run.finite and run.metric_name == "r2"
    assert run.train_loss[-1] < 0.8 * run.train_loss[0]  # on the standardised target
    assert run.val_metric[-1] > 0.15  # validation R² (against the train variance): it learned
    x = arts.dataset("test").x
    import torch

    with torch.inference_mode():
        pred = run.module(torch.as_tensor(x)).numpy().ravel()
    y = arts.dataset("test").y
    assert abs(pred.mean() - y.mean()) < 0.25 * y.std()  # outputs are in label units, not standardised


def test_gaussian_and_quantile_outputs_train_and_are_calibrated_roughly(diabetes: Path) -> None:
    res = auditkit.run_audit(
        _spec(diabetes, "gauss", model="builtin: mlp\n  output: gaussian", checks="[AK-PERF]")
    )
    cov = _metric(res, "AK-PERF-003", "coverage")
    assert res["AK-PERF-003"]["status"] in ("passed", "failed") and 0.6 < cov["value"] <= 1.0
    assert res.doc["subject"]["output"] == "gaussian"
    q = "builtin: mlp\n  output: {quantiles: [0.1, 0.5, 0.9]}"
    res = auditkit.run_audit(_spec(diabetes, "quant", model=q, checks="[AK-PERF-003, AK-PERF-001]"))
    cov = _metric(res, "AK-PERF-003", "coverage")
    assert cov["details"]["nominal"] == pytest.approx(0.8) and 0.55 < cov["value"] < 0.98


def test_same_seed_gives_the_same_regression_results(diabetes: Path) -> None:
    a = auditkit.run_audit(_spec(diabetes, "det", checks="[AK-PERF-001, AK-PERF-004, AK-FAIR-001]"))
    b = auditkit.run_audit(_spec(diabetes, "det", checks="[AK-PERF-001, AK-PERF-004, AK-FAIR-001]"))
    for cid in ("AK-PERF-001", "AK-PERF-004", "AK-FAIR-001"):
        assert a[cid]["metrics"] == b[cid]["metrics"] and a[cid]["status"] != "error"


def test_factory_regressor_with_a_flat_output(diabetes: Path) -> None:
    """A factory model returning (batch,) is audited as one column; weights are a state dict."""
    import torch

    (diabetes / "flatnet.py").write_text(
        "import torch\n\nclass Flat(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.lin = torch.nn.Linear(9, 1)\n"
        "    def forward(self, x):\n        return self.lin(x).squeeze(1)\n\n"
        "def make():\n    return Flat()\n"
    )
    train = pd.read_csv(diabetes / "train.csv")
    feats = [c for c in train.columns if c not in ("target", "sex")]
    coef, *_ = np.linalg.lstsq(
        np.c_[train[feats].to_numpy(), np.ones(len(train))], train.target.to_numpy(), rcond=None
    )
    state = {"lin.weight": torch.tensor([coef[:-1]], dtype=torch.float32),
             "lin.bias": torch.tensor([coef[-1]], dtype=torch.float32)}  # fmt: skip
    torch.save(state, diabetes / "flat.pt")
    res = auditkit.run_audit(_spec(diabetes, "factory", model="factory: flatnet:make\n  weights: flat.pt"))
    test = pd.read_csv(diabetes / "test.csv")
    pred = test[feats].to_numpy() @ coef[:-1] + coef[-1]
    from sklearn.metrics import r2_score

    assert _metric(res, "AK-PERF-001", "r2")["value"] == pytest.approx(r2_score(test.target, pred), abs=1e-4)


BAD = [
    (
        "regression_with_text_label",
        "task: regression",
        "target_text",
        "model.task: regression needs a numeric label",
    ),
    (
        "loss_for_a_classifier",
        "task: classification",
        "target_class",
        "training.loss: huber is a regression loss",
    ),
    (
        "gaussian_for_a_classifier",
        "task: classification\n  output: gaussian",
        "target_class",
        "model.output: gaussian",
    ),
    ("constant_target", "task: regression", "target_const", "has a single value"),
    ("two_outputs_for_point", "task: regression", "target", "must output 1 column(s) per row; it outputs 2"),
]


@pytest.mark.parametrize(("case", "model", "label", "message"), BAD, ids=[c[0] for c in BAD])
def test_bad_regression_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, model: str, label: str, message: str
) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    df["target"] = df.a * 3 + rng.normal(size=80)
    df["target_text"] = [f"v{i}" for i in range(80)]
    df["target_class"] = (df.a > 0).astype(int)
    df["target_const"] = 1.5
    df.to_csv(tmp_path / "train.csv", index=False)
    df.to_csv(tmp_path / "test.csv", index=False)
    src = "torchscript: two.pt" if case == "two_outputs_for_point" else "builtin: mlp"
    if case == "two_outputs_for_point":
        import torch

        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "two.pt")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"version: 1\nname: bad\ndata:\n  label: {label}\n  features: [a, b]\n  splits: {{train: train.csv, test: test.csv}}\n"
        f"model:\n  {src}\n  {model}\n"
        + ("training: {epochs: 1, loss: huber}\n" if "loss" in case else "")
        + "report: {formats: [json]}\n"
    )
    with pytest.raises(SystemExit) as exc:
        main(["run", str(spec), "-o", str(tmp_path / "out"), "-q"])
    code = exc.value.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_declared_task_wins_over_inference(tmp_path: Path) -> None:
    """A label with few numeric values is classification unless model.task says regression."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=200)})
    df["y"] = rng.integers(0, 10, 200)  # 10 values: inferred classification
    df.to_csv(tmp_path / "train.csv", index=False)
    df.to_csv(tmp_path / "test.csv", index=False)
    base = "version: 1\nname: t\ndata:\n  label: y\n  splits: {train: train.csv, test: test.csv}\n"
    (tmp_path / "a.yaml").write_text(base)
    (tmp_path / "b.yaml").write_text(base + "model: {builtin: mlp, task: regression}\n")
    (tmp_path / "c.yaml").write_text(base.replace("label: y", "label: y\n  max_classes: 5"))
    from auditkit.inputs.artifacts import Artifacts
    from auditkit.spec.schema import load_spec

    tasks = [Artifacts(load_spec(tmp_path / f"{n}.yaml")) for n in "abc"]
    assert [a.task() for a in tasks] == ["classification", "regression", "regression"]
    assert [a.task_inferred() for a in tasks] == [True, False, True]
    assert tasks[1].dataset("train").y.dtype == np.float64 and tasks[0].dataset("train").y.dtype == np.int64
    df.assign(y=["x"] + list(df.y[1:])).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(InputError, match="regression target 'y' has non-numeric values"):
        Artifacts(load_spec(tmp_path / "b.yaml")).datasets()
