"""MLflow: log an audit as an MLflow run, and load a model logged with ``mlflow.pytorch``.

``auditkit run --mlflow [URI]`` or ``report.mlflow`` turns logging on. The tracking store is probed
before any check runs (an unreachable one is exit 2, or, with ``--mlflow-optional``, a note in
results.json); once the bundle is written, one run is created (nested under ``report.mlflow.run_id``
when given) with params, metrics, tags and the bundle as artifacts. MLflow is imported only here,
and only when asked for (the ``auditkit[mlflow]`` extra).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from auditkit.errors import InputError

ARTIFACT_DIR = "auditkit"  # the bundle's folder inside the MLflow run's artifacts
MAX_KEY = 250  # MLflow's longest param, metric and tag key
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
BATCH = 100  # MLflow accepts at most 100 params or tags per log_batch
PROBE_TIMEOUT_S = "10"
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\- /]")  # MLflow's allowed set, less ':' (refused on Windows)


def import_mlflow() -> Any:
    """The mlflow module, or exit 2 naming the extra to install."""
    try:
        import mlflow
    except ImportError:
        raise InputError("mlflow: MLflow is not installed; pip install 'auditkit[mlflow]'") from None
    return mlflow


def redact(uri: str) -> str:
    """The URI without a user name or password (results.json and messages never carry them)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def sanitise_key(name: str) -> str:
    """A key MLflow accepts: allowed characters only, no empty or '..' path segments, <= 250 chars."""
    key = _BAD_KEY_CHARS.sub("_", name)
    segments = [s if s not in (".", "..") else s.replace(".", "_") for s in key.split("/") if s]
    key = "/".join(segments) or "_"
    return key[:MAX_KEY]


def _unique(keys: dict[str, Any], key: str) -> str:
    """``key``, or ``key_2``, ``key_3``... when sanitising made two names collide."""
    out, n = key, 1
    while out in keys:
        n += 1
        suffix = f"_{n}"
        out = key[: MAX_KEY - len(suffix)] + suffix
    return out


def _value_text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def params_of(doc: dict[str, Any]) -> dict[str, str]:
    """Run params: the spec digest, the seed, and every check's parameters as ``CHECK-ID.name``."""
    run = doc.get("run") or {}
    out: dict[str, str] = {
        "auditkit.spec_sha256": str(run.get("spec_sha256")),
        "auditkit.seed": str(run.get("seed")),
        "auditkit.version": str((doc.get("tool") or {}).get("version")),
        "auditkit.fail_on": str((doc.get("gate") or {}).get("fail_on")),
    }
    for rec in doc.get("checks") or []:
        if rec.get("status") == "skipped":
            continue  # a check that did not run has no parameters that mattered
        for name, value in sorted((rec.get("params") or {}).items()):
            key = _unique(out, sanitise_key(f"{rec['id']}.{name}"))
            out[key] = _value_text(value, MAX_PARAM_VALUE)
    return out


def metrics_of(doc: dict[str, Any]) -> dict[str, float]:
    """Every check metric with a value as ``CHECK-ID.name``, its CI bounds as ``.ci_low``/``.ci_high``."""
    out: dict[str, float] = {}
    for rec in doc.get("checks") or []:
        for m in rec.get("metrics") or []:
            value = m.get("value")
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            base = sanitise_key(f"{rec['id']}.{m['name']}")[: MAX_KEY - len(".ci_high")]
            base = _unique(out, base)
            out[base] = float(value)
            ci = m.get("ci")
            if ci:
                out[f"{base}.ci_low"], out[f"{base}.ci_high"] = float(ci[0]), float(ci[1])
    return out


def tags_of(doc: dict[str, Any], exit_code: int, manifest_sha256: str | None) -> dict[str, str]:
    """Tags: the gate decision and exit code, the report id, the manifest digest, the subject."""
    gate = doc.get("gate") or {}
    run = doc.get("run") or {}
    tags = {
        "auditkit.results.gate": str(gate.get("decision")),
        "auditkit.exit_code": str(exit_code),
        "auditkit.report_id": str(run.get("id")),
        "auditkit.subject": str((doc.get("subject") or {}).get("name")),
        "auditkit.gate_reason": _value_text(str(gate.get("reason") or ""), MAX_TAG_VALUE),
    }
    if manifest_sha256:
        tags["auditkit.manifest_sha256"] = manifest_sha256
    return tags


@dataclass
class Tracker:
    """Where an audit is logged, settled (and the store probed) before any check runs."""

    tracking_uri: str
    experiment: str
    run_name: str | None = None
    parent_run_id: str | None = None
    optional: bool = False
    error: str | None = None  # why the store could not be reached (optional mode only)
    logged: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What results.json says about MLflow (no run id: results.json stays deterministic)."""
        rec: dict[str, Any] = {"tracking_uri": redact(self.tracking_uri), "experiment": self.experiment,
                               "parent_run_id": self.parent_run_id, "optional": self.optional,
                               "status": "unreachable" if self.error else "reachable"}  # fmt: skip
        if self.error:
            rec["error"] = self.error
        return rec


@contextlib.contextmanager
def _no_retries() -> Iterator[None]:
    """MLflow's HTTP client retries for minutes by default; a probe should answer in seconds."""
    settings = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": PROBE_TIMEOUT_S,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }  # and no progress bar on stderr
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prepare(settings: Any, *, cli_uri: str | None, optional: bool, default_experiment: str) -> Tracker | None:
    """The tracker for this run, or None when MLflow logging is off.

    settings: the spec's ``report.mlflow`` (or None). cli_uri: ``--mlflow``'s value ("" = the
    spec's or MLflow's default URI; None = not given). Unreachable store: InputError, unless optional.
    """
    if settings is None and cli_uri is None:
        return None
    mlflow = import_mlflow()
    uri = cli_uri or (settings.tracking_uri if settings is not None else None) or mlflow.get_tracking_uri()
    tracker = Tracker(
        tracking_uri=str(uri),
        experiment=(settings.experiment if settings is not None else None) or default_experiment,
        run_name=settings.run_name if settings is not None else None,
        parent_run_id=settings.run_id if settings is not None else None,
        optional=optional or bool(settings is not None and settings.optional),
    )
    try:
        _probe(tracker)
    except InputError:
        raise
    except Exception as err:  # any failure to reach the store: MlflowException, OSError, SQLAlchemy...
        message = (
            f"mlflow: cannot reach the tracking store {redact(tracker.tracking_uri)}: {_first_line(err)}"
        )
        if not tracker.optional:
            raise InputError(message + " (pass --mlflow-optional to audit anyway)") from None
        tracker.error = message
    return tracker


def _probe(tracker: Tracker) -> None:
    with _no_retries():
        client = import_mlflow().tracking.MlflowClient(tracking_uri=tracker.tracking_uri)
        client.search_experiments(max_results=1)
        if tracker.parent_run_id:
            try:
                client.get_run(tracker.parent_run_id)  # a missing parent run fails here, before any check
            except Exception as err:
                raise InputError(
                    f"mlflow: report.mlflow.run_id: no run {tracker.parent_run_id!r} in "
                    f"{redact(tracker.tracking_uri)} ({_first_line(err)})"
                ) from None


_USERINFO = re.compile(r"//[^/@\s]+@")  # user:password@ in any URL an error message repeats


def _first_line(err: BaseException) -> str:
    """The error's first line, without credentials (MLflow's messages repeat the request URL)."""
    text = _USERINFO.sub("//", str(err).strip())
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


def _experiment_id(client: Any, tracker: Tracker) -> str:
    if tracker.parent_run_id:
        return str(client.get_run(tracker.parent_run_id).info.experiment_id)
    exp = client.get_experiment_by_name(tracker.experiment)
    if exp is not None:
        return str(exp.experiment_id)
    return str(client.create_experiment(tracker.experiment))


def log(tracker: Tracker, doc: dict[str, Any], exit_code: int, bundle: Path | None) -> dict[str, Any]:
    """Create the run and log the audit to it; returns {tracking_uri, experiment_id, run_id}."""
    client = import_mlflow().tracking.MlflowClient(tracking_uri=tracker.tracking_uri)
    tags = {"mlflow.parentRunId": tracker.parent_run_id} if tracker.parent_run_id else {}
    name = (
        tracker.run_name
        or f"auditkit {(doc.get('subject') or {}).get('name')} {(doc.get('run') or {}).get('id')}"
    )
    run = client.create_run(_experiment_id(client, tracker), run_name=name, tags=tags)
    run_id = str(run.info.run_id)
    try:
        log_to_run(client, run_id, doc, exit_code, bundle)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    tracker.logged = {"tracking_uri": redact(tracker.tracking_uri), "experiment_id": run.info.experiment_id,
                      "run_id": run_id}  # fmt: skip
    return tracker.logged


def after_bundle(tracker: Tracker | None, results: Any, bundle: Path | None) -> None:
    """Log the finished audit; sets ``results.mlflow`` to where it went (None when it was not logged).

    Called once the bundle folder has its final name, so the run's artifacts are the bundle as it stands.

    A store that was unreachable before the run is already noted in results.json. One that fails
    now: a warning with --mlflow-optional, else exit 2 (the bundle is written and stays).
    """
    import sys

    results.mlflow = None
    if tracker is None:
        return
    if tracker.error:
        print(f"auditkit: warning: {tracker.error}; not logged (--mlflow-optional)", file=sys.stderr)
        return
    try:
        results.mlflow = log(tracker, results.doc, results.exit_code, bundle)
    except Exception as err:
        message = f"mlflow: logging to {redact(tracker.tracking_uri)} failed: {_first_line(err)}"
        if tracker.optional:
            print(f"auditkit: warning: {message} (--mlflow-optional: the bundle stands)", file=sys.stderr)
            return
        raise InputError(message + (f"; the bundle {bundle} is written" if bundle else "")) from None


def log_to_run(client: Any, run_id: str, doc: dict[str, Any], exit_code: int, bundle: Path | None) -> None:
    """Params, metrics, tags and the bundle (or results.json alone, without one) into an existing run."""
    entities = import_mlflow().entities
    Metric, Param, RunTag = entities.Metric, entities.Param, entities.RunTag  # noqa: N806 (MLflow's classes)
    manifest = bundle / "manifest.json" if bundle is not None else None
    digest = (
        hashlib.sha256(manifest.read_bytes()).hexdigest()
        if manifest is not None and manifest.is_file()
        else None
    )
    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in params_of(doc).items()]
    tags = [RunTag(k, v) for k, v in tags_of(doc, exit_code, digest).items()]
    metrics = [Metric(k, v, now, 0) for k, v in metrics_of(doc).items()]
    for chunk in _chunks(params):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(tags):
        client.log_batch(run_id, tags=chunk)
    for chunk in _chunks(metrics, 1000):
        client.log_batch(run_id, metrics=chunk)
    if bundle is not None:
        client.log_artifacts(run_id, str(bundle), artifact_path=ARTIFACT_DIR)
    else:
        from auditkit.results.document import dumps

        client.log_text(run_id, dumps(doc), f"{ARTIFACT_DIR}/results.json")


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


# -- model.mlflow --------------------------------------------------------------------------------


def check_model_uri(uri: str) -> str:
    """``models:/NAME/VERSION`` (or ``models:/NAME@alias``, ``models:/m-ID``) or ``runs:/ID/PATH``."""
    if uri.startswith("runs:/"):
        run_id, _, path = uri.removeprefix("runs:/").partition("/")
        if not run_id or not path.strip("/"):
            raise ValueError(f"{uri!r}: expected runs:/RUN_ID/ARTIFACT_PATH")
        return uri
    if uri.startswith("models:/") and uri.removeprefix("models:/").strip("/"):
        return uri
    raise ValueError(f"{uri!r}: expected models:/NAME/VERSION or runs:/RUN_ID/PATH (an MLflow model URI)")


def download_model(uri: str, dest: Path, *, tracking_uri: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The local folder of an MLflow model logged with mlflow.pytorch, and its MLmodel metadata.

    Nothing is loaded here: the caller decides how (the folder holds data/model.pt2, a torch.export
    program, or data/model.pth, a full pickle).
    """
    import yaml

    mlflow = import_mlflow()
    where = "model.mlflow"
    with _no_retries():
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest),
                                                             tracking_uri=tracking_uri))  # fmt: skip
        except Exception as err:
            raise InputError(f"{where}: cannot download {uri}: {_first_line(err)}") from None
    meta_path = local / "MLmodel"
    if not meta_path.is_file():
        raise InputError(f"{where}: {uri} is not an MLflow model (no MLmodel file)")
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
    flavors = meta.get("flavors") or {}
    if "pytorch" not in flavors:
        raise InputError(
            f"{where}: {uri} was not logged with mlflow.pytorch (flavors: {', '.join(flavors) or 'none'})"
        )
    return local, meta


def model_source(uri: str, meta: dict[str, Any], fmt: str, data: Path, *, safe: bool,
                 pinned: str | None) -> dict[str, Any]:  # fmt: skip
    """The subject fingerprint of an MLflow model: URI, the MLflow that logged it, the data file's sha256."""
    mlflow = import_mlflow()
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    return {
        "format": fmt,
        "path": uri,
        "model_uri": uri,
        "file": f"data/{data.name}",
        "sha256": sha,
        "safe_to_load": safe,
        "pinned_sha256": pinned,
        "pin_matches": (pinned.lower() == sha) if pinned else None,
        "mlflow_version": meta.get("mlflow_version"),  # the MLflow that logged the model
        "mlflow_client_version": mlflow.__version__,
        "mlflow_run_id": meta.get("run_id"),
        "mlflow_model_id": meta.get("model_id"),
        "pytorch_version": ((meta.get("flavors") or {}).get("pytorch") or {}).get("pytorch_version"),
    }
