"""One public ExitCode enum behind every exit code auditkit uses; results.json keeps plain ints."""

from __future__ import annotations

import json

import auditkit
from auditkit.errors import AuditkitError, InputError, PluginError, SpecError, UsageError
from auditkit.results.gate import decide


def test_exit_code_values_are_the_documented_contract() -> None:
    assert {c.name: int(c) for c in auditkit.ExitCode} == {
        "PASSED": 0, "FAILED": 1, "USAGE": 2, "ERROR": 3, "NOTHING_RAN": 4,
    }  # fmt: skip


def test_every_error_exits_with_usage() -> None:
    for cls in (AuditkitError, SpecError, InputError, UsageError, PluginError):
        assert cls.exit_code is auditkit.ExitCode.USAGE


def test_gate_records_a_plain_int() -> None:
    passed = {"id": "X-1", "status": "passed", "severity": "high", "findings": []}
    failed = {"id": "X-2", "status": "failed", "severity": "high",
              "findings": [{"severity": "high", "message": "m"}]}  # fmt: skip
    assert decide([], fail_on="high")["exit_code"] == 4
    gate = decide([passed, failed], fail_on="high")
    assert type(gate["exit_code"]) is int and gate["exit_code"] == auditkit.ExitCode.FAILED
    assert json.loads(json.dumps(decide([passed], fail_on="high")))["exit_code"] == 0


def test_regression_message_uses_the_one_number_formatter() -> None:
    """The gate writes numbers as every report does (auditkit.numbers), not with a format of its own."""
    from auditkit.numbers import fmt_ci, fmt_num
    from auditkit.results.gate import regressions

    def rec(value: float, ci: list[float]) -> dict:  # type: ignore[type-arg]
        metric = {"name": "throughput_rows", "value": value, "ci": ci, "direction": "higher"}
        return {"id": "AK-X-001", "status": "passed", "metrics": [metric]}

    old, new = rec(12345.678, [12000.0, 12600.5]), rec(0.000012345, [0.00001, 0.00002])
    [reg] = regressions([new], {"checks": [old]})
    assert reg["message"] == (
        f"AK-X-001 throughput_rows regressed from {fmt_num(12345.678)} {fmt_ci([12000.0, 12600.5])} to "
        f"{fmt_num(0.000012345)} {fmt_ci([0.00001, 0.00002])}: the 95% intervals do not overlap"
    )
    assert "12,345.7 [12,000.0, 12,600.5]" in reg["message"] and "1.234e-05" in reg["message"]
