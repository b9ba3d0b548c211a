"""The built-in model's TorchScript bytes do not depend on where the code that scripted it lives,
nor on the interpreter's hash seed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import torch

from auditkit.inputs.builtin_models import _without_debug_info

SOURCE = """
import torch


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.lin(x))
"""


def _scripted_bytes(folder: Path, padding: int) -> bytes:
    """Script the same module from a file at another path, shifted by ``padding`` lines, in a fresh
    interpreter (in one process torch would mangle the second class of the same name)."""
    folder.mkdir()
    (folder / "net_module.py").write_text("\n" * padding + SOURCE)
    out = folder / "model.pt"
    script = (
        "import io, sys, torch; sys.path.insert(0, sys.argv[1]); import net_module; torch.manual_seed(0); "
        "torch.jit.save(torch.jit.script(net_module.Net()), sys.argv[2])"
    )
    # different hash seeds: torch writes a module's Final constants in set order (seeds 1 and 2 differ)
    env = {**os.environ, "PYTHONHASHSEED": str(1 + padding % 2)}
    subprocess.run(
        [sys.executable, "-c", script, str(folder), str(out)], check=True, capture_output=True, env=env
    )
    return out.read_bytes()


def _records(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {i.filename.split("/", 1)[1]: z.read(i) for i in z.infolist()}


def test_same_model_scripted_from_two_places_has_the_same_bytes_and_still_loads(tmp_path: Path) -> None:
    a, b = _scripted_bytes(tmp_path / "a", 0), _scripted_bytes(tmp_path / "checkout_b", 7)
    assert a != b  # torch's own archives differ: source maps and the serialization id they feed
    raw_a, raw_b = _records(a), _records(b)
    assert raw_a[".data/serialization_id"] != raw_b[".data/serialization_id"]
    clean_a, clean_b = _without_debug_info(a), _without_debug_info(b)
    assert clean_a == clean_b
    kept = _records(clean_a)
    assert not any(name.endswith(".debug_pkl") for name in kept)
    assert len(kept[".data/serialization_id"]) == len(raw_a[".data/serialization_id"])
    x = torch.randn(4, 3)
    original = torch.jit.load(io.BytesIO(a))
    cleaned = torch.jit.load(io.BytesIO(clean_a))
    assert torch.equal(original(x), cleaned(x))
