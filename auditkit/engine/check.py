"""The check API: the ``@check`` decorator, ``Metric``, ``Finding``, ``Outcome`` and statuses.

A check is a plain function ``fn(ctx, /, *, param=default, ...) -> Outcome``. The decorator
validates and annotates it (``fn.__auditkit_check__``); it registers nothing, so importing a
module of checks has no side effects.
"""

from __future__ import annotations

import inspect
import math
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# Re-exported here (the check API); their homes are root modules that every room may import.
from auditkit.errors import NotApplicable as NotApplicable
from auditkit.severity import SEVERITIES as SEVERITIES
from auditkit.severity import Severity as Severity
from auditkit.severity import severity_rank as severity_rank

Status = Literal["passed", "failed", "error", "skipped", "not_applicable"]
Direction = Literal["higher", "lower"]
# The report section a check belongs to: metadata of the check, recorded in results.json, so
# renderers group checks without knowing any check id.
Area = Literal["data", "training", "evaluation", "robustness", "ood", "deployment", "governance", "other"]
AREAS: tuple[Area, ...] = typing.get_args(Area)
# Which part of a metric is compared with its threshold: the point estimate, or the end of its
# confidence interval that is least favourable ("conservative": a release gate that must be sure).
Bound = Literal["value", "conservative"]

ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")

# Names a check may list in ``requires``. Alternatives are written "id|group".
REQUIREMENTS = frozenset(
    {
        "train", "test", "ood", "production", "validation",   # splits
        "model", "training", "training.compare",            # model under audit, training runs
        "card", "expectations", "deployment",               # governance facts, GE suite, artifacts to ship
        "label", "id", "group", "time", "sensitive",        # column roles
        "classification", "tabular", "image",               # task / input kind
    }
)  # fmt: skip


# Fewest rows on which a check judges a proportion (accuracy, a rate, a robust accuracy): a 95%
# Wilson interval on 30 rows is still ±0.17 wide at 0.5; on 1 row a "pass" means nothing.
DEFAULT_MIN_ROWS = 30


def require_rows(n: int, min_rows: int, *, what: str, split: str) -> None:
    """Raise ``NotApplicable`` when ``n`` rows of ``split`` are too few to judge ``what``.

    The shared rule for every check that computes a headline metric on a split: below
    ``min_rows`` (a declared parameter, default ``DEFAULT_MIN_ROWS``; ``checks.min_rows`` sets it
    for every check at once) the check is ``not_applicable`` with this reason, never a pass.
    """
    if n < min_rows:
        raise NotApplicable(
            f"too few rows to judge {what}: {n} {split} row(s), at least {min_rows} needed (parameter min_rows)"
        )


class Skipped(Exception):
    """Raise inside a check when it could not run for a reason outside the subject (a missing extra)."""


@dataclass
class Metric:
    """A measured quantity. ``direction`` is data: it decides pass/fail and generates messages."""

    name: str
    value: float | None
    ci: tuple[float, float] | None = None
    n: int | None = None
    threshold: float | None = None
    direction: Direction | None = None
    bound: Bound = "value"
    unit: str | None = None
    description: str | None = None
    # Extra structured values (per-class numbers, the confidence level, the method): JSON-native.
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value is not None:
            self.value = float(self.value)
            if math.isnan(self.value):
                self.value = None
        if self.ci is not None:
            lo, hi = (float(self.ci[0]), float(self.ci[1]))
            self.ci = (lo, hi) if not (math.isnan(lo) or math.isnan(hi)) else None
        if self.threshold is not None and self.direction is None:
            raise ValueError(f"metric {self.name!r} has a threshold but no direction")

    @property
    def compared_value(self) -> float | None:
        """The number compared with the threshold (point estimate, or the unfavourable CI end)."""
        if self.bound == "conservative" and self.ci is not None:
            return self.ci[0] if self.direction == "higher" else self.ci[1]
        return self.value

    @property
    def passed(self) -> bool | None:
        """True/False against the threshold; None when there is nothing to compare."""
        v = self.compared_value
        if self.threshold is None or v is None or self.direction is None:
            return None
        return v >= self.threshold if self.direction == "higher" else v <= self.threshold

    def describe_failure(self) -> str:
        """A message generated from the direction: what was measured, against what, which way."""
        what = "lower 95% bound" if self.bound == "conservative" and self.ci else "value"
        if self.bound == "conservative" and self.ci and self.direction == "lower":
            what = "upper 95% bound"
        rel = "below the minimum" if self.direction == "higher" else "above the maximum"
        unit = f" {self.unit}" if self.unit else ""
        point = f"{self.name} = {fmt(self.value)}{unit}"
        if self.ci is not None:
            point += f" (95% CI {fmt(self.ci[0])}–{fmt(self.ci[1])}"
            point += f", n={self.n})" if self.n else ")"
        if what != "value":
            return f"{point}: its {what} {fmt(self.compared_value)} is {rel} {fmt(self.threshold)}"
        return f"{point} is {rel} {fmt(self.threshold)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "ci": list(self.ci) if self.ci is not None else None,
            "n": self.n,
            "threshold": self.threshold,
            "direction": self.direction,
            "bound": self.bound,
            "passed": self.passed,
            "unit": self.unit,
            "description": self.description,
            "details": jsonable(self.details),
        }


@dataclass
class Finding:
    """Something a check found. ``severity=None`` means the check's (possibly overridden) severity.

    ``key`` identifies the finding within its check (a feature name, a class) so that waivers and
    baselines can refer to it. ``evidence`` holds small JSON-native data: tables as
    ``{"columns": [...], "rows": [[...], ...]}``, lists of row ids, arrays for plots.
    A finding at severity ``info`` is a note: it never fails a check.
    """

    message: str
    severity: Severity | None = None
    key: str | None = None
    metric: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, default_severity: Severity) -> dict[str, Any]:
        return {
            "message": self.message,
            "severity": self.severity or default_severity,
            "key": self.key,
            "metric": self.metric,
            "evidence": jsonable(self.evidence),
        }


@dataclass
class Outcome:
    """What a check returns. ``status`` is derived unless given: failed if any non-info finding."""

    metrics: list[Metric] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    summary: str = ""
    status: Status | None = None
    # Plot-ready data and other structured evidence that belongs to the check as a whole.
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_metrics(
        cls,
        metrics: Sequence[Metric],
        *,
        summary: str = "",
        findings: Sequence[Finding] = (),
        evidence: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Build an outcome whose failing metrics become findings with generated messages."""
        generated = [
            Finding(m.describe_failure(), key=m.name, metric=m.name) for m in metrics if m.passed is False
        ]
        return cls(
            metrics=list(metrics),
            findings=generated + list(findings),
            summary=summary,
            evidence=dict(evidence or {}),
        )

    def resolved_status(self) -> Status:
        if self.status is not None:
            return self.status
        failing = [f for f in self.findings if (f.severity or "medium") != "info"]
        return "failed" if failing else "passed"


@dataclass(frozen=True)
class Preflight:
    """What a check's ``preflight`` hook sees, before the first check of the audit runs.

    ``params`` are the check's validated parameters for this audit; ``spec`` is the validated
    audit spec; ``columns(split)`` lists a split's columns and ``frame(split)`` loads it (both
    cached: the checks see the same data). The hook raises ``SpecError`` (exit 2) to refuse a
    spec whose input this check could only reject once the audit is under way.
    """

    params: Mapping[str, Any]
    spec: Any
    base: Any
    columns: Callable[[str], list[str]]
    frame: Callable[[str], Any]
    splits: tuple[str, ...]


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any
    default: Any
    doc: str


@dataclass(frozen=True)
class CheckInfo:
    """Everything the engine knows about a check, read from its decorator and signature."""

    id: str
    title: str
    func: Callable[..., Outcome]
    requires: tuple[str, ...]
    severity: Severity
    nist_ai_rmf: tuple[str, ...]
    tags: tuple[str, ...]
    default_enabled: bool
    version: str
    params: tuple[Param, ...]
    description: str
    cost: str
    area: Area = "other"
    preflight: Callable[[Preflight], None] | None = None
    source: str = "builtin"
    regression_title: str | None = None
    regression_description: str | None = None

    def text_for(self, task: str | None) -> tuple[str, str]:
        """(title, description) for an audit of ``task``: a regressor's own wording where the check
        declares one (a classifier's "accuracy" and "ECE" would misdescribe what it measured)."""
        if task == "regression":
            return (self.regression_title or self.title, self.regression_description or self.description)
        return (self.title, self.description)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        """The defaults as JSON/YAML values: a tuple default (immutable, so no shared-list bug) is a list."""
        return {p.name: jsonable(p.default) for p in self.params}


_JSON_NATIVE = (bool, int, float, str, type(None))


def _param_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a docstring's ``Parameters`` / ``Args`` section.

    Accepts ``name: text`` and numpy-style ``name : type`` + indented text lines.
    """
    docs: dict[str, str] = {}
    lines = inspect.cleandoc(doc).splitlines()
    in_section = False
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        if stripped.lower().rstrip(":") in {"parameters", "args", "arguments", "params"}:
            in_section = True
            continue
        if not in_section:
            continue
        if set(stripped) <= {"-"} and stripped:
            continue
        if stripped and not line.startswith(" ") and not line.startswith("\t") and ":" not in stripped:
            in_section = False  # next section header
            current = None
            continue
        m = re.match(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$", stripped)
        if m and not line.startswith("        "):
            current = m.group(1)
            docs[current] = m.group(3).strip()
        elif current and stripped:
            docs[current] = (docs[current] + " " + stripped).strip()
        elif not stripped:
            current = None
    return docs


def _is_native(value: Any) -> bool:
    if isinstance(value, _JSON_NATIVE):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_native(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_native(v) for k, v in value.items())
    return False


def check(
    *,
    id: str,
    title: str,
    requires: Sequence[str] = (),
    severity: Severity = "medium",
    nist_ai_rmf: Sequence[str] = (),
    tags: Sequence[str] = (),
    default_enabled: bool = True,
    version: str = "1",
    cost: str = "fast",
    area: Area = "other",
    preflight: Callable[[Preflight], None] | None = None,
    regression_title: str | None = None,
    regression_description: str | None = None,
) -> Callable[[Callable[..., Outcome]], Callable[..., Outcome]]:
    """Mark a function as an auditkit check (validates and annotates; does not register).

    Parameters
    ----------
    id: stable identifier such as ``AK-LEAK-001`` (upper case, dash separated, never reused).
    title: one line saying what the check finds.
    requires: inputs without which the check is ``not_applicable`` (see ``REQUIREMENTS``);
        alternatives are written ``"id|group"``.
    severity: default severity of its findings; the spec may override it.
    nist_ai_rmf: NIST AI RMF 1.0 subcategories it provides evidence for (e.g. ``"MEASURE 2.5"``).
    tags: free labels for selection and reports.
    default_enabled: False for checks that only run when enabled (slow or opinionated ones).
    version: bump when the check's logic changes its results.
    cost: ``fast`` | ``moderate`` | ``slow``: what running it costs, shown by ``auditkit checks``.
    area: the report section it belongs to (one of ``AREAS``); recorded in results.json.
    preflight: an optional hook ``fn(Preflight) -> None`` the engine runs, for a selected check,
        before the first check of the audit: it refuses a spec the check would only fail on later.
    regression_title, regression_description: what the check measures when the audited model is a
        regressor (``model.task: regression``), where that differs from the classifier's title and
        the docstring's first paragraph; results.json and every report use them for such audits.
    """

    def decorate(fn: Callable[..., Outcome]) -> Callable[..., Outcome]:
        where = f"{fn.__module__}.{fn.__qualname__}"
        if not ID_PATTERN.match(id):
            raise TypeError(f"{where}: check id {id!r} must look like 'AK-AREA-001'")
        if area not in AREAS:
            raise TypeError(f"{where}: area {area!r} is not one of {', '.join(AREAS)}")
        if preflight is not None and not callable(preflight):
            raise TypeError(f"{where}: preflight must be a function of a Preflight")
        if severity not in SEVERITIES:
            raise TypeError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        for req in requires:
            for alt in req.split("|"):
                if alt not in REQUIREMENTS:
                    raise TypeError(f"{where}: unknown requirement {alt!r}; known: {sorted(REQUIREMENTS)}")
        from auditkit.frameworks.rmf import validate_subcategory_ids

        bad = validate_subcategory_ids(nist_ai_rmf)
        if bad:
            raise TypeError(f"{where}: unknown NIST AI RMF subcategories {bad}")
        sig = inspect.signature(fn)
        positional = [
            p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(positional) != 1:
            raise TypeError(f"{where}: a check takes exactly one positional parameter, the RunContext")
        doc = inspect.getdoc(fn) or ""
        if not doc:
            raise TypeError(f"{where}: a check needs a docstring documenting its parameters")
        pdocs = _param_docs(doc)
        hints = _type_hints(fn)
        params: list[Param] = []
        for p in sig.parameters.values():
            if p in positional:
                continue
            if p.kind is not p.KEYWORD_ONLY:
                raise TypeError(f"{where}: parameter {p.name!r} must be keyword-only (after '*')")
            if p.default is p.empty:
                raise TypeError(f"{where}: parameter {p.name!r} needs a default")
            if not _is_native(p.default):
                raise TypeError(f"{where}: default of {p.name!r} must be a YAML/JSON-native value")
            if p.name not in pdocs:
                raise TypeError(f"{where}: parameter {p.name!r} is not documented in the docstring")
            params.append(Param(p.name, hints.get(p.name, Any), p.default, pdocs[p.name]))
        description = doc.split("\n\n")[0].replace("\n", " ").strip()
        fn.__auditkit_check__ = CheckInfo(  # type: ignore[attr-defined]
            id=id,
            title=title,
            func=fn,
            requires=tuple(requires),
            severity=severity,
            nist_ai_rmf=tuple(nist_ai_rmf),
            tags=tuple(tags),
            default_enabled=default_enabled,
            version=str(version),
            params=tuple(params),
            description=description,
            cost=cost,
            area=area,
            preflight=preflight,
            regression_title=regression_title,
            regression_description=regression_description,
        )
        return fn

    return decorate


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolve parameter annotations (keeping ``Annotated`` domains: the engine validates them);
    the context's annotation may be a TYPE_CHECKING-only name."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except NameError:
        out: dict[str, Any] = {}
        for name, ann in getattr(fn, "__annotations__", {}).items():
            try:
                out[name] = eval(ann, fn.__globals__) if isinstance(ann, str) else ann  # noqa: S307
            except NameError:
                out[name] = Any
        return out


def check_info(obj: Any) -> CheckInfo | None:
    """The CheckInfo of a decorated function, or None."""
    info = getattr(obj, "__auditkit_check__", None)
    return info if isinstance(info, CheckInfo) else None


def fmt(x: float | None, digits: int = 4) -> str:
    """Human formatting of a metric value (renderers round; results keep full precision)."""
    if x is None:
        return "n/a"
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e12:
        return str(int(x))
    return f"{x:.{digits}g}"


def jsonable(obj: Any) -> Any:
    """Convert numpy/pandas scalars and arrays, tuples, paths and dates to JSON-native values."""
    import datetime as _dt
    from pathlib import PurePath

    if isinstance(obj, _JSON_NATIVE):
        if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
            return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
        return obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (_dt.date, _dt.datetime)):
        return obj.isoformat()
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return jsonable(tolist())
    item = getattr(obj, "item", None)
    if callable(item):
        return jsonable(item())
    return str(obj)
