"""Seeds: a per-check (or per-shard) seed from the run seed and a key, the same in every process."""

from __future__ import annotations

import hashlib


def derive_seed(run_seed: int, check_id: str) -> int:
    """A per-check seed from the run seed and the check id: adding a check never moves another."""
    digest = hashlib.sha256(f"{run_seed}:{check_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
