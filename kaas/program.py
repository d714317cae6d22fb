"""The Pulumi program: spec -> KaasCluster -> stack outputs."""

from __future__ import annotations

import pulumi

from kaas.cluster import KaasCluster
from kaas.spec import ClusterSpec, load_alerting_secrets, load_for_current_stack


def deploy(spec: ClusterSpec) -> KaasCluster:
    """Build the whole cluster for ``spec`` and export its outputs."""
    cluster = KaasCluster(spec.name, spec, alerting_secrets=load_alerting_secrets(spec))
    for key, value in cluster.stack_outputs().items():
        pulumi.export(key, value)
    return cluster


def main() -> None:
    """What ``pulumi up`` runs: the spec of the current stack, deployed."""
    deploy(load_for_current_stack())
