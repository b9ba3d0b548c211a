"""The audit spec (audit.yaml) as a pydantic model. DESIGN.md §3 holds the key names' contract.

Every error is found before anything runs and names its location, e.g.
``data.splits.train: file not found: data/trian.csv``. Unknown keys are errors with a did-you-mean.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import reprlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditkit.errors import SpecError
from auditkit.severity import Severity

SeverityName = Severity  # the one severity scale (auditkit/severity.py)
SPLIT_NAMES = ("train", "test", "validation", "ood", "production")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SplitsSpec(_Strict):
    train: str | None = None
    test: str | None = None
    validation: str | None = None
    ood: str | None = None
    production: str | None = None


class DataSpec(_Strict):
    label: str | None = Field(None, description="Target column (tabular). For .npz files: array 'y'.")
    features: Literal["auto"] | list[str] = Field(
        "auto",
        description="'auto' = every column but label/id/group/time/sensitive/exclude and datetimes, or a list.",
    )
    categorical: list[str] | None = Field(
        None, description="Categorical features; inferred from dtype if absent."
    )
    id: str | None = Field(None, description="Entity id column (entity leakage, per-entity time order).")
    group: str | None = Field(None, description="Grouping column (group leakage).")
    time: str | None = Field(None, description="Timestamp column (temporal leakage).")
    sensitive: list[str] = Field(
        default_factory=list, description="Sensitive attributes for slices and fairness."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Columns that are neither features nor roles."
    )
    drop_missing_labels: bool = Field(
        False,
        description="Leave out rows with an empty/NaN label (counted by AK-DQ-004); default: an input error.",
    )
    splits: SplitsSpec = Field(default_factory=SplitsSpec)
    expectations: str | None = Field(
        None, description="A Great Expectations suite (JSON) to validate splits with."
    )
    slices: dict[str, str] = Field(
        default_factory=dict,
        description="Named user slices, e.g. {old: 'age > 60'}: columns, literals, comparisons, "
        "and/or/not, in [...], isna()/notna() and arithmetic (never Python code).",
    )
    max_classes: int = Field(
        50,
        gt=1,
        description="A numeric label with more distinct values than this is a regression target "
        "(when model.task is not declared).",
    )


class InputSpec(_Strict):
    kind: Literal["tabular", "image"] = "tabular"
    range: tuple[float, float] | None = Field(
        None, description="Valid value range; tabular default: train min/max."
    )
    immutable: list[str] = Field(default_factory=list, description="Features an attack may not change.")
    shape: list[int] | None = Field(
        None, description="Per-sample input shape, e.g. [1, 8, 8]; default from data."
    )


class QuantileOutput(_Strict):
    """``model.output: {quantiles: [0.05, 0.5, 0.95]}``: one output column per quantile level."""

    quantiles: list[Annotated[float, Field(gt=0, lt=1)]] = Field(..., min_length=1)

    @field_validator("quantiles")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("quantile levels must be strictly increasing")
        return v


class ModelSpec(_Strict):
    torchscript: str | None = None
    exported: str | None = None
    factory: str | None = Field(None, description="'package.module:callable' returning an nn.Module.")
    factory_args: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = Field(None, description="Weights for 'factory': .safetensors or a state_dict .pt.")
    builtin: Literal["mlp", "cnn"] | None = None
    mlflow: str | None = Field(
        None,
        description="An MLflow model logged with mlflow.pytorch: models:/NAME/VERSION or runs:/ID/PATH "
        "(unpickled: code by design, refused under --no-code; auditkit[mlflow]).",
    )
    builtin_args: dict[str, Any] = Field(
        default_factory=dict, description="e.g. {hidden: [64, 32], dropout: 0.1}."
    )
    allow_pickle: bool = Field(
        False, description="Load full pickles. Only for files you trust: unpickling runs code."
    )
    sha256: str | None = Field(None, description="Pinned sha256 of the model file (AK-GOV-003 checks it).")
    task: Literal["classification", "regression"] | None = Field(
        None,
        description="classification | regression; default: inferred from the label (a numeric label "
        "with more than data.max_classes distinct values is regression).",
    )
    output: Literal["point", "gaussian"] | QuantileOutput = Field(
        "point",
        description="Regression outputs: point (one value per row), gaussian ([mean, log_var]) or "
        "{quantiles: [0.05, 0.5, 0.95]} (one column per level, in label units).",
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    batch_size: int = Field(1024, gt=0)
    input: InputSpec = Field(default_factory=InputSpec)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ModelSpec:
        sources = [k for k in MODEL_SOURCES if getattr(self, k)]
        if len(sources) != 1:
            raise ValueError(
                "exactly one model source is needed: torchscript, exported, factory, builtin or mlflow"
                + (f" (got {', '.join(sources)})" if sources else "")
            )
        if self.weights and not self.factory:
            raise ValueError("'weights' goes with 'factory'")
        return self

    @property
    def source(self) -> str:
        return next(k for k in MODEL_SOURCES if getattr(self, k))

    @field_validator("mlflow")
    @classmethod
    def _mlflow_uri(cls, v: str | None) -> str | None:
        from auditkit.integrations.mlflow_io import check_model_uri

        return None if v is None else check_model_uri(v)


MODEL_SOURCES = ("torchscript", "exported", "factory", "builtin", "mlflow")


class OptimizerSpec(BaseModel):
    """Any torch.optim optimizer by name (``AdamW``) or import path, with its keyword arguments."""

    model_config = ConfigDict(extra="allow")
    name: str = "AdamW"
    lr: float = Field(1e-3, gt=0)

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if k != "name"}


class ScheduleSpec(BaseModel):
    """A learning-rate schedule by short name or torch class name, with its arguments."""

    model_config = ConfigDict(extra="allow")
    name: str = "constant"
    warmup_epochs: float = Field(0, ge=0)

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if k not in ("name", "warmup_epochs")}


class TrainingSpec(_Strict):
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    epochs: int = Field(20, gt=0)
    batch_size: int = Field(128, gt=0)
    grad_clip: float | None = Field(None, gt=0, description="Clip gradients by global norm.")
    grad_clip_value: float | None = Field(None, gt=0, description="Clip gradients by value.")
    validation_fraction: float = Field(0.15, ge=0, lt=1)
    early_stopping: int | None = Field(None, gt=0, description="Patience in epochs; none = off.")
    seeds: list[int] = Field(default_factory=lambda: [0])
    deterministic: bool = True
    compare: list[OptimizerSpec] = Field(default_factory=list)
    loss: Literal["mse", "huber", "l1"] | None = Field(
        None,
        description="Regression loss of the built-in models (default mse, on the standardised target); "
        "classification always uses cross-entropy.",
    )


class ChecksSpec(_Strict):
    select: list[str] = Field(default_factory=list, description="Id prefixes to run; default all applicable.")
    ignore: list[str] = Field(default_factory=list)
    enable: list[str] = Field(default_factory=list, description="Checks that are off by default.")
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    severity: dict[str, SeverityName] = Field(default_factory=dict)
    paths: list[str] = Field(
        default_factory=list, description="Folders of local check modules to load by path."
    )
    require_plugins: list[str] = Field(default_factory=list)
    plugin_autoload: bool = True
    min_rows: int | None = Field(
        None,
        ge=1,
        description="Default of every check's min_rows: fewest rows a headline metric is judged on.",
    )
    timeout: float | None = Field(
        None,
        gt=0,
        le=1e6,
        description="Seconds each check may run; one past it is recorded as error. None = no limit.",
    )


class Waiver(_Strict):
    check: str
    key: str | None = Field(None, description="Waive only the finding with this key (a feature, a class).")
    reason: Annotated[str, Field(min_length=3)]
    expires: dt.date
    approved_by: str | None = None


class GateSpec(_Strict):
    fail_on: SeverityName = "high"
    baseline: str | None = None
    waivers: list[Waiver] = Field(default_factory=list)


class Owner(_Strict):
    name: str
    contact: str | None = None
    role: str | None = None


class Attestation(_Strict):
    status: Literal["met", "partially_met", "not_met", "not_applicable"]
    evidence: str
    by: str
    date: dt.date
    notes: str | None = None


class CardSpec(_Strict):
    model_name: str | None = None
    version: str | None = None
    overview: str | None = None
    owners: list[Owner] = Field(default_factory=list)
    intended_use: str | None = None
    users: list[str] = Field(default_factory=list)
    out_of_scope: str | None = None
    limitations: str | None = None
    ethical_considerations: str | None = None
    tradeoffs: str | None = None
    license: str | None = None
    references: list[str] = Field(default_factory=list)
    citation: str | None = None
    attestations: dict[str, Attestation] = Field(default_factory=dict)

    @field_validator("attestations")
    @classmethod
    def _attestation_ids(cls, v: dict[str, Attestation]) -> dict[str, Attestation]:
        # NIST AI RMF subcategories, EU AI Act items and ISO/IEC 42001 controls (auditkit.frameworks.crosswalk).
        from auditkit.frameworks.crosswalk import normalise_attestation_id

        return {normalise_attestation_id(key): att for key, att in v.items()}


ReportFormat = Literal["json", "html", "pdf", "model_card", "junit", "sarif"]
DEFAULT_FORMATS: tuple[ReportFormat, ...] = ("json", "html", "pdf", "model_card", "junit")


FrameworkName = Literal["nist_ai_rmf", "eu_ai_act", "iso_42001"]
DEFAULT_FRAMEWORKS: tuple[FrameworkName, ...] = ("nist_ai_rmf",)


class MlflowSpec(_Strict):
    """Log the audit as an MLflow run (auditkit[mlflow]); ``auditkit run --mlflow [URI]`` too."""

    tracking_uri: str | None = Field(
        None, description="Default: $MLFLOW_TRACKING_URI or MLflow's own default."
    )
    experiment: str | None = Field(
        None, description="Experiment name (created if absent); default: the spec's name."
    )
    run_name: str | None = None
    run_id: str | None = Field(
        None, description="A parent run: the audit is logged as a run nested under it."
    )
    optional: bool = Field(False, description="An unreachable store is noted in results.json, not exit 2.")


class ReportSpec(_Strict):
    formats: list[ReportFormat] = Field(default_factory=lambda: list(DEFAULT_FORMATS))
    frameworks: list[FrameworkName] = Field(
        default_factory=lambda: list(DEFAULT_FRAMEWORKS),
        description="Coverage matrices in the PDF/HTML; the NIST AI RMF one always shows (the others derive from it).",
    )
    title: str = "Pre-deployment audit"
    organisation: str | None = None
    mlflow: MlflowSpec | None = None


class DeployArtifactSpec(_Strict):
    """One candidate to ship, compared with ``model``: a file (ONNX, TorchScript) or a derivation."""

    name: str = Field(..., min_length=1, description="Name shown in the report and in metric names.")
    onnx: str | None = Field(
        None, description="An ONNX file, run with onnxruntime's CPU provider (auditkit[onnx])."
    )
    torchscript: str | None = Field(None, description="A TorchScript file (torch.jit.load).")
    quantize: Literal["dynamic_int8"] | None = Field(
        None,
        description="Derived by auditkit from `model`: torch.ao.quantization.quantize_dynamic (nn.Linear, qint8).",
    )
    dtype: Literal["float16", "bfloat16"] | None = Field(
        None,
        description="Derived by auditkit from `model` by casting its weights; float16 runs on CUDA only.",
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> DeployArtifactSpec:
        sources = [k for k in DEPLOY_SOURCES if getattr(self, k)]
        if len(sources) != 1:
            raise ValueError(
                "each artifact needs exactly one of: onnx, torchscript, quantize, dtype"
                + (f" (got {', '.join(sources)})" if sources else "")
            )
        return self

    @property
    def source(self) -> str:
        return next(k for k in DEPLOY_SOURCES if getattr(self, k))


DEPLOY_SOURCES = ("onnx", "torchscript", "quantize", "dtype")


class LatencyBudget(_Strict):
    p50: float | None = Field(None, gt=0)
    p95: float | None = Field(None, gt=0)
    p99: float | None = Field(None, gt=0)
    batch_size: int = Field(1, gt=0, description="The batch size the budget applies to.")


class DeploymentSpec(_Strict):
    artifacts: list[DeployArtifactSpec] = Field(..., min_length=1)
    batch_sizes: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [1, 8, 64], min_length=1)
    latency_budget_ms: LatencyBudget | None = Field(
        None, description="Optional gates on latency percentiles (ms)."
    )
    memory_budget_mb: float | None = Field(
        None, gt=0, description="Optional gate on peak inference memory (MB)."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> DeploymentSpec:
        names = [a.name for a in self.artifacts]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"artifact names must be unique (repeated: {', '.join(dup)})")
        if self.latency_budget_ms and self.latency_budget_ms.batch_size not in self.batch_sizes:
            raise ValueError(
                f"latency_budget_ms.batch_size {self.latency_budget_ms.batch_size} is not in batch_sizes {self.batch_sizes}"
            )
        return self


class ComputeSpec(_Strict):
    """Where model work runs (docs/compute.md): a local process pool (default) or a Ray cluster."""

    kind: Literal["local", "ray"] = "local"
    workers: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        "auto", description="Worker processes (local) or concurrent tasks (ray); auto: cores / threads."
    )
    address: str | None = Field(
        None, description="Ray cluster address (auto, host:port, ray://...); none: local."
    )
    num_cpus_per_task: Annotated[float, Field(gt=0)] = 1.0
    num_gpus_per_task: Annotated[float, Field(ge=0)] = 0.0
    runtime_env: dict[str, Any] | None = Field(
        None, description="Ray runtime_env (pip, env_vars, working_dir)."
    )


class EngineSpec(_Strict):
    compute: ComputeSpec = Field(default_factory=ComputeSpec)


class AuditSpec(_Strict):
    version: Literal[1] = 1
    name: str = Field(..., min_length=1, description="Subject of the audit.")
    description: str | None = None
    seed: int = 0
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec | None = None
    training: TrainingSpec | None = None
    checks: ChecksSpec = Field(default_factory=ChecksSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    card: CardSpec | None = None
    report: ReportSpec = Field(default_factory=ReportSpec)
    deployment: DeploymentSpec | None = Field(None, description="Candidates to ship, compared with `model`.")
    engine: EngineSpec = Field(default_factory=EngineSpec)

    @model_validator(mode="after")
    def _builtin_needs_training(self) -> AuditSpec:
        if self.model and self.model.builtin and self.training is None:
            self.training = TrainingSpec()
        return self


class LoadedSpec:
    """A validated spec with its location, so relative paths resolve against the spec's folder."""

    def __init__(self, spec: AuditSpec, *, path: Path | None, raw: bytes) -> None:
        self.spec = spec
        self.path = path
        self.base = path.parent if path else Path.cwd()
        self.sha256 = hashlib.sha256(raw).hexdigest()
        self.raw = raw

    def resolve(self, rel: str) -> Path:
        p = Path(rel).expanduser()
        return p if p.is_absolute() else (self.base / p)

    @contextlib.contextmanager
    def importable(self) -> Iterator[None]:
        """The spec's folder on ``sys.path`` for the block: 'pkg.mod:name' imports (model.factory,
        a custom optimizer or schedule) find modules next to the spec, wherever auditkit runs from."""
        base = str(self.base)
        added = base not in sys.path
        if added:
            sys.path.insert(0, base)
        try:
            yield
        finally:
            if added and base in sys.path:
                sys.path.remove(base)


def _did_you_mean(model: type[BaseModel], loc: tuple[Any, ...], key: str) -> str:
    """Suggest the closest field name of the model at ``loc`` for an unknown key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            current = None
            break
        ann = field.annotation
        current = _model_in(ann)
    names = list(getattr(current, "model_fields", {}) or [])
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return (
        f"; did you mean {close[0]!r}?"
        if close
        else (f"; expected one of: {', '.join(names)}" if names else "")
    )


def _model_in(ann: Any) -> Any:
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        m = _model_in(arg)
        if m is not None:
            return m
    return None


def _short_repr(value: Any) -> str:
    """At most 60 characters of repr, without building the whole repr of a huge value."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 60
    short.maxlist = short.maxdict = 4
    short.maxlevel = 2
    return short.repr(value)[:60]


def format_validation_error(err: ValidationError, model: type[BaseModel] = AuditSpec) -> str:
    """The first error as ``location: message`` (one line; the rest counted)."""
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            msg = f"unknown key{_did_you_mean(model, loc, str(loc[-1]))}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if e.get("input") is not None and e["type"] not in ("value_error", "assertion_error"):
                msg += f" (got {_short_repr(e['input'])})"
        lines.append(f"{where}: {msg}")
    extra = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return lines[0] + extra


def spec_files(loaded: LoadedSpec) -> list[tuple[str, str]]:
    """(key, path as written) of every input file the spec names."""
    spec = loaded.spec
    files: list[tuple[str, str | None]] = [
        (f"data.splits.{name}", getattr(spec.data.splits, name)) for name in SPLIT_NAMES
    ]
    files.append(("data.expectations", spec.data.expectations))
    if spec.model:
        for key in ("torchscript", "exported", "weights"):
            files.append((f"model.{key}", getattr(spec.model, key)))
    if spec.gate.baseline:
        files.append(("gate.baseline", spec.gate.baseline))
    for i, art in enumerate(spec.deployment.artifacts if spec.deployment else []):
        for key in ("onnx", "torchscript"):
            files.append((f"deployment.artifacts.{i}.{key}", getattr(art, key)))
    return [(where, rel) for where, rel in files if rel is not None]


def _check_files(loaded: LoadedSpec) -> None:
    spec = loaded.spec
    if spec.deployment is not None and spec.model is None:
        raise SpecError(
            "needs a model section: the audited model each artifact is compared with", location="deployment"
        )
    files = spec_files(loaded)
    for where, rel in files:
        p = loaded.resolve(rel)
        if not p.is_file():
            raise SpecError(f"file not found: {rel}", location=where)
    for i, folder in enumerate(spec.checks.paths):
        if not loaded.resolve(folder).is_dir():
            raise SpecError(f"folder not found: {folder}", location=f"checks.paths.{i}")
    if spec.model and spec.model.factory and ":" not in spec.model.factory:
        raise SpecError("expected 'package.module:callable'", location="model.factory")
    if not any(getattr(spec.data.splits, n) for n in SPLIT_NAMES) and not (spec.card or spec.model):
        raise SpecError("nothing to audit: give data.splits, a model or a card", location="data.splits")


def parse_spec(
    data: Any, *, path: Path | None = None, raw: bytes | None = None, check_files: bool = True
) -> LoadedSpec:
    """Validate a spec given as a mapping. Raises SpecError naming the first problem's location."""
    if not isinstance(data, dict):
        raise SpecError("the spec must be a mapping of keys (version, name, data, model, ...)")
    try:
        spec = AuditSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(err)) from None
    loaded = LoadedSpec(spec, path=path, raw=raw if raw is not None else yaml.safe_dump(data).encode())
    _check_slice_syntax(spec)
    if check_files:
        _check_files(loaded)
    return loaded


def _check_slice_syntax(spec: AuditSpec) -> None:
    """data.slices are parsed against auditkit's expression whitelist now, before anything runs."""
    from auditkit.spec.expr import ExpressionError, parse

    for name, source in spec.data.slices.items():
        try:
            parse(source)
        except ExpressionError as err:
            raise SpecError(f"unsupported expression: {err}", location=f"data.slices.{name}") from None


# A spec is small: 100k nodes after alias expansion is far beyond any real one, and well below what a
# "billion laughs" document needs (nine levels of nine aliases expand to 387M nodes and took 2 min and
# 6 GB before this limit, in validation and in the error message).
MAX_EXPANDED_NODES = 100_000


class _AliasBomb(Exception):
    pass


def _expanded_size(node: yaml.Node, memo: dict[int, int], open_: set[int]) -> int:
    """How many nodes the document has once every alias is expanded (aliases share node objects)."""
    key = id(node)
    if key in open_:
        raise _AliasBomb("a YAML alias refers to itself")
    if key not in memo:
        open_.add(key)
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(_expanded_size(child, memo, open_) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(
                _expanded_size(k, memo, open_) + _expanded_size(v, memo, open_) for k, v in node.value
            )
        open_.discard(key)
        if size > MAX_EXPANDED_NODES:
            raise _AliasBomb(f"the document expands to over {MAX_EXPANDED_NODES:,} nodes (YAML aliases)")
        memo[key] = size
    return memo[key]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one) and alias bombs."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()  # type: ignore[no-untyped-call]
        if node is not None:
            try:
                _expanded_size(node, {}, set())
            except _AliasBomb as err:
                raise yaml.constructor.ConstructorError(None, None, str(err), node.start_mark) from None
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate an audit.yaml (YAML safe_load; never executes tags)."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"spec file not found: {p}")
    raw = p.read_bytes()
    try:
        data = yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{p.name}: malformed YAML at {where}: {problem}") from None
    except (ValueError, OverflowError) as err:  # YAML's own date parsing, e.g. expires: 2027-13-01
        raise SpecError(f"{p.name}: an invalid value in the YAML (a date like 2027-13-01?): {err}") from None
    if data is None:
        raise SpecError(f"{p.name}: the spec is empty")
    return parse_spec(data, path=p.resolve(), raw=raw)


def json_schema() -> dict[str, Any]:
    """JSON Schema of audit.yaml, for editors (``auditkit schema``)."""
    schema = AuditSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "auditkit audit spec (audit.yaml)"
    return schema
