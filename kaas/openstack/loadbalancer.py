"""ApiLoadBalancer: the Octavia load balancer in front of the Kubernetes API servers.

The VIP port is created up front with the planned VIP address, so the nodes'
bootstrap (which needs the API address) and the load balancer proceed in parallel.
Members use the masters' planned addresses, never instance outputs: instances do not
wait for Octavia, and Octavia does not wait for instances.

Octavia refuses changes to a load balancer while another is in progress
(PENDING_UPDATE), so its children are chained: listener -> pool -> monitor ->
member 0 -> member 1 -> ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from kaas.platform import API_SERVER_PORT
from kaas.spec.models import ClusterSpec, OctaviaProvider


@dataclass(frozen=True)
class BalancingPolicy:
    """How the pool balances and checks the API servers, per Octavia provider."""

    lb_method: str
    monitor_type: str
    url_path: str | None
    http_method: str | None
    expected_codes: str | None
    # Listener timeout_client_data / timeout_member_data (ms); None where the provider has none.
    data_timeout_ms: int | None = None


def balancing_policy(provider: OctaviaProvider, data_timeout_ms: int | None = None) -> BalancingPolicy:
    """The ovn provider only balances by SOURCE_IP_PORT and only checks TCP (or UDP).

    Idle timeouts: amphorae (HAProxy) cut a connection idle for 50 s by default, which
    ends ``kubectl exec``/``logs -f``/port-forwards and watches; the listener gets the
    spec's ``stream_timeout_ms`` (1 h by default). Octavia's listener feature matrix
    (doc/source/user/feature-classification/feature-matrix-listener.ini) marks
    timeout_client_data/timeout_member_data "missing" for ovn, so none is sent there.
    """
    if provider is OctaviaProvider.OVN:
        return BalancingPolicy("SOURCE_IP_PORT", "TCP", None, None, None)
    # /readyz is readable anonymously (system:public-info-viewer); amphorae skip TLS verification.
    return BalancingPolicy("ROUND_ROBIN", "HTTPS", "/readyz", "GET", "200", data_timeout_ms)


def listener_allowed_cidrs(spec: ClusterSpec) -> list[str]:
    """The people's CIDRs plus the node subnet: nodes reach the API at the VIP (kubeadm's endpoint)."""
    return list(dict.fromkeys((*spec.networking.allowed_api_cidrs, spec.networking.node_cidr)))


class ApiLoadBalancer(pulumi.ComponentResource):
    """VIP port, load balancer, TCP listener on 6443, pool, monitor, one member per master, floating IP."""

    vip_address: str
    vip_port: openstack.networking.Port
    load_balancer: openstack.loadbalancer.LoadBalancer
    listener: openstack.loadbalancer.Listener
    pool: openstack.loadbalancer.Pool
    monitor: openstack.loadbalancer.Monitor
    members: list[openstack.loadbalancer.Member]
    floating_ip: openstack.networking.FloatingIp
    floating_address: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        api_vip: str,
        masters: Sequence[tuple[int, str]],
        network_id: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        security_group_ids: Sequence[pulumi.Input[str]],
        provider: openstack.Provider,
        floating_ip_depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:openstack:ApiLoadBalancer", f"{name}-api", None, opts)
        lb_settings = spec.load_balancer
        policy = balancing_policy(spec.openstack.octavia_provider, lb_settings.stream_timeout_ms)

        def child(*after: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(after))

        self.vip_address = api_vip
        self.vip_port = openstack.networking.Port(
            f"{name}-api-vip",
            name=f"{name}-api-vip",
            network_id=network_id,
            admin_state_up=True,
            fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet_id, ip_address=api_vip)],
            security_group_ids=list(security_group_ids),
            opts=child(),
        )
        self.load_balancer = openstack.loadbalancer.LoadBalancer(
            f"{name}-api",
            name=f"{name}-api",
            vip_port_id=self.vip_port.id,
            loadbalancer_provider=spec.openstack.octavia_provider.value,
            opts=child(),
        )
        self.listener = openstack.loadbalancer.Listener(
            f"{name}-api-{API_SERVER_PORT}",
            name=f"{name}-api-{API_SERVER_PORT}",
            loadbalancer_id=self.load_balancer.id,
            protocol="TCP",
            protocol_port=API_SERVER_PORT,
            allowed_cidrs=listener_allowed_cidrs(spec),
            timeout_client_data=policy.data_timeout_ms,
            timeout_member_data=policy.data_timeout_ms,
            opts=child(self.load_balancer),
        )
        self.pool = openstack.loadbalancer.Pool(
            f"{name}-api-masters",
            name=f"{name}-api-masters",
            listener_id=self.listener.id,
            protocol="TCP",
            lb_method=policy.lb_method,
            opts=child(self.listener),
        )
        self.monitor = openstack.loadbalancer.Monitor(
            f"{name}-api-health",
            name=f"{name}-api-health",
            pool_id=self.pool.id,
            type=policy.monitor_type,
            url_path=policy.url_path,
            http_method=policy.http_method,
            expected_codes=policy.expected_codes,
            delay=lb_settings.monitor_delay_s,
            timeout=lb_settings.monitor_timeout_s,
            max_retries=lb_settings.monitor_max_retries,
            opts=child(self.pool),
        )
        self.members = []
        previous: pulumi.Resource = self.monitor
        for index, address in masters:
            member = openstack.loadbalancer.Member(
                f"{name}-api-master-{index}",
                name=f"{name}-master-{index}",
                pool_id=self.pool.id,
                address=address,
                protocol_port=API_SERVER_PORT,
                subnet_id=subnet_id,
                opts=child(previous),
            )
            self.members.append(member)
            previous = member

        # The floating IP needs the VIP's subnet routed to the external network first.
        self.floating_ip = openstack.networking.FloatingIp(
            f"{name}-api-fip",
            pool=spec.openstack.external_network,
            port_id=self.vip_port.id,
            fixed_ip=api_vip,
            description=f"kaas {spec.name}: Kubernetes API",
            opts=child(*floating_ip_depends_on),
        )
        self.floating_address = self.floating_ip.address
        self.register_outputs(
            {"vip_address": self.vip_address, "floating_address": self.floating_address, "lb_id": self.load_balancer.id}
        )
