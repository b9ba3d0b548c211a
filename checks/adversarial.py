"""Built-in checks: adversarial evasion robustness through IBM's adversarial-robustness-toolbox (ART).

All attacks run in a *normalised* input space ``z ∈ [0, 1]``: ``x = offset + z · scale`` where, for
images, offset/scale come from the declared value range and, for tabular data, from each feature's
train min/max. An epsilon is therefore a fraction of the valid range (of each feature's train
range for tabular data), the box constraint is ART's ``clip_values=(0, 1)``, and features that must
not move (immutable, categorical codes, binary/one-hot columns, constants) are masked out with ART's
``mask``. The model stays in eval mode; attacks get the true labels.

ART is used the fast way (see KNOWLEDGE.md): ``ProjectedGradientDescentPyTorch`` on a
``PyTorchClassifier`` with large batches, the model's parameters frozen so backward computes only
input gradients, and a PGD subclass that keeps, per sample, the first iterate that fools the model
(ART returns the last iterate). Restarts are run here and combined per sample. Robust accuracy is
plain: correct after attack / all evaluated (not ART's ``adversarial_accuracy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from auditkit.checks._attacks import (
    fmt_eps,
    report_white_box,
    require_attack_rows,
    resolve_attacks,
    shared_white_box,
    validate_attack_params,
)
from auditkit.checks._masking import (
    compare_black_box,
    hop_skip_jump_sizes,
    masking_evidence,
    unbounded_verdict,
    white_box_invariants,
)
from auditkit.checks._robust_preflight import immutable_features_preflight
from pydantic import Field

from auditkit import DEFAULT_MIN_ROWS, Finding, Metric, Outcome, SpecError, check

# Parameter domains, validated by the engine before anything runs (exit 2 on a bad value).
Norm = Literal["inf", "l2"]
AtLeast1 = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]

if TYPE_CHECKING:
    from auditkit import RunContext


@check(
    id="AK-ADV-001",
    preflight=immutable_features_preflight,
    area="robustness",
    title="White-box evasion robustness (FGSM/PGD, or the APGD/Square ensemble) over an epsilon grid",
    requires=("model", "test"),
    severity="high",
    nist_ai_rmf=("MEASURE 2.7", "MEASURE 2.5", "MEASURE 2.6"),
    tags=("adversarial", "robustness", "security", "art"),
    cost="moderate",
    regression_title="Prediction sensitivity of a regressor: the largest change of the prediction within ε (PGD on |f(x+δ) − f(x)|) over an epsilon grid",
    regression_description="PGD (plain torch) maximising the change of the prediction |f(x + δ) − f(x)| within an L∞ or L2 ball of each ε, in label units and label sd; the robust share is the share of rows whose prediction moves by at most the tolerance (Wilson interval).",
)
def white_box_evasion(
    ctx: RunContext, /, *, split: str = "test", epsilons: list[float] | None = None, gate_epsilon: float | None = None,
    gate_norm: Norm = "inf", min_robust_accuracy: float = 0.5, conservative: bool = False,
    norms: Annotated[list[Norm], Field(min_length=1)] = ["inf", "l2"],  # noqa: B006
    steps: AtLeast1 = 20, restarts: AtLeast1 = 3,
    losses: Annotated[list[Literal["ce", "margin"]], Field(min_length=1)] = ["ce", "margin"],  # noqa: B006
    step_ratio: float = 2.5, l2_scale: float = 0.25, max_samples: int = 1000, perturb_binary: bool = False,
    batch_size: int = 2048, attacks: str | list[str] = "fast", apgd_steps: AtLeast1 = 100, apgd_targets: AtLeast1 = 9,
    square_queries: AtLeast1 = 5000, min_rows: int = DEFAULT_MIN_ROWS,
    tolerance: float | None = None, tolerance_sd: float = 0.25,
) -> Outcome:  # fmt: skip
    """Robust accuracy under white-box FGSM and PGD (L∞ and L2, ART) over an epsilon grid, true labels.

    Regression: the largest change of the prediction within ε (plain-torch PGD maximising
    |f(x+δ) − f(x)|), and the share of rows that stay within ``tolerance`` (the robust metric,
    gated by ``min_robust_accuracy``); see docs/regression.md.

    Epsilons are fractions of the valid value range: for images of the declared ``model.input.range``
    (default grid 0, 1, 2, 4, 8, 16 /255), for tabular data of each feature's train range (default
    0, 0.01, 0.02, 0.05, 0.1, 0.2), and values are kept within that range (train min/max). Immutable
    features, categorical codes and binary (one-hot) columns are never perturbed. PGD runs
    ``restarts`` times per radius, alternating cross-entropy and a margin loss (works for binary
    models), the first run of each loss from the clean point and later ones from a random start; per
    sample the first fooling iterate of any run counts. Robust accuracy is plain (correct after
    attack / all evaluated) with a Wilson interval; the reported worst case at a radius combines FGSM,
    PGD and all smaller radii. Also reported: per-class robust accuracy at the gate radius and the
    distribution of each sample's smallest successful epsilon. The gate compares the worst-case
    robust accuracy at ``gate_epsilon`` with ``min_robust_accuracy`` (its lower 95% bound when
    ``conservative``). ``attacks: standard`` runs instead the AutoAttack-style ensemble (Croce &
    Hein 2020), auditkit's own PyTorch code: APGD with cross-entropy, APGD with the targeted DLR loss
    against the ``apgd_targets`` most likely wrong classes (the targeted margin z_t − z_y when the
    model has fewer than 4 classes: binary models work), the minimum-norm FAB-T and the score-based
    Square attack (both L∞); a sample is robust only if every member fails. All members respect the
    mask and the per-feature box. A list picks members from fgsm, pgd, apgd-ce, apgd-t, fab-t, square.

    Parameters
    ----------
    split: split to attack.
    epsilons: L∞ radii as fractions of the valid range; default by input kind (see above). 0 and the gate radius are always added.
    gate_epsilon: L∞ radius the gate is declared at; default 2/255 for images, 0.05 of the range for tabular.
    gate_norm: norm of the gated attack: ``inf`` or ``l2`` (the L2 radius is derived as for the grid).
    min_robust_accuracy: smallest acceptable robust accuracy at the gate radius.
    conservative: gate on the lower end of the 95% Wilson interval instead of the point estimate.
    norms: threat models to evaluate: ``inf`` and/or ``l2``.
    steps: PGD iterations per run.
    restarts: PGD runs per radius (best per sample); the first ``len(losses)`` start at the clean point.
    losses: PGD losses to alternate between runs: ``ce`` (cross-entropy) and/or ``margin``.
    step_ratio: PGD step size as a multiple of epsilon / steps (2.5 as in Madry et al.).
    l2_scale: the L2 radius for grid value ε is ``l2_scale · √d · ε`` (d = number of perturbable inputs).
    max_samples: attack a seeded random subsample of at most this many labelled rows.
    perturb_binary: also perturb numeric columns with ≤ 2 distinct train values (default: treated as flags / one-hot).
    batch_size: attack batch size (large batches are what makes ART fast).
    attacks: ``fast`` (FGSM + PGD, the default), ``standard`` (APGD-CE, APGD-T, FAB-T, Square) or a
        list of fgsm, pgd, apgd-ce, apgd-t, fab-t, square.
    apgd_steps: iterations of each APGD and FAB-T run (AutoAttack: 100).
    apgd_targets: target classes of APGD-T and FAB-T, the most likely wrong ones first (AutoAttack: 9).
    square_queries: model queries per sample of the Square attack (AutoAttack: 5000).
    min_rows: fewest labelled rows of ``split`` to judge on; fewer make the check not applicable, never a pass.
    tolerance: regression: largest prediction change (label units) a row may show and still count as robust.
    tolerance_sd: regression: the tolerance as a share of the train label's sd, when ``tolerance`` is none.
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_robust import evasion_regression

        return evasion_regression(
            ctx, split=split, epsilons=epsilons, gate_epsilon=gate_epsilon, gate_norm=gate_norm,
            min_robust_share=min_robust_accuracy, conservative=conservative, norms=norms, steps=steps,
            restarts=restarts, step_ratio=step_ratio, l2_scale=l2_scale, max_samples=max_samples,
            perturb_binary=perturb_binary, batch_size=batch_size, tolerance=tolerance, tolerance_sd=tolerance_sd,
            min_rows=min_rows,
        )  # fmt: skip
    validate_attack_params(norms, losses, steps, restarts)
    resolve_attacks(attacks)
    if gate_norm not in norms:
        raise SpecError(f"gate_norm {gate_norm!r} must be one of norms {norms}")
    params = dict(
        epsilons=epsilons, gate_epsilon=gate_epsilon, norms=list(norms), steps=steps, restarts=restarts,
        losses=list(losses), step_ratio=step_ratio, l2_scale=l2_scale, max_samples=max_samples,
        perturb_binary=perturb_binary, batch_size=batch_size, attacks=attacks, apgd_steps=apgd_steps,
        apgd_targets=apgd_targets, square_queries=square_queries,
    )  # fmt: skip
    require_attack_rows(ctx, split, min_rows)
    wb, gate = shared_white_box(ctx, split, params)
    return report_white_box(ctx, wb, gate, gate_norm, min_robust_accuracy, conservative)


@check(
    id="AK-ADV-002",
    preflight=immutable_features_preflight,
    area="robustness",
    title="Black-box attack (HopSkipJump) and gradient-masking verdict",
    requires=("model", "test"),
    severity="high",
    nist_ai_rmf=("MEASURE 2.7", "MEASURE 2.5"),
    tags=("adversarial", "robustness", "security", "art", "gradient-masking"),
    default_enabled=False,
    cost="slow",
)
def black_box_and_masking(
    ctx: RunContext, /, *, split: str = "test", n_blackbox: AtLeast1 = 100, max_iter: AtLeast1 = 20,
    max_eval: AtLeast1 = 500, init_eval: AtLeast1 = 50, tolerance: NonNegative = 0.02,
    max_unbounded_accuracy: Annotated[float, Field(ge=0, le=1)] = 0.05, unbounded_steps: AtLeast1 = 50,
    epsilons: list[NonNegative] | None = None, gate_epsilon: NonNegative | None = None, steps: AtLeast1 = 20,
    restarts: AtLeast1 = 3, losses: Annotated[list[Literal["ce", "margin"]], Field(min_length=1)] = ["ce", "margin"],  # noqa: B006
    step_ratio: Annotated[float, Field(gt=0)] = 2.5, max_samples: AtLeast1 = 1000, perturb_binary: bool = False,
    batch_size: AtLeast1 = 2048, min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:  # fmt: skip
    """Runs ART's decision-based HopSkipJump (L∞) on a subsample and tests the white-box invariants
    whose violation signals gradient masking (a white-box number that overstates robustness).

    Invariants: robust accuracy never rises with epsilon (raw PGD per radius); FGSM is never stronger
    than PGD; PGD over the whole valid range (ε = 1) drives accuracy near zero (only judged when every
    input may move); the black-box attack does not beat the white-box worst case at any radius of the
    grid beyond its 95% interval (same rows, HopSkipJump's minimal perturbations compared with each
    radius). Each violation is a finding. The white-box run is shared with AK-ADV-001 when their
    parameters agree. Cost: HopSkipJump makes up to ``max_iter × max_eval`` queries per sample — tens
    of seconds for 100 digits on one CPU thread; off by default.

    Parameters
    ----------
    split: split to attack.
    n_blackbox: rows attacked by HopSkipJump (a seeded subsample of the white-box rows).
    max_iter: HopSkipJump iterations per sample.
    max_eval: HopSkipJump's largest number of queries per gradient estimate.
    init_eval: HopSkipJump's initial number of queries per gradient estimate.
    tolerance: accuracy slack (absolute) allowed before a monotonicity or FGSM ≥ PGD violation counts.
    max_unbounded_accuracy: accuracy an unbounded (whole-range) PGD must get below.
    unbounded_steps: PGD iterations of the unbounded attack.
    epsilons: L∞ grid, as for AK-ADV-001.
    gate_epsilon: radius whose black-box robust accuracy is the headline number; default as AK-ADV-001.
    steps: white-box PGD iterations, as for AK-ADV-001.
    restarts: white-box PGD runs per radius, as for AK-ADV-001.
    losses: white-box PGD losses, as for AK-ADV-001.
    step_ratio: white-box PGD step ratio, as for AK-ADV-001.
    max_samples: white-box subsample size, as for AK-ADV-001.
    perturb_binary: as for AK-ADV-001.
    batch_size: attack batch size.
    min_rows: fewest labelled rows of ``split`` to judge on; fewer make the check not applicable, never a pass.
    """
    if ctx.task == "regression":
        from auditkit import NotApplicable

        raise NotApplicable("the gradient-masking verdict compares decision-based attacks on class labels: "
                            "regression models are covered by AK-ADV-001's prediction-sensitivity PGD")  # fmt: skip
    from auditkit.toolkit import wilson  # scipy, lazily: `auditkit checks` stays light

    validate_attack_params(["inf"], losses, steps, restarts)
    params = dict(  # lists, as AK-ADV-001's: the white-box run is shared when the parameters agree
        epsilons=list(epsilons) if epsilons is not None else None, gate_epsilon=gate_epsilon, norms=["inf"],
        steps=steps, restarts=restarts, losses=list(losses), step_ratio=step_ratio, l2_scale=0.25,
        max_samples=max_samples, perturb_binary=perturb_binary, batch_size=batch_size,
    )  # fmt: skip
    require_attack_rows(ctx, split, min_rows)
    wb, gate = shared_white_box(ctx, split, params, unbounded_steps=unbounded_steps)
    # compute: white-box invariants, then HopSkipJump on a seeded subsample of the same rows
    findings, rises, fgsm_stronger = white_box_invariants(wb, tolerance)
    unbounded, unbounded_finding, u_acc = unbounded_verdict(wb, max_unbounded_accuracy)
    findings += [unbounded_finding] if unbounded_finding else []
    n = len(wb.space.y)
    sub = np.sort(ctx.rng().choice(n, size=min(n_blackbox, n), replace=False))
    hsj: dict[str, int | str] = {"norm": "inf", "max_iter": max_iter, "max_eval": max_eval, "init_eval": init_eval,
                                 "batch_size": batch_size}  # fmt: skip
    sizes = hop_skip_jump_sizes(ctx, wb, sub, hsj)
    bb = compare_black_box(wb, sub, sizes)
    # judge
    if bb.beats:
        findings.append(Finding(
            f"the black-box attack beats the white-box attacks at ε = {', '.join(f'{e:.4g}' for e in bb.beats)} "
            "beyond its 95% interval: white-box robustness is overstated (gradient masking)", key="blackbox_le_whitebox",
        ))  # fmt: skip
    m, kb = len(sub), int(bb.correct[wb.grid.index(gate)].sum())
    eps_text = fmt_eps(gate, wb.space.kind, "inf")
    n_signs = sum(1 for f in findings if f.severity != "info")
    metrics = [
        Metric("blackbox_robust_accuracy", kb / m, ci=wilson(kb, m), n=m,
               details={"epsilon": gate, "attack": "HopSkipJump L∞"},
               description=f"accuracy after HopSkipJump at ε = {eps_text}"),
        unbounded,
        Metric("gradient_masking_signs", n_signs, n=4, description="violated invariants (of 4)"),
    ]  # fmt: skip
    # evidence
    holds = [("accuracy never rises with epsilon", not rises), ("FGSM ≥ PGD", not fgsm_stronger),
             (f"unbounded attack ≤ {max_unbounded_accuracy}", u_acc <= max_unbounded_accuracy),
             ("black-box ≥ white-box", not bb.beats)]  # fmt: skip
    evidence = masking_evidence(wb, sub, sizes, bb, holds)
    verdict = "signs of gradient masking" if n_signs else "no sign of gradient masking"
    summary = (f"{verdict} ({n_signs} of 4 invariants violated); HopSkipJump robust accuracy {kb / m:.3f} at "
               f"ε = {eps_text} (n={m}); unbounded PGD accuracy {u_acc:.3f}.")  # fmt: skip
    return Outcome.from_metrics(metrics, summary=summary, findings=findings, evidence=evidence)
