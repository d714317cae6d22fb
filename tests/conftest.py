"""Fixtures shared across test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests import controlplane

# No per-example deadline: the suite shares two cores with the control plane, etcd and helm, so an
# example's wall time says nothing about the code (a 277 ms draw failed the 200 ms default under load).
# Properties still run their full max_examples; slowness is measured in bench/, not here.
settings.register_profile("kaas", deadline=None)
settings.load_profile("kaas")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    """The pinned etcd, kube-apiserver and kube-controller-manager as the plan's first master runs them.

    See tests/controlplane.py. One per test session (per xdist worker: the control-plane
    tests share an xdist_group, so one worker starts it). Tests that add cluster state add
    only what other tests do not look at.
    """
    missing = controlplane.missing_binaries()
    if missing:
        pytest.skip(
            f"control-plane binaries not built ({', '.join(missing)} missing in {controlplane.BIN_DIR}); "
            "run tools/controlplane/build.sh"
        )
    with controlplane.control_plane(tmp_path_factory.mktemp("controlplane")) as cp:
        yield cp
