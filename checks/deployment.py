"""Built-in checks: the model you ship is the model you audited (AK-DEPLOY-001, AK-DEPLOY-002).

Each ``deployment.artifacts`` entry (an ONNX or TorchScript file, or a dynamic-int8 / bfloat16 /
float16 version auditkit derives from ``model``) is compared with the audited model on the same
rows, fed the same raw inputs (preprocessing lives inside both modules): prediction parity,
robustness parity (AK-ADV-001's robust accuracy at its gate epsilon, AK-ADV-003's corruption
error), and inference cost (latency percentiles with bootstrap intervals, throughput, memory,
size, stored values, a Pareto table). Loading lives in ``auditkit.inputs.deployment``, timing in ``auditkit.checks._deploy``.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from auditkit.checks._data_preflight import slices_preflight
from auditkit.checks._robust_preflight import immutable_features_preflight
from pydantic import Field

from auditkit import Finding, Metric, NotApplicable, Outcome, SpecError, check

if TYPE_CHECKING:
    from auditkit import RunContext
    from auditkit.engine.check import Preflight
    from auditkit.toolkit import Candidate

TIMING = {"timing": True}  # measured on this machine: left out of determinism comparisons


def _finite(v: float | None) -> float | None:
    """An evidence number at full precision (renderers round); None when missing or not finite."""
    return None if v is None or not np.isfinite(v) else float(v)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _candidates(ctx: RunContext) -> tuple[list[Candidate], list[Candidate], list[Finding]]:
    """(audited + runnable artifacts, unavailable artifacts, notes about the unavailable ones)."""
    from auditkit import Skipped

    everything = ctx.deployment_candidates()
    ready = [c for c in everything if c.forward is not None]
    missing = [c for c in everything if c.forward is None]
    notes = [Finding(f"{c.name} ({c.kind}) not evaluated: {c.unavailable}", severity="info", key=f"unavailable:{c.name}")
             for c in missing]  # fmt: skip
    if len(ready) == 1:
        reasons = "; ".join(f"{c.name}: {c.unavailable}" for c in missing)
        if any("not installed" in str(c.unavailable) for c in missing):
            raise Skipped(f"no artifact can run here ({reasons})")
        raise NotApplicable(f"no artifact can run here ({reasons})")
    return ready, missing, notes


def _logits(ctx: RunContext, cand: Candidate, split: str) -> np.ndarray:
    from auditkit.checks._deploy import is_audited

    if is_audited(cand):
        return ctx.predictions(split).logits

    def compute() -> np.ndarray:
        x = ctx.dataset(split).x
        shape = ctx.sample_shape()
        out = cand.logits(x.reshape((len(x), *shape)))
        if _are_probabilities(out) and not _are_probabilities(ctx.predictions(split).logits):
            # An export with the softmax inside returns probabilities: compare them as such.
            note = "outputs probabilities (softmax inside); compared as log-probabilities"
            if note not in cand.notes:
                cand.notes.append(note)
            return np.log(np.clip(out.astype(np.float64), 1e-300, None))
        return out

    return ctx.cached(f"deployment:logits:{cand.name}:{split}", compute)


def _are_probabilities(out: np.ndarray) -> bool:
    return bool(len(out)) and bool((out >= 0).all()) and bool(np.allclose(out.sum(axis=1), 1.0, atol=1e-4))


# ------------------------------------------------------------------------------------------------
# AK-DEPLOY-001: prediction and robustness parity
# ------------------------------------------------------------------------------------------------
def _paired_drop_ci(
    correct_m: np.ndarray, correct_a: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap of accuracy(audited) − accuracy(artifact), rows resampled in pairs."""
    n = len(correct_m)
    d = correct_m.astype(np.float64) - correct_a.astype(np.float64)
    if n == 0:
        return (float("nan"), float("nan"))
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    reps = counts @ d / n
    return float(np.quantile(reps, 0.025)), float(np.quantile(reps, 0.975))


def _slice_rates(ctx: RunContext, split: str, flip: np.ndarray, min_rows: int) -> list[list[Any]]:
    """[slice, attribute, n, disagreement, ci low, ci high, judged] per slice of the split."""
    from auditkit.checks._evaluation import slice_masks

    from auditkit.toolkit import wilson

    try:
        slices = slice_masks(ctx, split)
    except (KeyError, ValueError, TypeError):
        return []
    rows = []
    for name, (attr, mask) in slices.items():
        n = int(mask.sum())
        k = int(flip[mask].sum())
        lo, hi = wilson(k, n)
        rows.append(
            [name, attr, n, _finite(k / n if n else float("nan")), _finite(lo), _finite(hi), n >= min_rows]
        )
    rows.sort(key=lambda r: (not r[6], -float(r[3] or 0.0), str(r[0])))  # type: ignore[arg-type]
    return rows


def _flip_rows(
    ctx: RunContext, name: str, split: str, pm: np.ndarray, pa: np.ndarray, flips: np.ndarray
) -> list[list[Any]]:
    ds = ctx.dataset(split)
    ids = ds.ids
    y = ds.y
    out = []
    for i in np.flatnonzero(flips):
        out.append([name, split, int(i), None if ids is None else str(ids.iloc[i]),
                    None if y is None else int(y[i]), int(pm[i].argmax()), int(pa[i].argmax()),
                    _finite(float(pm[i].max())), _finite(float(pa[i].max()))])  # fmt: skip
    return out


def _parity_one(
    ctx: RunContext, cand: Candidate, split: str, *, min_agreement: float, max_accuracy_drop: float,
    conservative: bool, max_slice_disagreement: float, min_slice_rows: int, n_boot: int,
) -> tuple[list[Metric], list[Any], list[list[Any]], list[list[Any]], list[list[Any]]]:  # fmt: skip
    """Metrics, a parity-table row, per-class rows, per-slice rows and flipped rows for one artifact × split."""
    from auditkit.toolkit import classification_metrics, wilson

    pm, pa = _softmax(ctx.predictions(split).logits), _softmax(_logits(ctx, cand, split))
    n = len(pm)
    flips = pm.argmax(1) != pa.argmax(1)
    agree = 1.0 - float(flips.mean())
    a_ci = wilson(int((~flips).sum()), n)
    dp = np.abs(pa - pm).max(axis=1)
    tag = f"{cand.name}, {split}"
    metrics = [
        Metric(f"agreement[{tag}]", agree, ci=a_ci, n=n, threshold=min_agreement, direction="higher",
               description=f"top-1 agreement of {cand.name} with the audited model on {split}"),
        Metric(f"max_probability_difference[{tag}]", float(dp.max()), n=n,
               description="largest absolute difference of any class probability",
               details={"p99": float(np.quantile(dp, 0.99))}),
    ]  # fmt: skip
    y = ctx.dataset(split).y
    acc_m = acc_a = drop = ece_d = None
    d_ci: tuple[float, float] | None = None
    k = pm.shape[1]
    lab = np.flatnonzero((y >= 0) & (y < k)) if y is not None else np.zeros(0, dtype=int)
    if y is not None and len(lab):
        cm, ca = pm[lab].argmax(1) == y[lab], pa[lab].argmax(1) == y[lab]
        acc_m, acc_a = float(cm.mean()), float(ca.mean())
        drop = acc_m - acc_a
        d_ci = _paired_drop_ci(cm, ca, n_boot, ctx.seed)
        ece_d = (classification_metrics(y[lab], pa[lab], which=("ece",))["ece"]
                 - classification_metrics(y[lab], pm[lab], which=("ece",))["ece"])  # fmt: skip
        metrics.append(Metric(
            f"accuracy_drop[{tag}]", drop, ci=d_ci, n=len(lab), threshold=max_accuracy_drop, direction="lower",
            bound="conservative" if conservative else "value",
            description="accuracy of the audited model minus the artifact's (paired bootstrap 95% CI)",
            details={"audited_accuracy": acc_m, "artifact_accuracy": acc_a},
        ))  # fmt: skip
        metrics.append(Metric(f"ece_change[{tag}]", ece_d, n=len(lab),
                              description="ECE of the artifact minus the audited model's (15 equal-width bins)"))  # fmt: skip
    per_class = []
    for c in range(k):
        sel = pm.argmax(1) == c
        m = int(sel.sum())
        f = int(flips[sel].sum())
        lo, hi = wilson(f, m)
        per_class.append(
            [cand.name, split, c, m, f, _finite(f / m if m else float("nan")), _finite(lo), _finite(hi)]
        )
    slices = _slice_rates(ctx, split, flips, min_slice_rows)
    judged = [r for r in slices if r[6]]
    if judged:
        worst = judged[0]
        metrics.append(Metric(
            f"worst_slice_disagreement[{tag}]", worst[3], ci=(worst[4], worst[5]), n=worst[2],
            threshold=max_slice_disagreement, direction="lower",
            description=f"highest disagreement over slices with ≥ {min_slice_rows} rows: {worst[0]}",
            details={"slice": worst[0]},
        ))  # fmt: skip
    row = [cand.name, split, n, _finite(agree), _finite(a_ci[0]), _finite(a_ci[1]), int(flips.sum()), _finite(acc_m), _finite(acc_a), _finite(drop),
           _finite(d_ci[0]) if d_ci else None, _finite(d_ci[1]) if d_ci else None, _finite(float(dp.max())),
           _finite(float(np.quantile(dp, 0.99))), _finite(ece_d), judged[0][0] if judged else None]  # fmt: skip
    flip_rows = _flip_rows(ctx, cand.name, split, pm, pa, flips)
    return metrics, row, per_class, [[cand.name, split, *r] for r in slices], flip_rows


def _adv_params(ctx: RunContext) -> dict[str, Any]:
    """AK-ADV-001's parameters as this audit sets them (its defaults, then checks.params)."""
    from auditkit.checks._attacks import WHITE_BOX_DEFAULTS

    params = dict(WHITE_BOX_DEFAULTS)
    spec = ctx.spec
    if spec is not None:
        params.update(spec.checks.params.get("AK-ADV-001", {}))
    return params


def _craft(
    adapter: Any, space: Any, *, norm: str, radius: float, params: dict[str, Any], seed: int
) -> np.ndarray:
    """PGD examples against the audited model at one radius (AK-ADV-001's settings), in input units."""
    import torch
    from auditkit.checks._attacks import (
        NORMS,
        art_classifier,
        best_pgd_class,
        frozen_params,
        predict_z,
        scaled_module,
    )

    np.random.seed(seed % 2**32)  # ART draws random starts from numpy's global generator
    torch.manual_seed(seed)
    model = scaled_module(adapter, space)
    losses = list(params["losses"])
    adv = space.z.copy()
    fooled = np.zeros(len(adv), dtype=bool)
    mask = space.mask if space.n_mutable < space.mask.size else None
    steps, bs = int(params["steps"]), int(params["batch_size"])
    with frozen_params(adapter.module):
        clfs = {
            loss: art_classifier(model, space, adapter.n_classes, loss, adapter.device)
            for loss in set(losses)
        }
        for r in range(max(1, int(params["restarts"]))):
            todo = np.flatnonzero(~fooled)
            if len(todo) == 0 or radius <= 0:
                break
            loss = losses[r % len(losses)]
            attack = best_pgd_class()(
                clfs[loss], norm=NORMS[norm], eps=radius, eps_step=float(params["step_ratio"]) * radius / steps,
                max_iter=steps, num_random_init=1 if r >= len(losses) else 0, batch_size=bs, verbose=False,
            )  # fmt: skip
            attack.scaled = model
            a = attack.generate(space.z[todo], space.y[todo], **({"mask": mask} if mask is not None else {}))
            adv[todo] = a
            fooled[todo] = predict_z(model, a, adapter.device, bs) != space.y[todo]
    return np.asarray(space.to_x(adv))


def _robustness(ctx: RunContext, ready: list[Candidate], split: str) -> dict[str, Any]:
    """Per artifact: robust accuracy at AK-ADV-001's gate epsilon and AK-ADV-003's corruption error."""
    from auditkit.checks._attacks import shared_white_box, white_box, wilson_row
    from auditkit.checks._deploy import is_audited

    from auditkit.toolkit import ModelAdapter

    out: dict[str, Any] = {"adversarial": {}, "corruption": {}, "notes": []}
    adapter = ctx.model()
    shape = ctx.sample_shape()
    try:
        p = _adv_params(ctx)
        keys = ("epsilons", "gate_epsilon", "norms", "steps", "restarts", "losses", "step_ratio", "l2_scale",
                "max_samples", "perturb_binary", "batch_size")  # fmt: skip
        params = {k: p[k] for k in keys}
        gate_norm = str(p["gate_norm"])
        wb, gate = shared_white_box(ctx, split, params)  # the very run AK-ADV-001 reports (shared cache)
        gi = wb.grid.index(gate)
        radius = wb.eps[gate_norm][gi]
        audited_wb = wilson_row(wb.worst(gate_norm)[gi])
        seed = ctx.seed_for("AK-ADV-001")
        x_adv = _craft(adapter, wb.space, norm=gate_norm, radius=radius, params=params, seed=seed)
        x_adv = x_adv.reshape((len(x_adv), *shape))
        y = wb.space.y
        audited_tr = wilson_row(adapter.predict(x_adv) == y)
        sub = [e for e in wb.grid if e <= gate]
        out["setup"] = {"epsilon": gate, "norm": gate_norm, "radius": radius, "rows": len(y)}
        for cand in ready:
            if is_audited(cand):
                continue
            res = {"transfer": wilson_row(cand.logits(x_adv).argmax(1) == y), "audited_transfer": audited_tr,
                   "audited_white_box": audited_wb}  # fmt: skip
            if cand.module is not None:
                import torch

                a2 = ModelAdapter(module=cand.module, n_classes=adapter.n_classes, device=torch.device(cand.device),
                                  input_kind=adapter.input_kind, input_shape=adapter.input_shape,
                                  batch_size=adapter.batch_size)  # fmt: skip
                wba = white_box(
                    a2, wb.space, grid=sub, norms=[gate_norm], steps=params["steps"], restarts=params["restarts"],
                    losses=params["losses"], step_ratio=params["step_ratio"], l2_scale=params["l2_scale"],
                    batch_size=params["batch_size"], seed=seed,
                )  # fmt: skip
                res["white_box"] = wilson_row(wba.worst(gate_norm)[sub.index(gate)])
            out["adversarial"][cand.name] = res
    except NotApplicable as exc:
        out["notes"].append(f"adversarial parity not measured: {exc}")
    try:
        out["corruption"] = _corruption(ctx, ready, split, shape)
    except NotApplicable as exc:
        out["notes"].append(f"corruption parity not measured: {exc}")
    return out


def _corruption(
    ctx: RunContext, ready: list[Candidate], split: str, shape: tuple[int, ...]
) -> dict[str, float]:
    """AK-ADV-003's mean relative corruption error (its settings and seed) for each candidate."""
    from auditkit.checks._corruptions import CORRUPTION_DEFAULTS, corruption_setup

    p = dict(CORRUPTION_DEFAULTS)
    if ctx.spec is not None:
        p.update(ctx.spec.checks.params.get("AK-ADV-003", {}))
    seed = ctx.seed_for("AK-ADV-003")
    setup = corruption_setup(ctx, p.get("split", split), p["corruptions"], p["severities"], p["max_samples"],
                             np.random.default_rng(seed))  # fmt: skip
    inputs = [
        setup.corrupted(ci, si, seed) for ci in range(len(setup.names)) for si in range(len(setup.severities))
    ]
    out = {}
    for cand in ready:

        def pred(x: np.ndarray, c: Candidate = cand) -> np.ndarray:
            return c.logits(x.reshape((len(x), *shape))).argmax(1)

        clean = pred(setup.x) == setup.y
        corr = np.stack([pred(x) == setup.y for x in inputs], axis=1)
        out[cand.name] = float((clean.astype(float) - corr.mean(axis=1)).mean())
    return out


def _deployment_preflight(pf: Preflight) -> None:
    """AK-DEPLOY-001 attacks with the immutable features and compares over ``data.slices``."""
    immutable_features_preflight(pf)
    slices_preflight(pf)


@check(
    id="AK-DEPLOY-001",
    preflight=_deployment_preflight,
    area="deployment",
    title="Deployment parity: each artifact to ship predicts like the audited model",
    requires=("model", "test", "deployment"),
    severity="high",
    nist_ai_rmf=("MEASURE 2.5", "MANAGE 2.4", "MEASURE 2.7"),
    tags=("deployment", "parity", "robustness"),
    cost="moderate",
    regression_description="Compares every ``deployment.artifacts`` entry with the audited regressor on the same rows: |artifact − audited| prediction in train label sd (99th percentile, maximum) and the relative RMSE increase (paired bootstrap).",
)
def deployment_parity(
    ctx: RunContext, /, *, splits: list[str] = ["test", "production"], min_agreement: float = 0.99,  # noqa: B006
    max_accuracy_drop: float = 0.005, conservative: bool = True, max_slice_disagreement: float = 0.05,
    min_slice_rows: int = 30, robustness: bool = True, max_robust_accuracy_drop: float | None = 0.05,
    max_corruption_error_increase: float | None = 0.05, n_boot: int = 1000,
    max_rmse_increase: float = 0.02, max_prediction_diff_sd: float = 0.05,
) -> Outcome:  # fmt: skip
    """Compares every ``deployment.artifacts`` entry with the audited model on the same rows.

    Regression: per artifact and split, |artifact − audited| prediction differences in train label
    sd (99th percentile gated) and the relative RMSE increase with a paired bootstrap interval.

    Per artifact and split: top-1 agreement (Wilson interval), accuracy drop (audited minus
    artifact, paired bootstrap interval), the largest and 99th-percentile absolute difference of
    class probabilities, the ECE change, disagreement per predicted class and per slice (sensitive
    columns, categorical features, ``data.slices``). Flipped rows, with ``data.id`` when given, are
    written to ``flips.csv`` in the bundle. Robustness parity on the test split: AK-ADV-001's robust
    accuracy at its gate epsilon (its parameters from ``checks.params``) — white-box when gradients
    reach the artifact's input (TorchScript, bfloat16), else by transfer of PGD examples crafted on
    the audited model (ONNX, int8), compared with the audited model on the same examples — and
    AK-ADV-003's mean relative corruption error on its own corrupted rows and seed.

    Parameters
    ----------
    splits: splits to compare on (those present; test is required).
    min_agreement: smallest acceptable top-1 agreement (point estimate).
    max_accuracy_drop: largest acceptable accuracy drop (on the upper 95% bound when ``conservative``).
    conservative: gate the accuracy drop on its upper 95% bound instead of the point estimate.
    max_slice_disagreement: largest acceptable disagreement in any slice with ``min_slice_rows`` rows.
    min_slice_rows: slices with fewer rows are listed but not judged.
    robustness: also compare adversarial and corruption robustness (costs attacks per artifact).
    max_robust_accuracy_drop: largest acceptable robust-accuracy drop at the gate epsilon; None reports it ungated (regression: the drop of AK-ADV-001's robust share).
    max_corruption_error_increase: largest acceptable increase of the mean relative corruption error; None reports it ungated.
    n_boot: bootstrap resamples for the accuracy-drop interval.
    max_rmse_increase: regression: largest acceptable artifact RMSE / audited RMSE − 1 (upper bound when ``conservative``).
    max_prediction_diff_sd: regression: largest acceptable 99th percentile of |artifact − audited| in train label sd.
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_deploy import parity_regression

        return parity_regression(
            ctx, splits=splits, max_rmse_increase=max_rmse_increase, max_prediction_diff_sd=max_prediction_diff_sd,
            conservative=conservative, n_boot=n_boot, robustness=robustness,
            max_robust_share_drop=max_robust_accuracy_drop,
        )  # fmt: skip
    from auditkit.checks._deploy import is_audited

    ready, missing, findings = _candidates(ctx)
    present = [s for s in splits if s in ctx.splits()]
    if "test" not in present:
        raise SpecError(f"splits: {splits} must include 'test'")
    metrics: list[Metric] = []
    table, classes, slices, flips = [], [], [], []
    for cand in ready:
        if is_audited(cand):
            continue
        for split in present:
            m, row, pc, sl, fl = _parity_one(
                ctx, cand, split, min_agreement=min_agreement, max_accuracy_drop=max_accuracy_drop,
                conservative=conservative, max_slice_disagreement=max_slice_disagreement,
                min_slice_rows=min_slice_rows, n_boot=n_boot,
            )  # fmt: skip
            metrics += m
            table.append(row)
            classes += pc
            slices += sl
            flips += fl
    rob_rows: list[list[Any]] = []
    if robustness:
        rob = _robustness(ctx, ready, "test")
        metrics += _robust_metrics(
            rob, ready, max_robust_accuracy_drop, max_corruption_error_increase, rob_rows
        )
        findings += [Finding(n, severity="info", key="robustness") for n in rob["notes"]]
    cols = ["artifact", "split", "row", "id", "label", "audited prediction", "artifact prediction",
            "audited confidence", "artifact confidence"]  # fmt: skip
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    w.writerows(flips)
    ctx.write("flips.csv", buf.getvalue())
    evidence: dict[str, Any] = {
        # Keys sort in results.json: the parity table comes first (a passed check shows one table).
        "accuracy and agreement by artifact": {"columns": ["artifact", "split", "n", "agreement", "ci low", "ci high", "flips", "audited accuracy",
                               "artifact accuracy", "accuracy drop", "drop ci low", "drop ci high", "max |Δp|",
                               "p99 |Δp|", "ECE change", "worst slice"], "rows": table},
        "adversarial and corruption robustness by artifact": {"columns": ["artifact", "method", "robust accuracy", "ci low", "ci high",
                                          "audited (same method)", "drop", "corruption error", "audited corruption error",
                                          "increase"], "rows": rob_rows},
        "flipped rows": {"columns": cols, "rows": flips[:50], "total_rows": len(flips)},
        "disagreement by predicted class": {"columns": ["artifact", "split", "class", "n", "flips", "rate", "ci low",
                                                        "ci high"], "rows": classes[:50], "total_rows": len(classes)},
        "disagreement by slice": {"columns": ["artifact", "split", "slice", "attribute", "n", "rate", "ci low", "ci high",
                                              "judged"], "rows": slices[:50], "total_rows": len(slices)},
        "artifacts": {"columns": ["name", "kind", "device", "runtime", "signature", "sha256", "notes"],
                      "rows": [[c.name, c.kind, c.device, c.runtime, str(c.signature or ""), c.sha256 or "",
                                "; ".join(c.notes) or c.unavailable or ""] for c in ready + missing]},
    }  # fmt: skip
    names = list(dict.fromkeys(r[0] for r in table))
    evidence["plots"] = [{
        "type": "bar", "title": "Top-1 agreement with the audited model", "x_label": "artifact",
        "y_label": "agreement", "categories": names,
        "series": [{"name": split, "values": [next((r[3] for r in table if r[0] == n and r[1] == split), None)
                                              for n in names]} for split in present],
    }]  # fmt: skip
    out = Outcome.from_metrics(metrics, findings=findings, evidence=evidence)
    worst = min(table, key=lambda r: (r[3], r[0], r[1])) if table else None
    out.summary = (f"{len(ready) - 1} artifact(s) compared on {', '.join(present)}; lowest agreement {worst[3]:.4f} "
                   f"({worst[0]}, {worst[1]}, {worst[6]} flips of {worst[2]})" if worst else "no artifact compared")  # fmt: skip
    if missing:
        out.summary += f"; {len(missing)} not evaluated here (see notes)"
    return out


def _robust_metrics(
    rob: dict[str, Any], ready: list[Candidate], max_drop: float | None, max_increase: float | None,
    rows: list[list[Any]],
) -> list[Metric]:  # fmt: skip
    metrics = []
    setup = rob.get("setup") or {}
    corr = rob.get("corruption") or {}
    from auditkit.checks._deploy import is_audited

    audited = next((c.name for c in ready if is_audited(c)), None)
    for cand in ready:
        if is_audited(cand):
            continue
        adv = rob["adversarial"].get(cand.name)
        row: list[Any] = [cand.name, None, None, None, None, None, None, None, None, None]
        if adv is not None:
            method = "white-box" if "white_box" in adv else "transfer"
            (v, ci, n) = adv["white_box"] if method == "white-box" else adv["transfer"]
            ref = adv["audited_white_box"] if method == "white-box" else adv["audited_transfer"]
            drop = ref[0] - v
            metrics.append(Metric(
                f"robust_accuracy_drop[{cand.name}]", drop, n=n, threshold=max_drop,
                direction="lower" if max_drop is not None else None,
                description=f"audited minus artifact robust accuracy at ε = {setup.get('epsilon'):.4g} "
                            f"({setup.get('norm')}, {method})",
                details={"method": method, "artifact": v, "artifact_ci": list(ci), "audited": ref[0], **setup},
            ))  # fmt: skip
            row[1:7] = [method, _finite(v), _finite(ci[0]), _finite(ci[1]), _finite(ref[0]), _finite(drop)]
        if cand.name in corr and audited in corr:
            inc = corr[cand.name] - corr[audited]
            metrics.append(Metric(
                f"corruption_error_increase[{cand.name}]", inc, threshold=max_increase,
                direction="lower" if max_increase is not None else None,
                description="artifact minus audited mean relative corruption error (AK-ADV-003's rows and seed)",
                details={"artifact": corr[cand.name], "audited": corr[audited]},
            ))  # fmt: skip
            row[7:10] = [_finite(corr[cand.name]), _finite(corr[audited]), _finite(inc)]
        rows.append(row)
    return metrics


# ------------------------------------------------------------------------------------------------
# AK-DEPLOY-002: inference cost
# ------------------------------------------------------------------------------------------------
def _pareto(points: list[tuple[str, float | None, float, int | None]]) -> list[bool]:
    """Not dominated on (accuracy ↑, p95 latency ↓, size ↓); unknown values never dominate."""
    out = []
    for name, acc, lat, size in points:
        dominated = False
        for other, acc2, lat2, size2 in points:
            if other == name or acc is None or acc2 is None or size is None or size2 is None:
                continue
            if acc2 >= acc and lat2 <= lat and size2 <= size and (acc2 > acc or lat2 < lat or size2 < size):
                dominated = True
                break
        out.append(not dominated)
    return out


def _accuracy(ctx: RunContext, cand: Candidate, split: str) -> float | None:
    """Test accuracy of a classifier; for a regressor −RMSE (higher is better, as the Pareto front
    compares it; shown as RMSE)."""
    y = ctx.dataset(split).y
    if y is None:
        return None
    if ctx.task == "regression":
        from auditkit.checks._regression_deploy import point_predictions

        yy = np.asarray(y, dtype=np.float64)
        pred = point_predictions(ctx, cand, split)
        ok = np.isfinite(yy) & np.isfinite(pred)
        return -float(np.sqrt(np.mean((pred[ok] - yy[ok]) ** 2))) if ok.any() else None
    logits = _logits(ctx, cand, split)
    lab = (y >= 0) & (y < logits.shape[1])
    return float((logits[lab].argmax(1) == y[lab]).mean()) if lab.any() else None


@check(
    id="AK-DEPLOY-002",
    area="deployment",
    title="Inference cost of the audited model and each artifact: latency, throughput, memory, size",
    requires=("model", "test", "deployment"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.12",),
    tags=("deployment", "cost", "latency"),
    cost="moderate",
)
def inference_cost(
    ctx: RunContext, /, *, split: str = "test", warmup: Annotated[int, Field(ge=0)] = 10,
    repeats: Annotated[int, Field(ge=5)] = 100, n_boot: int = 1000, memory_calls: Annotated[int, Field(ge=1)] = 3,
) -> Outcome:  # fmt: skip
    """Times the audited model and every artifact on rows of ``split`` at each
    ``deployment.batch_sizes`` entry: latency p50/p95/p99 (ms) with 95% percentile-bootstrap
    intervals over the timed calls (warm-up calls excluded; the thread count is recorded),
    throughput, peak inference memory (see ``auditkit.checks._deploy.peak_memory``), file size and the
    number of stored values; plus a Pareto table of accuracy vs p95 latency vs size. Gates only on
    the budgets the spec declares (``deployment.latency_budget_ms``, ``deployment.memory_budget_mb``),
    for the artifacts. Timings measure this machine: they are marked ``timing`` and kept out of
    determinism comparisons.

    Parameters
    ----------
    split: split whose rows are fed (tiled when a batch is larger than the split).
    warmup: untimed calls before timing each batch size (0 or more).
    repeats: timed calls per batch size (at least 5).
    n_boot: bootstrap resamples for the percentile intervals.
    memory_calls: calls at the largest batch size while peak memory is measured (at least 1).
    """
    from auditkit.checks._deploy import is_audited, peak_memory, percentile_cis, time_calls

    ready, missing, findings = _candidates(ctx)
    dep = ctx.spec.deployment
    budget = dep.latency_budget_ms
    ref_b = budget.batch_size if budget else dep.batch_sizes[0]
    shape = ctx.sample_shape()
    x = ctx.dataset(split).x.astype(np.float32)
    x = x.reshape((len(x), *shape))
    if len(x) == 0:
        raise NotApplicable(f"the {split} split has no rows")
    rng = np.random.default_rng(ctx.seed)
    metrics: list[Metric] = []
    lat_rows, cand_rows, points = [], [], []
    p95_at: dict[tuple[str, int], float] = {}
    for cand in ready:
        gated = not is_audited(cand)
        for b in dep.batch_sizes:
            batch = np.resize(x, (b, *shape)).astype(np.float32)
            secs = time_calls(cand.forward, batch, warmup=warmup, repeats=repeats)  # type: ignore[arg-type]
            pct = percentile_cis(secs * 1e3, (50, 95, 99), n_boot=n_boot, rng=rng)
            p95_at[(cand.name, b)] = pct[95][0]
            lat_rows.append([cand.name, b, cand.threads, *[_finite(v) for q in (50, 95, 99) for v in (pct[q][0], *pct[q][1])],
                             _finite(b / secs.mean())])  # fmt: skip
            for q in (50, 95, 99):
                limit = getattr(budget, f"p{q}") if (budget and gated and b == budget.batch_size) else None
                if q == 95 or limit is not None:
                    metrics.append(Metric(
                        f"latency_p{q}_ms[{cand.name}, b={b}]", pct[q][0], ci=pct[q][1], n=repeats, unit="ms",
                        threshold=limit, direction="lower" if limit is not None else None,
                        details={**TIMING, "threads": cand.threads, "batch_size": b},
                    ))  # fmt: skip
        big = max(dep.batch_sizes)
        assert cand.forward is not None  # only runnable candidates are timed
        mem, how = peak_memory(
            cand.forward, np.resize(x, (big, *shape)).astype(np.float32), cand.device, memory_calls
        )
        mem_mb = None if mem is None else mem / 2**20
        mlimit = dep.memory_budget_mb if gated else None
        metrics.append(Metric(f"peak_memory_mb[{cand.name}]", mem_mb, unit="MB", threshold=mlimit if mem_mb is not None else None,
                              direction="lower" if (mlimit is not None and mem_mb is not None) else None,
                              description=f"{how}, batch size {big}", details={**TIMING, "method": how}))  # fmt: skip
        if mlimit is not None and mem_mb is None:
            findings.append(
                Finding(
                    f"memory budget for {cand.name} not checked: {how}",
                    severity="low",
                    key=f"memory:{cand.name}",
                )
            )
        metrics.append(
            Metric(f"size_bytes[{cand.name}]", cand.size_bytes, unit="B", description=cand.size_kind)
        )
        metrics.append(Metric(f"stored_values[{cand.name}]", cand.stored_values,
                              description="numbers stored: weights, biases, buffers, quantization scales"))  # fmt: skip
        acc = _accuracy(ctx, cand, split)
        points.append((cand.name, acc, p95_at[(cand.name, ref_b)], cand.size_bytes))
        cand_rows.append([cand.name, cand.kind, cand.device, cand.runtime, cand.threads, cand.size_bytes,
                          cand.size_kind, cand.stored_values, _finite(acc)])  # fmt: skip
    front = _pareto(points)
    regression = ctx.task == "regression"
    if regression:  # shown as RMSE (lower is better); the front compared −RMSE
        points = [(n, -a if a is not None else None, lat, sz) for n, a, lat, sz in points]
        cand_rows = [[*r[:-1], -r[-1] if isinstance(r[-1], float) else r[-1]] for r in cand_rows]
    quality = f"RMSE ({split}, label units)" if regression else f"accuracy ({split})"
    pareto_rows = [
        [n, _finite(a), _finite(lat), s, "yes" if f else "no"]
        for (n, a, lat, s), f in zip(points, front, strict=True)
    ]
    evidence: dict[str, Any] = {
        "what was timed": {"columns": ["name", "kind", "device", "runtime", "threads", "size bytes", "size is", "stored values",
                                   quality], "rows": cand_rows},
        "timings": {
            "latency (ms) and throughput": {"columns": ["candidate", "batch", "threads", "p50", "p50 lo", "p50 hi", "p95",
                                                        "p95 lo", "p95 hi", "p99", "p99 lo", "p99 hi", "rows/s"],
                                            "rows": lat_rows},
            f"{quality.split(' (')[0]} vs p95 latency vs size (Pareto)": {"columns": ["candidate", quality, f"p95 ms (batch {ref_b})", "size bytes",
                                   "Pareto-optimal"], "rows": pareto_rows},
        },
        "plots": [
            {"type": "scatter", "timing": True, "point_radius": 5,
             "title": f"{'RMSE' if regression else 'Accuracy'} vs p95 latency (batch {ref_b})",
             "x_label": "p95 latency (ms)", "y_label": quality,
             "series": [{"name": n, "x": [lat], "y": [a]} for n, a, lat, _ in points if a is not None]},
            {"type": "bar", "timing": True, "title": "p95 latency per batch size", "x_label": "candidate",
             "y_label": "ms", "categories": [c.name for c in ready],
             "series": [{"name": f"batch {b}", "values": [p95_at[(c.name, b)] for c in ready]} for b in dep.batch_sizes]},
        ],
        "setup": {"warmup": warmup, "repeats": repeats, "batch_sizes": list(dep.batch_sizes), "split": split,
                  "clock": "time.perf_counter_ns per call, numpy in and out"},
    }  # fmt: skip
    budgets = []
    if budget:
        budgets += [
            f"p{q} ≤ {getattr(budget, f'p{q}'):g} ms" for q in (50, 95, 99) if getattr(budget, f"p{q}")
        ]
        if budgets:
            budgets[-1] += f" at batch {budget.batch_size}"
    if dep.memory_budget_mb:
        budgets.append(f"memory ≤ {dep.memory_budget_mb:g} MB at batch {max(dep.batch_sizes)}")
    out = Outcome.from_metrics(metrics, findings=findings, evidence=evidence)
    out.summary = (f"{len(ready)} candidate(s) timed at batch sizes {list(dep.batch_sizes)}, {repeats} calls each after "
                   f"{warmup} warm-up, {ready[0].threads} thread(s); "
                   + (f"budgets for the artifacts: {', '.join(budgets)}" if budgets else "no budget declared: report only"))  # fmt: skip
    return out
