"""The NIST AI RMF 1.0 Core (NIST AI 100-1, 2023) as data, and evidence coverage over it.

The Core text ships in ``auditkit/resources/nist_ai_rmf_core.json`` with its provenance. It is a work
of the U.S. Government, not subject to copyright in the United States. Mapping a check to a
subcategory means the check *provides evidence for* it, never that it *satisfies* it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from typing import Any

CITATION = "NIST AI 100-1 (2023), Artificial Intelligence Risk Management Framework (AI RMF 1.0), Tables 1-4"

# Subcategories whose outcome is organisational: they can be evidenced only by a person's
# attestation (policies, roles, culture, engagement), not by testing a model or its data.
ORGANISATIONAL_FUNCTIONS = ("GOVERN",)
ORGANISATIONAL_EXTRA = (
    "MAP 1.1", "MAP 1.2", "MAP 1.3", "MAP 1.4", "MAP 1.5", "MAP 1.6", "MAP 3.1", "MAP 3.2",
    "MAP 3.3", "MAP 3.4", "MAP 3.5", "MAP 4.1", "MAP 4.2", "MAP 5.1", "MAP 5.2",
    "MEASURE 1.2", "MEASURE 1.3", "MEASURE 3.1", "MEASURE 3.2", "MEASURE 3.3",
    "MEASURE 4.1", "MEASURE 4.2", "MEASURE 4.3",
    "MANAGE 1.1", "MANAGE 1.2", "MANAGE 1.3", "MANAGE 1.4", "MANAGE 2.1", "MANAGE 2.2",
    "MANAGE 2.3", "MANAGE 2.4", "MANAGE 3.1", "MANAGE 4.1", "MANAGE 4.2", "MANAGE 4.3",
)  # fmt: skip


@lru_cache(maxsize=1)
def core() -> dict[str, Any]:
    """The whole Core document (functions → categories → subcategories, with provenance)."""
    text = files("auditkit").joinpath("resources/nist_ai_rmf_core.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@lru_cache(maxsize=1)
def subcategories() -> dict[str, dict[str, Any]]:
    """All 72 subcategories by id (``"MEASURE 2.5"``), in the Core's order, with function and category."""
    out: dict[str, dict[str, Any]] = {}
    for fn in core()["functions"]:
        for cat in fn["categories"]:
            for sub in cat["subcategories"]:
                out[sub["id"]] = {
                    "id": sub["id"],
                    "text": sub["text"],
                    "function": fn["id"],
                    "category": cat["id"],
                    "category_text": cat["text"],
                    "organisational": is_organisational(sub["id"]),
                }
    return out


def is_organisational(sub_id: str) -> bool:
    return sub_id.split(" ")[0] in ORGANISATIONAL_FUNCTIONS or sub_id in ORGANISATIONAL_EXTRA


def normalise_id(raw: str) -> str:
    """Accept ``MEASURE 2.5``, ``measure 2.5``, ``MS-2.5`` and ``MEASURE-2.5``; return ``MEASURE 2.5``."""
    s = raw.strip().upper().replace("-", " ").replace("_", " ")
    abbrev = {"GV": "GOVERN", "MP": "MAP", "MS": "MEASURE", "MG": "MANAGE"}
    head, _, tail = s.partition(" ")
    return f"{abbrev.get(head, head)} {tail.strip()}"


def validate_subcategory_ids(ids: Iterable[str]) -> list[str]:
    """The ids that are not subcategories of the Core (empty when all are valid)."""
    known = subcategories()
    return [i for i in ids if normalise_id(i) not in known or normalise_id(i) != i]


def coverage(checks: Iterable[dict[str, Any]], attestations: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per subcategory (all 72): evidencing checks with their status, and the attestation.

    ``checks`` are check records from results.json; ``attestations`` maps subcategory id to an
    attestation record. A subcategory with neither is reported as ``not evidenced``, never omitted
    (MEASURE 1.1 asks to document what is not measured).
    """
    by_sub: dict[str, list[dict[str, Any]]] = {}
    for rec in checks:
        for sub in rec.get("nist_ai_rmf", []):
            by_sub.setdefault(sub, []).append({"id": rec["id"], "status": rec["status"]})
    rows = []
    for sub_id, sub in subcategories().items():
        evid = by_sub.get(sub_id, [])
        att = attestations.get(sub_id)
        ran = [e for e in evid if e["status"] in ("passed", "failed", "error")]
        if ran and att:
            state = "tested and attested"
        elif ran:
            state = "tested"
        elif att:
            state = "attested"
        else:
            state = "not evidenced"
        rows.append({**sub, "checks": evid, "attestation": att, "state": state})
    return rows
