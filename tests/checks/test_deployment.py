"""AK-DEPLOY-001/002 on real artifacts built here from a breast-cancer MLP: a correct ONNX export
(onnxruntime), one exported with a wrong normalisation constant, dynamic-int8 TorchScript, and the
int8 / bfloat16 / float16 versions auditkit derives."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import _deploy_fixtures as F  # noqa: E402

from auditkit.testing import check_contract, make_artifacts, run_check  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("deploy")
    train, test = F.breast_cancer_splits()
    model = F.train_model(train)
    d = train.shape[1] - 2
    bad = F.wrong_normalisation(model)
    return {
        "root": root, "train": train, "test": test, "model": model, "bad": bad,
        "good_onnx": F.export_onnx(model, root / "model.onnx", d),
        "bad_onnx": F.export_onnx(bad, root / "model.badnorm.onnx", d),
        "int8_ts": F.int8_torchscript(model, root / "model.int8.pt"),
    }  # fmt: skip


def _arts(b: dict[str, Any], artifacts: list[dict[str, Any]], **deployment: Any) -> Any:
    spec = {"deployment": {"artifacts": artifacts, **deployment}} if artifacts else {}
    return make_artifacts(
        {"train": b["train"], "test": b["test"]}, label="y", id="patient", model=b["model"], spec=spec
    )


ALL = [
    {"name": "onnx", "onnx": "good_onnx"}, {"name": "onnx-badnorm", "onnx": "bad_onnx"},
    {"name": "ts-int8", "torchscript": "int8_ts"}, {"name": "dyn-int8", "quantize": "dynamic_int8"},
    {"name": "bf16", "dtype": "bfloat16"}, {"name": "fp16", "dtype": "float16"},
]  # fmt: skip


def _resolve(b: dict[str, Any], arts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (str(b[v]) if k in ("onnx", "torchscript") else v) for k, v in a.items()} for a in arts]


@pytest.fixture(scope="module")
def parity(built: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from auditkit.checks.deployment import deployment_parity

    work = tmp_path_factory.mktemp("parity-out")
    arts = _arts(built, _resolve(built, ALL))
    rec = run_check(deployment_parity, arts, workdir=work)
    rec["_workdir"] = work
    rec["_arts"] = arts
    return rec


def _metric(rec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in rec["metrics"] if m["name"] == name)


def _numpy_logits(model: Any, x: np.ndarray) -> np.ndarray:
    """The MLP's forward pass written in NumPy from its weights: independent of torch and onnxruntime."""
    sd = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    z = (x.astype(np.float64) - sd["mean"]) / sd["std"]
    h = np.maximum(z @ sd["body.0.weight"].T + sd["body.0.bias"], 0.0)
    return np.asarray(h @ sd["body.2.weight"].T + sd["body.2.bias"])


def test_correct_export_passes_and_the_wrong_normalisation_fails(parity: dict[str, Any]) -> None:
    assert parity["status"] == "failed", parity["summary"]
    good = _metric(parity, "agreement[onnx, test]")
    bad = _metric(parity, "agreement[onnx-badnorm, test]")
    assert good["value"] == 1.0 and good["passed"] is True
    assert _metric(parity, "accuracy_drop[onnx, test]")["passed"] is True
    assert _metric(parity, "max_probability_difference[onnx, test]")["value"] < 1e-5
    assert bad["value"] < 0.99 and bad["passed"] is False
    keys = {f["key"] for f in parity["findings"] if f["severity"] != "info"}
    assert "agreement[onnx-badnorm, test]" in keys
    assert not any(k.startswith(("agreement[onnx,", "accuracy_drop[onnx,")) for k in keys)


def test_agreement_equals_an_independent_numpy_computation(
    built: dict[str, Any], parity: dict[str, Any]
) -> None:
    x = built["test"].drop(columns=["patient", "y"]).to_numpy(np.float32)
    audited = _numpy_logits(built["model"], x).argmax(1)
    bad = _numpy_logits(built["bad"], x).argmax(1)
    flips = np.flatnonzero(audited != bad)
    assert len(flips) > 0
    assert _metric(parity, "agreement[onnx-badnorm, test]")["value"] == pytest.approx(
        1 - len(flips) / len(x), abs=1e-12
    )
    rows = list(csv.DictReader((parity["_workdir"] / "flips.csv").open()))
    listed = [r for r in rows if r["artifact"] == "onnx-badnorm"]
    assert [r["id"] for r in listed] == list(built["test"]["patient"].iloc[flips])
    assert all(int(r["audited prediction"]) == audited[int(r["row"])] for r in listed)
    y = built["test"]["y"].to_numpy()
    drop = float((audited == y).mean() - (bad == y).mean())
    assert _metric(parity, "accuracy_drop[onnx-badnorm, test]")["value"] == pytest.approx(drop, abs=1e-12)


def test_robustness_parity_methods_and_the_audited_scores_match_adv_checks(
    built: dict[str, Any], parity: dict[str, Any]
) -> None:
    from auditkit.checks.adversarial import white_box_evasion
    from auditkit.checks.corruption import natural_corruptions

    rows = {r[0]: r for r in parity["evidence"]["adversarial and corruption robustness by artifact"]["rows"]}
    assert rows["bf16"][1] == "white-box"  # gradients reach a bfloat16 module's input
    assert (
        rows["onnx"][1] == "transfer"
        and rows["ts-int8"][1] == "transfer"
        and rows["dyn-int8"][1] == "transfer"
    )
    assert rows["onnx"][6] == 0.0 and rows["onnx"][9] == 0.0  # identical predictions, identical robustness
    # The audited model's numbers are AK-ADV-001's and AK-ADV-003's, recomputed independently here.
    adv = run_check(white_box_evasion, _arts(built, []))
    cor = run_check(natural_corruptions, _arts(built, []))
    bf16 = _metric(parity, "robust_accuracy_drop[bf16]")["details"]
    assert bf16["audited"] == _metric(adv, "robust_accuracy_inf")["value"]
    assert bf16["epsilon"] == _metric(adv, "robust_accuracy_inf")["details"]["epsilon"]
    onnx = _metric(parity, "corruption_error_increase[onnx]")["details"]
    assert onnx["audited"] == pytest.approx(
        _metric(cor, "mean_relative_corruption_error")["value"], abs=1e-12
    )


def test_int8_is_measured_by_transfer_and_float16_needs_cuda(parity: dict[str, Any]) -> None:
    import torch

    facts = {r[0]: r for r in parity["evidence"]["artifacts"]["rows"]}
    assert "no input gradient" in facts["ts-int8"][6]
    assert "quantize_dynamic" in facts["dyn-int8"][6]
    if not torch.cuda.is_available():
        notes = [f for f in parity["findings"] if f["key"] == "unavailable:fp16"]
        assert notes and "CUDA" in notes[0]["message"] and notes[0]["severity"] == "info"


def test_dynamic_int8_and_its_torchscript_agree(parity: dict[str, Any]) -> None:
    a = _metric(parity, "agreement[ts-int8, test]")["value"]
    b = _metric(parity, "agreement[dyn-int8, test]")["value"]
    assert a == b  # the same quantization, once built by the test, once derived by auditkit


def test_cost_gates_only_on_declared_budgets(built: dict[str, Any]) -> None:
    from auditkit.checks.deployment import inference_cost

    arts = _resolve(built, ALL[:1] + ALL[3:4])
    free = run_check(
        inference_cost, _arts(built, arts, batch_sizes=[1, 4]), params={"repeats": 20, "warmup": 2}
    )
    assert free["status"] == "passed", free["summary"]
    assert all(m["threshold"] is None for m in free["metrics"])
    lat = {(r[0], r[1]): r for r in free["evidence"]["timings"]["latency (ms) and throughput"]["rows"]}
    assert set(lat) == {(n, b) for n in ("audited model", "onnx", "dyn-int8") for b in (1, 4)}
    for r in lat.values():
        p50, p95, p99 = r[3], r[6], r[9]
        assert 0 < p50 <= p95 <= p99 and r[4] <= p50 <= r[5] and r[7] <= p95 <= r[8]
        assert r[2] >= 1  # thread count recorded
    assert all(
        (m["details"] or {}).get("timing")
        for m in free["metrics"]
        if m["name"].startswith(("latency", "peak"))
    )
    size = {m["name"]: m["value"] for m in free["metrics"] if m["name"].startswith("size_bytes")}
    assert size["size_bytes[onnx]"] == built["good_onnx"].stat().st_size
    # A budget no computer meets (one nanosecond) fails; an unbounded one passes. No wall-clock guess.
    tight = run_check(inference_cost, _arts(built, arts, batch_sizes=[1], latency_budget_ms={"p95": 1e-6}),
                      params={"repeats": 20, "warmup": 2})  # fmt: skip
    assert tight["status"] == "failed"
    assert {f["key"] for f in tight["findings"] if f["severity"] != "info"} == {
        "latency_p95_ms[onnx, b=1]",
        "latency_p95_ms[dyn-int8, b=1]",
    }  # the audited model is the reference
    loose = run_check(inference_cost, _arts(built, arts, batch_sizes=[1], latency_budget_ms={"p95": 1e9},
                                            memory_budget_mb=1e9), params={"repeats": 20, "warmup": 2})  # fmt: skip
    assert loose["status"] == "passed"
    assert any(m["threshold"] == 1e9 and m["passed"] for m in loose["metrics"])


def test_pareto_front() -> None:
    from auditkit.checks.deployment import _pareto

    pts = [("a", 0.95, 1.0, 100), ("b", 0.95, 0.5, 50), ("c", 0.90, 0.1, 200), ("d", 0.94, 2.0, 300)]
    assert _pareto(pts) == [False, True, True, False]


def test_contract_and_determinism_with_timings_left_out(built: dict[str, Any]) -> None:
    from auditkit.checks.deployment import deployment_parity, inference_cost

    arts = _resolve(built, ALL[:1])
    check_contract(deployment_parity, lambda: _arts(built, arts))
    check_contract(inference_cost, lambda: _arts(built, arts, batch_sizes=[1]))


# ------------------------------------------------------------------------------------------------
# Through audit.yaml: signatures, the manifest, spec errors
# ------------------------------------------------------------------------------------------------
def _project(b: dict[str, Any], tmp: Path, artifacts: str) -> Path:
    from safetensors.torch import save_file

    b["train"].to_csv(tmp / "train.csv", index=False)
    b["test"].to_csv(tmp / "test.csv", index=False)
    save_file({k: v.contiguous() for k, v in b["model"].state_dict().items()}, str(tmp / "model.safetensors"))
    spec = tmp / "audit.yaml"
    spec.write_text(
        "version: 1\nname: deploy-test\ndata:\n  label: y\n  id: patient\n  splits: {train: train.csv, test: test.csv}\n"
        "model:\n  factory: _deploy_fixtures:make_net\n  weights: model.safetensors\n"
        "checks:\n  select: [AK-DEPLOY]\n  params: {AK-DEPLOY-001: {robustness: false}, AK-DEPLOY-002: {repeats: 10}}\n"
        f"report: {{formats: [json]}}\ndeployment:\n  batch_sizes: [1]\n  artifacts:\n{artifacts}"
    )  # fmt: skip
    return spec


def _cli(args: list[str]) -> int:
    from auditkit.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def test_artifact_files_are_hashed_in_the_manifest(built: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    shutil.copy(built["good_onnx"], tmp_path / "model.onnx")
    spec = _project(
        built, tmp_path, "    - {name: onnx, onnx: model.onnx}\n    - {name: bf16, dtype: bfloat16}\n"
    )
    out = tmp_path / "out"
    assert _cli(["run", str(spec), "-o", str(out), "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    entry = next(e for e in manifest["inputs"] if e["role"] == "deployment.artifacts.0.onnx")
    from auditkit.inputs.data import file_sha256

    assert entry["sha256"] == file_sha256(tmp_path / "model.onnx") and entry["path"] == "model.onnx"
    assert (out / "artifacts" / "AK-DEPLOY-001" / "flips.csv").is_file()
    subject = json.loads((out / "results.json").read_text())["subject"]["deployment"]
    assert subject == [{"name": "onnx", "format": "onnx", "path": "model.onnx", "sha256": entry["sha256"]},
                       {"name": "bf16", "format": "dtype", "derived": "bfloat16"}]  # fmt: skip
    assert _cli(["verify", str(out)]) == 0
    with (tmp_path / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    from auditkit.results.bundle import verify

    assert any("deployment.artifacts.0.onnx" in p for p in verify(out))


def test_signature_mismatch_is_exit_2_showing_both(
    built: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    other = F.net(np.zeros(29), np.ones(29))
    torch.onnx.export(other, (torch.zeros(2, 29),), str(tmp_path / "narrow.onnx"), input_names=["features"],
                      output_names=["logits"], dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
                      dynamo=False)  # fmt: skip
    spec = _project(built, tmp_path, "    - {name: narrow, onnx: narrow.onnx}\n")
    assert _cli(["run", str(spec), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("auditkit: error: deployment.artifacts.0 (narrow)")
    assert "audited model float32[N, 30] → float32[N, 2]" in err[0]
    assert "features: float32[N, 29] → logits: float32[N, 2]" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("artifacts", "message"),
    [
        (
            "    - {name: a, onnx: missing.onnx}\n",
            "deployment.artifacts.0.onnx: file not found: missing.onnx",
        ),
        (
            "    - {name: a, quantize: dynamic_int8, dtype: bfloat16}\n",
            "exactly one of: onnx, torchscript, quantize, dtype",
        ),
        (
            "    - {name: a, quantize: dynamic_int8}\n    - {name: a, dtype: bfloat16}\n",
            "unique (repeated: a)",
        ),
        ("    - {name: a, quantize: static_int8}\n", "deployment.artifacts.0.quantize"),
    ],
)
def test_spec_errors_name_their_place(built: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      artifacts: str, message: str) -> None:  # fmt: skip
    spec = _project(built, tmp_path, artifacts)
    assert _cli(["run", str(spec), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_deployment_without_a_model_is_a_spec_error(tmp_path: Path) -> None:
    from auditkit.errors import SpecError
    from auditkit.spec.schema import load_spec

    (tmp_path / "a.yaml").write_text("version: 1\nname: x\ncard: {license: MIT}\n"
                                     "deployment: {artifacts: [{name: a, quantize: dynamic_int8}]}\n")  # fmt: skip
    with pytest.raises(SpecError, match="deployment: needs a model section"):
        load_spec(tmp_path / "a.yaml")


def test_an_unreadable_onnx_file_is_one_line_exit_2(built: dict[str, Any], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf at all")
    spec = _project(built, tmp_path, "    - {name: broken, onnx: broken.onnx}\n")
    assert _cli(["run", str(spec), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deployment.artifacts.0.onnx: onnxruntime cannot load broken.onnx" in err[0]


def test_an_export_with_the_softmax_inside_is_compared_as_probabilities(built: dict[str, Any]) -> None:
    import torch
    from auditkit.checks.deployment import deployment_parity

    path = built["root"] / "softmax.onnx"
    F.export_onnx(
        torch.nn.Sequential(built["model"], torch.nn.Softmax(dim=1)), path, built["train"].shape[1] - 2
    )
    rec = run_check(deployment_parity, _arts(built, [{"name": "proba", "onnx": str(path)}]),
                    params={"robustness": False})  # fmt: skip
    assert rec["status"] == "passed", rec["summary"]
    assert _metric(rec, "max_probability_difference[proba, test]")["value"] < 1e-5
    notes = {r[0]: r[6] for r in rec["evidence"]["artifacts"]["rows"]}
    assert "probabilities" in notes["proba"]


def test_deploy_reuses_the_adversarial_and_corruption_checks_own_defaults() -> None:
    """AK-DEPLOY-001 repeats AK-ADV-001/003 from private copies of their defaults: keep them equal."""
    from auditkit.checks._attacks import WHITE_BOX_DEFAULTS
    from auditkit.checks._corruptions import CORRUPTION_DEFAULTS
    from auditkit.checks.adversarial import white_box_evasion
    from auditkit.checks.corruption import natural_corruptions

    from auditkit import check_info

    for fn, copy in ((white_box_evasion, WHITE_BOX_DEFAULTS), (natural_corruptions, CORRUPTION_DEFAULTS)):
        info = check_info(fn)
        assert info is not None
        defaults = info.defaults()
        assert {k: defaults[k] for k in copy} == copy


def test_no_robustness_check_module_imports_another_or_the_engine() -> None:
    import re
    from pathlib import Path

    import auditkit.checks as pkg

    root = Path(pkg.__file__).parent
    for name in (
        "adversarial",
        "ood",
        "corruption",
        "poisoning",
        "deployment",
        "_attacks",
        "_corruptions",
        "_deploy",
    ):
        text = (root / f"{name}.py").read_text()
        assert not re.search(
            r"auditkit\.checks\.(?!_)\w+ import|from auditkit\.(engine|inputs|spec)\b", text
        ), name
        assert "ctx.artifacts" not in text, name
