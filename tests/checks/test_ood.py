"""AK-OOD-001 / AK-OOD-002: metrics against scikit-learn, detectors against independent code, gates.

Models are trained in plain torch by tests/checks/_robust_fixtures.py (digits CNN, breast-cancer
MLP), cached per session.
"""

from __future__ import annotations

import numpy as np
import pytest
from _robust_fixtures import breast_cancer_mlp, digits_cnn
from auditkit.checks.ood import (
    KNN,
    Mahalanobis,
    detection_metrics,
    expected_calibration_error,
    logit_scores,
    logits_and_embeddings,
    ood_detection,
    risk_coverage,
    shift_behaviour,
)

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
    assert detectors == {"msp", "max_logit", "energy", "mahalanobis", "knn"}
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

    from auditkit.model import wrap

    _, xtr, ytr, xte, yte = digits_cnn()
    torch.manual_seed(0)
    conv_only = torch.nn.Sequential(torch.nn.Conv2d(1, 10, 8), torch.nn.Flatten())  # logits, no nn.Linear
    adapter = wrap(conv_only, n_classes=10, device="cpu", input_kind="image", input_shape=(1, 8, 8))
    arts = make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=adapter, spec=IMG_SPEC)
    rec = run_check(ood_detection, arts, params={"n_boot": 10})
    assert rec["status"] == "failed"  # the declared Mahalanobis gate cannot be evidenced
    assert any(f["key"] == "unavailable:mahalanobis" for f in rec["findings"])
    assert {r[1] for r in rec["evidence"]["detection"]["rows"]} == {"msp", "max_logit", "energy"}
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
    from auditkit.model import wrap

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
