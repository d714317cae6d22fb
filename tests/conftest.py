"""Fixtures shared across test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import controlplane


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
