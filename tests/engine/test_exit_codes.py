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
