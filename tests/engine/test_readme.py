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


def _writing_a_check_example() -> str:
    section = README.split("### Writing a check")[1].split("### ")[0]
    return section.split("```python\n")[1].split("```")[0]


def test_the_writing_a_check_example_runs_typed_without_type_checking_boilerplate(tmp_path: Path) -> None:
    """The README's check, executed as a module: typed with a plain import of RunContext, and its
    annotations resolve (so the engine validates parameter domains from them)."""
    import importlib.util
    import subprocess
    import sys
    import typing

    code = _writing_a_check_example()
    assert "TYPE_CHECKING" not in code and "from auditkit import" in code and "RunContext" in code
    path = tmp_path / "readme_check.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("readme_check", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from auditkit import RunContext
    from auditkit.testing import check_contract, make_artifacts, run_check, tiny_tabular

    fn = module.training_set_size
    assert typing.get_type_hints(fn)["ctx"] is RunContext  # resolves at run time: no TYPE_CHECKING name
    df = tiny_tabular()["train"]
    check_contract(fn, lambda: make_artifacts({"train": df}, label="y"))
    assert (
        run_check(fn, make_artifacts({"train": df}, label="y"), params={"min_rows": 10})["status"] == "passed"
    )
    # and `import auditkit` stays light: RunContext (and numpy) come only when asked for
    out = subprocess.run([sys.executable, "-c", "import sys, auditkit; print('numpy' in sys.modules)"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "False"
