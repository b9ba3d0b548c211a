"""A per-check time limit (checks.timeout / --timeout) and the one gate line of ``-q``."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main
from auditkit.engine.runner import CheckTimeout, time_limit

LOCAL = '''
import time
from auditkit import Finding, Metric, Outcome, check

@check(id="LOCAL-LOOP-001", title="A check that loops far past any limit", requires=("train",))
def loop(ctx, /, *, seconds: float = 60.0, swallow: bool = False):
    """Busy-loops (or sleeps) for `seconds`.

    Parameters
    ----------
    seconds: how long to run.
    swallow: wrap the loop in ``except Exception`` (the limit must still stop it).
    """
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.01)
        except Exception:
            if not swallow:
                raise
    return Outcome(summary="finished the loop")

@check(id="LOCAL-TORCH-001", title="A check that multiplies matrices for a minute", requires=("train",))
def torch_loop(ctx, /, *, seconds: float = 60.0):
    """Torch work in a Python loop: the alarm lands between two operations.

    Parameters
    ----------
    seconds: how long to run.
    """
    import torch

    a = torch.randn(256, 256)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        a = torch.tanh(a @ a)
    return Outcome(summary="finished")

@check(id="LOCAL-OK-001", title="A check that passes", requires=("train",))
def ok(ctx, /, *, value: float = 1.0):
    """Passes.

    Parameters
    ----------
    value: a number.
    """
    return Outcome(summary="fine")

@check(id="LOCAL-EXIT-001", title="A check that calls sys.exit(0)", requires=("train",))
def quits(ctx, /, *, code: int = 0):
    """Calls sys.exit: the audit must record an error, not exit with the check's code.

    Parameters
    ----------
    code: the exit code it asks for.
    """
    import sys

    sys.exit(code)

@check(id="LOCAL-BAD-001", title="A check that fails", requires=("train",), severity="high")
def bad(ctx, /, *, fail: bool = True):
    """Fails with one high finding.

    Parameters
    ----------
    fail: fail when true.
    """
    return Outcome(findings=[Finding("something is wrong", key="wrong")] if fail else [])
'''


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=40), "y": rng.integers(0, 2, 40)})
    df.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "mine.py").write_text(LOCAL)
    return tmp_path


def _spec(root: Path, select: str, extra: str = "") -> Path:
    path = root / "audit.yaml"
    path.write_text(
        "version: 1\nname: timeout-test\ndata: {label: y, splits: {train: train.csv}}\n"
        f"checks:\n  paths: [local]\n  select: {select}\n{extra}\nreport: {{formats: [json]}}\n"
    )
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.mark.parametrize("swallow", [False, True])
def test_a_check_past_checks_timeout_is_an_error_and_the_run_goes_on(
    project: Path, swallow: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(
        project,
        "[LOCAL-LOOP, LOCAL-OK]",
        f"  timeout: 1\n  params: {{LOCAL-LOOP-001: {{swallow: {str(swallow).lower()}}}}}",
    )
    out = project / "out"
    code, _stdout, err = _run(["run", str(spec), "-o", str(out), "-q"], capsys)
    assert code == 3, err  # an errored check fails the gate closed
    recs = {r["id"]: r for r in json.loads((out / "results.json").read_text())["checks"]}
    loop = recs["LOCAL-LOOP-001"]
    assert loop["status"] == "error"
    assert loop["error"]["type"] == "Timeout"
    assert loop["error"]["message"].startswith("timed out after 1 s")
    assert recs["LOCAL-OK-001"]["status"] == "passed"  # the next check still ran
    assert _run(["verify", str(out)], capsys)[0] == 0  # the bundle is complete


def test_cli_timeout_overrides_and_a_fast_check_is_untouched(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(project, "[LOCAL-LOOP, LOCAL-OK]", "  params: {LOCAL-LOOP-001: {seconds: 0.05}}")
    out = project / "out"
    code, _o, err = _run(["run", str(spec), "-o", str(out), "-q", "--timeout", "30"], capsys)
    assert code == 0, err
    recs = {r["id"]: r for r in json.loads((out / "results.json").read_text())["checks"]}
    assert recs["LOCAL-LOOP-001"]["status"] == "passed"
    spec = _spec(project, "[LOCAL-LOOP]")
    code, _o, err = _run(["run", str(spec), "-o", str(project / "out2"), "-q", "--timeout", "1"], capsys)
    assert code == 3, err
    rec = json.loads((project / "out2" / "results.json").read_text())["checks"]
    assert next(r for r in rec if r["id"] == "LOCAL-LOOP-001")["error"]["type"] == "Timeout"


@pytest.mark.parametrize("bad", ["0", "-1", "soon", "1e9"])
def test_a_bad_timeout_is_a_usage_error(project: Path, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(project, "[LOCAL-OK]")
    code, _o, err = _run(["run", str(spec), "-o", str(project / "out"), "-q", "--timeout", bad], capsys)
    assert code == 2 and "--timeout" in err
    spec = _spec(project, "[LOCAL-OK]", f"  timeout: {bad}")
    code, _o, err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    assert code == 2 and "checks.timeout" in err and len(err.strip().splitlines()) == 1


def test_quiet_prints_the_gate_and_the_failing_check_ids(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(project, "[LOCAL-BAD, LOCAL-OK]")
    code, out, _err = _run(["run", str(spec), "-o", str(project / "out"), "-q"], capsys)
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1
    assert "FAIL" in lines[0] and "LOCAL-BAD-001" in lines[0] and "LOCAL-OK-001" not in lines[0]
    code, out, _err = _run(
        ["run", str(spec), "-o", str(project / "out2"), "-q", "--param", "LOCAL-BAD-001.fail=false"], capsys
    )
    assert code == 0
    assert out.strip().splitlines() == ["auditkit: gate PASS (exit 0)"]


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX interval timers")
def test_an_outer_interval_timer_is_restored_not_clobbered() -> None:
    """pytest-timeout (make test) and callers arm ITIMER_REAL too: a check's limit nests inside it."""
    fired: list[int] = []

    def outer(signum: int, frame: object) -> None:
        fired.append(signum)

    old = signal.signal(signal.SIGALRM, outer)
    try:
        signal.setitimer(signal.ITIMER_REAL, 300.0)
        with time_limit(5):
            assert signal.getitimer(signal.ITIMER_REAL)[0] <= 5  # the check's limit is armed
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 200 < remaining <= 300  # the outer timer runs on with its remaining time
        assert signal.getsignal(signal.SIGALRM) is outer
        with pytest.raises(CheckTimeout), time_limit(0.05):
            while True:
                pass
        assert signal.getsignal(signal.SIGALRM) is outer and signal.getitimer(signal.ITIMER_REAL)[0] > 200
        assert not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_a_check_calling_sys_exit_is_an_error_not_the_exit_code(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(project, "[LOCAL-EXIT, LOCAL-OK]")
    out = project / "out"
    code, _o, err = _run(["run", str(spec), "-o", str(out), "-q"], capsys)
    assert code == 3, err
    recs = {r["id"]: r for r in json.loads((out / "results.json").read_text())["checks"]}
    assert recs["LOCAL-EXIT-001"]["status"] == "error"
    assert recs["LOCAL-EXIT-001"]["error"]["message"] == "the check called sys.exit(0)"
    assert recs["LOCAL-OK-001"]["status"] == "passed"


def test_torch_work_past_the_limit_is_stopped(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(project, "[LOCAL-TORCH, LOCAL-OK]", "  timeout: 1")
    out = project / "out"
    code, _o, err = _run(["run", str(spec), "-o", str(out), "-q"], capsys)
    assert code == 3, err
    recs = {r["id"]: r for r in json.loads((out / "results.json").read_text())["checks"]}
    assert recs["LOCAL-TORCH-001"]["error"]["type"] == "Timeout"
    assert recs["LOCAL-OK-001"]["status"] == "passed"
