"""What changed between two audits: gate, check statuses, metrics (with intervals) and findings.

``diff_results(base, new)`` returns a JSON-able dict; ``render_diff`` prints it as a terminal
table (rich) or returns Markdown for a pull-request comment. A metric change is called
``significant`` when the two 95% intervals do not overlap (the same rule as the gate's regression
check); ``better``/``worse`` follows the metric's direction.
"""

from __future__ import annotations

from typing import Any

from auditkit.numbers import fmt_ci, fmt_num
from auditkit.results.document import deselected
from auditkit.safetext import inert, markdown_text

_STATUS_RANK = {"passed": 0, "not_applicable": 1, "skipped": 1, "failed": 2, "error": 3}  # higher = worse


def _index(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(r.get("id")): r for r in doc.get("checks") or [] if isinstance(r, dict) and not deselected(r)}


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _metric_change(cid: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """One metric base → new; ``old``/``new`` is None when the metric is only in one audit."""
    o, n = old or {}, new or {}
    ov, nv = _num(o.get("value")), _num(n.get("value"))
    direction = n.get("direction") or o.get("direction")
    oci, nci = o.get("ci"), n.get("ci")
    if ov is None or nv is None:
        # Added, removed, or a value that became (or stopped being) non-numeric (null, "inf").
        if old is not None and new is not None and o.get("value") == n.get("value"):
            return None
        trend = "added" if old is None else "removed" if new is None else "changed"
        return {
            "check": cid, "metric": str(n.get("name") or o.get("name")), "base": o.get("value"),
            "base_ci": list(oci) if oci else None, "new": n.get("value"), "new_ci": list(nci) if nci else None,
            "delta": None, "direction": direction, "trend": trend, "significant": None,
            "threshold": n.get("threshold", o.get("threshold")), "base_passed": o.get("passed"),
            "new_passed": n.get("passed"),
        }  # fmt: skip
    if ov == nv and oci == nci:
        return None
    delta = nv - ov
    if direction == "higher":
        trend = "better" if delta > 0 else "worse" if delta < 0 else "same"
    elif direction == "lower":
        trend = "better" if delta < 0 else "worse" if delta > 0 else "same"
    else:
        trend = "changed"
    significant = None
    if isinstance(oci, (list, tuple)) and isinstance(nci, (list, tuple)) and len(oci) == 2 and len(nci) == 2:
        significant = bool(nci[1] < oci[0] or nci[0] > oci[1])
    return {
        "check": cid, "metric": str(n.get("name")), "base": ov, "base_ci": list(oci) if oci else None,
        "new": nv, "new_ci": list(nci) if nci else None, "delta": delta, "direction": direction,
        "trend": trend, "significant": significant, "threshold": n.get("threshold"),
        "base_passed": o.get("passed"), "new_passed": n.get("passed"),
    }  # fmt: skip


def _finding_keys(rec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for f in rec.get("findings") or []:
        if isinstance(f, dict) and f.get("severity") != "info":
            key = str(f.get("key")) if f.get("key") is not None else str(f.get("message"))
            out[(str(f.get("severity")), key)] = f
    return out


def diff_results(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Everything that differs between two results documents, base → new."""
    b, n = _index(base), _index(new)
    status_changes, metric_changes, added, removed = [], [], [], []
    new_findings, resolved = [], []
    for cid in sorted(set(b) | set(n)):
        if cid not in b:
            added.append({"check": cid, "title": n[cid].get("title"), "status": n[cid].get("status")})
            continue
        if cid not in n:
            removed.append({"check": cid, "title": b[cid].get("title"), "status": b[cid].get("status")})
            continue
        o, c = b[cid], n[cid]
        if o.get("status") != c.get("status"):
            rank_o, rank_n = (
                _STATUS_RANK.get(str(o.get("status")), 1),
                _STATUS_RANK.get(str(c.get("status")), 1),
            )
            if {o.get("status"), c.get("status")} & {"not_applicable", "skipped"}:
                rank_o = rank_n  # ran <-> did not run: a change of coverage, not of quality
            status_changes.append({
                "check": cid, "title": c.get("title"), "base": o.get("status"), "new": c.get("status"),
                "trend": "worse" if rank_n > rank_o else "better" if rank_n < rank_o else "changed",
            })  # fmt: skip
        om = {str(m.get("name")): m for m in o.get("metrics") or [] if isinstance(m, dict)}
        nm = {str(m.get("name")): m for m in c.get("metrics") or [] if isinstance(m, dict)}
        for name in [*nm, *(k for k in om if k not in nm)]:  # new order, then the removed ones
            ch = _metric_change(cid, om.get(name), nm.get(name))
            if ch:
                metric_changes.append(ch)
        of, nf = _finding_keys(o), _finding_keys(c)
        new_findings += [
            {"check": cid, "severity": k[0], "key": k[1], "message": nf[k].get("message")}
            for k in nf
            if k not in of
        ]
        resolved += [
            {"check": cid, "severity": k[0], "key": k[1], "message": of[k].get("message")}
            for k in of
            if k not in nf
        ]
    bg, ng = base.get("gate") or {}, new.get("gate") or {}
    return {
        "base": {"id": (base.get("run") or {}).get("id"), "finished_at": (base.get("run") or {}).get("finished_at"),
                 "decision": bg.get("decision"), "exit_code": bg.get("exit_code")},
        "new": {"id": (new.get("run") or {}).get("id"), "finished_at": (new.get("run") or {}).get("finished_at"),
                "decision": ng.get("decision"), "exit_code": ng.get("exit_code")},
        "gate_changed": bg.get("decision") != ng.get("decision"),
        "status_changes": status_changes,
        "metric_changes": metric_changes,
        "added": added,
        "removed": removed,
        "new_findings": new_findings,
        "resolved_findings": resolved,
        "worse": sum(1 for s in status_changes if s["trend"] == "worse")
        + sum(1 for m in metric_changes if m["trend"] == "worse" and m["significant"]),
    }  # fmt: skip


CHANGE_KEYS = ("status_changes", "metric_changes", "added", "removed", "new_findings", "resolved_findings")


def has_changes(d: dict[str, Any]) -> bool:
    """Whether two audits differ (``auditkit diff`` exits 1 then, 0 when they are the same)."""
    return bool(d.get("gate_changed")) or any(d.get(k) for k in CHANGE_KEYS)


def _t(text: Any) -> str:
    """Terminal text: control, bidi and format characters shown escaped (an ESC sequence cannot
    recolour or move the cursor), then rich markup escaped."""
    from rich.markup import escape

    return escape(inert(text, multiline=False))


def _md(text: Any, limit: int = 300) -> str:
    from html import escape

    s = inert(" ".join(str(text if text is not None else "").split()), multiline=False)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    # Text, not markup: no HTML, no table breaks, no links or images (GitHub would fetch an image).
    return markdown_text(escape(s, quote=False), multiline=False)


def _ci(ci: Any) -> str:
    return fmt_ci(ci) if ci else ""


def _sig(m: dict[str, Any]) -> str:
    return {True: "yes", False: "no", None: "n/a"}[m["significant"]]


def _markdown(d: dict[str, Any]) -> str:
    arrow = {
        "worse": "🔴 worse",
        "better": "🟢 better",
        "same": "same",
        "changed": "changed",
        "added": "added",
        "removed": "removed",
    }
    lines = [
        "### auditkit: audit diff",
        "",
        f"Gate: **{_md(d['base']['decision'])}** → **{_md(d['new']['decision'])}** "
        f"(exit {_md(d['base']['exit_code'])} → {_md(d['new']['exit_code'])}); runs `{_md(d['base']['id'])}` → `{_md(d['new']['id'])}`.",
        "",
    ]
    if not any(d[k] for k in CHANGE_KEYS):
        lines.append("No change in check statuses, metrics or findings.")
        return "\n".join(lines) + "\n"
    if d["status_changes"]:
        lines += ["#### Status changes", "", "| Check | Base | New | |", "|---|---|---|---|"]
        lines += [
            f"| {_md(s['check'])} {_md(s['title'], 80)} | {s['base']} | {s['new']} | {arrow.get(s['trend'], '')} |"
            for s in d["status_changes"]
        ]
        lines.append("")
    if d["metric_changes"]:
        lines += ["#### Metric changes (95% intervals; significant = intervals do not overlap)", "",
                  "| Check | Metric | Base | New | Δ | Trend | Significant |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for m in d["metric_changes"]:
            lines.append(
                f"| {_md(m['check'])} | {_md(m['metric'], 80)} | {fmt_num(m['base'])} {_ci(m['base_ci'])} | "
                f"{fmt_num(m['new'])} {_ci(m['new_ci'])} | {fmt_num(m['delta'])} | {arrow.get(m['trend'], m['trend'])} | {_sig(m)} |"
            )
        lines.append("")
    for key, title in (("added", "Checks added"), ("removed", "Checks removed")):
        if d[key]:
            lines += (
                [f"#### {title}", ""]
                + [f"- {_md(a['check'])} {_md(a['title'], 80)} ({a['status']})" for a in d[key]]
                + [""]
            )
    for key, title in (("new_findings", "New findings"), ("resolved_findings", "Resolved findings")):
        if d[key]:
            lines += [f"#### {title}", ""]
            lines += [
                f"- **{_md(f['severity'])}** {_md(f['check'])}: {_md(f['message'])}" for f in d[key][:50]
            ]
            if len(d[key]) > 50:
                lines.append(f"- … and {len(d[key]) - 50} more")
            lines.append("")
    return "\n".join(lines)


def _add_columns(table: Any, names: tuple[str, ...], whole: dict[str, list[Any]]) -> None:
    """Columns of a diff table. Check ids and metric names (``whole``) are never cut: their column
    is as wide as the longest one; the other columns wrap (fold) when the terminal is narrow."""
    for col in names:
        if col in whole:
            width = max([len(col), *(len(_t(v)) for v in whole[col])])
            table.add_column(col, min_width=width, no_wrap=True, overflow="fold")
        else:
            table.add_column(col, overflow="fold")


def render_diff(d: dict[str, Any], markdown: bool = False, console: Any = None) -> str:
    """Markdown text (``markdown=True``), or rich tables printed to ``console`` (text also returned)."""
    if markdown:
        return _markdown(d)
    import io

    from rich.console import Console
    from rich.table import Table

    rec = console if console is not None else Console(file=io.StringIO(), record=True, width=120)
    style = {"worse": "red", "better": "green"}
    rec.print(f"gate: {_t(d['base']['decision'])} → {_t(d['new']['decision'])}  "
              f"(exit {d['base']['exit_code']} → {d['new']['exit_code']})")  # fmt: skip
    if d["status_changes"]:
        t = Table(title="status changes")
        _add_columns(
            t, ("check", "base", "new", "trend"), {"check": [s["check"] for s in d["status_changes"]]}
        )
        for s in d["status_changes"]:
            t.add_row(
                _t(s["check"]),
                str(s["base"]),
                str(s["new"]),
                f"[{style.get(s['trend'], 'white')}]{s['trend']}[/]",
            )
        rec.print(t)
    if d["metric_changes"]:
        t = Table(title="metric changes (95% CI)")
        _add_columns(t, ("check", "metric", "base", "new", "Δ", "trend", "significant"),
                     {"check": [m["check"] for m in d["metric_changes"]],
                      "metric": [m["metric"] for m in d["metric_changes"]]})  # fmt: skip
        for m in d["metric_changes"]:
            t.add_row(_t(m["check"]), _t(m["metric"]), f"{fmt_num(m['base'])} {_ci(m['base_ci'])}",
                      f"{fmt_num(m['new'])} {_ci(m['new_ci'])}", fmt_num(m["delta"]),
                      f"[{style.get(m['trend'], 'white')}]{m['trend']}[/]", _sig(m))  # fmt: skip
        rec.print(t)
    for key in ("added", "removed"):
        for a in d[key]:
            rec.print(f"{key}: {_t(a['check'])} ({a['status']})")
    for key in ("new_findings", "resolved_findings"):
        for f in d[key][:50]:
            rec.print(
                f"{key.replace('_', ' ')}: [{f['severity']}] {_t(f['check'])}: {_t(str(f['message'])[:200])}"
            )
    if not any(d[k] for k in CHANGE_KEYS):
        rec.print("no change in check statuses, metrics or findings")
    if console is None:
        return str(rec.export_text())
    return ""
