"""NodeTier: one tier of nodes (etcd, master or worker) with its server group and ports.

The nodes come from the cluster plan (:class:`kaas.cluster_plan.ClusterPlan`): node
``i`` of a tier is named ``<cluster>-<tier>-<i>``, has the fixed address ``i`` of the
tier's block and sits in availability zone ``i mod len(zones)``; each carries the
revision it runs (image, flavor, key pair, boot volume, and through its user data
the software versions). This component only applies the rollout step:

- a node the step keeps (or retires) is declared at its recorded revision;
- a node the step creates or rebuilds is declared at the desired revision;
- every node but the one being rebuilt ignores changes to what its server was built
  with: no spec edit reaches a running node except through the planner (even on a
  stack whose record is missing); a node ``kaas roll --heal`` replaces (config
  ``kaas:heal``) counts as rebuilt, so its new server gets the current user data
  rather than the old inputs Pulumi keeps for ignored properties;
- etcd members are protected while they are members; a retired member is not, so the
  next step can delete it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_openstack as openstack

from kaas.cluster_plan import PlannedNode
from kaas.openstack.security import Role
from kaas.spec.models import ClusterSpec, NodeTierSpec

TIERS: tuple[Role, ...] = (Role.ETCD, Role.MASTER, Role.WORKER)

# What a server is built with: held nodes ignore changes to all of it (the rollout
# planner, not a spec edit, decides when a node is rebuilt).
BUILT_WITH = ["user_data", "image_name", "image_id", "block_devices", "key_pair", "flavor_name", "flavor_id"]

# Instance metadata: the node's identity and revision, read back by `kaas check` and the policy pack.
TIER_KEY = "kaas-tier"
INDEX_KEY = "kaas-index"
PHASE_KEY = "kaas-phase"
VERSION_KEY = "kaas-version"
IMAGE_KEY = "kaas-image"
TEMPLATE_KEY = "kaas-template"
CERTIFICATES_KEY = "kaas-certificates"  # only on a node whose certificates were re-issued (generation > 1)


def tier_spec(spec: ClusterSpec, tier: Role) -> NodeTierSpec:
    tiers: dict[Role, NodeTierSpec] = {Role.ETCD: spec.etcd, Role.MASTER: spec.masters, Role.WORKER: spec.workers}
    return tiers[tier]


def node_metadata(cluster: str, node: PlannedNode) -> dict[str, str]:
    return {
        "kaas-cluster": cluster,
        TIER_KEY: str(node.tier),
        "kaas-node": node.name,
        INDEX_KEY: str(node.index),
        PHASE_KEY: str(node.phase),
        VERSION_KEY: node.revision.version,
        IMAGE_KEY: node.revision.image,
        TEMPLATE_KEY: str(node.revision.template),
    } | ({CERTIFICATES_KEY: str(node.revision.certificates)} if node.revision.certificates != 1 else {})


class NodeTier(pulumi.ComponentResource):
    """A server group, one Neutron port (fixed IP, security groups) and one instance per node.

    ``user_data`` (by node name, from the bootstrap layer) is an input; without it the
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
        nodes: Sequence[PlannedNode],
        network_id: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        security_group_ids: Sequence[pulumi.Input[str]],
        provider: openstack.Provider,
        allowed_address_pairs: Sequence[str] = (),
        user_data: Mapping[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Mapping[str, Sequence[pulumi.Resource]] | None = None,
    ) -> None:
        super().__init__("kaas:openstack:NodeTier", f"{name}-{tier}", None, opts)
        if user_data is not None and set(user_data) != {n.name for n in nodes}:
            raise ValueError(f"{tier}: user data for {sorted(user_data)}, nodes {[n.name for n in nodes]}")
        settings = tier_spec(spec, tier)
        self.names = tuple(n.name for n in nodes)
        self.addresses = tuple(n.fixed_ip for n in nodes)

        self.server_group = openstack.compute.ServerGroup(
            f"{name}-{tier}",
            name=f"{name}-{tier}",
            policies=settings.server_group_policy.value,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=tier is Role.ETCD),
        )
        image_ids: dict[str, pulumi.Output[str]] = {}

        def image_id(image: str) -> pulumi.Output[str]:
            if image not in image_ids:
                image_ids[image] = openstack.images.get_image_output(
                    name=image, most_recent=True, opts=pulumi.InvokeOutputOptions(parent=self, provider=provider)
                ).id
            return image_ids[image]

        self.ports = []
        self.instances = []
        for node in nodes:
            # etcd members are protected while they are members; a retired one is deleted by the next step.
            protected = tier is Role.ETCD and node.member
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
                opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=protected),
            )
            revision = node.revision
            block_devices = None
            if revision.volume_gb is not None:
                block_devices = [
                    openstack.compute.InstanceBlockDeviceArgs(
                        source_type="image",
                        destination_type="volume",
                        uuid=image_id(revision.image),
                        volume_size=revision.volume_gb,
                        boot_index=0,
                        delete_on_termination=True,
                    )
                ]
            instance = openstack.compute.Instance(
                node.name,
                name=node.name,
                flavor_name=revision.flavor,
                image_name=None if block_devices else revision.image,
                block_devices=block_devices,
                key_pair=revision.key_pair,
                availability_zone=node.availability_zone,
                scheduler_hints=[openstack.compute.InstanceSchedulerHintArgs(group=self.server_group.id)],
                networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
                user_data=user_data[node.name] if user_data is not None else None,
                metadata=node_metadata(spec.name, node),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=provider,
                    protect=protected,
                    ignore_changes=None if node.rebuilt else BUILT_WITH,
                    # The replacement takes over the node's port (its fixed IP), which Nova binds to
                    # one server at a time: the old instance must go first. The planner rebuilds in
                    # place only where that is safe (one master while the others serve the API,
                    # workers within max_unavailable); elsewhere it builds a new node beside the old.
                    delete_before_replace=True,
                    # What must exist before the server boots (a joining master: the kubeadm-certs Secret).
                    depends_on=list((depends_on or {}).get(node.name, ())),
                ),
            )
            self.ports.append(port)
            self.instances.append(instance)

        self.register_outputs({"addresses": list(self.addresses), "instance_ids": [i.id for i in self.instances]})
