"""A Markdown summary of an audit for a CI job page (GitHub's ``$GITHUB_STEP_SUMMARY``, GitLab notes).

``python -m auditkit.integrations.ci summary RESULTS.json [--baseline BASE.json]`` prints the gate, the status
counts and every check that failed, errored or was waived, with its findings; with a baseline it
appends ``auditkit diff --format markdown`` of BASE → RESULTS. The composite GitHub Action
(``action.yml``, script ``action/run.sh``) writes it into the job summary.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from auditkit.errors import ExitCode
from auditkit.results.diff import _md  # the diff's Markdown escaping: table cells stay cells, HTML stays text

_ORDER = ("failed", "error", "passed", "not_applicable", "skipped")
MAX_FINDINGS = 5  # per check; the bundle has the rest


def _waived(f: dict[str, Any]) -> bool:
    w = f.get("waiver")
    return isinstance(w, dict) and not w.get("expired", False)


def summary_markdown(doc: dict[str, Any]) -> str:
    """Gate, counts and the checks a reviewer must look at, as GitHub-flavoured Markdown."""
    from auditkit.results.document import deselected

    gate = doc["gate"]
    records = [r for r in doc["checks"] if not deselected(r)]
    counts = Counter(r["status"] for r in records)
    icon = "✅" if gate["decision"] == "pass" else "❌"
    lines = [
        f"### auditkit: {_md(doc['subject']['name'])}",
        "",
        f"{icon} Gate **{gate['decision'].upper()}** (exit {gate['exit_code']}, fail_on `{gate['fail_on']}`): "
        f"{_md(gate['reason'])}",
        "",
        " · ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in _ORDER if counts[s])
        + f" — run `{_md(doc['run']['id'])}`",
        "",
    ]
    notable = [r for r in records if r["status"] in ("failed", "error")]
    if notable:
        lines += ["| Check | Status | Severity | Findings |", "|---|---|---|---|"]
        for r in notable:
            lines.append(
                f"| {_md(r['id'])} {_md(r['title'], 80)} | {r['status']} | {r['severity']} | {_cell(r)} |"
            )
        lines.append("")
    for r in gate.get("regressions") or []:
        lines.append(f"- regression: {_md(r.get('message'))}")
    for w in gate.get("unused_waivers") or []:
        lines.append(f"- unused waiver: {_md(w['check'])} matched no finding")
    return "\n".join(lines).rstrip() + "\n"


def _cell(rec: dict[str, Any]) -> str:
    if rec["status"] == "error":
        err = rec.get("error") or {}
        first = str(err.get("message") or "").splitlines()[:1]
        return _md(f"{err.get('type') or 'error'}: {first[0] if first else ''}", 200)
    items = []
    findings = rec.get("findings") or []
    for f in findings[:MAX_FINDINGS]:
        tag = " (waived)" if _waived(f) else ""
        items.append(f"[{f['severity']}]{tag} {_md(f['message'], 200)}")
    if len(findings) > MAX_FINDINGS:
        items.append(f"… {len(findings) - MAX_FINDINGS} more in results.json")
    return "<br>".join(items) or _md(rec.get("summary") or "", 200)


def main(argv: list[str] | None = None) -> int:
    from auditkit.errors import AuditkitError
    from auditkit.results.document import AuditResults

    parser = argparse.ArgumentParser(
        prog="python -m auditkit.integrations.ci", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="Markdown summary of a results.json (and its diff to a baseline).")
    s.add_argument("results")
    s.add_argument("--baseline", default=None)
    args = parser.parse_args(argv)
    try:
        new = AuditResults.load(args.results).doc
        text = summary_markdown(new)
        if args.baseline:
            from auditkit.results.diff import diff_results, render_diff

            base = AuditResults.load(args.baseline).doc
            text += "\n" + render_diff(diff_results(base, new), markdown=True)
    except AuditkitError as err:
        print(f"auditkit: error: {err}", file=sys.stderr)
        return err.exit_code
    sys.stdout.write(text)
    return ExitCode.PASSED


if __name__ == "__main__":
    sys.exit(main())
