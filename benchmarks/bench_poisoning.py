"""Benchmark: how often AK-POIS-001 finds a backdoor, and how often it flags a clean model (issue 5).

Not a speed benchmark: a detection-rate study over model fits, because one fit (the test's) says
little about a screen whose decision rests on a permutation p-value.

For each seed, on sklearn digits (the tests' 70/30 split, 1,257 train / 540 test images):
- clean: the small CNN of the tests trained for ``--epochs`` (also 1 and 3 epochs: under-trained
  models were reported to raise false alarms) — a false alarm is any suspected class;
- backdoor: a 2×2 white patch on 10% of the training images of one class, relabelled to another
  class (pairs 3→8, 1→7, 5→2, 0→6), the same CNN trained on it — the screen should suspect the
  target class, find ≥ 80% of the poisoned rows and flag ≤ 5% of the clean rows.
Each line prints the attack success rate of the trigger on clean test images of the source class,
the suspected classes, and per relevant class the statistic and the permutation p-value.

Run: ``.venv/bin/python benchmarks/bench_poisoning.py [--seeds 0 1 2]`` (≈ 15 s a fit on 1 core)

Measured 2026-11-21 09:40 UTC on the project's 2-core VM (1 torch thread), check defaults (999
permutations, family-wise alpha 0.05 over 10 classes, ``min_statistic`` 3), ``--seeds 0 1 2 3 4 5 6 7``:
- clean models: 24 of 24 fits pass (epochs 1, 3, 12 × 8 seeds). Without the effect-size floor
  (``min_statistic`` 0, the earlier rule) 3 of 12 fits failed, always on class 3 (statistic
  2.2-2.5, p 0.001-0.004 unadjusted): class 3 of this split holds training images with no
  counterpart among the test 3s (the same comparison on raw pixels gives p = 0.025) and the
  model's features amplify it. Those classes are now an info finding.
- backdoors (trigger success 0.83-1.00): found in 5 of 8 fits — 3→8 (seeds 0, 4; statistic 3.4,
  3.8), 1→7 (seed 1; 4.5), 0→6 at 20% (seeds 3, 7; 7.4, 5.0) — with 96-100% of the poisoned rows
  listed and 0.0-0.8% of the clean rows; missed in 3 — 5→2 (seeds 2, 6; statistic 1.7, 1.9) and
  1→7 (seed 5; 2.1): their p-values (0.009-0.014) miss the Bonferroni bar as well, so the floor did
  not cause the misses. The spectral direction of those target classes is dominated by natural
  variation rather than by the trigger. With ~55 reference images per class the permutation
  p-value is also limited by how often a random re-split keeps every poisoned row on the train
  side; a larger reference split raises power.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "checks"))

from _robust_fixtures import digits_arrays, train_digits_cnn  # noqa: E402
from auditkit.checks.poisoning import poisoning_screen  # noqa: E402

from auditkit.testing import make_artifacts, run_check  # noqa: E402

SPEC = {"model": {"builtin": "cnn", "input": {"kind": "image", "range": [0, 1]}}}
PAIRS = [(3, 8, 0.1), (1, 7, 0.1), (5, 2, 0.1), (0, 6, 0.2)]


def screen(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> tuple[torch.nn.Module, dict, set[int]]:  # type: ignore[type-arg]
    """Train, screen; returns the model, the check record and the suspected row positions."""
    _, _, xte, yte = digits_arrays()
    model = train_digits_cnn(x, y, seed=seed, epochs=epochs)
    arts = make_artifacts({"train": (x, y), "test": (xte, yte)}, model=model, spec=SPEC)
    with tempfile.TemporaryDirectory() as tmp:
        rec = run_check(poisoning_screen, arts, workdir=Path(tmp))
        found = [json.loads(f.read_text())["by_class"] for f in Path(tmp).rglob("suspected_rows.json")]
    return model, rec, {int(i) for by_class in found for rows in by_class.values() for i in rows}


def line(rec: dict, classes: set[str]) -> str:  # type: ignore[type-arg]
    rows = rec["evidence"]["spectral screen by class"]["rows"]
    suspected = [r[0] for r in rows if r[-1]]
    detail = ", ".join(
        f"class {r[0]}: stat {r[3]:.2f} p {r[5]:.3g}" for r in rows if r[0] in classes or r[-1]
    )
    return f"suspected {suspected or 'none'} ({detail})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = digits_arrays()
    for seed in args.seeds:
        for epochs in sorted({1, 3, args.epochs}):
            _, rec, _ = screen(xtr, ytr, seed, epochs)
            print(
                f"clean    seed {seed} epochs {epochs:2d}: {rec['status']:6s} {line(rec, set())}", flush=True
            )
        src, tgt, rate = PAIRS[seed % len(PAIRS)]
        rng = np.random.default_rng(seed)
        cand = np.flatnonzero(ytr == src)
        poisoned = np.sort(rng.choice(cand, size=int(round(rate * len(cand))), replace=False))
        x, y = xtr.copy(), ytr.copy()
        x[poisoned, 0, 6:8, 6:8] = 1.0
        y[poisoned] = tgt
        model, rec, found = screen(x, y, seed, args.epochs)
        trig = xte[yte == src].copy()
        trig[:, 0, 6:8, 6:8] = 1.0
        with torch.no_grad():
            asr = float((model(torch.from_numpy(trig)).argmax(1).numpy() == tgt).mean())
        recall = len(found & set(poisoned.tolist())) / len(poisoned)
        false_share = len(found - set(poisoned.tolist())) / (len(y) - len(poisoned))
        print(f"backdoor seed {seed} {src}→{tgt} {rate:.0%}: trigger success {asr:.2f}; {rec['status']:6s} "
              f"{line(rec, {str(src), str(tgt)})}; rows found {recall:.0%}, clean rows flagged {false_share:.1%}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
