"""The @check decorator's validation, Metric direction semantics, parameter validation."""

from __future__ import annotations

import pytest

from auditkit import Finding, Metric, Outcome, check
from auditkit.engine.runner import validate_params
from auditkit.errors import SpecError


def _define(**kw: object) -> object:
    def fn(ctx, /, *, threshold: float = 0.5):  # type: ignore[no-untyped-def]
        """Doc.

        Parameters
        ----------
        threshold: a threshold.
        """
        return Outcome()

    return check(**{"id": "AK-TEST-001", "title": "t", **kw})(fn)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"id": "leak-1"}, "must look like"),
        ({"severity": "severe"}, "severity"),
        ({"requires": ("trainset",)}, "unknown requirement"),
        ({"nist_ai_rmf": ("MEASURE 9.9",)}, "unknown NIST AI RMF"),
    ],
)
def test_decorator_rejects_bad_metadata(kw: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        _define(**kw)


def test_decorator_rejects_undocumented_positional_and_non_native_params() -> None:
    def undocumented(ctx, /, *, x: int = 1):  # type: ignore[no-untyped-def]
        """Doc without a parameters section."""

    def positional(ctx, x=1):  # type: ignore[no-untyped-def]
        """Doc.

        Parameters
        ----------
        x: a number.
        """

    def object_default(ctx, /, *, x: object = object()):  # type: ignore[no-untyped-def]
        """Doc.

        Parameters
        ----------
        x: a thing.
        """

    for fn, message in ((undocumented, "not documented"), (positional, "exactly one positional"),
                        (object_default, "YAML/JSON-native")):  # fmt: skip
        with pytest.raises(TypeError, match=message):
            check(id="AK-TEST-002", title="t")(fn)


@pytest.mark.parametrize(
    ("value", "ci", "threshold", "direction", "bound", "passed"),
    [
        (0.9, None, 0.8, "higher", "value", True),
        (0.7, None, 0.8, "higher", "value", False),
        (0.1, None, 0.2, "lower", "value", True),
        (0.3, None, 0.2, "lower", "value", False),
        (0.9, (0.75, 0.95), 0.8, "higher", "conservative", False),  # point passes, lower bound does not
        (0.9, (0.85, 0.95), 0.8, "higher", "conservative", True),
        (0.1, (0.05, 0.25), 0.2, "lower", "conservative", False),  # upper bound above the maximum
        (0.5, None, None, "higher", "value", None),
    ],
)
def test_metric_direction_is_data(value, ci, threshold, direction, bound, passed) -> None:  # type: ignore[no-untyped-def]
    m = Metric("m", value, ci=ci, threshold=threshold, direction=direction, bound=bound)
    assert m.passed is passed
    outcome = Outcome.from_metrics([m])
    assert outcome.resolved_status() == ("failed" if passed is False else "passed")
    if passed is False:
        msg = outcome.findings[0].message
        assert ("below the minimum" in msg) == (direction == "higher")
        assert ("above the maximum" in msg) == (direction == "lower")


def test_info_findings_never_fail() -> None:
    assert Outcome(findings=[Finding("note", severity="info")]).resolved_status() == "passed"
    assert Outcome(findings=[Finding("bad")]).resolved_status() == "failed"


def test_metric_needs_direction_with_threshold_and_nan_becomes_none() -> None:
    with pytest.raises(ValueError, match="no direction"):
        Metric("m", 1.0, threshold=0.5)
    assert Metric("m", float("nan")).value is None


def test_param_validation_coerces_and_rejects() -> None:
    info = _define().__auditkit_check__  # type: ignore[attr-defined]
    assert validate_params(info, {"threshold": 1}, "p") == {"threshold": 1.0}
    with pytest.raises(SpecError, match="p.threshold"):
        validate_params(info, {"threshold": "high"}, "p")
    with pytest.raises(SpecError, match="did you mean 'threshold'"):
        validate_params(info, {"treshold": 0.1}, "p")
