"""Rules that relate several spec fields, as plain functions returning problems.

Each problem names the field path it is about, so the loader can report
``etcd.count: ...`` rather than a message about the whole document. Production
specs must satisfy every rule; a demo spec (``environment: demo``) explicitly
relaxes the production-readiness ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kaas.spec.models import ClusterSpec

# kubeadm needs 2 CPUs and 2 GB; below this, the managed services do not fit.
WORKER_MINIMUM_VCPUS = 2
WORKER_MINIMUM_RAM_GB = 4
WORKER_MINIMUM_DISK_GB = 20
ETCD_MAX_MEMBERS = 9
PRODUCTION_MIN_MASTERS = 3
PRODUCTION_MAX_ETCD_BACKUP_INTERVAL_HOURS = 8


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecRuleError(ValueError):
    """Raised by ``ClusterSpec`` validation; carries one problem per broken rule."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


Rule = Callable[["ClusterSpec"], Iterator[Problem]]


def etcd_quorum(spec: ClusterSpec) -> Iterator[Problem]:
    count = spec.etcd.count
    if count == 1 and not spec.is_production:
        return
    if count % 2 == 0 or not 3 <= count <= ETCD_MAX_MEMBERS:
        allowed = "3, 5, 7 or 9" + (" (1 for a demo cluster)" if not spec.is_production else "")
        yield Problem(
            "etcd.count",
            f"must be odd and between 3 and {ETCD_MAX_MEMBERS} for a quorum; got {count}, use {allowed}"
            + ("; a single member is allowed only with environment: demo" if count == 1 else ""),
        )


def cidrs_disjoint(spec: ClusterSpec) -> Iterator[Problem]:
    net = spec.networking
    named = [("node_cidr", net.node_cidr), ("pod_cidr", net.pod_cidr), ("service_cidr", net.service_cidr)]
    for i, (name_a, cidr_a) in enumerate(named):
        for name_b, cidr_b in named[i + 1 :]:
            if ipaddress.IPv4Network(cidr_a).overlaps(ipaddress.IPv4Network(cidr_b)):
                yield Problem(f"networking.{name_b}", f"{cidr_b} overlaps networking.{name_a} {cidr_a}")


def node_cidr_fits_nodes(spec: ClusterSpec) -> Iterator[Problem]:
    from kaas.openstack.addressing import worker_capacity

    capacity = worker_capacity(spec.networking.node_cidr)
    if spec.workers.count > capacity:
        yield Problem(
            "workers.count",
            f"networking.node_cidr {spec.networking.node_cidr} has room for {max(capacity, 0)} workers; "
            f"got {spec.workers.count} (use a larger node_cidr)",
        )


def worker_rollout_progresses(spec: ClusterSpec) -> Iterator[Problem]:
    """A rollout needs room to move: a surge node, or a worker it may take out of service."""
    from kaas.openstack.addressing import worker_capacity

    workers = spec.workers
    if workers.max_surge == 0 and workers.max_unavailable == 0:
        yield Problem(
            "workers.max_unavailable",
            "must be >= 1 when workers.max_surge is 0, or no worker could ever be replaced",
        )
    spare = workers.count + workers.max_surge + max(1, workers.max_unavailable)
    capacity = worker_capacity(spec.networking.node_cidr)
    if workers.count <= capacity < spare:
        yield Problem(
            "workers.max_surge",
            f"a rollout needs up to {spare} worker addresses (count + max_surge + max_unavailable) but "
            f"networking.node_cidr has {capacity}",
        )


def worker_flavor_minimum(spec: ClusterSpec) -> Iterator[Problem]:
    flavor = spec.workers.flavor
    for field, value, minimum, unit in (
        ("vcpus", flavor.vcpus, WORKER_MINIMUM_VCPUS, "vCPUs"),
        ("ram_gb", flavor.ram_gb, WORKER_MINIMUM_RAM_GB, "GB"),
        ("disk_gb", flavor.disk_gb, WORKER_MINIMUM_DISK_GB, "GB"),
    ):
        if value < minimum:
            yield Problem(f"workers.flavor.{field}", f"must be >= {minimum} {unit} for a worker; got {value}")


def ssh_not_open_to_world(spec: ClusterSpec) -> Iterator[Problem]:
    for index, cidr in enumerate(spec.networking.admin_ssh_cidrs):
        if ipaddress.IPv4Network(cidr).prefixlen == 0:
            yield Problem(
                f"networking.admin_ssh_cidrs.{index}", "SSH must not be open to the whole internet (0.0.0.0/0)"
            )


# RFC 1918 private ranges and RFC 6598 shared address space: the only ranges a pod or
# Service network may take. Any other range shadows real internet addresses for every
# pod (traffic to them never leaves the cluster).
PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


def cluster_networks_private(spec: ClusterSpec) -> Iterator[Problem]:
    for name in ("pod_cidr", "service_cidr"):
        cidr = ipaddress.IPv4Network(getattr(spec.networking, name))
        if not any(cidr.subnet_of(private) for private in PRIVATE_RANGES):
            yield Problem(
                f"networking.{name}",
                f"{cidr} is not a private range: use one inside {', '.join(str(p) for p in PRIVATE_RANGES)}",
            )


def production_https(spec: ClusterSpec) -> Iterator[Problem]:
    """Keystone and S3 carry credentials: plain http is allowed only for a demo cluster."""
    for name in ("auth_url", "s3_endpoint"):
        url: str = getattr(spec.openstack, name)
        if not url.startswith("https://"):
            yield Problem(
                f"openstack.{name}", f"a production cluster needs https; got {url} (or set environment: demo)"
            )


def dns_zone_holds_the_cluster(spec: ClusterSpec) -> Iterator[Problem]:
    dns = spec.dns
    if dns.existing_zone_name is not None and dns.existing_zone_id is None:
        yield Problem("dns.existing_zone_name", "names an existing zone: give its dns.existing_zone_id too")
    zone = dns.existing_zone_name
    if zone is not None and not (spec.cluster_domain == zone or spec.cluster_domain.endswith("." + zone)):
        yield Problem(
            "dns.existing_zone_name",
            f"{zone} does not contain the cluster's names {spec.cluster_domain}; use {spec.domain} or a parent of it",
        )


def production_control_plane(spec: ClusterSpec) -> Iterator[Problem]:
    if spec.masters.count < PRODUCTION_MIN_MASTERS:
        yield Problem(
            "masters.count",
            f"a production cluster needs >= {PRODUCTION_MIN_MASTERS} masters; got {spec.masters.count} (or set environment: demo)",
        )
    if spec.etcd.server_group_policy.value != "anti-affinity":
        yield Problem(
            "etcd.server_group_policy",
            "a production etcd tier needs the hard anti-affinity policy (or set environment: demo)",
        )


def production_operations(spec: ClusterSpec) -> Iterator[Problem]:
    if spec.etcd_backup.interval_hours > PRODUCTION_MAX_ETCD_BACKUP_INTERVAL_HOURS:
        yield Problem(
            "etcd_backup.interval_hours",
            f"a production cluster backs etcd up at least every {PRODUCTION_MAX_ETCD_BACKUP_INTERVAL_HOURS} hours; got {spec.etcd_backup.interval_hours}",
        )
    services = spec.services
    for name in ("monitoring", "logging", "backups"):
        if not getattr(services, name).enabled:
            yield Problem(f"services.{name}.enabled", "is required for a production cluster (or set environment: demo)")


# Let's Encrypt refuses account contacts on reserved domains (letsencrypt/boulder
# policy/pa.go ``validEmail``: a domain without a public suffix, or one of its
# ``forbiddenMailDomains`` example.com/.net/.org, is "invalidContact"); RFC 2606/6761
# reserve these names for examples and tests.
RESERVED_MAIL_TLDS = ("example", "test", "invalid", "localhost", "local")
RESERVED_MAIL_DOMAINS = ("example.com", "example.net", "example.org")


def is_reserved_mail_domain(address: str) -> bool:
    domain = address.rsplit("@", 1)[-1].strip().lower().rstrip(".")
    return domain.rsplit(".", 1)[-1] in RESERVED_MAIL_TLDS or any(
        domain == d or domain.endswith("." + d) for d in RESERVED_MAIL_DOMAINS
    )


def acme_contact(spec: ClusterSpec) -> str | None:
    """The ACME account's contact: ``services.ingress.acme_email``, else ``dns.email``; None if reserved.

    ACME registers accounts without a contact too, so a demo keeps working without one.
    """
    email = spec.services.ingress.acme_email or spec.dns.email
    return None if is_reserved_mail_domain(email) else email


def production_acme_contact(spec: ClusterSpec) -> Iterator[Problem]:
    """Production certificates need a contact Let's Encrypt accepts (expiry and incident mail)."""
    ingress = spec.services.ingress
    if not (ingress.enabled and ingress.cert_manager):
        return
    if ingress.acme_email is None:
        yield Problem(
            "services.ingress.acme_email",
            "a production cluster needs the ACME account's contact address (or set environment: demo)",
        )
    elif is_reserved_mail_domain(ingress.acme_email):
        yield Problem(
            "services.ingress.acme_email",
            f"{ingress.acme_email!r} is on a reserved example domain, which Let's Encrypt refuses",
        )


def logging_needs_cert_manager(spec: ClusterSpec) -> Iterator[Problem]:
    """OpenSearch's certificates come from the platform CA, which cert-manager issues."""
    ingress = spec.services.ingress
    if spec.services.logging.enabled and not (ingress.enabled and ingress.cert_manager):
        yield Problem(
            "services.logging.enabled",
            "logging needs cert-manager (services.ingress.enabled and cert_manager) for OpenSearch's certificates",
        )


def verified_downloads(spec: ClusterSpec) -> Iterator[Problem]:
    """Nodes install etcd and containerd from release tarballs; only versions with a known sha256."""
    from kaas import versions

    for field, version, sums in (
        ("versions.etcd", spec.versions.etcd, versions.ETCD_SHA256),
        ("versions.containerd", spec.versions.containerd, versions.CONTAINERD_SHA256),
    ):
        if version.lstrip("v") not in sums:
            yield Problem(
                field,
                f"no verified sha256 for {version} (known: {', '.join(sorted(sums))}); add it to kaas/versions.py",
            )


ALWAYS: tuple[Rule, ...] = (
    etcd_quorum,
    verified_downloads,
    cidrs_disjoint,
    node_cidr_fits_nodes,
    worker_rollout_progresses,
    worker_flavor_minimum,
    ssh_not_open_to_world,
    cluster_networks_private,
    dns_zone_holds_the_cluster,
    logging_needs_cert_manager,
)
PRODUCTION: tuple[Rule, ...] = (
    production_control_plane,
    production_operations,
    production_https,
    production_acme_contact,
)


def problems(spec: ClusterSpec) -> list[Problem]:
    rules = ALWAYS + (PRODUCTION if spec.is_production else ())
    return [problem for rule in rules for problem in rule(spec)]
