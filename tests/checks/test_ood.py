"""AK-OOD-001 / AK-OOD-002: metrics against scikit-learn, detectors against independent code, gates.

Models are trained in plain torch by tests/checks/_robust_fixtures.py (digits CNN, breast-cancer
MLP), cached per session.
"""

from __future__ import annotations

import numpy as np
import pytest
from _robust_fixtures import breast_cancer_mlp, digits_cnn
from auditkit.checks._ood_detectors import (
    DEFAULT_DETECTORS,
    KNN,
    Mahalanobis,
    logit_scores,
    logits_and_embeddings,
)
from auditkit.checks._ood_metrics import detection_metrics, expected_calibration_error, risk_coverage
from auditkit.checks.ood import ood_detection, shift_behaviour

from auditkit.testing import check_contract, make_artifacts, run_check

IMG_SPEC = {"model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}}


def _metric(rec: dict, name: str) -> dict:
    found = [m for m in rec["metrics"] if m["name"] == name]
    assert found, f"no metric {name}; have {[m['name'] for m in rec['metrics']]}"
    return found[0]


def _convention(rec: dict) -> dict[str, str]:
    """The convention table of AK-OOD-001's evidence as a dict."""
    return {k: v for k, v in rec["evidence"]["convention"]["rows"]}


def _digits(**extra_splits) -> object:  # type: ignore[no-untyped-def]
    model, xtr, ytr, xte, yte = digits_cnn()
    return make_artifacts(
        {"train": (xtr, ytr), "test": (xte, yte), **extra_splits}, model=model, spec=IMG_SPEC
    )


# --- metric core vs scikit-learn ---------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_metrics_equal_sklearn(ties: bool) -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    rng = np.random.default_rng(3)
    s_in, s_out = rng.normal(size=400), rng.normal(0.8, 1.2, size=250)
    if ties:
        s_in, s_out = np.round(s_in, 1), np.round(s_out, 1)
    y = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    s = np.r_[s_in, s_out]
    m = {k: float(v[0]) for k, v in detection_metrics(s_in, s_out).items()}
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["aupr_out"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert m["aupr_in"] == pytest.approx(average_precision_score(1 - y, -s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s)  # OOD positive
    assert m["fpr_out"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)])
    fpr, tpr, _ = roc_curve(1 - y, -s)  # ID positive
    assert m["fpr_in"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)])
    assert m["fpr_in"] != pytest.approx(m["fpr_out"])  # the two conventions really differ here
    # Bootstrap weights behave as sklearn sample weights.
    w_in = rng.multinomial(len(s_in), np.full(len(s_in), 1 / len(s_in)))
    w_out = rng.multinomial(len(s_out), np.full(len(s_out), 1 / len(s_out)))
    mw = detection_metrics(s_in, s_out, w_in=w_in[None], w_out=w_out[None])
    sw = np.r_[w_in, w_out]
    assert mw["auroc"][0] == pytest.approx(roc_auc_score(y, s, sample_weight=sw), abs=1e-12)
    assert mw["aupr_out"][0] == pytest.approx(average_precision_score(y, s, sample_weight=sw), abs=1e-12)


def test_auroc_invariant_when_class_and_sign_flip_together() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(size=300), rng.normal(0.5, 1, size=300)
    a = detection_metrics(s_in, s_out)
    b = detection_metrics(-s_out, -s_in)  # ID becomes "positive", score negated
    assert a["auroc"][0] == pytest.approx(b["auroc"][0], abs=1e-12)
    y = np.r_[np.zeros(300), np.ones(300)]
    assert roc_auc_score(1 - y, -np.r_[s_in, s_out]) == pytest.approx(a["auroc"][0], abs=1e-12)
    # Flipping only one of them is not invariant: AUROC becomes 1 - AUROC.
    assert detection_metrics(s_out, s_in)["auroc"][0] == pytest.approx(1 - a["auroc"][0], abs=1e-12)


def test_logit_scores_and_ece_against_plain_computation() -> None:
    import torch

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(200, 4)) * 3
    s = logit_scores(logits)
    t = torch.from_numpy(logits)
    assert np.allclose(-s["msp"], torch.softmax(t, 1).max(1).values.numpy())
    assert np.allclose(-s["energy"], torch.logsumexp(t, 1).numpy())
    assert np.allclose(-s["max_logit"], logits.max(1))
    conf = rng.uniform(0, 1, 500)
    correct = (rng.uniform(0, 1, 500) < conf**2).astype(float)
    ece = 0.0
    for b in range(10):  # the textbook loop
        sel = ((conf > b / 10) if b > 0 else (conf >= 0.0)) & (conf <= (b + 1) / 10)  # (lo, hi] bins
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    assert expected_calibration_error(conf, correct, n_bins=10)[0] == pytest.approx(ece, abs=1e-12)


def test_risk_coverage_against_loop() -> None:
    rng = np.random.default_rng(2)
    scores, errors = rng.normal(size=100), (rng.uniform(size=100) < 0.3).astype(float)
    rc = risk_coverage(scores, errors)
    order = np.argsort(scores, kind="stable")
    risks = [errors[order[: k + 1]].mean() for k in range(100)]
    assert np.allclose(rc["risk"][0], risks)
    assert rc["aurc"][0] == pytest.approx(np.mean(risks))
    assert rc["risk"][0][-1] == pytest.approx(errors.mean())


def test_feature_detectors_against_independent_code() -> None:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 600)
    means = rng.normal(size=(3, 6)) * 3
    a = rng.normal(size=(6, 6))
    x = (means[y] + rng.normal(size=(600, 6)) @ a).astype(np.float32)
    q = rng.normal(size=(50, 6)).astype(np.float32) * 4
    maha = Mahalanobis.fit(x, y, ridge=0.0).score(q)
    mu = np.stack([x[y == c].mean(0) for c in range(3)]).astype(np.float64)
    cen = x - mu[y]
    prec = np.linalg.inv(cen.T.astype(np.float64) @ cen / len(x))
    ref = np.min([np.einsum("ij,jk,ik->i", q - m, prec, q - m) for m in mu], axis=0)
    assert np.allclose(maha, ref, rtol=1e-3)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    dist, _ = NearestNeighbors(n_neighbors=5).fit(xn).kneighbors(qn)
    for backend in ("torch", "faiss"):
        assert np.allclose(KNN.fit(x, 5, backend).score(q), dist[:, -1], atol=1e-4)


# --- AK-OOD-001 --------------------------------------------------------------------------------


def test_ood_split_auroc_matches_independent_sklearn_scores() -> None:
    """With an ood split and a validation split, reported AUROCs equal sklearn on our own scores."""
    import torch
    from sklearn.metrics import roc_auc_score

    model, xtr, ytr, xte, yte = digits_cnn()
    rng = np.random.default_rng(0)
    faces_like = np.clip(rng.normal(0.5, 0.2, size=(300, 1, 8, 8)), 0, 1).astype(np.float32)
    arts = make_artifacts(
        {"train": (xtr[200:], ytr[200:]), "validation": (xtr[:200], ytr[:200]), "test": (xte, yte),
         "ood": (faces_like, np.zeros(300, dtype=int))},
        model=model, spec=IMG_SPEC,
    )  # fmt: skip
    rec = run_check(ood_detection, arts, params={"gate_detector": "msp", "n_boot": 20})
    assert rec["status"] in ("passed", "failed"), rec["error"]
    with torch.no_grad():
        p_in = torch.softmax(model(torch.from_numpy(xte)), 1).max(1).values.numpy()
        p_out = torch.softmax(model(torch.from_numpy(faces_like)), 1).max(1).values.numpy()
    expected = roc_auc_score(np.r_[np.zeros(len(p_in)), np.ones(len(p_out))], -np.r_[p_in, p_out])
    assert _metric(rec, "auroc:ood")["value"] == pytest.approx(expected, abs=1e-6)
    lo, hi = _metric(rec, "auroc:ood")["ci"]
    assert lo <= expected <= hi
    assert "OOD positive" in _convention(rec)["auroc"]
    assert "validation split" in _convention(rec)["thresholds"]


def test_gate_passes_on_far_ood_and_fails_on_in_distribution() -> None:
    model, xtr, ytr, xte, yte = digits_cnn()
    far = 1.0 - xte  # inverted digits: Mahalanobis separates them almost perfectly
    ok = run_check(ood_detection, _digits(ood=(far, yte)), params={"min_auroc": 0.9, "n_boot": 50})
    assert ok["status"] == "passed", ok["summary"]
    assert _metric(ok, "auroc:ood")["ci"][0] >= 0.9
    # "OOD" that is really in-distribution (held-out digits): no detector can separate it.
    half = len(xte) // 2
    arts = make_artifacts(
        {"train": (xtr, ytr), "test": (xte[:half], yte[:half]), "ood": (xte[half:], yte[half:])},
        model=model, spec=IMG_SPEC,
    )  # fmt: skip
    bad = run_check(ood_detection, arts, params={"min_auroc": 0.8, "n_boot": 50})
    assert bad["status"] == "failed"
    m = _metric(bad, "auroc:ood")
    assert 0.35 < m["value"] < 0.65 and m["passed"] is False
    assert any(f["key"] == "auroc:ood" for f in bad["findings"])


def test_thresholds_do_not_depend_on_the_ood_set() -> None:
    model, xtr, ytr, xte, yte = digits_cnn()
    rng = np.random.default_rng(0)
    a = run_check(ood_detection, _digits(ood=(1.0 - xte, yte)), params={"n_boot": 10})
    noise = rng.uniform(0, 1, size=(100, 1, 8, 8)).astype(np.float32)
    b = run_check(ood_detection, _digits(ood=(noise, np.zeros(100, dtype=int))), params={"n_boot": 10})
    assert a["evidence"]["thresholds"]["rows"] == b["evidence"]["thresholds"]["rows"]
    assert a["evidence"]["detection"]["rows"] != b["evidence"]["detection"]["rows"]


def test_synthetic_image_sets_reported_separately_and_deterministic() -> None:
    arts = _digits()
    rec = run_check(ood_detection, arts, params={"n_boot": 20}, seed=3)
    sets = {r[0] for r in rec["evidence"]["detection"]["rows"]}
    assert sets == {"uniform_noise", "gaussian_noise", "inverted", "pixel_shuffled"}
    detectors = {r[1] for r in rec["evidence"]["detection"]["rows"]}
    assert detectors == set(DEFAULT_DETECTORS)  # every default detector ran on the CNN
    for s in sets:
        assert _metric(rec, f"auroc:{s}")["value"] > 0.85  # a trained digits CNN vs noise and inversions
    again = run_check(ood_detection, _digits(), params={"n_boot": 20}, seed=3)
    assert again["metrics"] == rec["metrics"]
    kinds = {p["type"] for p in rec["evidence"]["plots"]}
    assert kinds == {"bar", "line"}


def test_fpr_convention_is_a_parameter_and_stated() -> None:
    model, xtr, ytr, xte, yte = digits_cnn()
    noise = np.clip(np.random.default_rng(5).normal(0.3, 0.3, size=(300, 1, 8, 8)), 0, 1).astype(np.float32)
    arts = _digits(ood=(noise, np.zeros(300, dtype=int)))
    r_in = run_check(
        ood_detection, arts, params={"fpr_convention": "in", "gate_detector": "msp", "n_boot": 10}
    )
    r_out = run_check(
        ood_detection, arts, params={"fpr_convention": "out", "gate_detector": "msp", "n_boot": 10}
    )
    m_in, m_out = _metric(r_in, "fpr_at_95tpr:ood"), _metric(r_out, "fpr_at_95tpr:ood")
    assert m_in["details"]["convention"] == "in" and m_out["details"]["convention"] == "out"
    assert m_in["details"]["positive"] == "id" and m_out["details"]["positive"] == "ood"
    assert _metric(r_in, "auroc:ood")["details"]["positive"] == "ood"
    assert _convention(r_in)["fpr_at_tpr"].startswith("in: ID positive")
    assert _convention(r_out)["fpr_at_tpr"].startswith("out: OOD positive")
    assert _metric(r_in, "auroc:ood")["value"] == _metric(r_out, "auroc:ood")["value"]


def test_tabular_synthetic_sets() -> None:
    model, xtr, ytr, xte, yte = breast_cancer_mlp()
    arts = make_artifacts(
        {"train": (xtr, ytr), "test": (xte, yte)}, model=model, spec={"model": {"builtin": "mlp"}}
    )
    rec = run_check(ood_detection, arts, params={"n_boot": 50})
    assert rec["status"] != "error", rec["error"]
    assert {r[0] for r in rec["evidence"]["detection"]["rows"]} == {
        "uniform_box",
        "column_shuffled",
        "scaled_outliers",
    }
    # Outliers 5x away from the mean are far in feature space; shuffled columns are subtler.
    assert _metric(rec, "auroc:scaled_outliers")["value"] > 0.95
    assert _metric(rec, "auroc:column_shuffled")["value"] < _metric(rec, "auroc:scaled_outliers")["value"]


def test_bad_parameters_and_missing_inputs() -> None:
    rec = run_check(ood_detection, _digits(), params={"gate_detector": "odin"})
    assert rec["status"] == "error" and "gate_detector" in rec["error"]["message"]
    rec = run_check(
        ood_detection,
        _digits(),
        params={"detectors": ["msp"], "gate_detector": "msp", "synthetic": ["uniform_box"]},
    )
    assert rec["status"] == "error" and "does not apply to images" in rec["error"]["message"]
    model, xtr, ytr, *_ = digits_cnn()
    no_test = make_artifacts({"train": (xtr, ytr)}, model=model, spec=IMG_SPEC)
    assert run_check(ood_detection, no_test)["status"] == "not_applicable"
    assert run_check(shift_behaviour, no_test)["status"] == "not_applicable"


def test_contract_both_checks() -> None:
    model, xtr, ytr, xte, yte = digits_cnn()

    def tiny():  # type: ignore[no-untyped-def]
        return make_artifacts(
            {"train": (xtr[:300], ytr[:300]), "test": (xte[:100], yte[:100])}, model=model, spec=IMG_SPEC
        )

    check_contract(ood_detection, tiny)
    check_contract(shift_behaviour, tiny)


# --- AK-OOD-002 --------------------------------------------------------------------------------


def test_shift_accuracy_falls_with_severity_and_matches_plain_torch() -> None:
    import torch

    model, xtr, ytr, xte, yte = digits_cnn()
    rec = run_check(
        shift_behaviour, _digits(), params={"n_boot": 50, "max_accuracy_drop": None, "max_ece": None}
    )
    assert rec["status"] == "passed", rec["error"]
    with torch.no_grad():
        acc = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    assert _metric(rec, "accuracy:clean")["value"] == pytest.approx(acc)
    rows = rec["evidence"]["under shift"]["rows"]
    for shift in ("gaussian_noise", "contrast", "brightness"):
        accs = [r[2] for r in rows if r[0] == shift]
        assert len(accs) == 5 and accs[-1] < accs[0] <= acc + 0.02
    # Selective prediction: abstaining on the least confident 20% lowers the error rate.
    for suffix in ("clean", "shifted@2"):
        m = _metric(rec, f"selective_risk@0.8:{suffix}")
        assert m["value"] <= m["details"]["full_coverage_risk"]
    assert rec["evidence"]["plots"][-1]["title"].startswith("Risk–coverage")


def test_shift_gate_pass_and_fail_with_production_split() -> None:
    model, xtr, ytr, xte, yte = digits_cnn()
    half = len(xte) // 2
    same = make_artifacts(
        {"train": (xtr, ytr), "test": (xte[:half], yte[:half]), "production": (xte[half:], yte[half:])},
        model=model, spec=IMG_SPEC,
    )  # fmt: skip
    ok = run_check(shift_behaviour, same, params={"n_boot": 50})
    assert ok["status"] == "passed", ok["summary"]
    assert abs(_metric(ok, "accuracy_drop:production")["value"]) < 0.05
    rng = np.random.default_rng(0)
    noisy = np.clip(xte[half:] + rng.normal(0, 0.5, size=xte[half:].shape), 0, 1).astype(np.float32)
    shifted = make_artifacts(
        {"train": (xtr, ytr), "test": (xte[:half], yte[:half]), "production": (noisy, yte[half:])},
        model=model, spec=IMG_SPEC,
    )  # fmt: skip
    bad = run_check(shift_behaviour, shifted, params={"n_boot": 50})
    assert bad["status"] == "failed"
    drop = _metric(bad, "accuracy_drop:production")
    assert drop["value"] > 0.1 and drop["passed"] is False
    lo, hi = drop["ci"]
    assert lo <= drop["value"] <= hi
    assert "production" in bad["evidence"]["shift_source"]


def test_shift_tabular_and_ece_gate() -> None:
    model, xtr, ytr, xte, yte = breast_cancer_mlp()
    arts = make_artifacts(
        {"train": (xtr, ytr), "test": (xte, yte)}, model=model, spec={"model": {"builtin": "mlp"}}
    )
    rec = run_check(shift_behaviour, arts, params={"n_boot": 50, "max_ece": 0.0, "max_accuracy_drop": None})
    assert rec["status"] == "failed"  # every ECE is above 0: the ECE gate bites
    assert all(f["key"].startswith("ece:") for f in rec["findings"] if f["severity"] != "info")
    rows = rec["evidence"]["under shift"]["rows"]
    assert {r[0] for r in rows} == {"gaussian_noise", "mean_shift", "scale"}


def test_model_without_linear_head_fails_closed_for_feature_gate() -> None:
    import torch

    from auditkit.inputs.model import wrap

    _, xtr, ytr, xte, yte = digits_cnn()
    torch.manual_seed(0)
    conv_only = torch.nn.Sequential(torch.nn.Conv2d(1, 10, 8), torch.nn.Flatten())  # logits, no nn.Linear
    adapter = wrap(conv_only, n_classes=10, device="cpu", input_kind="image", input_shape=(1, 8, 8))
    arts = make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=adapter, spec=IMG_SPEC)
    rec = run_check(ood_detection, arts, params={"n_boot": 10})
    assert rec["status"] == "failed"  # the declared Mahalanobis gate cannot be evidenced
    assert any(f["key"] == "unavailable:mahalanobis" for f in rec["findings"])
    assert {r[1] for r in rec["evidence"]["detection"]["rows"]} == {"msp", "max_logit", "energy", "gen"}
    ok = run_check(ood_detection, arts, params={"n_boot": 10, "gate_detector": "energy", "min_auroc": 0.0})
    assert ok["status"] == "passed", ok["summary"]


def test_column_shuffle_of_independent_features_is_reported_not_gated() -> None:
    """Shuffling independent columns yields in-distribution rows: AUROC ≈ 0.5, so no default gate."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x[:1000]), torch.from_numpy(y[:1000])
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    arts = make_artifacts(
        {"train": (x[:1000], y[:1000]), "test": (x[1000:], y[1000:])},
        model=net,
        spec={"model": {"builtin": "mlp"}},
    )
    rec = run_check(ood_detection, arts, params={"n_boot": 50})
    shuffled = _metric(rec, "auroc:column_shuffled")
    assert 0.4 < shuffled["value"] < 0.6 and shuffled["threshold"] is None
    assert "column_shuffled" not in rec["evidence"]["gated_sets"]
    assert _metric(rec, "auroc:scaled_outliers")["passed"] is True
    assert rec["status"] == "passed", rec["summary"]
    strict = run_check(
        ood_detection, arts, params={"n_boot": 50, "gate_sets": ["column_shuffled", "scaled_outliers"]}
    )
    assert strict["status"] == "failed"
    assert [f["key"] for f in strict["findings"] if f["severity"] != "info"] == ["auroc:column_shuffled"]
    bad = run_check(ood_detection, arts, params={"gate_sets": ["faces"]})
    assert bad["status"] == "error"


def test_one_pass_logits_and_embeddings_equal_the_adapter() -> None:
    from auditkit.inputs.model import wrap

    model, _, _, xte, _ = digits_cnn()
    adapter = wrap(model, device="cpu", input_kind="image", input_shape=(1, 8, 8))
    logits, emb = logits_and_embeddings(adapter, xte[:50], True)
    assert np.allclose(logits, adapter.logits(xte[:50]), atol=1e-6)
    assert emb is not None and np.allclose(emb, adapter.embeddings(xte[:50]), atol=1e-6)
    assert logits_and_embeddings(adapter, xte[:5], False)[1] is None


def test_selective_detector_chosen_on_validation_when_present() -> None:
    model, xtr, ytr, xte, yte = digits_cnn()
    arts = make_artifacts(
        {"train": (xtr[200:], ytr[200:]), "validation": (xtr[:200], ytr[:200]), "test": (xte, yte)},
        model=model,
        spec=IMG_SPEC,
    )
    rec = run_check(
        shift_behaviour, arts, params={"n_boot": 20, "severities": [2], "shifts": ["gaussian_noise"]}
    )
    assert rec["status"] in ("passed", "failed"), rec["error"]
    assert "validation split" in rec["evidence"]["selection"]
    choice = {d: a for d, a in rec["evidence"]["detector choice"]["rows"]}
    assert set(choice) == {"msp", "max_logit", "energy", "mahalanobis", "knn"}
    best = _metric(rec, "aurc:clean")["details"]["detector"]
    assert choice[best] == min(choice.values())
    assert _metric(rec, "aurc:clean")["n"] == len(xte)  # reported on the whole test set
    rows = rec["evidence"]["under shift"]["rows"]
    assert [(r[0], r[1]) for r in rows] == [("gaussian_noise", 2)]


# --- detectors added for issue 20: independent paths, pytorch-ood, fitting on ID only ------------


def _noise_ood(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.5, 0.25, size=(n, 1, 8, 8)), 0, 1).astype(np.float32)


def _rows(rec: dict, table: str = "detection") -> list[dict]:
    cols = rec["evidence"][table]["columns"]
    return [dict(zip(cols, r, strict=True)) for r in rec["evidence"][table]["rows"]]


def test_activation_detectors_equal_the_model_run_with_its_activations_changed() -> None:
    """ReAct, ASH-S and DICE through the real module (a hook that clips/shapes the head's input,
    a copy of the head with masked weights) give the same scores as the check's numpy path."""
    import copy

    import torch
    from auditkit.checks._ood_detectors import Head, ash_score, dice_head, react_score, react_threshold

    from auditkit.inputs.model import wrap

    module, xtr, ytr, xte, _ = digits_cnn()
    adapter = wrap(module, device="cpu", input_kind="image", input_shape=(1, 8, 8))
    z_tr, z_te = adapter.embeddings(xtr), adapter.embeddings(xte)
    head = Head.of(adapter, z_tr, adapter.logits(xtr))
    assert head is not None

    def energy_with(fn) -> np.ndarray:  # type: ignore[no-untyped-def]
        h = adapter.embedding_layer.register_forward_pre_hook(lambda _m, a: (fn(a[0]),))
        try:
            return -torch.logsumexp(torch.from_numpy(adapter.logits(xte)).double(), 1).numpy()
        finally:
            h.remove()

    clip = float(np.quantile(z_tr.ravel(), 0.9, method="linear"))
    assert react_threshold(z_tr, 0.9) == pytest.approx(clip)
    assert np.allclose(react_score(z_te, head, clip), energy_with(lambda t: t.clamp(max=clip)), atol=1e-4)

    def ash(t: torch.Tensor) -> torch.Tensor:
        k = t.shape[1] - round(t.shape[1] * 0.9)
        v, i = torch.topk(t, k, dim=1)
        kept = torch.zeros_like(t).scatter(1, i, v)
        return kept * torch.exp(t.sum(1, keepdim=True) / kept.sum(1, keepdim=True))

    assert np.allclose(ash_score(z_te, head, 0.9), energy_with(ash), rtol=1e-4, atol=1e-3)
    masked = copy.deepcopy(module)
    lin = masked.head[-1]
    contrib = lin.weight.detach().double() * torch.from_numpy(z_tr).double().mean(0)
    with torch.no_grad():
        lin.weight[contrib <= torch.quantile(contrib.flatten(), 0.9)] = 0.0
        ref = -torch.logsumexp(masked(torch.from_numpy(xte)).double(), 1).numpy()
    assert np.allclose(-np.log(np.exp(dice_head(z_tr, head, 0.9)(z_te)).sum(1)), ref, atol=1e-4)


def test_gen_vim_and_relative_mahalanobis_against_their_formulas() -> None:
    from auditkit.checks._ood_detectors import Head, Mahalanobis, RelativeMahalanobis, ViM, gen_score

    rng = np.random.default_rng(5)
    logits = rng.normal(size=(40, 7)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.allclose(gen_score(logits, gamma=0.1), (p**0.1 * (1 - p) ** 0.1).sum(1), atol=1e-6)
    top2 = np.sort(p, 1)[:, ::-1][:, :2]
    assert np.allclose(
        gen_score(logits, gamma=0.5, top_m=2), (top2**0.5 * (1 - top2) ** 0.5).sum(1), atol=1e-6
    )
    # features of rank 6 in 10 dims (dead units): ViM's rule works on the rank, residual is not 0
    y = rng.integers(0, 3, 500)
    z = np.maximum(0, np.c_[rng.normal(size=(500, 6)) + y[:, None], np.zeros((500, 4))])
    w, b = rng.normal(size=(3, 10)), rng.normal(size=3)
    vim = ViM.fit(z, Head(w, b))
    assert vim.rank in (6, 7) and vim.dim == vim.rank // 2
    u = -np.linalg.pinv(w) @ b
    ev, vec = np.linalg.eigh(np.cov((z - u).T, bias=True) + np.outer((z - u).mean(0), (z - u).mean(0)))
    res = vec[:, : 10 - vim.dim]
    alpha = (z @ w.T + b).max(1).mean() / np.linalg.norm((z - u) @ res, axis=1).mean()
    q = rng.normal(size=(20, 10))
    lq = q @ w.T + b
    expected = alpha * np.linalg.norm((q - u) @ res, axis=1) - np.log(np.exp(lq).sum(1))
    assert np.allclose(vim.score(q, lq), expected, rtol=1e-6)
    rmd = RelativeMahalanobis.fit(z[:, :6], y, ridge=0.0).score(q[:, :6])
    c0 = np.linalg.inv(np.cov(z[:, :6].T, bias=True))
    d0 = np.einsum("ij,jk,ik->i", q[:, :6] - z[:, :6].mean(0), c0, q[:, :6] - z[:, :6].mean(0))
    assert np.allclose(rmd, Mahalanobis.fit(z[:, :6], y, ridge=0.0).score(q[:, :6]) - d0, rtol=1e-5)


def test_new_detectors_match_pytorch_ood_on_the_digits_cnn() -> None:
    """Same features, head and hyperparameters: AUROC equal to pytorch-ood's to the third decimal
    (relative Mahalanobis within 2e-3: pytorch-ood's background covariance is a sum, not a mean,
    so its background distance is shrunk by 1/N; documented in docs/ood.md)."""
    import sys
    from pathlib import Path

    import torch
    from auditkit.checks._ood_detectors import (
        ODIN,
        Head,
        RelativeMahalanobis,
        ViM,
        _energy,
        ash_score,
        dice_head,
        gen_score,
        react_score,
        react_threshold,
    )  # fmt: skip
    from sklearn.metrics import roc_auc_score

    from auditkit.inputs.model import wrap

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_ood_detectors import import_pytorch_ood

    ref = import_pytorch_ood()
    if ref is None:
        pytest.skip("pytorch-ood is not installed (a benchmark-only cross-check)")
    module, xtr, ytr, xte, _ = digits_cnn()
    a = wrap(module, device="cpu", input_kind="image", input_shape=(1, 8, 8))
    ood = _noise_ood()
    z_tr, z_te, z_o = a.embeddings(xtr), a.embeddings(xte), a.embeddings(ood)
    head = Head.of(a, z_tr, a.logits(xtr))
    layer = a.embedding_layer
    w, b = layer.weight.detach(), layer.bias.detach()
    t = torch.from_numpy
    vim = ViM.fit(z_tr, head)
    odin = ODIN(a, 1000.0, 0.0014, np.ones(64))
    ours = {
        "gen": lambda z, x: gen_score(layer(t(z)).detach().numpy()),
        "vim": lambda z, x: vim.score(z, head(z)),
        "react": lambda z, x: react_score(z, head, react_threshold(z_tr, 0.9)),
        "ash": lambda z, x: ash_score(z, head, 0.9),
        "dice": lambda z, x: _energy(dice_head(z_tr, head, 0.9)(z)),
        "rmd": lambda z, x: RelativeMahalanobis.fit(z_tr, ytr).score(z),
        "odin": lambda z, x: odin.score(x),
    }
    react = ref.ReAct(None, head=layer, percentile=0.9)
    react.fit_feature_maps(t(z_tr), t(ytr))
    r_vim = ref.ViM(None, d=vim.dim, w=w, b=b).fit_features(t(z_tr), t(ytr))
    r_dice = ref.DICE(None, w=w, b=b, p=0.9).fit_features(t(z_tr), t(ytr))
    r_rmd = ref.RMD(None).fit_features(t(z_tr), t(ytr))
    r_ash = ref.ASH(None, head=lambda f: layer(f.flatten(1)), variant="ash-s", percentile=0.9)
    theirs = {
        "gen": lambda z, x: ref.GEN.score(layer(t(z)), gamma=0.1, M=100),
        "vim": lambda z, x: r_vim.predict_features(t(z)),
        "react": lambda z, x: react.predict_feature_maps(t(z)),
        "ash": lambda z, x: r_ash.predict_feature_maps(t(z)[:, :, None, None]),
        "dice": lambda z, x: r_dice.predict_features(t(z)),
        "rmd": lambda z, x: r_rmd.predict_features(t(z)),
        "odin": lambda z, x: ref.ODIN(module, eps=0.0014, temperature=1000.0).predict(t(x)),
    }
    labels = np.r_[np.zeros(len(xte)), np.ones(len(ood))]
    for name in ours:
        s_ours = np.r_[ours[name](z_te, xte), ours[name](z_o, ood)]
        fn = theirs[name]
        with torch.inference_mode(False):
            parts = [fn(z, x) for z, x in ((z_te, xte), (z_o, ood))]
        s_ref = np.r_[tuple(p.detach().numpy() if hasattr(p, "detach") else p for p in parts)]
        diff = abs(roc_auc_score(labels, s_ours) - roc_auc_score(labels, s_ref))
        assert diff < (2e-3 if name == "rmd" else 1e-3), (name, diff)


def test_every_detector_reported_with_both_fpr_conventions_and_paired_selection() -> None:
    from auditkit.checks._ood_detectors import ALL_DETECTORS

    arts = _digits(ood=(_noise_ood(), np.zeros(300, dtype=int)))
    rec = run_check(ood_detection, arts, params={"detectors": list(ALL_DETECTORS), "n_boot": 50,
                                                 "odin_eps": [0.0, 0.002]})  # fmt: skip
    assert rec["status"] in ("passed", "failed"), rec["error"]
    rows = _rows(rec)
    assert {r["detector"] for r in rows} == set(ALL_DETECTORS)
    in_col = next(c for c in rows[0] if "ID positive" in c)
    out_col = next(c for c in rows[0] if "OOD positive" in c)
    # independent: both conventions from sklearn's ROC for one detector (msp, recomputed)
    import torch
    from sklearn.metrics import roc_curve

    model = digits_cnn()[0]
    with torch.no_grad():
        s_in = -torch.softmax(model(torch.from_numpy(digits_cnn()[3])), 1).max(1).values.double().numpy()
        s_out = -torch.softmax(model(torch.from_numpy(_noise_ood())), 1).max(1).values.double().numpy()
    y = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    fpr, tpr, _ = roc_curve(y, np.r_[s_in, s_out])
    msp = next(r for r in rows if r["detector"] == "msp")
    assert msp[out_col] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-4)
    fpr, tpr, _ = roc_curve(1 - y, -np.r_[s_in, s_out])
    assert msp[in_col] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-4)
    gate_other = _metric(rec, "fpr_at_95tpr_out:ood")
    assert (
        gate_other["details"]["positive"] == "ood"
        and _metric(rec, "fpr_at_95tpr:ood")["details"]["positive"] == "id"
    )
    # selection: sorted by AUROC, the best has no interval, the flag follows the paired interval
    sel = _rows(rec, "detector selection")
    aus = [r["auroc"] for r in sel]
    assert aus == sorted(aus, reverse=True) and sel[0]["auroc below best"] == 0
    for r in sel[1:]:
        assert r["difference lo"] <= r["auroc below best"] + 1e-9 <= r["difference hi"] + 2e-9
        assert r["worse than best (interval excludes 0)"] == (r["difference lo"] > 0)
    papers = {r[0]: r[1] for r in rec["evidence"]["detectors"]["rows"]}
    assert "ICLR 2018" in papers["odin"] and "CVPR 2022" in papers["vim"]


def test_hyperparameters_are_fitted_on_id_data_only() -> None:
    near = _digits(ood=(_noise_ood(seed=1), np.zeros(300, dtype=int)))
    far = _digits(ood=(np.ones((300, 1, 8, 8), dtype=np.float32), np.zeros(300, dtype=int)))
    params = {"detectors": ["odin", "vim", "react", "dice", "ash", "gen"], "gate_detector": None, "n_boot": 0,
              "odin_eps": [0.0, 0.001, 0.004]}  # fmt: skip
    a, b = run_check(ood_detection, near, params=params), run_check(ood_detection, far, params=params)
    assert a["evidence"]["detectors"] == b["evidence"]["detectors"]
    assert a["evidence"]["thresholds"] == b["evidence"]["thresholds"]
    fitted = {r[0]: r[2] for r in a["evidence"]["detectors"]["rows"]}
    assert "eps=" in fitted["odin"] and "clip=" in fitted["react"] and "principal_dim=" in fitted["vim"]


def test_odin_without_a_step_is_temperature_scaled_msp_and_auroc_flip_invariant() -> None:
    import torch
    from sklearn.metrics import roc_auc_score

    model, xtr, ytr, xte, yte = digits_cnn()
    ood = _noise_ood()
    arts = _digits(ood=(ood, np.zeros(300, dtype=int)))
    rec = run_check(ood_detection, arts, params={"detectors": ["odin", "msp"], "gate_detector": "odin",
                                                 "odin_eps": [0.0], "n_boot": 0})  # fmt: skip
    with torch.no_grad():
        p = [
            torch.softmax(model(torch.from_numpy(x)).double() / 1000.0, 1).max(1).values.numpy()
            for x in (xte, ood)
        ]
    y = np.r_[np.zeros(len(xte)), np.ones(len(ood))]
    expected = roc_auc_score(y, -np.r_[p[0], p[1]])
    assert _metric(rec, "auroc:ood")["value"] == pytest.approx(expected, abs=1e-6)
    # flipping the positive class and the score sign together leaves AUROC unchanged
    assert roc_auc_score(1 - y, np.r_[p[0], p[1]]) == pytest.approx(expected, abs=1e-12)
    m = detection_metrics(-p[0], -p[1])
    flipped = detection_metrics(p[1], p[0])  # OOD as "ID" with the score negated
    assert m["auroc"][0] == pytest.approx(flipped["auroc"][0], abs=1e-12)


def test_new_hyperparameters_are_validated() -> None:
    """Domains are declared in the signature: refused before anything runs, as one located line."""
    from auditkit import SpecError

    arts = _digits()
    for bad in ({"react_percentile": 1.5}, {"dice_sparsity": 0.0}, {"odin_eps": []}, {"vim_dim": 0},
                {"gen_gamma": -1.0}):  # fmt: skip
        with pytest.raises(SpecError, match=f"params.AK-OOD-001.{next(iter(bad))}"):
            run_check(ood_detection, arts, params={**bad, "detectors": ["msp", "odin"], "n_boot": 0})


@pytest.mark.parametrize(
    ("fn", "name", "value", "needle"),
    [
        (ood_detection, "detectors", ["msp", "faces"], "Input should be 'msp', 'max_logit'"),
        (ood_detection, "detectors", [], "at least 1 item"),
        (ood_detection, "gate_detector", "faces", "Input should be 'msp'"),
        (ood_detection, "fpr_convention", "both", "Input should be 'in' or 'out'"),
        (ood_detection, "tpr", 1.0, "less than 1"),
        (ood_detection, "knn_k", 0, "greater than or equal to 1"),
        (ood_detection, "knn_backend", "annoy", "Input should be 'torch' or 'faiss'"),
        (ood_detection, "holdout_fraction", 0.0, "greater than 0"),
        (ood_detection, "odin_temperature", 0.0, "greater than 0"),
        (ood_detection, "odin_eps", [0.001, -0.1], "greater than or equal to 0"),
        (ood_detection, "synthetic", ["faces"], "Input should be 'uniform_noise'"),
        (shift_behaviour, "severities", [0, 2], "greater than or equal to 1"),
        (shift_behaviour, "severities", [2.5], "valid integer"),
        (shift_behaviour, "severities", [], "at least 1 item"),
        (shift_behaviour, "gate_severity", 6, "less than or equal to 5"),
        (shift_behaviour, "shifts", ["fog"], "Input should be 'gaussian_noise'"),
        (shift_behaviour, "coverage", 0.0, "greater than 0"),
        (shift_behaviour, "coverage", 1.5, "less than or equal to 1"),
        (shift_behaviour, "n_bins", 0, "greater than or equal to 1"),
    ],
)
def test_parameter_domains_are_refused_before_the_run(fn, name: str, value: object, needle: str) -> None:  # type: ignore[no-untyped-def]
    from auditkit import SpecError, check_info
    from auditkit.engine.runner import validate_params

    info = check_info(fn)
    assert info is not None
    with pytest.raises(SpecError, match=needle) as err:
        validate_params(info, {name: value}, f"checks.params.{info.id}")
    assert err.value.location == f"checks.params.{info.id}.{name}" and "\n" not in str(err.value)


def test_cross_parameter_rules_stay_run_time_errors() -> None:
    """What a type cannot express (a value among another parameter's) is the check's error."""
    rec = run_check(
        shift_behaviour, _digits(), params={"severities": [1, 3], "gate_severity": 2, "n_boot": 0}
    )
    assert (
        rec["status"] == "error"
        and "gate_severity 2 is not among severities [1, 3]" in rec["error"]["message"]
    )


def test_shift_shards_identical_for_one_and_two_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """AK-OOD-002 runs each (shift, severity) as a compute task with its own seed (docs/compute.md):
    the record is the same, to the last digit, in this process and on two local workers."""
    from auditkit.engine import compute

    model, xtr, ytr, xte, yte = breast_cancer_mlp()
    params = {"n_boot": 20, "severities": [1, 3], "gate_severity": 3}

    def arts() -> object:
        return make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=model)

    one = run_check(shift_behaviour, arts(), params=params)

    def no_fallback(*_a: object, **_k: object) -> None:
        raise AssertionError("the shift tasks fell back to this process")

    with compute.use(compute.LocalPool(2)):
        monkeypatch.setattr(compute.InlineExecutor, "map", no_fallback)  # the tasks really run in workers
        two = run_check(shift_behaviour, arts(), params=params)
        monkeypatch.undo()
    assert one["status"] == two["status"] != "error", one.get("error")
    for key in ("metrics", "findings", "summary", "evidence"):
        assert two[key] == one[key], key
    rows = one["evidence"]["under shift"]["rows"]
    assert [(r[0], r[1]) for r in rows] == [
        (s, v) for s in ("gaussian_noise", "mean_shift", "scale") for v in (1, 3)
    ]


def test_fpr_interval_is_in_the_evidence_and_the_report() -> None:
    """The FPR@95TPR bootstrap interval of every detector (both conventions) is evidence, equals the
    gated metric's CI, and the HTML report renders its table whole (10 columns)."""
    from synth import synthetic_results

    from auditkit.render.common import render_html

    model, xtr, ytr, xte, yte = breast_cancer_mlp()
    arts = make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=model)
    rec = run_check(ood_detection, arts, params={"n_boot": 50, "gate_detector": "msp"})
    table = rec["evidence"]["fpr@95tpr with 95% intervals"]
    assert len(table["columns"]) == 10 and table["rows"]
    for _set, _det, v_in, lo_in, hi_in, v_out, lo_out, hi_out, *_ in table["rows"]:
        assert lo_in <= v_in <= hi_in and lo_out <= v_out <= hi_out
    for row in table["rows"]:
        if row[1] == "msp":
            assert _metric(rec, f"fpr_at_95tpr:{row[0]}")["ci"] == [row[3], row[4]]
            assert _metric(rec, f"fpr_at_95tpr_out:{row[0]}")["ci"] == [row[6], row[7]]
    doc = synthetic_results(hostile=False)
    doc["checks"].append(rec)
    html = render_html(doc, pdf=False)
    assert "fpr@95tpr with 95% intervals" in html
