"""Preflight hooks of the robustness checks: refuse a spec before the audit runs (exit 2)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from auditkit import InputError

if TYPE_CHECKING:
    from auditkit.engine.check import Preflight


def _auto_features(pf: Preflight, split: str) -> list[str]:
    """``data.features: auto``: every column of ``split`` but the label, id/group/time, sensitive and excluded ones."""
    data = pf.spec.data
    roles = {data.label, data.id, data.group, data.time, *data.sensitive, *data.exclude}
    return [c for c in pf.columns(split) if c not in roles]


def immutable_features_preflight(pf: Preflight) -> None:
    """``model.input.immutable`` must name features (a typo would otherwise error every attack check).

    Datetime columns, which ``features: auto`` leaves out, are not told apart here; the attack space
    still rejects them when the check runs."""
    model_input = getattr(getattr(pf.spec, "model", None), "input", None)
    immutable = list(getattr(model_input, "immutable", None) or [])
    if (
        not immutable
        or model_input is None
        or model_input.kind == "image"
        or not pf.splits
        or not pf.params.get("robustness", True)
    ):
        return
    declared = pf.spec.data.features
    features = list(declared) if isinstance(declared, list) else _auto_features(pf, pf.splits[0])
    unknown = [f for f in immutable if f not in features]
    if unknown:
        close = difflib.get_close_matches(unknown[0], features, n=1)
        raise InputError(
            f"model.input.immutable: {unknown[0]!r} is not a feature"
            + (f"; did you mean {close[0]!r}?" if close else "")
        )
