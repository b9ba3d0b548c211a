"""Crosswalks beside the NIST AI RMF: the EU AI Act (Articles 9-15, Annex IV) and ISO/IEC 42001 Annex A.

Each framework ships as data with its provenance in ``auditkit/resources/<id>.json``: items (an Article
paragraph, an Annex A control) each mapped to NIST AI RMF 1.0 subcategories, every mapping marked
``crosswalk`` (taken from the public crosswalk named in the file) or ``judgement`` (auditkit's own).
Coverage is computed from the same check -> subcategory evidence as the NIST matrix, so the three
matrices can never disagree: an item is ``tested`` when a check that evidences one of its
subcategories ran. As for NIST, mapping means "provides evidence for", never "satisfies", and an
item with no evidence is listed as ``not evidenced``, never omitted.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any

from auditkit.frameworks import rmf

NIST = "nist_ai_rmf"
CROSSWALKS = ("eu_ai_act", "iso_42001")
FRAMEWORKS = (NIST, *CROSSWALKS)
STATES = ("tested and attested", "tested", "attested", "not evidenced")
RAN = ("passed", "failed", "error")


@cache
def load(framework: str) -> dict[str, Any]:
    """The framework document (``eu_ai_act`` or ``iso_42001``) with its provenance."""
    if framework not in CROSSWALKS:
        raise KeyError(framework)
    text = files("auditkit").joinpath(f"resources/{framework}.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def mapped(item: dict[str, Any]) -> list[str]:
    """The NIST subcategories an item maps to: the crosswalk's first, then auditkit's judgement."""
    m = item.get("nist_ai_rmf") or {}
    out: list[str] = []
    for sub in [*(m.get("crosswalk") or []), *(m.get("judgement") or [])]:
        if sub not in out:
            out.append(sub)
    return out


def items(framework: str) -> list[dict[str, Any]]:
    """Every item of a crosswalk framework (Annex IV included for the EU AI Act), in document order."""
    doc = load(framework)
    out = [dict(it, group=g["id"], group_title=g["title"]) for g in doc["groups"] for it in g["items"]]
    out += [
        dict(it, group="Annex IV", group_title="Technical documentation") for it in doc.get("annex_iv", [])
    ]
    return out


def _key(raw: str) -> str:
    """A spelling-insensitive key: ``article 9(2)(a)``, ``Art.9(2)(a)`` and ``EU AI Act Art. 9(2)(a)`` agree."""
    s = raw.strip().upper()
    s = re.sub(r"^(EU\s*AI\s*ACT|ISO/?IEC\s*42001(:2023)?|ISO\s*42001)[\s:,-]*", "", s)
    s = re.sub(r"^ARTICLE", "ART", s)
    return re.sub(r"[\s.]", "", s)


@lru_cache(maxsize=1)
def _crosswalk_ids() -> dict[str, tuple[str, str]]:
    return {_key(it["id"]): (fw, it["id"]) for fw in CROSSWALKS for it in items(fw)}


def normalise_attestation_id(raw: str) -> str:
    """The canonical id of a NIST subcategory, EU AI Act item or ISO/IEC 42001 control.

    Raises ValueError with the closest known id when ``raw`` names none of them.
    """
    nist = rmf.normalise_id(raw)
    if nist in rmf.subcategories():
        return nist
    hit = _crosswalk_ids().get(_key(raw))
    if hit:
        return hit[1]
    known = [*rmf.subcategories(), *(fid for _, fid in _crosswalk_ids().values())]
    close = difflib.get_close_matches(str(raw).strip(), known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{raw!r} is not a NIST AI RMF 1.0 subcategory, EU AI Act item or ISO/IEC 42001 Annex A control{hint}"
    )


def _evidence(rows: dict[str, dict[str, Any]], subs: list[str]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for sub in subs:
        for c in rows[sub]["checks"]:
            seen.setdefault(c["id"], {"id": c["id"], "status": c["status"], "via": []})["via"].append(sub)
    return list(seen.values())


def _state(ran: bool, attested: bool) -> str:
    return STATES[0] if ran and attested else "tested" if ran else "attested" if attested else STATES[3]


def coverage(
    framework: str, checks: Iterable[dict[str, Any]], attestations: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per item of ``framework`` (all of them): evidencing checks, attestations, state.

    An item is ``tested`` when a check that evidences one of its mapped NIST subcategories ran
    (passed, failed or errored), and ``attested`` when the item itself carries an attestation. NIST
    attestations of its subcategories are listed beside it (``nist_attestations``) but do not make
    it attested: an attestation for GOVERN 1.1 is not one for Article 9(1).
    """
    nist_rows = {r["id"]: r for r in rmf.coverage(list(checks), attestations)}
    out = []
    for it in items(framework):
        subs = mapped(it)
        evid = _evidence(nist_rows, subs)
        att = attestations.get(it["id"])
        ran = any(e["status"] in RAN for e in evid)
        m = it.get("nist_ai_rmf") or {}
        out.append({
            "id": it["id"], "title": it["title"], "group": it["group"], "group_title": it["group_title"],
            "sections": it.get("sections"), "evidence_note": it.get("evidence"),
            "nist": [{"id": s, "basis": "crosswalk" if s in (m.get("crosswalk") or []) else "judgement"} for s in subs],
            "checks": evid, "attestation": att,
            "nist_attestations": [s for s in subs if nist_rows[s]["attestation"]],
            "state": _state(ran, bool(att)),
        })  # fmt: skip
    return out


def selected(results: dict[str, Any]) -> list[str]:
    """The frameworks the spec asks for (``report.frameworks``; NIST only by default), known ones only."""
    report = (results.get("spec") or {}).get("report") or {}
    asked = report.get("frameworks") if isinstance(report, dict) else None
    chosen = [f for f in (asked or [NIST]) if f in FRAMEWORKS]
    return chosen or [NIST]
