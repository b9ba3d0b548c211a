"""Fixtures for the report tests: a real bundle written by the engine, and synthetic results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from synth import HOSTILE, LONG  # noqa: E402

FORMATS = ["json", "pdf", "html", "model_card", "junit", "sarif"]


def write_spec(root: Path, *, formats: list[str] = FORMATS, name: str | None = None) -> Path:
    from auditkit.testing import tiny_tabular

    root.mkdir(parents=True, exist_ok=True)
    splits = tiny_tabular()
    for split, frame in splits.items():
        frame = frame.rename(columns={"x1": HOSTILE[0], "x2": HOSTILE[2]})
        frame.to_csv(root / f"{split}.csv", index=False)
    spec: dict[str, Any] = {
        "version": 1,
        "name": name or f"report test {HOSTILE[0]}",
        "description": HOSTILE[1],
        "seed": 0,
        "data": {"label": "y", "id": "uid", "splits": {k: f"{k}.csv" for k in splits}},
        "checks": {"select": ["AK-GOV", "AK-BAL-001", "AK-BAL-002", "AK-LEAK-001", "AK-LEAK-003"]},
        "gate": {
            "fail_on": "high",
            "waivers": [
                {
                    "check": "AK-GOV-001",
                    "reason": f"card in review {HOSTILE[0]}",
                    "expires": "2099-01-01",
                    "approved_by": HOSTILE[1],
                }
            ],
        },  # fmt: skip
        "card": {
            "model_name": f"tiny {HOSTILE[0]}",
            "owners": [{"name": f"Team {HOSTILE[1]}", "contact": "team@example.com"}],
            "intended_use": f"Testing the reports of auditkit {HOSTILE[2]}",
            "out_of_scope": HOSTILE[3],
            "limitations": LONG,
            "license": "Apache-2.0",
            "attestations": {
                "GOVERN 1.1": {"status": "met", "evidence": HOSTILE[4], "by": "J. Doe", "date": "2026-11-01"}
            },
        },
        "report": {"formats": formats, "title": f"Pre-deployment audit {HOSTILE[0]}"},
    }
    path = root / "audit.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def engine_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle written by ``run_audit`` with every report format (real engine, real checks)."""
    import datetime as dt

    from auditkit.engine.audit import run_audit

    root = tmp_path_factory.mktemp("engine")
    spec = write_spec(root / "spec")
    run_audit(spec, output=root / "out", today=dt.date(2026, 11, 21))
    return root / "out"


@pytest.fixture(scope="session")
def engine_results(engine_bundle: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((engine_bundle / "results.json").read_text(encoding="utf-8"))
    return doc
