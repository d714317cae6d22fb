"""KaasCluster: the only place that wires the layers together."""

from __future__ import annotations

from typing import Any

import pulumi

from kaas.openstack.network import ClusterNetwork
from kaas.openstack.provider import openstack_provider
from kaas.spec import ClusterSpec


class KaasCluster(pulumi.ComponentResource):
    """One customer's managed Kubernetes cluster, built from its spec."""

    def __init__(self, name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kaas:index:Cluster", name, None, opts)
        self.spec = spec
        self.openstack_provider = openstack_provider(name, spec.openstack, parent=self)
        self.network = ClusterNetwork(
            f"{name}",
            spec.networking,
            external_network=spec.openstack.external_network,
            provider=self.openstack_provider,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(self.stack_outputs())

    def stack_outputs(self) -> dict[str, Any]:
        """The stack outputs (typed by kaas.outputs once the handover lands)."""
        return {
            "clusterName": self.spec.name,
            "networkId": self.network.network_id,
            "subnetId": self.network.subnet_id,
        }
