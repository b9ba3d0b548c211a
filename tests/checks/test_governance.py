"""AK-GOV-001 (model-card completeness) and AK-GOV-002 (NIST AI RMF attestations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from auditkit.checks.governance import model_card_completeness, rmf_attestations

from auditkit.frameworks.rmf import coverage, subcategories
from auditkit.testing import make_artifacts, run_check

FULL = {
    "owners": [{"name": "Credit ML team", "contact": "ml@example.com"}],
    "intended_use": "Second opinion for loan officers reviewing applications.",
    "out_of_scope": "Automated rejection of applicants without human review.",
    "limitations": "Trained on 1989 data from one city; drifts with the economy.",
    "ethical_considerations": "Approval gaps by race and sex are measured each release.",
    "license": "Apache-2.0",
}


def gov(check: Any, card: dict[str, Any] | None, **params: Any) -> dict[str, Any]:
    spec = {"card": card} if card is not None else {}
    return run_check(check, make_artifacts(spec=spec), params=params)


def test_complete_card_passes_and_placeholder_fails() -> None:
    assert gov(model_card_completeness, FULL)["status"] == "passed"
    rec = gov(model_card_completeness, {**FULL, "limitations": "TBD", "license": None})
    assert rec["status"] == "failed"
    assert {f["key"] for f in rec["findings"] if f["severity"] != "info"} == {"limitations", "license"}
    assert rec["metrics"][0]["value"] == pytest.approx(4 / 6)


def test_completeness_threshold_and_custom_fields() -> None:
    partial = {**FULL, "limitations": "..."}
    assert gov(model_card_completeness, partial, min_completeness=0.8)["status"] == "passed"
    assert gov(model_card_completeness, partial, min_completeness=0.9)["status"] == "failed"
    rec = gov(model_card_completeness, FULL, required=["tradeoffs"])
    assert rec["status"] == "failed" and rec["findings"][0]["key"] == "tradeoffs"
    assert gov(model_card_completeness, FULL, required=["nonsense"])["status"] == "error"


def test_short_text_is_not_enough() -> None:
    rec = gov(model_card_completeness, {**FULL, "intended_use": "loans"})
    assert rec["status"] == "failed" and rec["findings"][0]["key"] == "intended_use"


def test_no_card_is_not_applicable() -> None:
    assert gov(model_card_completeness, None)["status"] == "not_applicable"
    assert gov(rmf_attestations, None)["status"] == "not_applicable"


def att(status: str = "met", days_ago: int = 10) -> dict[str, Any]:
    date = (dt.date.today() - dt.timedelta(days=days_ago)).isoformat()
    return {"status": status, "evidence": "policy P-12", "by": "J. Doe", "date": date}


def test_attestations_listed_and_counted() -> None:
    card = {**FULL, "attestations": {"GOVERN 1.1": att(), "gv-2.1": att("partially_met")}}
    rec = gov(rmf_attestations, card)
    assert rec["status"] == "passed"
    org = [s for s, v in subcategories().items() if v["organisational"]]
    assert rec["metrics"][0]["value"] == pytest.approx(2 / len(org))
    unattested = rec["evidence"]["unattested"]
    assert "GOVERN 1.1" not in unattested and "GOVERN 2.1" not in unattested
    assert len(unattested) == len(org) - 2


def test_not_met_stale_and_missing_required_attestations_fail() -> None:
    assert (
        gov(rmf_attestations, {**FULL, "attestations": {"GOVERN 1.1": att("not_met")}})["status"] == "failed"
    )
    stale = gov(rmf_attestations, {**FULL, "attestations": {"GOVERN 1.1": att(days_ago=400)}})
    assert stale["status"] == "failed" and "days old" in stale["findings"][0]["message"]
    missing = gov(rmf_attestations, {**FULL, "attestations": {"GOVERN 1.1": att()}}, required=["MANAGE 1.1"])
    assert missing["status"] == "failed" and missing["findings"][0]["key"] == "MANAGE 1.1"
    coverage_gate = gov(rmf_attestations, {**FULL, "attestations": {"GOVERN 1.1": att()}}, min_coverage=0.5)
    assert coverage_gate["status"] == "failed"


def test_rmf_core_has_72_subcategories_and_coverage_never_silences() -> None:
    subs = subcategories()
    assert len(subs) == 72
    assert {s.split()[0] for s in subs} == {"GOVERN", "MAP", "MEASURE", "MANAGE"}
    rows = coverage(
        [{"id": "AK-X-001", "status": "passed", "nist_ai_rmf": ["MEASURE 2.5"]}], {"GOVERN 1.1": att()}
    )
    assert len(rows) == 72
    states = {r["id"]: r["state"] for r in rows}
    assert states["MEASURE 2.5"] == "tested" and states["GOVERN 1.1"] == "attested"
    assert states["MAP 2.3"] == "not evidenced"
