"""pytest plugin: ``pytest --auditkit audit.yaml`` runs the audit as tests (entry point ``pytest11``).

One test item per selected check, named by its id (``audit.yaml::AK-LEAK-001``), plus
``audit.yaml::gate`` for the release gate (it fails when ``auditkit run`` would exit non-zero, so
baseline regressions show too). Outcomes: passed → passed; failed → failed with the findings;
failed with every finding waived → xfail with the waiver; not_applicable / skipped → skipped with
the reason; error → error (the check's message; its traceback is in results.json). Checks the
spec does not select are reported as pytest "deselected". ``-k``/``-m`` deselection of audit items
narrows the audit itself: only the checks still collected run.

The audit runs once per session, when the first audit item or the ``auditkit_results`` fixture
needs it. Installed with auditkit, this module is imported by every pytest run: it imports only
pytest and the standard library at import time, and nothing of auditkit's engine (no torch) unless
``--auditkit`` is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from auditkit.errors import ExitCode

if TYPE_CHECKING:
    from auditkit.engine.audit import Overrides
    from auditkit.results.document import AuditResults

GATE_ITEM = "gate"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("auditkit", "auditkit: run a model audit as tests")
    group.addoption(
        "--auditkit",
        metavar="SPEC",
        default=None,
        help="Run the audit in SPEC (audit.yaml): one test per check.",
    )
    group.addoption("--auditkit-output", metavar="DIR", default=None,
                    help="Write the evidence bundle to DIR (default: results stay in memory).")  # fmt: skip
    for name, what in (("select", "Check ids or prefixes to run"), ("ignore", "Check ids or prefixes to leave out"),
                       ("enable", "Off-by-default checks to run")):  # fmt: skip
        group.addoption(f"--auditkit-{name}", action="append", default=[], metavar="IDS",
                        help=f"{what} (comma separated, repeatable), as auditkit run --{name}.")  # fmt: skip
    group.addoption("--auditkit-param", action="append", default=[], metavar="ID.NAME=VALUE",
                    help="Set a check parameter (YAML-typed), as auditkit run --param.")  # fmt: skip
    group.addoption("--auditkit-fail-on", metavar="SEVERITY", default=None, help="Override gate.fail_on.")
    group.addoption(
        "--auditkit-baseline", metavar="RESULTS", default=None, help="Compare with an approved results.json."
    )
    group.addoption("--auditkit-seed", metavar="N", type=int, default=None, help="Override the run seed.")
    group.addoption("--auditkit-sign", metavar="KEY", default=None,
                    help="Sign the bundle's manifest with this Ed25519 key (needs --auditkit-output).")  # fmt: skip


class _Audit:
    """One audit per session: its plan at collection, its results on first use."""

    def __init__(self, config: pytest.Config, spec: Path) -> None:
        self.config = config
        self.spec = spec
        self.run_ids: list[str] | None = None  # the check items left after -k/-m (None: all)
        self._results: AuditResults | None = None
        self._error: str | None = None

    def overrides(self, select: list[str] | None = None) -> Overrides:
        from auditkit.cli import _parse_params, _split_csv
        from auditkit.engine.audit import Overrides
        from auditkit.engine.check import SEVERITIES
        from auditkit.errors import UsageError

        opt = self.config.getoption
        if opt("auditkit_fail_on") not in (None, *SEVERITIES):
            raise UsageError(
                f"--auditkit-fail-on: {opt('auditkit_fail_on')!r} is not one of {', '.join(SEVERITIES)}"
            )
        return Overrides(
            select=select if select is not None else _split_csv(tuple(opt("auditkit_select"))),
            ignore=_split_csv(tuple(opt("auditkit_ignore"))),
            enable=_split_csv(tuple(opt("auditkit_enable"))),
            params=_parse_params(tuple(opt("auditkit_param"))),
            fail_on=opt("auditkit_fail_on"),
            baseline=_path(self.config, opt("auditkit_baseline")),
            seed=opt("auditkit_seed"),
        )

    def results(self) -> AuditResults:
        """Run the audit (once); an auditkit error becomes one line that every user of it reports."""
        if self._results is None and self._error is None:
            from auditkit.engine.audit import run_audit
            from auditkit.errors import AuditkitError

            opt = self.config.getoption
            output, sign = (
                _path(self.config, opt("auditkit_output")),
                _path(self.config, opt("auditkit_sign")),
            )
            try:
                self._results = run_audit(
                    self.spec, output=output, overrides=self.overrides(self.run_ids), quiet=True,
                    argv=["pytest", "--auditkit", str(self.spec)], sign_key=sign,
                )  # fmt: skip
            except AuditkitError as err:
                self._error = (
                    f"auditkit: error: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
                )
        if self._error is not None:
            pytest.fail(self._error, pytrace=False)
        assert self._results is not None
        return self._results


_AUDIT = pytest.StashKey[_Audit]()


def _path(config: pytest.Config, value: str | None) -> Path | None:
    """A path option relative to where pytest was started (a conftest may chdir later)."""
    return None if value is None else (config.invocation_params.dir / value).resolve()


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("auditkit", None)
    if spec:
        config.stash[_AUDIT] = _Audit(config, (config.invocation_params.dir / spec).resolve())


class AuditSpecFile(pytest.File):
    """The audit spec as a collector: one item per check it selects, then the gate."""

    def collect(self) -> Iterator[pytest.Item]:
        from auditkit.engine.audit import plan_audit
        from auditkit.errors import AuditkitError

        audit = self.config.stash[_AUDIT]
        try:
            planned = plan_audit(self.path, audit.overrides())
        except AuditkitError as err:
            raise self.CollectError(f"auditkit: error: {err}") from None
        for p in planned:
            item = AuditCheckItem.from_parent(self, name=p.info.id, title=p.info.title, selected=p.selected)
            item.user_properties.append(("severity", p.severity))
            yield item  # every check is collected; the ones the spec leaves out are then deselected
        self.selected_ids = [p.info.id for p in planned if p.selected]
        yield AuditGateItem.from_parent(self, name=GATE_ITEM)


class AuditCheckItem(pytest.Item):
    def __init__(self, *, title: str, selected: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.selected = selected

    def setup(self) -> None:
        rec = self._record()
        if rec["status"] == "error":
            # pytest reports an exception raised in setup as "error", the audit's own word
            err = rec.get("error") or {}
            head = str(err.get("message") or err.get("type") or "error").splitlines()[0] if err else "error"
            kind = f"{err.get('type')}: " if err.get("type") else ""
            pytest.fail(f"{self.name} errored: {kind}{head} (traceback in results.json)", pytrace=False)

    def _record(self) -> dict[str, Any]:
        return self.config.stash[_AUDIT].results()[self.name]

    def runtest(self) -> None:
        rec = self._record()
        for m in rec.get("metrics") or []:
            self.user_properties.append((f"metric.{m.get('name')}", m.get("value")))
            if m.get("ci"):
                self.user_properties.append((f"metric.{m.get('name')}.ci95", list(m["ci"])))
        status = rec["status"]
        if status in ("not_applicable", "skipped"):
            # reported at the spec, not at this line of the plugin
            raise pytest.skip.Exception(f"{status}: {rec.get('skip_reason') or ''}", _use_item_location=True)
        if status != "failed":
            return
        findings = [f for f in rec.get("findings") or [] if f.get("severity") != "info"]
        unwaived = [f for f in findings if not _waived(f)]
        if findings and not unwaived:
            reasons = sorted({_waiver_text(f["waiver"]) for f in findings})
            pytest.xfail("waived: " + "; ".join(reasons))
        lines = [f"[{f.get('severity')}] {f.get('message')}" + (f" [{f['key']}]" if f.get("key") is not None else "")
                 for f in unwaived]  # fmt: skip
        pytest.fail(
            "\n".join([f"{self.name} failed: {rec.get('summary') or ''}".rstrip(), *lines]), pytrace=False
        )

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"{self.name} {self.title}"


class AuditGateItem(pytest.Item):
    """The release gate: fails exactly when ``auditkit run`` would exit non-zero."""

    def setup(self) -> None:
        self.config.stash[_AUDIT].results()  # an audit that could not run: error, as for the checks

    def runtest(self) -> None:
        results = self.config.stash[_AUDIT].results()
        gate = results.gate
        self.user_properties.append(("gate.exit_code", results.exit_code))
        if results.exit_code == ExitCode.PASSED:
            return
        lines = [f"gate {gate['decision'].upper()} (exit {results.exit_code}): {gate['reason']}"]
        lines += [
            f"  blocking: {b['check']} [{b['severity']}] {b['message']}" for b in gate.get("blocking", [])
        ]
        lines += [f"  regression: {r['message']}" for r in gate.get("regressions", [])]
        pytest.fail("\n".join(lines), pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, "release gate"


def _waived(finding: dict[str, Any]) -> bool:
    w = finding.get("waiver")
    return isinstance(w, dict) and not w.get("expired", False)


def _waiver_text(w: dict[str, Any]) -> str:
    by = f", approved by {w['approved_by']}" if w.get("approved_by") else ""
    return f"{w.get('reason')} (expires {w.get('expires')}{by})"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # tryfirst: the audit's items are in the list before -k / -m deselect from it
    audit = config.stash.get(_AUDIT, None)
    if audit is None:
        return
    node = AuditSpecFile.from_parent(session, path=audit.spec)
    collected = list(session.genitems(node))  # a spec error is reported as a collection error
    deselected = [i for i in collected if isinstance(i, AuditCheckItem) and not i.selected]
    items.extend(i for i in collected if not (isinstance(i, AuditCheckItem) and not i.selected))
    if deselected:
        config.hook.pytest_deselected(items=deselected)


def pytest_collection_finish(session: pytest.Session) -> None:
    audit = session.config.stash.get(_AUDIT, None)
    if audit is None:
        return
    kept = [i.name for i in session.items if isinstance(i, AuditCheckItem)]
    files = {i.parent for i in session.items if isinstance(i, (AuditCheckItem, AuditGateItem))}
    selected = [cid for f in files for cid in getattr(f, "selected_ids", [])]
    # -k/-m left only some checks: run just those; otherwise the spec's own selection, so that the
    # results are those `auditkit run` gives
    audit.run_ids = kept if kept and set(kept) != set(selected) else None


@pytest.fixture(scope="session")
def auditkit_results(request: pytest.FixtureRequest) -> AuditResults:
    """The results of the ``--auditkit`` audit (run once per session), as ``auditkit.run_audit``
    returns them: ``results["AK-PERF-001"]``, ``results.metric(id, name)``, ``results.gate``."""
    audit = request.config.stash.get(_AUDIT, None)
    if audit is None:
        pytest.skip("no audit: run pytest with --auditkit SPEC")
    return audit.results()
