"""Hostile inputs, table-driven: each gets its exit code and one-line message, runs no code, and
changes no file that auditkit did not write (issue 12's acceptance).

Every case runs in a sandbox holding data, a spec and a folder of the user's own files; after the
run, every file outside the bundle folder must be byte-identical and no canary file may exist.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main

BASE = """\
version: 1
name: hostile-case
data:
  label: y
  splits: {train: train.csv, test: test.csv}
report: {formats: [json]}
"""


def _sandbox_tables(tmp: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80), "y": rng.integers(0, 2, 80)})
    df.to_csv(tmp / "train.csv", index=False)
    df.iloc[:40].to_csv(tmp / "test.csv", index=False)


def _sandbox(tmp: Path) -> None:
    _sandbox_tables(tmp)
    mine = tmp / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")


def _snapshot(root: Path, skip: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and skip not in p.parents:
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@dataclass(frozen=True)
class Case:
    id: str
    spec: str  # "{canary}" is replaced by the canary path, "{tmp}" by the sandbox
    needle: str  # a substring of the one-line message
    args: tuple[str, ...] = ()
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    argv: tuple[str, ...] | None = None  # instead of `run SPEC -o out -q ARGS`; {spec} and {tmp} replaced


def _results_json(tmp: Path) -> bytes:
    """A real results.json from a clean run in a scratch folder beside the sandbox."""
    scratch = tmp.parent / (tmp.name + "-scratch")
    scratch.mkdir(exist_ok=True)
    _sandbox_tables(scratch)
    (scratch / "audit.yaml").write_text(BASE)
    with pytest.raises(SystemExit):
        main(
            ["run", str(scratch / "audit.yaml"), "-o", str(scratch / "out"), "-q", "--select", "AK-LEAK-001"]
        )
    return (scratch / "out" / "results.json").read_bytes()


def _slice(expr: str) -> str:
    return BASE.replace("  splits:", f"  slices: {{x: {json.dumps(expr)}}}\n  splits:")


def _yaml_bomb(levels: int) -> str:
    lines = ["    - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"    - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return BASE + "card:\n  limitations:\n" + "\n".join(lines) + "\n"


CASES: list[Case] = [
    Case("yaml_billion_laughs", _yaml_bomb(9), "expands to over 100,000 nodes"),
    Case("yaml_recursive_alias", BASE + "description: &r [*r]\n", "alias refers to itself"),
    Case(
        "yaml_python_tag",
        BASE.replace("name: hostile-case", 'name: !!python/object/apply:os.system ["touch {canary}"]'),
        "could not determine a constructor",
    ),
    Case(
        "yaml_python_name_tag",
        BASE + "description: !!python/name:os.system\n",
        "could not determine a constructor",
    ),
    # §1: a spec never runs code
    Case(
        "slice_dunder_chain",
        _slice("a.__class__.__init__.__globals__['sys'].modules['os'].system('touch {canary}')"),
        "data.slices.x: unsupported expression",
    ),
    Case("slice_call", _slice("__import__('os').system('touch {canary}')"), "unsupported expression"),
    Case("slice_at_local", _slice("a > @os"), "data.slices.x"),
    Case("slice_lambda", _slice("(lambda: 1)() > 0"), "unsupported expression"),
    Case("slice_power_dos", _slice("a > 2**2**2**2**99"), "unsupported expression"),
    Case(
        "slice_fstring",
        _slice("f'{__import__(\"os\").system(\"touch {canary}\")}' == 'a'"),
        "unsupported expression",
    ),
    Case("slice_walrus", _slice("(z := a) > 0"), "unsupported expression"),
    Case("slice_comprehension", _slice("a in [c for c in ().__class__.__bases__]"), "unsupported expression"),
    Case(
        "slice_backtick_code",
        _slice('`a) or __import__("os").system("touch {canary}") or (a` > 0'),
        "data.slices.x",
    ),
    Case("slice_unknown_column", _slice("aa > 0"), "did you mean 'a'"),
    Case(
        "no_code_factory",
        BASE + "model: {factory: 'os:system'}\n",
        "model.factory: code is forbidden by --no-code",
        args=("--no-code",),
    ),
    Case(
        "no_code_env_optimizer",
        BASE + "model: {builtin: mlp}\ntraining: {optimizer: {name: 'os:system'}}\n",
        "training.optimizer.name: code is forbidden by --no-code",
        env={"AUDITKIT_NO_CODE": "1"},
    ),
    Case(
        "no_code_check_paths",
        BASE + "checks: {paths: [mine]}\n",
        "checks.paths: code is forbidden by --no-code",
        args=("--no-code",),
    ),
    Case(
        "no_code_pickle",
        BASE + "model: {torchscript: train.csv, allow_pickle: true}\n",
        "model.allow_pickle: code is forbidden",
        args=("--no-code",),
    ),
    Case(
        "no_code_reads_outside_spec_folder",
        BASE.replace("test: test.csv", "test: /etc/passwd"),
        "data.splits.test: '/etc/passwd' is outside the spec's folder",
        args=("--no-code",),
    ),
    Case(
        "no_code_symlink_out_of_spec_folder",
        BASE.replace("test: test.csv", "test: link.csv"),
        "data.splits.test: 'link.csv' is outside the spec's folder",
        args=("--no-code",),
        prepare=lambda tmp: (tmp / "link.csv").symlink_to("/etc/hostname"),
    ),
    # §4: no silent verdicts on broken data
    Case(
        "nan_labels",
        BASE.replace("test: test.csv", "test: nan.csv"),
        "data.splits.test: 7 of 40 rows have no label",
        prepare=lambda tmp: (
            pd.read_csv(tmp / "test.csv")
            .assign(y=lambda d: d.y.astype(float).where(d.index % 6 != 0))
            .to_csv(tmp / "nan.csv", index=False)
        ),
    ),
    # §2: no user file is ever lost
    Case(
        "out_is_a_user_folder",
        BASE,
        "holds a file auditkit did not write",
        argv=("run", "{spec}", "-o", "{tmp}/mine", "-q"),
    ),
    Case(
        "out_has_forged_manifest",
        BASE,
        "holds a file auditkit did not write",
        argv=("run", "{spec}", "-o", "{tmp}/mine", "-q"),
        prepare=lambda tmp: (tmp / "mine" / "manifest.json").write_text(
            '{"format": "auditkit-bundle", "files": []}'
        ),
    ),
    Case(
        "out_under_proc",
        BASE,
        "cannot create a folder here",
        argv=("run", "{spec}", "-o", "/proc/auditkit-hostile", "-q"),
    ),
    Case(
        "out_under_a_file",
        BASE,
        "cannot create a folder here",
        argv=("run", "{spec}", "-o", "{tmp}/train.csv/out", "-q"),
    ),
    Case(
        "report_into_user_folder",
        BASE,
        "holds a file auditkit did not write",
        argv=("report", "{tmp}/results.json", "-o", "{tmp}/mine"),
        prepare=lambda tmp: (tmp / "results.json").write_bytes(_results_json(tmp)),
    ),
    # §5: hostile text stays inert in the one-line message
    Case(
        "bidi_override_in_slice_name",
        BASE.replace("  splits:", '  slices: {"ev\\u202eil": "zz > 1"}\n  splits:'),
        "data.slices.ev\\u202eil: unknown column 'zz'",
    ),
    Case(
        "terminal_escape_in_label",
        BASE.replace("label: y", 'label: "y\\x1b[2J\\x1b]0;pwned\\x07"'),
        "\\x1b[2J",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    _sandbox(tmp_path)
    canary = tmp_path / "canary-ran"
    if case.prepare:
        case.prepare(tmp_path)
    spec = tmp_path / "audit.yaml"
    spec.write_text(
        textwrap.dedent(case.spec).replace("{canary}", str(canary)).replace("{tmp}", str(tmp_path))
    )
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    before = _snapshot(tmp_path, skip=out)
    if case.argv is None:
        args = ["run", str(spec), "-o", str(out), "-q", *case.args]
    else:
        args = [a.replace("{spec}", str(spec)).replace("{tmp}", str(tmp_path)) for a in case.argv]
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == case.code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("auditkit: error: ")]
    assert len(lines) == 1 and case.needle in lines[0], err
    assert not any(c in err for c in "\u202e\x1b\x07"), "raw control characters reached the terminal"
    assert not canary.exists(), "the spec ran code"
    assert _snapshot(tmp_path, skip=out) == before, "a file auditkit did not write changed"
