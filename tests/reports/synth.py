"""Synthetic results.json documents for the report tests: every status, metrics with intervals,
plots, tables, waivers, and hostile strings in every text a user or a check controls."""

from __future__ import annotations

import copy
import math
from typing import Any

HOSTILE = [
    "<script>alert('x')</script>",
    "</style><style>body{background:url(file:///etc/passwd)}</style>",
    "url(file:///etc/passwd)",
    '<img src="http://example.com/x.png">',
    "<link rel=stylesheet href='https://example.com/a.css'>",
]
LONG = "L" * 10_000
SCRIPT = HOSTILE[0]


def _metric(name: str, value: float, ci: tuple[float, float] | None, n: int | None, threshold: float | None,
            direction: str | None, passed: bool | None) -> dict[str, Any]:  # fmt: skip
    return {"name": name, "value": value, "ci": list(ci) if ci else None, "n": n, "threshold": threshold,
            "direction": direction, "passed": passed, "bound": "value", "unit": None, "description": None,
            "details": {}}  # fmt: skip


def _rec(cid: str, title: str, status: str, **kw: Any) -> dict[str, Any]:
    rec = {
        "id": cid, "title": title, "status": status, "version": "1", "severity": kw.pop("severity", "high"),
        "default_severity": "high", "params": kw.pop("params", {}), "metrics": kw.pop("metrics", []),
        "findings": kw.pop("findings", []), "nist_ai_rmf": kw.pop("nist", []), "tags": kw.pop("tags", []),
        "requires": [], "duration_s": 0.0123, "skip_reason": kw.pop("skip_reason", None),
        "error": kw.pop("error", None), "evidence": kw.pop("evidence", {}), "summary": kw.pop("summary", ""),
        "description": kw.pop("description", ""), "artifacts": [], "seed": 1, "source": "builtin:test",
    }  # fmt: skip
    rec.update(kw)
    return rec


def _finding(
    msg: str, severity: str = "high", key: str | None = None, waiver: dict[str, Any] | None = None
) -> dict[str, Any]:
    f: dict[str, Any] = {"message": msg, "severity": severity, "key": key, "metric": None, "evidence": {}}
    if waiver:
        f["waiver"] = waiver
    return f


def synthetic_results(
    *, n_scatter: int = 3000, table_rows: int = 120, hostile: bool = True
) -> dict[str, Any]:
    h = HOSTILE if hostile else ["plain"] * len(HOSTILE)
    long_ = LONG if hostile else "long"
    eps = [0.0, 0.01, 0.02, 0.05, 0.1]
    curve = {"type": "line", "title": f"Loss {h[0]}", "x_label": "epoch", "y_label": h[2],
             "series": [{"name": f"seed {s} {h[1]}", "x": list(range(1, 31)),
                         "y": [1.0 / (e + 1) + 0.01 * s for e in range(30)]} for s in range(3)]}  # fmt: skip
    robust = {"type": "line", "title": "Robust accuracy vs epsilon", "x_label": "epsilon", "y_label": "accuracy",
              "series": [{"name": "PGD", "x": eps, "y": [0.95, 0.9, 0.8, 0.5, 0.2],
                          "lo": [0.93, 0.87, 0.76, 0.45, 0.16], "hi": [0.97, 0.93, 0.84, 0.55, 0.24]}]}  # fmt: skip
    reliab = {"type": "line", "title": "Reliability diagram", "x_label": "confidence", "y_label": "accuracy",
              "diagonal": True, "series": [{"name": "model", "x": [0.1 * i + 0.05 for i in range(10)],
                                              "y": [min(1, 0.1 * i + 0.02) for i in range(10)]}]}  # fmt: skip
    bar = {"type": "bar", "title": "Class balance", "x_label": h[3], "y_label": "rows",
           "categories": ["benign", "malignant", h[0]], "series": [{"name": "train", "values": [357, 212, 3]},
                                                                 {"name": "test", "values": [90, 50, 1]}]}  # fmt: skip
    scatter = {"type": "scatter", "title": "Embedding", "x_label": "pc1", "y_label": "pc2",
               "series": [{"name": "test", "x": [math.sin(i) * i / n_scatter for i in range(n_scatter)],
                           "y": [math.cos(i) * i / n_scatter for i in range(n_scatter)]}]}  # fmt: skip
    roc = {"type": "line", "title": "OOD ROC", "x_label": "FPR", "y_label": "TPR", "diagonal": True, "log_y": False,
           "series": [{"name": "energy", "x": [0, 0.05, 0.2, 1], "y": [0, 0.6, 0.9, 1]}]}  # fmt: skip
    table = {"columns": ["feature", h[0], h[2], long_], "total_rows": table_rows,
             "rows": [[f"f{i}", h[1], i * 0.5, long_ if i == 0 else i] for i in range(min(table_rows, 50))]}  # fmt: skip
    checks = [
        _rec(
            "AK-LEAK-001",
            f"Train/test overlap {h[0]}",
            "failed",
            tags=["data", "leakage"],
            nist=["MAP 2.3", "MEASURE 2.5"],
            metrics=[_metric("overlap_ratio", 0.0625, (0.031, 0.12), 80, 0.0, "lower", False)],
            findings=[
                _finding(f"5 test rows occur in train {h[0]} {h[2]}", "high", key=h[1]),
                _finding("label conflicts", "info"),
            ],
            evidence={f"overlapping rows {h[0]}": table, "plots": [bar], "note": h[2]},
            summary=f"5 of 80 test rows overlap {h[1]}",
            params={"max_overlap_ratio": 0.0, h[0]: long_},
        ),
        _rec(
            "AK-BAL-001",
            "Class imbalance",
            "failed",
            tags=["data"],
            severity="medium",
            metrics=[_metric("minority_share", 0.05, (0.03, 0.08), 569, 0.1, "higher", False)],
            findings=[
                _finding(
                    "minority class is rare",
                    "medium",
                    key="malignant",
                    waiver={
                        "reason": f"rare by nature {h[0]}",
                        "expires": "2027-01-31",
                        "approved_by": h[1],
                        "expired": False,
                    },
                )
            ],
        ),  # fmt: skip
        _rec(
            "AK-TRAIN-001",
            "Training convergence",
            "passed",
            tags=["training"],
            nist=["MEASURE 2.1"],
            metrics=[_metric("final_loss", 0.031, (0.02, 0.04), 3, None, None, None)],
            evidence={"plots": [curve]},
            summary="converged in 30 epochs",
        ),
        _rec(
            "AK-PERF-001",
            "Held-out performance",
            "passed",
            tags=["performance", "evaluation"],
            nist=["MEASURE 2.3"],
            metrics=[
                _metric("accuracy", 0.9561, (0.912, 0.98), 114, 0.9, "higher", True),
                _metric("macro_f1", 0.951, (0.90, 0.977), 114, None, None, None),
            ],
        ),
        _rec(
            "AK-PERF-003",
            "Calibration",
            "passed",
            tags=["evaluation"],
            nist=["MEASURE 2.3"],
            metrics=[_metric("ece", 0.031, (0.012, 0.06), 114, 0.1, "lower", True)],
            evidence={"plots": [reliab, {"type": "pie", "title": "unknown plot"}]},
        ),
        _rec(
            "AK-ADV-001",
            "White-box evasion",
            "error",
            tags=["robustness"],
            nist=["MEASURE 2.7"],
            error={
                "type": "RuntimeError",
                "message": h[0],  # the runner's shape
                "traceback": 'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: '
                + h[0],
            },
            evidence={"plots": [robust]},
        ),
        _rec(
            "AK-OOD-001",
            "OOD detection",
            "passed",
            tags=["ood"],
            nist=["MEASURE 2.11"],
            metrics=[_metric("auroc", 0.91, (0.88, 0.94), 500, 0.8, "higher", True)],
            evidence={"plots": [roc, scatter]},
        ),
        _rec(
            "AK-FAIR-001",
            "Group fairness",
            "not_applicable",
            tags=["fairness", "bias", "evaluation"],
            skip_reason=f"no sensitive {h[0]}",
        ),
        _rec(
            "AK-POIS-001",
            "Poisoning screen",
            "skipped",
            tags=["robustness"],
            skip_reason="off by default (enable it)",
        ),
        _rec("AK-DQ-001", "Expectations suite", "skipped", skip_reason="not selected by checks.select"),
        _rec(
            "AK-GOV-001",
            "Model card completeness",
            "passed",
            tags=["governance"],
            severity="medium",
            nist=["MAP 1.1", "GOVERN 1.4"],
            metrics=[_metric("completeness", 1.0, None, 6, 1.0, "higher", True)],
        ),
        _rec(
            "PLUG-001" + (h[0] if hostile else ""),
            long_,
            "failed",
            tags=[h[0]],
            severity="low",
            findings=[_finding(long_, "low", key=long_)],
            summary=long_,
        ),
    ]
    doc: dict[str, Any] = {
        "schema_version": "1",
        "tool": {"name": "auditkit", "version": "0.1.0"},
        "run": {
            "id": "0123456789abcdef",
            "started_at": "2026-11-20T10:00:00+00:00",
            "finished_at": "2026-11-20T10:01:00+00:00",
            "duration_s": 60.0,
            "seed": 0,
            "argv": ["run", h[0]],
            "spec_path": "audit.yaml",
            "spec_sha256": "ab" * 32,
            "formats": ["json", "pdf"],
        },  # fmt: skip
        "subject": {
            "name": f"demo {h[0]} {h[1]}",
            "description": h[2],
            "model": {"format": "torchscript", "sha256": "cd" * 32, "path": h[3]},
            "datasets": {
                "train": {
                    "name": "train",
                    "sha256": "ef" * 32,
                    "rows": 455,
                    "features": 30,
                    "columns": 31,
                    "class_counts": {"0": 285, "1": 170},
                }
            },
        },  # fmt: skip
        "environment": {
            "python": "3.11.7",
            "platform": h[0],
            "libraries": {"torch": "2.13.0", "weasyprint": "70.0"},
        },
        "plugins": [{"name": h[0], "distribution": "evil-plugin", "version": "0.1", "value": h[2]}],
        "spec": {
            "name": "demo",
            "report": {"title": f"Audit {h[0]}", "organisation": h[1]},
            "card": {
                "model_name": f"clf {h[0]}",
                "version": "1.2.0",
                "overview": h[1],
                "owners": [{"name": f"ML team {h[0]}", "contact": "ml@example.com"}],
                "intended_use": f"screening {h[2]}",
                "out_of_scope": h[3],
                "limitations": long_,
                "ethical_considerations": h[4],
                "tradeoffs": "accuracy vs recall",
                "license": "Apache-2.0",
                "users": ["clinicians", h[0]],
                "references": ["https://example.com/paper", h[2]],
                "citation": h[0],
                "attestations": {},
            },
        },  # fmt: skip
        "checks": checks,
        "gate": {
            "decision": "fail",
            "exit_code": 3,
            "reason": f"1 check(s) errored {h[0]}",
            "fail_on": "high",
            "blocking": [{"check": "AK-LEAK-001", "severity": "high", "key": h[1], "message": h[0]}],
            "waived": [{"check": "AK-BAL-001", "severity": "medium", "key": "malignant", "message": "rare"}],
            "regressions": [{"check": "AK-PERF-001", "kind": "status", "message": h[0]}],
            "errored": ["AK-ADV-001"],
            "findings_by_severity": {"critical": 0, "high": 1, "medium": 1, "low": 1, "info": 1},
            "baseline": None,
            "recommendation": "no-go",
        },  # fmt: skip
        "rmf": {
            "attestations": {
                "GOVERN 1.1": {
                    "status": "met",
                    "evidence": f"policy {h[0]}",
                    "by": h[1],
                    "date": "2026-11-01",
                    "notes": None,
                }
            }
        },  # fmt: skip
    }
    return copy.deepcopy(doc)


# Text that changes how a document *looks*: bidi controls, zero-width characters, terminal escape
# sequences, plus the markup and Markdown-link injections that must stay text.
RLO = "\u202e"
HIDDEN = {
    "license": f"MIT{RLO}LPG-3.0\u202c",  # shows as "MIT0.3-GPL" when the control is obeyed
    "intended_use": "screening\u200d\u200b\u2066only\u2069 \u200e\u200f\u061c\ufeff",
    "limitations": "\x1b[31mRED\x1b[0m \x1b]8;;http://example.com\x07link\x1b]8;;\x07 \x9b2J",
    "out_of_scope": "<script>alert(1)</script>",
    "ethical_considerations": "[click](javascript:alert(1)) ![x](http://example.com/t.png) [r]: http://example.com",
    "tradeoffs": "tag\U000e0041\U000e0042 smuggled \u2028line\u2029para",
}
VISIBLE_ESCAPES = ("\\u202e", "\\u200d", "\\u200b", "\\u2066", "\\u2069", "\\u200e", "\\u200f", "\\u061c",
                   "\\ufeff", "\\u001b", "\\U000e0041", "\\u2028")  # fmt: skip


def hidden_text_results() -> dict[str, Any]:
    """Synthetic results whose card fields, a check title, summary, finding, metric name and evidence
    table carry ``HIDDEN`` text."""
    doc = synthetic_results(hostile=False)
    doc["spec"]["card"].update(HIDDEN)
    doc["spec"]["card"]["users"] = [HIDDEN["license"]]
    doc["spec"]["card"]["owners"] = [{"name": 'ML "core" team #1', "contact": "ml@example.com"}]
    rec = next(r for r in doc["checks"] if r["id"] == "AK-LEAK-001")
    rec["title"] = f"Overlap {HIDDEN['license']}"
    rec["summary"] = HIDDEN["limitations"]
    rec["findings"].append(
        _finding(HIDDEN["intended_use"] + HIDDEN["ethical_considerations"], "high", key=RLO)
    )
    rec["metrics"].append(_metric(f"rate{RLO}x", 0.5, (0.4, 0.6), 10, None, None, None))
    rec["evidence"]["hidden"] = {
        "columns": [f"col{RLO}", "b"],
        "rows": [[HIDDEN["limitations"], HIDDEN["tradeoffs"]]],
    }
    doc["gate"]["reason"] = HIDDEN["limitations"]
    return doc
