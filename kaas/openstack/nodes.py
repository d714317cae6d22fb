"""NodeTier: one tier of nodes (etcd, master or worker) with its server group and ports.

The placement is data first (:func:`plan_nodes`): node ``i`` of a tier is always
named ``<cluster>-<tier>-<i>``, has the fixed address ``i`` of the tier's block in
the address plan and sits in availability zone ``i mod len(zones)``. Nothing about
node ``i`` depends on the tier's count, so growing a tier only adds nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from kaas.openstack.addressing import node_name, plan_addresses
from kaas.openstack.security import Role
from kaas.spec.models import ClusterSpec, NodeTierSpec

TIERS: tuple[Role, ...] = (Role.ETCD, Role.MASTER, Role.WORKER)

# etcd members hold the cluster's state: a new image or new user data must never
# replace them through a routine `pulumi up` (that would replace the quorum at once).
ETCD_IGNORE_CHANGES = ["image_name", "image_id", "user_data", "block_devices"]
# Masters run the control plane: changed user data (a new template, a rotated token)
# or a new image applies to masters built later, never by replacing every master at
# once (that takes the API down). Roll a new image through them one at a time with
# `pulumi up --replace <urn>`.
MASTER_IGNORE_CHANGES = ["user_data", "image_name", "image_id", "block_devices"]


@dataclass(frozen=True)
class NodePlan:
    tier: Role
    index: int
    name: str
    fixed_ip: str
    availability_zone: str


def tier_spec(spec: ClusterSpec, tier: Role) -> NodeTierSpec:
    tiers: dict[Role, NodeTierSpec] = {Role.ETCD: spec.etcd, Role.MASTER: spec.masters, Role.WORKER: spec.workers}
    return tiers[tier]


def plan_nodes(spec: ClusterSpec, tier: Role) -> tuple[NodePlan, ...]:
    """Name, fixed IP and availability zone of every node of ``tier`` (zones round-robin)."""
    plan = plan_addresses(spec)
    addresses = {Role.ETCD: plan.etcd, Role.MASTER: plan.masters, Role.WORKER: plan.workers}[tier]
    zones = spec.openstack.availability_zones
    return tuple(
        NodePlan(tier, i, node_name(spec.name, tier, i), address, zones[i % len(zones)])
        for i, address in enumerate(addresses)
    )


class NodeTier(pulumi.ComponentResource):
    """A server group, one Neutron port (fixed IP, security groups) and one instance per node.

    ``user_data`` (one per node, from the bootstrap layer) is an input; without it the
    instances boot with none.
    """

    names: tuple[str, ...]
    addresses: tuple[str, ...]
    server_group: openstack.compute.ServerGroup
    ports: list[openstack.networking.Port]
    instances: list[openstack.compute.Instance]

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        tier: Role,
        network_id: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        security_group_ids: Sequence[pulumi.Input[str]],
        provider: openstack.Provider,
        allowed_address_pairs: Sequence[str] = (),
        user_data: Sequence[pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:openstack:NodeTier", f"{name}-{tier}", None, opts)
        nodes = plan_nodes(spec, tier)
        if user_data is not None and len(user_data) != len(nodes):
            raise ValueError(f"{tier}: {len(user_data)} user data documents for {len(nodes)} nodes")
        settings = tier_spec(spec, tier)
        stateful = tier is Role.ETCD
        self.names = tuple(n.name for n in nodes)
        self.addresses = tuple(n.fixed_ip for n in nodes)

        self.server_group = openstack.compute.ServerGroup(
            f"{name}-{tier}",
            name=f"{name}-{tier}",
            policies=settings.server_group_policy.value,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=stateful),
        )
        image_id: pulumi.Output[str] | None = None
        if settings.boot_volume_gb is not None:
            image_id = openstack.images.get_image_output(
                name=spec.openstack.image,
                most_recent=True,
                opts=pulumi.InvokeOutputOptions(parent=self, provider=provider),
            ).id

        self.ports = []
        self.instances = []
        for node in nodes:
            port = openstack.networking.Port(
                f"{node.name}-port",
                name=node.name,
                network_id=network_id,
                admin_state_up=True,
                fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet_id, ip_address=node.fixed_ip)],
                security_group_ids=list(security_group_ids),
                allowed_address_pairs=[
                    openstack.networking.PortAllowedAddressPairArgs(ip_address=cidr) for cidr in allowed_address_pairs
                ]
                or None,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=stateful),
            )
            block_devices = None
            if image_id is not None:
                block_devices = [
                    openstack.compute.InstanceBlockDeviceArgs(
                        source_type="image",
                        destination_type="volume",
                        uuid=image_id,
                        volume_size=settings.boot_volume_gb,
                        boot_index=0,
                        delete_on_termination=True,
                    )
                ]
            instance = openstack.compute.Instance(
                node.name,
                name=node.name,
                flavor_name=settings.flavor.name,
                image_name=None if block_devices else spec.openstack.image,
                block_devices=block_devices,
                key_pair=spec.openstack.key_pair,
                availability_zone=node.availability_zone,
                scheduler_hints=[openstack.compute.InstanceSchedulerHintArgs(group=self.server_group.id)],
                networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
                user_data=user_data[node.index] if user_data is not None else None,
                metadata={"kaas-cluster": spec.name, "kaas-tier": str(tier), "kaas-node": node.name},
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=provider,
                    protect=stateful,
                    ignore_changes={Role.ETCD: ETCD_IGNORE_CHANGES, Role.MASTER: MASTER_IGNORE_CHANGES}.get(tier),
                    # The replacement takes over the node's port (its fixed IP), which Nova binds to
                    # one server at a time: the old instance must go first.
                    delete_before_replace=True,
                ),
            )
            self.ports.append(port)
            self.instances.append(instance)

        self.register_outputs({"addresses": list(self.addresses), "instance_ids": [i.id for i in self.instances]})
