"""The ``auditkit`` command line (click). Heavy libraries are imported only inside commands.

Errors: auditkit's own exceptions print one line ``auditkit: error: ...`` and exit with their code
(2 for spec, input and usage errors); no traceback unless ``-v``/``AUDITKIT_DEBUG=1``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from auditkit import __version__
from auditkit.errors import AuditkitError, ExitCode, UsageError

# Interrupted runs exit as a shell reports a signal (128 + signal number), outside ExitCode.
SIGINT_EXIT, SIGTERM_EXIT = 128 + 2, 128 + 15

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Interrupted(BaseException):
    """Raised from SIGTERM so that cleanup (removing the temporary bundle) runs as for SIGINT."""


def _fail(message: str, code: int = ExitCode.USAGE) -> NoReturn:
    from auditkit.safetext import inert

    click.echo(f"auditkit: error: {inert(message, multiline=False)}", err=True)
    sys.exit(code)


def _split_csv(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _parse_params(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in values:
        key, eq, raw = item.partition("=")
        cid, dot, name = key.rpartition(".")
        if not eq or not dot or not cid or not name:
            raise UsageError(
                f"--param {item!r}: expected CHECK-ID.name=value, e.g. AK-LEAK-001.max_overlap_ratio=0.01"
            )
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        out.setdefault(cid, {})[name] = value
    return out


def _console() -> Any:
    from rich.console import Console

    return Console(no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False, soft_wrap=True)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="auditkit")
def cli() -> None:
    """Audit a PyTorch model and its data before deployment.

    \b
    auditkit run audit.yaml -o audit-out     run an audit, write the evidence bundle
    auditkit checks                          list the checks
    auditkit verify audit-out                recompute the bundle's hashes
    auditkit keygen key; auditkit sign audit-out --key key; auditkit verify audit-out --key key.pub
    """


@cli.command("run", context_settings=CONTEXT)
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Bundle folder (default: audit-out next to the spec).",
)
@click.option("--select", multiple=True, help="Check ids or prefixes to run (comma separated, repeatable).")
@click.option("--ignore", multiple=True, help="Check ids or prefixes to leave out.")
@click.option("--enable", multiple=True, help="Off-by-default checks to run.")
@click.option("--param", "params", multiple=True, metavar="ID.NAME=VALUE", help="Set a check parameter.")
@click.option(
    "--fail-on",
    type=click.Choice(["info", "low", "medium", "high", "critical"]),
    default=None,
    help="Lowest severity that fails the gate (overrides gate.fail_on).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An approved results.json: fail on regressions against it.",
)
@click.option("--seed", type=int, default=None, help="Run seed (overrides the spec).")
@click.option(
    "--format",
    "formats",
    multiple=True,
    help="Report formats: json, html, pdf, model_card, junit, sarif (default: report.formats).",
)
@click.option("--no-plugin-autoload", is_flag=True, help="Do not load entry-point plugins.")
@click.option("--no-code", is_flag=True,
              help="Refuse spec keys that run Python (checks.paths, model.factory, pkg.mod:Class, "
                   "model.allow_pickle, plugins); also AUDITKIT_NO_CODE=1.")  # fmt: skip
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True, max=1e6),
    default=None,
    metavar="SECONDS",
    help="Time limit per check; one past it is recorded as error (overrides checks.timeout).",
)
@click.option(
    "--sign",
    "sign_key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="KEY",
    help="Sign the bundle's manifest with this Ed25519 private key (auditkit keygen).",
)
@click.option("--mlflow", "mlflow_uri", is_flag=False, flag_value="", default=None, metavar="[TRACKING_URI]",
              help="Log the audit as an MLflow run (default URI: report.mlflow.tracking_uri, $MLFLOW_TRACKING_URI, "
                   "MLflow's default). Put it after SPEC, or write --mlflow=URI.")  # fmt: skip
@click.option(
    "--mlflow-optional",
    is_flag=True,
    help="An unreachable MLflow store is noted in results.json instead of exit 2.",
)
@click.option("--compute-engine", type=click.Choice(["local", "ray"]), default=None,
              help="Where model work runs (overrides engine.compute.kind; docs/compute.md).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Parallel workers for model work (overrides engine.compute.workers; 1 = in this process).")  # fmt: skip
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster address (overrides engine.compute.address; also $RAY_ADDRESS).")  # fmt: skip
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress bar and no summary table (one line: the gate)."
)
@click.option("-v", "--verbose", count=True, help="More logging; -vv shows tracebacks of auditkit errors.")
def run_cmd(spec: Path, output: Path | None, select: tuple[str, ...], ignore: tuple[str, ...],
            enable: tuple[str, ...], params: tuple[str, ...], fail_on: str | None, baseline: Path | None,
            seed: int | None, formats: tuple[str, ...], no_plugin_autoload: bool, no_code: bool,
            timeout: float | None, sign_key: Path | None, mlflow_uri: str | None, mlflow_optional: bool,
            compute_engine: str | None, workers: int | None, ray_address: str | None,
            quiet: bool, verbose: int) -> None:  # fmt: skip
    """Run the audit described by SPEC and write the evidence bundle.

    Exit codes: 0 gate passed, 1 gate failed, 2 spec/input/usage error, 3 a check errored,
    4 no check ran.
    """
    import logging

    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(name)s: %(message)s")
    from auditkit.engine.audit import Overrides, run_audit

    out = output or (spec.parent / "audit-out")
    overrides = Overrides(
        select=_split_csv(select),
        ignore=_split_csv(ignore),
        enable=_split_csv(enable),
        params=_parse_params(params),
        fail_on=fail_on,
        baseline=baseline,
        seed=seed,
        formats=_split_csv(formats) or None,
        plugin_autoload=False if no_plugin_autoload else None,
        no_code=no_code,
        timeout=timeout,
        mlflow=mlflow_uri,
        mlflow_optional=mlflow_optional,
        compute_engine=compute_engine,
        workers=workers,
        ray_address=ray_address,
    )
    signer = None
    if sign_key is not None:
        from auditkit.results.signing import load_private_key

        signer = load_private_key(sign_key, "--sign")
    results = run_audit(
        spec, output=out, overrides=overrides, quiet=quiet, argv=["auditkit", *sys.argv[1:]], sign_key=signer
    )
    if quiet:
        click.echo(inert_line(gate_line(results.doc)))
    else:
        _print_summary(results.doc, out)
    logged = getattr(results, "mlflow", None)
    if logged:
        click.echo(f"mlflow: run {logged['run_id']} in experiment {logged['experiment_id']} at {logged['tracking_uri']}",
                   err=quiet)  # fmt: skip
    for rec in results.checks:  # a check that found its parameters or inputs wrong: one line each
        if rec["status"] == "error" and (rec.get("error") or {}).get("input"):
            first = (
                str(rec["error"].get("message") or "").splitlines() or [rec["error"].get("type") or "error"]
            )[0]
            click.echo(f"auditkit: error: {_shown(rec['id'])}: {_shown(first)}", err=True)
    sys.exit(results.exit_code)


def gate_line(doc: dict[str, Any]) -> str:
    """The gate in one line, for ``-q`` (a CI log must show why a gate failed)."""
    gate = doc["gate"]
    line = f"auditkit: gate {gate['decision'].upper()} (exit {gate['exit_code']})"
    failed = [r["id"] for r in doc["checks"] if r["status"] == "failed"]
    blocking = list(dict.fromkeys(b["check"] for b in gate.get("blocking", [])))
    parts = []
    if blocking:
        parts.append("blocking: " + ", ".join(blocking))
    other = [c for c in failed if c not in blocking]
    if other:
        parts.append("failed below fail_on: " + ", ".join(other))
    if gate.get("errored"):
        parts.append("errored: " + ", ".join(gate["errored"]))
    if gate.get("regressions"):
        parts.append(f"{len(gate['regressions'])} regression(s)")
    if gate["decision"] != "pass" and not parts:
        parts.append(gate["reason"])
    return line + (": " + "; ".join(parts) if parts else "")


def inert_line(text: Any) -> str:
    """A plain (not rich) terminal line with control, bidi and format characters shown escaped."""
    from auditkit.safetext import inert

    return inert(text, multiline=False)


def _shown(text: Any) -> str:
    """Spec or data text for the terminal: control, bidi and format characters shown escaped
    (an ESC sequence in a column name cannot recolour or rewrite the log), rich markup escaped."""
    from rich.markup import escape

    from auditkit.safetext import inert

    return escape(inert(text, multiline=False))


def _print_summary(doc: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    console = _console()
    styles = {
        "passed": "green",
        "failed": "red",
        "error": "yellow",
        "skipped": "dim",
        "not_applicable": "dim",
    }
    table = Table(title=f"auditkit — {_shown(doc['subject']['name'])}", show_lines=False)
    for col in ("check", "status", "severity", "summary"):
        table.add_column(col, overflow="fold")
    for rec in doc["checks"]:
        if rec["status"] == "skipped" and (rec.get("skip_reason") or "").startswith("not selected"):
            continue
        summary = rec.get("summary") or rec.get("skip_reason") or ""
        table.add_row(
            _shown(rec["id"]),
            f"[{styles[rec['status']]}]{rec['status']}[/]",
            _shown(rec["severity"]),
            _shown(summary),
        )
    console.print(table)
    from auditkit.render.common import task_text

    task = task_text(doc)
    if task:
        console.print(f"task: {_shown(task)}")
    gate = doc["gate"]
    colour = "green" if gate["decision"] == "pass" else "red"
    console.print(
        f"gate: [bold {colour}]{gate['decision'].upper()}[/] (exit {gate['exit_code']}): {_shown(gate['reason'])}"
    )
    for w in gate.get("waived", []):
        console.print(f"  waived: {_shown(w['check'])} {_shown(w.get('key') or '')} — {_shown(w['message'])}")
    for w in gate.get("unused_waivers", []):
        key = f" key {_shown(repr(w['key']))}" if w.get("key") else ""
        console.print(
            f"  [yellow]unused waiver[/]: {_shown(w['check'])}{key} matched no finding (check the id and key)"
        )
    for r in gate.get("regressions", []):
        console.print(f"  regression: {_shown(r['message'])}")
    pdf = out / "report.pdf"
    console.print(f"bundle: {_shown(out)}" + (f"  report: {_shown(pdf)}" if pdf.exists() else ""))


@cli.group("checks", invoke_without_command=True, context_settings=CONTEXT)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--no-plugin-autoload", is_flag=True, help="Do not load entry-point plugins.")
@click.pass_context
def checks_cmd(ctx: click.Context, fmt: str, no_plugin_autoload: bool) -> None:
    """List the available checks (built-in and plugins)."""
    ctx.obj = {"autoload": not no_plugin_autoload}
    if ctx.invoked_subcommand is not None:
        return
    from auditkit.engine.registry import build_registry

    registry = build_registry(autoload=not no_plugin_autoload)
    infos = registry.sorted()
    if fmt == "json":
        click.echo(json.dumps([_info_dict(i) for i in infos], indent=2))
        return
    from rich.table import Table

    table = Table(show_lines=False)
    for col in ("id", "title", "severity", "needs", "default", "cost"):
        table.add_column(col, overflow="fold")
    for i in infos:
        table.add_row(
            i.id, i.title, i.severity, ", ".join(i.requires), "on" if i.default_enabled else "off", i.cost
        )
    _console().print(table)


def _info_dict(i: Any) -> dict[str, Any]:
    return {
        "id": i.id, "title": i.title, "description": i.description, "severity": i.severity,
        "requires": list(i.requires), "nist_ai_rmf": list(i.nist_ai_rmf), "tags": list(i.tags),
        "default_enabled": i.default_enabled, "version": i.version, "cost": i.cost, "source": i.source,
        "params": [{"name": p.name, "default": i.defaults()[p.name], "type": _type_name(p.annotation), "doc": p.doc}
                   for p in i.params],
    }  # fmt: skip


_BOUNDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "items ≥", "max_length": "items ≤"}


def _type_name(ann: Any) -> str:
    """A parameter's type as a reader writes it: ``int (≥ 1)``, ``'in' | 'out'``, ``tuple[...]``."""
    import typing

    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        bounds = [f"{sign} {getattr(c, k)}" for m in args[1:] for c in getattr(m, "metadata", [m])
                  for k, sign in _BOUNDS.items() if getattr(c, k, None) is not None]  # fmt: skip
        return f"{_type_name(args[0])} ({', '.join(bounds)})" if bounds else _type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if (origin is tuple and len(args) == 2 and args[1] is Ellipsis) or (origin is list and len(args) == 1):
        return f"list of {_type_name(args[0])}"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join("None" if a is type(None) else _type_name(a) for a in args)
    return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")


@checks_cmd.command("show", context_settings=CONTEXT)
@click.argument("check_id")
@click.pass_context
def checks_show(ctx: click.Context, check_id: str) -> None:
    """Show one check: what it finds, its parameters, severity and NIST AI RMF mapping."""
    import difflib

    from auditkit.engine.registry import build_registry

    registry = build_registry(autoload=ctx.obj["autoload"])
    info = registry.get(check_id.upper())
    if info is None:
        close = difflib.get_close_matches(check_id.upper(), list(registry.checks), n=1)
        raise UsageError(f"unknown check {check_id!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    d = _info_dict(info)
    console = _console()
    console.print(f"[bold]{d['id']}[/] — {d['title']}")
    console.print(d["description"])
    console.print(
        f"severity: {d['severity']}   default: {'on' if d['default_enabled'] else 'off'}   cost: {d['cost']}"
    )
    console.print(f"needs: {', '.join(d['requires']) or '-'}")
    console.print(f"NIST AI RMF (evidence for): {', '.join(d['nist_ai_rmf']) or '-'}")
    console.print(f"source: {d['source']}   version: {d['version']}")
    if d["params"]:
        console.print("parameters:")
        for p in d["params"]:
            console.print(f"  {p['name']} ({p['type']}, default {p['default']!r}): {p['doc']}")


@cli.command("verify", context_settings=CONTEXT)
@click.argument("bundle", type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-inputs", is_flag=True, help="Check only the outputs (inputs may live elsewhere).")
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PUB",
    help="Require a valid signature by this Ed25519 public key (manifest.sig).",
)
def verify_cmd(bundle: Path, no_inputs: bool, key: Path | None) -> None:
    """Recompute the sha256 of every file the bundle's manifest lists; exit 1 on any mismatch.

    With --key, the bundle must also carry a valid signature by that key over manifest.json.
    """
    from auditkit.results.bundle import verify_detail

    problems, note = verify_detail(bundle, check_inputs=not no_inputs, key=key)
    if problems:
        for p in problems:
            click.echo(f"MISMATCH {p}")
        click.echo(f"auditkit: verify: {len(problems)} problem(s) in {bundle}", err=True)
        sys.exit(ExitCode.FAILED)
    click.echo(f"OK: every file listed in {bundle / 'manifest.json'} matches its sha256")
    click.echo(f"signature: {note}")


@cli.command("keygen", context_settings=CONTEXT)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keygen_cmd(path: Path) -> None:
    """Write a new Ed25519 key pair: PATH (private, mode 0600) and PATH.pub; never overwrites.

    The private key is encrypted with $AUDITKIT_KEY_PASSPHRASE when that is set.
    """
    from auditkit.results.signing import keygen

    private, public, fp = keygen(path)
    click.echo(f"wrote {private} (private, keep it secret) and {public}; fingerprint {fp}")


@cli.command("sign", context_settings=CONTEXT)
@click.argument("bundle", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="KEY",
    help="Ed25519 private key (auditkit keygen).",
)
@click.option("--no-inputs", is_flag=True, help="Verify only the outputs before signing.")
def sign_cmd(bundle: Path, key: Path, no_inputs: bool) -> None:
    """Sign a bundle that verifies: writes manifest.sig, a detached signature over manifest.json.

    The PDF was rendered before this signature existed: its cover says "unsigned at render time".
    """
    from auditkit.results.bundle import SIGNATURE, verify
    from auditkit.results.signing import load_private_key, write_signature

    private = load_private_key(key)
    if (bundle / SIGNATURE).exists() or (bundle / SIGNATURE).is_symlink():
        raise UsageError(
            f"{bundle / SIGNATURE}: exists; the bundle is signed already (remove it to sign again)"
        )
    problems = verify(bundle, check_inputs=not no_inputs)
    if problems:
        for p in problems:
            click.echo(f"MISMATCH {p}")
        click.echo(f"auditkit: sign: {len(problems)} problem(s) in {bundle}; not signed", err=True)
        sys.exit(ExitCode.FAILED)
    path = write_signature(bundle, private)
    from auditkit.results.signing import read_signature

    doc = read_signature(path) or {}
    click.echo(f"wrote {path}: signed by {doc.get('public_key_fingerprint')}")


@cli.command("schema", context_settings=CONTEXT)
@click.option("--results", is_flag=True, help="Print the results.json schema instead of the audit.yaml one.")
def schema_cmd(results: bool) -> None:
    """Print the JSON Schema of audit.yaml (for editors), or of results.json."""
    if results:
        from auditkit.results.document import results_schema

        click.echo(json.dumps(results_schema(), indent=2))
        return
    from auditkit.spec.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@cli.command("init", context_settings=CONTEXT)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("audit.yaml"),
    help="Where to write the spec (default: audit.yaml).",
)
@click.option("--label", default=None, help="Target column (default: guessed).")
@click.option("--force", is_flag=True, help="Overwrite an existing spec.")
def init_cmd(files: tuple[Path, ...], output: Path, label: str | None, force: bool) -> None:
    """Write a commented audit.yaml for the given data files (train first, then test, ...)."""
    from auditkit.spec.scaffold import write_spec

    if output.exists() and not force:
        raise UsageError(f"{output} exists; pass --force to overwrite")
    text = write_spec(list(files), output, label=label)
    click.echo(f"wrote {output} ({len(text.splitlines())} lines); edit it, then: auditkit run {output}")


@cli.command("report", context_settings=CONTEXT)
@click.argument("results_path", metavar="RESULTS.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "formats",
    multiple=True,
    default=("pdf", "html", "model_card", "junit"),
    help="Formats to render (comma separated or repeated).",
)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("report-out"))
def report_cmd(results_path: Path, formats: tuple[str, ...], output: Path) -> None:
    """Render reports from an existing results.json (never re-runs a check)."""
    from auditkit.engine.audit import render_formats
    from auditkit.results.document import AuditResults

    results = AuditResults.load_valid(results_path)
    fmts = [f for f in _split_csv(formats) if f != "json"]
    if not fmts:
        raise UsageError("no report format to render (results.json is the json format itself); "
                         "use --format pdf,html,model_card,junit,sarif")  # fmt: skip
    raw = results_path.read_bytes()
    attachments = {"results.json": raw}
    manifest = _bundle_manifest(results_path.parent / "manifest.json", raw)
    if manifest is not None:
        attachments["manifest.json"] = manifest
    from auditkit.results.bundle import REPORT_FORMAT, atomic_dir, write_report_manifest

    # Same rule as `run -o`: a new or empty folder, or an earlier report folder of auditkit's.
    with atomic_dir(output, kind=REPORT_FORMAT) as tmp:
        errors = render_formats(results.doc, tmp, fmts, attachments)
        write_report_manifest(tmp, results_path)
    if errors:
        sys.exit(ExitCode.ERROR)
    click.echo(f"wrote {', '.join(fmts)} to {output}")


def _bundle_manifest(path: Path, results_bytes: bytes) -> bytes | None:
    """The manifest next to a results.json, only when it lists exactly that results.json."""
    import hashlib

    if not path.is_file():
        return None
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
        entry = next(
            e for e in doc.get("outputs") or [] if isinstance(e, dict) and e.get("path") == "results.json"
        )
    except (ValueError, StopIteration, AttributeError):
        return None
    return raw if entry.get("sha256") == hashlib.sha256(results_bytes).hexdigest() else None


@cli.command("diff", context_settings=CONTEXT)
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table")
def diff_cmd(base: Path, new: Path, fmt: str) -> None:
    """What changed between two audits: status changes and metric changes with intervals.

    Exit codes: 0 no difference, 1 differences found, 2 bad input (a file that is not results.json).
    """
    from auditkit.results.diff import diff_results, has_changes, render_diff
    from auditkit.results.document import AuditResults

    d = diff_results(AuditResults.load_valid(base).doc, AuditResults.load_valid(new).doc)
    if fmt == "json":
        from auditkit.engine.check import jsonable

        click.echo(json.dumps(jsonable(d), indent=2, allow_nan=False))  # strict JSON: NaN → null
    elif fmt == "markdown":
        click.echo(render_diff(d, markdown=True))
    else:
        render_diff(d, console=_console())
    sys.exit(ExitCode.FAILED if has_changes(d) else ExitCode.PASSED)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Interrupted()


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps auditkit errors to one-line messages and exit codes."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    debug = os.environ.get("AUDITKIT_DEBUG") == "1" or "-vv" in (argv or sys.argv)
    try:
        cli.main(args=argv, prog_name="auditkit", standalone_mode=False)
        sys.exit(ExitCode.PASSED)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("auditkit: interrupted; no bundle was written", err=True)
        sys.exit(SIGINT_EXIT)
    except click.ClickException as e:
        _fail(e.format_message(), ExitCode.USAGE)
    except AuditkitError as e:
        if debug:
            raise
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__, e.exit_code)
    except (KeyboardInterrupt, Interrupted):
        click.echo("auditkit: interrupted; no bundle was written", err=True)
        sys.exit(SIGINT_EXIT if not isinstance(sys.exc_info()[1], Interrupted) else SIGTERM_EXIT)


if __name__ == "__main__":
    main()
