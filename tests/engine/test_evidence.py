"""Evidence that covers everything and can be signed: the manifest hashes the code a verdict
depends on (model factory and its helpers, ``checks.paths`` modules, plugin distributions) and the
baseline; an Ed25519 signature over manifest.json catches a bundle whose results and manifest were
rewritten together."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main
from auditkit.results.bundle import verify

CARD = """
card:
  owners: [{name: ML team, contact: ml@example.com}]
  intended_use: Screening support for trained staff only.
  out_of_scope: Automated decisions without a human in the loop.
  limitations: Trained on a small, old sample from one market.
  ethical_considerations: Error rates by group are monitored each release.
  license: Apache-2.0
"""


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def _data(root: Path, n_features: int = 2) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, n_features))
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(n_features)])
    df["y"] = (x[:, 0] > 0).astype(int)
    df.iloc[:60].to_csv(root / "train.csv", index=False)
    df.iloc[60:].to_csv(root / "test.csv", index=False)


def _spec(root: Path, body: str, formats: str = "[json]") -> Path:
    _data(root)
    spec = root / "audit.yaml"
    spec.write_text(
        textwrap.dedent(f"""
        version: 1
        name: evidence
        data:
          label: y
          splits: {{train: train.csv, test: test.csv}}
        report: {{formats: {formats}}}
        """)
        + textwrap.dedent(body)
        + CARD
    )
    return spec


# ---------------------------------------------------------------- what the manifest covers


def test_editing_the_factorys_forward_or_its_helper_fails_verify(tmp_path: Path) -> None:
    """On main the factory's source was no input: an edited ``forward`` still verified OK."""
    import torch
    from safetensors.torch import save_file

    tag = uuid.uuid4().hex[:8]
    (tmp_path / f"helpers_{tag}.py").write_text("SCALE = 1.0\n")
    (tmp_path / f"net_{tag}.py").write_text(
        textwrap.dedent(f"""
        import torch
        from helpers_{tag} import SCALE

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(2, 2)

            def forward(self, x):
                return self.lin(x) * SCALE

        def make():
            return Net()
        """)
    )
    torch.manual_seed(0)
    sd = {f"lin.{k}": v for k, v in torch.nn.Linear(2, 2).state_dict().items()}
    save_file(sd, str(tmp_path / "w.safetensors"))
    spec = _spec(
        tmp_path,
        f"model: {{factory: 'net_{tag}:make', weights: w.safetensors}}\nchecks: {{select: [AK-GOV-001]}}\n",
    )
    out = tmp_path / "out"
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    code = {Path(e["path"]).name: e["role"] for e in manifest["inputs"] if e["role"] == "model.factory"}
    assert code == {f"net_{tag}.py": "model.factory", f"helpers_{tag}.py": "model.factory"}, manifest[
        "inputs"
    ]
    assert verify(out) == []
    for name, old, new in ((f"net_{tag}.py", "* SCALE", "* SCALE * 0"), (f"helpers_{tag}.py", "1.0", "0.0")):
        path = tmp_path / name
        original = path.read_text()
        path.write_text(original.replace(old, new))
        try:
            assert verify(out) == [f"changed input: model.factory {name}"]
        finally:
            path.write_text(original)
    assert verify(out) == []


def test_checks_paths_modules_and_the_baseline_are_inputs(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "mine.py").write_text(
        textwrap.dedent('''
        from auditkit import Metric, Outcome, check

        @check(id="LOCAL-EV-001", title="A local metric", requires=("train",))
        def local_metric(ctx, /, *, minimum: float = 0.5):
            """A fixed metric.

            Parameters
            ----------
            minimum: its threshold.
            """
            return Outcome.from_metrics([Metric("score", 0.9, threshold=minimum, direction="higher")])
        ''')
    )
    spec = _spec(tmp_path, "checks: {paths: [local], select: [LOCAL-EV, AK-GOV-001]}\n")
    first = tmp_path / "first"
    assert run(["run", str(spec), "-o", str(first), "-q"]) == 0
    out = tmp_path / "out"
    assert run(["run", str(spec), "-o", str(out), "-q", "--baseline", str(first / "results.json")]) == 0
    roles = {e["role"]: e["path"] for e in json.loads((out / "manifest.json").read_text())["inputs"]}
    assert roles["checks.paths"] == "local/mine.py" and "gate.baseline" in roles
    assert verify(out) == []
    mine = tmp_path / "local" / "mine.py"
    mine.write_text(mine.read_text().replace("0.9", "0.1"))
    assert verify(out) == ["changed input: checks.paths local/mine.py"]
    mine.write_text(mine.read_text().replace("0.1", "0.9"))
    base = first / "results.json"
    base.write_text(base.read_text().replace('"passed"', '"failed"'))
    assert [p for p in verify(out) if "gate.baseline" in p], verify(out)
    # waivers are in the spec, which is an input: a changed waiver fails verify
    spec.write_text(
        spec.read_text() + "gate: {waivers: [{check: AK-GOV-001, reason: x, expires: 2099-01-01}]}\n"
    )
    assert "changed input: spec audit.yaml" in verify(out)


def _install_plugin(tmp_path: Path) -> tuple[Path, str]:
    """A real plugin distribution built and installed by pip into a --target folder."""
    tag = uuid.uuid4().hex[:8]
    pkg = f"akplug_{tag}"
    src = tmp_path / "plugin-src"
    (src / pkg).mkdir(parents=True)
    (src / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "akplug-{tag}"
        version = "1.2.3"
        [project.entry-points."auditkit.checks"]
        plug{tag} = "{pkg}"
        [tool.setuptools]
        packages = ["{pkg}"]
        """)
    )
    (src / pkg / "__init__.py").write_text(
        textwrap.dedent('''
        from auditkit import Metric, Outcome, check

        @check(id="PLUG-EV-001", title="A plugin metric", requires=("train",))
        def plugin_metric(ctx, /, *, minimum: float = 0.5):
            """A fixed metric.

            Parameters
            ----------
            minimum: its threshold.
            """
            return Outcome.from_metrics([Metric("score", 0.9, threshold=minimum, direction="higher")])
        ''')
    )
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return site, pkg


def test_a_plugin_distribution_is_an_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site, pkg = _install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    spec = _spec(tmp_path, "checks: {select: [PLUG-EV, AK-GOV-001]}\n")
    out = tmp_path / "out"
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 0
    inputs = json.loads((out / "manifest.json").read_text())["inputs"]
    dist = next(e for e in inputs if e.get("kind") == "distribution" and e["version"] == "1.2.3")
    assert dist["role"].startswith("plugin:plug") and dist["files"] >= 1
    # the digest is recomputed from the installed files listed in RECORD (independently here)
    from importlib import metadata

    d = metadata.distribution(dist["distribution"])
    lines = sorted(
        f"{f.as_posix()},{hashlib.sha256(Path(str(d.locate_file(f))).read_bytes()).hexdigest()}"
        for f in d.files or [] if f.hash is not None
    )  # fmt: skip
    assert dist["sha256"] == hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert verify(out) == []
    installed = site / pkg / "__init__.py"
    installed.write_text(installed.read_text().replace("0.9", "0.1"))
    problems = verify(out)
    assert (
        f"changed input: {dist['role']} {dist['distribution']}==1.2.3: its installed files differ" in problems
    )
    shutil.rmtree(site / pkg)
    shutil.rmtree(next(site.glob("*.dist-info")))
    assert f"missing input: {dist['role']} distribution {dist['distribution']} is not installed" in verify(
        out
    )


# ---------------------------------------------------------------- signing


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(bundle signed by run --sign with a PDF, private key, public key)."""
    root = tmp_path_factory.mktemp("signed")
    assert run(["keygen", str(root / "key")]) == 0
    spec = _spec(root, "checks: {select: [AK-GOV-001, AK-BAL-001]}\n", formats="[json, pdf, html]")
    out = root / "out"
    assert run(["run", str(spec), "-o", str(out), "-q", "--sign", str(root / "key")]) == 0
    return out, root / "key", root / "key.pub"


def _fingerprint(pub: Path) -> str:
    from auditkit.results.signing import fingerprint, load_public_key

    return fingerprint(load_public_key(pub))


def test_keygen_writes_a_private_key_0600_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k"
    assert run(["keygen", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in key.read_bytes() and b"PUBLIC KEY" in (tmp_path / "k.pub").read_bytes()
    before = key.read_bytes(), (tmp_path / "k.pub").read_bytes()
    capsys.readouterr()
    assert run(["keygen", str(key)]) == 2
    assert capsys.readouterr().err.strip().startswith("auditkit: error: keygen: ")
    (tmp_path / "other.pub").write_text("my other key")
    assert run(["keygen", str(tmp_path / "other")]) == 2
    assert not (tmp_path / "other").exists() and (tmp_path / "other.pub").read_text() == "my other key"
    assert (key.read_bytes(), (tmp_path / "k.pub").read_bytes()) == before


def test_a_signed_bundle_verifies_with_its_key_and_says_so_without(
    signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out, key, pub = signed
    fp = _fingerprint(pub)
    sig = json.loads((out / "manifest.sig").read_text())
    assert sig["algorithm"] == "ed25519" and sig["public_key_fingerprint"] == fp
    assert json.loads((out / "manifest.json").read_text())["signing"]["public_key_fingerprint"] == fp
    capsys.readouterr()
    assert run(["verify", str(out)]) == 0  # manifest.sig is no "unlisted file"
    assert f"signed by {fp}; signature NOT checked" in capsys.readouterr().out
    assert run(["verify", str(out), "--key", str(pub)]) == 0
    assert f"signature by {fp} checked" in capsys.readouterr().out


def test_the_signature_checks_independently_with_openssl(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl here")
    out, _, pub = signed
    raw = base64.b64decode(json.loads((out / "manifest.sig").read_text())["signature"])
    (tmp_path / "sig.bin").write_bytes(raw)
    cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
           "-in", str(out / "manifest.json"), "-sigfile", str(tmp_path / "sig.bin")]  # fmt: skip
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    (tmp_path / "sig.bin").write_bytes(bytes([raw[0] ^ 1]) + raw[1:])
    assert subprocess.run(cmd, capture_output=True).returncode != 0


def _rewrite_results_and_manifest(src: Path, dst: Path, *, drop_signature: bool) -> Path:
    """The attack: results.json rewritten, the manifest re-hashed to match, the PDF deleted."""
    shutil.copytree(src, dst)
    (dst / "report.pdf").unlink()
    (dst / "report.html").unlink()
    res = dst / "results.json"
    doc = json.loads(res.read_text())
    doc["gate"]["decision"] = "fail" if doc["gate"]["decision"] == "pass" else "pass"
    res.write_text(json.dumps(doc))
    man = json.loads((dst / "manifest.json").read_text())
    man["outputs"] = [
        {
            "path": "results.json",
            "sha256": hashlib.sha256(res.read_bytes()).hexdigest(),
            "bytes": res.stat().st_size,
        }
    ]
    if drop_signature:
        man.pop("signing")
        (dst / "manifest.sig").unlink()
    (dst / "manifest.json").write_text(json.dumps(man))
    return dst


def test_results_and_manifest_rewritten_together_fail_verify_with_the_key(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    out, key, pub = signed
    stripped = _rewrite_results_and_manifest(out, tmp_path / "stripped", drop_signature=True)
    assert verify(stripped) == [], "without a key nothing can tell (why --key exists)"
    assert run(["verify", str(stripped), "--key", str(pub)]) == 1
    assert verify(stripped, key=pub) == [
        f"not signed: no manifest.sig (--key {_fingerprint(pub)} asked for one)"
    ]
    kept = _rewrite_results_and_manifest(out, tmp_path / "kept", drop_signature=False)
    assert "manifest.sig: signs another manifest.json than the bundle's" in verify(kept)
    assert any("Ed25519 signature does not match" in p for p in verify(kept, key=pub))
    # the attacker signs with a key of their own: the trusted key says no
    resigned = _rewrite_results_and_manifest(out, tmp_path / "resigned", drop_signature=True)
    assert run(["keygen", str(tmp_path / "evil")]) == 0
    assert run(["sign", str(resigned), "--key", str(tmp_path / "evil")]) == 0
    assert verify(resigned) == []
    assert verify(resigned, key=pub) == [
        f"manifest.sig: signed by {_fingerprint(tmp_path / 'evil.pub')}, not by the given key {_fingerprint(pub)}"
    ]


def test_a_forged_signature_with_the_right_fingerprint_fails(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    out, _, pub = signed
    dst = tmp_path / "forged"
    shutil.copytree(out, dst)
    sig = json.loads((dst / "manifest.sig").read_text())
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[10] ^= 0x40
    sig["signature"] = base64.b64encode(bytes(raw)).decode()
    (dst / "manifest.sig").write_text(json.dumps(sig))
    assert verify(dst) == []  # consistent on its face
    assert verify(dst, key=pub) == [
        f"manifest.sig: the Ed25519 signature does not match manifest.json and key {_fingerprint(pub)}"
    ]


def test_the_cover_names_the_signing_key_or_says_unsigned_at_render_time(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from pypdf import PdfReader

    out, key, pub = signed
    fp = _fingerprint(pub)
    cover = "".join(PdfReader(str(out / "report.pdf")).pages[0].extract_text().split())
    assert f"signedwithEd25519key{fp}" in cover, cover[:2000]
    assert f"signed with Ed25519 key {fp}" in (out / "report.html").read_text()
    # a bundle signed later: its reports were rendered before, and say so
    later = tmp_path / "later"
    shutil.copytree(out, later)
    (later / "manifest.sig").unlink()
    man = json.loads((later / "manifest.json").read_text())
    man.pop("signing")
    (later / "manifest.json").write_text(json.dumps(man))
    html = (later / "report.html").read_text()
    html_entry = next(e for e in man["outputs"] if e["path"] == "report.html")
    from auditkit.render.html import render as render_html

    doc = json.loads((later / "results.json").read_text())
    render_html(doc, tmp_path, attachments={"results.json": (later / "results.json").read_bytes(),
                                            "manifest.json": json.dumps(man).encode()})  # fmt: skip
    assert "unsigned at render time" in (tmp_path / "report.html").read_text() and html_entry and html


def test_sign_later_refuses_a_tampered_or_signed_bundle_and_bad_keys(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, key, pub = signed
    capsys.readouterr()
    assert run(["sign", str(out), "--key", str(key)]) == 2  # already signed
    assert "signed already" in capsys.readouterr().err
    dst = tmp_path / "b"
    shutil.copytree(out, dst)
    (dst / "manifest.sig").unlink()
    man = json.loads((dst / "manifest.json").read_text())
    man.pop("signing")
    (dst / "manifest.json").write_text(json.dumps(man))
    assert run(["sign", str(dst), "--key", str(pub)]) == 2  # a public key cannot sign
    assert "this is a public key" in capsys.readouterr().err
    (dst / "results.json").write_text("{}")
    assert run(["sign", str(dst), "--key", str(key)]) == 1  # does not sign a bundle that fails verify
    assert not (dst / "manifest.sig").exists()
    shutil.rmtree(dst)
    shutil.copytree(out, dst)
    (dst / "manifest.sig").unlink()
    (dst / "manifest.json").write_text(json.dumps(man))
    assert run(["sign", str(dst), "--key", str(key)]) == 0
    capsys.readouterr()
    assert run(["verify", str(dst), "--key", str(pub)]) == 0
    (tmp_path / "garbage.pem").write_text("not a key")
    assert run(["verify", str(dst), "--key", str(tmp_path / "garbage.pem")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"auditkit: error: --key {tmp_path / 'garbage.pem'}: not a PEM public key"]


def test_an_encrypted_key_needs_its_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("AUDITKIT_KEY_PASSPHRASE", "correct horse")
    assert run(["keygen", str(tmp_path / "k")]) == 0
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "k").read_bytes()
    spec = _spec(tmp_path, "checks: {select: [AK-GOV-001]}\n")
    assert run(["run", str(spec), "-o", str(tmp_path / "out"), "-q", "--sign", str(tmp_path / "k")]) == 0
    assert verify(tmp_path / "out", key=tmp_path / "k.pub") == []
    monkeypatch.delenv("AUDITKIT_KEY_PASSPHRASE")
    capsys.readouterr()
    assert run(["run", str(spec), "-o", str(tmp_path / "out2"), "-q", "--sign", str(tmp_path / "k")]) == 2
    assert "AUDITKIT_KEY_PASSPHRASE" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()


def test_key_files_are_not_world_readable_by_accident(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        assert run(["keygen", str(tmp_path / "k")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600


def test_run_sign_with_a_bad_key_is_one_line_before_anything_runs(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, pub = signed
    spec = _spec(tmp_path, "checks: {select: [AK-GOV-001]}\n")
    (tmp_path / "rsa.pem").write_bytes(_rsa_private_pem())
    cases = [
        (tmp_path / "nope", "cannot read it"),
        (pub, "this is a public key"),
        (tmp_path / "rsa.pem", "auditkit signs with Ed25519 keys"),
    ]
    for key, why in cases:
        capsys.readouterr()
        assert run(["run", str(spec), "-o", str(tmp_path / "out"), "-q", "--sign", str(key)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"auditkit: error: --sign {key}: ") and why in err[0], err
        assert not (tmp_path / "out").exists()


def _rsa_private_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize("kind", ["symlink", "directory", "garbage", "extra-key"])
def test_a_hostile_signature_file_is_a_problem_not_a_crash(
    signed: tuple[Path, Path, Path], tmp_path: Path, kind: str
) -> None:
    out, _, pub = signed
    dst = tmp_path / "b"
    shutil.copytree(out, dst)
    sig = dst / "manifest.sig"
    doc = json.loads(sig.read_text())
    sig.unlink()
    if kind == "symlink":
        (tmp_path / "real.sig").write_text(json.dumps(doc))
        sig.symlink_to(tmp_path / "real.sig")
    elif kind == "directory":
        sig.mkdir()
    elif kind == "garbage":
        sig.write_bytes(b"\xff\xfe not json")
    else:
        sig.write_text(json.dumps({**doc, "public_key": "trust me"}))
    for key in (None, pub):
        problems = verify(dst, key=key)
        assert any(p.startswith("manifest.sig: not an auditkit signature") for p in problems), problems


def test_a_custom_optimizer_module_is_an_input(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    (tmp_path / f"opt_{tag}.py").write_text("import torch\n\n\nclass MyAdam(torch.optim.Adam):\n    pass\n")
    spec = _spec(
        tmp_path,
        f"model: {{builtin: mlp}}\ntraining: {{optimizer: {{name: 'opt_{tag}:MyAdam', lr: 0.01}}, epochs: 1}}\n"
        "checks: {select: [AK-GOV-001]}\n",
    )
    out = tmp_path / "out"
    assert run(["run", str(spec), "-o", str(out), "-q"]) == 0
    roles = {e["path"]: e["role"] for e in json.loads((out / "manifest.json").read_text())["inputs"]}
    assert roles.get(f"opt_{tag}.py") == "training.optimizer", roles
    (tmp_path / f"opt_{tag}.py").write_text("import torch\n\n\nclass MyAdam(torch.optim.SGD):\n    pass\n")
    assert verify(out) == [f"changed input: training.optimizer opt_{tag}.py"]
