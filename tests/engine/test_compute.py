"""The compute engine: the same results for 1, 2 workers and Ray; worker faults; spec and CLI plumbing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from auditkit.engine import _probes, compute
from auditkit.engine.compute import ComputeConfig, InlineExecutor, LocalPool, WorkerLost
from auditkit.errors import InputError

SHARED = np.arange(1000, dtype=float)
ITEMS = list(range(9))
SEEDS = [1000 + i for i in ITEMS]


def expected() -> list[float]:
    # An independent computation: the probe's formula written out here.
    return [
        float(SHARED.sum() * i + np.random.default_rng(s).normal(size=64).sum())
        for i, s in zip(ITEMS, SEEDS, strict=True)
    ]


def test_inline_matches_the_formula() -> None:
    assert InlineExecutor().map(_probes.noisy_sum, ITEMS, seeds=SEEDS, shared=SHARED) == expected()


def test_two_local_workers_same_results_in_item_order_and_really_parallel() -> None:
    pool = LocalPool(2)
    assert pool.map(_probes.noisy_sum, ITEMS, seeds=SEEDS, shared=SHARED) == expected()
    pids = set(pool.map(_probes.pid_of, list(range(8)), seeds=list(range(8))))
    assert os.getpid() not in pids and len(pids) >= 1


def test_ray_same_results(ray_cluster: object) -> None:
    ex = compute.make_executor(ComputeConfig(kind="ray"))
    assert ex.kind == "ray" and ex.workers == 2
    assert ex.map(_probes.noisy_sum, ITEMS, seeds=SEEDS, shared=SHARED) == expected()
    assert ex.describe()["kind"] == "ray"


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_the_payload_is_deserialised_once_per_worker_per_map(
    engine: str, request: pytest.FixtureRequest
) -> None:
    if engine == "ray":
        request.getfixturevalue("ray_cluster")
        ex: compute.Executor = compute.make_executor(ComputeConfig(kind="ray"))
    else:
        ex = LocalPool(2)
    seen = ex.map(_probes.payload_identity, list(range(12)), seeds=list(range(12)), shared=SHARED)
    per_worker: dict[int, set[int]] = {}
    for pid, ident in seen:
        per_worker.setdefault(pid, set()).add(ident)
    assert os.getpid() not in per_worker
    assert all(len(ids) == 1 for ids in per_worker.values()), per_worker


def test_a_worker_killed_once_is_retried(tmp_path: Path) -> None:
    items = [(str(tmp_path / "marker"), 7), ("", 8), ("", 9)]
    assert LocalPool(2).map(_probes.die_once, items, seeds=[0, 1, 2]) == [7, 8, 9]
    assert (tmp_path / "marker").exists()


def test_a_worker_that_dies_twice_is_a_worker_lost_error_naming_the_task() -> None:
    with pytest.raises(WorkerLost, match=r"task 1 of 3 .*died twice"):
        LocalPool(2).map(_probes.always_die, [0, -1, 2], seeds=[0, 1, 2])
    assert LocalPool(2).map(_probes.always_die, [0, 1, 2], seeds=[0, 1, 2]) == [0, 1, 2]  # the pool recovers


def test_a_task_exception_is_raised_as_is() -> None:
    with pytest.raises(ValueError, match="task 1 fails on purpose"):
        LocalPool(2).map(_probes.raise_value_error, [0, 1, 2], seeds=[0, 1, 2])


def test_ray_worker_death_is_worker_lost(ray_cluster: object) -> None:
    ex = compute.make_executor(ComputeConfig(kind="ray"))
    with pytest.raises(WorkerLost, match="task 1 of 2"):
        ex.map(_probes.always_die, [0, -1], seeds=[0, 1])


def test_unreachable_ray_address_is_an_input_error_before_anything() -> None:
    with pytest.raises(InputError, match="unreachable"):
        compute.make_executor(ComputeConfig(kind="ray", address="127.0.0.1:9"))


def test_workers_one_runs_inline_and_spec_overrides() -> None:
    from auditkit.spec.schema import ComputeSpec

    assert isinstance(compute.make_executor(ComputeConfig(workers=1)), InlineExecutor)
    cfg = compute.config_from(ComputeSpec(kind="local", workers=3), kind="ray", address="auto")
    assert (cfg.kind, cfg.workers, cfg.address) == ("ray", 3, "auto")
    with pytest.raises(Exception, match="greater than or equal to 1"):
        ComputeSpec(workers=0)


SPEC = """
name: compute-demo
seed: 3
data:
  splits: {train: train.csv, test: test.csv}
  label: y
checks:
  select: [AK-DQ-001]
"""


def _spec(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        x = rng.normal(size=(60, 3))
        rows = ["a,b,c,y"] + [f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{int(r[0] > 0)}" for r in x]
        (tmp_path / f"{name}.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "audit.yaml"
    path.write_text(SPEC)
    return path


def test_cli_unreachable_ray_address_exits_2_with_one_line(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    cmd = [sys.executable, "-m", "auditkit.cli", "run", str(spec), "-o", str(tmp_path / "out"), "-q",
           "--compute-engine", "ray", "--ray-address", "127.0.0.1:9"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "unreachable" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_results_record_the_engine(tmp_path: Path) -> None:
    from auditkit.engine.audit import Overrides, run_audit

    res = run_audit(_spec(tmp_path), overrides=Overrides(workers=2))
    assert res.doc["environment"]["compute"] == {
        "kind": "local",
        "workers": 2,
        "devices": ["cpu"],
        "address": None,
    }


def test_sigterm_stops_the_workers(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        "import signal, sys\n"
        "from auditkit.engine.compute import LocalPool\n"
        "from auditkit.engine import _probes\n"
        "def stop(*a): raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "if __name__ == '__main__':\n"
        "    print('start', flush=True)\n"
        "    LocalPool(2).map(_probes.sleep_then, [60] * 4, seeds=[0, 1, 2, 3])\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "start"
    children: list[str] = []
    for _ in range(600):  # wait until the workers run (no time limit on the test: polls)
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        children = out
        if len(children) >= 2:
            break
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)

    def gone(pid: str) -> bool:
        try:
            return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        except FileNotFoundError:
            return True

    # a killed worker may take a moment to be reaped on a busy machine: poll (bounded), then judge
    for _ in range(300):
        if all(gone(pid) for pid in children):
            break
        time.sleep(0.1)
    assert [pid for pid in children if not gone(pid)] == []


SHARDED_CHECK = '''
import numpy as np
from auditkit import Metric, Outcome, check
from auditkit.engine import _probes


@check(id="LOCAL-SHARD-001", title="Sharded metric", requires=("train",))
def sharded(ctx, /, *, shards: int = 6):
    """A metric computed in shards through ctx.map.

    Parameters
    ----------
    shards: how many shards.
    """
    values = ctx.map(_probes.noisy_sum, list(range(shards)), shared=np.arange(50.0))
    return Outcome.from_metrics([Metric("total", float(sum(values)), threshold=-1e18, direction="higher")],
                                evidence={"values": values})


@check(id="LOCAL-SHARD-002", title="A shard that kills its worker", requires=("train",))
def dying(ctx, /):
    """Kills its worker twice: recorded error, the rest of the audit completes."""
    ctx.map(_probes.always_die, [0, -1], shared=None)
    return Outcome.from_metrics([])
'''


def _sharded_spec(tmp_path: Path) -> Path:
    spec = _spec(tmp_path)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "sharded.py").write_text(SHARDED_CHECK)
    spec.write_text(SPEC.replace("select: [AK-DQ-001]", "paths: [local]\n  select: [LOCAL-SHARD, AK-DQ-001]"))
    return spec


def _checks_without_timings(doc: dict) -> list[dict]:
    return [{k: v for k, v in rec.items() if k != "duration_s"} for rec in doc["checks"]]


def test_sharded_check_results_identical_for_1_2_workers_and_ray(tmp_path: Path, ray_cluster: object) -> None:
    from auditkit.engine.audit import Overrides, run_audit

    spec = _sharded_spec(tmp_path)
    select = ["LOCAL-SHARD-001", "AK-DQ-001"]
    docs = {
        name: run_audit(spec, overrides=Overrides(select=select, compute_engine=kind, workers=w)).doc
        for name, kind, w in [("one", "local", 1), ("two", "local", 2), ("ray", "ray", None)]
    }
    shard = {r["id"]: r for r in docs["one"]["checks"]}["LOCAL-SHARD-001"]
    seeds = [compute_seed(3, f"LOCAL-SHARD-001:{i}") for i in range(6)]
    assert shard["evidence"]["values"] == [
        _probes.noisy_sum(np.arange(50.0), i, s) for i, s in enumerate(seeds)
    ]
    for name in ("two", "ray"):
        assert _checks_without_timings(docs[name]) == _checks_without_timings(docs["one"]), name
        assert docs[name]["gate"] == docs["one"]["gate"], name
    assert [d["environment"]["compute"]["kind"] for d in docs.values()] == ["local", "local", "ray"]


def test_a_check_whose_worker_dies_twice_is_error_and_the_rest_complete(tmp_path: Path) -> None:
    from auditkit.engine.audit import Overrides, run_audit

    doc = run_audit(_sharded_spec(tmp_path), overrides=Overrides(workers=2), output=tmp_path / "out").doc
    by_id = {r["id"]: r for r in doc["checks"]}
    assert by_id["LOCAL-SHARD-002"]["status"] == "error"
    assert "died twice" in by_id["LOCAL-SHARD-002"]["error"]["message"]
    assert by_id["LOCAL-SHARD-001"]["status"] == "passed" and by_id["AK-DQ-001"]["status"] != "error"
    assert (tmp_path / "out" / "results.json").exists()


def compute_seed(run_seed: int, key: str) -> int:
    from auditkit.engine.context import derive_seed

    return derive_seed(run_seed, key)


def _cancer_artifacts() -> object:
    from sklearn.datasets import load_breast_cancer

    from auditkit.testing import make_artifacts

    df = load_breast_cancer(as_frame=True).frame
    df.columns = [c.replace(" ", "_") for c in df.columns]
    df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    spec = {
        "model": {"builtin": "mlp", "device": "cpu"},
        "training": {"epochs": 3, "batch_size": 64, "seeds": [0, 1], "optimizer": {"name": "AdamW", "lr": 0.01},
                     "compare": [{"name": "SGD", "lr": 0.1}, {"name": "Adam", "lr": 0.01}]},
    }  # fmt: skip
    return make_artifacts({"train": df.iloc[:300], "test": df.iloc[300:]}, label="target", spec=spec)


CLOCK = ("wall_time_s", "samples_per_s", "peak_memory_bytes", "peak_memory_kind")


def _runs_facts(executor: compute.Executor) -> list[tuple]:
    import torch

    arts = _cancer_artifacts()
    with compute.use(executor):
        runs = list(arts.training_runs()) + [r for g in arts.compare_runs().values() for r in g]
    facts = []
    for r in runs:
        summary = {k: v for k, v in r.summary().items() if k not in CLOCK}
        weights = [t.detach().numpy().tobytes() for t in r.module.state_dict().values() if torch.is_tensor(t)]
        facts.append((summary, r.step_loss, r.val_metric, weights))
    return facts


def test_training_runs_identical_inline_two_workers_and_ray(ray_cluster: object) -> None:
    inline = _runs_facts(InlineExecutor())
    assert [f[0]["config"] for f in inline] == [
        "main",
        "main",
        "compare:0",
        "compare:0",
        "compare:1",
        "compare:1",
    ]
    assert [f[0]["seed"] for f in inline] == [0, 1, 0, 1, 0, 1]
    assert _runs_facts(LocalPool(2)) == inline
    assert _runs_facts(compute.make_executor(ComputeConfig(kind="ray"))) == inline


def test_report_line_and_results_schema(tmp_path: Path) -> None:
    import json

    import jsonschema

    from auditkit.engine.audit import Overrides, run_audit
    from auditkit.render.common import compute_text

    doc = run_audit(_spec(tmp_path), overrides=Overrides(workers=2)).doc
    schema = json.loads((Path(compute.__file__).parents[1] / "resources" / "results.schema.json").read_text())
    jsonschema.validate(json.loads(json.dumps(doc)), schema)
    bad = json.loads(json.dumps(doc))
    bad["environment"]["compute"]["kind"] = "spark"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert compute_text(doc["environment"]["compute"]) == "local, 2 worker(s), devices cpu"
    ray_line = {"kind": "ray", "workers": 8, "devices": ["gpu:0"], "address": "auto", "note": "x"}
    assert compute_text(ray_line) == "ray, 8 worker(s), devices gpu:0, address auto (x)"
