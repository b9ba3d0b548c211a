"""Regression tests for bugs found by running auditkit like a user would (QA scenarios)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from auditkit.inputs.artifacts import Artifacts
from auditkit.spec.schema import load_spec


def _digits_npz(tmp: Path) -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    np.savez(tmp / "train.npz", x=x[:300], y=d.target[:300])
    np.savez(tmp / "test.npz", x=x[300:400], y=d.target[300:400])


def _spec(tmp: Path, model: str) -> Path:
    p = tmp / "audit.yaml"
    p.write_text(
        f"version: 1\nname: s\ndata:\n  splits: {{train: train.npz, test: test.npz}}\nmodel:\n{model}\n"
    )
    return p


def test_npz_images_without_model_input_are_images(tmp_path: Path) -> None:
    """Without a `model.input` section the data decide the kind: an NPZ of (n,1,8,8) is an image.

    It used to default to "tabular", so OOD and shift checks built tabular synthetic sets for images.
    """
    from auditkit.engine.context import RunContext
    from auditkit.engine.registry import build_registry

    _digits_npz(tmp_path)
    arts = Artifacts(load_spec(_spec(tmp_path, "  builtin: cnn")))
    assert arts.input_kind() == "image"
    info = build_registry(autoload=False).get("AK-OOD-001")
    assert info is not None
    ctx = RunContext(info, arts)
    assert ctx.model_input.kind == "image"
    assert ctx.model_input.range is None  # the rest of model.input is untouched
    # An explicit kind still wins over the data.
    arts2 = Artifacts(load_spec(_spec(tmp_path, "  builtin: cnn\n  input: {kind: tabular}")))
    assert arts2.input_kind() == "tabular"
    assert RunContext(info, arts2).model_input.kind == "tabular"


def test_builtin_safetensors_metadata_is_in_sorted_order() -> None:
    """safetensors writes metadata from a hash map: key order (and the model's sha256) varied per run."""
    import torch
    from safetensors.torch import load

    from auditkit.inputs.builtin_models import TabularMLP, serialise

    torch.manual_seed(0)
    m = TabularMLP(3, [0, 1, 2], {}, 2, hidden=[4])
    blob = serialise(m, torch.zeros(2, 3))["model.safetensors"]
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    keys = list(header)
    assert keys[0] == "__metadata__"
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    state = load(blob)  # offsets still valid
    for k, v in m.state_dict().items():
        assert torch.equal(state[k], v)


def test_entity_keys_integer_floats_meet_their_text() -> None:
    """An id column read as float (CSV with a gap: 5.0) must meet the same id read as text ("5")."""
    from auditkit.checks.leakage import _comparable_keys

    a, b = _comparable_keys(pd.Series([5.0, 7.0, np.nan]), pd.Series(["5", "x9", None]))
    assert b.isin(a.dropna()).tolist() == [True, False, False]
    a, b = _comparable_keys(pd.Series([1.5, 2.0]), pd.Series(["1.5", "2"]))
    assert b.isin(a).tolist() == [True, True]


def test_gate_reports_waivers_that_match_nothing() -> None:
    from auditkit.results.gate import decide

    rec = {"id": "AK-LEAK-003", "status": "failed", "findings": [
        {"severity": "high", "key": "group_overlap_ratio", "message": "m"}]}  # fmt: skip
    waivers = [
        {"check": "AK-LEAK-003", "key": "group_overlap_ratio", "reason": "r", "expires": "2099-01-01"},
        {"check": "AK-LEAK-003", "key": "typo_ratio", "reason": "r", "expires": "2099-01-01"},
        {"check": "AK-BAL", "reason": "r", "expires": "2099-01-01"},
    ]
    gate = decide([rec], fail_on="high", waivers=waivers, today=dt.date(2026, 1, 1))
    assert gate["exit_code"] == 0
    assert [(w["check"], w["key"]) for w in gate["unused_waivers"]] == [
        ("AK-LEAK-003", "typo_ratio"),
        ("AK-BAL", None),
    ]


def test_init_writes_relative_paths_and_quotes_awkward_names(tmp_path: Path) -> None:
    """Spec paths are relative to the spec: data outside its folder got absolute paths (a bundle
    that does not move); a label column named "yes" was read back by YAML as True."""
    from auditkit.spec.scaffold import write_spec

    data = tmp_path / "data"
    data.mkdir()
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "yes": [0, 1, 0]})
    df.to_csv(data / "train set.csv", index=False)
    out = tmp_path / "spec" / "audit.yaml"
    out.parent.mkdir()
    write_spec([data / "train set.csv"], out, label="yes")
    loaded = load_spec(out)
    assert loaded.spec.data.label == "yes"
    assert loaded.spec.data.splits.train == "../data/train set.csv"
    assert loaded.resolve(loaded.spec.data.splits.train).is_file()


def test_continuous_sensitive_attribute_is_grouped_by_quartiles() -> None:
    """AK-BAL-003 made every distinct age a group (hundreds of 'under-represented' findings)."""
    from auditkit.checks.balance import representation

    from auditkit.testing import make_artifacts, run_check

    rng = np.random.default_rng(0)

    def split(n: int) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(size=n), "age": rng.uniform(18, 90, n).round(1),
                             "y": rng.integers(0, 2, n)})  # fmt: skip

    arts = make_artifacts({"train": split(400), "test": split(200)}, label="y", sensitive=["age"])
    rec = run_check(representation, arts)
    assert rec["status"] == "passed", rec["findings"][:3]
    rows = rec["evidence"]["Sensitive groups"]["rows"]
    assert {r[0] for r in rows} == {"train", "test"}
    assert sum(1 for r in rows if r[0] == "train") == 4  # quartiles of train
    assert sum(r[3] for r in rows if r[0] == "test") == 200
    train_shares = sorted(r[4] for r in rows if r[0] == "train")
    assert train_shares[0] > 0.2 and train_shares[-1] < 0.3


def test_npz_images_without_channel_axis_get_one(tmp_path: Path) -> None:
    """(n, H, W) grayscale stacks made the builtin CNN (and every model check) error."""
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "train.npz", x=(d.images[:200] / 16).astype(np.float32), y=d.target[:200])
    np.savez(tmp_path / "test.npz", x=(d.images[200:260] / 16).astype(np.float32), y=d.target[200:260])
    arts = Artifacts(load_spec(_spec(tmp_path, "  builtin: cnn")))
    train = arts.dataset("train")
    assert train.x.shape == (200, 1, 8, 8) and train.kind == "image"
    assert np.array_equal(train.x2d, (d.images[:200] / 16).astype(np.float32).reshape(200, -1))
    assert train.frame.shape == (200, 65)  # x0..x63 and y


def test_time_column_that_does_not_parse_is_an_input_error() -> None:
    """Day-first dates after a month-first first value became missing silently; dates in one split
    and epoch numbers in the other made AK-LEAK-004 error. Both are input errors now (exit 2)."""
    import pytest

    from auditkit.errors import InputError
    from auditkit.testing import make_artifacts

    train = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, 1, 0], "t": ["2024-01-01", "2024-01-02", None]})
    ok = make_artifacts({"train": train, "test": train.copy()}, label="y", time="t")
    assert ok.dataset("test").times.notna().sum() == 2
    eu = train.assign(t=["05/02/2025", "13/02/2025", "20/02/2025"])
    with pytest.raises(
        InputError, match=r"data.splits.test: time column 't' has 2 values that are not dates"
    ):
        make_artifacts({"train": train, "test": eu}, label="y", time="t").datasets()
    epoch = train.assign(t=[1.7e9, 1.8e9, 1.9e9])
    with pytest.raises(InputError, match="dates in some splits and numbers in others"):
        make_artifacts({"train": train, "test": epoch}, label="y", time="t").datasets()


def test_unlabelled_production_split_is_accepted() -> None:
    """Production data (for drift) is usually unlabelled; it was refused for lacking the label."""
    from auditkit.checks.drift import feature_drift

    from auditkit.testing import make_artifacts, run_check

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.normal(size=300), "y": rng.integers(0, 2, 300)})
    prod = pd.DataFrame({"a": rng.normal(loc=1.0, size=300)})
    arts = make_artifacts({"train": train, "test": train.iloc[:100], "production": prod}, label="y")
    assert arts.dataset("production").y is None
    rec = run_check(feature_drift, arts)
    assert rec["status"] == "failed"  # a one-sd shift is found on the unlabelled split
    assert any("production" in (f.get("key") or "") for f in rec["findings"])


def _nan_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)

    def split(n: int) -> pd.DataFrame:
        x = rng.normal(size=(n, 3))
        return pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=(x[:, 0] > 0).astype(int))

    train, test = split(300), split(200)
    test.loc[test.index[:20], "b"] = np.nan
    return train, test


def test_shift_check_leaves_out_nan_outputs_instead_of_passing_on_nan() -> None:
    """AK-OOD-002 computed ECE = NaN on rows with missing values and passed (NaN > limit is False)."""
    import torch
    from auditkit.checks.ood import shift_behaviour

    from auditkit.testing import make_artifacts, run_check

    train, test = _nan_case()
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[-4.0, 0.0, 0.0], [4.0, 0.0, 0.0]]))
        net.bias.zero_()
    arts = make_artifacts({"train": train, "test": test}, label="y", model=net)
    rec = run_check(shift_behaviour, arts, params={"n_boot": 0})
    metrics = {m["name"]: m for m in rec["metrics"]}
    assert all(m["value"] is None or np.isfinite(m["value"]) for m in rec["metrics"]), metrics
    assert metrics["accuracy:clean"]["n"] == 180
    x = test[["a", "b", "c"]].to_numpy()[20:]
    assert metrics["accuracy:clean"]["value"] == ((x[:, 0] > 0) == test.y.to_numpy()[20:]).mean()
    assert any("left out 20 labelled test rows" in f["message"] for f in rec["findings"])


def test_poisoning_screen_without_penultimate_features_is_not_applicable() -> None:
    """A TorchScript model (hooks do not fire, no embed()) made AK-POIS-001 error: exit 3 on every audit."""
    import torch
    from auditkit.checks.poisoning import poisoning_screen

    from auditkit.testing import make_artifacts, run_check

    train, test = _nan_case()
    test = test.dropna()
    scripted = torch.jit.script(
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    )

    class Opaque(torch.nn.Module):  # a forward the engine cannot split into body and head
        def __init__(self) -> None:
            super().__init__()
            self.inner = scripted

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) * 1.0

    from auditkit.inputs.model import wrap

    adapter = wrap(torch.jit.script(Opaque()), n_classes=2, device="cpu")
    arts = make_artifacts({"train": train, "test": test}, label="y", model=adapter)
    rec = run_check(poisoning_screen, arts)
    assert rec["status"] == "not_applicable", rec.get("error")
    assert "penultimate features" in rec["skip_reason"]


def test_slice_check_with_no_judgeable_slice_is_not_a_pass() -> None:
    """AK-PERF-004 passed with 'all slices smaller than 30 rows' although it judged nothing."""
    import torch
    from auditkit.checks.performance import slice_performance

    from auditkit.testing import make_artifacts, run_check

    rng = np.random.default_rng(0)

    def split(n: int) -> pd.DataFrame:
        x = rng.normal(size=(n, 2))
        return pd.DataFrame(x, columns=["a", "b"]).assign(
            sex=np.where(np.arange(n) % 2, "F", "M"), y=(x[:, 0] > 0) * 1
        )

    arts = make_artifacts(
        {"train": split(200), "test": split(40)}, label="y", sensitive=["sex"], model=torch.nn.Linear(2, 2)
    )  # fmt: skip  (a, b: the sensitive sex is no auto feature)
    rec = run_check(slice_performance, arts)
    assert rec["status"] == "not_applicable", rec["status"]
    assert "no slice has the 30 test rows" in rec["skip_reason"]
    rec = run_check(slice_performance, arts, params={"min_slice_size": 10})
    assert rec["status"] in ("passed", "failed")


def test_ood_split_labels_stay_out_of_the_class_list() -> None:
    """Labels of OOD rows (another label space) became extra classes: 3 outputs, a rare class of 0 rows."""
    from auditkit.testing import make_artifacts

    train = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": ["no", "yes", "no", "yes"]})
    ood = pd.DataFrame({"a": [9.0, 8.0], "y": ["unknown", "no"]})
    arts = make_artifacts({"train": train, "test": train, "ood": ood}, label="y")
    assert arts.dataset("train").classes == ["no", "yes"]
    assert arts.dataset("ood").y.tolist() == [-1, 0]
    # A class seen only in test is still added (AK-BAL-001 reports it).
    test = train.assign(y=["no", "yes", "maybe", "yes"])
    assert make_artifacts({"train": train, "test": test}, label="y").dataset("train").classes == [
        "maybe",
        "no",
        "yes",
    ]
