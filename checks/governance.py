"""Built-in checks: governance facts that only people can give (model card, NIST AI RMF attestations)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from auditkit import Finding, Metric, NotApplicable, Outcome, SpecError, check
from auditkit.toolkit import RMF_CITATION as CITATION
from auditkit.toolkit import rmf_is_organisational as is_organisational
from auditkit.toolkit import rmf_subcategories as subcategories

if TYPE_CHECKING:
    from auditkit import RunContext  # importing it at run time would pull in pandas and pydantic

# Model-card fields, what each is for, and whether a release needs it.
CARD_FIELDS: dict[str, tuple[str, bool]] = {
    "owners": ("who is accountable for the model and how to reach them", True),
    "intended_use": ("what the model is for and for whom", True),
    "out_of_scope": ("uses the model must not be put to", True),
    "limitations": ("known limitations and failure modes", True),
    "ethical_considerations": ("risks to people and how they are mitigated", True),
    "license": ("terms under which the model may be used", True),
    "overview": ("a short description of the model", False),
    "users": ("intended users", False),
    "tradeoffs": ("trade-offs made (accuracy vs fairness, latency, ...)", False),
    "references": ("papers, datasets and documents the card relies on", False),
    "version": ("model version", False),
}
_PLACEHOLDERS = {"", "...", "tbd", "todo", "n/a", "none", "-", "?", "xxx", "fill me in"}


def _filled(value: Any, min_chars: int) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        text = value.strip()
        return text.lower() not in _PLACEHOLDERS and len(text) >= min_chars
    if isinstance(value, (list, tuple, dict)):
        return len(value) > 0
    return True


@check(
    id="AK-GOV-001",
    area="governance",
    title="Model card completeness",
    requires=("card",),
    severity="medium",
    nist_ai_rmf=("MAP 1.1", "MAP 2.2", "MAP 3.4", "GOVERN 1.4", "MEASURE 2.8", "MEASURE 2.9"),
    tags=("governance", "documentation"),
)
def model_card_completeness(
    ctx: RunContext,
    /,
    *,
    required: list[str] | None = None,
    min_chars: int = 20,
    min_completeness: float = 1.0,
) -> Outcome:
    """Checks that the ``card`` section documents what a release needs.

    Each required field must be present and more than a placeholder ("TBD", "...").

    Parameters
    ----------
    required: card fields that must be filled; default: owners, intended_use, out_of_scope,
        limitations, ethical_considerations, license.
    min_chars: shortest text that counts as filled for free-text fields (a licence id is exempt).
    min_completeness: share of required fields that must be filled (1.0 = all).
    """
    card = ctx.spec.card if ctx.spec is not None else None
    if card is None:
        raise NotApplicable("no card section")
    fields = required if required is not None else [k for k, (_, req) in CARD_FIELDS.items() if req]
    data = card.model_dump(mode="json")
    unknown = [f for f in fields if f not in data]
    if unknown:
        raise SpecError(f"required: {unknown} are not card fields (known: {sorted(data)})")
    rows, missing = [], []
    for name in fields:
        limit = 1 if name in ("license", "version", "owners", "users", "references") else min_chars
        ok = _filled(data.get(name), limit)
        rows.append([name, "filled" if ok else "missing", CARD_FIELDS.get(name, ("", False))[0]])
        if not ok:
            missing.append(name)
    share = (len(fields) - len(missing)) / len(fields) if fields else 1.0
    metric = Metric(
        "completeness", share, n=len(fields), threshold=min_completeness, direction="higher",
        description="share of required model-card fields that are filled",
    )  # fmt: skip
    findings = [
        Finding(
            f"model card field '{name}' is missing or a placeholder: {CARD_FIELDS.get(name, ('', False))[0]}",
            key=name,
        )
        for name in missing
    ]
    optional_missing = [
        k
        for k, (_, req) in CARD_FIELDS.items()
        if not req and k not in fields and not _filled(data.get(k), 1)
    ]
    if optional_missing:
        findings.append(
            Finding(f"optional card fields left empty: {', '.join(optional_missing)}", severity="info")
        )
    status_ok = metric.passed is not False
    summary = f"{len(fields) - len(missing)}/{len(fields)} required card fields filled"
    outcome = Outcome(
        metrics=[metric],
        findings=findings if not status_ok else [f for f in findings if f.severity == "info"],
        summary=summary,
        evidence={"fields": {"columns": ["field", "state", "purpose"], "rows": rows}},
    )
    return outcome


@check(
    id="AK-GOV-002",
    area="governance",
    title="NIST AI RMF attestations for organisational subcategories",
    requires=("card",),
    severity="low",
    nist_ai_rmf=("GOVERN 1.1", "GOVERN 2.1", "GOVERN 4.1", "MANAGE 1.1"),
    tags=("governance", "nist-ai-rmf"),
)
def rmf_attestations(
    ctx: RunContext,
    /,
    *,
    required: list[str] | None = None,
    max_age_days: int = 365,
    min_coverage: float = 0.0,
) -> Outcome:
    """Records the people's attestations for NIST AI RMF subcategories that tests cannot evidence.

    Attestation ids are validated against the 72 subcategories of the Core when the spec is read.
    Organisational subcategories without an attestation are listed (never silenced). An attestation
    whose status is ``not_met``, or which is older than ``max_age_days``, is a finding.

    Parameters
    ----------
    required: subcategories that must carry an attestation with status met, partially_met or
        not_applicable (e.g. ["GOVERN 1.1", "MANAGE 1.1"]); default none.
    max_age_days: attestations dated longer ago than this many days (from the audit date) are stale.
    min_coverage: share of organisational subcategories that must be attested (0 = report only).
    """
    card = ctx.spec.card if ctx.spec is not None else None
    if card is None:
        raise NotApplicable("no card section")
    from auditkit.toolkit import rmf_normalise_id as normalise_id
    from auditkit.toolkit import rmf_validate_ids as validate_subcategory_ids

    subs = subcategories()
    need = [normalise_id(r) for r in (required or [])]
    bad = validate_subcategory_ids(need)
    if bad:
        raise SpecError(f"required: {bad} are not NIST AI RMF subcategories")
    atts = card.attestations
    org = [s for s in subs if is_organisational(s)]
    attested = [s for s in org if s in atts]
    today = dt.date.today()
    findings: list[Finding] = []
    for sid, att in sorted(atts.items()):
        if att.status == "not_met":
            findings.append(Finding(f"{sid} attested as not met by {att.by}: {att.evidence}", key=sid))
        age = (today - att.date).days
        if age > max_age_days:
            findings.append(Finding(f"{sid} attestation is {age} days old (limit {max_age_days})", key=sid))
        if att.date > today:
            findings.append(Finding(f"{sid} attestation is dated in the future ({att.date})", key=sid))
    for sid in need:
        if sid not in atts:
            findings.append(
                Finding(f"required attestation for {sid} is missing: {subs[sid]['text']}", key=sid)
            )
    unattested = [s for s in org if s not in atts]
    coverage = len(attested) / len(org) if org else 1.0
    metric = Metric(
        "organisational_coverage", coverage, n=len(org), threshold=min_coverage if min_coverage > 0 else None,
        direction="higher", description="share of organisational subcategories with an attestation",
    )  # fmt: skip
    if metric.passed is False:
        findings.append(Finding(metric.describe_failure(), key="coverage", metric=metric.name))
    if unattested:
        findings.append(
            Finding(
                f"{len(unattested)} of {len(org)} organisational subcategories have no attestation",
                severity="info",
                key="unattested",
                evidence={"subcategories": unattested},
            )
        )
    rows = [[sid, a.status, a.by, a.date.isoformat(), a.evidence] for sid, a in sorted(atts.items())]
    return Outcome(
        metrics=[metric, Metric("attestations", len(atts), description="attestations recorded")],
        findings=findings,
        summary=f"{len(attested)}/{len(org)} organisational subcategories attested",
        evidence={
            "attestations": {"columns": ["subcategory", "status", "by", "date", "evidence"], "rows": rows},
            "unattested": unattested,
            "citation": CITATION,
        },
    )
