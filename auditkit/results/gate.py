"""The release gate: exit code from severities, waivers and a baseline (DESIGN.md §6).

Exit codes: 0 passed; 1 failed (an unwaived finding at or above ``fail_on``, or a regression
against the baseline); 2 usage/spec/input error — raised before this module is reached, or
found by a check in its own parameters or inputs (``SpecError``/``InputError`` from a check: the
bundle is still written); 3 a check errored (the gate fails closed); 4 no check ran.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from auditkit.errors import ExitCode
from auditkit.numbers import fmt_ci, fmt_num, small_is_real
from auditkit.severity import SEVERITIES, severity_rank


def _matches(waiver: dict[str, Any], check_id: str, finding: dict[str, Any]) -> bool:
    wid = waiver["check"]
    if not (check_id == wid or check_id.startswith(wid + "-")):
        return False
    return waiver.get("key") in (None, finding.get("key"))


def apply_waivers(
    records: list[dict[str, Any]], waivers: list[dict[str, Any]], today: dt.date
) -> list[dict[str, Any]]:
    """Mark waived findings in place (they stay visible). An expired waiver no longer applies.

    Returns the waivers that matched no finding (a mistyped key or check id would otherwise
    go unnoticed).
    """
    used: set[int] = set()
    for rec in records:
        for finding in rec.get("findings", []):
            for i, w in enumerate(waivers):
                if not _matches(w, rec["id"], finding):
                    continue
                used.add(i)
                expires = dt.date.fromisoformat(str(w["expires"]))
                expired = expires < today
                finding["waiver"] = {
                    "reason": w["reason"],
                    "expires": expires.isoformat(),
                    "approved_by": w.get("approved_by"),
                    "expired": expired,
                }
                if not expired:
                    break
    return [
        {"check": w["check"], "key": w.get("key"), "reason": w.get("reason")}
        for i, w in enumerate(waivers) if i not in used
    ]  # fmt: skip


def _is_waived(finding: dict[str, Any]) -> bool:
    w = finding.get("waiver")
    return isinstance(w, dict) and not w.get("expired", False)


def regressions(records: list[dict[str, Any]], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Regressions against an approved audit.

    A check that passed in the baseline and fails now; a metric that got worse (per its direction)
    with the two 95% intervals not overlapping; without intervals, a metric whose threshold
    comparison flipped from pass to fail.
    """
    base = {r["id"]: r for r in baseline.get("checks", [])}
    out: list[dict[str, Any]] = []
    for rec in records:
        old = base.get(rec["id"])
        if old is None:
            continue
        if old["status"] == "passed" and rec["status"] == "failed":
            out.append(
                {
                    "check": rec["id"],
                    "kind": "status",
                    "message": f"{rec['id']} passed in the baseline and fails now",
                }
            )
        old_metrics = {m["name"]: m for m in old.get("metrics", [])}
        for m in rec.get("metrics", []):
            o = old_metrics.get(m["name"])
            if o is None or m.get("direction") is None or m.get("value") is None or o.get("value") is None:
                continue
            worse = m["value"] < o["value"] if m["direction"] == "higher" else m["value"] > o["value"]
            if not worse:
                continue
            if m.get("ci") and o.get("ci"):
                lo_new, hi_new = m["ci"]
                lo_old, hi_old = o["ci"]
                separated = hi_new < lo_old if m["direction"] == "higher" else lo_new > hi_old
                tiny = small_is_real(m["name"])  # a p-value of 1e-30 is shown, not rounded to 0
                if separated:
                    out.append({
                        "check": rec["id"], "kind": "metric", "metric": m["name"],
                        "baseline": o["value"], "baseline_ci": o["ci"], "value": m["value"], "ci": m["ci"],
                        "message": (
                            f"{rec['id']} {m['name']} regressed from {fmt_num(o['value'], keep_tiny=tiny)} "
                            f"{fmt_ci(o['ci'], keep_tiny=tiny)} to {fmt_num(m['value'], keep_tiny=tiny)} "
                            f"{fmt_ci(m['ci'], keep_tiny=tiny)}: the 95% intervals do not overlap"
                        ),
                    })  # fmt: skip
            elif o.get("passed") is True and m.get("passed") is False:
                out.append({
                    "check": rec["id"], "kind": "metric", "metric": m["name"],
                    "baseline": o["value"], "value": m["value"],
                    "message": f"{rec['id']} {m['name']} passed its threshold in the baseline and fails now",
                })  # fmt: skip
    return out


def decide(
    records: list[dict[str, Any]],
    *,
    fail_on: str,
    waivers: list[dict[str, Any]] | None = None,
    baseline: dict[str, Any] | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Apply waivers (in place) and decide the gate. Returns the ``gate`` section of results."""
    today = today or dt.date.today()
    unused = apply_waivers(records, list(waivers or []), today)
    threshold = severity_rank(fail_on)
    blocking: list[dict[str, Any]] = []
    waived: list[dict[str, Any]] = []
    for rec in records:
        for f in rec.get("findings", []):
            if severity_rank(f["severity"]) < threshold or f["severity"] == "info":
                continue
            entry = {
                "check": rec["id"],
                "severity": f["severity"],
                "key": f.get("key"),
                "message": f["message"],
            }
            (waived if _is_waived(f) else blocking).append(entry)
    regress = regressions(records, baseline) if baseline else []
    errored = [r["id"] for r in records if r["status"] == "error"]
    input_errors = [
        r["id"] for r in records if r["status"] == "error" and (r.get("error") or {}).get("input")
    ]
    crashed = [c for c in errored if c not in input_errors]
    ran = [r for r in records if r["status"] in ("passed", "failed", "error")]
    if not ran:
        code, decision = ExitCode.NOTHING_RAN, "fail"
        reason = "no check ran: every check was not applicable, skipped or deselected"
    elif crashed:
        code, decision = ExitCode.ERROR, "fail"
        reason = f"{len(errored)} check(s) errored ({', '.join(errored)}); the gate fails closed"
    elif input_errors:
        code, decision = ExitCode.USAGE, "fail"
        reason = (f"{len(input_errors)} check(s) could not run on this spec or data ({', '.join(input_errors)}): "
                  "fix the parameters or inputs named in their messages; the gate fails closed")  # fmt: skip
    elif blocking or regress:
        code, decision = ExitCode.FAILED, "fail"
        parts = []
        if blocking:
            parts.append(f"{len(blocking)} unwaived finding(s) at or above '{fail_on}'")
        if regress:
            parts.append(f"{len(regress)} regression(s) against the baseline")
        reason = " and ".join(parts)
    else:
        code, decision = ExitCode.PASSED, "pass"
        reason = f"no unwaived finding at or above '{fail_on}'" + (" and no regression" if baseline else "")
    by_sev = {s: 0 for s in SEVERITIES}
    for rec in records:
        for f in rec.get("findings", []):
            by_sev[f["severity"]] += 1
    return {
        "decision": decision,
        "exit_code": int(code),  # results.json holds a plain int
        "reason": reason,
        "fail_on": fail_on,
        "blocking": blocking,
        "waived": waived,
        "unused_waivers": unused,
        "regressions": regress,
        "errored": errored,
        "input_errors": input_errors,
        "findings_by_severity": by_sev,
        "baseline": None,
        "recommendation": "go" if decision == "pass" else "no-go",
    }
