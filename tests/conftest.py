"""Shared test settings: one torch thread (fastest on 2 cores), no colour, no plugin surprises."""

from __future__ import annotations

import os

os.environ.setdefault("AUDITKIT_THREADS", "1")
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One local Ray cluster (2 CPUs) for the session: start-up is 7-20 s, so it is paid once.

    HOME points at a temporary folder: Ray's token auth writes ~/.ray/auth_token (ray#64755).
    """
    try:
        import ray
    except ImportError:  # part of the dev extra: a missing Ray fails the Ray tests, it does not skip them
        pytest.fail("Ray is part of the dev extra: pip install -c constraints.txt -e '.[dev]'")
    home = tmp_path_factory.mktemp("ray-home")
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        if old_home is not None:
            os.environ["HOME"] = old_home
