"""Loading the model under audit from files: TorchScript, torch.export, factory + weights, pickles.

A pickled model is refused without being executed: the planted payload would create a file if it
were ever unpickled, and the test asserts the file does not exist.
"""

from __future__ import annotations

import os
import pickle
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from auditkit.errors import InputError
from auditkit.inputs.artifacts import Artifacts
from auditkit.spec.schema import load_spec

N_FEATURES = 4


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _write_data(tmp: Path) -> None:
    rng = np.random.default_rng(0)
    for name, n in (("train", 80), ("test", 40)):
        x = rng.normal(size=(n, N_FEATURES))
        df = pd.DataFrame(x, columns=[f"f{i}" for i in range(N_FEATURES)])
        df["y"] = (x[:, 0] > 0).astype(int)
        df.to_csv(tmp / f"{name}.csv", index=False)


def _spec(tmp: Path, model: dict[str, Any]) -> Artifacts:
    _write_data(tmp)
    doc = {
        "version": 1,
        "name": "t",
        "data": {"label": "y", "splits": {"train": "train.csv", "test": "test.csv"}},
        "model": {"device": "cpu", **model},
    }
    (tmp / "audit.yaml").write_text(yaml.safe_dump(doc))
    return Artifacts(load_spec(tmp / "audit.yaml"))


def _x(arts: Artifacts) -> np.ndarray:
    return arts.dataset("test").x


class Payload:
    """Unpickling this calls open(marker, 'w'): proof of code execution if it ever happens."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def test_torchscript_loads_with_same_logits(tmp_path: Path) -> None:
    net = _net().eval()
    torch.jit.save(torch.jit.script(net), str(tmp_path / "m.pt"))
    arts = _spec(tmp_path, {"torchscript": "m.pt"})
    adapter = arts.model()
    x = _x(arts)
    np.testing.assert_allclose(adapter.logits(x), net(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)
    src = adapter.source
    assert src["format"] == "torchscript" and src["safe_to_load"] is True
    # a scripted Sequential gives penultimate embeddings (hooks do not fire in compiled code)
    np.testing.assert_allclose(
        adapter.embeddings(x), net[:-1](torch.from_numpy(x)).detach().numpy(), rtol=1e-6
    )
    import hashlib

    assert src["sha256"] == hashlib.sha256((tmp_path / "m.pt").read_bytes()).hexdigest()


def test_exported_program_loads(tmp_path: Path) -> None:
    net = _net().eval()
    batch = torch.export.Dim("batch")
    ep = torch.export.export(net, (torch.zeros(3, N_FEATURES),), dynamic_shapes={"input": {0: batch}})
    torch.export.save(ep, str(tmp_path / "m.pt2"))
    arts = _spec(tmp_path, {"exported": "m.pt2"})
    adapter = arts.model()
    x = _x(arts)
    np.testing.assert_allclose(
        adapter.logits(x), net(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    assert adapter.source["format"] == "export"


def _factory_module(tmp: Path, name: str) -> str:
    (tmp / f"{name}.py").write_text(
        textwrap.dedent(f"""
        import torch

        def make(hidden=8):
            return torch.nn.Sequential(torch.nn.Linear({N_FEATURES}, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    """)
    )
    return f"{name}:make"


def test_factory_with_safetensors_and_state_dict(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    net = _net().eval()
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save(net.state_dict(), str(tmp_path / "w.pt"))
    factory = _factory_module(tmp_path, "factory_a")
    for weights, fmt in (("w.safetensors", "safetensors"), ("w.pt", "state_dict")):
        arts = _spec(tmp_path, {"factory": factory, "weights": weights})
        adapter = arts.model()
        x = _x(arts)
        np.testing.assert_allclose(adapter.logits(x), net(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)
        assert adapter.source["format"] == fmt and adapter.source["safe_to_load"] is True


def test_factory_weights_that_do_not_fit_are_an_input_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    other = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    save_file(other.state_dict(), str(tmp_path / "w.safetensors"))
    arts = _spec(tmp_path, {"factory": _factory_module(tmp_path, "factory_b"), "weights": "w.safetensors"})
    with pytest.raises(InputError, match="does not fit"):
        arts.model()


def test_class_count_must_match_labels(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 3))
    torch.jit.save(torch.jit.script(net), str(tmp_path / "m.pt"))
    with pytest.raises(InputError, match="3 logits.*2 classes"):
        _spec(tmp_path, {"torchscript": "m.pt"}).model()


def test_pickled_model_is_refused_without_execution(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump(Payload(str(marker)), fh, protocol=2)
    torch.save(Payload(str(marker)), str(tmp_path / "evil_zip.pt"))  # torch.save's zip layout
    assert not marker.exists()
    for name in ("evil.pt", "evil_zip.pt"):
        with pytest.raises(InputError, match="pickle.*refused"):
            _spec(tmp_path, {"torchscript": name}).model()
        with pytest.raises(InputError, match="not a plain state_dict"):
            _spec(tmp_path, {"factory": _factory_module(tmp_path, "factory_c"), "weights": name}).model()
        with pytest.raises(InputError, match="pickle"):
            _spec(tmp_path, {"exported": name}).model()
    assert not marker.exists(), "the payload ran: a pickle was unpickled"


def test_trusted_pickle_loads_only_with_allow_pickle(tmp_path: Path) -> None:
    net = _net().eval()
    torch.save(net, str(tmp_path / "full.pt"))
    with pytest.raises(InputError, match="allow_pickle"):
        _spec(tmp_path, {"torchscript": "full.pt"}).model()
    adapter = _spec(tmp_path, {"torchscript": "full.pt", "allow_pickle": True}).model()
    assert adapter.source["format"] == "pickle" and adapter.source["safe_to_load"] is False


def test_pinned_hash_mismatch_refuses_an_unsafe_load(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    torch.save(Payload(str(marker)), str(tmp_path / "evil.pt"))
    arts = _spec(tmp_path, {"torchscript": "evil.pt", "allow_pickle": True, "sha256": "0" * 64})
    with pytest.raises(InputError, match="does not match"):
        arts.model()
    assert not marker.exists()


def test_pin_recorded_for_safe_formats(tmp_path: Path) -> None:
    import hashlib

    torch.jit.save(torch.jit.script(_net()), str(tmp_path / "m.pt"))
    good = hashlib.sha256((tmp_path / "m.pt").read_bytes()).hexdigest()
    assert _spec(tmp_path, {"torchscript": "m.pt", "sha256": good}).model().source["pin_matches"] is True
    assert _spec(tmp_path, {"torchscript": "m.pt", "sha256": "f" * 64}).model().source["pin_matches"] is False


def test_pickle_refusal_exits_2_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from auditkit.cli import main

    marker = tmp_path / "PWNED"
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump(Payload(str(marker)), fh, protocol=2)
    _spec(tmp_path, {"torchscript": "evil.pt"})
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tmp_path / "audit.yaml"), "-o", str(tmp_path / "out"), "-q", "--format", "json"])
    assert exc.value.code == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()
    assert not os.path.exists(tmp_path / "out" / "results.json")


def test_unavailable_cuda_device_is_an_input_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    torch.jit.save(torch.jit.script(_net()), str(tmp_path / "m.pt"))
    with pytest.raises(InputError, match="CUDA is not available"):
        _spec(tmp_path, {"torchscript": "m.pt", "device": "cuda"}).model()


def test_builtin_audit_end_to_end_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An examples-style audit.yaml: built-in MLP trained from `training`, CSV splits, `auditkit run`."""
    import hashlib
    import json

    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    from auditkit.cli import main

    df = load_breast_cancer(as_frame=True).frame
    df.columns = [c.replace(" ", "_") for c in df.columns]
    df["sex"] = np.random.default_rng(0).choice(["f", "m"], len(df))
    train, test = train_test_split(df, test_size=0.3, random_state=0, stratify=df["target"])
    (tmp_path / "data").mkdir()
    train.to_csv(tmp_path / "data" / "train.csv", index=False)
    test.to_csv(tmp_path / "data" / "test.csv", index=False)
    (tmp_path / "audit.yaml").write_text(
        textwrap.dedent("""
        version: 1
        name: breast-cancer
        data:
          label: target
          sensitive: [sex]
          splits: {train: data/train.csv, test: data/test.csv}
        model: {builtin: mlp}
        training:
          optimizer: {name: AdamW, lr: 0.003, weight_decay: 0.01}
          schedule: {name: cosine, warmup_epochs: 1}
          epochs: 8
          batch_size: 64
          grad_clip: 1.0
          seeds: [0, 1]
          compare:
            - {name: SGD, lr: 0.05, momentum: 0.9}
        checks:
          params: {AK-PERF-001: {min_accuracy: 0.85, min_roc_auc: 0.9}}
        report: {formats: [json]}
    """)
    )
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "run",
                str(tmp_path / "audit.yaml"),
                "-o",
                str(out),
                "-q",
                "--select",
                "AK-TRAIN,AK-PERF,AK-FAIR,AK-GOV-003",
            ]
        )
    assert exc.value.code == 0, capsys.readouterr()
    results = json.loads((out / "results.json").read_text())
    status = {c["id"]: c["status"] for c in results["checks"] if c["status"] != "skipped"}  # deselected
    assert all(s == "passed" for s in status.values()), status
    assert len(status) == 10, status
    model = results["subject"]["model"]
    assert model["sha256"] == hashlib.sha256((out / "model" / "model.safetensors").read_bytes()).hexdigest()
    manifest = json.loads((out / "manifest.json").read_text())
    assert "model/model.pt" in json.dumps(manifest)


def test_load_model_is_a_function_of_its_arguments(tmp_path: Path) -> None:
    """No artifact cache: the spec's model section, the spec's folder, what the data say, a device."""
    from auditkit.inputs.loading import DataFacts, load_model, model_device

    net = _net().eval()
    torch.jit.save(torch.jit.script(net), str(tmp_path / "model.pt"))
    arts = _spec(tmp_path, {"torchscript": "model.pt"})
    m = arts.spec.model
    x = _x(arts)
    facts = DataFacts(example=x[:2], n_classes=2, features=("f0", "f1", "f2", "f3"), input_kind="tabular")
    adapter = load_model(m, tmp_path, facts, model_device(m))
    with torch.no_grad():
        assert np.allclose(adapter.logits(x), net(torch.as_tensor(x, dtype=torch.float32)).numpy(), atol=1e-6)
    cached = DataFacts.of(arts.datasets(), arts.input_kind())  # what the cache passes: train's rows
    np.testing.assert_array_equal(cached.example, arts.dataset("train").x[:2])
    assert (cached.n_classes, cached.features, cached.input_kind) == (2, facts.features, "tabular")
    with pytest.raises(InputError, match="it outputs 2 logits per row but the labels have 3 classes"):
        load_model(m, tmp_path, DataFacts(example=x[:2], n_classes=3), model_device(m))


def test_a_data_error_is_not_hidden_by_model_loading(tmp_path: Path) -> None:
    """The model's probe rows come from the data: a data error surfaces as itself (exit 2), where it
    used to be swallowed (``except Exception: return None``) into a vaguer model message."""
    net = _net().eval()
    torch.jit.save(torch.jit.script(net), str(tmp_path / "model.pt"))
    arts = _spec(tmp_path, {"torchscript": "model.pt"})
    (tmp_path / "train.csv").write_text("")  # an empty file: not a table
    with pytest.raises(InputError, match="data.splits.train"):
        arts.model()
