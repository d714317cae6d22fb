"""The typed stack outputs: everything a customer handover needs, and no secret.

``build_stack_outputs(plan, facts)`` is a pure function from the cluster plan (the
spec, the nodes and the rollout step, :mod:`kaas.cluster_plan`) and the few values
only known at run time (:class:`ClusterFacts`: floating IPs, IDs, the CA)
to :class:`StackOutputs`. ``KaasCluster`` exports the model with one top-level stack
output per field (camelCase keys, see :func:`export_keys`); ``python -m kaas handover``
reads the JSON of ``pulumi stack output --json`` back with :func:`load_outputs`.

Secret outputs (the admin kubeconfig) are separate stack outputs, never part of the
model, and so are the operator's etcd client credentials for ``kaas roll`` (not handover
material): :func:`load_outputs` ignores those keys and any key whose value is masked as
``"[secret]"``, and rejects everything else that does not fit the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from kaas.bootstrap.pki import ROLL_ETCD_OUTPUT_KEYS
from kaas.cluster_plan import ClusterPlan
from kaas.offline.planfile import SECRET_MASK
from kaas.platform import API_HOST_LABEL, API_SERVER_PORT
from kaas.rollout import Tier
from kaas.services import access
from kaas.services import names as service_names
from kaas.services import values as services_values
from kaas.spec.models import ClusterSpec, Cni, NodeTierSpec

SCHEMA: Literal["kaas.outputs/v1"] = "kaas.outputs/v1"
# Stack outputs that hold secrets: exported separately (as Pulumi secrets), never in the model.
SECRET_OUTPUT_KEYS = frozenset(
    {"adminKubeconfig", "breakGlassKubeconfig", "kubeconfig", "etcdBackupKey", "etcdClientKeyPem"}
)
# kaas roll's etcd client (the etcd CA, the ``kaas-roll`` client certificate and its key,
# kaas.bootstrap.pki.ROLL_ETCD_OUTPUT_KEYS): separate stack outputs for the operator, the key
# a secret (above), the certificates plain; not part of the customer's model.
OPERATOR_OUTPUT_KEYS = frozenset(ROLL_ETCD_OUTPUT_KEYS) - SECRET_OUTPUT_KEYS

# Names the platform gives things that the spec does not configure. The services layer
# must install under exactly these names (see the report of the handover issue).
INGRESS_CONTROLLER = "F5 NGINX Ingress Controller"
INGRESS_CLASS = services_values.INGRESS_CLASS
CLUSTER_ISSUER = service_names.CLUSTER_ISSUER
EXEC_PLUGIN = "client-keystone-auth"
EXEC_API_VERSION = "client.authentication.k8s.io/v1"
SERVICE_HOSTS: Mapping[str, str] = {
    "grafana": "grafana",
    "prometheus": "prometheus",
    "appPrometheus": service_names.APP_PROMETHEUS_HOST,
    "alertmanager": "alertmanager",
    "registry": service_names.REGISTRY_HOST,
    "dashboard": service_names.DASHBOARD_HOST,
}
CINDER_CSI_PROVISIONER = services_values.CSI_PROVISIONER


def service_host(spec: ClusterSpec, service: str) -> str:
    """The ingress host of a managed service: ``<label>.<cluster>.<domain>``."""
    label = spec.services.logging.dashboards_host if service == "logging" else SERVICE_HOSTS[service]
    return f"{label}.{spec.cluster_domain}"


def minimum_kubectl_version(kubernetes_version: str) -> str:
    """kubectl is supported within one minor version of the API server (version skew policy)."""
    match = re.match(r"^v?(\d+)\.(\d+)", kubernetes_version)
    if match is None:
        raise ValueError(f"{kubernetes_version!r} is not a Kubernetes version like 1.34.2")
    major, minor = int(match.group(1)), int(match.group(2))
    return f"{major}.{max(minor - 1, 0)}"


def _pem_certificate(value: str) -> str:
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(value.encode())
    except ValueError:
        raise ValueError("is not a PEM-encoded X.509 certificate") from None
    return value


PemCertificate = Annotated[str, AfterValidator(_pem_certificate)]


class OutputModel(BaseModel):
    """Base of every part of the outputs: camelCase keys, immutable, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid", serialize_by_alias=True
    )


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
    storage_classes: tuple[StorageClassOutput, ...]
    dns_zone: DnsZoneOutput | None
    keystone: KeystoneOutput
    load_balancers: tuple[LoadBalancerOutput, ...]
    server_groups: tuple[ServerGroupOutput, ...]
    network: NetworkOutput
    containers: tuple[ContainerOutput, ...]


class IngressOutput(OutputModel):
    controller: str
    ingress_class: str
    replicas: int
    floating_ip: str | None
    host_pattern: str
    cluster_issuer: str | None


class NetworkingOutput(OutputModel):
    cni: str
    mode: str
    pod_cidr: str
    service_cidr: str
    node_cidr: str
    default_deny_network_policy: bool
    ingress: IngressOutput | None


class EtcdOutput(OutputModel):
    nodes: int
    version: str
    backup_interval_hours: int
    backup_schedule: str
    backup_retention_days: int
    backup_container: str


class RoleGrantOutput(OutputModel):
    """A Keystone role of ``identity.roles``: its group, what it grants, and how to give it to a user."""

    keystone_role: str
    group: str
    grants: str
    command: str


class RbacOutput(OutputModel):
    cluster_admin_binding: str
    cluster_role: str
    group_id: str
    role_name: str
    identity_provider: str
    initial_admin_user: str
    roles: tuple[RoleGrantOutput, ...] = ()


class WebServiceOutput(OutputModel):
    url: str
    volume_gb: int | None = None
    retention_days: int | None = None


class LoggingOutput(OutputModel):
    url: str
    backend: str
    collector: str
    retention_days: int
    volume_gb: int


class RegistryOutput(OutputModel):
    url: str
    product: str
    scanner: str | None
    database_gb: int
    container: str


class BackupsOutput(OutputModel):
    tool: str
    schedule: str
    retention_days: int
    container: str


class ServicesOutput(OutputModel):
    """The managed services enabled in the spec (a disabled one is ``None``)."""

    grafana: WebServiceOutput | None = None
    prometheus: WebServiceOutput | None = None
    app_prometheus: WebServiceOutput | None = None
    alertmanager: WebServiceOutput | None = None
    logging: LoggingOutput | None = None
    registry: RegistryOutput | None = None
    dashboard: WebServiceOutput | None = None
    backups: BackupsOutput | None = None


class AccessOutput(OutputModel):
    """How a customer gets a kubeconfig: Keystone credentials through the exec plugin."""

    exec_plugin: str
    exec_api_version: str
    auth_url: str
    domain: str
    project: str | None
    region: str


class NodeRevisionOutput(OutputModel):
    """The revision one node runs (the rollout record's entry for it)."""

    image: str
    version: str
    template: int
    flavor: str
    key_pair: str | None
    volume_gb: int | None = None
    phase: Literal["running", "leaving"] = "running"


class RolloutOutput(OutputModel):
    """Where the rollout stands once this update is applied."""

    state: Literal["done", "in progress"]
    kubernetes_desired: str
    etcd_desired: str
    step: dict[str, str]
    pending: tuple[str, ...]


class StackOutputs(OutputModel):
    """The non-secret stack outputs; one top-level stack output per field."""

    outputs_schema: Literal["kaas.outputs/v1"] = SCHEMA
    cluster_name: str
    environment: Literal["production", "demo"]
    provider_name: str
    domain: str
    cluster_domain: str
    kubernetes_version: str
    minimum_kubectl_version: str
    api: ApiOutput
    ca_certificate: PemCertificate
    layout: LayoutOutput
    openstack: OpenStackOutput
    networking: NetworkingOutput
    etcd: EtcdOutput
    rbac: RbacOutput
    services: ServicesOutput
    platform_namespaces: tuple[str, ...]
    access: AccessOutput
    # Day 2 (absent in outputs written before rollouts existed).
    node_revisions: dict[str, NodeRevisionOutput] | None = None
    rollout: RolloutOutput | None = None


@dataclass(frozen=True)
class ClusterFacts:
    """Values only known once the cluster exists (resolved Pulumi outputs)."""

    api_floating_ip: str
    admin_role_id: str
    network_id: str
    subnet_id: str
    api_load_balancer_id: str
    ca_certificate: str
    ingress_floating_ip: str | None = None
    dns_zone_name: str | None = None
    dns_zone_id: str | None = None
    server_group_ids: Mapping[str, str] = field(default_factory=dict)


TIERS = ("etcd", "masters", "workers")


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


def _cni_mode(spec: ClusterSpec) -> str:
    net = spec.networking
    if net.cni is Cni.CALICO:
        return {"vxlan": "VXLAN overlay", "ipip": "IP-in-IP overlay", "none": "BGP, no encapsulation"}[
            net.calico_encapsulation.value
        ]
    if net.cni is Cni.CANAL:
        return "VXLAN overlay (Flannel) with Calico network policy"
    return "VXLAN overlay"


def _containers(spec: ClusterSpec) -> tuple[ContainerOutput, ...]:
    hours = spec.etcd_backup.interval_hours
    found = [ContainerOutput(name=spec.container_name("etcd_backups"), holds=f"etcd snapshots (every {hours} hours)")]
    if spec.services.registry.enabled:
        found.append(ContainerOutput(name=spec.container_name("registry"), holds="Harbor image layers and charts"))
    if spec.services.backups.enabled:
        found.append(
            ContainerOutput(name=spec.container_name("cluster_backups"), holds="Velero backups of Kubernetes objects")
        )
    return tuple(found)


def _services(spec: ClusterSpec) -> ServicesOutput:
    svc = spec.services

    def url(service: str) -> str:
        return f"https://{service_host(spec, service)}"

    monitoring = svc.monitoring
    mon = monitoring.enabled
    return ServicesOutput(
        grafana=WebServiceOutput(url=url("grafana"), volume_gb=monitoring.grafana_volume_gb) if mon else None,
        prometheus=WebServiceOutput(
            url=url("prometheus"),
            volume_gb=monitoring.prometheus_volume_gb,
            retention_days=monitoring.prometheus_retention_days,
        )
        if mon
        else None,
        app_prometheus=WebServiceOutput(
            url=url("appPrometheus"),
            volume_gb=monitoring.prometheus_volume_gb,
            retention_days=monitoring.app_prometheus_retention_days,
        )
        if mon
        else None,
        alertmanager=WebServiceOutput(url=url("alertmanager"), volume_gb=monitoring.alertmanager_volume_gb)
        if mon
        else None,
        logging=LoggingOutput(
            url=url("logging"),
            backend="OpenSearch",
            collector="Fluent Bit",
            retention_days=svc.logging.retention_days,
            volume_gb=svc.logging.volume_gb,
        )
        if svc.logging.enabled
        else None,
        registry=RegistryOutput(
            url=url("registry"),
            product="Harbor",
            scanner="Trivy" if svc.registry.scanning else None,
            database_gb=svc.registry.database_gb,
            container=spec.container_name("registry"),
        )
        if svc.registry.enabled
        else None,
        dashboard=WebServiceOutput(url=url("dashboard")) if svc.dashboard.enabled else None,
        backups=BackupsOutput(
            tool="Velero",
            schedule=svc.backups.schedule,
            retention_days=svc.backups.retention_days,
            container=spec.container_name("cluster_backups"),
        )
        if svc.backups.enabled
        else None,
    )


def _members(plan: ClusterPlan, tier: Tier) -> tuple[str, ...]:
    return tuple(n.fixed_ip for n in plan.members(tier))


def build_stack_outputs(plan: ClusterPlan, facts: ClusterFacts) -> StackOutputs:
    """The stack outputs of ``plan`` once this update is applied, given the run-time ``facts``. Pure.

    Versions and node counts are what the nodes run after this step, not what the spec
    asks for: during a rollout ``kubernetesVersion`` is the oldest API server's.
    """
    spec = plan.spec
    kubernetes_version = plan.control_plane_version
    api_dns = f"{API_HOST_LABEL}.{spec.cluster_domain}" if spec.dns.enabled else None
    identity = spec.identity
    ingress_on = spec.services.ingress.enabled
    hours = spec.etcd_backup.interval_hours
    policies = {"etcd": spec.etcd, "masters": spec.masters, "workers": spec.workers}
    missing_groups = [tier for tier in TIERS if tier not in facts.server_group_ids]
    if missing_groups:
        raise ValueError(f"server_group_ids: no ID for tier(s) {', '.join(missing_groups)}")
    if spec.dns.enabled and (facts.dns_zone_name is None or facts.dns_zone_id is None):
        raise ValueError("dns_zone_name and dns_zone_id are required when the spec enables DNS")
    if ingress_on and facts.ingress_floating_ip is None:
        raise ValueError("ingress_floating_ip is required when the spec enables the ingress controller")
    keystone = KeystoneOutput(
        auth_url=spec.openstack.auth_url,
        domain=identity.domain,
        project=identity.project,
        admin_role_name=spec.admin_role_name,
        admin_role_id=facts.admin_role_id,
        initial_admin_user=identity.initial_admin_user,
    )
    load_balancers = [
        LoadBalancerOutput(
            name=f"{spec.name}-api",
            purpose=f"Kubernetes API (port {API_SERVER_PORT}) across the masters",
            id=facts.api_load_balancer_id,
            floating_ip=facts.api_floating_ip,
            provider=spec.openstack.octavia_provider.value,
        )
    ]
    if ingress_on:
        load_balancers.append(
            LoadBalancerOutput(
                name=f"{spec.name}-ingress",
                purpose="HTTP(S) ingress to the workers (created by the OpenStack cloud controller)",
                id=None,
                floating_ip=facts.ingress_floating_ip,
                provider=spec.openstack.octavia_provider.value,
            )
        )
    storage_classes: tuple[StorageClassOutput, ...] = ()
    if spec.services.cinder_csi.enabled:
        storage_classes = (
            StorageClassOutput(
                name=service_names.STORAGE_CLASS_DEFAULT,
                provisioner=CINDER_CSI_PROVISIONER,
                reclaim_policy="Delete",
                is_default=True,
            ),
            StorageClassOutput(
                name=service_names.STORAGE_CLASS_RETAIN,
                provisioner=CINDER_CSI_PROVISIONER,
                reclaim_policy="Retain",
                is_default=False,
            ),
        )
    return StackOutputs(
        cluster_name=spec.name,
        environment=spec.environment.value,
        provider_name=spec.provider_name,
        domain=spec.domain,
        cluster_domain=spec.cluster_domain,
        kubernetes_version=kubernetes_version,
        minimum_kubectl_version=minimum_kubectl_version(kubernetes_version),
        api=ApiOutput(
            dns_name=api_dns,
            floating_ip=facts.api_floating_ip,
            internal_vip=plan.api_vip,
            port=API_SERVER_PORT,
            url=f"https://{api_dns or facts.api_floating_ip}:{API_SERVER_PORT}",
            allowed_cidrs=spec.networking.allowed_api_cidrs,
        ),
        ca_certificate=facts.ca_certificate,
        layout=LayoutOutput(
            etcd=_tier(spec, spec.etcd, _members(plan, Tier.ETCD)),
            masters=_tier(spec, spec.masters, _members(plan, Tier.MASTER)),
            workers=_tier(spec, spec.workers, _members(plan, Tier.WORKER)),
        ),
        openstack=OpenStackOutput(
            cloud=spec.openstack.cloud,
            region=spec.openstack.region,
            storage_classes=storage_classes,
            dns_zone=DnsZoneOutput(name=facts.dns_zone_name, id=facts.dns_zone_id, ttl=spec.dns.ttl)
            if spec.dns.enabled and facts.dns_zone_name and facts.dns_zone_id
            else None,
            keystone=keystone,
            load_balancers=tuple(load_balancers),
            server_groups=tuple(
                ServerGroupOutput(
                    tier=tier, id=facts.server_group_ids[tier], policy=policies[tier].server_group_policy.value
                )
                for tier in TIERS
            ),
            network=NetworkOutput(
                network_id=facts.network_id,
                subnet_id=facts.subnet_id,
                node_cidr=spec.networking.node_cidr,
                external_network=spec.openstack.external_network,
                mtu=spec.networking.mtu,
                managed_by_platform=spec.networking.existing_network_id is None,
            ),
            containers=_containers(spec),
        ),
        networking=NetworkingOutput(
            cni=spec.networking.cni.value,
            mode=_cni_mode(spec),
            pod_cidr=spec.networking.pod_cidr,
            service_cidr=spec.networking.service_cidr,
            node_cidr=spec.networking.node_cidr,
            default_deny_network_policy=spec.services.default_deny_network_policy,
            ingress=IngressOutput(
                controller=INGRESS_CONTROLLER,
                ingress_class=INGRESS_CLASS,
                replicas=spec.services.ingress.replicas,
                floating_ip=facts.ingress_floating_ip,
                host_pattern=f"*.{spec.cluster_domain}",
                cluster_issuer=CLUSTER_ISSUER if spec.services.ingress.cert_manager else None,
            )
            if ingress_on
            else None,
        ),
        etcd=EtcdOutput(
            nodes=len(plan.members(Tier.ETCD)),
            version=plan.oldest_version(Tier.ETCD),
            backup_interval_hours=hours,
            backup_schedule=f"0 */{hours} * * *" if hours < 24 else "0 0 * * *",
            backup_retention_days=spec.etcd_backup.retention_days,
            backup_container=spec.container_name("etcd_backups"),
        ),
        rbac=RbacOutput(
            cluster_admin_binding=f"{spec.provider_name}:default-cluster-admin",
            cluster_role="cluster-admin",
            group_id=facts.admin_role_id,
            role_name=spec.admin_role_name,
            identity_provider="Keystone",
            initial_admin_user=identity.initial_admin_user,
            roles=tuple(
                RoleGrantOutput(
                    keystone_role=mapping.keystone_role,
                    group=group,
                    grants=access.grants(mapping),
                    command=access.grant_command(spec, mapping.keystone_role),
                )
                for mapping, group in spec.role_mappings
            ),
        ),
        services=_services(spec),
        platform_namespaces=(spec.platform_namespace, "kube-system"),
        access=AccessOutput(
            exec_plugin=EXEC_PLUGIN,
            exec_api_version=EXEC_API_VERSION,
            auth_url=spec.openstack.auth_url,
            domain=identity.domain,
            project=identity.project,
            region=spec.openstack.region,
        ),
        node_revisions={name: NodeRevisionOutput(**entry) for name, entry in plan.node_revisions().items()},
        rollout=RolloutOutput(
            kubernetes_desired=spec.versions.kubernetes.lstrip("v"),
            etcd_desired=spec.versions.etcd.lstrip("v"),
            **plan.rollout_output(),
        ),
    )


def export_keys(outputs: Any) -> dict[str, Any]:
    """One stack output per top-level field, from a ``pulumi.Output`` of the dumped model.

    ``outputs`` is ``Output.all(**facts).apply(lambda f: build_stack_outputs(plan,
    ClusterFacts(**f)).model_dump(mode="json"))``; the keys are known before the
    values, so this can run at program time: ``for k, v in export_keys(o).items():
    pulumi.export(k, v)``.
    """
    return {key: outputs.apply(lambda dumped, key=key: dumped[key]) for key in output_keys()}


def output_keys() -> tuple[str, ...]:
    """The top-level stack output keys the model occupies."""
    return tuple(info.alias or name for name, info in StackOutputs.model_fields.items())


class OutputsError(Exception):
    """Stack outputs that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("\n".join(f"{source}: {p}" for p in problems))
        self.source = source
        self.problems = problems


def _problems(error: ValidationError) -> list[str]:
    found = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(document)"
        kind = item["type"]
        if kind == "missing":
            message = "is missing"
        elif kind == "extra_forbidden":
            message = "is not a known output"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            message += f"; got {item.get('input')!r}"[:200]
        found.append(f"{path}: {message}")
    return found


def load_outputs(data: object, source: str = "<outputs>") -> StackOutputs:
    """Validate ``pulumi stack output --json`` data; secrets are skipped, anything else must fit."""
    if not isinstance(data, dict):
        raise OutputsError(
            source,
            [f"must be a JSON object of stack outputs (pulumi stack output --json); got a {type(data).__name__}"],
        )
    if data.get("outputsSchema") != SCHEMA:
        if "outputsSchema" in data:
            found = data["outputsSchema"]
            raise OutputsError(
                source, [f"outputsSchema: {found!r} is not {SCHEMA!r} (written by another kaas version)"]
            )
        keys = ", ".join(sorted(map(str, data))[:8]) or "none"
        raise OutputsError(
            source,
            [f"not the outputs of a kaas stack: no 'outputsSchema' key (keys found: {keys})"],
        )
    model_keys = set(output_keys())
    masked = sorted(k for k, v in data.items() if v == SECRET_MASK and k in model_keys)
    if masked:
        raise OutputsError(
            source, [f"{key}: is masked as {SECRET_MASK!r} but is not a secret output" for key in masked]
        )
    skipped = SECRET_OUTPUT_KEYS | OPERATOR_OUTPUT_KEYS
    kept = {k: v for k, v in data.items() if k not in skipped and v != SECRET_MASK}
    try:
        return StackOutputs.model_validate(kept, by_alias=True, by_name=False)
    except ValidationError as error:
        raise OutputsError(source, _problems(error)) from None
