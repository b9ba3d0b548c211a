"""The composite GitHub Action (action.yml + action/run.sh) and the pre-commit hook, run locally.

act is not available, so ``run_action`` plays the runner's part for a composite action: it
evaluates each step's ``if:`` and ``${{ }}`` expressions (inputs, steps.<id>.outputs,
github.action_path), runs every ``run:`` step with bash and its ``env:``, with GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY pointing at files as on GitHub, and records the ``uses:`` steps
(setup-python, upload-artifact) with their resolved ``with:`` instead of running them. The install
step is run for real in its own test, into a fresh virtual environment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tiny_audit import write_audit  # tests/integrations is on pythonpath (pyproject)

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
REF = re.compile(r"(inputs|steps\.[\w-]+\.outputs|github)\.([\w-]+)")
BIN = Path(sys.executable).parent  # the venv's auditkit and python come first on PATH


@dataclass
class Job:
    steps: list[dict[str, Any]] = field(default_factory=list)  # {name, outcome, rc?, with?}
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: str = ""
    log: str = ""

    def step(self, name: str) -> dict[str, Any]:
        return next(s for s in self.steps if s["name"] == name)

    @property
    def failed(self) -> bool:
        return any(s["outcome"] == "failure" for s in self.steps)


def _value(ctx: dict[str, Any], kind: str, name: str) -> str:
    if kind == "inputs":
        return str(ctx["inputs"][name])  # KeyError: action.yml refers to an input it does not declare
    if kind == "github":
        return {"action_path": str(ROOT)}[name]
    return ctx["steps"].get(kind.split(".")[1], {}).get(name, "")


def _condition(expr: str, ctx: dict[str, Any]) -> bool:
    """The expressions action.yml uses: always(), ==/!= on references and '' literals, &&, ||."""
    py = expr.replace("always()", "True").replace("&&", " and ").replace("||", " or ")
    py = REF.sub(lambda m: repr(_value(ctx, m.group(1), m.group(2))), py)
    assert re.fullmatch(r"[\s\w'\"!=().,/:-]*", py), f"unsupported expression: {expr}"
    return bool(eval(py, {"__builtins__": {}}, {}))  # noqa: S307 - our own action.yml, checked above


def _subst(text: str, ctx: dict[str, Any]) -> str:
    return EXPR.sub(lambda m: REF.sub(lambda r: _value(ctx, r.group(1), r.group(2)), m.group(1)), text)


def run_action(workdir: Path, with_: dict[str, str], *, skip: tuple[str, ...] = ("install",)) -> Job:
    inputs = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()}
    unknown = set(with_) - set(inputs)
    assert not unknown, f"not inputs of the action: {unknown}"
    inputs.update(with_)
    ctx: dict[str, Any] = {"inputs": inputs, "steps": {}}
    job = Job()
    summary = workdir / "step_summary.md"
    summary.touch()
    temp = workdir / "runner_temp"
    temp.mkdir(exist_ok=True)
    for i, step in enumerate(ACTION["runs"]["steps"]):
        name = step.get("name", f"step {i}")
        cond = step.get("if")
        always = cond is not None and "always()" in cond
        if (job.failed and not always) or (cond and not _condition(cond, ctx)) or step.get("id") in skip:
            job.steps.append({"name": name, "outcome": "skipped"})
            continue
        if "uses" in step:
            resolved = {k: _subst(str(v), ctx) for k, v in (step.get("with") or {}).items()}
            job.steps.append({"name": name, "outcome": "recorded", "uses": step["uses"], "with": resolved})
            continue
        assert step.get("shell") == "bash", f"{name}: composite run steps need shell: bash"
        out_file = workdir / f"output_{i}"
        out_file.write_text("")
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(out_file),
               "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTION_PATH": str(ROOT), "RUNNER_TEMP": str(temp),
               "GITHUB_ACTIONS": "true"}  # fmt: skip
        env.update({k: _subst(str(v), ctx) for k, v in (step.get("env") or {}).items()})
        proc = subprocess.run(["bash", "-e", "-c", _subst(step["run"], ctx)], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        job.log += proc.stdout + proc.stderr
        outs = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line)
        if step.get("id"):
            ctx["steps"][step["id"]] = outs
            job.outputs[step["id"]] = outs
        job.steps.append({"name": name, "outcome": "success" if proc.returncode == 0 else "failure",
                          "rc": proc.returncode})  # fmt: skip
    job.summary = summary.read_text()
    return job


def test_action_declares_the_inputs_and_calls_the_script() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert {"spec", "output", "fail-on", "baseline", "sign-key", "python-version", "auditkit-version"} <= set(
        ACTION["inputs"]
    )
    text = (ROOT / "action.yml").read_text()
    used = {m.group(2) for m in REF.finditer(text) if m.group(1) == "inputs"}
    assert used == set(ACTION["inputs"]), "every input is used and every used input is declared"
    runs = [s for s in ACTION["runs"]["steps"] if "run" in s]
    assert all("action/run.sh" in s["run"] for s in runs)
    uses = [s["uses"] for s in ACTION["runs"]["steps"] if "uses" in s]
    assert uses == ["actions/setup-python@v5", "actions/upload-artifact@v4"]


def test_failing_gate_uploads_the_bundle_then_fails_the_job(tmp_path: Path) -> None:
    spec = write_audit(tmp_path, crash=False)
    job = run_action(tmp_path, {"spec": str(spec), "output": "bundle"})
    assert job.step("Run the audit")["outcome"] == "success"  # the audit step never fails the job itself
    upload = job.step("Upload the evidence bundle")
    assert upload["outcome"] == "recorded" and upload["with"]["path"] == "bundle"
    assert upload["with"]["name"] == "audit-bundle"
    gate = job.step("Release gate")
    assert gate["outcome"] == "failure" and gate["rc"] == 1  # after the upload: the bundle is kept
    doc = json.loads((tmp_path / "bundle" / "results.json").read_text())
    assert job.outputs["audit"]["exit-code"] == str(doc["gate"]["exit_code"]) == "1"
    assert job.outputs["audit"]["decision"] == "fail"
    assert "::error title=auditkit gate::auditkit: gate FAIL (exit 1): blocking: AK-LEAK-001" in job.log
    assert "Gate **FAIL** (exit 1" in job.summary
    leak = next(r for r in doc["checks"] if r["id"] == "AK-LEAK-001")
    assert f"| AK-LEAK-001 {leak['title']} | failed | high |" in job.summary
    assert "(waived)" in job.summary  # AK-DQ-003's waived finding stays visible
    # the same spec without the planted leak: the job passes, the summary says so
    clean = tmp_path / "clean"
    clean.mkdir()
    spec = write_audit(clean, leak=False, duplicates=False, crash=False)
    job = run_action(clean, {"spec": str(spec), "output": "bundle", "fail-on": "critical"})
    assert not job.failed and job.step("Release gate")["rc"] == 0
    assert "Gate **PASS** (exit 0, fail_on `critical`)" in job.summary
    assert "| Check |" not in job.summary  # nothing failed: no table


def test_baseline_diff_goes_to_the_summary_and_a_regression_fails(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    v1.mkdir()
    job = run_action(
        v1, {"spec": str(write_audit(v1, leak=False, duplicates=False, crash=False)), "output": "out"}
    )
    assert not job.failed
    v2 = tmp_path / "v2"
    v2.mkdir()
    baseline = v1 / "out" / "results.json"
    job = run_action(v2, {"spec": str(write_audit(v2, duplicates=False, crash=False)), "output": "out",
                          "baseline": str(baseline), "fail-on": "critical"})  # fmt: skip
    # fail_on critical: no finding blocks, but AK-LEAK-001 passed → failed is a regression
    assert job.step("Release gate")["rc"] == 1
    assert "### auditkit: audit diff" in job.summary and "#### Status changes" in job.summary
    assert re.search(r"\| AK-LEAK-001 .*\| passed \| failed \|", job.summary)
    assert "- regression:" in job.summary


def test_spec_error_no_stale_bundle_and_exit_2(tmp_path: Path) -> None:
    spec = write_audit(tmp_path, crash=False)
    assert (
        run_action(tmp_path, {"spec": str(spec), "output": "bundle"}).outputs["audit"]["bundle"] == "bundle"
    )
    spec.write_text(spec.read_text() + "chekcs: {}\n")  # now a spec error: the old bundle stays on disk
    job = run_action(tmp_path, {"spec": str(spec), "output": "bundle"})
    assert (tmp_path / "bundle" / "results.json").is_file()
    assert (
        job.outputs["audit"]["bundle"] == ""
        and job.step("Upload the evidence bundle")["outcome"] == "skipped"
    )
    assert job.step("Release gate")["rc"] == 2
    assert "the audit did not run (exit 2)" in job.summary and "auditkit: error:" in job.summary
    assert "chekcs" in job.summary


def test_sign_key_from_secret_text_signs_and_leaves_no_key(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    subprocess.run([str(BIN / "auditkit"), "keygen", str(tmp_path / "keys" / "audit")], check=True,
                   capture_output=True)  # fmt: skip
    pem = (tmp_path / "keys" / "audit").read_text()
    spec = write_audit(tmp_path, leak=False, duplicates=False, crash=False)
    job = run_action(tmp_path, {"spec": str(spec), "output": "bundle", "sign-key": pem, "args": "--seed 3"})
    assert not job.failed, job.log
    assert (tmp_path / "bundle" / "manifest.sig").is_file()
    assert json.loads((tmp_path / "bundle" / "results.json").read_text())["run"]["seed"] == 3
    ok = subprocess.run([str(BIN / "auditkit"), "verify", str(tmp_path / "bundle"), "--key",
                         str(tmp_path / "keys" / "audit.pub")], capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert list((tmp_path / "runner_temp").iterdir()) == []  # the key file written from the secret is gone


def test_gate_step_fails_closed_without_an_exit_code(tmp_path: Path) -> None:
    env = {**os.environ, "AK_EXIT_CODE": ""}
    proc = subprocess.run(
        ["bash", str(ROOT / "action" / "run.sh"), "gate"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 3 and "did not finish" in proc.stdout
    bad = subprocess.run(["bash", str(ROOT / "action" / "run.sh"), "deploy"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_install_step_installs_this_checkout(tmp_path: Path) -> None:
    """The install step with auditkit-version empty installs the action's own checkout. The fresh
    venv borrows this venv's packages (pip, setuptools, torch, ...) through a .pth line, so
    nothing is downloaded; auditkit itself must come from the install step."""
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(site) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    step = next(s for s in ACTION["runs"]["steps"] if s.get("id") == "install")
    env = {**os.environ, "AK_PYTHON": str(py), "AK_AUDITKIT": str(venv / "bin" / "auditkit"),
           "AK_ACTION_PATH": str(ROOT), "AK_VERSION": "", "AK_TORCH_INDEX": "https://invalid.example/never-used",
           "AK_PIP_ARGS": "--no-deps --no-build-isolation -q"}  # fmt: skip
    proc = subprocess.run(["bash", "-c", _subst(step["run"], {"inputs": {}, "steps": {}})], env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "auditkit, version 0.1.0" in proc.stdout  # torch was found: its index was never asked
    where = subprocess.run([str(py), "-c", "import auditkit, auditkit.integrations.pytest_plugin; print(auditkit.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout  # fmt: skip
    assert where.startswith(site)


def test_pre_commit_hook_is_valid_and_its_entry_gates(tmp_path: Path) -> None:
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))  # pre-commit's own schema
    assert hook["id"] == "auditkit" and hook["language"] == "python" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    assert all(
        files.search(p) for p in ("audit.yaml", "ml/audit.yml", "data/train.csv", "m/model.safetensors")
    )
    assert not any(files.search(p) for p in ("README.md", "src/train.py", "audit.yaml.bak"))
    # the hook's command as pre-commit runs it: entry + args, in the repository root
    write_audit(tmp_path, crash=False)
    argv = shlex.split(hook["entry"]) + list(hook["args"])
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    failing = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert failing.returncode == 1 and "blocking: AK-LEAK-001" in failing.stdout
    assert (tmp_path / "audit-out" / "manifest.json").is_file()
    write_audit(tmp_path, leak=False, duplicates=False, crash=False)
    passing = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert passing.returncode == 0, passing.stdout + passing.stderr
