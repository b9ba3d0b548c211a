"""results.json (schema_version "1"): the single source of truth that every renderer reads.

``AuditResults`` is a thin wrapper over the JSON document so that load → save is lossless.
The JSON Schema ships as ``auditkit/resources/results.schema.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1"


def deselected(rec: dict[str, Any]) -> bool:
    """A check record the audit did not select (left out by ``checks.select``/``ignore``, or off by default)."""
    return rec.get("status") == "skipped" and str(rec.get("skip_reason") or "").startswith("not selected")


@lru_cache(maxsize=1)
def results_schema() -> dict[str, Any]:
    text = files("auditkit").joinpath("resources/results.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def dumps(doc: dict[str, Any]) -> str:
    """Canonical JSON text: sorted keys, full float precision, UTF-8, trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


class AuditResults:
    """The results of one audit. ``doc`` is exactly what results.json holds."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        # Reports that failed to render in this run (not part of results.json: see write_bundle).
        self.render_errors: list[dict[str, str]] = []

    # -- I/O ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> AuditResults:
        from auditkit.errors import InputError

        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"results file not found: {p}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"{p}: not a results.json ({err})") from None
        if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"{p}: not an auditkit results.json with schema_version {SCHEMA_VERSION!r}")
        return cls(doc)

    def dumps(self) -> str:
        return dumps(self.doc)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.dumps(), encoding="utf-8")
        return p

    def validate(self) -> None:
        """Raise jsonschema.ValidationError if the document does not match the shipped schema."""
        import jsonschema

        jsonschema.validate(self.doc, results_schema())

    @classmethod
    def load_valid(cls, path: str | Path) -> AuditResults:
        """``load`` plus the schema: a hand-edited or foreign file gets one line naming the field."""
        import jsonschema

        from auditkit.errors import InputError

        results = cls.load(path)
        try:
            results.validate()
        except jsonschema.ValidationError as err:
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            raise InputError(
                f"{path}: does not match the results.json schema at {where}: {err.message[:300]}"
            ) from None
        return results

    # -- access ---------------------------------------------------------------------------------
    @property
    def checks(self) -> list[dict[str, Any]]:
        checks: list[dict[str, Any]] = self.doc["checks"]
        return checks

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.checks)

    def __getitem__(self, check_id: str) -> dict[str, Any]:
        for rec in self.checks:
            if rec["id"] == check_id:
                return rec
        raise KeyError(check_id)

    def metric(self, check_id: str, name: str) -> dict[str, Any]:
        for m in self[check_id]["metrics"]:
            if m["name"] == name:
                return dict(m)
        raise KeyError(f"{check_id}.{name}")

    @property
    def gate(self) -> dict[str, Any]:
        gate: dict[str, Any] = self.doc["gate"]
        return gate

    @property
    def exit_code(self) -> int:
        """The gate's exit code, or 3 when a report failed to render (the bundle is incomplete)."""
        from auditkit.errors import ExitCode

        code = int(self.gate["exit_code"])
        usage_or_better = (ExitCode.PASSED, ExitCode.FAILED, ExitCode.USAGE)
        return int(ExitCode.ERROR) if self.render_errors and code in usage_or_better else code

    @property
    def passed(self) -> bool:
        return self.exit_code == 0  # ExitCode.PASSED

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(rec["status"] for rec in self.checks))

    # -- notebooks --------------------------------------------------------------------------------
    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(self.status_counts().items()))
        return f"<AuditResults {self.doc['subject']['name']!r}: gate {self.gate['decision']} ({counts})>"

    def _repr_html_(self) -> str:
        colours = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#9a6700", "skipped": "#6e7781",
                   "not_applicable": "#6e7781"}  # fmt: skip
        rows = []
        for rec in self.checks:
            if rec["status"] == "skipped" and rec.get("skip_reason", "").startswith("not selected"):
                continue
            colour = colours.get(rec["status"], "#000")
            rows.append(
                f"<tr><td><code>{escape(rec['id'])}</code></td><td>{escape(rec['title'])}</td>"
                f"<td style='color:{colour};font-weight:600'>{escape(rec['status'])}</td>"
                f"<td>{escape(rec.get('summary') or '')}</td></tr>"
            )
        gate = self.gate
        verdict = "PASS" if gate["decision"] == "pass" else "FAIL"
        return (
            f"<div><h4>auditkit — {escape(self.doc['subject']['name'])}: gate {verdict} "
            f"(exit {gate['exit_code']}, fail_on {escape(gate['fail_on'])})</h4>"
            "<table><thead><tr><th>check</th><th>title</th><th>status</th><th>summary</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
