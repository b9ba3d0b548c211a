"""One audit end to end: spec → plan → artifacts → checks → results → gate → bundle.

``run_audit`` is the Python API behind ``auditkit run``. Every spec and input problem is raised
(exit code 2) before the first check runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ParamSpec

import numpy as np

from auditkit import __version__
from auditkit.engine.registry import Registry, build_registry
from auditkit.engine.runner import Planned, Selection, _known, plan, progress_enabled, run_planned
from auditkit.errors import AuditkitError, InputError
from auditkit.inputs.artifacts import Artifacts
from auditkit.results.bundle import DISK_ERRNOS, atomic_dir, build_manifest, input_entries, write_json
from auditkit.results.document import SCHEMA_VERSION, AuditResults, dumps
from auditkit.results.gate import decide
from auditkit.spec import nocode
from auditkit.spec.schema import AuditSpec, LoadedSpec, load_spec, parse_spec

LIBRARIES = (
    "torch", "adversarial-robustness-toolbox", "great-expectations", "weasyprint", "jinja2", "click",
    "pydantic", "numpy", "pandas", "scipy", "scikit-learn", "faiss-cpu", "safetensors",
)  # fmt: skip


P = ParamSpec("P")


@dataclass
class Overrides:
    """Command-line overrides of the spec."""

    select: Sequence[str] = ()
    ignore: Sequence[str] = ()
    enable: Sequence[str] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_on: str | None = None
    baseline: str | Path | None = None
    seed: int | None = None
    formats: Sequence[str] | None = None
    plugin_autoload: bool | None = None
    no_code: bool = False  # refuse spec keys that run code (also AUDITKIT_NO_CODE=1; see nocode.py)
    timeout: float | None = None  # seconds per check (checks.timeout)
    mlflow: str | None = None  # --mlflow [URI]: "" = report.mlflow's or MLflow's default URI (mlflow_io.py)
    mlflow_optional: bool = False  # --mlflow-optional: an unreachable store is noted, not exit 2
    compute_engine: str | None = None  # --compute-engine local|ray (engine.compute.kind)
    workers: int | None = None  # --workers N (engine.compute.workers)
    ray_address: str | None = None  # --ray-address ADDR (engine.compute.address)


def _load(spec: str | Path | Mapping[str, Any] | AuditSpec | LoadedSpec) -> LoadedSpec:
    if isinstance(spec, LoadedSpec):
        return spec
    if isinstance(spec, AuditSpec):
        return parse_spec(spec.model_dump(mode="json", exclude_none=True))
    if isinstance(spec, Mapping):
        return parse_spec(dict(spec))
    return load_spec(spec)


def environment(artifacts: Artifacts) -> dict[str, Any]:
    libs: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = None
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "libraries": libs,
        "device": None,
        "threads": None,
    }
    if "torch" in sys.modules:
        import torch

        env["threads"] = torch.get_num_threads()
        env["cuda_available"] = bool(torch.cuda.is_available())
        model = artifacts._cache.get("model")
        if model is not None and hasattr(model, "device"):
            env["device"] = str(model.device)
            if model.device.type == "cuda":
                env["gpu"] = torch.cuda.get_device_name(model.device)
    return env


def _run_id(loaded: LoadedSpec, subject: dict[str, Any], seed: int) -> str:
    h = hashlib.sha256()
    h.update(loaded.sha256.encode())
    for name, fp in sorted(subject.get("datasets", {}).items()):
        h.update(f"{name}:{fp['sha256']}".encode())
    h.update(f"{seed}:{__version__}".encode())
    return h.hexdigest()[:16]


def _load_baseline(
    loaded: LoadedSpec, override: str | Path | None
) -> tuple[dict[str, Any] | None, str | None]:
    rel = override if override is not None else loaded.spec.gate.baseline
    if rel is None:
        return None, None
    path = Path(rel) if override is not None else loaded.resolve(str(rel))
    if not path.is_file():
        raise InputError(f"gate.baseline: file not found: {rel}")
    base = AuditResults.load(path)
    return base.doc, str(rel)


def _check_builtin(arts: Artifacts, arch: str) -> None:
    """A built-in model is trained on the train split; a CNN needs images. Said before any check."""
    datasets = arts.datasets()
    if "train" not in datasets:
        raise InputError(
            f"model.builtin: auditkit trains the built-in {arch} on data.splits.train; there is none"
        )
    x = datasets["train"].x
    if arch == "cnn" and x.ndim != 4:
        raise InputError(
            f"model.builtin: cnn needs images shaped (n, channels, height, width); the train split "
            f"gives {tuple(x.shape)} (use builtin: mlp for tabular data)"
        )


def _run_preflights(planned: Sequence[Planned], loaded: LoadedSpec, arts: Artifacts) -> None:
    """Each known check's ``preflight`` hook, in registry order, once per distinct function, after
    the data loaded and before the first check runs: a hook that raises SpecError or InputError
    refuses the audit with exit code 2. Deselected checks' hooks run too: a hook validates an input
    the spec declares (``data.slices``, ``data.expectations``), and a spec with a broken input is
    refused whatever ``checks.select`` says, as before hooks existed."""
    from auditkit.engine.check import Preflight

    seen: set[Callable[..., None]] = set()
    for p in planned:
        hook = p.info.preflight
        if hook is None or hook in seen:
            continue
        seen.add(hook)
        datasets = arts.datasets()
        hook(
            Preflight(
                params=dict(p.params),
                spec=loaded.spec,
                base=loaded.base,
                columns=lambda split: list(arts.dataset(split).frame.columns),
                frame=lambda split: arts.dataset(split).frame,
                splits=tuple(datasets),
            )
        )


def _check_task(arts: Artifacts, s: AuditSpec) -> None:
    """Regression needs a target that varies; regression-only keys need a regression task."""
    task = arts.task()
    if task == "classification":
        if s.model is not None and s.model.output != "point":
            raise InputError(
                "model.output: gaussian and quantile outputs are for regression; this audit is "
                "classification"
                + (
                    " (model.task)"
                    if s.model.task
                    else " (the label has few distinct values; set model.task: regression)"
                )
            )
        if s.training is not None and s.training.loss is not None:
            raise InputError(
                f"training.loss: {s.training.loss} is a regression loss; this audit is classification "
                "(classifiers train with cross-entropy)"
            )
        return
    for ds in arts.datasets().values():
        if ds.y is None or ds.name == "ood":
            continue
        v = ds.y[np.isfinite(ds.y)]
        if len(np.unique(v)) < 2:
            raise InputError(
                f"data.label: the regression target {ds.label!r} has "
                + (f"a single value ({float(v[0])!r})" if len(v) else "no labelled rows")
                + f" in the {ds.name} split; a regression audit needs a target that varies"
            )
        return


def _check_two_classes(arts: Artifacts) -> None:
    """A classifier audited (or trained) on one class only would pass every model check trivially."""
    if arts.task() == "regression":
        return
    for ds in arts.datasets().values():
        if ds.classes is not None and ds.y is not None:
            fractional = [
                c for c in ds.classes if isinstance(c, (float, np.floating)) and not float(c).is_integer()
            ]
            if fractional:
                raise InputError(
                    f"data.label: {ds.label!r} has {len(ds.classes)} distinct values, {len(fractional)} of them "
                    f"fractional (e.g. {fractional[0]!r}): a regression target, but model.task is classification; "
                    "set model.task: regression (or leave it out to infer it), or give class labels"
                )
            if len(ds.classes) < 2:
                found = f"a single class ({ds.classes[0]!r})" if ds.classes else "no labelled rows"
                raise InputError(
                    f"data.label: {ds.label!r} has {found} in every split; "
                    "a classifier's audit needs labelled rows of at least two classes"
                )
            return


def _check_baseline_subject(
    baseline: dict[str, Any], ref: str, loaded: LoadedSpec, arts: Artifacts, where: str
) -> None:
    """Refuse a baseline that audits another task: its regressions would compare unrelated metrics.

    A baseline of the same subject (spec name) is always accepted. Under another name (v1 → v2)
    it must at least share the label column, the class labels and the number of features.
    """
    name = loaded.spec.name
    subject = baseline.get("subject") or {}
    if subject.get("name") == name:
        return
    datasets = arts.datasets()
    ds = datasets.get("train") or next(iter(datasets.values()), None)
    base_sets = subject.get("datasets") or {}
    base_fp = base_sets.get("train") or next(iter(base_sets.values()), None) or {}
    base_label = ((baseline.get("spec") or {}).get("data") or {}).get("label")
    differences = []
    if base_label != loaded.spec.data.label:
        differences.append(f"label {base_label!r} vs {loaded.spec.data.label!r}")
    if ds is not None and base_fp:
        classes = [str(c) for c in ds.classes or []]
        base_classes = list((base_fp.get("class_counts") or {}).keys())
        if sorted(classes) != sorted(base_classes):
            differences.append(f"classes {base_classes[:5]} vs {classes[:5]}")
        if base_fp.get("features") != len(ds.features):
            differences.append(f"{base_fp.get('features')} vs {len(ds.features)} features")
    if differences:
        raise InputError(
            f"{where}: {ref} is an audit of {subject.get('name')!r}, another task than {name!r} "
            f"({'; '.join(differences)}); a baseline must be an approved audit of the same model's task"
        )


def plan_audit(
    spec: str | Path | Mapping[str, Any] | AuditSpec | LoadedSpec, overrides: Overrides | None = None
) -> list[Planned]:
    """The checks an audit would run (``selected``) or leave out (``skip_reason``), in run order,
    without loading data or running anything. Spec errors raise as in ``run_audit``."""
    with nocode.scope(bool(overrides and overrides.no_code)):
        loaded = _load(spec)
        nocode.check_spec(loaded.spec)
        return _plan(loaded, overrides or Overrides(), nocode.active())[1]


def _plan(loaded: LoadedSpec, ov: Overrides, no_code: bool) -> tuple[Registry, list[Planned]]:
    """Registry and plan from the spec and the overrides (the one place selection is decided)."""
    s = loaded.spec
    autoload = ov.plugin_autoload if ov.plugin_autoload is not None else s.checks.plugin_autoload
    autoload = autoload and not no_code  # plugins are code: --no-code never loads them
    registry = build_registry(
        autoload=autoload,
        require_plugins=s.checks.require_plugins,
        paths=[loaded.resolve(p) for p in s.checks.paths],
    )
    merged_params = {k: dict(v) for k, v in s.checks.params.items()}
    for cid, kv in ov.params.items():
        merged_params.setdefault(cid, {}).update(kv)
    selection = Selection(
        select=list(ov.select) or s.checks.select,
        ignore=list(s.checks.ignore) + list(ov.ignore),
        enable=list(s.checks.enable) + list(ov.enable),
        params=merged_params,
        severity=dict(s.checks.severity),
        min_rows=s.checks.min_rows,
    )
    return registry, plan(registry, selection)


def _under_no_code_policy(run: Callable[P, AuditResults]) -> Callable[P, AuditResults]:
    """Hold the no-code policy (``overrides.no_code`` or the environment) for the whole run."""

    @functools.wraps(run)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> AuditResults:
        overrides = kwargs.get("overrides")
        with nocode.scope(bool(isinstance(overrides, Overrides) and overrides.no_code)):
            return run(*args, **kwargs)

    return wrapper


@_under_no_code_policy
def run_audit(
    spec: str | Path | Mapping[str, Any] | AuditSpec | LoadedSpec,
    *,
    output: str | Path | None = None,
    overrides: Overrides | None = None,
    quiet: bool = True,
    argv: Sequence[str] | None = None,
    artifacts: Artifacts | None = None,
    today: dt.date | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    sign_key: str | Path | Any = None,
) -> AuditResults:
    """Run an audit and return its results; with ``output``, also write the evidence bundle.

    Parameters
    ----------
    spec: a path to audit.yaml, a mapping with the same keys, or a validated spec.
    output: bundle folder to write (atomically); None keeps everything in memory.
    overrides: command-line style overrides (select, params, fail_on, baseline, seed, formats).
    quiet: no progress bar.
    artifacts: pre-built inputs (in-memory datasets or model) instead of the spec's files.
    sign_key: an Ed25519 private key (a PEM file, or a key loaded by auditkit.results.signing.load_private_key)
        that signs the bundle's manifest (manifest.sig).

    With ``overrides.no_code`` or ``AUDITKIT_NO_CODE=1``, spec keys that import or run Python
    (checks.paths, model.factory, pkg.mod:Class optimizers and schedules, model.allow_pickle,
    plugins) are refused with SpecError before anything runs, and plugins are not loaded.
    """
    started = time.time()
    loaded = _load(spec)
    ov = overrides or Overrides()
    s = loaded.spec
    no_code = nocode.active()
    nocode.check_spec(s)  # under --no-code, a key that runs code is an error before anything loads
    nocode.check_paths(loaded)  # and a file outside the spec's folder is not read
    seed = ov.seed if ov.seed is not None else s.seed
    fail_on = ov.fail_on or s.gate.fail_on
    formats = list(ov.formats) if ov.formats is not None else list(s.report.formats)
    registry, planned = _plan(loaded, ov, no_code)
    for i, w in enumerate(s.gate.waivers):
        _known(w.check, registry.checks, f"gate.waivers.{i}.check")  # a mistyped id would waive nothing
    if formats and output is not None:
        from auditkit.render import get_renderer

        for fmt in formats:
            if fmt != "json":
                get_renderer(fmt)  # unknown or unavailable formats fail before anything runs
    baseline, baseline_ref = _load_baseline(loaded, ov.baseline)
    signer = None
    if sign_key is not None:
        from auditkit.errors import UsageError
        from auditkit.results.signing import load_private_key

        if output is None:
            raise UsageError("sign_key: signing needs an output bundle folder")

        # a bad key is exit 2 before anything runs
        signer = (
            load_private_key(Path(sign_key), "sign_key") if isinstance(sign_key, (str, Path)) else sign_key
        )
    arts = artifacts or Artifacts(loaded)
    arts.datasets()  # input errors (exit 2) surface here, before any check runs
    if baseline is not None and baseline_ref is not None:
        _check_baseline_subject(
            baseline, baseline_ref, loaded, arts, "--baseline" if ov.baseline is not None else "gate.baseline"
        )
    if s.model is not None or s.training is not None:
        _check_task(arts, s)
    if s.model is not None:
        _check_two_classes(arts)
        if s.model.builtin:
            _check_builtin(arts, s.model.builtin)
    if s.model is not None and s.model.source != "builtin":
        arts.model()  # a model file that cannot be loaded is an input error too
    if s.training is not None:
        from auditkit.inputs.training import validate_training

        validate_training(loaded)  # unknown optimizer / schedule / keyword: exit 2 before any check
    if s.model is not None or s.training is not None or "torch" in sys.modules:
        from auditkit.inputs.model import set_thread_policy

        set_thread_policy()  # before any torch work: 1 thread on ≤ 2 cores is usually fastest
    if s.deployment is not None and s.model is not None and s.model.source != "builtin":
        from auditkit.inputs.deployment import candidates

        candidates(arts)  # an unreadable artifact or one whose signature differs: exit 2 before any check
    _run_preflights(planned, loaded, arts)  # the checks' own pre-flights (data.slices, expectations, ...)

    from auditkit.engine import compute

    compute_cfg = compute.config_from(
        s.engine.compute, kind=ov.compute_engine, workers=ov.workers, address=ov.ray_address
    )
    executor = compute.make_executor(compute_cfg)  # Ray: an unreachable cluster is exit 2 here

    from auditkit.integrations.mlflow_io import after_bundle, prepare

    tracker = prepare(
        s.report.mlflow, cli_uri=ov.mlflow, optional=ov.mlflow_optional, default_experiment=s.name
    )

    def execute(bundle_dir: Path | None) -> AuditResults:
        records = run_planned(
            planned, arts, run_seed=seed, bundle_dir=bundle_dir,
            progress=progress_enabled(quiet), on_record=on_record,
            timeout=ov.timeout if ov.timeout is not None else s.checks.timeout,
        )  # fmt: skip
        gate = decide(
            records,
            fail_on=fail_on,
            waivers=[w.model_dump(mode="json") for w in s.gate.waivers],
            baseline=baseline,
            today=today,
        )
        gate["baseline"] = baseline_ref
        subject = {"name": s.name, "description": s.description, **arts.subject()}
        finished = time.time()
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "auditkit", "version": __version__},
            "run": {
                "id": _run_id(loaded, subject, seed),
                "started_at": _iso(started),
                "finished_at": _iso(finished),
                "duration_s": round(finished - started, 3),
                "seed": seed,
                "argv": list(argv) if argv is not None else None,
                "spec_path": str(loaded.path) if loaded.path else None,
                "spec_sha256": loaded.sha256,
                "formats": formats,
                "no_code": no_code,
                **({"mlflow": tracker.record()} if tracker is not None else {}),
            },
            "subject": subject,
            "environment": {**environment(arts), "compute": executor.describe()},
            "plugins": registry.plugins,
            "spec": s.model_dump(mode="json"),
            "checks": records,
            "gate": gate,
            "rmf": {"attestations": _attestations(s)},
        }
        results = AuditResults(doc)
        if bundle_dir is not None:
            extra = [("gate.baseline", Path(ov.baseline))] if ov.baseline is not None else []
            write_bundle(bundle_dir, results, arts, formats, extra_inputs=extra, sign_key=signer)
        return results

    try:
        with compute.use(executor):
            if output is None:
                results = execute(None)
            else:
                with atomic_dir(Path(output)) as tmp:
                    results = execute(tmp)
    finally:
        executor.close()
    after_bundle(tracker, results, Path(output) if output is not None else None)  # after the rename
    return results


def _attestations(s: AuditSpec) -> dict[str, Any]:
    if s.card is None:
        return {}
    return {k: v.model_dump(mode="json") for k, v in s.card.attestations.items()}


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).isoformat(timespec="seconds")


def bundle_inputs(
    arts: Artifacts, plugins: list[dict[str, Any]], extra: Sequence[tuple[str, Path]] = ()
) -> list[dict[str, Any]]:
    """Manifest entries of every input the verdict depends on: the spec (waivers included), data,
    model and expectation files, the baseline, and the code the run imported (model factory,
    custom optimizers, ``checks.paths`` modules, plugin distributions)."""
    from auditkit.inputs.provenance import code_inputs

    files = list(arts.input_files()) + list(extra)
    dists: list[dict[str, Any]] = []
    if arts.loaded is not None:
        code_files, dists = code_inputs(arts.loaded, plugins)
        known = {p.resolve() for _, p in files}
        files += [(role, p) for role, p in code_files if p.resolve() not in known]
    return input_entries(files, arts.loaded.base if arts.loaded else None) + dists


def write_bundle(
    root: Path,
    results: AuditResults,
    arts: Artifacts,
    formats: Sequence[str],
    *,
    extra_inputs: Sequence[tuple[str, Path]] = (),
    sign_key: Any = None,
) -> None:
    """results.json, the engine's own outputs (e.g. a trained model), the reports, the manifest and,
    with ``sign_key`` (an Ed25519 private key), its detached signature manifest.sig."""
    (root / "results.json").write_text(results.dumps(), encoding="utf-8")
    for rel, content in sorted(getattr(arts, "outputs", {}).items()):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    inputs = bundle_inputs(arts, results.doc.get("plugins") or [], extra_inputs)
    signing = None
    if sign_key is not None:
        from auditkit.results.signing import ALGORITHM, fingerprint

        signing = {"algorithm": ALGORITHM, "public_key_fingerprint": fingerprint(sign_key.public_key())}
    attachments = {
        "results.json": results.dumps().encode("utf-8"),
        "manifest.json": dumps(build_manifest(root, inputs, signing=signing)).encode("utf-8"),
    }
    # Render from results.json as written (sorted keys, JSON values), exactly what `auditkit report`
    # reads later: a re-render then lays evidence out in the same order.
    written = json.loads(attachments["results.json"])
    errors = render_formats(written, root, [f for f in formats if f != "json"], attachments)
    if errors:
        # results.json stays as written (reports already embed it); the failure gets its own file,
        # listed in the manifest, and the run's exit code becomes 3 (an incomplete bundle fails closed).
        results.render_errors = errors
        write_json(root / "render_errors.json", {"render_errors": errors})
    write_json(root / "manifest.json", build_manifest(root, inputs, signing=signing))
    if sign_key is not None:
        from auditkit.results.signing import write_signature

        write_signature(root, sign_key)


def render_formats(
    doc: dict[str, Any], out_dir: Path, formats: Sequence[str], attachments: dict[str, bytes]
) -> list[dict[str, str]]:
    """Render each format; a renderer that crashes is reported, the others still render."""
    from auditkit.render import get_renderer

    errors = []
    for fmt in formats:
        try:
            get_renderer(fmt)(doc, out_dir, attachments=attachments)
        except AuditkitError:
            raise
        except OSError as exc:
            if exc.errno in DISK_ERRNOS:  # a full disk is the output place's problem, not the renderer's
                raise
            errors.append({"format": fmt, "error": f"{type(exc).__name__}: {exc}"})
            print(
                f"auditkit: the {fmt} report failed to render: {type(exc).__name__}: {exc}", file=sys.stderr
            )
        except Exception as exc:
            errors.append({"format": fmt, "error": f"{type(exc).__name__}: {exc}"})
            print(
                f"auditkit: the {fmt} report failed to render: {type(exc).__name__}: {exc}", file=sys.stderr
            )
    return errors
