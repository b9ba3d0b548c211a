"""Detached Ed25519 signatures over a bundle's manifest.json (``cryptography``).

A key pair is two PEM files: the private key (PKCS#8, mode 0600; encrypted with
``AUDITKIT_KEY_PASSPHRASE`` when that is set) and the public key (SubjectPublicKeyInfo, ``.pub``).
A key's fingerprint is ``sha256:`` + the hex sha256 of its 32 raw public-key bytes.

The signature is over the exact bytes of manifest.json, which lists the sha256 of every input and
output, so it covers the whole bundle. It lives beside the manifest in ``manifest.sig``::

    {"format": "auditkit-signature", "version": "1", "algorithm": "ed25519",
     "signed_file": "manifest.json", "manifest_sha256": "<hex>",
     "public_key_fingerprint": "sha256:<hex>", "signature": "<base64 of 64 bytes>"}

The public key itself is not in the file on purpose: a signature checks only against a key the
verifier already trusts (``auditkit verify DIR --key PUB``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from auditkit.errors import InputError

SIG_FORMAT = "auditkit-signature"
SIG_VERSION = "1"
ALGORITHM = "ed25519"
PASSPHRASE_ENV = "AUDITKIT_KEY_PASSPHRASE"


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode("utf-8") if value else None


def fingerprint(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def keygen(path: Path) -> tuple[Path, Path, str]:
    """Write a new key pair: ``path`` (private, 0600) and ``path.pub``; never overwrites a file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    pub = path.with_name(path.name + ".pub")
    for p in (path, pub):
        if p.exists() or p.is_symlink():
            raise InputError(f"keygen: {p} exists; auditkit never overwrites a key (choose another path)")
    key = Ed25519PrivateKey.generate()
    password = _passphrase()
    encryption: Any = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _create(path, private, 0o600)
    try:
        _create(pub, public, 0o644)
    except BaseException:
        path.unlink()
        raise
    return path, pub, fingerprint(key.public_key())


def _create(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively with ``mode`` (O_EXCL: a file that appeared meanwhile is kept)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InputError(f"{path} exists; auditkit never overwrites it") from None
    except OSError as err:
        raise InputError(f"{path}: cannot create it ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, mode)  # the umask may have narrowed it; 0600 stays 0600 either way
    except OSError as err:
        path.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write it ({err.strerror or err})") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"{what} {path}: cannot read it ({err.strerror or err})") from None


def load_private_key(path: Path, what: str = "--key") -> Any:
    """An Ed25519 private key from a PEM file (one line, exit 2, for anything else)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(path, what)
    try:
        key = serialization.load_pem_private_key(data, password=_passphrase())
    except TypeError as err:  # encrypted without a passphrase, or a passphrase for a plain key
        raise InputError(f"{what} {path}: {err} (set {PASSPHRASE_ENV} for an encrypted key)") from None
    except ValueError:
        hint = " (this is a public key; signing needs the private one)" if b"PUBLIC KEY" in data else ""
        raise InputError(f"{what} {path}: not a PEM private key{hint}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(
            f"{what} {path}: a {type(key).__name__}; auditkit signs with Ed25519 keys (auditkit keygen)"
        )
    return key


def load_public_key(path: Path) -> Any:
    """An Ed25519 public key from a PEM file (a private key file gives its public half)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(path, "--key")
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise InputError(f"--key {path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"--key {path}: a {type(key).__name__}; auditkit verifies Ed25519 keys")
    return key


def signature_doc(private_key: Any, manifest: bytes) -> dict[str, str]:
    return {
        "format": SIG_FORMAT,
        "version": SIG_VERSION,
        "algorithm": ALGORITHM,
        "signed_file": "manifest.json",
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "public_key_fingerprint": fingerprint(private_key.public_key()),
        "signature": base64.b64encode(private_key.sign(manifest)).decode("ascii"),
    }


def write_signature(bundle: Path, private_key: Any) -> Path:
    """Sign ``bundle/manifest.json`` into ``bundle/manifest.sig`` (never replacing one)."""
    from auditkit.results.bundle import MANIFEST, SIGNATURE

    manifest = _read(Path(bundle) / MANIFEST, "bundle")
    doc = signature_doc(private_key, manifest)
    path = Path(bundle) / SIGNATURE
    _create(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8"), 0o666 & ~_umask())
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_signature(path: Path) -> dict[str, str] | None:
    """The signature document, or None when the file is not one auditkit wrote."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    keys = (
        "format",
        "version",
        "algorithm",
        "signed_file",
        "manifest_sha256",
        "public_key_fingerprint",
        "signature",
    )
    if not isinstance(doc, dict) or set(doc) != set(keys) or any(not isinstance(doc[k], str) for k in keys):
        return None
    if doc["format"] != SIG_FORMAT or doc["version"] != SIG_VERSION or doc["algorithm"] != ALGORITHM:
        return None
    return doc


def is_signature_file(path: Path) -> bool:
    return read_signature(path) is not None


def check_signature(
    bundle: Path, manifest: bytes, declared: Any, public_key: Any | None
) -> tuple[list[str], str]:
    """(problems, note) for the bundle's signature.

    Without a key only consistency is checked (a declared signer whose signature is gone, a
    signature over another manifest); the note says that the signature was not checked.
    """
    from auditkit.results.bundle import SIGNATURE

    path = Path(bundle) / SIGNATURE
    problems: list[str] = []
    declared_fp = declared.get("public_key_fingerprint") if isinstance(declared, dict) else None
    if not path.exists() and not path.is_symlink():
        if declared_fp:
            problems.append(f"signature missing: the manifest says {SIGNATURE} by {declared_fp}")
        elif public_key is not None:
            problems.append(f"not signed: no {SIGNATURE} (--key {fingerprint(public_key)} asked for one)")
        return problems, "none (the bundle is not signed)"
    doc = read_signature(path) if path.is_file() and not path.is_symlink() else None
    if doc is None:
        return [
            f"{SIGNATURE}: not an auditkit signature (format {SIG_FORMAT} {SIG_VERSION}, ed25519)"
        ], "invalid"
    fp = doc["public_key_fingerprint"]
    if doc["manifest_sha256"] != hashlib.sha256(manifest).hexdigest():
        problems.append(f"{SIGNATURE}: signs another manifest.json than the bundle's")
    if declared_fp and declared_fp != fp:
        problems.append(f"{SIGNATURE}: signed by {fp}, but the manifest names {declared_fp}")
    if public_key is None:
        return problems, f"signed by {fp}; signature NOT checked (pass --key PUBLIC_KEY to check it)"
    want = fingerprint(public_key)
    if fp != want:
        problems.append(f"{SIGNATURE}: signed by {fp}, not by the given key {want}")
        return problems, "wrong key"
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(base64.b64decode(doc["signature"], validate=True), manifest)
    except (InvalidSignature, ValueError):
        problems.append(f"{SIGNATURE}: the Ed25519 signature does not match manifest.json and key {want}")
        return problems, "bad signature"
    return problems, f"signature by {want} checked"
