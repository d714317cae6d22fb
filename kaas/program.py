"""The Pulumi program: spec + rollout record -> cluster plan -> KaasCluster -> stack outputs."""

from __future__ import annotations

from pathlib import Path

import pulumi

from kaas.cluster import KaasCluster
from kaas.cluster_plan import make_cluster_plan
from kaas.rollout import ClusterState
from kaas.rollout.record import load_record, record_path
from kaas.spec import ClusterSpec, load_for_current_stack


def deploy(spec: ClusterSpec, recorded: ClusterState | None = None, source: str | None = None) -> KaasCluster:
    """Build the next rollout step of ``spec`` from the ``recorded`` node revisions (None: a new cluster)."""
    cluster = KaasCluster(spec.name, make_cluster_plan(spec, recorded, source))
    for key, value in cluster.stack_outputs().items():
        pulumi.export(key, value)
    return cluster


def current_record_path() -> Path:
    """The rollout record of the running stack: config ``kaas:rollout`` (a file) or ``stacks/rollout/<stack>.yaml``."""
    explicit = pulumi.Config("kaas").get("rollout")
    return Path(explicit) if explicit else record_path(pulumi.get_stack())


def main() -> None:
    """What ``pulumi up`` runs: the spec of the current stack, one rollout step further."""
    spec = load_for_current_stack()
    path = current_record_path()
    deploy(spec, load_record(path, spec), str(path))
