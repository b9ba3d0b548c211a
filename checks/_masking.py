"""AK-ADV-002 helpers: the white-box invariants whose violation signals gradient masking, and the
comparison of HopSkipJump's minimal perturbations with the white-box worst case on the same rows."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from auditkit.checks._attacks import fmt_eps, hop_skip_jump_task, wilson_row

from auditkit import Finding, Metric

if TYPE_CHECKING:
    from auditkit import RunContext

# Samples per HopSkipJump task: a fixed size (never from the worker count), so the shards and their
# seeds are the same whatever runs them.
HSJ_SHARD = 5


def white_box_invariants(
    wb: Any, tolerance: float
) -> tuple[list[Finding], list[tuple[float, float]], list[float]]:
    """Findings for PGD accuracy rising with ε and for FGSM beating PGD (beyond ``tolerance``)."""
    pgd, fgsm = wb.correct["inf"]["pgd"].mean(axis=1), wb.correct["inf"]["fgsm"].mean(axis=1)
    rises = [(wb.grid[i], wb.grid[i + 1]) for i in range(len(wb.grid) - 1) if pgd[i + 1] > pgd[i] + tolerance]
    fgsm_stronger = [wb.grid[i] for i in range(len(wb.grid)) if fgsm[i] + tolerance < pgd[i]]
    findings = []
    if rises:
        findings.append(Finding(
            f"PGD robust accuracy rises with epsilon ({', '.join(f'{a:.4g}→{b:.4g}' for a, b in rises)}): "
            "the attack is not converging, a sign of gradient masking", key="monotone",
            evidence={"epsilon": wb.grid, "pgd": pgd.tolist()},
        ))  # fmt: skip
    if fgsm_stronger:
        findings.append(Finding(
            f"single-step FGSM beats PGD at ε = {', '.join(f'{e:.4g}' for e in fgsm_stronger)}: "
            "the loss surface misleads iterative attacks (gradient masking)", key="fgsm_ge_pgd",
        ))  # fmt: skip
    return findings, rises, fgsm_stronger


def unbounded_verdict(wb: Any, max_unbounded_accuracy: float) -> tuple[Metric, Finding | None, float]:
    """The accuracy under PGD over the whole valid range, and a finding when it stays above the
    maximum (info only when some inputs are frozen: then it may be legitimate)."""
    assert wb.unbounded is not None
    u_acc, u_ci, _ = wilson_row(wb.unbounded)
    metric = Metric("unbounded_accuracy", u_acc, ci=u_ci, n=len(wb.space.y),
                    description="accuracy under L∞ PGD over the whole valid range (ε = 1)")  # fmt: skip
    if u_acc <= max_unbounded_accuracy:
        return metric, None, u_acc
    all_mutable = wb.space.n_mutable == wb.space.mask.size
    msg = (f"an unbounded attack leaves accuracy at {u_acc:.3f} (> {max_unbounded_accuracy}): gradients do not "
           "lead the attack to the decision boundary (gradient masking)")  # fmt: skip
    finding = Finding(msg if all_mutable else msg + "; some inputs are frozen, so this may be legitimate",
                      severity=None if all_mutable else "info", key="unbounded")  # fmt: skip
    return metric, finding, u_acc


def hop_skip_jump_sizes(ctx: RunContext, wb: Any, sub: np.ndarray, hsj: dict[str, int | str]) -> np.ndarray:
    """HopSkipJump's minimal L∞ perturbation per subsampled row (0 for rows already misclassified;
    inf where it found none), in compute tasks of HSJ_SHARD samples, each with its own seed and
    combined in order (docs/compute.md). The model travels once."""
    space = wb.space
    todo = np.flatnonzero(wb.clean[sub])
    sizes = np.full(len(sub), 0.0)
    if len(todo):
        z_bb, y_bb = space.z[sub][todo], space.y[sub][todo]
        light = dataclasses.replace(space, z=space.z[:0], y=space.y[:0], rows=space.rows[:0])
        shards = [(z_bb[j : j + HSJ_SHARD], y_bb[j : j + HSJ_SHARD]) for j in range(0, len(todo), HSJ_SHARD)]
        sizes[todo] = np.concatenate(ctx.map(hop_skip_jump_task, shards, shared=(ctx.model(), light, hsj)))
    return sizes


@dataclasses.dataclass(frozen=True)
class BlackBoxComparison:
    correct: np.ndarray  # (radii, rows): still correct after HopSkipJump at each radius
    rows: list[list[Any]]  # the evidence table
    beats: list[float]  # radii where black-box beats the white-box worst case beyond its interval


def compare_black_box(wb: Any, sub: np.ndarray, sizes: np.ndarray) -> BlackBoxComparison:
    """Per radius: white-box worst-case vs HopSkipJump robust accuracy on the same rows, with the
    black-box Wilson interval; black-box beating white-box beyond it overstates white-box robustness."""
    from auditkit.toolkit import wilson  # scipy, lazily

    worst = wb.worst("inf")[:, sub]
    correct = np.stack([wb.clean[sub] & (sizes > e + 1e-6) for e in wb.grid])
    rows, beats, m = [], [], len(sub)
    for i, e in enumerate(wb.grid):
        kb, kw = int(correct[i].sum()), int(worst[i].sum())
        lo, hi = wilson(kb, m)
        only_bb = int((~correct[i] & worst[i]).sum())
        rows.append(
            [fmt_eps(e, wb.space.kind, "inf"), float(kw / m), float(kb / m), float(lo), float(hi), only_bb, m]
        )
        if hi < kw / m:
            beats.append(e)
    return BlackBoxComparison(correct, rows, beats)


def masking_evidence(
    wb: Any, sub: np.ndarray, sizes: np.ndarray, bb: BlackBoxComparison, holds: list[tuple[str, bool]]
) -> dict[str, Any]:
    """The comparison table, the invariants, the white- vs black-box curve and HopSkipJump's sizes."""
    finite = sizes[np.isfinite(sizes) & (sizes > 0)]
    return {
        "black-box vs white-box robust accuracy (same rows)": {
            "columns": ["epsilon", "white_box_worst", "black_box", "bb_ci_low", "bb_ci_high", "only_black_box_broke", "n"],
            "rows": bb.rows},
        "invariants": {"columns": ["invariant", "holds"], "rows": [[name, ok] for name, ok in holds]},
        "plots": [{"type": "line", "title": "White-box vs black-box robust accuracy (L∞)", "x_label": "epsilon",
                   "y_label": "robust accuracy", "series": [
                       {"name": "white-box worst case", "x": wb.grid, "y": wb.worst("inf")[:, sub].mean(axis=1).tolist()},
                       {"name": "HopSkipJump", "x": wb.grid, "y": bb.correct.mean(axis=1).tolist()}]}],
        "hopskipjump": {"samples": len(sub), "median_perturbation_linf": float(np.median(finite)) if len(finite) else None,
                        "not_broken": int(np.isinf(sizes).sum())},
    }  # fmt: skip
