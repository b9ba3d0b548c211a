"""JUnit XML: one test case per check, readable by standard JUnit consumers (Jenkins, GitLab,
GitHub test reporters, junitparser).

failed → <failure>, error → <error> (with the traceback), not_applicable and skipped → <skipped>;
metrics are <properties> of the test case (as pytest's record_property writes them). Every check in
results.json gets a test case, so the counts match the audit's: one that was not selected (off by
default, or outside ``--select``) is <skipped> with its reason.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from auditkit.render.common import area_of, document_date, error_text
from auditkit.safetext import inert

FILENAME = "junit.xml"
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(value: Any, limit: int = 20000) -> str:
    """Text safe for XML 1.0 and for a reader: bidi, format and control characters shown escaped
    (``inert``; tab and newline kept), then anything XML 1.0 cannot hold removed; cut to ``limit``."""
    s = _XML_BAD.sub("", inert(value))
    return s if len(s) <= limit else s[:limit] + f"… [{len(s) - limit} more characters in results.json]"


def _finding_lines(rec: dict[str, Any]) -> list[str]:
    out = []
    for f in rec.get("findings") or []:
        if not isinstance(f, dict):
            continue
        w = f.get("waiver")
        waived = " (waived)" if isinstance(w, dict) and not w.get("expired") else ""
        key = f" [{f.get('key')}]" if f.get("key") is not None else ""
        out.append(f"[{f.get('severity')}]{waived} {f.get('message')}{key}")
    return out


def build(results: dict[str, Any]) -> ET.Element:
    # One test case per check in results.json, deselected ones included (as skipped): CI counts
    # should match the audit's own count of checks.
    records = [r for r in results.get("checks") or [] if isinstance(r, dict)]
    subject = (results.get("subject") or {}).get("name") or "audit"
    stamp = document_date(results).strftime("%Y-%m-%dT%H:%M:%S")
    counts = {"tests": len(records), "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    suite = ET.Element("testsuite", {"name": _x(f"auditkit: {subject}", 500), "timestamp": stamp})
    props = ET.SubElement(suite, "properties")
    run = results.get("run") or {}
    gate = results.get("gate") or {}
    for k, v in (("report_id", run.get("id")), ("seed", run.get("seed")), ("gate.decision", gate.get("decision")),
                 ("gate.exit_code", gate.get("exit_code")), ("gate.reason", gate.get("reason")),
                 ("gate.recommendation", gate.get("recommendation")),
                 ("auditkit.version", (results.get("tool") or {}).get("version"))):  # fmt: skip
        ET.SubElement(props, "property", {"name": k, "value": _x(v, 2000)})
    for rec in records:
        t = float(rec.get("duration_s") or 0.0)
        total_time += t
        case = ET.SubElement(suite, "testcase", {
            "classname": f"auditkit.{area_of(rec)}", "name": _x(f"{rec.get('id')} {rec.get('title') or ''}", 1000),
            "time": f"{t:.3f}",
        })  # fmt: skip
        cprops = ET.SubElement(case, "properties")
        ET.SubElement(cprops, "property", {"name": "severity", "value": _x(rec.get("severity"))})
        ET.SubElement(cprops, "property", {"name": "status", "value": _x(rec.get("status"))})
        for m in rec.get("metrics") or []:
            if not isinstance(m, dict):
                continue
            name = _x(m.get("name"), 200)
            ET.SubElement(cprops, "property", {"name": f"metric.{name}", "value": _x(m.get("value"))})
            ci = m.get("ci")
            if isinstance(ci, (list, tuple)) and len(ci) == 2:
                ET.SubElement(
                    cprops, "property", {"name": f"metric.{name}.ci95", "value": f"[{ci[0]!r}, {ci[1]!r}]"}
                )
            if m.get("n") is not None:
                ET.SubElement(cprops, "property", {"name": f"metric.{name}.n", "value": _x(m.get("n"))})
            if m.get("threshold") is not None:
                ET.SubElement(
                    cprops,
                    "property",
                    {
                        "name": f"metric.{name}.threshold",
                        "value": f"{m.get('direction')} {m.get('threshold')!r}",
                    },
                )
        status = rec.get("status")
        lines = _finding_lines(rec)
        summary = _x(rec.get("summary") or "", 2000)
        if status == "failed":
            counts["failures"] += 1
            el = ET.SubElement(
                case,
                "failure",
                {
                    "message": summary or _x(lines[0] if lines else "failed", 2000),
                    "type": _x(rec.get("severity")),
                },
            )
            el.text = _x("\n".join(lines))
        elif status == "error":
            counts["errors"] += 1
            head, trace = error_text(rec.get("error"))
            kind = (
                str((rec.get("error") or {}).get("type") or "error")
                if isinstance(rec.get("error"), dict)
                else "error"
            )
            el = ET.SubElement(case, "error", {"message": _x(head or "error", 2000), "type": _x(kind, 200)})
            el.text = _x(trace)
        elif status in ("not_applicable", "skipped"):
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", {"message": _x(f"{status}: {rec.get('skip_reason') or ''}", 2000)})
        elif lines or summary:
            out = ET.SubElement(case, "system-out")
            out.text = _x("\n".join([summary, *lines]).strip())
    for k, v in counts.items():
        suite.set(k, str(v))
    suite.set("time", f"{total_time:.3f}")
    root = ET.Element(
        "testsuites",
        {"name": "auditkit", **{k: str(v) for k, v in counts.items()}, "time": f"{total_time:.3f}"},
    )
    root.append(suite)
    return root


def render(
    results: dict[str, Any], out_dir: Path, *, attachments: dict[str, bytes] | None = None
) -> list[Path]:
    root = build(results)
    ET.indent(root)
    out = Path(out_dir) / FILENAME
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return [out]
