"""No verdict on too few rows: a headline metric on fewer than ``min_rows`` rows is not a pass.

Before this rule AK-PERF-001 passed on a one-row test split ("95% CI 1.0000–1.0000, n=1").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from auditkit.checks.adversarial import white_box_evasion
from auditkit.checks.balance import label_shift
from auditkit.checks.corruption import natural_corruptions
from auditkit.checks.ood import ood_detection, shift_behaviour
from auditkit.checks.performance import calibration, generalisation_gap, heldout_performance

from auditkit import DEFAULT_MIN_ROWS
from auditkit.engine.registry import build_registry
from auditkit.engine.runner import Selection, plan
from auditkit.testing import make_artifacts, run_check


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    lin = torch.nn.Linear(2, 2)
    with torch.no_grad():  # predicts y = [a + b > 0] exactly: every verdict on it would be a pass
        lin.weight.copy_(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
        lin.bias.zero_()
    return lin


def _split(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x.sum(1) > 0).astype(int)})


def _arts(n_test: int) -> Any:
    data = {"train": _split(200, 0), "test": _split(n_test, 1)}
    return make_artifacts(data, label="y", model=_model())


FAST = {"steps": 2, "restarts": 1, "norms": ["inf"], "losses": ["ce"], "epsilons": [0.05]}
CHECKS = [
    (heldout_performance, {"n_boot": 50}),
    (generalisation_gap, {}),
    (calibration, {"n_boot": 50}),
    (label_shift, {"n_boot": 50}),
    (ood_detection, {"n_boot": 20, "detectors": ["msp", "energy"], "gate_detector": "msp"}),
    (shift_behaviour, {"n_boot": 20, "detectors": ["msp"], "severities": [2]}),
    (white_box_evasion, FAST),
    (natural_corruptions, {"severities": [1]}),
]


@pytest.mark.parametrize(("fn", "params"), CHECKS, ids=[f.__name__ for f, _ in CHECKS])
def test_too_few_rows_is_not_applicable_never_a_pass(fn: Any, params: dict[str, Any]) -> None:
    one = run_check(fn, _arts(1), params=params)
    assert one["status"] == "not_applicable", (one["status"], one["summary"])
    assert "too few rows" in one["skip_reason"] and "min_rows" in one["skip_reason"]
    just_under = run_check(fn, _arts(DEFAULT_MIN_ROWS - 1), params=params)
    assert just_under["status"] == "not_applicable"
    enough = run_check(fn, _arts(80), params=params)
    assert enough["status"] in ("passed", "failed"), enough["error"] or enough["skip_reason"]
    # the threshold is a declared parameter: lowered, the small split is judged
    lowered = run_check(fn, _arts(DEFAULT_MIN_ROWS - 1), params={**params, "min_rows": 10})
    assert lowered["status"] in ("passed", "failed"), lowered["error"] or lowered["skip_reason"]


def test_checks_min_rows_sets_every_row_minimum_and_a_check_param_wins() -> None:
    registry = build_registry(autoload=False)
    sel = Selection(min_rows=5, params={"AK-PERF-003": {"min_rows": 99}})
    planned = {p.info.id: p.params for p in plan(registry, sel)}
    assert planned["AK-PERF-001"]["min_rows"] == 5
    assert planned["AK-PERF-004"]["min_slice_size"] == 5
    assert planned["AK-FAIR-001"]["min_group_size"] == 5
    assert planned["AK-PERF-003"]["min_rows"] == 99
    default = {p.info.id: p.params for p in plan(registry, Selection())}
    assert default["AK-PERF-001"]["min_rows"] == DEFAULT_MIN_ROWS
