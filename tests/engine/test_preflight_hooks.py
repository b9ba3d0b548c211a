"""The engine runs each known check (selected or not)'s ``preflight`` hook once, after the data loads and before
the first check runs; a hook that refuses is exit code 2 with one line and no bundle."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main

PLUGIN = '''
import json
from pathlib import Path

from auditkit import Metric, Outcome, check
from auditkit.errors import SpecError

LOG = Path(__file__).with_name("log.jsonl")


def _note(event):
    with LOG.open("a") as fh:
        fh.write(json.dumps(event) + "\\n")


def needs_column(pf):
    """Refuses a 'column' parameter that is not in the train split."""
    _note({"hook": "needs_column", "column": pf.params["column"], "splits": list(pf.splits),
           "columns": pf.columns("train"), "rows": len(pf.frame("train"))})
    if pf.params["column"] not in pf.columns("train"):
        raise SpecError(f"checks.params.HOOK-001.column: no column {pf.params['column']!r} in train")


def other(pf):
    _note({"hook": "other"})


@check(id="HOOK-001", title="Uses a column", requires=("train",), preflight=needs_column)
def uses_column(ctx, /, *, column: str = "a"):
    """Reads a column.

    Parameters
    ----------
    column: the column it reads.
    """
    _note({"check": "HOOK-001"})
    return Outcome.from_metrics([Metric("score", 0.9, threshold=0.5, direction="higher")])


@check(id="HOOK-002", title="Shares the hook", requires=("train",), preflight=needs_column)
def shares_hook(ctx, /, *, column: str = "a"):
    """Same hook, so it runs once.

    Parameters
    ----------
    column: the column it reads.
    """
    _note({"check": "HOOK-002"})
    return Outcome.from_metrics([Metric("score", 0.9, threshold=0.5, direction="higher")])


@check(id="HOOK-003", title="Another hook", requires=("train",), preflight=other)
def another(ctx, /):
    """Has its own hook."""
    _note({"check": "HOOK-003"})
    return Outcome.from_metrics([Metric("score", 0.9, threshold=0.5, direction="higher")])
'''


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def _setup(root: Path, checks: str) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("test", 40)):
        pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "y": rng.integers(0, 2, n)}).to_csv(
            root / f"{split}.csv", index=False
        )
    (root / "local").mkdir()
    (root / "local" / "hooks.py").write_text(PLUGIN)
    spec = root / "audit.yaml"
    spec.write_text(
        textwrap.dedent("""
        version: 1
        name: hooks
        data:
          label: y
          splits: {train: train.csv, test: test.csv}
        report: {formats: [json]}
        """)
        + checks
    )
    return spec


def _log(root: Path) -> list[dict]:
    path = root / "local" / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_hooks_run_once_each_before_any_check(tmp_path: Path) -> None:
    spec = _setup(tmp_path, "checks: {paths: [local], select: [HOOK-001, HOOK-002, HOOK-003]}\n")
    assert run(["run", str(spec), "-o", str(tmp_path / "out"), "-q"]) == 0
    log = _log(tmp_path)
    hooks = [e for e in log if "hook" in e]
    assert [e["hook"] for e in hooks] == ["needs_column", "other"]  # registry order, shared hook once
    assert log[: len(hooks)] == hooks  # every hook before the first check
    assert {e["check"] for e in log if "check" in e} == {"HOOK-001", "HOOK-002", "HOOK-003"}
    first = hooks[0]
    assert (
        first["splits"] == ["train", "test"] and first["columns"] == ["a", "b", "y"] and first["rows"] == 60
    )


def test_a_refusing_hook_is_exit_2_before_any_check_and_leaves_no_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _setup(
        tmp_path, "checks: {paths: [local], select: [HOOK-001, HOOK-003], params: {HOOK-001: {column: c}}}\n"
    )
    out = tmp_path / "out"
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "no column 'c' in train" in err and "Traceback" not in err
    assert not (out / "results.json").exists()
    assert [e for e in _log(tmp_path) if "check" in e] == []  # no check ran


def test_a_deselected_checks_hook_still_validates_the_spec(tmp_path: Path) -> None:
    # a hook checks an input the spec declares: a broken one is refused whatever is selected
    spec = _setup(tmp_path, "checks: {paths: [local], select: [HOOK-003], params: {HOOK-001: {column: c}}}\n")
    assert run(["run", str(spec), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert [e.get("hook") for e in _log(tmp_path) if "hook" in e] == ["needs_column"]
    assert [e for e in _log(tmp_path) if "check" in e] == []
    (tmp_path / "ok").mkdir()
    ok = _setup(tmp_path / "ok", "checks: {paths: [local], select: [HOOK-003]}\n")
    assert run(["run", str(ok), "-o", str(tmp_path / "ok" / "out"), "-q"]) == 0
    assert [e.get("hook") for e in _log(tmp_path / "ok") if "hook" in e] == ["needs_column", "other"]
