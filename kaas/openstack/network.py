"""ClusterNetwork: the Neutron network the nodes live on, or the customer's own."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from kaas.spec.models import NetworkingSpec


class ClusterNetwork(pulumi.ComponentResource):
    """Network, subnet (node CIDR), router to the external network, router interface.

    With ``existing_network_id``/``existing_subnet_id`` in the spec, nothing is
    created and the customer's network is used as it is.
    """

    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    external_network_id: pulumi.Output[str]
    # What must exist before a port on the subnet can get a floating IP (empty for an existing network).
    routing: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        spec: NetworkingSpec,
        external_network: str,
        provider: openstack.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:openstack:ClusterNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        # The router's gateway and the floating IPs of the API and ingress need the external network's ID.
        self.external_network_id = openstack.networking.get_network_output(
            name=external_network,
            external=True,
            opts=pulumi.InvokeOutputOptions(parent=self, provider=provider),
        ).id

        if spec.existing_network_id is not None and spec.existing_subnet_id is not None:
            self.network_id = pulumi.Output.from_input(spec.existing_network_id)
            self.subnet_id = pulumi.Output.from_input(spec.existing_subnet_id)
            self.routing = []
        else:
            network = openstack.networking.Network(
                f"{name}-network", name=name, admin_state_up=True, mtu=spec.mtu, opts=child
            )
            subnet = openstack.networking.Subnet(
                f"{name}-subnet",
                name=f"{name}-nodes",
                network_id=network.id,
                cidr=spec.node_cidr,
                ip_version=4,
                dns_nameservers=list(spec.dns_servers),
                opts=pulumi.ResourceOptions(parent=network, provider=provider),
            )
            router = openstack.networking.Router(
                f"{name}-router", name=name, external_network_id=self.external_network_id, opts=child
            )
            router_interface = openstack.networking.RouterInterface(
                f"{name}-router-interface",
                router_id=router.id,
                subnet_id=subnet.id,
                opts=pulumi.ResourceOptions(parent=router, provider=provider),
            )
            self.network_id = network.id
            self.subnet_id = subnet.id
            self.routing = [router_interface]

        self.register_outputs({"network_id": self.network_id, "subnet_id": self.subnet_id})
