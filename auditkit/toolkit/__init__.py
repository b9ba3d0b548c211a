"""The toolkit a check may use, besides ``auditkit``'s public API (``check``, ``Metric``, ...).

Everything a built-in or plugin check needs from auditkit is importable from here, at no import
cost (names resolve lazily on first use)::

    from auditkit.toolkit import wilson, bootstrap_metrics, auc, row_hashes, lazy

- statistics: ``wilson``, ``newcombe_diff``, ``mean_ci``, ``bootstrap_ci``, ``bootstrap_indices``,
  ``bootstrap_metrics``, ``classification_metrics``, ``calibration_bins``, ``reliability_diagram``,
  ``describe_method``, ``metric_direction``, ``auc``, ``weighted_auc``;
- regression (``auditkit.toolkit.regression``): ``regression_metrics``, ``bootstrap_regression``,
  ``bootstrap_stat``, ``interval_coverage``, ``gaussian_pit``, ``gaussian_interval``, ``quantile_pit``,
  ``pinball_loss``, ``gaussian_crps``, ``pit_uniformity``, ``wasserstein``, ``wasserstein_ci``,
  ``tail_summary``, ``percentile_interval``, ``REGRESSION_METRICS``;
- confident learning: ``find_label_issues``, ``bootstrap_noise_rate``, ``PRUNE_METHODS``, ``RANKINGS``;
- the NIST AI RMF Core: ``rmf_subcategories``, ``rmf_is_organisational``, ``rmf_normalise_id``,
  ``rmf_validate_ids``, ``RMF_CITATION``;
- types a check's code may name: ``Dataset``, ``ModelAdapter``, ``Predictions``, ``TrainingRun``,
  ``Candidate``, ``Roles``;
- helpers: ``lazy`` (lazy import of a heavy library), ``default_threads``, ``derive_seed``,
  ``unsafe_row_condition``.

docs/ARCHITECTURE.md says what else a check may import (nothing of auditkit's engine); a test
enforces it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, typed, for mypy and editors; at run time they resolve lazily
    from auditkit.frameworks.rmf import CITATION as RMF_CITATION
    from auditkit.frameworks.rmf import is_organisational as rmf_is_organisational
    from auditkit.frameworks.rmf import normalise_id as rmf_normalise_id
    from auditkit.frameworks.rmf import subcategories as rmf_subcategories
    from auditkit.frameworks.rmf import validate_subcategory_ids as rmf_validate_ids
    from auditkit.inputs.artifacts import Predictions, Roles
    from auditkit.inputs.data import Dataset
    from auditkit.inputs.deployment import Candidate
    from auditkit.inputs.model import ModelAdapter
    from auditkit.inputs.training import TrainingRun, state_distance
    from auditkit.spec.expr import ColumnError, unsafe_row_condition
    from auditkit.toolkit.confident import PRUNE_METHODS, RANKINGS, bootstrap_noise_rate, find_label_issues
    from auditkit.toolkit.imports import lazy
    from auditkit.toolkit.regression import (
        REGRESSION_METRICS,
        bootstrap_regression,
        bootstrap_stat,
        gaussian_crps,
        gaussian_interval,
        gaussian_pit,
        interval_coverage,
        percentile_interval,
        pinball_loss,
        pit_uniformity,
        quantile_pit,
        regression_metrics,
        tail_summary,
        wasserstein,
        wasserstein_ci,
    )
    from auditkit.toolkit.seeds import derive_seed
    from auditkit.toolkit.stats import (
        CALIBRATION,
        METRICS,
        auc,
        bootstrap_ci,
        bootstrap_indices,
        bootstrap_metrics,
        calibration_bins,
        classification_metrics,
        describe_method,
        mean_ci,
        metric_direction,
        newcombe_diff,
        reliability_diagram,
        weighted_auc,
        wilson,
    )
    from auditkit.toolkit.threads import default_threads


_EXPORTS: dict[str, tuple[str, str]] = {
    **{
        name: ("auditkit.toolkit.stats", name)
        for name in (
            "wilson", "newcombe_diff", "mean_ci", "bootstrap_ci", "bootstrap_indices", "bootstrap_metrics",
            "classification_metrics", "calibration_bins", "reliability_diagram", "describe_method",
            "metric_direction", "auc", "weighted_auc", "METRICS", "CALIBRATION",
        )
    },
    **{
        name: ("auditkit.toolkit.confident", name)
        for name in ("find_label_issues", "bootstrap_noise_rate", "PRUNE_METHODS", "RANKINGS")
    },
    "rmf_subcategories": ("auditkit.frameworks.rmf", "subcategories"),
    "rmf_is_organisational": ("auditkit.frameworks.rmf", "is_organisational"),
    "rmf_normalise_id": ("auditkit.frameworks.rmf", "normalise_id"),
    "rmf_validate_ids": ("auditkit.frameworks.rmf", "validate_subcategory_ids"),
    "RMF_CITATION": ("auditkit.frameworks.rmf", "CITATION"),
    "Dataset": ("auditkit.inputs.data", "Dataset"),
    "ModelAdapter": ("auditkit.inputs.model", "ModelAdapter"),
    "Predictions": ("auditkit.inputs.artifacts", "Predictions"),
    "Roles": ("auditkit.inputs.artifacts", "Roles"),
    "TrainingRun": ("auditkit.inputs.training", "TrainingRun"),
    "Candidate": ("auditkit.inputs.deployment", "Candidate"),
    **{name: ("auditkit.toolkit.regression", name) for name in (
        'regression_metrics', 'bootstrap_regression', 'bootstrap_stat', 'interval_coverage', 'gaussian_pit', 'gaussian_interval', 'quantile_pit', 'pinball_loss', 'gaussian_crps', 'pit_uniformity', 'wasserstein', 'wasserstein_ci', 'tail_summary', 'REGRESSION_METRICS', 'percentile_interval'
    )},
    "lazy": ("auditkit.toolkit.imports", "lazy"),
    "default_threads": ("auditkit.toolkit.threads", "default_threads"),
    "derive_seed": ("auditkit.toolkit.seeds", "derive_seed"),
    "unsafe_row_condition": ("auditkit.spec.expr", "unsafe_row_condition"),
    "ColumnError": ("auditkit.spec.expr", "ColumnError"),
    "state_distance": ("auditkit.inputs.training", "state_distance"),
}  # fmt: skip

__all__ = [
    "ColumnError",
    "CALIBRATION",
    "Candidate",
    "Dataset",
    "METRICS",
    "ModelAdapter",
    "PRUNE_METHODS",
    "Predictions",
    "RANKINGS",
    "RMF_CITATION",
    "Roles",
    "TrainingRun",
    "auc",
    "bootstrap_ci",
    "bootstrap_indices",
    "bootstrap_metrics",
    "bootstrap_noise_rate",
    "calibration_bins",
    "classification_metrics",
    "default_threads",
    "derive_seed",
    "describe_method",
    "find_label_issues",
    "lazy",
    "mean_ci",
    "metric_direction",
    "newcombe_diff",
    "reliability_diagram",
    "rmf_is_organisational",
    "rmf_normalise_id",
    "rmf_subcategories",
    "rmf_validate_ids",
    "unsafe_row_condition",
    "weighted_auc",
    "wilson",
    "state_distance",
    "regression_metrics",
    "bootstrap_regression",
    "bootstrap_stat",
    "interval_coverage",
    "gaussian_pit",
    "gaussian_interval",
    "quantile_pit",
    "pinball_loss",
    "gaussian_crps",
    "pit_uniformity",
    "wasserstein",
    "wasserstein_ci",
    "tail_summary",
    "REGRESSION_METRICS",
    "percentile_interval",
]


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'auditkit.toolkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
