"""ClusterDns: the ingress floating IP and the Designate records of the cluster.

``api.<cluster>.<domain>`` points at the API load balancer's floating IP and
``*.<cluster>.<domain>`` at the ingress floating IP. The ingress address is allocated
here, before Kubernetes exists, so the DNS record is stable: the Kubernetes layer's
ingress controller claims it later (OCCM honours a pre-allocated ``loadBalancerIP``).

One cluster, one zone: the stack owns the zone ``<cluster>.<domain>.``, never the
customer's ``<domain>.``, so two clusters on one domain share no Designate object and
destroying one stack deletes only its own zone. Designate lets a project create a zone
below one it owns, but not inside another project's zone ("one tenant cannot create
zones that lie within the zone of another tenant", Designate user guide, Managing
Zones); for that case, and for customers who keep their domain elsewhere, the spec
names an existing zone (``dns.existing_zone_id``) and the stack adds only its two
records to it. Resolvers find an owned ``<cluster>.<domain>.`` zone once the parent
domain delegates it (NS records at ``<cluster>.<domain>`` naming Designate's
nameservers): that delegation is the customer's, listed in the handover.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from kaas.platform import API_HOST_LABEL
from kaas.spec.models import ClusterSpec


@dataclass(frozen=True)
class DnsNames:
    zone: str
    api: str
    wildcard: str


def dns_names(spec: ClusterSpec) -> DnsNames:
    """Fully qualified (trailing dot) names, as Designate wants them; the zone is the cluster's own."""
    owned = spec.dns.existing_zone_id is None
    zone = spec.cluster_domain if owned else (spec.dns.existing_zone_name or spec.domain)
    return DnsNames(
        zone=f"{zone}.",
        api=f"{API_HOST_LABEL}.{spec.cluster_domain}.",
        wildcard=f"*.{spec.cluster_domain}.",
    )


class ClusterDns(pulumi.ComponentResource):
    """Ingress floating IP, then (when DNS is enabled) the zone or the customer's zone and two A records."""

    names: DnsNames
    ingress_floating_ip: openstack.networking.FloatingIp
    ingress_address: pulumi.Output[str]
    zone_id: pulumi.Output[str] | None
    api_record: openstack.dns.RecordSet | None
    wildcard_record: openstack.dns.RecordSet | None

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        api_address: pulumi.Input[str],
        provider: openstack.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:openstack:ClusterDns", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.names = dns_names(spec)

        # Unattached until the ingress controller's Service claims it.
        self.ingress_floating_ip = openstack.networking.FloatingIp(
            f"{name}-ingress-fip",
            pool=spec.openstack.external_network,
            description=f"kaas {spec.name}: ingress (claimed by the ingress controller)",
            opts=child,
        )
        self.ingress_address = self.ingress_floating_ip.address
        self.zone_id = None
        self.api_record = self.wildcard_record = None

        if spec.dns.enabled:
            if spec.dns.existing_zone_id is not None:
                self.zone_id = pulumi.Output.from_input(spec.dns.existing_zone_id)
            else:
                self.zone_id = openstack.dns.Zone(
                    f"{name}-zone",
                    name=self.names.zone,
                    email=spec.dns.email,
                    ttl=spec.dns.ttl,
                    type="PRIMARY",
                    description=f"kaas {spec.name}: owned by this stack, holds only this cluster's records",
                    opts=child,
                ).id
            self.api_record = openstack.dns.RecordSet(
                f"{name}-api-record",
                zone_id=self.zone_id,
                name=self.names.api,
                type="A",
                ttl=spec.dns.ttl,
                records=[api_address],
                opts=child,
            )
            self.wildcard_record = openstack.dns.RecordSet(
                f"{name}-wildcard-record",
                zone_id=self.zone_id,
                name=self.names.wildcard,
                type="A",
                ttl=spec.dns.ttl,
                records=[self.ingress_address],
                opts=child,
            )

        self.register_outputs({"ingress_address": self.ingress_address, "zone_id": self.zone_id})
