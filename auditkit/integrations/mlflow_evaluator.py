"""An ``mlflow.evaluate`` evaluator: ``evaluators=["auditkit"]`` runs an audit and logs it to the run.

Registered through the ``mlflow.model_evaluator`` entry point (pyproject.toml), so MLflow finds it
when auditkit is installed::

    mlflow.evaluate(model_uri, data, targets="y", model_type="classifier", evaluators=["auditkit"],
                    evaluator_config={"spec": {"checks": {"select": ["AK-PERF", "AK-GOV-003"]}}})

``model_type="regressor"`` audits the model as a regressor (``model.task: regression``: RMSE, R²,
error parity; the model outputs one value per row in label units).

The evaluation data is the audit's test split; the model is the MLflow model itself (loaded by
auditkit from its URI, as ``model.mlflow``: it must be an ``mlflow.pytorch`` model). evaluator_config
keys: ``spec`` (audit.yaml keys merged into the generated spec: checks, gate, card, data roles...),
``train`` (a DataFrame with the features and the target column: the train split), ``output`` (a
folder to keep the bundle in; default: a temporary one), ``model_uri`` (when MLflow cannot tell).
This module imports MLflow: it is loaded only by MLflow's evaluator registry.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.errors import InputError
from auditkit.integrations.mlflow_io import import_mlflow

try:  # MLflow loads this module itself (its evaluator registry), so it is installed here
    from mlflow.models.evaluation import EvaluationResult, ModelEvaluator
except ImportError as err:  # pragma: no cover - only reachable by importing this module by hand
    raise InputError("mlflow: MLflow is not installed; pip install 'auditkit[mlflow]'") from err

CONFIG_KEYS = ("spec", "train", "output", "model_uri")


def _model_uri(model: Any, config: dict[str, Any]) -> str:
    if config.get("model_uri"):
        return str(config["model_uri"])
    meta: Any = getattr(model, "metadata", None)
    if getattr(meta, "model_id", None):
        return f"models:/{meta.model_id}"
    if getattr(meta, "run_id", None) and getattr(meta, "artifact_path", None):
        return f"runs:/{meta.run_id}/{meta.artifact_path}"
    raise InputError(
        "auditkit evaluator: cannot tell the model's URI; pass evaluator_config={'model_uri': ...}"
    )


def _frame(dataset: Any, label: str) -> pd.DataFrame:
    features = dataset.features_data
    frame = features.copy() if isinstance(features, pd.DataFrame) else pd.DataFrame(features)
    frame.columns = [str(c) for c in (dataset.feature_names or frame.columns)]
    frame[label] = dataset.labels_data
    return frame


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def build_spec(
    folder: Path, dataset: Any, model_uri: str, config: dict[str, Any], run_id: str, model_type: Any = None
) -> dict[str, Any]:
    """The audit.yaml (as a mapping) for this evaluation; data files are written into ``folder``.
    ``model_type="regressor"`` declares ``model.task: regression`` (a count target with few values
    would otherwise be inferred as classes); a ``spec`` in the config still wins."""
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise InputError(f"auditkit evaluator: unknown evaluator_config key {unknown[0]!r} "
                         f"(expected: {', '.join(CONFIG_KEYS)})")  # fmt: skip
    label = str(dataset.targets_name or "label")
    splits = {"test": str(folder / "test.csv")}
    _frame(dataset, label).to_csv(splits["test"], index=False)
    train = config.get("train")
    if train is not None:
        splits["train"] = str(folder / "train.csv")
        pd.DataFrame(train).to_csv(splits["train"], index=False)
    spec = {
        "version": 1, "name": f"mlflow-evaluate-{run_id[:8]}", "data": {"label": label, "splits": splits},
        "model": {"mlflow": model_uri, **({"task": "regression"} if model_type == "regressor" else {})}, "report": {"formats": ["json", "html", "model_card", "junit"]},
    }  # fmt: skip
    return _merge(spec, dict(config.get("spec") or {}))


class AuditkitEvaluator(ModelEvaluator):  # type: ignore[misc]
    """Runs an auditkit audit of the evaluated model on the evaluation data and logs it to the run."""

    @classmethod
    def can_evaluate(cls, *, model_type: Any, evaluator_config: Any, **kwargs: Any) -> bool:
        return model_type in (None, "classifier", "regressor")

    def evaluate(self, *, model_type: Any, dataset: Any, run_id: str, evaluator_config: Any, model: Any = None,
                 **kwargs: Any) -> EvaluationResult:  # fmt: skip
        from auditkit.engine.audit import run_audit
        from auditkit.integrations.mlflow_io import log_to_run, metrics_of

        config = dict(evaluator_config or {})
        if model is None:
            raise InputError(
                "auditkit evaluator: needs a model (an mlflow.pytorch model URI), not predictions only"
            )
        with tempfile.TemporaryDirectory(prefix="auditkit-evaluate-") as tmp:
            folder = Path(tmp)
            spec = build_spec(folder, dataset, _model_uri(model, config), config, run_id, model_type)
            bundle = Path(config["output"]) if config.get("output") else folder / "bundle"
            results = run_audit(spec, output=bundle, argv=["mlflow.evaluate", "evaluators=auditkit"])
            log_to_run(
                import_mlflow().tracking.MlflowClient(), run_id, results.doc, results.exit_code, bundle
            )
        metrics = metrics_of(results.doc)
        return EvaluationResult(metrics=metrics, artifacts={}, run_id=run_id)
