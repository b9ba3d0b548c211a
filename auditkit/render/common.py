"""The view model every human-readable report is drawn from, built ONLY from results.json.

``build_view(results)`` groups checks into areas (data, training, evaluation, robustness, OOD,
governance, other), orders findings by severity, formats numbers (results keep full precision;
rendering rounds), renders evidence plots to SVG and caps evidence tables ("N more rows in
results.json"). Long strings are cut for display; the full text stays in results.json.

Templates are loaded with Jinja2 from the ``auditkit.report_templates`` package with autoescape on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from auditkit.numbers import (  # the one number formatter (results/ uses it too)
    cut,
    fmt_ci,
    fmt_num,
    fmt_value,
    small_is_real,
)
from auditkit.render.resources import template_text
from auditkit.results.document import deselected
from auditkit.safetext import inert
from auditkit.severity import SEVERITIES

if TYPE_CHECKING:
    import jinja2

AREAS: tuple[tuple[str, str, str], ...] = (
    ("data", "Data", "Leakage, balance, quality and drift of the datasets."),
    ("training", "Training", "How the model was trained: optimizers, schedules, curves, seeds, compute."),
    ("evaluation", "Evaluation", "Held-out performance, generalisation, calibration, slices and fairness."),
    (
        "robustness",
        "Robustness",
        "Adversarial evasion, black-box attacks, natural corruptions and poisoning.",
    ),
    (
        "ood",
        "Out-of-distribution",
        "Detection of inputs unlike the training data, and behaviour under shift.",
    ),
    (
        "deployment",
        "Deployment",
        "The artifacts to ship against the audited model: parity, robustness, inference cost.",
    ),
    ("governance", "Governance", "Model card, NIST AI RMF attestations, artefact provenance."),
    ("other", "Other checks", "Checks from plugins or outside the built-in areas."),
)
# results.json from before checks declared their area (auditkit 0.1): the area from the tags.
_TAG_AREA = {
    "data": "data", "leakage": "data", "balance": "data", "quality": "data", "drift": "data",
    "training": "training", "optimizer": "training",
    "evaluation": "evaluation", "performance": "evaluation", "fairness": "evaluation", "calibration": "evaluation",
    "robustness": "robustness", "adversarial": "robustness", "poisoning": "robustness", "corruption": "robustness",
    "ood": "ood", "shift": "ood",
    "governance": "governance", "documentation": "governance", "provenance": "governance",
}  # fmt: skip

STATUS_ORDER = ("failed", "error", "passed", "not_applicable", "skipped")
SEV_ORDER: dict[Any, int] = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # critical first

MAX_TEXT = 1500  # a message or card field longer than this is cut for display


def area_of(rec: dict[str, Any]) -> str:
    """The report section of a check: its declared ``area`` in results.json (older results: its tags)."""
    area = rec.get("area")
    if area in {key for key, _, _ in AREAS}:
        return str(area)
    return next((_TAG_AREA[t] for t in rec.get("tags") or [] if t in _TAG_AREA), "other")


def _metric_view(m: dict[str, Any]) -> dict[str, Any]:
    direction = m.get("direction")
    thr = m.get("threshold")
    rule = ""
    tiny = small_is_real(m.get("name"))
    if thr is not None and direction in ("higher", "lower"):
        rule = ("≥ " if direction == "higher" else "≤ ") + fmt_num(thr, keep_tiny=True)
        if m.get("bound") == "conservative":
            rule += " (CI bound)"
    return {
        "name": cut(m.get("name")),
        "value": fmt_num(m.get("value"), keep_tiny=tiny),
        "ci": fmt_ci(m.get("ci"), keep_tiny=tiny),
        "n": fmt_num(m.get("n")) if m.get("n") is not None else "",
        "rule": rule,
        "passed": m.get("passed"),
        "unit": cut(m.get("unit") or "", 20),
        "description": cut(m.get("description") or "", 300),
    }


def _is_table(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("columns"), list) and isinstance(v.get("rows"), list)


def _table_view(title: str, t: dict[str, Any], max_rows: int, max_cols: int = 10) -> dict[str, Any]:
    cols = t["columns"]
    rows = [r for r in t["rows"] if isinstance(r, (list, tuple))]
    total = t.get("total_rows")
    total = int(total) if isinstance(total, (int, float)) and not isinstance(total, bool) else len(rows)
    shown = rows[:max_rows]
    more = max(total - len(shown), 0)
    tiny = [small_is_real(c) for c in cols[:max_cols]] + [False] * max_cols
    return {
        "title": cut(title.replace("_", " ")),
        "columns": [cut(c, 60) for c in cols[:max_cols]],
        "rows": [[fmt_value(c, 120, keep_tiny=tiny[i]) for i, c in enumerate(r[:max_cols])] for r in shown],
        "more_rows": more,
        "more_cols": max(len(cols) - max_cols, 0),
    }


def _evidence_view(ev: Any, max_rows: int, max_plots: int, max_tables: int = 20) -> dict[str, Any]:
    from auditkit.render.plots import render_plot

    tables, plots, scalars = [], [], []
    if not isinstance(ev, dict):
        return {"tables": [], "plots": [], "scalars": [], "more_plots": 0, "more_tables": 0, "undrawable": 0}
    raw_plots: list[Any] = ev["plots"] if isinstance(ev.get("plots"), list) else []
    undrawable = 0
    for p in raw_plots[:max_plots]:
        svg = render_plot(p)
        if svg is None:
            undrawable += 1
        else:
            plots.append(svg)
    for key, val in ev.items():
        if key == "plots":
            continue
        if _is_table(val):
            tables.append(_table_view(str(key), val, max_rows))
        elif isinstance(val, (str, int, float, bool)) or val is None:
            scalars.append((cut(str(key).replace("_", " ")), fmt_value(val, 300)))
        elif isinstance(val, dict) and all(_is_table(v) for v in val.values()) and val:
            for sub, tv in val.items():
                tables.append(_table_view(f"{key}: {sub}", tv, max_rows))
        else:
            scalars.append((cut(str(key).replace("_", " ")), fmt_value(val, 300)))
    more_tables = max(len(tables) - max_tables, 0)
    tables = tables[:max_tables]
    return {
        "tables": tables,
        "plots": plots,
        "scalars": scalars[:30],
        "more_plots": max(len(raw_plots) - max_plots, 0),
        "more_tables": more_tables,
        "undrawable": undrawable,
    }


def _count_tables(ev: Any) -> int:
    if not isinstance(ev, dict):
        return 0
    n = 0
    for key, val in ev.items():
        if key == "plots":
            continue
        if _is_table(val):
            n += 1
        elif isinstance(val, dict) and val and all(_is_table(v) for v in val.values()):
            n += len(val)
    return n


def _finding_view(f: dict[str, Any], check_id: str) -> dict[str, Any]:
    w = f.get("waiver") or None
    return {
        "check": check_id,
        "severity": f.get("severity") or "info",
        "message": cut(f.get("message"), MAX_TEXT),
        "key": cut(f.get("key")) if f.get("key") is not None else "",
        "waiver": {
            "reason": cut(w.get("reason"), 500),
            "expires": cut(w.get("expires"), 40),
            "approved_by": cut(w.get("approved_by") or "", 200),
            "expired": bool(w.get("expired")),
        }
        if isinstance(w, dict)
        else None,
    }


def error_text(err: Any) -> tuple[str, str]:
    """A check's error record as (one line ``Type: message``, the traceback or that line)."""
    if not err:
        return "", ""
    if not isinstance(err, dict):
        text = str(err).strip()
        return (text.splitlines()[-1] if text else ""), text
    head = f"{err.get('type') or 'Error'}: {str(err.get('message') or '').strip()}".strip()
    head = head.splitlines()[0] if head else ""
    trace = str(err.get("traceback") or "").strip()
    return head, trace or head


def _error_tail(err: Any, lines: int = 25) -> str:
    """The error's one line (``lines`` = 1), or the last ``lines`` lines of its traceback."""
    head, trace = error_text(err)
    if lines <= 1:
        return cut(head, 4000)
    return cut("\n".join(trace.splitlines()[-lines:]), 4000)


def _check_view(
    rec: dict[str, Any], max_rows: int, max_plots: int, max_findings: int, max_tables: int = 20
) -> dict[str, Any]:
    findings = [_finding_view(f, rec.get("id", "")) for f in rec.get("findings") or [] if isinstance(f, dict)]
    findings.sort(key=lambda f: SEV_ORDER.get(f["severity"], 99))
    cid = str(rec.get("id", ""))
    return {
        "id": cut(cid, 80),
        "anchor": "check-" + hashlib.sha256(cid.encode()).hexdigest()[:12],
        "title": cut(rec.get("title"), 300),
        "status": rec.get("status") if rec.get("status") in STATUS_ORDER else "error",
        "severity": rec.get("severity") or "",
        "summary": cut(rec.get("summary") or "", MAX_TEXT),
        "description": cut(rec.get("description") or "", MAX_TEXT),
        "duration": fmt_num(rec.get("duration_s")),
        "version": cut(rec.get("version") or "", 20),
        "source": cut(rec.get("source") or "", 120),
        "nist": [cut(s, 40) for s in rec.get("nist_ai_rmf") or []],
        "tags": [cut(t, 40) for t in rec.get("tags") or []],
        "metrics": [_metric_view(m) for m in (rec.get("metrics") or [])[:40] if isinstance(m, dict)],
        "more_metrics": max(len(rec.get("metrics") or []) - 40, 0),
        "findings": findings[:max_findings],
        "more_findings": max(len(findings) - max_findings, 0),
        "evidence": _evidence_view(rec.get("evidence"), max_rows, max_plots, max_tables),
        "skip_reason": cut(rec.get("skip_reason") or "", 500),
        "error": _error_tail(rec.get("error")),
        "artifacts": [
            cut(a if isinstance(a, str) else json.dumps(a, default=str), 200)
            for a in rec.get("artifacts") or []
        ],
    }


def _user_params(results: dict[str, Any]) -> set[tuple[str, str]]:
    """(check id, parameter) pairs the user set: in the spec's ``checks.params`` or with ``--param``
    on the recorded command line; every other parameter was left at its default."""
    spec_params = ((results.get("spec") or {}).get("checks") or {}).get("params") or {}
    out = {(str(cid), str(k)) for cid, kv in spec_params.items() if isinstance(kv, dict) for k in kv}
    argv = [str(a) for a in (results.get("run") or {}).get("argv") or []]
    for i, a in enumerate(argv):
        value = (
            a.split("=", 1)[1]
            if a.startswith("--param=")
            else argv[i + 1]
            if a == "--param" and i + 1 < len(argv)
            else None
        )
        if value:
            key = value.partition("=")[0]
            cid, _, name = key.rpartition(".")
            out.add((cid, name))
    return out


def _param_view(rec: dict[str, Any], name: str, value: Any, user_set: bool) -> tuple[str, str]:
    """(name, value as shown): a parameter left at its default says so; one whose default is
    None ("the check chooses") shows the value the check recorded in its evidence (top level or
    ``setup``) as the value used."""
    shown = fmt_value(value, 200, keep_tiny=True)
    if user_set:
        return cut(name, 60), shown
    if value is None:
        raw = rec.get("evidence")
        ev: dict[str, Any] = raw if isinstance(raw, dict) else {}
        setup: dict[str, Any] = ev["setup"] if isinstance(ev.get("setup"), dict) else {}
        for place in (ev, setup):
            used = place.get(name)
            if used is not None and not _is_table(used):
                return cut(name, 60), f"{fmt_value(used, 200, keep_tiny=True)} (default, chosen by the check)"
        return cut(name, 60), "none (default: not used or chosen per input; see the check)"
    return cut(name, 60), f"{shown} (default)"


_NARROWING = ("not selected: outside checks.select", "not selected: ignored by checks.ignore")


def has_tags(rec: dict[str, Any], *tags: str) -> bool:
    """Whether a check record carries every one of ``tags`` (results.json ``tags``)."""
    own = rec.get("tags")
    return isinstance(own, list) and all(t in own for t in tags)


def is_headline_performance(rec: dict[str, Any]) -> bool:
    """The audit's headline performance check, found by what it is, not by its id: the
    evaluation-area check tagged both "performance" and "evaluation" (AK-PERF-001 today; the other
    performance checks are tagged by what they break performance down by: overfitting,
    calibration, slices). Its declared metric thresholds are the report's performance criteria."""
    return area_of(rec) == "evaluation" and has_tags(rec, "performance", "evaluation")


def scope_view(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the audit covered: of the M checks it knew, how many ran, did not apply, were skipped or
    deselected; "narrowed" when checks were left out by ``select``/``ignore`` (not merely off by
    default), so a two-check audit can never pass for a complete one."""
    counts = Counter(r.get("status") for r in records if not deselected(r))
    desel = [r for r in records if deselected(r)]
    narrowed = [r for r in desel if str(r.get("skip_reason") or "").startswith(_NARROWING)]
    return {
        "total": len(records),
        "selected": len(records) - len(desel),
        "ran": sum(counts.get(s, 0) for s in ("passed", "failed", "error")),
        "not_applicable": counts.get("not_applicable", 0),
        "skipped": counts.get("skipped", 0),
        "deselected": len(desel),
        "off_by_default": len(desel) - len(narrowed),
        "narrowed": bool(narrowed),
        "deselected_list": [
            {
                "id": cut(r.get("id"), 80),
                "title": cut(r.get("title"), 200),
                "reason": cut(r.get("skip_reason"), 300),
            }
            for r in sorted(desel, key=lambda r: str(r.get("id")))
        ],
    }


def criteria_view(
    records: list[dict[str, Any]], gate: dict[str, Any], task: str | None = None
) -> dict[str, Any]:
    """The pass/fail criteria the audit was judged by: ``fail_on``, and the performance minimums
    declared for the headline performance check (``is_headline_performance``; none declared means
    accuracy — for a regressor RMSE, MAE, R² — was reported, not gated)."""
    headline = next((r for r in records if is_headline_performance(r)), None)
    perf = headline if headline is not None and not deselected(headline) else None
    declared = []
    if perf is not None:
        for m in perf.get("metrics") or []:
            if (
                isinstance(m, dict)
                and m.get("threshold") is not None
                and m.get("name") not in ("accuracy_over_majority", "rmse_minus_mean_baseline")
            ):
                declared.append(f"{cut(m.get('name'), 60)} {_metric_view(m)['rule']}")
    return {
        "fail_on": cut(gate.get("fail_on") or "", 20),
        "perf_ran": perf is not None and perf.get("status") in ("passed", "failed"),
        "perf_status": (perf or {}).get("status") or "not in this audit",
        # Named in the cover's text; a results.json without the check says so in words.
        "perf_id": cut(headline.get("id"), 80) if headline else "the headline performance check",
        "performance": declared,
        "regression": task == "regression",
    }


def task_text(results: dict[str, Any]) -> str:
    """One sentence saying what task the model was audited as and how that was decided — inferred
    from the label or declared — with the way to change it when an inferred classification has a
    numeric label (a count with ≤ ``data.max_classes`` values is audited as classes unless declared)."""
    subject = results.get("subject") or {}
    task = subject.get("task")
    if task not in ("classification", "regression"):
        return ""
    data = (results.get("spec") or {}).get("data") or {}
    label = cut(data.get("label") or "the label", 80)
    max_classes = data.get("max_classes") or 50
    out = subject.get("output")
    kind = task
    if task == "regression" and out not in (None, "point"):
        kind += f" (model.output: {out if isinstance(out, str) else 'quantiles ' + str((out or {}).get('quantiles'))})"
    if not subject.get("task_inferred"):
        return f"{kind}, declared (model.task)"
    if task == "regression":
        return (
            f"{kind}, inferred: {label!r} is numeric with more than data.max_classes ({max_classes}) distinct "
            "values (declare model.task to say so explicitly)"
        )
    classes: set[str] = set()
    for ds in (subject.get("datasets") or {}).values():
        if isinstance(ds, dict) and isinstance(ds.get("class_counts"), dict):
            classes.update(str(k) for k in ds["class_counts"])
    numeric = bool(classes) and all(re.fullmatch(r"-?\d+(\.0+)?", c) for c in classes)
    text = (
        f"{kind}, inferred: {label!r} has {len(classes)} distinct values, at most data.max_classes "
        f"({max_classes})"
    )
    if numeric and len(classes) > 2:
        text += (
            f"; its values are numbers: if {label!r} is a count, score or measurement, declare "
            "model.task: regression to audit it as a number (RMSE, R², error parity) rather than as classes"
        )
    return text


def below_gate(records: list[dict[str, Any]], gate: dict[str, Any]) -> list[str]:
    """Failed checks none of whose findings blocked the gate: below ``fail_on``, or waived."""
    blocking = {str(b.get("check")) for b in gate.get("blocking") or [] if isinstance(b, dict)}
    return sorted(
        cut(r.get("id"), 80)
        for r in records
        if r.get("status") == "failed" and not deselected(r) and str(r.get("id")) not in blocking
    )


def document_date(results: dict[str, Any]) -> dt.datetime:
    """The report's date: when the audit finished (never the rendering time, for reproducible bytes)."""
    raw = (results.get("run") or {}).get("finished_at")
    try:
        d = dt.datetime.fromisoformat(str(raw))
    except (TypeError, ValueError):
        d = dt.datetime(1980, 1, 1, tzinfo=dt.timezone.utc)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.astimezone(dt.timezone.utc)


def _fingerprints(subject: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    model = subject.get("model")
    if isinstance(model, dict):
        # Scalars only (format, path, seed, ...): nested configs live in results.json and the appendix.
        items = [
            f"{cut(k, 40)}: {fmt_value(v, 80)}"
            for k, v in sorted(model.items())
            if not k.endswith("sha256") and isinstance(v, (str, int, float, bool))
        ]
        details = ", ".join(items[:5]) + (
            f", … ({len(items) - 5} more in results.json)" if len(items) > 5 else ""
        )
        rows.append(
            {"what": "model", "sha256": cut(model.get("sha256") or "—", 80), "details": cut(details, 400)}
        )
    for name, ds in sorted((subject.get("datasets") or {}).items()):
        if not isinstance(ds, dict):
            continue
        counts = ds.get("class_counts") or {}
        details = f"{fmt_num(ds.get('rows'))} rows, {fmt_num(ds.get('features'))} features"
        if counts:
            details += f", {len(counts)} classes"
        rows.append(
            {
                "what": f"dataset {cut(name, 60)}",
                "sha256": cut(ds.get("sha256") or "—", 80),
                "details": details,
            }
        )
    return rows


def _manifest_view(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(manifest, dict):
        return None

    def rows(entries: Any, role: bool) -> list[dict[str, str]]:
        out = []
        for e in entries or []:
            if isinstance(e, dict):
                out.append({
                    "role": cut(e.get("role") or "", 60) if role else "",
                    "path": cut(e.get("path"), 120),
                    "sha256": cut(e.get("sha256"), 80),
                    "bytes": fmt_num(e.get("bytes")),
                })  # fmt: skip
        return out

    return {
        "inputs": rows(manifest.get("inputs"), True)[:200],
        "outputs": rows(manifest.get("outputs"), False)[:200],
    }


def build_view(
    results: dict[str, Any],
    *,
    attachments: dict[str, bytes] | None = None,
    max_rows: int = 25,
    max_plots: int = 6,
    max_findings: int = 30,
    max_tables: int = 20,
    row_budget: int | None = None,
    passed_tables: int | None = None,
    passed_rows: int | None = None,
    passed_plots: int | None = None,
    finding_budget: int | None = None,
) -> dict[str, Any]:
    """Everything the templates show, from the results document (and the manifest attachment).

    ``passed_tables`` / ``passed_rows`` / ``passed_plots`` (PDF): a passed check shows fewer evidence tables, rows and plots
    (its metrics with intervals are the evidence; failures get the room).

    ``row_budget`` / ``finding_budget`` (PDF): evidence-table rows and findings for the whole report,
    shared out evenly (at least 5 per table or check, at most ``max_rows`` / ``max_findings``), so a
    report with many checks and heavy evidence stays a readable size; the rest is counted.
    """
    from auditkit.frameworks.rmf import CITATION, coverage

    attachments = attachments or {}
    run = results.get("run") or {}
    subject = results.get("subject") or {}
    spec = results.get("spec") or {}
    gate = results.get("gate") or {}
    card = spec.get("card") or {}
    report_spec = spec.get("report") or {}
    records = [r for r in results.get("checks") or [] if isinstance(r, dict)]

    manifest = None
    if "manifest.json" in attachments:
        try:
            manifest = json.loads(attachments["manifest.json"])
        except (ValueError, UnicodeDecodeError):
            manifest = None
    if "manifest.json" in attachments:
        digest_label = "manifest sha256"
        digest = hashlib.sha256(attachments["manifest.json"]).hexdigest()
    else:
        digest_label = "results sha256"
        raw = attachments.get("results.json")
        if raw is None:
            from auditkit.results.document import dumps

            raw = dumps(results).encode("utf-8")
        digest = hashlib.sha256(raw).hexdigest()

    ran = [r for r in records if not deselected(r)]
    shown = [r for r in ran if r.get("status") in ("failed", "error", "passed")]
    if row_budget is not None:
        n_tables = sum(min(_count_tables(r.get("evidence")), max_tables) for r in shown)
        max_rows = max(5, min(max_rows, row_budget // max(n_tables, 1)))
    if finding_budget is not None:
        n_with = sum(1 for r in shown if r.get("findings"))
        max_findings = max(5, min(max_findings, finding_budget // max(n_with, 1)))
    areas = []
    for key, title, blurb in AREAS:
        recs = [r for r in ran if area_of(r) == key]
        if key == "other" and not recs:
            continue  # the built-in areas always show (an empty one says so); "other" only when used
        detailed = [r for r in recs if r.get("status") in ("failed", "error", "passed")]
        detailed.sort(key=lambda r: (STATUS_ORDER.index(r["status"]), str(r.get("id"))))
        other = [r for r in recs if r not in detailed]
        other.sort(key=lambda r: str(r.get("id")))
        areas.append({
            "key": key, "title": title, "blurb": blurb, "anchor": f"area-{key}",
            "checks": [
                _check_view(r, max_rows, max_plots, max_findings, max_tables)
                if r.get("status") != "passed" or passed_tables is None
                else _check_view(r, min(max_rows, passed_rows or max_rows), min(max_plots, passed_plots or max_plots),
                                 max_findings, passed_tables)
                for r in detailed
            ],
            "not_run": [{"id": cut(r.get("id"), 80), "title": cut(r.get("title"), 200), "status": r.get("status"),
                         "reason": cut(r.get("skip_reason") or "", 300)} for r in other],
            "counts": dict(Counter(r.get("status") for r in recs)),
        })  # fmt: skip

    status_counts = Counter(r.get("status") for r in ran)
    failed = []
    for r in ran:
        if r.get("status") not in ("failed", "error"):
            continue
        fs = [f for f in r.get("findings") or [] if isinstance(f, dict) and f.get("severity") != "info"]
        fs.sort(key=lambda f: SEV_ORDER.get(f.get("severity"), 99))
        failed.append({
            "id": cut(r.get("id"), 80), "title": cut(r.get("title"), 200), "status": r.get("status"),
            "anchor": "check-" + hashlib.sha256(str(r.get("id", "")).encode()).hexdigest()[:12],
            "severity": r.get("severity") or "",
            "why": cut(r.get("summary") or (fs[0].get("message") if fs else "") or
                       (_error_tail(r.get("error"), 1) if r.get("status") == "error" else ""), 400),
            "findings": [_finding_view(f, r.get("id", "")) for f in fs[:3]],
            "more": max(len(fs) - 3, 0),
        })  # fmt: skip
    failed.sort(key=lambda f: (0 if f["status"] == "error" else 1, SEV_ORDER.get(f["severity"], 99), f["id"]))

    waivers = []
    for r in records:
        for f in r.get("findings") or []:
            if isinstance(f, dict) and isinstance(f.get("waiver"), dict):
                waivers.append(_finding_view(f, r.get("id", "")))

    rmf_rows = coverage(records, (results.get("rmf") or {}).get("attestations") or {})
    functions: list[dict[str, Any]] = []
    for row in rmf_rows:
        if not functions or functions[-1]["id"] != row["function"]:
            functions.append({"id": row["function"], "rows": []})
        att = row.get("attestation") or None
        functions[-1]["rows"].append({
            "id": row["id"],
            "text": row["text"],
            "organisational": row["organisational"],
            "state": row["state"],
            "checks": [{"id": cut(c["id"], 60), "status": c["status"]} for c in row["checks"]],
            "attestation": {
                "status": cut(att.get("status"), 40), "by": cut(att.get("by"), 120),
                "date": cut(att.get("date"), 30), "evidence": cut(att.get("evidence"), 300),
            } if isinstance(att, dict) else None,
        })  # fmt: skip
    rmf_counts = Counter(r["state"] for r in rmf_rows)

    user_set = _user_params(results)
    params = []
    for r in records:
        if deselected(r):
            continue
        thresholds = [
            f"{cut(m.get('name'), 60)} {_metric_view(m)['rule']}"
            for m in r.get("metrics") or []
            if isinstance(m, dict) and m.get("threshold") is not None
        ]
        params.append({
            "id": cut(r.get("id"), 80),
            "params": [_param_view(r, k, v, (str(r.get("id")), k) in user_set)
                       for k, v in sorted((r.get("params") or {}).items())],
            "thresholds": thresholds,
            "severity": r.get("severity") or "",
            "version": cut(r.get("version") or "", 20),
        })  # fmt: skip

    env = results.get("environment") or {}
    libs = env.get("libraries") or {}
    env_rows = [
        (cut(k, 40), compute_text(v) if k == "compute" else fmt_value(v, 200))
        for k, v in sorted(env.items())
        if k != "libraries"
    ]
    date = document_date(results)
    owners = [
        cut(o.get("name") if isinstance(o, dict) else o, 200)
        + (f" ({cut(o.get('contact'), 120)})" if isinstance(o, dict) and o.get("contact") else "")
        for o in card.get("owners") or []
    ]
    return {
        "title": cut(report_spec.get("title") or "Pre-deployment audit", 200),
        "organisation": cut(report_spec.get("organisation") or "", 200),
        "subject": cut(subject.get("name") or spec.get("name") or "unnamed", 300),
        "description": cut(subject.get("description") or spec.get("description") or "", MAX_TEXT),
        "report_id": cut(run.get("id") or "unknown", 64),
        "digest_label": digest_label,
        "digest": digest,
        "signing": _signing_view(manifest),
        "date": date.strftime("%Y-%m-%d %H:%M UTC"),
        "date_iso": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool_version": cut((results.get("tool") or {}).get("version") or "", 40),
        "seed": fmt_num(run.get("seed")),
        "duration": fmt_num(run.get("duration_s")),
        "spec_sha256": cut(run.get("spec_sha256") or "", 80),
        "argv": cut(" ".join(map(str, run.get("argv") or [])), 500),
        "fingerprints": _fingerprints(subject),
        "gate": {
            "decision": "pass" if gate.get("decision") == "pass" else "fail",
            "exit_code": gate.get("exit_code"),
            "reason": cut(gate.get("reason") or "", 500),
            "fail_on": cut(gate.get("fail_on") or "", 20),
            "recommendation": "go" if gate.get("recommendation") == "go" else "no-go",
            "blocking": len(gate.get("blocking") or []),
            "waived": len(gate.get("waived") or []),
            "regressions": [
                cut(x.get("message") if isinstance(x, dict) else x, 400)
                for x in gate.get("regressions") or []
            ],
            "errored": [cut(x, 80) for x in gate.get("errored") or []],
            "baseline": cut(gate.get("baseline") or "", 200),
            "render_errors": [cut(json.dumps(x, default=str), 300) for x in gate.get("render_errors") or []],
        },
        "status_counts": {s: status_counts.get(s, 0) for s in STATUS_ORDER},
        "scope": scope_view(records),
        "criteria": criteria_view(records, gate, str(subject.get("task") or "")),
        "task": cut(task_text(results), 600),
        "below_gate": below_gate(records, gate),
        "by_severity": [
            (s, (gate.get("findings_by_severity") or {}).get(s, 0)) for s in reversed(SEVERITIES)
        ],
        "failed": failed,
        "waivers": waivers,
        "areas": areas,
        "rmf": {
            "functions": functions,
            "counts": {
                k: rmf_counts.get(k, 0)
                for k in ("tested and attested", "tested", "attested", "not evidenced")
            },
            "total": len(rmf_rows),
            "citation": CITATION,
        },  # fmt: skip
        "card": {
            "owners": owners,
            "intended_use": cut(card.get("intended_use") or "", MAX_TEXT),
            "out_of_scope": cut(card.get("out_of_scope") or "", MAX_TEXT),
            "limitations": cut(card.get("limitations") or "", MAX_TEXT),
            "license": cut(card.get("license") or "", 100),
            "references": "; ".join(cut(r, 300) for r in (card.get("references") or [])[:10]),
        },
        "params": params,
        "environment": env_rows,
        "libraries": [(cut(k, 60), cut(v or "not installed", 60)) for k, v in sorted(libs.items())],
        "plugins": [
            {k: cut(p.get(k) or "", 120) for k in ("name", "distribution", "version", "value")}
            for p in results.get("plugins") or []
            if isinstance(p, dict)
        ],
        "manifest": _manifest_view(manifest),
    }


def shown(value: Any) -> Any:
    """Jinja ``finalize``: text with bidi, format and control characters escaped (``\\u202e``).

    Markup (already-escaped HTML, the plots' SVG, a joined list) stays Markup: escaping its
    invisible characters adds only ASCII."""
    from markupsafe import Markup

    if isinstance(value, Markup):
        return Markup(inert(str(value)))
    if isinstance(value, str):
        return inert(value)
    return value


_BREAK_AFTER = re.compile(r"([_/:])")
_LONG_RUN = re.compile(r"[^\s_/:]{25,}")
MAX_RUN = 24  # a run without a break opportunity longer than this (a hash, a cut 10k string) breaks every 24


def breakable(value: Any) -> Any:
    """Table text that wraps only between words: a break opportunity (``<wbr>``) after ``_``, ``/``
    and ``:`` (identifiers such as ``robust_accuracy`` and paths), none inside a word. The CSS
    forbids breaking elsewhere (``overflow-wrap: normal``); only a run of more than 24 characters
    with no such place (a digest, a cut string) gets breaks every 24 characters."""
    from markupsafe import Markup, escape

    s = inert(value if isinstance(value, str) else fmt_value(value), multiline=True)
    s = _LONG_RUN.sub(
        lambda m: "\0".join(m.group()[i : i + MAX_RUN] for i in range(0, len(m.group()), MAX_RUN)), s
    )
    s = _BREAK_AFTER.sub("\\1\0", s)
    return Markup(str(escape(s)).replace("\0", "<wbr>"))


@lru_cache(maxsize=1)
def jinja_env() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("auditkit.report_templates", "."),
        autoescape=True,  # every string from results.json is escaped unless marked safe here
        finalize=shown,  # every {{ }} output, filtered or not, with invisible characters made visible
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_num
    env.filters["brk"] = breakable
    return env


# How much of each check the reports show; the rest is counted ("N more ... in results.json").
LIMITS = {
    "pdf": {
        "max_rows": 10,
        "max_plots": 4,
        "max_findings": 12,
        "max_tables": 4,
        "row_budget": 400,
        "finding_budget": 150,
        "passed_tables": 1,
        "passed_rows": 5,
        "passed_plots": 2,
    },
    "html": {"max_rows": 50, "max_plots": 12, "max_findings": 100, "max_tables": 20},
}


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _signing_view(manifest: Any) -> str:
    """The cover's signature line: the key that signs the manifest when it was known at render time."""
    signing = manifest.get("signing") if isinstance(manifest, dict) else None
    fp = signing.get("public_key_fingerprint") if isinstance(signing, dict) else None
    if isinstance(fp, str) and fp:
        return (f"signed with Ed25519 key {cut(fp, 80)} (manifest.sig beside manifest.json; "
                "check it with auditkit verify DIR --key PUBLIC_KEY)")  # fmt: skip
    return ("unsigned at render time: a signature added later (auditkit sign) is in manifest.sig beside "
            "manifest.json and cannot appear here; check it with auditkit verify DIR --key PUBLIC_KEY")  # fmt: skip


# The crosswalk frameworks' matrices as the templates show them (data: auditkit.frameworks.crosswalk).
_RAN = ("passed", "failed", "error")  # a mapped check that ran evidences its items


def _framework_row_view(r: dict[str, Any], sections: dict[str, str]) -> dict[str, Any]:
    att = r["attestation"] if isinstance(r["attestation"], dict) else None
    return {
        "id": r["id"], "title": r["title"], "state": r["state"], "nist": r["nist"],
        # Checks that ran are listed; mapped checks that did not run are counted (they evidence nothing).
        "checks": [{"id": cut(c["id"], 60), "status": str(c["status"])} for c in r["checks"] if c["status"] in _RAN],
        "not_run": sum(1 for c in r["checks"] if c["status"] not in _RAN),
        "attestation": {k: cut(att.get(k), n) for k, n in (("status", 40), ("by", 120), ("date", 30), ("evidence", 300))}
        if att else None,
        "nist_attestations": r["nist_attestations"],
        "sections": [{"anchor": s, "label": sections[s]} for s in r.get("sections") or []],
        "evidence_note": r.get("evidence_note") or "",
    }  # fmt: skip


def frameworks_view(results: dict[str, Any]) -> dict[str, Any]:
    """What the report templates show for the crosswalk frameworks the spec selects."""
    from auditkit.frameworks.crosswalk import CROSSWALKS, STATES, coverage, load, selected

    chosen = selected(results)
    records = [r for r in results.get("checks") or [] if isinstance(r, dict)]
    atts = (results.get("rmf") or {}).get("attestations") or {}
    out: list[dict[str, Any]] = []
    annex: list[dict[str, Any]] | None = None
    for fw in (f for f in CROSSWALKS if f in chosen):
        doc = load(fw)
        sections = doc.get("sections") or {}
        rows = coverage(fw, records, atts)
        matrix = [r for r in rows if r["group"] != "Annex IV"]
        groups: list[dict[str, Any]] = []
        for r in matrix:
            if not groups or groups[-1]["id"] != r["group"]:
                groups.append({"id": r["group"], "title": r["group_title"], "rows": []})
            groups[-1]["rows"].append(_framework_row_view(r, sections))
        counts = Counter(r["state"] for r in matrix)
        prov = doc["provenance"]
        out.append({
            "id": fw, "anchor": f"fw-{fw}", "name": doc["name"], "title": doc["title"],
            "source": prov.get("source") or prov.get("standard"), "text_note": prov.get("text"),
            "crosswalk": prov.get("crosswalk"), "mapping_note": prov.get("mapping_note"),
            "groups": groups, "total": len(matrix), "counts": {k: counts.get(k, 0) for k in STATES},
        })  # fmt: skip
        if fw == "eu_ai_act":
            annex = [_framework_row_view(r, sections) for r in rows if r["group"] == "Annex IV"]
    return {"selected": chosen, "crosswalks": out, "annex_iv": annex}


def render_html(
    results: dict[str, Any], *, attachments: dict[str, bytes] | None = None, pdf: bool, **limits: int
) -> str:
    """The report as one HTML document (``pdf=True``: paged-media variant with bundled fonts)."""
    from markupsafe import Markup

    from auditkit.render.plots import start_anchored

    view = build_view(results, attachments=attachments, **{**LIMITS["pdf" if pdf else "html"], **limits})
    view["frameworks"] = frameworks_view(results)  # EU AI Act / ISO 42001 matrices (report.frameworks)
    for area in view["areas"]:
        for c in area["checks"]:
            # SVG produced by auditkit.render.plots, which escapes every text it draws. The PDF takes
            # each plot as an SVG image (data: URL): WeasyPrint then skips the HTML parse and CSS
            # cascade of every SVG element, a third of the time of a plot-heavy report.
            c["evidence"]["plots"] = [
                Markup(
                    f'<img class="plot" alt="plot" src="data:image/svg+xml;base64,{_b64(start_anchored(s))}">'
                )
                if pdf
                else Markup(s)
                for s in c["evidence"]["plots"]
            ]
    css = template_text("report.css")
    html = jinja_env().get_template("report.html.j2").render(v=view, pdf=pdf, css=Markup(css))
    # PDF: the break opportunities as U+200B, which WeasyPrint lays out a quarter faster than <wbr>
    # elements (7.1 → 5.4 s for the demo, interleaved, loaded machine) and leaves out of the text
    # layer. Every "<wbr>" here is the brk filter's: text from results.json is escaped.
    return html.replace("<wbr>", "\u200b") if pdf else html


def compute_text(compute: Any) -> str:
    """environment.compute in one line: "local, 2 workers, devices cpu" (docs/compute.md)."""
    if not isinstance(compute, dict):
        return fmt_value(compute, 200)
    text = f"{compute.get('kind')}, {compute.get('workers')} worker(s), devices {', '.join(map(str, compute.get('devices') or []))}"
    if compute.get("address"):
        text += f", address {compute['address']}"
    if compute.get("note"):
        text += f" ({compute['note']})"
    return cut(text, 300)
