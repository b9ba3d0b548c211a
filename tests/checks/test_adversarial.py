"""AK-ADV-001 / AK-ADV-002: ART attacks against an independent plain-torch PGD, invariants, masks, gates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from _robust_fixtures import breast_cancer_mlp, digits_cnn
from auditkit.checks.adversarial import black_box_and_masking, white_box_evasion
from torch import nn

from auditkit.testing import check_contract, make_artifacts, run_check

torch.set_num_threads(1)
IMG_SPEC = {"model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}}
FAST = {"steps": 10, "restarts": 2, "norms": ["inf"], "max_samples": 200}


def digits_arts(model: nn.Module | None = None):  # type: ignore[no-untyped-def]
    m, xtr, ytr, xte, yte = digits_cnn()
    return make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=model or m, spec=IMG_SPEC)


def cancer_arts(immutable: list[str] | None = None):  # type: ignore[no-untyped-def]
    m, xtr, ytr, xte, yte = breast_cancer_mlp()
    spec = {"model": {"builtin": "mlp", "input": {"kind": "tabular", "immutable": immutable or []}}}
    return make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=m, spec=spec)


def table(rec: dict, norm: str, attack: str) -> dict[float, list]:  # type: ignore[type-arg]
    rows = rec["evidence"]["robust accuracy by attack and epsilon"]["rows"]
    return {
        round(r[3], 6): r for r in rows if r[0] == norm and r[1] == attack
    }  # evidence keeps full precision


def torch_pgd_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                       eps: float, steps: int) -> float:  # fmt: skip
    """Independent L∞ PGD in raw input units: per-feature radius eps·(hi−lo), step 2.5·eps/steps,
    cross-entropy, start at the clean point; a sample counts as broken if any iterate fools it."""
    lo_t, hi_t = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)
    x0 = torch.max(torch.min(torch.as_tensor(x), hi_t), lo_t)
    yt = torch.as_tensor(y)
    radius = eps * (hi_t - lo_t)
    step = 2.5 * radius / steps
    xa = x0.clone()
    broken = torch.zeros(len(x0), dtype=torch.bool)
    for _ in range(steps):
        xa.requires_grad_(True)
        out = model(xa)
        broken |= out.argmax(1) != yt
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(out, yt, reduction="sum"), xa)
        xa = xa.detach() + step * g.sign()
        xa = torch.max(torch.min(xa, x0 + radius), x0 - radius)
        xa = torch.max(torch.min(xa, hi_t), lo_t)
    with torch.no_grad():
        broken |= model(xa).argmax(1) != yt
    return float(1 - broken.float().mean())


@pytest.mark.parametrize("kind", ["tabular", "image"])
def test_art_pgd_agrees_with_plain_torch_pgd(kind: str) -> None:
    if kind == "image":
        m, xtr, ytr, xte, yte = digits_cnn()
        arts, eps = digits_arts(), 8 / 255
        lo, hi = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    else:
        m, xtr, ytr, xte, yte = breast_cancer_mlp()
        arts, eps = cancer_arts(), 0.05
        lo, hi = xtr.min(0), xtr.max(0)
    params = {"epsilons": [eps], "gate_epsilon": eps, "norms": ["inf"], "steps": 20, "restarts": 1,
              "losses": ["ce"], "max_samples": 5000}  # fmt: skip
    rec = run_check(white_box_evasion, arts, params=params)
    assert rec["status"] in ("passed", "failed"), rec["error"]
    row = table(rec, "inf", "pgd")[round(eps, 6)]
    ours, lo_ci, hi_ci, n = row[4], row[5], row[6], row[7]
    assert n == len(yte)
    reference = torch_pgd_accuracy(m, xte, yte, lo, hi, eps, 20)
    assert lo_ci <= reference <= hi_ci, (ours, reference, lo_ci, hi_ci)
    assert abs(ours - reference) <= 3 / n  # the same algorithm: at most a few samples apart
    assert reference < rec["metrics"][0]["value"] - 0.02  # the attack does something


@pytest.mark.parametrize("kind", ["tabular", "image"])
def test_invariants(kind: str) -> None:
    if kind == "image":
        m, xtr, ytr, xte, yte = digits_cnn()
        arts, grid = digits_arts(), [0.0, 4 / 255, 16 / 255, 1.0]
        clean = (m(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    else:
        m, xtr, ytr, xte, yte = breast_cancer_mlp()
        arts, grid = cancer_arts(), [0.0, 0.02, 0.1, 1.0]
        xc = np.clip(xte, xtr.min(0), xtr.max(0))  # the attack's starting points lie in the train box
        clean = (m(torch.from_numpy(xc)).argmax(1).numpy() == yte).mean()
    rec = run_check(white_box_evasion, arts, params={**FAST, "epsilons": grid, "max_samples": 5000,
                                                       "gate_epsilon": grid[1]})  # fmt: skip
    n = len(yte)
    fgsm, pgd, worst = (table(rec, "inf", a) for a in ("fgsm", "pgd", "worst case"))
    radii = sorted(pgd)
    # eps 0 is clean accuracy, computed independently
    assert rec["metrics"][0]["value"] == pytest.approx(clean, abs=1e-12)
    assert pgd[0.0][4] == fgsm[0.0][4] == pytest.approx(clean, abs=1e-4)  # the table is rounded
    # never rises with epsilon (raw PGD within one sample; the reported worst case exactly)
    for a, b in zip(radii, radii[1:], strict=False):
        assert pgd[b][4] <= pgd[a][4] + 1 / n
        assert worst[b][4] <= worst[a][4]
    # FGSM is never stronger than PGD
    for r in radii:
        assert fgsm[r][4] >= pgd[r][4] - 1 / n
    # an attack over the whole valid range breaks (nearly) everything
    assert worst[1.0][4] <= 0.05
    assert pgd[radii[2]][4] < pgd[0.0][4]


def test_gate_pass_and_fail_on_digits() -> None:
    ok = run_check(white_box_evasion, digits_arts(), params={**FAST, "min_robust_accuracy": 0.5})
    assert ok["status"] == "passed", ok["summary"]
    bad = run_check(white_box_evasion, digits_arts(),
                    params={**FAST, "gate_epsilon": 16 / 255, "min_robust_accuracy": 0.95})  # fmt: skip
    assert bad["status"] == "failed"
    gate = next(m for m in bad["metrics"] if m["name"] == "robust_accuracy_inf")
    assert gate["passed"] is False and gate["n"] == 200 and gate["ci"][0] < gate["value"] < gate["ci"][1]
    assert bad["evidence"]["robust accuracy by class at the gate epsilon"]["total_rows"] == 10
    dist = bad["evidence"]["smallest successful epsilon"]["rows"]
    assert sum(r[1] for r in dist) == 200


def test_conservative_gate_uses_lower_bound() -> None:
    arts = cancer_arts()
    base = {"norms": ["inf"], "steps": 10, "restarts": 2, "gate_epsilon": 0.02}
    point = run_check(white_box_evasion, arts, params=base)
    value = next(m for m in point["metrics"] if m["name"] == "robust_accuracy_inf")
    mid = (value["value"] + value["ci"][0]) / 2  # between the lower bound and the estimate
    assert (
        run_check(white_box_evasion, arts, params={**base, "min_robust_accuracy": mid})["status"] == "passed"
    )
    cons = run_check(
        white_box_evasion, arts, params={**base, "min_robust_accuracy": mid, "conservative": True}
    )
    assert cons["status"] == "failed"


def test_binary_margin_loss_and_l2() -> None:
    rec = run_check(white_box_evasion, cancer_arts(),
                    params={"losses": ["margin"], "restarts": 1, "steps": 10, "epsilons": [0.0, 0.1]})  # fmt: skip
    assert rec["status"] in ("passed", "failed"), rec["error"]
    assert table(rec, "inf", "pgd")[0.1][4] < rec["metrics"][0]["value"] - 0.2
    assert table(rec, "l2", "pgd")[max(table(rec, "l2", "pgd"))][4] < rec["metrics"][0]["value"]


class OnlyFeature(nn.Module):
    """A model that looks at one input column only."""

    def __init__(self, j: int, threshold: float) -> None:
        super().__init__()
        self.j, self.t = j, threshold
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-5.0], [5.0]]))
            self.head.bias.copy_(torch.tensor([5.0 * threshold, -5.0 * threshold]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x[:, self.j : self.j + 1])


def test_immutable_and_categorical_features_are_not_perturbed() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int) -> pd.DataFrame:
        age = rng.uniform(20, 70, n)
        return pd.DataFrame({"age": age, "income": rng.normal(50, 10, n), "region": rng.choice(["n", "s"], n),
                             "flag": rng.integers(0, 2, n).astype(float), "y": (age > 45).astype(int)})  # fmt: skip

    train, test = frame(300), frame(200)
    spec = {"model": {"builtin": "mlp", "input": {"kind": "tabular", "immutable": ["age"]}}}
    params = {"epsilons": [0.0, 1.0], "gate_epsilon": 1.0, "norms": ["inf", "l2"], "steps": 10, "restarts": 2}
    # The model decides on age only: age is immutable, so even a whole-range attack changes nothing.
    arts = make_artifacts({"train": train, "test": test}, label="y", model=OnlyFeature(0, 45.0), spec=spec)
    rec = run_check(white_box_evasion, arts, params=params)
    assert rec["metrics"][1]["value"] == rec["metrics"][0]["value"] > 0.95
    frozen = rec["findings"][-1]["message"]
    assert (
        "age (immutable)" in frozen
        and "region (categorical)" in frozen
        and "flag (binary / one-hot)" in frozen
    )
    # The same model on a mutable column is broken; the categorical code (column 2) is never moved.
    spec_free = {"model": {"builtin": "mlp", "input": {"kind": "tabular"}}}
    arts = make_artifacts(
        {"train": train, "test": test}, label="y", model=OnlyFeature(0, 45.0), spec=spec_free
    )
    assert run_check(white_box_evasion, arts, params=params)["metrics"][1]["value"] < 0.05
    # Immutable values beyond the train range (test ages 70-100, train 20-70) stay outside the
    # attack box; clipping them to it would move age by up to 30 years and "break" the model.
    old = frame(200).assign(age=lambda d: rng.uniform(76, 100, len(d)))
    old = pd.concat([old, frame(100)], ignore_index=True).assign(y=lambda d: (d["age"] > 75).astype(int))
    arts = make_artifacts({"train": train, "test": old}, label="y", model=OnlyFeature(0, 75.0), spec=spec)
    rec = run_check(white_box_evasion, arts, params={**params, "epsilons": [0.0, 0.1], "gate_epsilon": 0.1})
    assert rec["metrics"][0]["value"] == 1.0
    assert all(m["value"] == 1.0 for m in rec["metrics"] if m["name"].startswith("robust_accuracy")), rec[
        "metrics"
    ]
    test2 = test.assign(y=(test["region"] == "s").astype(int))
    train2 = train.assign(y=(train["region"] == "s").astype(int))
    arts = make_artifacts(
        {"train": train2, "test": test2}, label="y", model=OnlyFeature(2, 0.5), spec=spec_free
    )
    rec = run_check(white_box_evasion, arts, params=params)
    assert rec["metrics"][1]["value"] == rec["metrics"][0]["value"] == 1.0


def test_deterministic_and_contract() -> None:
    params = {**FAST, "max_samples": 60}
    a = run_check(white_box_evasion, digits_arts(), params=params, seed=3)
    b = run_check(white_box_evasion, digits_arts(), params=params, seed=3)
    assert (
        a["metrics"] == b["metrics"]
        and a["evidence"]["smallest successful epsilon"] == b["evidence"]["smallest successful epsilon"]
    )
    check_contract(white_box_evasion)
    check_contract(black_box_and_masking)


def test_not_applicable_without_model() -> None:
    m, xtr, ytr, xte, yte = digits_cnn()
    arts = make_artifacts({"train": (xtr, ytr), "test": (xte, yte)})
    assert run_check(white_box_evasion, arts)["status"] == "not_applicable"


class ZeroGradient(nn.Module):
    """Rounds inputs to the digits' own 1/16 grid: identical predictions on clean data, zero gradients."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 16) / 16)


BB_FAST = {"max_samples": 120, "steps": 10, "restarts": 2, "n_blackbox": 12, "max_iter": 5, "max_eval": 100,
           "init_eval": 20, "unbounded_steps": 30}  # fmt: skip


def test_black_box_no_masking_on_a_plain_cnn() -> None:
    rec = run_check(black_box_and_masking, digits_arts(), params=BB_FAST)
    assert rec["status"] == "passed", (rec["summary"], rec["error"])
    names = {m["name"]: m for m in rec["metrics"]}
    assert names["gradient_masking_signs"]["value"] == 0 and names["unbounded_accuracy"]["value"] <= 0.05
    assert names["blackbox_robust_accuracy"]["n"] == 12
    rows = rec["evidence"]["black-box vs white-box robust accuracy (same rows)"]["rows"]
    bb = [r[2] for r in rows]
    assert bb == sorted(bb, reverse=True)  # minimal perturbations: monotone by construction


def test_black_box_flags_gradient_masking() -> None:
    masked = ZeroGradient(digits_cnn()[0])
    rec = run_check(black_box_and_masking, digits_arts(masked), params=BB_FAST)
    assert rec["status"] == "failed"
    keys = {f["key"] for f in rec["findings"]}
    assert "unbounded" in keys
    # the white-box attacks are blind (accuracy stays at clean accuracy) ...
    rows = rec["evidence"]["black-box vs white-box robust accuracy (same rows)"]["rows"]
    assert rows[-1][1] == rows[0][1]
    # ... while AK-ADV-001 alone would have reported a perfectly robust model
    wb = run_check(white_box_evasion, digits_arts(masked), params={**FAST, "gate_epsilon": 16 / 255})
    assert wb["status"] == "passed"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_agrees_with_cpu() -> None:
    import copy

    from auditkit.checks.corruption import natural_corruptions

    from auditkit.inputs.model import wrap

    m, xtr, ytr, xte, yte = digits_cnn()
    gpu = wrap(copy.deepcopy(m), device="cuda", input_kind="image", input_shape=(1, 8, 8))
    arts_gpu = make_artifacts({"train": (xtr, ytr), "test": (xte, yte)}, model=gpu, spec=IMG_SPEC)
    params = {**FAST, "norms": ["inf", "l2"]}
    on_gpu = run_check(white_box_evasion, arts_gpu, params=params)
    on_cpu = run_check(white_box_evasion, digits_arts(), params=params)
    assert on_gpu["status"] == on_cpu["status"], on_gpu["error"]
    for a, b in zip(on_gpu["metrics"], on_cpu["metrics"], strict=True):
        assert abs(a["value"] - b["value"]) <= 3 / a["n"]
    assert run_check(natural_corruptions, arts_gpu)["status"] != "error"
    assert run_check(black_box_and_masking, arts_gpu, params=BB_FAST)["status"] != "error"


# --- the AutoAttack-style ensemble (attacks: standard) ------------------------------------------
TINY_STANDARD = {"attacks": "standard", "apgd_steps": 10, "apgd_targets": 2, "square_queries": 60,
                 "norms": ["inf"], "max_samples": 40}  # fmt: skip


def _acc(rec: dict, attack: str, norm: str = "inf") -> list[float]:
    rows = rec["evidence"]["robust accuracy by attack and epsilon"]["rows"]
    return [r[4] for r in rows if r[0] == norm and r[1] == attack]


class Linear2(nn.Module):
    """A fixed linear two-class model: its exact L∞ robust accuracy is known in closed form."""

    def __init__(self, w: np.ndarray, b: float) -> None:
        super().__init__()
        self.lin = nn.Linear(len(w), 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor(np.stack([-w / 2, w / 2]), dtype=torch.float32))
            self.lin.bias.copy_(torch.tensor([-b / 2, b / 2], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_every_member_reaches_the_exact_robust_accuracy_of_a_linear_binary_model() -> None:
    """Logit difference w·x + b on features whose train range is [0, 1] (so z = x): a point stays
    correct under L∞ radius ε exactly when its margin exceeds ε·‖w_mutable‖₁ (rows well inside the
    box, one immutable feature). APGD-CE, APGD-T (margin loss: two classes) and Square find it."""
    rng = np.random.default_rng(0)
    w = np.array([3.0, -2.0, 1.5, 4.0, -1.0])
    cols = [f"f{i}" for i in range(5)]
    train = pd.DataFrame(np.r_[np.zeros((1, 5)), np.ones((1, 5)), rng.uniform(0, 1, (98, 5))], columns=cols)
    test = pd.DataFrame(rng.uniform(0.3, 0.7, (60, 5)), columns=cols)
    b = -float(np.median(test.to_numpy() @ w))  # half of the test rows in each class
    for frame in (train, test):
        frame["y"] = (frame[cols].to_numpy() @ w + b > 0).astype(int)
    spec = {"model": {"builtin": "mlp", "input": {"kind": "tabular", "immutable": ["f3"]}}}
    arts = make_artifacts({"train": train, "test": test}, label="y", model=Linear2(w, b), spec=spec)
    grid = [0.0, 0.02, 0.05, 0.1]
    rec = run_check(white_box_evasion, arts, params={**TINY_STANDARD, "epsilons": grid, "gate_epsilon": 0.05,
                                                     "max_samples": 100, "square_queries": 300})  # fmt: skip
    margin = np.abs(test[cols].to_numpy() @ w + b)
    l1 = np.abs(w).sum() - abs(w[3])
    exact = [float(np.mean(margin > e * l1)) for e in grid]
    for attack in ("apgd-ce", "apgd-t", "fab-t", "square", "worst case"):
        assert _acc(rec, attack) == pytest.approx(exact, abs=1e-4), attack  # (rounded to 4 places)


def test_standard_ensemble_invariants_on_the_binary_tabular_mlp() -> None:
    rec = run_check(white_box_evasion, cancer_arts(),
                    params={**TINY_STANDARD, "epsilons": [0.0, 0.02, 0.05, 0.1]})  # fmt: skip
    assert rec["status"] in ("passed", "failed"), rec["error"]
    worst = _acc(rec, "worst case")
    assert worst[0] == rec["metrics"][0]["value"]  # ε = 0 is clean accuracy
    assert all(a >= b for a, b in zip(worst, worst[1:], strict=False))  # never rises with ε
    for attack in ("apgd-ce", "apgd-t", "fab-t", "square"):
        assert all(w <= a for w, a in zip(worst, _acc(rec, attack), strict=True)), attack  # never weaker
    assert {r[1] for r in rec["evidence"]["robust accuracy by attack and epsilon"]["rows"]} == {
        "apgd-ce", "apgd-t", "fab-t", "square", "worst case"}  # fmt: skip
    rows = rec["evidence"]["robust accuracy by attack and epsilon"]["rows"]
    assert all(r[5] <= r[4] <= r[6] for r in rows)  # Wilson interval around every estimate
    again = run_check(
        white_box_evasion, cancer_arts(), params={**TINY_STANDARD, "epsilons": [0.0, 0.02, 0.05, 0.1]}
    )
    assert (
        again["evidence"]["robust accuracy by attack and epsilon"]
        == rec["evidence"]["robust accuracy by attack and epsilon"]
    )  # fmt: skip  (seeded: the same numbers twice)


def test_standard_ensemble_respects_immutable_features_and_the_box() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int, lo: float = 20, hi: float = 70) -> pd.DataFrame:
        age = rng.uniform(lo, hi, n)
        return pd.DataFrame({"age": age, "income": rng.normal(50, 10, n), "y": (age > 45).astype(int)})

    train = frame(300)
    spec = {"model": {"builtin": "mlp", "input": {"kind": "tabular", "immutable": ["age"]}}}
    params = {**TINY_STANDARD, "epsilons": [0.0, 1.0], "gate_epsilon": 1.0}
    arts = make_artifacts(
        {"train": train, "test": frame(60)}, label="y", model=OnlyFeature(0, 45.0), spec=spec
    )
    rec = run_check(white_box_evasion, arts, params=params)
    assert _acc(rec, "worst case") == [1.0, 1.0]  # a whole-range attack cannot move an immutable age
    free = {"model": {"builtin": "mlp", "input": {"kind": "tabular"}}}
    arts = make_artifacts(
        {"train": train, "test": frame(60)}, label="y", model=OnlyFeature(0, 45.0), spec=free
    )
    assert run_check(white_box_evasion, arts, params=params)["metrics"][1]["value"] < 0.05
    # immutable ages beyond the train range stay where they are (no clip to the box)
    old = frame(60, 76, 100).assign(y=1)
    arts = make_artifacts({"train": train, "test": old}, label="y", model=OnlyFeature(0, 75.0), spec=spec)
    rec = run_check(white_box_evasion, arts, params={**params, "epsilons": [0.0, 0.1], "gate_epsilon": 0.1})
    assert _acc(rec, "worst case") == [1.0, 1.0]


def test_standard_ensemble_not_weaker_than_pgd20_on_the_digits_cnn() -> None:
    params = {"norms": ["inf"], "max_samples": 40, "epsilons": [0.0, 8 / 255, 16 / 255, 32 / 255],
              "gate_epsilon": 16 / 255}  # fmt: skip
    pgd = run_check(white_box_evasion, digits_arts(), params={**params, "steps": 20, "restarts": 1,
                                                              "losses": ["ce"]})  # fmt: skip
    std = run_check(white_box_evasion, digits_arts(), params={**TINY_STANDARD, **params, "apgd_steps": 20})
    for e, a, p in zip(params["epsilons"], _acc(std, "worst case"), _acc(pgd, "pgd"), strict=True):
        assert a <= p, (e, a, p)
    assert _acc(std, "worst case")[-1] < _acc(std, "worst case")[0]  # the largest radius breaks some


def test_dlr_loss_and_attack_list() -> None:
    from auditkit.checks._attacks import dlr_loss, resolve_attacks

    z = torch.tensor([[3.0, 1.0, 0.5, -1.0, 2.0], [0.0, 4.0, 1.0, 1.0, -2.0]])
    y = torch.tensor([0, 1])
    srt = z.sort(1, descending=True).values
    expected = -(z[[0, 1], y] - torch.tensor([2.0, 1.0])) / (srt[:, 0] - srt[:, 2])
    assert torch.allclose(dlr_loss(z, y), expected)
    t = torch.tensor([4, 2])
    exp_t = -(z[[0, 1], y] - z[[0, 1], t]) / (srt[:, 0] - 0.5 * (srt[:, 2] + srt[:, 3]))
    assert torch.allclose(dlr_loss(z, y, t), exp_t)
    two = z[:, :2]  # binary: the margin, not a ratio of a missing third logit
    assert torch.allclose(dlr_loss(two, y), two[[0, 1], 1 - y] - two[[0, 1], y])
    assert resolve_attacks("fast") == ["fgsm", "pgd"] and resolve_attacks(["square", "pgd"]) == [
        "square",
        "pgd",
    ]
    rec = run_check(white_box_evasion, cancer_arts(), params={"attacks": ["bogus"]})
    assert rec["status"] == "error" and "attacks" in rec["error"]["message"]
    rec = run_check(
        white_box_evasion, cancer_arts(), params={**FAST, "attacks": ["apgd-ce"], "apgd_steps": 5}
    )
    assert {r[1] for r in rec["evidence"]["robust accuracy by attack and epsilon"]["rows"]} == {
        "apgd-ce",
        "worst case",
    }


def test_fab_finds_the_minimal_linf_distance_of_a_linear_model() -> None:
    """The smallest L∞ perturbation that flips w·z + b is |w·z + b| / ‖w_mutable‖₁ (inside the box);
    FAB's answer can only be above it (it is a real adversarial point) and should be close."""
    from auditkit.checks._attacks import fab_linf

    rng = np.random.default_rng(1)
    w = np.array([3.0, -2.0, 1.5, 4.0, -1.0])
    z = rng.uniform(0.4, 0.6, (50, 5)).astype(np.float32)
    b = -float(np.median(z @ w))
    model = Linear2(w, b)
    y = torch.from_numpy((z @ w + b > 0).astype(np.int64))
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0])
    found = fab_linf(model, torch.from_numpy(z), y, mask, 1 - y, steps=20).numpy()
    exact = np.abs(z @ w + b) / (np.abs(w).sum() - abs(w[3]))
    assert np.all(found >= exact - 1e-5)
    assert np.all(found <= exact * 1.05 + 1e-4)


def test_standard_ensemble_on_colour_images_at_cifar_resolution() -> None:
    """3×32×32 inputs (Square's windows per channel, APGD and FAB on 4-D tensors): runs, and the
    invariants hold. A small CNN trained for a few steps on two colour classes."""
    rng = np.random.default_rng(0)
    n = 64
    y = rng.integers(0, 2, n)
    x = np.clip(rng.normal(0.5, 0.15, (n, 3, 32, 32)) + (y[:, None, None, None] * 0.2 - 0.1)
                * np.array([1.0, 0.0, -1.0])[None, :, None, None], 0, 1).astype(np.float32)  # fmt: skip
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(128, 2))  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    net.eval()
    arts = make_artifacts({"train": (x, y), "test": (x, y)}, model=net, spec=IMG_SPEC)
    grid = [0.0, 2 / 255, 8 / 255, 32 / 255]
    rec = run_check(
        white_box_evasion, arts, params={**TINY_STANDARD, "epsilons": grid, "gate_epsilon": 8 / 255}
    )
    assert rec["status"] in ("passed", "failed"), rec["error"]
    worst = _acc(rec, "worst case")
    assert worst[0] > 0.8 and all(a >= b for a, b in zip(worst, worst[1:], strict=False))
    for attack in ("apgd-ce", "apgd-t", "fab-t", "square"):
        assert all(w <= a for w, a in zip(worst, _acc(rec, attack), strict=True)), attack
    assert worst[-1] < worst[0]  # 32/255 breaks some of them


def _preflight(spec: dict[str, Any], columns: list[str], params: dict[str, Any] | None = None) -> Any:
    from auditkit.engine.check import Preflight
    from auditkit.spec.schema import AuditSpec

    return Preflight(
        params=params or {}, spec=AuditSpec.model_validate(spec), base=None, columns=lambda _s: list(columns),
        frame=lambda _s: None, splits=("train", "test"),
    )  # fmt: skip


def test_immutable_features_preflight_names_the_typo_and_its_closest_feature() -> None:
    from auditkit.checks._robust_preflight import immutable_features_preflight

    from auditkit import InputError

    base: dict[str, Any] = {
        "name": "t",
        "data": {"label": "y", "splits": {"train": "a.csv", "test": "b.csv"}},
    }
    cols = ["age", "income", "y"]
    good = {**base, "model": {"builtin": "mlp", "input": {"kind": "tabular", "immutable": ["age"]}}}
    immutable_features_preflight(_preflight(good, cols))  # a feature: accepted
    bad = {**base, "model": {"builtin": "mlp", "input": {"kind": "tabular", "immutable": ["agee"]}}}
    with pytest.raises(
        InputError, match=r"model.input.immutable: 'agee' is not a feature; did you mean 'age'\?"
    ):
        immutable_features_preflight(_preflight(bad, cols))
    label = {**base, "model": {"builtin": "mlp", "input": {"kind": "tabular", "immutable": ["y"]}}}
    with pytest.raises(InputError, match="'y' is not a feature"):  # the label is no feature
        immutable_features_preflight(_preflight(label, cols))
    immutable_features_preflight(
        _preflight(bad, cols, {"robustness": False})
    )  # AK-DEPLOY-001 without attacks
    listed = {**bad, "data": {**base["data"], "features": ["age", "income"]}}
    with pytest.raises(InputError, match="'agee' is not a feature"):
        immutable_features_preflight(_preflight(listed, cols))


def test_attack_checks_declare_the_immutable_preflight() -> None:
    from auditkit.checks._robust_preflight import immutable_features_preflight
    from auditkit.checks.deployment import _deployment_preflight, deployment_parity

    from auditkit import check_info

    for fn in (white_box_evasion, black_box_and_masking):
        info = check_info(fn)
        assert info is not None and info.preflight is immutable_features_preflight
    info = check_info(deployment_parity)  # its hook checks immutable features and data.slices
    assert info is not None and info.preflight is _deployment_preflight


def test_black_box_shards_identical_inline_two_workers_and_ray(ray_cluster: object) -> None:
    """HopSkipJump runs one task per sample on the compute engine: the same record whatever ran it."""
    from auditkit.engine import compute

    def record(executor: compute.Executor) -> dict:  # type: ignore[type-arg]
        with compute.use(executor):
            rec = run_check(black_box_and_masking, digits_arts(), params=BB_FAST)
        return {k: v for k, v in rec.items() if k != "duration_s"}

    inline = record(compute.InlineExecutor())
    assert inline["status"] != "error", inline["error"]
    assert record(compute.LocalPool(2)) == inline
    assert record(compute.make_executor(compute.ComputeConfig(kind="ray"))) == inline


# Both norms, random restarts (restart 3 starts at a random point), and a chained ensemble member
# (Square, seeded per shard): every kind of white-box shard.
WB_SHARDS = {"steps": 3, "restarts": 3, "norms": ["inf", "l2"], "max_samples": 100, "attacks": ["fgsm", "pgd", "square"],
             "square_queries": 30}  # fmt: skip


def test_white_box_shards_identical_inline_two_workers_and_ray(ray_cluster: object) -> None:
    """AK-ADV-001 runs (norm × radius × row block) shards on the compute engine: the same record
    whatever ran them, and the same as the white-box run without a check context (inline_map)."""
    from auditkit.checks._attacks import WB_ROWS, attack_inputs, white_box

    from auditkit.engine import compute
    from auditkit.engine.context import RunContext
    from auditkit.engine.registry import build_registry

    def record(executor: compute.Executor) -> dict:  # type: ignore[type-arg]
        with compute.use(executor):
            rec = run_check(white_box_evasion, digits_arts(), params=WB_SHARDS)
        return {k: v for k, v in rec.items() if k != "duration_s"}

    inline = record(compute.InlineExecutor())
    assert inline["status"] != "error", inline["error"]
    assert record(compute.LocalPool(2)) == inline
    assert record(compute.make_executor(compute.ComputeConfig(kind="ray"))) == inline
    # Shards are a fixed partition: row blocks of WB_ROWS, whatever runs them.
    arts = digits_arts()
    ctx = RunContext(build_registry(autoload=False).checks["AK-ADV-001"], arts, run_seed=0)
    adapter, space = attack_inputs(ctx, "test", 100, False, 5)
    seen: list[tuple] = []  # type: ignore[type-arg]

    def spy(fn, items, shared):  # type: ignore[no-untyped-def]
        seen.extend(items)
        return [fn(shared, it, 0) for it in items]

    kw = dict(grid=[0.0, 2 / 255, 8 / 255], norms=["inf"], steps=2, restarts=1, losses=["ce"], step_ratio=2.5,
              l2_scale=0.25, batch_size=64, seed=5)  # fmt: skip
    a, b = white_box(adapter, space, **kw), white_box(adapter, space, **kw, mapper=spy)  # type: ignore[arg-type]
    assert all((a.correct["inf"][k] == b.correct["inf"][k]).all() for k in ("fgsm", "pgd"))
    assert [s[0] for s in seen] == ["radius", "radius"] and all(s[4] - s[3] <= WB_ROWS for s in seen)
