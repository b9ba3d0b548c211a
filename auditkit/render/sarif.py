"""SARIF 2.1.0 (minimal): one rule per check, one result per non-info finding of a failed or
errored check, so code-scanning dashboards can show an audit. Waived findings carry an external
suppression with the waiver's justification. Locations point at the audit spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditkit.render.common import error_text
from auditkit.results.document import deselected
from auditkit.safetext import inert

FILENAME = "results.sarif"
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


def build(results: dict[str, Any]) -> dict[str, Any]:
    records = [r for r in results.get("checks") or [] if isinstance(r, dict) and not deselected(r)]
    spec_uri = Path(str((results.get("run") or {}).get("spec_path") or "audit.yaml")).name
    rules: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for rec in records:
        cid = str(rec.get("id"))
        index[cid] = len(rules)
        rules.append({
            "id": cid,
            "name": str(rec.get("title") or cid),
            "shortDescription": {"text": str(rec.get("title") or cid)},
            "fullDescription": {"text": str(rec.get("description") or rec.get("title") or cid)},
            "defaultConfiguration": {"level": _LEVEL.get(str(rec.get("severity")), "warning")},
            "properties": {"tags": list(rec.get("tags") or []), "nist_ai_rmf": list(rec.get("nist_ai_rmf") or [])},
        })  # fmt: skip
        location = [{"physicalLocation": {"artifactLocation": {"uri": spec_uri}}}]
        if rec.get("status") == "error":
            head = error_text(rec.get("error"))[0] or "error"
            out.append({"ruleId": cid, "ruleIndex": index[cid], "level": "error", "kind": "fail",
                        "message": {"text": f"{cid} errored: {head}"}, "locations": location})  # fmt: skip
            continue
        if rec.get("status") != "failed":
            continue
        for f in rec.get("findings") or []:
            if not isinstance(f, dict) or f.get("severity") == "info":
                continue
            res: dict[str, Any] = {
                "ruleId": cid, "ruleIndex": index[cid], "level": _LEVEL.get(str(f.get("severity")), "warning"),
                "message": {"text": str(f.get("message") or "")}, "locations": location,
                "properties": {"severity": f.get("severity"), "key": f.get("key")},
            }  # fmt: skip
            if f.get("key") is not None:
                res["partialFingerprints"] = {"auditkitFinding/v1": f"{cid}:{f.get('key')}"}
            w = f.get("waiver")
            if isinstance(w, dict) and not w.get("expired"):
                res["suppressions"] = [{"kind": "external", "status": "accepted",
                                        "justification": f"{w.get('reason')} (approved by {w.get('approved_by')}, expires {w.get('expires')})"}]  # fmt: skip
            out.append(res)
    tool = results.get("tool") or {}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "auditkit", "version": str(tool.get("version") or ""),
                                "informationUri": "https://github.com/auditkit/auditkit", "rules": rules}},
            "automationDetails": {"id": f"auditkit/{(results.get('run') or {}).get('id')}"},
            "results": out,
        }],
    }  # fmt: skip


def _inert_strings(value: Any) -> Any:
    """Every string of the SARIF document (messages, rule names, justifications) through ``inert``:
    code-scanning UIs show them as text, where a bidi control would reorder what a reviewer reads."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, dict):
        return {inert(k): _inert_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_inert_strings(v) for v in value]
    return value


def render(
    results: dict[str, Any], out_dir: Path, *, attachments: dict[str, bytes] | None = None
) -> list[Path]:
    out = Path(out_dir) / FILENAME
    out.write_text(
        json.dumps(_inert_strings(build(results)), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return [out]
