"""Built-in checks: model artefact safety and provenance (AK-GOV-003)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditkit import Finding, Metric, Outcome, check

if TYPE_CHECKING:
    from auditkit import RunContext

_SAFE_FORMATS = {"torchscript", "export", "safetensors", "state_dict", "factory"}


@check(
    id="AK-GOV-003",
    area="governance",
    title="Model artefact safety and provenance (format, safe loading, pinned sha256)",
    requires=("model",),
    severity="high",
    nist_ai_rmf=("GOVERN 6.1", "MAP 4.1", "MEASURE 2.7", "MANAGE 3.1"),
    tags=("governance", "security", "provenance"),
)
def artefact_provenance(ctx: RunContext, /, *, require_pin: bool = False) -> Outcome:
    """Records what the audited model artefact is and whether loading it was safe: its format,
    path, sha256, and whether a pinned `model.sha256` matches.

    A full pickle (loaded only because `model.allow_pickle` is true) is a finding: unpickling
    runs code, so the artefact cannot be trusted without its provenance. A pinned hash that does
    not match is a critical finding (the file is not the one that was approved). Without a pin the
    check notes it (info), or fails with `require_pin`. A model trained by auditkit is saved into
    the bundle (safetensors and TorchScript) and hashed there.

    Parameters
    ----------
    require_pin: fail when the spec does not pin the model file's sha256 (model.sha256).
    """
    model = ctx.model()
    src = dict(model.source or {})
    fmt = str(src.get("format", "unknown"))
    safe = src.get("safe_to_load")
    sha = src.get("sha256")
    pinned = src.get("pinned_sha256")
    matches = src.get("pin_matches")
    findings = []
    if safe is False:
        findings.append(
            Finding(
                f"the model was loaded from a full pickle ({src.get('path')}); unpickling runs arbitrary code — "
                "re-export it as TorchScript, torch.export or safetensors",
                severity="high",
                key="unsafe format",
            )
        )
    elif safe is None and fmt == "in-memory":
        findings.append(
            Finding(
                "the model was given in memory (Python API): no artefact file to check",
                severity="info",
                key="in-memory",
            )
        )
    elif safe is None:
        findings.append(
            Finding(
                f"cannot tell whether the model artefact ({fmt}) is safe to load",
                severity="medium",
                key="unknown format",
            )
        )
    if pinned and matches is False:
        findings.append(
            Finding(
                f"the model file's sha256 {sha} does not match the pinned model.sha256 {pinned}: it is not the approved "
                "artefact",
                severity="critical",
                key="pin mismatch",
            )
        )
    elif not pinned and not fmt.startswith("builtin") and fmt != "in-memory":
        findings.append(
            Finding(
                "the model file's sha256 is not pinned (model.sha256): a changed file would go unnoticed",
                severity=None if require_pin else "info",
                key="no pin",
            )
        )
    metrics = [
        Metric(
            "safe_format",
            1.0 if safe else 0.0,
            threshold=1.0,
            direction="higher",
            description="1 when the artefact loads without unpickling arbitrary code",
        ),
    ]
    if pinned:
        metrics.append(Metric("pin_matches", 1.0 if matches else 0.0, threshold=1.0, direction="higher"))
    rows = [[k, str(v)] for k, v in src.items() if k not in ("config",)]
    status = "safe" if safe else "UNSAFE" if safe is False else "unknown"
    return Outcome(
        metrics=metrics,
        findings=findings,
        summary=(
            f"{fmt} artefact, {status} to load, "
            + (f"sha256 {str(sha)[:16]}…" if sha else "no artefact file to hash")
            + (", pin matches" if matches else ", pin MISMATCH" if pinned else ", not pinned")
        ),
        evidence={"artefact": {"columns": ["field", "value"], "rows": rows}},
    )
