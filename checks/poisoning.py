"""Built-in checks: poisoning / backdoor screen of the training data (AK-POIS-001).

Spectral signatures (Tran, Li & Madry 2018) on penultimate activations, scored as ART's
``SpectralSignatureDefense`` scores them, but *calibrated*: ART's defaults flag about half of
every class, so a clean control would always "find" poison. Here a class is suspected only when
its spectral statistic is extreme under a permutation null built from clean reference rows of
the same class (by default the test split), and only rows of suspected classes are reported.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import Finding, Metric, NotApplicable, Outcome, check

if TYPE_CHECKING:
    from auditkit import RunContext


def _top_direction(a: np.ndarray, start: np.ndarray | None = None, iterations: int = 30) -> np.ndarray:
    """Top right-singular vector of the centred matrix (the spectral-signature direction).

    Exact (SVD) without ``start``; with ``start``, a fixed number of power iterations — cheap for the
    permutation null, where the same procedure is applied to the observed split as to every re-split.
    """
    c = a - a.mean(axis=0)
    if start is None:
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        return vt[0]
    v = start / (np.linalg.norm(start) + 1e-12)
    for _ in range(iterations):
        w = c.T @ (c @ v)
        norm = np.linalg.norm(w)
        if norm == 0:
            break
        v = w / norm
    return v


def spectral_statistic(
    train: np.ndarray, ref: np.ndarray, start: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Variance of the train rows along their top singular direction over the reference rows'
    variance along the same direction. A poisoned sub-population in train (absent from the clean
    reference) makes the ratio large; natural sub-groups occur in both and do not."""
    v = _top_direction(train, start)
    num = float(np.var((train - train.mean(axis=0)) @ v))
    den = float(np.var((ref - ref.mean(axis=0)) @ v))
    return num / max(den, 1e-12), v


def permutation_null(
    train: np.ndarray, ref: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The statistic when train and reference rows are exchangeable (no poison): random re-splits."""
    pooled = np.vstack([train, ref])
    start = _top_direction(pooled)
    nt = len(train)
    out = np.empty(n_permutations)
    for b in range(n_permutations):
        perm = rng.permutation(len(pooled))
        out[b] = spectral_statistic(pooled[perm[:nt]], pooled[perm[nt:]], start)[0]
    return out, start


PERMUTATION_BLOCK = 100  # permutations per compute task: a fixed size, so shards never depend on workers


def _null_block(
    shared: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], item: tuple[int, int], seed: int
) -> np.ndarray:
    """One shard of a class's permutation null (a compute task: ``ctx.map`` gives each its seed)."""
    c, n = item
    a, ref, start = shared[c]
    pooled = np.vstack([a, ref])
    rng = np.random.default_rng(seed)
    out = np.empty(n)
    with _one_thread():
        for b in range(n):
            perm = rng.permutation(len(pooled))
            out[b] = spectral_statistic(pooled[perm[: len(a)]], pooled[perm[len(a) :]], start)[0]
    return out


def _blocks(n_permutations: int) -> list[int]:
    full, rest = divmod(n_permutations, PERMUTATION_BLOCK)
    return [PERMUTATION_BLOCK] * full + ([rest] if rest else [])


def _one_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(1)  # small SVDs: threads only add overhead on a shared machine
    except ImportError:  # pragma: no cover
        return nullcontext()


@check(
    id="AK-POIS-001",
    area="robustness",
    title="Poisoning / backdoor screen of the training data (calibrated spectral signatures)",
    requires=("model", "train"),
    severity="high",
    nist_ai_rmf=("MEASURE 2.7", "MAP 4.1", "MEASURE 2.1"),
    tags=("poisoning", "backdoor", "security", "data", "art"),
    cost="moderate",
)
def poisoning_screen(
    ctx: RunContext, /, *, reference_split: str = "test", n_permutations: int = 999, alpha: float = 0.05,
    min_statistic: float = 3.0,
    max_suspected_classes: int = 0, min_rows: int = 20, row_quantile: float = 0.99, max_rows_per_class: int = 2000,
) -> Outcome:  # fmt: skip
    """Screens each class of the training data for a poisoned sub-population (e.g. a backdoor
    trigger relabelled to that class) with spectral signatures on the model's penultimate
    activations, calibrated against a permutation null so that clean data passes.

    Per class c: the statistic is the variance of c's train activations along their top singular
    direction divided by the variance of clean reference rows of c (``reference_split``, true
    label c) along that direction; its p-value comes from ``n_permutations`` random re-splits of
    the pooled rows (train and reference exchangeable = no poison). A class is suspected when its
    p-value, Bonferroni-adjusted over classes, is below ``alpha`` *and* its statistic is at least
    ``min_statistic`` (an effect size, not only significance: see below). In a suspected class the rows
    whose spectral score |⟨a − mean_ref, v⟩| (ART's ``SpectralSignatureDefense`` score) exceeds the
    ``row_quantile`` of the reference rows' scores are reported as suspected (ids, capped at 50 in
    the finding; all in the artefact ``suspected_rows.json``). Assumes the reference split is clean.

    What it can and cannot tell (measured over model fits in ``benchmarks/bench_poisoning.py``):
    it sees a sub-population of training rows that the clean reference lacks, planted or natural.
    The model's features amplify natural train-only sub-groups: on clean digits fits, class 3 of
    the tests' split reaches p ≈ 0.001-0.004 with a statistic of 2.2-2.5 (raw pixels: p = 0.025),
    while learned backdoors gave 3.3-7.4, hence ``min_statistic`` 3. Power is bounded by the
    reference size: the permutation p-value can only be small when random re-splits rarely keep the
    poisoned rows together on the train side, so with ~55 reference rows per class a 13-row
    backdoor reaches p ≈ 0.001-0.003 when it is found and some backdoors are missed; a larger
    reference split is the lever. The class that lost the poisoned rows (the source of a
    relabelling attack) may be flagged too. A backdoor whose rows do not separate in the
    penultimate layer is not seen (a tabular trigger on the breast-cancer MLP was missed in 3 of 3
    fits): a pass is evidence, not proof, of clean training data.

    Parameters
    ----------
    reference_split: split of clean rows the null is built from (its true labels are used).
    n_permutations: permutations per class; the smallest p-value is 1 / (n_permutations + 1).
    alpha: family-wise significance level (Bonferroni over classes).
    min_statistic: smallest statistic (train over reference variance along the top direction) for
        which a significant class is suspected; 0 gates on significance alone.
    max_suspected_classes: most suspected classes the check tolerates.
    min_rows: classes with fewer train or reference rows than this are not screened.
    row_quantile: quantile of the reference scores above which a row of a suspected class is
        suspected (with fewer than 100 reference rows, their maximum).
    max_rows_per_class: cap on train rows per class (a seeded subsample) to bound the cost.
    """
    if ctx.task == "regression":
        raise NotApplicable("spectral signatures screen each class for a sub-population relabelled to it: "
                            "a regression target has no classes")  # fmt: skip
    train = ctx.dataset("train")
    if reference_split not in ctx.splits():
        raise NotApplicable(f"no {reference_split!r} split to serve as the clean reference")
    ref_ds = ctx.dataset(reference_split)
    ctx.model()  # NotApplicable without a model
    try:
        emb_tr, emb_ref = ctx.embeddings("train"), ctx.embeddings(reference_split)
    except ValueError as err:  # no nn.Linear head to hook (e.g. TorchScript or exported without embed())
        raise NotApplicable(
            "the model gives no penultimate features (no nn.Linear head to hook; a TorchScript or "
            f"exported model can expose an embed(x) method) ({err})"
        ) from None
    if emb_tr.ndim != 2 or emb_tr.shape[1] == 0 or len(emb_tr) != len(train) or len(emb_ref) != len(ref_ds):
        raise NotApplicable(
            "the model gives no penultimate features (its head's input could not be captured)"
        )
    y_tr, y_ref = np.asarray(train.y), np.asarray(ref_ds.y)
    has_ids = getattr(train, "ids", None) is not None
    ids = np.asarray(train.ids) if has_ids else np.arange(len(y_tr))
    rng = ctx.rng()
    classes = [c for c in np.unique(y_tr[y_tr >= 0])]
    rows: list[list[Any]] = []
    screened: list[dict[str, Any]] = []
    skipped = []
    inputs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    chosen: dict[int, np.ndarray] = {}
    with _one_thread():
        for c in classes:
            idx = np.flatnonzero(y_tr == c)
            ref = emb_ref[y_ref == c].astype(np.float64)
            if len(idx) < min_rows or len(ref) < min_rows:
                skipped.append(int(c))
                continue
            if len(idx) > max_rows_per_class:
                idx = np.sort(rng.choice(idx, size=max_rows_per_class, replace=False))
            a = emb_tr[idx].astype(np.float64)
            inputs[int(c)] = (a, ref, _top_direction(np.vstack([a, ref])))
            chosen[int(c)] = idx
    # The permutation nulls of every class, in blocks, on the audit's compute engine (docs/compute.md).
    shards = [(c, n) for c in inputs for n in _blocks(n_permutations)]
    blocks = ctx.map(_null_block, shards, shared=inputs)
    nulls = {
        c: np.concatenate([b for (sc, _), b in zip(shards, blocks, strict=True) if sc == c]) for c in inputs
    }
    with _one_thread():
        for c, (a, ref, start) in inputs.items():
            idx, null = chosen[c], nulls[c]
            stat, v = spectral_statistic(a, ref, start)
            p = float((1 + np.sum(null >= stat)) / (n_permutations + 1))
            centre = ref.mean(axis=0)
            s_tr, s_ref = np.abs((a - centre) @ v), np.abs((ref - centre) @ v)
            thr = float(np.quantile(s_ref, row_quantile)) if len(s_ref) >= 100 else float(s_ref.max())
            screened.append({"class": int(c), "idx": idx, "stat": stat, "null_q99": float(np.quantile(null, 0.99)),
                             "p": p, "flag": idx[s_tr > thr], "n_ref": len(ref)})  # fmt: skip
    if not screened:
        raise NotApplicable(f"no class has {min_rows} train and reference rows to screen")
    k = len(screened)
    labels = list(getattr(train, "classes", []) or [])
    suspected = []
    for s in screened:
        s["p_adj"] = min(1.0, s["p"] * k)
        s["suspected"] = s["p_adj"] < alpha and s["stat"] >= min_statistic
        name = labels[s["class"]] if s["class"] < len(labels) else s["class"]
        s["name"] = str(name)
        rows.append([s["name"], len(s["idx"]), s["n_ref"], float(s["stat"]), float(s["null_q99"]),
                     float(s["p"]), float(s["p_adj"]), len(s["flag"]), bool(s["suspected"])])  # fmt: skip
        if s["suspected"]:
            suspected.append(s)
    findings = []
    listing: dict[str, list[Any]] = {}
    for s in suspected:
        flagged_ids = ids[s["flag"]].tolist()
        listing[s["name"]] = flagged_ids
        findings.append(Finding(
            f"class {s['name']}: a sub-population of the training rows is unlike the clean reference "
            f"(spectral statistic {s['stat']:.2f}, permutation p = {s['p']:.3g}, adjusted {s['p_adj']:.3g}); "
            f"{len(flagged_ids)} of {len(s['idx'])} rows suspected",
            key=f"class:{s['name']}",
            evidence={"suspected_ids": flagged_ids[:50], "total_suspected": len(flagged_ids)},
        ))  # fmt: skip
    if listing:
        ctx.write(
            "suspected_rows.json", {"id_column": "id" if has_ids else "row position", "by_class": listing}
        )
    weak = [s for s in screened if s["p_adj"] < alpha and not s["suspected"]]
    if weak:
        findings.append(Finding(
            "significant but below min_statistic (a train-only sub-group, often natural; not suspected): "
            + ", ".join(f"class {s['name']} (statistic {s['stat']:.2f}, adjusted p {s['p_adj']:.3g})" for s in weak),
            severity="info", key="below-min-statistic",
        ))  # fmt: skip
    if skipped:
        findings.append(Finding(f"classes not screened (fewer than {min_rows} rows): {skipped}", severity="info",
                                key="not-screened"))  # fmt: skip
    n_flag = sum(len(s["flag"]) for s in suspected)
    n_rows = sum(len(s["idx"]) for s in screened)
    min_p = min(s["p_adj"] for s in screened)
    metrics = [
        Metric("suspected_classes", len(suspected), n=k, threshold=max_suspected_classes, direction="lower",
               description=f"classes whose Bonferroni-adjusted permutation p-value is below {alpha} "
                           f"and whose statistic is at least {min_statistic}",
               details={"min_adjusted_p": min_p, "alpha": alpha, "min_statistic": min_statistic,
                        "permutations": n_permutations}),
        Metric("suspected_row_share", n_flag / n_rows if n_rows else 0.0, n=n_rows,
               description="share of screened training rows reported as suspected"),
    ]  # fmt: skip
    evidence = {
        "spectral screen by class": {
            "columns": ["class", "train_rows", "reference_rows", "statistic", "null_q99", "p_value", "p_adjusted",
                        "rows_above_reference", "suspected"], "rows": rows[:50], "total_rows": len(rows)},
        "plots": [{"type": "bar", "title": "Spectral statistic by class (vs permutation null 99th percentile)",
                   "x_label": "class", "y_label": "variance ratio", "categories": [r[0] for r in rows],
                   "series": [{"name": "statistic", "values": [r[3] for r in rows]},
                              {"name": "null 99th percentile", "values": [r[4] for r in rows]}]}],
    }  # fmt: skip
    summary = (f"{len(suspected)} of {k} classes suspected of poisoning (family-wise alpha {alpha}); "
               f"{n_flag} training rows suspected; smallest adjusted p = {min_p:.3g}.")  # fmt: skip
    return Outcome.from_metrics(metrics, summary=summary, findings=findings, evidence=evidence)
