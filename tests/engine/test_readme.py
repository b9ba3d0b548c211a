"""The README stays current: every built-in check is in its catalogue, the two commands are there."""

from __future__ import annotations

from pathlib import Path

from auditkit.engine.registry import build_registry

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_catalogue_lists_every_builtin_check_with_its_severity() -> None:
    table = README.split("<!-- BEGIN:catalogue -->")[1].split("<!-- END:catalogue -->")[0]
    for info in build_registry(autoload=False).sorted():
        row = next((ln for ln in table.splitlines() if ln.startswith(f"| {info.id} |")), None)
        assert row is not None, f"{info.id} missing from the README catalogue"
        assert f"| {info.severity} |" in row, f"{info.id}: README severity differs from the code"


def test_quick_start_names_the_two_commands_and_ci_calls_the_test_command() -> None:
    quick = README.split("## Quick start")[1].split("##")[0]
    assert "make demo" in quick and "make test" in quick
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci
