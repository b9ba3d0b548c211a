"""One thread-count policy for every library that computes in parallel (torch, faiss, OpenMP).

On 2 cores, one thread is often fastest: the second core serves the Python process and I/O, and
oversubscription makes OpenMP spin. ``AUDITKIT_THREADS`` overrides the default. torch and faiss
share the OpenMP runtime, so a library that sets its own count changes the other's: everything
goes through ``default_threads``.
"""

from __future__ import annotations

import os


def default_threads() -> int:
    """``AUDITKIT_THREADS`` if set; else 1 on machines with ≤ 2 cores, half the cores otherwise."""
    env = os.environ.get("AUDITKIT_THREADS")
    if env:
        return max(1, int(env))
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else max(1, cores // 2)
