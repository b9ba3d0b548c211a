"""MLflow integration against real MLflow: a SQLite tracking store, and one real `mlflow server`.

A small classifier is trained and logged with ``mlflow.pytorch`` (MLflow 3's default "pt2" format,
and the "pickle" format for the refusal cases); audits load it as ``model.mlflow``, log to the store,
and every value is read back through ``MlflowClient`` and compared with the bundle's results.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

mlflow = pytest.importorskip("mlflow", reason="pip install 'auditkit[mlflow]' (make test does)")
from mlflow.tracking import MlflowClient  # noqa: E402
from mlflow.utils.validation import path_not_unique, validate_param_and_metric_name  # noqa: E402

from auditkit.cli import main  # noqa: E402
from auditkit.integrations.mlflow_io import metrics_of, sanitise_key  # noqa: E402

SELECT = ["AK-PERF-001", "AK-BAL-001", "AK-GOV-003"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A SQLite store holding one classifier in pt2 format (registered as clf/1) and one pickled.

    MLflow puts a SQLite store's artifacts in ./mlruns of the working folder: the module works in
    the store's temporary folder, so nothing is written into the checkout.
    """
    import torch
    from torch import nn

    folder = tmp_path_factory.mktemp("mlflow_store")
    cwd = os.getcwd()
    os.chdir(folder)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=y)
    df.iloc[:200].to_csv(folder / "train.csv", index=False)
    df.iloc[200:].to_csv(folder / "test.csv", index=False)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.Adam(net.parameters(), 0.05)
    xt, yt = torch.tensor(x[:200]), torch.tensor(y[:200])
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run() as run:
        mlflow.pytorch.log_model(net, name="model", input_example=x[:5], registered_model_name="clf")
        mlflow.pytorch.log_model(net, name="pickled", serialization_format="pickle")
    try:
        yield {"uri": uri, "folder": str(folder), "run_id": run.info.run_id}
    finally:
        os.chdir(cwd)


def _spec(store: dict[str, str], tmp: Path, **extra: object) -> Path:
    folder = Path(store["folder"])
    doc: dict[str, object] = {
        "version": 1, "name": "mlflow-audit",
        "data": {"label": "y", "splits": {"train": str(folder / "train.csv"), "test": str(folder / "test.csv")}},
        "model": {"mlflow": "models:/clf/1"}, "checks": {"select": SELECT}, "report": {"formats": ["json"]},
    }  # fmt: skip
    for key, value in extra.items():
        doc[key] = (
            {**doc[key], **value} if isinstance(value, dict) and isinstance(doc.get(key), dict) else value
        )  # type: ignore[dict-item]
    path = tmp / "audit.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()  # what the test itself printed (MLflow's download progress) is not the run's
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _assert_run_matches_bundle(client: MlflowClient, run_id: str, bundle: Path) -> None:
    """Every logged value against the bundle: params, metrics and CI bounds, tags, artifacts."""
    doc = json.loads((bundle / "results.json").read_text())
    data = client.get_run(run_id).data
    assert data.params["auditkit.spec_sha256"] == doc["run"]["spec_sha256"]
    assert data.params["auditkit.seed"] == str(doc["run"]["seed"])
    perf = next(r for r in doc["checks"] if r["id"] == "AK-PERF-001")
    for name, value in perf["params"].items():
        expected = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        assert data.params[f"AK-PERF-001.{name}"] == expected
    acc = next(m for m in perf["metrics"] if m["name"] == "accuracy")
    assert data.metrics["AK-PERF-001.accuracy"] == pytest.approx(acc["value"])
    assert data.metrics["AK-PERF-001.accuracy.ci_low"] == pytest.approx(acc["ci"][0])
    assert data.metrics["AK-PERF-001.accuracy.ci_high"] == pytest.approx(acc["ci"][1])
    assert data.metrics["AK-PERF-001.accuracy.ci_low"] < data.metrics["AK-PERF-001.accuracy"]
    assert data.tags["auditkit.results.gate"] == doc["gate"]["decision"]
    assert data.tags["auditkit.exit_code"] == str(doc["gate"]["exit_code"])
    assert data.tags["auditkit.report_id"] == doc["run"]["id"]
    assert (
        data.tags["auditkit.manifest_sha256"]
        == hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    )
    logged = {a.path for a in client.list_artifacts(run_id, "auditkit")}
    assert {"auditkit/results.json", "auditkit/manifest.json"} <= logged
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="auditkit/results.json",
                                                tracking_uri=client.tracking_uri)  # fmt: skip
    assert Path(local).read_bytes() == (bundle / "results.json").read_bytes()


def test_keys_are_what_mlflow_accepts() -> None:
    """Sanitised names pass MLflow's own validators; distinct names that collide stay distinct."""
    for raw in ["AK-X-001.acc@k=5", "a/../b", "../x", "ü ß:é", "/lead", "x" * 400, "a//b", "."]:
        key = sanitise_key(raw)
        assert validate_param_and_metric_name(key) and not path_not_unique(key), (raw, key)
        assert len(key) <= 250
    doc = {"checks": [{"id": "AK-X-001", "metrics": [
        {"name": "a@b", "value": 1.0, "ci": [0.5, 1.5]}, {"name": "a#b", "value": 2.0, "ci": None},
        {"name": "none", "value": None, "ci": None}]}]}  # fmt: skip
    metrics = metrics_of(doc)
    assert metrics == {"AK-X-001.a_b": 1.0, "AK-X-001.a_b.ci_low": 0.5, "AK-X-001.a_b.ci_high": 1.5,
                       "AK-X-001.a_b_2": 2.0}  # fmt: skip


def test_credentials_never_reach_results_or_messages(tmp_path: Path) -> None:
    from auditkit.errors import InputError
    from auditkit.integrations.mlflow_io import prepare, redact

    assert redact("https://alice:s3cret@mlflow.example:5000/x?y=1") == "https://mlflow.example:5000/x?y=1"
    assert redact("sqlite:///a/b.db") == "sqlite:///a/b.db"
    dead = f"http://alice:s3cret@127.0.0.1:{_free_port()}"
    with pytest.raises(InputError) as err:
        prepare(None, cli_uri=dead, optional=False, default_experiment="x")
    assert "s3cret" not in str(err.value) and "127.0.0.1" in str(err.value)
    tracker = prepare(None, cli_uri=dead, optional=True, default_experiment="x")
    assert tracker is not None and "s3cret" not in json.dumps(tracker.record())
    assert prepare(None, cli_uri=None, optional=True, default_experiment="x") is None  # nothing asked: off


def test_the_evaluator_names_an_unknown_config_key(tmp_path: Path) -> None:
    from auditkit.errors import InputError
    from auditkit.integrations.mlflow_evaluator import build_spec

    with pytest.raises(InputError, match="unknown evaluator_config key 'sepc'"):
        build_spec(tmp_path, None, "models:/clf/1", {"sepc": {}}, "0" * 32)


def test_the_evaluator_takes_a_regressor_and_declares_the_task(tmp_path: Path) -> None:
    """model_type="regressor" was refused by can_evaluate (the evaluator had no regressor mode)."""
    from types import SimpleNamespace

    from auditkit.integrations.mlflow_evaluator import AuditkitEvaluator, build_spec

    assert AuditkitEvaluator.can_evaluate(model_type="regressor", evaluator_config={})
    assert not AuditkitEvaluator.can_evaluate(model_type="question-answering", evaluator_config={})
    data = SimpleNamespace(features_data=pd.DataFrame({"a": [1.0, 2.0, 3.0]}), feature_names=["a"],
                           labels_data=[1.5, 2.5, 3.5], targets_name="price")  # fmt: skip
    spec = build_spec(tmp_path, data, "models:/reg/1", {}, "0" * 32, "regressor")
    assert spec["model"] == {"mlflow": "models:/reg/1", "task": "regression"}
    assert pd.read_csv(spec["data"]["splits"]["test"])["price"].tolist() == [1.5, 2.5, 3.5]
    assert "task" not in build_spec(tmp_path, data, "models:/clf/1", {}, "0" * 32, "classifier")["model"]


def test_an_audit_of_a_registered_model_is_logged_and_reads_back(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(store, tmp_path, report={"mlflow": {"experiment": "audits", "run_name": "release 1"}})
    code, out, err = _run(["run", str(spec), "-o", str(tmp_path / "out"), "--mlflow", store["uri"]], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    model = doc["subject"]["model"]
    assert model["model_uri"] == "models:/clf/1" and model["format"] == "mlflow.pytorch/pt2"
    assert model["mlflow_version"] == mlflow.__version__ and model["safe_to_load"] is True
    assert doc["run"]["mlflow"]["status"] == "reachable"
    client = MlflowClient(store["uri"])
    exp = client.get_experiment_by_name("audits")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1 and runs[0].info.run_name == "release 1" and runs[0].info.status == "FINISHED"
    assert f"mlflow: run {runs[0].info.run_id}" in out
    _assert_run_matches_bundle(client, runs[0].info.run_id, tmp_path / "out")
    # a second run: a second MLflow run, and the same results.json (times and argv aside)
    code, _out, err = _run(
        ["run", str(spec), "-o", str(tmp_path / "again"), "--mlflow", store["uri"], "-q"], capsys
    )
    assert code == 0, err
    assert len(client.search_runs([exp.experiment_id])) == 2
    assert _stable(tmp_path / "out") == _stable(tmp_path / "again")


def _stable(bundle: Path) -> dict[str, object]:
    doc = json.loads((bundle / "results.json").read_text())
    for key in ("started_at", "finished_at", "duration_s", "argv"):
        doc["run"].pop(key)
    for rec in doc["checks"]:
        rec.pop("duration_s")
    return doc


def test_a_pt2_model_runs_no_code_so_no_code_allows_it(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITKIT_ALLOW_PATHS", store["folder"])  # the data live beside the store
    spec = _spec(store, tmp_path, report={"mlflow": {"tracking_uri": store["uri"]}})
    code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "out"), "-q", "--no-code"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["run"]["no_code"] is True and doc["subject"]["model"]["format"] == "mlflow.pytorch/pt2"


def test_nested_under_a_given_run(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(store["uri"])
    parent = client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id
    spec = _spec(store, tmp_path, report={"mlflow": {"tracking_uri": store["uri"], "run_id": parent}})
    code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "out"), "-q"], capsys)
    assert code == 0, err
    children = client.search_runs([client.get_run(parent).info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent}'")  # fmt: skip
    assert len(children) == 1
    _assert_run_matches_bundle(client, children[0].info.run_id, tmp_path / "out")
    missing = _spec(store, tmp_path, report={"mlflow": {"tracking_uri": store["uri"], "run_id": "0" * 32}})
    code, _out, err = _run(["run", str(missing), "-o", str(tmp_path / "out2")], capsys)
    assert (
        code == 2
        and err.startswith("auditkit: error: mlflow: report.mlflow.run_id: no run")
        and len(err.strip().splitlines()) == 1
    )
    assert not (tmp_path / "out2").exists()


def test_an_unreachable_server_is_exit_2_before_checks_unless_optional(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    spec = _spec(store, tmp_path)
    code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "out"), f"--mlflow={dead}"], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"auditkit: error: mlflow: cannot reach the tracking store {dead}"
    )
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "out"), f"--mlflow={dead}", "--mlflow-optional"],
                           capsys)  # fmt: skip
    assert code == 0, err
    rec = json.loads((tmp_path / "out" / "results.json").read_text())["run"]["mlflow"]
    assert rec["status"] == "unreachable" and dead in rec["error"] and rec["optional"] is True
    assert "not logged (--mlflow-optional)" in err


def test_a_pickled_mlflow_model_needs_allow_pickle_and_is_refused_under_no_code(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pickled = {"mlflow": f"runs:/{store['run_id']}/pickled"}
    spec = _spec(store, tmp_path, model=pickled, report={"mlflow": {"tracking_uri": store["uri"]}})
    code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "out")], capsys)
    assert (
        code == 2 and '"pickle" format' in err and "allow_pickle" in err and not (tmp_path / "out").exists()
    )
    spec = _spec(
        store,
        tmp_path,
        model={**pickled, "allow_pickle": True},
        report={"mlflow": {"tracking_uri": store["uri"]}},
    )
    code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "nc"), "--no-code"], capsys)
    assert code == 2 and err.startswith("auditkit: error: model.allow_pickle: code is forbidden by --no-code")
    code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "out"), "-q"], capsys)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert (
        doc["subject"]["model"]["format"] == "mlflow.pytorch/pickle"
        and doc["subject"]["model"]["safe_to_load"] is False
    )
    gov = next(r for r in doc["checks"] if r["id"] == "AK-GOV-003")
    assert gov["status"] == "failed" and code == 1  # an unpickled artefact is a high finding


def test_a_model_uri_that_is_not_one_is_a_spec_error(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(store, tmp_path, model={"mlflow": "s3://bucket/model"})
    code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and err.startswith("auditkit: error: model.mlflow:") and "models:/NAME/VERSION" in err


def test_mlflow_evaluate_with_the_auditkit_evaluator(store: dict[str, str], tmp_path: Path) -> None:
    folder = Path(store["folder"])
    mlflow.set_tracking_uri(store["uri"])
    test = pd.read_csv(folder / "test.csv")
    config = {"auditkit": {"train": pd.read_csv(folder / "train.csv"), "output": str(tmp_path / "bundle"),
                           "spec": {"checks": {"select": SELECT}}}}  # fmt: skip
    with mlflow.start_run() as run:
        result = mlflow.evaluate("models:/clf/1", test, targets="y", model_type="classifier",
                                 evaluators=["auditkit"], evaluator_config=config)  # fmt: skip
    client = MlflowClient(store["uri"])
    _assert_run_matches_bundle(client, run.info.run_id, tmp_path / "bundle")
    assert (
        result.metrics["AK-PERF-001.accuracy"]
        == client.get_run(run.info.run_id).data.metrics["AK-PERF-001.accuracy"]
    )


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def test_a_real_mlflow_server(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mlflow server` on 127.0.0.1 with a free port: log an audit over HTTP, read it back."""
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "art")]  # fmt: skip
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": ""}
    )
    try:
        for _ in range(240):  # bounded (about 2 min): a server that never answers fails the test
            if _healthy(uri):
                break
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer /health in 240 tries")
        spec = _spec(
            store, tmp_path, report={"mlflow": {"tracking_uri": store["uri"], "experiment": "served"}}
        )
        code, _out, err = _run(["run", str(spec), "-o", str(tmp_path / "out"), "--mlflow", uri], capsys)
        assert code == 0, err
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("served").experiment_id])
        assert len(runs) == 1
        _assert_run_matches_bundle(client, runs[0].info.run_id, tmp_path / "out")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_python_api_without_a_bundle_logs_results_json(store: dict[str, str], tmp_path: Path) -> None:
    from auditkit import Overrides, run_audit
    from auditkit.results.document import dumps

    spec = _spec(store, tmp_path)
    off = run_audit(spec)
    assert off.mlflow is None  # type: ignore[attr-defined]
    results = run_audit(spec, overrides=Overrides(mlflow=store["uri"]))
    logged = results.mlflow  # type: ignore[attr-defined]
    client = MlflowClient(store["uri"])
    run = client.get_run(logged["run_id"])
    assert run.data.tags["auditkit.report_id"] == results.doc["run"]["id"]
    assert "auditkit.manifest_sha256" not in run.data.tags  # no bundle, no manifest
    local = mlflow.artifacts.download_artifacts(run_id=logged["run_id"], artifact_path="auditkit/results.json",
                                                tracking_uri=store["uri"])  # fmt: skip
    assert Path(local).read_text(encoding="utf-8") == dumps(results.doc)
