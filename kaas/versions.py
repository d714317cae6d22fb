"""Pinned component versions: the one place they are set (a spec may override them).

Release artifacts downloaded on nodes are verified against the sha256 sums below
(linux-amd64). The sums were taken from kubespray's
``roles/kubespray_defaults/vars/main/checksums.yml``, which records the upstream
release sums. A spec may only pin a version whose sum is listed here.
"""

import re

# The one grammar of a release version: the spec's kubernetes, etcd and containerd fields
# (kaas.spec.models) and the rollout model (kaas.rollout.model) both parse with
# parse_version, so what the spec accepts the rollout can order. No pre-release or build
# suffix (pkgs.k8s.io and the pinned tarballs have none) and no leading zeros.
RELEASE_VERSION = re.compile(r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
RELEASE_VERSION_RULE = "MAJOR.MINOR.PATCH like 1.34.2 (an optional leading 'v', no suffix)"


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.34.2"`` or ``"v1.34.2"`` -> ``(1, 34, 2)``; ValueError for anything else."""
    match = RELEASE_VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not a version: use {RELEASE_VERSION_RULE}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


KUBERNETES = "1.34.2"
ETCD = "3.6.5"
CONTAINERD = "2.1.4"

# pkgs.k8s.io (OBS) package revision appended to the Kubernetes version: kubeadm=1.34.2-1.1
KUBERNETES_DEB_REVISION = "1.1"
# Signing key of the pkgs.k8s.io apt repositories ("isv:kubernetes OBS Project").
KUBERNETES_APT_KEY_FINGERPRINT = "DE15B14486CD377B9E876E1A234654DA9A296436"

ETCD_SHA256: dict[str, str] = {
    "3.6.6": "887afaa4a99f22d802ccdfbe65730a5e79aa5c9ce2c8799c67e9d804c50ecedb",
    "3.6.5": "66bad39ed920f6fc15fd74adcb8bfd38ba9a6412f8c7852d09eb11670e88cac3",
    "3.6.4": "4d5f3101daa534e45ccaf3eec8d21c19b7222db377bcfd5e5a9144155238c105",
    "3.5.25": "168af82b59772e1811a9af7b358d42f5c6df44e0d9767afb006ecf12c4bbd607",
}
"""sha256 of etcd-v<version>-linux-amd64.tar.gz from github.com/etcd-io/etcd/releases."""

CONTAINERD_SHA256: dict[str, str] = {
    "2.1.5": "403af72d9f956ed8a5ad5b0ac0f1e8e371a1488f2b9edf9b4ba13db0653936ea",
    "2.1.4": "316d510a0428276d931023f72c09fdff1a6ba81d6cc36f31805fea6a3c88f515",
}
"""sha256 of containerd-<version>-linux-amd64.tar.gz from github.com/containerd/containerd/releases."""

# Revision of the bootstrap templates (kaas/bootstrap). Bump it when a change to the rendered
# cloud-init must reach running nodes: the rollout planner then rebuilds every node, one
# safe step at a time. Without a bump a template change reaches only nodes built later.
# tests/test_template_revision.py fails on any change to the rendered user data until it is
# either bumped or the change is recorded as one running nodes need not get.
BOOTSTRAP_TEMPLATE = 1
