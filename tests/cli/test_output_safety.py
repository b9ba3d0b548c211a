"""No user file is ever lost: `run -o` and `report -o` replace a folder only when every file in it is
one auditkit wrote (listed, unchanged, in a manifest with auditkit's format id); a bad output place
(read-only, immutable, /proc, a full disk, a file) is one line and exit 2; the bundle gets the
user's umask."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main

SPEC = """
version: 1
name: output-safety
data:
  label: y
  splits: {train: train.csv, test: test.csv}
checks:
  select: [AK-GOV-001, AK-BAL-001]
report: {formats: [json]}
card:
  owners: [{name: ML team, contact: ml@example.com}]
  intended_use: Screening support for trained staff only.
  out_of_scope: Automated decisions without a human in the loop.
  limitations: Trained on a small, old sample from one market.
  ethical_considerations: Error rates by group are monitored each release.
  license: Apache-2.0
"""


@pytest.fixture()
def spec(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80), "y": rng.integers(0, 2, 80)})
    df.iloc[:60].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[60:].to_csv(tmp_path / "test.csv", index=False)
    path = tmp_path / "audit.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder`` (links by target, files by content), to prove nothing changed."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink():
                out[rel] = f"-> {os.readlink(p)}"
            else:
                out[rel] = "dir" if p.is_dir() else (p.read_bytes() if p.is_file() else "special")
    return out


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("auditkit: error: output ") and "Traceback" not in err[0], err
    return err[0]


def bundle(spec: Path, out: Path) -> Path:
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 0
    return out


def test_an_own_clean_bundle_is_replaced(spec: Path) -> None:
    """The control: a bundle auditkit wrote, untouched, is replaced by the next run."""
    out = bundle(spec, spec.parent / "out")
    (out / "artifacts" / "EMPTY").mkdir(parents=True)  # an empty folder holds nothing to lose
    first = json.loads((out / "results.json").read_text())["run"]["started_at"]
    assert run(["run", str(spec), "-o", str(out), "-q", "--seed", "7"]) == 0
    assert json.loads((out / "results.json").read_text())["run"]["seed"] == 7, first
    assert not list(spec.parent.glob(".out.*")), "no temporary or old folder is left behind"


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda out: (out / "notes.txt").write_text("my notes"), "notes.txt (not listed"),
        (
            lambda out: (out / "sub").mkdir() or (out / "sub" / "deep.csv").write_text("x"),
            "sub/deep.csv (not listed",
        ),
        (
            lambda out: (out / "results.json").write_text("{}"),
            "results.json (changed since auditkit wrote it",
        ),
        (lambda out: (out / "manifest.sig").write_text("my signature notes"), "manifest.sig (not listed"),
    ],
    ids=["extra-file", "file-in-subfolder", "edited-listed-file", "foreign-manifest-sig"],
)
def test_a_bundle_holding_a_foreign_file_is_refused_and_untouched(
    spec: Path, capsys: pytest.CaptureFixture[str], damage: object, named: str
) -> None:
    out = bundle(spec, spec.parent / "out")
    damage(out)  # type: ignore[operator]
    before = snapshot(out)
    capsys.readouterr()
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 2
    line = one_error_line(capsys)
    assert named in line and "nothing was changed" in line, line
    assert snapshot(out) == before
    assert not list(spec.parent.glob(".out.*"))


@pytest.mark.parametrize(
    "manifest",
    [
        {"name": "my-web-app", "icons": []},  # a web app manifest
        # an auditkit-shaped manifest without the format id (forged, or written before it existed)
        {"manifest_version": "1", "algorithm": "sha256", "inputs": [], "outputs": []},
        {"format": "auditkit-bundle", "manifest_version": "1", "algorithm": "md5", "outputs": []},
    ],
    ids=["web-manifest", "no-format-id", "other-algorithm"],
)
def test_a_folder_with_a_manifest_auditkit_did_not_write_is_refused(
    spec: Path, capsys: pytest.CaptureFixture[str], manifest: dict[str, object]
) -> None:
    folder = spec.parent / "site"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "index.html").write_text("<h1>my site</h1>")
    before = snapshot(folder)
    assert run(["run", str(spec), "-o", str(folder), "-q"]) == 2
    line = one_error_line(capsys)
    assert "not an auditkit bundle" in line and "index.html" in line
    assert snapshot(folder) == before


def test_listing_a_foreign_file_in_a_forged_manifest_does_not_make_it_auditkits(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest with auditkit's format id that lists a user's file with a wrong hash is refused."""
    out = bundle(spec, spec.parent / "out")
    man = json.loads((out / "manifest.json").read_text())
    man["outputs"].append({"path": "thesis.txt", "sha256": "0" * 64, "bytes": 13})
    (out / "manifest.json").write_text(json.dumps(man))
    (out / "thesis.txt").write_text("years of work")
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 2
    assert "thesis.txt (changed since auditkit wrote it)" in one_error_line(capsys)
    assert (out / "thesis.txt").read_text() == "years of work"


def test_symlink_tricks_lose_no_file(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = spec.parent / "home"
    home.mkdir()
    (home / "thesis.txt").write_text("years of work")
    before = snapshot(home)
    # 1. -o is a symbolic link to a user's folder.
    link = spec.parent / "link-out"
    link.symlink_to(home, target_is_directory=True)
    assert run(["run", str(spec), "-o", str(link), "-q"]) == 2
    assert "symbolic link" in one_error_line(capsys)
    # 2. a file of an old bundle replaced by a symbolic link to a user's file.
    out = bundle(spec, spec.parent / "out")
    (out / "results.json").unlink()
    (out / "results.json").symlink_to(home / "thesis.txt")
    capsys.readouterr()
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 2
    assert "results.json (a symbolic link" in one_error_line(capsys)
    # 3. a subfolder of an old bundle replaced by a link to a user's folder.
    (out / "results.json").unlink()
    shutil.rmtree(out)
    out = bundle(spec, spec.parent / "out")
    (out / "artifacts").symlink_to(home, target_is_directory=True)
    capsys.readouterr()
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 2
    assert "artifacts (a symbolic link" in one_error_line(capsys)
    assert snapshot(home) == before


def test_report_output_follows_the_same_rule(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = bundle(spec, spec.parent / "out")
    results = str(out / "results.json")
    mine = spec.parent / "mine"
    mine.mkdir()
    (mine / "slides.md").write_text("# my talk")
    before = snapshot(mine)
    assert run(["report", results, "--format", "junit", "-o", str(mine)]) == 2
    assert "slides.md" in one_error_line(capsys)
    assert snapshot(mine) == before
    # a new folder, then the same folder again (its files are all auditkit's): both fine
    rep = spec.parent / "rep"
    assert run(["report", results, "--format", "junit,html", "-o", str(rep)]) == 0
    assert run(["report", results, "--format", "junit", "-o", str(rep)]) == 0
    assert {p.name for p in rep.iterdir()} == {"junit.xml", "manifest.json"}, (
        "the old html is gone with its folder"
    )
    assert run(["verify", str(rep)]) == 0
    # an edited report is the user's now
    (rep / "junit.xml").write_text("<annotated/>")
    capsys.readouterr()
    assert run(["report", results, "--format", "junit", "-o", str(rep)]) == 2
    assert "junit.xml (changed" in one_error_line(capsys)
    # a bundle is evidence: re-rendering into it would change it
    bundle_before = snapshot(out)
    assert run(["report", results, "--format", "junit", "-o", str(out)]) == 2
    assert "is an auditkit bundle" in one_error_line(capsys)
    assert snapshot(out) == bundle_before


def test_the_bundle_gets_the_users_umask(spec: Path) -> None:
    old = os.umask(0o027)
    try:
        out = bundle(spec, spec.parent / "out027")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o750
    assert (out / "results.json").stat().st_mode & 0o777 == 0o640
    old = os.umask(0o022)
    try:
        out = bundle(spec, spec.parent / "out022")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755


def test_output_that_is_a_file_or_under_a_file_or_in_proc(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = spec.parent / "a-file"
    f.write_text("keep")
    for target in (f / "sub", Path("/proc/auditkit-out"), Path("/proc/self/auditkit-out")):
        assert run(["run", str(spec), "-o", str(target), "-q"]) == 2, target
        one_error_line(capsys)
    assert f.read_text() == "keep"
    assert run(["run", str(spec), "-o", str(f), "-q"]) == 2  # click's own check: "is a file"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("auditkit: error:") and f.read_text() == "keep"


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["chattr", "-i", str(where)], capture_output=True)
        subprocess.run(["umount", str(where)], check=True)


def test_read_only_parent(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:  # an ordinary user: a folder without write permission
        parent = spec.parent / "ro"
        parent.mkdir()
        parent.chmod(0o555)
        try:
            assert run(["run", str(spec), "-o", str(parent / "out"), "-q"]) == 2
        finally:
            parent.chmod(0o755)
        assert "Permission denied" in one_error_line(capsys)
        return
    with tmpfs(spec.parent / "ro", "ro,size=1m") as parent:  # root ignores permissions: a read-only mount
        assert run(["run", str(spec), "-o", str(parent / "out"), "-q"]) == 2
        assert "Read-only file system" in one_error_line(capsys)


def test_immutable_parent(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tmpfs(spec.parent / "imm", "size=1m") as parent:
        (parent / "kept.txt").write_text("kept")
        if subprocess.run(["chattr", "+i", str(parent)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not supported here")
        assert run(["run", str(spec), "-o", str(parent / "out"), "-q"]) == 2
        assert "Operation not permitted" in one_error_line(capsys)
        assert (parent / "kept.txt").read_text() == "kept"


def _cli(spec: Path, out: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "auditkit.cli",
        "run",
        str(spec),
        "-o",
        str(out),
        "-q",
        "--format",
        "json,html",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]


def _assert_full_disk_line(proc: subprocess.CompletedProcess[str], out: Path, why: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(
        f"auditkit: error: output {out}: cannot write the bundle"
    ), lines
    assert why in lines[0] and "no bundle was written" in lines[0]
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*")), (
        "the half-written folder is removed"
    )


def test_full_disk(spec: Path) -> None:
    """A real ENOSPC: a 256 KiB tmpfs, filled up to its last few KiB before the run."""
    with tmpfs(spec.parent / "disk", "size=256k") as disk:
        filler = disk / "filler"
        with filler.open("wb") as fh, contextlib.suppress(OSError):
            fh.write(b"\0" * (256 * 1024))
        filler.write_bytes(b"\0" * (filler.stat().st_size - 8 * 1024))  # leave room for the folder
        _assert_full_disk_line(_cli(spec, disk / "out"), disk / "out", "No space left on device")


def test_file_size_limit_as_an_ordinary_user(spec: Path) -> None:
    """Without root: RLIMIT_FSIZE makes the kernel refuse any write past 16 KiB (EFBIG)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    out = spec.parent / "big-out"
    _assert_full_disk_line(_cli(spec, out, preexec_fn=limit), out, "File too large")


def _fifo(out: Path) -> None:
    os.mkfifo(out / "pipe")


def _dangling(out: Path) -> None:
    (out / "gone").symlink_to(out.parent / "does-not-exist")


def _manifest_link(out: Path) -> None:
    real = out.parent / "real-manifest.json"
    shutil.move(str(out / "manifest.json"), real)
    (out / "manifest.json").symlink_to(real)


def _binary_manifest(out: Path) -> None:
    (out / "manifest.json").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


def _listed_dir_as_file(out: Path) -> None:
    man = json.loads((out / "manifest.json").read_text())
    man["outputs"].append({"path": "../outside.txt", "sha256": "0" * 64, "bytes": 1})
    (out / "manifest.json").write_text(json.dumps(man))
    (out / "user.txt").write_text("mine")


@pytest.mark.parametrize(
    "damage, named",
    [
        (_fifo, "pipe (a symbolic link or special file"),
        (_dangling, "gone (a symbolic link or special file"),
        (_manifest_link, "not an auditkit bundle"),
        (_binary_manifest, "not an auditkit bundle"),
        (_listed_dir_as_file, "user.txt (not listed"),
    ],
    ids=["fifo", "dangling-link", "manifest-is-a-link", "binary-manifest", "manifest-lists-outside-paths"],
)
def test_hostile_bundle_contents(
    spec: Path, capsys: pytest.CaptureFixture[str], damage: object, named: str
) -> None:
    out = bundle(spec, spec.parent / "out")
    damage(out)  # type: ignore[operator]
    before = snapshot(out)
    capsys.readouterr()
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 2
    assert named in one_error_line(capsys)
    assert snapshot(out) == before


@pytest.mark.parametrize("where", ["cwd", "spec-folder", "root", "empty-string"])
def test_hostile_output_places(
    spec: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Folders full of other things: the working directory, the spec's own folder, /."""
    monkeypatch.chdir(spec.parent)
    target = {"cwd": ".", "spec-folder": str(spec.parent), "root": "/", "empty-string": ""}[where]
    before = snapshot(spec.parent)
    assert run(["run", str(spec), "-o", target, "-q"]) == 2
    one_error_line(capsys)
    assert snapshot(spec.parent) == before
