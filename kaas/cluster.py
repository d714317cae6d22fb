"""KaasCluster: the only place that wires the layers together."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_openstack as openstack

from kaas.openstack.dns import ClusterDns
from kaas.openstack.identity import KeystoneAccess
from kaas.openstack.loadbalancer import ApiLoadBalancer
from kaas.openstack.network import ClusterNetwork
from kaas.openstack.nodes import TIERS, NodeTier
from kaas.openstack.provider import openstack_provider
from kaas.openstack.security import Role, SecurityGroups, allowed_address_pairs, node_groups
from kaas.openstack.storage import ObjectStorage
from kaas.platform import API_HOST_LABEL, API_SERVER_PORT
from kaas.spec import ClusterSpec


class KaasCluster(pulumi.ComponentResource):
    """One customer's managed Kubernetes cluster, built from its spec."""

    network: ClusterNetwork
    security_groups: SecurityGroups
    api_load_balancer: ApiLoadBalancer
    etcd_nodes: NodeTier
    masters: NodeTier
    workers: NodeTier
    dns: ClusterDns
    object_storage: ObjectStorage
    identity: KeystoneAccess

    def __init__(self, name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kaas:index:Cluster", name, None, opts)
        self.spec = spec
        child = pulumi.ResourceOptions(parent=self)
        provider = self.openstack_provider = openstack_provider(name, spec.openstack, parent=self)
        self.network = ClusterNetwork(
            name, spec.networking, external_network=spec.openstack.external_network, provider=provider, opts=child
        )
        self.security_groups = SecurityGroups(name, spec, provider=provider, opts=child)
        self.api_load_balancer = ApiLoadBalancer(
            name,
            spec,
            network_id=self.network.network_id,
            subnet_id=self.network.subnet_id,
            security_group_ids=self.security_groups.ids([Role.API_LB]),
            provider=provider,
            floating_ip_depends_on=self.network.routing,
            opts=child,
        )
        self.etcd_nodes, self.masters, self.workers = (self._tier(tier, provider) for tier in TIERS)
        self.dns = ClusterDns(
            name, spec, api_address=self.api_load_balancer.floating_address, provider=provider, opts=child
        )
        self.object_storage = ObjectStorage(name, spec, provider=provider, opts=child)
        self.identity = KeystoneAccess(name, spec, provider=provider, opts=child)
        self.register_outputs(self.stack_outputs())

    def _tier(self, tier: Role, provider: openstack.Provider) -> NodeTier:
        kubernetes_node = tier is not Role.ETCD
        return NodeTier(
            self.spec.name,
            self.spec,
            tier,
            network_id=self.network.network_id,
            subnet_id=self.network.subnet_id,
            security_group_ids=self.security_groups.ids(node_groups(self.spec, tier)),
            provider=provider,
            allowed_address_pairs=allowed_address_pairs(self.spec) if kubernetes_node else (),
            opts=pulumi.ResourceOptions(parent=self),
        )

    @property
    def api_host(self) -> str:
        return f"{API_HOST_LABEL}.{self.spec.cluster_domain}"

    def stack_outputs(self) -> dict[str, Any]:
        """The stack outputs (typed by kaas.outputs once the handover lands): plain facts, no secrets."""
        return {
            "clusterName": self.spec.name,
            "networkId": self.network.network_id,
            "subnetId": self.network.subnet_id,
            "apiEndpoint": f"https://{self.api_host}:{API_SERVER_PORT}",
            "apiVipAddress": self.api_load_balancer.vip_address,
            "apiFloatingIp": self.api_load_balancer.floating_address,
            "etcdAddresses": list(self.etcd_nodes.addresses),
            "masterAddresses": list(self.masters.addresses),
            "workerAddresses": list(self.workers.addresses),
            "ingressFloatingIp": self.dns.ingress_address,
            "adminRoleId": self.identity.admin_role_id,
            "adminRoleName": self.identity.admin_role_name,
            "s3Endpoint": self.object_storage.s3_endpoint,
            "etcdBackupContainer": self.object_storage.container_names["etcd_backups"],
            "registryContainer": self.object_storage.container_names["registry"],
            "clusterBackupContainer": self.object_storage.container_names["cluster_backups"],
        }
