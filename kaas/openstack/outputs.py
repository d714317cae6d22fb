"""The OpenStack layer's part of the stack outputs: node tiers, the API endpoint, the cloud resources.

Names come from the functions the layer builds its resources with (``dns_names``,
``storage.PURPOSES``); IDs and addresses known only at run time are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping

from kaas.cluster_plan import ClusterPlan
from kaas.openstack.dns import dns_names
from kaas.openstack.storage import PURPOSES
from kaas.output_model import OutputModel
from kaas.platform import API_SERVER_PORT
from kaas.rollout import Tier
from kaas.spec.models import ClusterSpec, NodeTierSpec

TIERS = ("etcd", "masters", "workers")


class FlavorOutput(OutputModel):
    name: str
    vcpus: int
    ram_gb: int
    disk_gb: int


class TierOutput(OutputModel):
    count: int
    flavor: FlavorOutput
    boot_volume_gb: int | None
    server_group_policy: str
    availability_zones: tuple[str, ...]
    addresses: tuple[str, ...]


class LayoutOutput(OutputModel):
    etcd: TierOutput
    masters: TierOutput
    workers: TierOutput


class ApiOutput(OutputModel):
    dns_name: str | None
    floating_ip: str
    internal_vip: str
    port: int
    url: str
    allowed_cidrs: tuple[str, ...]


class StorageClassOutput(OutputModel):
    name: str
    provisioner: str
    reclaim_policy: str
    is_default: bool


class DnsZoneOutput(OutputModel):
    name: str
    id: str
    ttl: int


class KeystoneOutput(OutputModel):
    auth_url: str
    domain: str
    project: str | None
    admin_role_name: str
    admin_role_id: str
    initial_admin_user: str


class LoadBalancerOutput(OutputModel):
    name: str
    purpose: str
    id: str | None
    floating_ip: str | None
    provider: str


class ServerGroupOutput(OutputModel):
    tier: str
    id: str
    policy: str


class NetworkOutput(OutputModel):
    network_id: str
    subnet_id: str
    node_cidr: str
    external_network: str
    mtu: int
    managed_by_platform: bool


class ContainerOutput(OutputModel):
    name: str
    holds: str


class OpenStackOutput(OutputModel):
    cloud: str
    region: str
    storage_classes: tuple[StorageClassOutput, ...]  # Cinder volumes, offered by the services layer's CSI
    dns_zone: DnsZoneOutput | None
    keystone: KeystoneOutput
    load_balancers: tuple[LoadBalancerOutput, ...]
    server_groups: tuple[ServerGroupOutput, ...]
    network: NetworkOutput
    containers: tuple[ContainerOutput, ...]


def api_dns_name(spec: ClusterSpec) -> str | None:
    """The API server's DNS name (the Designate record), or None without DNS."""
    return dns_names(spec).api.removesuffix(".") if spec.dns.enabled else None


def _tier(spec: ClusterSpec, tier: NodeTierSpec, addresses: tuple[str, ...]) -> TierOutput:
    zones = spec.openstack.availability_zones
    return TierOutput(
        count=len(addresses),
        flavor=FlavorOutput(
            name=tier.flavor.name, vcpus=tier.flavor.vcpus, ram_gb=tier.flavor.ram_gb, disk_gb=tier.flavor.disk_gb
        ),
        boot_volume_gb=tier.boot_volume_gb,
        server_group_policy=tier.server_group_policy.value,
        # Node i of a tier goes to zone i mod n, so a tier uses at most `count` zones.
        availability_zones=tuple(zones[: min(len(zones), tier.count)]),
        addresses=addresses,
    )


def _members(plan: ClusterPlan, tier: Tier) -> tuple[str, ...]:
    return tuple(n.fixed_ip for n in plan.members(tier))


def layout_output(plan: ClusterPlan) -> LayoutOutput:
    """The node tiers once this update is applied (addresses of the members, flavors of the spec)."""
    spec = plan.spec
    return LayoutOutput(
        etcd=_tier(spec, spec.etcd, _members(plan, Tier.ETCD)),
        masters=_tier(spec, spec.masters, _members(plan, Tier.MASTER)),
        workers=_tier(spec, spec.workers, _members(plan, Tier.WORKER)),
    )


def api_output(plan: ClusterPlan, floating_ip: str) -> ApiOutput:
    spec = plan.spec
    dns_name = api_dns_name(spec)
    return ApiOutput(
        dns_name=dns_name,
        floating_ip=floating_ip,
        internal_vip=plan.api_vip,
        port=API_SERVER_PORT,
        url=f"https://{dns_name or floating_ip}:{API_SERVER_PORT}",
        allowed_cidrs=spec.networking.allowed_api_cidrs,
    )


def _load_balancers(
    spec: ClusterSpec, api_load_balancer_id: str, api_floating_ip: str, ingress_floating_ip: str | None
) -> tuple[LoadBalancerOutput, ...]:
    provider = spec.openstack.octavia_provider.value
    found = [
        LoadBalancerOutput(
            name=f"{spec.name}-api",
            purpose=f"Kubernetes API (port {API_SERVER_PORT}) across the masters",
            id=api_load_balancer_id,
            floating_ip=api_floating_ip,
            provider=provider,
        )
    ]
    if spec.services.ingress.enabled:
        found.append(
            LoadBalancerOutput(
                name=f"{spec.name}-ingress",
                purpose="HTTP(S) ingress to the workers (created by the OpenStack cloud controller)",
                id=None,
                floating_ip=ingress_floating_ip,
                provider=provider,
            )
        )
    return tuple(found)


_CONTAINER_HOLDS = {
    "etcd_backups": "etcd snapshots (every {hours} hours)",
    "registry": "Harbor image layers and charts",
    "cluster_backups": "Velero backups of Kubernetes objects",
}


def _containers(spec: ClusterSpec) -> tuple[ContainerOutput, ...]:
    """The containers in use: every purpose's container exists, the services' only matter when enabled."""
    in_use = {
        "etcd_backups": True,
        "registry": spec.services.registry.enabled,
        "cluster_backups": spec.services.backups.enabled,
    }
    hours = spec.etcd_backup.interval_hours
    return tuple(
        ContainerOutput(name=spec.container_name(purpose), holds=_CONTAINER_HOLDS[purpose].format(hours=hours))
        for purpose in PURPOSES
        if in_use[purpose]
    )


def openstack_output(
    spec: ClusterSpec,
    *,
    storage_classes: tuple[StorageClassOutput, ...],
    admin_role_id: str,
    network_id: str,
    subnet_id: str,
    api_load_balancer_id: str,
    api_floating_ip: str,
    ingress_floating_ip: str | None,
    dns_zone_name: str | None,
    dns_zone_id: str | None,
    server_group_ids: Mapping[str, str],
) -> OpenStackOutput:
    identity = spec.identity
    policies = {"etcd": spec.etcd, "masters": spec.masters, "workers": spec.workers}
    return OpenStackOutput(
        cloud=spec.openstack.cloud,
        region=spec.openstack.region,
        storage_classes=storage_classes,
        dns_zone=DnsZoneOutput(name=dns_zone_name, id=dns_zone_id, ttl=spec.dns.ttl)
        if spec.dns.enabled and dns_zone_name and dns_zone_id
        else None,
        keystone=KeystoneOutput(
            auth_url=spec.openstack.auth_url,
            domain=identity.domain,
            project=identity.project,
            admin_role_name=spec.admin_role_name,
            admin_role_id=admin_role_id,
            initial_admin_user=identity.initial_admin_user,
        ),
        load_balancers=_load_balancers(spec, api_load_balancer_id, api_floating_ip, ingress_floating_ip),
        server_groups=tuple(
            ServerGroupOutput(tier=tier, id=server_group_ids[tier], policy=policies[tier].server_group_policy.value)
            for tier in TIERS
        ),
        network=NetworkOutput(
            network_id=network_id,
            subnet_id=subnet_id,
            node_cidr=spec.networking.node_cidr,
            external_network=spec.openstack.external_network,
            mtu=spec.networking.mtu,
            managed_by_platform=spec.networking.existing_network_id is None,
        ),
        containers=_containers(spec),
    )
