"""Shared test settings: one torch thread (fastest on 2 cores), no colour, no plugin surprises."""

from __future__ import annotations

import os

os.environ.setdefault("AUDITKIT_THREADS", "1")
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
