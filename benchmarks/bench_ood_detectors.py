"""Benchmark: AK-OOD-001's detectors against pytorch-ood's on the same model and the same scores.

The digits CNN of the test suite (tests/checks/_robust_fixtures.py) against two real OOD sets:
200 ``lfw_subset`` faces resized to 8×8 (far-OOD) and 1,000 MNIST digits downsampled to 8×8
(near-OOD). For every detector the ID scores are the digits test split's, fitted on the digits
train split with the check's own default hyperparameters; pytorch-ood gets the same
penultimate features, the same head weights and the same hyperparameters. Printed: AUROC from
auditkit and from pytorch-ood, their difference, and the Spearman correlation of the two score
vectors. Also: the check end to end with all 12 detectors and its wall time.

pytorch-ood (and torchvision, which its package ``__init__`` imports for its model zoo) is NOT an
auditkit dependency: ``pip install pytorch-ood``. When torchvision cannot load (CPU torch with
the PyPI torchvision wheel), its detector modules are imported without that ``__init__``.

Run: ``.venv/bin/python benchmarks/bench_ood_detectors.py``

Measured 2026-12-03 on the shared 2-core machine (load 4–8), pytorch-ood 0.4.0: every detector's
AUROC equal to pytorch-ood's within 1e-4 (Spearman 1.000) on both OOD sets, except relative
Mahalanobis (faces 0.9061 vs 0.9066, MNIST 0.8622 vs 0.8620: pytorch-ood's background covariance
is a sum, not a mean). The table is in docs/ood.md. The check with all 12 detectors: 1.6–3.1 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "checks")]

import numpy as np  # noqa: E402


def import_pytorch_ood():  # type: ignore[no-untyped-def]
    """pytorch_ood.detector, or None when the package is not installed."""
    import importlib
    import importlib.util
    import types

    spec = importlib.util.find_spec("pytorch_ood")
    if spec is None:
        return None
    try:
        return importlib.import_module("pytorch_ood.detector")
    except Exception:  # torchvision missing or unloadable: skip the package __init__ (model zoo)
        for name in [m for m in sys.modules if m == "pytorch_ood" or m.startswith("pytorch_ood.")]:
            del sys.modules[name]
        pkg = types.ModuleType("pytorch_ood")
        pkg.__path__ = list(spec.submodule_search_locations or [])
        sys.modules["pytorch_ood"] = pkg
        return importlib.import_module("pytorch_ood.detector")


def reference_scores(det_mod, name: str, model, fitted, x_tr, z_tr, y_tr, x, z):  # type: ignore[no-untyped-def]
    """pytorch-ood's OOD score (higher = more OOD) for one detector, or None if it has none."""
    import torch

    zt, z_trt, yt = torch.from_numpy(z), torch.from_numpy(z_tr), torch.from_numpy(y_tr)
    layer = model.embedding_layer
    w, b = layer.weight.detach(), layer.bias.detach()
    h = fitted.fitted
    if name == "gen":
        return det_mod.GEN.score(layer(zt), gamma=h["gen"]["gamma"], M=h["gen"]["top_m"]).detach().numpy()
    if name == "vim":
        d = det_mod.ViM(None, d=fitted.vim.dim, w=w, b=b).fit_features(z_trt, yt)
        return d.predict_features(zt).numpy()
    if name == "react":
        d = det_mod.ReAct(None, head=layer, percentile=h["react"]["percentile"])
        d.fit_feature_maps(z_trt, yt)
        return d.predict_feature_maps(zt).numpy()
    if name == "ash":  # pytorch-ood's ASH takes 4-D feature maps: (B, D, 1, 1)
        d = det_mod.ASH(
            None, head=lambda t: layer(t.flatten(1)), variant="ash-s", percentile=h["ash"]["percentile"]
        )
        return d.predict_feature_maps(zt[:, :, None, None]).numpy()
    if name == "dice":
        d = det_mod.DICE(None, w=w, b=b, p=h["dice"]["sparsity"]).fit_features(z_trt, yt)
        return d.predict_features(zt).numpy()
    if name == "relative_mahalanobis":
        d = det_mod.RMD(None).fit_features(z_trt, yt)
        return d.predict_features(zt).numpy()
    if name == "mahalanobis":
        d = det_mod.Mahalanobis(None).fit_features(z_trt, yt)
        return d.predict_features(zt).numpy()
    if name == "energy":
        return det_mod.EnergyBased.score(layer(zt)).detach().numpy()
    if name == "odin":
        o = fitted.odin
        d = det_mod.ODIN(model.module, eps=o.eps, temperature=o.temperature)
        return d.predict(torch.from_numpy(x)).detach().numpy()
    return None


def main() -> None:
    import torch
    from _robust_fixtures import digits_cnn
    from auditkit.checks._ood_detectors import ALL_DETECTORS
    from auditkit.checks.ood import ood_detection
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score
    from test_ood_real import faces_8x8, mnist_8x8

    from auditkit.testing import make_artifacts, run_check

    torch.set_num_threads(1)
    det_mod = import_pytorch_ood()
    module, xtr, ytr, xte, yte = digits_cnn()
    spec = {"model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}}
    for label, ood in (("faces (far)", faces_8x8()), ("MNIST 8x8 (near)", mnist_8x8()[0])):
        arts = make_artifacts({"train": (xtr, ytr), "test": (xte, yte), "ood": (ood, np.zeros(len(ood), int))},
                              model=module, spec=spec)  # fmt: skip
        t = time.perf_counter()
        rec = run_check(ood_detection, arts, params={"detectors": list(ALL_DETECTORS), "gate_detector": None,
                                                     "n_boot": 200})  # fmt: skip
        wall = time.perf_counter() - t
        print(
            f"\n== digits CNN vs {label}: AK-OOD-001 with all {len(ALL_DETECTORS)} detectors in {wall:.1f} s"
        )
        sel = rec["evidence"]["detector selection"]
        print("selection (" + sel["note"] + "):")
        for r in sel["rows"]:
            print("  ", r)
        if det_mod is None:
            print("pytorch-ood not installed: cross-check skipped")
            continue
        # the same fit as the check (train minus its seeded holdout is the check's; here: all train,
        # on both sides, so that the two implementations see identical data)
        from auditkit.checks._ood_detectors import (
            ODIN,
            Head,
            Mahalanobis,
            RelativeMahalanobis,
            ViM,
            _energy,
            ash_score,
            dice_head,
            gen_score,
            logit_scores,
            react_score,
            react_threshold,
        )  # fmt: skip

        model = arts.model()
        z_tr, z_te, z_o = (model.embeddings(a).astype(np.float32) for a in (xtr, xte, ood))
        l_te, l_o = model.logits(xte), model.logits(ood)
        head = Head.of(model, z_tr, model.logits(xtr))
        assert head is not None

        class F:  # the fitted values the reference gets
            fitted = {"gen": {"gamma": 0.1, "top_m": 100}, "react": {"percentile": 0.9}, "ash": {"percentile": 0.9},
                      "dice": {"sparsity": 0.9}}  # fmt: skip
            vim = ViM.fit(z_tr, head)
            odin = ODIN(model, 1000.0, 0.0, np.ones(64))

        F.odin.fit_eps(xtr[:500], [0.0, 0.0005, 0.001, 0.0014, 0.002, 0.003, 0.005, 0.01, 0.02])
        F.odin.unit = np.ones(int(np.prod(xtr.shape[1:])))
        maha, rmd, clip = (
            Mahalanobis.fit(z_tr, ytr),
            RelativeMahalanobis.fit(z_tr, ytr),
            react_threshold(z_tr, 0.9),
        )
        dice = dice_head(z_tr, head, 0.9)

        def scores(z, logits, inputs, head=head, clip=clip, dice=dice, maha=maha, rmd=rmd):  # type: ignore[no-untyped-def]
            return {
                "energy": logit_scores(logits)["energy"], "gen": gen_score(logits), "vim": F.vim.score(z, logits),
                "react": react_score(z, head, clip), "ash": ash_score(z, head, 0.9), "dice": _energy(dice(z)),
                "mahalanobis": maha.score(z), "relative_mahalanobis": rmd.score(z), "odin": F.odin.score(inputs),
            }  # fmt: skip

        ours, ours_o = scores(z_te, l_te, xte), scores(z_o, l_o, ood)
        print(f"cross-check vs pytorch-ood (same features, head and hyperparameters; ODIN eps={F.odin.eps}):")
        print(f"  {'detector':22s} {'auditkit':>9s} {'pytorch-ood':>11s} {'diff':>8s} {'spearman':>9s}")
        y = np.r_[np.zeros(len(xte)), np.ones(len(ood))]
        with torch.inference_mode(False):
            for name in ours:
                ref_in = reference_scores(det_mod, name, model, F, xtr, z_tr, ytr, xte, z_te)
                ref_out = reference_scores(det_mod, name, model, F, xtr, z_tr, ytr, ood, z_o)
                a = roc_auc_score(y, np.r_[ours[name], ours_o[name]])
                r = roc_auc_score(y, np.r_[ref_in, ref_out])
                rho = spearmanr(np.r_[ours[name], ours_o[name]], np.r_[ref_in, ref_out]).statistic
                print(f"  {name:22s} {a:9.4f} {r:11.4f} {a - r:+8.4f} {rho:9.4f}")


if __name__ == "__main__":
    main()
