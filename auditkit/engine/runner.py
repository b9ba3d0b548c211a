"""Plan and run checks: selection, parameter validation, isolation, timing, progress.

Planning finds every spec problem (unknown ids, parameters, types) before the first check runs.
A check that raises becomes status ``error`` with its traceback; the run goes on.
"""

from __future__ import annotations

import contextlib
import difflib
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from auditkit.engine.check import CheckInfo, NotApplicable, Outcome, Skipped, jsonable
from auditkit.engine.context import RunContext, derive_seed
from auditkit.engine.registry import Registry
from auditkit.errors import InputError, SpecError
from auditkit.inputs.artifacts import Artifacts


@dataclass
class Planned:
    info: CheckInfo
    params: dict[str, Any]
    severity: str
    selected: bool
    skip_reason: str | None = None


@dataclass
class Selection:
    select: Sequence[str] = ()
    ignore: Sequence[str] = ()
    enable: Sequence[str] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    # checks.min_rows: the default of every check's ``min_rows`` parameter (a check's own params win).
    min_rows: int | None = None


# Parameters that say how many rows a check needs to judge something (set at once by checks.min_rows).
MIN_ROWS_PARAMS = ("min_rows", "min_slice_size", "min_group_size")


def _matches(check_id: str, pattern: str) -> bool:
    return check_id == pattern or check_id.startswith(pattern.rstrip("-") + "-")


def _known(pattern: str, ids: Iterable[str], where: str) -> None:
    ids = list(ids)
    if any(_matches(i, pattern) for i in ids):
        return
    close = difflib.get_close_matches(pattern, ids, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise SpecError(f"unknown check id or prefix {pattern!r}{hint}", location=where)


def validate_params(info: CheckInfo, given: dict[str, Any], where: str) -> dict[str, Any]:
    """Check a parameter mapping against the check's signature; return defaults merged with it."""
    out = info.defaults()
    names = [p.name for p in info.params]
    for name, value in given.items():
        param = info.param(name)
        if param is None:
            close = difflib.get_close_matches(name, names, n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else (f"; parameters: {', '.join(names)}" if names else "; it takes none")
            )
            raise SpecError(f"unknown parameter of {info.id}{hint}", location=f"{where}.{name}")
        try:
            out[name] = TypeAdapter(param.annotation).validate_python(value)
        except ValidationError as err:
            msg = err.errors()[0]["msg"]
            raise SpecError(f"{msg} (got {value!r})", location=f"{where}.{name}") from None
    return jsonable(out)  # type: ignore[no-any-return]


def plan(registry: Registry, sel: Selection) -> list[Planned]:
    ids = list(registry.checks)
    for i, p in enumerate(sel.select):
        _known(p, ids, f"checks.select.{i}")
    for i, p in enumerate(sel.ignore):
        _known(p, ids, f"checks.ignore.{i}")
    for i, p in enumerate(sel.enable):
        _known(p, ids, f"checks.enable.{i}")
    for cid in sel.params:
        if cid not in registry.checks:
            _known(cid, ids, f"checks.params.{cid}")
            raise SpecError("parameters are set per full check id", location=f"checks.params.{cid}")
    for cid in sel.severity:
        _known(cid, ids, f"checks.severity.{cid}")
    planned = []
    for info in registry.sorted():
        explicitly = any(info.id == p for p in list(sel.select) + list(sel.enable))
        enabled = info.default_enabled or explicitly or any(_matches(info.id, p) for p in sel.enable)
        in_select = not sel.select or any(_matches(info.id, p) for p in sel.select)
        ignored = any(_matches(info.id, p) for p in sel.ignore)
        reason = None
        if ignored:
            reason = "not selected: ignored by checks.ignore"
        elif not in_select:
            reason = "not selected: outside checks.select"
        elif not enabled:
            reason = f"not selected: off by default (cost: {info.cost}); add it to checks.enable"
        given = dict(sel.params.get(info.id, {}))
        for name in MIN_ROWS_PARAMS:
            if sel.min_rows is not None and info.param(name) is not None:
                given.setdefault(name, sel.min_rows)
        params = validate_params(info, given, f"checks.params.{info.id}")
        severity = next((v for k, v in sel.severity.items() if _matches(info.id, k)), info.severity)
        planned.append(Planned(info, params, severity, reason is None, reason))
    return planned


def _record(p: Planned, status: str, **extra: Any) -> dict[str, Any]:
    info = p.info
    return {
        "id": info.id,
        "version": info.version,
        "title": info.title,
        "description": info.description,
        "source": info.source,
        "status": status,
        "params": p.params,
        "severity": p.severity,
        "default_severity": info.severity,
        "nist_ai_rmf": list(info.nist_ai_rmf),
        "tags": list(info.tags),
        "area": info.area,
        "requires": list(info.requires),
        "metrics": [],
        "findings": [],
        "summary": "",
        "evidence": {},
        "artifacts": [],
        "duration_s": 0.0,
        "seed": None,
        "skip_reason": None,
        "error": None,
        **extra,
    }


class CheckTimeout(BaseException):
    """Raised in the main thread when a check runs past ``checks.timeout``.

    A BaseException, so that a check's own ``except Exception`` cannot swallow it and the shared
    artefact cache never stores it as a result.
    """


def timeout_supported() -> bool:
    """A time limit needs SIGALRM (POSIX) and the main thread (signals are delivered there)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``CheckTimeout`` in this thread once ``seconds`` have passed (no limit when None).

    A running thread cannot be killed, so the limit is an interval timer whose SIGALRM handler
    raises in the main thread. Python runs the handler between bytecodes: a check stuck in one long
    C call (a single huge torch op, a blocking read) is stopped only when that call returns; torch
    code that loops over batches returns to Python often, so it stops within one operation. Threads
    or processes the check started run on. Where SIGALRM is unavailable (Windows, a worker thread)
    the limit is not enforced. Shared artefacts a timed-out check was computing are not cached.
    """
    if not seconds or not timeout_supported():
        yield
        return

    # An interval timer already running (a caller's own, pytest-timeout's) is nested, not clobbered:
    # if it expires first it is left alone; otherwise it is re-armed with its remaining time after.
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_delay and outer_delay <= seconds:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CheckTimeout()

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if outer_delay:
            left = max(outer_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def run_one(
    p: Planned,
    artifacts: Artifacts,
    *,
    run_seed: int,
    workdir: Path | None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run one planned check in isolation and return its results record.

    With ``timeout`` (seconds) a check that runs longer is stopped and recorded as ``error``
    ("timed out after N s"); the run goes on with the next check. The record's title and
    description are the check's wording for the audit's task (a regressor's where it has one).
    """
    rec = _run_one(p, artifacts, run_seed=run_seed, workdir=workdir, timeout=timeout)
    if p.info.regression_title or p.info.regression_description:
        try:
            task = artifacts.task()
        except Exception:  # noqa: BLE001 - unreadable data is reported by the checks; keep the wording
            task = None
        rec["title"], rec["description"] = p.info.text_for(task)
    return rec


def _run_one(
    p: Planned,
    artifacts: Artifacts,
    *,
    run_seed: int,
    workdir: Path | None,
    timeout: float | None = None,
) -> dict[str, Any]:
    info = p.info
    if not p.selected:
        return _record(p, "skipped", skip_reason=p.skip_reason)
    for req in info.requires:
        ok, why = artifacts.satisfies(req)
        if not ok:
            return _record(p, "not_applicable", skip_reason=why)
    ctx = RunContext(info, artifacts, run_seed=run_seed, params=p.params, workdir=workdir)
    start = time.perf_counter()
    try:
        with time_limit(timeout):
            outcome = info.func(ctx, **p.params)
        if not isinstance(outcome, Outcome):
            raise TypeError(f"{info.id} returned {type(outcome).__name__}, not an Outcome")
        status = outcome.resolved_status()
        rec = _record(
            p,
            status,
            metrics=[m.to_dict() for m in outcome.metrics],
            findings=[f.to_dict(p.severity) for f in outcome.findings],  # type: ignore[arg-type]
            summary=outcome.summary,
            evidence=jsonable(outcome.evidence),
        )
        if status == "passed" and any(f["severity"] != "info" for f in rec["findings"]):
            rec["status"] = "failed"
    except NotApplicable as exc:
        rec = _record(p, "not_applicable", skip_reason=str(exc) or "does not apply")
    except Skipped as exc:
        rec = _record(p, "skipped", skip_reason=str(exc) or "skipped")
    except (SpecError, InputError) as exc:
        # The check's parameters or inputs are wrong, not the check: a one-line message, no
        # traceback, and the run exits 2 (the gate's ``input_errors``) once the bundle is written.
        rec = _record(
            p,
            "error",
            error={"type": type(exc).__name__, "message": str(exc)[:2000], "traceback": "", "input": True},
            summary=f"input error: {str(exc)[:200]}",
        )
    except SystemExit as exc:  # a check (or code it calls) must not end the audit with its own exit code
        msg = f"the check called sys.exit({exc.code!r})"
        rec = _record(p, "error", error={"type": "SystemExit", "message": msg, "traceback": ""}, summary=msg)
    except CheckTimeout:
        msg = f"timed out after {_fmt_seconds(timeout or 0)} (checks.timeout)"
        rec = _record(p, "error", error={"type": "Timeout", "message": msg, "traceback": ""}, summary=msg)
    except Exception as exc:
        rec = _record(
            p,
            "error",
            error={
                "type": type(exc).__name__,
                "message": str(exc)[:2000],
                "traceback": traceback.format_exc(limit=30)[-20000:],
            },
            summary=f"{type(exc).__name__}: {str(exc)[:200]}",
        )
    rec["duration_s"] = round(time.perf_counter() - start, 6)
    rec["seed"] = derive_seed(run_seed, info.id)
    rec["artifacts"] = [f"artifacts/{info.id}/{name}" for name in ctx.written]
    return rec


def run_planned(
    planned: list[Planned],
    artifacts: Artifacts,
    *,
    run_seed: int,
    bundle_dir: Path | None,
    progress: bool = False,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Run every planned check in order (selected ones get a progress bar on stderr).

    ``timeout``: seconds each check may run (``checks.timeout``); None = no limit.
    """
    records: list[dict[str, Any]] = []
    todo = [p for p in planned if p.selected]
    if timeout and not timeout_supported():
        import logging

        logging.getLogger("auditkit").warning(
            "checks.timeout is not enforced here: it needs SIGALRM and the main thread (POSIX)"
        )

    def workdir(p: Planned) -> Path | None:
        return bundle_dir / "artifacts" / p.info.id if bundle_dir else None

    if progress and todo:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        with Progress(
            TextColumn("[bold]{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("auditing", total=len(todo))
            for p in planned:
                if p.selected:
                    bar.update(task, description=p.info.id)
                rec = run_one(p, artifacts, run_seed=run_seed, workdir=workdir(p), timeout=timeout)
                records.append(rec)
                if on_record:
                    on_record(rec)
                if p.selected:
                    bar.advance(task)
    else:
        for p in planned:
            rec = run_one(p, artifacts, run_seed=run_seed, workdir=workdir(p), timeout=timeout)
            records.append(rec)
            if on_record:
                on_record(rec)
    return records


def progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()
