"""A spec never runs code it was not allowed to: hostile slice expressions, --no-code, pickles in .pt2.

Every hostile case asserts the exit code (2), the one-line message, that a canary file the payload
would create does not exist, and that no bundle folder was written. The factory, optimizer and
local-check modules here touch the canary when they are *imported*, so "refused" means "never
imported", not merely "not called".
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from auditkit.cli import main
from auditkit.spec import nocode

TOUCH = "import pathlib, os\npathlib.Path(os.environ['NC_CANARY']).touch()\n"
NETS = (
    TOUCH
    + """
from torch import nn

def make(d=4, k=2):
    return nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, k))
"""
)
OPT = (
    TOUCH
    + """
import torch

class Opt(torch.optim.SGD):
    pass

class Sched(torch.optim.lr_scheduler.StepLR):
    pass
"""
)
LOCAL_CHECK = (
    TOUCH
    + '''
from auditkit import Outcome, check

@check(id="NC-LOCAL-001", title="A local check", requires=("train",))
def local(ctx, /, *, x: int = 1):
    """A local check.

    Parameters
    ----------
    x: unused.
    """
    return Outcome()
'''
)


class _Touch:
    """Unpickling this creates the canary (what any hostile pickle could do instead)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.path}",))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model files built once (scripting and exporting take seconds): weights, TorchScript, .pt2."""
    import torch
    from safetensors.torch import save_file
    from torch import nn

    folder = tmp_path_factory.mktemp("nc_models")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    save_file(net.state_dict(), str(folder / "net.safetensors"))
    torch.jit.save(torch.jit.script(net), str(folder / "net_ts.pt"))
    dims = {"input": {0: torch.export.Dim("batch")}}
    torch.export.save(
        torch.export.export(net, (torch.zeros(4, 4),), dynamic_shapes=dims), str(folder / "net.pt2")
    )
    return folder


@pytest.fixture()
def project(tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(nocode.ENV, raising=False)
    canary = tmp_path / "CANARY"
    monkeypatch.setenv("NC_CANARY", str(canary))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=(x[:, 0] + x[:, 1] > 0).astype(int))
    df.iloc[:80].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[80:].to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "nc_nets").mkdir()
    (tmp_path / "nc_nets" / "__init__.py").write_text("")
    (tmp_path / "nc_nets" / "nets.py").write_text(NETS)
    (tmp_path / "nc_opt.py").write_text(OPT)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "nc_local.py").write_text(LOCAL_CHECK)
    for f in models.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_Touch(canary)))
    _plant_pickle(tmp_path / "net.pt2", tmp_path / "evil.pt2", canary)
    return tmp_path


def _plant_pickle(src: Path, dst: Path, canary: Path) -> None:
    """A torch.export archive whose sample inputs are a hostile pickle (torch.export.load falls
    back to weights_only=False when weights_only=True refuses it, and runs it)."""
    import torch

    buf = io.BytesIO()
    torch.save(_Touch(canary), buf)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if "/data/sample_inputs/" in info.filename:
                data = buf.getvalue()
            zout.writestr(info, data)


def _write(project: Path, extra: dict[str, object], name: str = "audit.yaml") -> Path:
    doc: dict[str, object] = {
        "version": 1, "name": "nc", "data": {"label": "y", "splits": {"train": "train.csv", "test": "test.csv"}},
        "report": {"formats": ["json"]}, "checks": {"select": ["AK-BAL-001"]},
    }  # fmt: skip
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}  # type: ignore[dict-item]
        else:
            doc[key] = value
    path = project / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _assert_refused(project: Path, code: int, err: str, line: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"auditkit: error: {line}"), err
    assert "Traceback" not in err
    assert not (project / "CANARY").exists(), "the payload ran"
    assert not (project / "out").exists(), "a bundle was written"


# ---------------------------------------------------------------------------------------------
# data.slices: hostile expressions are refused when the spec is read, before anything runs

CANARY = "__CANARY__"
HOSTILE_SLICES = [
    ("a.__class__.__init__.__globals__['sys'].modules['os'].system('touch __CANARY__')", "function calls"),
    ("a.__class__.__init__.__globals__['sys'] == 0", "subscripts"),
    ("__import__('os').system('touch __CANARY__') == 0", "function calls"),
    ("(lambda: __import__('os').system('touch __CANARY__'))() == 0", "function calls"),
    ("a > (lambda: __import__('os').system('touch __CANARY__'))", "lambdas"),
    ("f\"{__import__('os').system('touch __CANARY__')}\" == '0'", "f-strings"),
    ("a > @os", "'@' local variables"),
    ("import os; os.system('touch __CANARY__')", "invalid syntax"),
    ("[__import__('os').system('touch __CANARY__') for _ in [1]] == [0]", "comprehensions"),
    ("(s := __import__('os').system('touch __CANARY__')) == 0", "assignments (:=)"),
    ("{'k': 1}['k'] > 0", "subscripts"),
    ("().__class__.__bases__[0].__subclasses__() == []", "function calls"),
    ("(1).__class__ == 1", "attribute access"),
    ("a > 2**2**2**2**99", "exponent"),
    ("-" * 60 + "a > 0", "nesting deeper than"),
    ("a.isna(__import__('os').system('touch __CANARY__'))", "function calls"),
    ("a if __import__('os').system('touch __CANARY__') else b", "if-expressions"),
    ("__builtins__ == 0", "dunder name"),
]


@pytest.mark.parametrize(("expr", "what"), HOSTILE_SLICES)
def test_hostile_slice_expressions_are_refused_before_anything_runs(
    project: Path, capsys: pytest.CaptureFixture[str], expr: str, what: str
) -> None:
    expr = expr.replace(CANARY, str(project / "CANARY"))
    spec = _write(project, {"data": {"slices": {"evil": expr}}})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    _assert_refused(project, code, err, "data.slices.evil: unsupported expression: ")
    assert what in err


def test_a_backticked_name_that_hides_code_is_an_unknown_column(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expr = f"`__import__('os').system('touch {project / 'CANARY'}')` > 0"
    spec = _write(project, {"data": {"slices": {"evil": expr}}})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    _assert_refused(project, code, err, "data.slices.evil: unknown column \"__import__('os')")
    assert "on the test split" in err


def test_an_unknown_slice_column_is_named_with_a_suggestion(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _write(project, {"data": {"slices": {"wide": "a > 0 and bb < 1"}}})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    _assert_refused(project, code, err, "data.slices.wide: unknown column 'bb' in 'a > 0 and bb < 1' "
                                        "on the test split; did you mean 'b'?")  # fmt: skip


def test_valid_slices_still_drive_ak_perf_004(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _write(project, {
        "data": {"slices": {"high_a": "a > 0 & b.notna()", "band": "-0.5 <= c < 0.5"}},
        "model": {"torchscript": "net_ts.pt"},
        "checks": {"select": ["AK-PERF-004"], "params": {"AK-PERF-004": {"min_slice_size": 5}}},
    })  # fmt: skip
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    assert code in (0, 1), err
    doc = json.loads((project / "out" / "results.json").read_text())
    rec = next(c for c in doc["checks"] if c["id"] == "AK-PERF-004")
    rows = {r[0]: r for r in rec["evidence"]["slices"]["rows"]}
    test = pd.read_csv(project / "test.csv")
    assert rows["slice:high_a"][2] == int(((test.a > 0) & test.b.notna()).sum())
    assert rows["slice:band"][2] == int(((test.c >= -0.5) & (test.c < 0.5)).sum())


# ---------------------------------------------------------------------------------------------
# --no-code / AUDITKIT_NO_CODE=1: keys that are code by design are refused, each by name

CODE_KEYS = [
    ({"model": {"factory": "nc_nets.nets:make", "weights": "net.safetensors"}}, "model.factory"),
    ({"checks": {"paths": ["local"]}}, "checks.paths"),
    ({"checks": {"require_plugins": ["example"]}}, "checks.require_plugins"),
    ({"model": {"torchscript": "model.pkl", "allow_pickle": True}}, "model.allow_pickle"),
    ({"model": {"exported": "evil.pt2", "allow_pickle": True}}, "model.allow_pickle"),
    ({"model": {"builtin": "mlp"}, "training": {"optimizer": {"name": "nc_opt:Opt"}}}, "training.optimizer.name"),
    ({"model": {"builtin": "mlp"}, "training": {"schedule": {"name": "nc_opt:Sched", "step_size": 1}}},
     "training.schedule.name"),
    ({"model": {"builtin": "mlp"}, "training": {"compare": [{"name": "AdamW"}, {"name": "nc_opt:Opt"}]}},
     "training.compare.1.name"),
]  # fmt: skip


@pytest.mark.parametrize("how", ["flag", "env"])
@pytest.mark.parametrize(("extra", "key"), CODE_KEYS)
def test_no_code_refuses_every_key_that_runs_code(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, object], key: str, how: str,
) -> None:  # fmt: skip
    spec = _write(project, extra)
    args = ["run", str(spec), "-o", str(project / "out"), "-q"]
    if how == "flag":
        args.append("--no-code")
    else:
        monkeypatch.setenv(nocode.ENV, "1")
    code, _out, err = _run(args, capsys)
    _assert_refused(project, code, err, f"{key}: code is forbidden by --no-code (")
    assert not nocode.active() or how == "env"  # the flag's scope ends with the run


def test_without_no_code_the_same_keys_do_run_code(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: the canary modules do run when code is allowed (so the refusals above mean something)."""
    spec = _write(project, {"checks": {"paths": ["local"], "select": ["NC-LOCAL"]}})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    assert code == 0, err
    assert (project / "CANARY").exists()


def test_no_code_run_is_recorded_and_loads_no_plugin(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("auditkit_example_plugin", reason="install examples/plugin (make test does)")
    spec = _write(project, {"model": {"builtin": "mlp"},
                            "training": {"optimizer": {"name": "AdamW", "lr": 0.01}, "schedule": {"name": "cosine"},
                                         "epochs": 1}})  # fmt: skip
    code, _out, err = _run(["run", str(spec), "-o", str(project / "nc"), "-q", "--no-code"], capsys)
    assert code in (0, 1), err  # built-in optimizers and schedules by plain name stay allowed
    doc = json.loads((project / "nc" / "results.json").read_text())
    assert doc["run"]["no_code"] is True and doc["plugins"] == []
    code, _out, err = _run(["run", str(spec), "-o", str(project / "open"), "-q"], capsys)
    doc = json.loads((project / "open" / "results.json").read_text())
    assert doc["run"]["no_code"] is False and [p["name"] for p in doc["plugins"]] == ["example"]


def test_the_python_api_refuses_code_too(project: Path) -> None:
    from auditkit import Overrides, SpecError, run_audit

    spec = _write(project, {"model": {"factory": "nc_nets.nets:make", "weights": "net.safetensors"}})
    with pytest.raises(SpecError) as err:
        run_audit(spec, overrides=Overrides(no_code=True))
    assert str(err.value).startswith("model.factory: code is forbidden by --no-code")
    assert err.value.location == "model.factory"
    assert not nocode.active() and not (project / "CANARY").exists()


def test_a_refusal_point_holds_even_when_the_first_check_is_bypassed(project: Path) -> None:
    """Defence in depth: the loaders refuse by themselves under the policy."""
    from auditkit import SpecError
    from auditkit.engine.registry import build_registry
    from auditkit.inputs.training import resolve_optimizer

    with nocode.scope(True):
        with pytest.raises(SpecError, match="^checks.paths: code is forbidden"):
            build_registry(autoload=False, paths=[project / "local"])
        with pytest.raises(SpecError, match="^training.optimizer.name: code is forbidden"):
            resolve_optimizer("nc_opt:Opt")
        assert resolve_optimizer("adamw").__name__ == "AdamW"
    assert not (project / "CANARY").exists()


# ---------------------------------------------------------------------------------------------
# model.exported: torch.export.load unpickles with weights_only=False when weights_only refuses


def test_a_pickle_planted_in_a_torch_export_archive_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _write(project, {"model": {"exported": "evil.pt2"}})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    _assert_refused(project, code, err, "model.exported: evil.pt2 holds a pickle that is not plain tensors "
                                        "(data/sample_inputs/model.pt); torch.export.load would unpickle it")  # fmt: skip


def test_a_clean_torch_export_archive_still_loads(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _write(project, {"model": {"exported": "net.pt2"}, "checks": {"select": ["AK-GOV-003"]}})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q", "--no-code"], capsys)
    assert code in (0, 1), err
    doc = json.loads((project / "out" / "results.json").read_text())
    assert doc["run"]["no_code"] is True


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("data/aotinductor/model/model.so", "holds data/aotinductor/model/model.so"),
        ("data/constants/opaque_obj_0", "holds data/constants/opaque_obj_0"),
    ],
)
def test_archive_members_torch_would_load_as_code_are_refused(
    project: Path, member: str, reason: str
) -> None:
    from auditkit.inputs.loading import export_pickles

    src, dst = project / "net.pt2", project / "odd.pt2"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0]
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
        zout.writestr(f"{root}/{member}", b"\x7fELF")
    assert export_pickles(src) is None
    assert reason in (export_pickles(dst) or "")


# ---------------------------------------------------------------------------------------------
# data.expectations: Great Expectations hands row_condition to DataFrame.query


def _suite(project: Path, kwargs: dict[str, object]) -> Path:
    suite = {
        "name": "s",
        "expectations": [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "a", "min_value": 0.0, **kwargs},
            }
        ],
    }
    (project / "suite.json").write_text(json.dumps(suite))
    return _write(project, {"data": {"expectations": "suite.json"}, "checks": {"select": ["AK-DQ-001"]}})


@pytest.mark.parametrize(
    ("row_condition", "what"),
    [
        ("a.__class__.__init__.__globals__['sys'].modules['os'].system('touch __CANARY__') == 0",
         "row_condition: unsupported expression: function calls"),
        ("@pd.io.common.os.system('touch __CANARY__') == 0", "row_condition: unsupported expression: '@' local"),
        ({"pass_through_filter": "__import__('os').system('touch __CANARY__') == 0"},
         "a structured row_condition is not supported"),
    ],
)  # fmt: skip
def test_a_suite_row_condition_that_runs_code_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str], row_condition: object, what: str
) -> None:
    if isinstance(row_condition, str):
        row_condition = row_condition.replace(CANARY, str(project / "CANARY"))
    else:
        row_condition = {k: v.replace(CANARY, str(project / "CANARY")) for k, v in row_condition.items()}  # type: ignore[attr-defined]
    spec = _suite(project, {"row_condition": row_condition, "condition_parser": "pandas"})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    _assert_refused(project, code, err, f"data.expectations: suite.json: expectation 0: {what}")


def test_a_suite_row_condition_in_the_slice_language_still_filters(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _suite(project, {"row_condition": "a > 0.5", "condition_parser": "pandas"})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    assert code == 0, err  # only rows with a > 0.5 are checked against min_value 0
    spec = _suite(project, {"row_condition": "a > -5", "condition_parser": "pandas"})
    code, _out, err = _run(["run", str(spec), "-o", str(project / "out2"), "-q"], capsys)
    assert code == 1, err  # the same suite over every row: negative values of a fail the gate
    doc = json.loads((project / "out2" / "results.json").read_text())
    assert next(c for c in doc["checks"] if c["id"] == "AK-DQ-001")["status"] == "failed"
