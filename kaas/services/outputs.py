"""The services layer's part of the stack outputs: networking (CNI, ingress), RBAC, the managed services.

Host names, storage classes and the ingress class are the ones the services are
installed with (:mod:`kaas.services.names`, :mod:`kaas.services.values`,
``objects.CINDER_STORAGE_CLASSES``), so the document names what the layer creates;
``tests/test_service_urls.py`` checks every URL against the plan's Ingress hosts.
"""

from __future__ import annotations

from kaas.bootstrap.pki import BREAK_GLASS_VALIDITY_HOURS
from kaas.openstack.dns import dns_names
from kaas.openstack.outputs import StorageClassOutput
from kaas.output_model import OutputModel
from kaas.services import access, names, objects, values
from kaas.spec.models import ClusterSpec, Cni

INGRESS_CONTROLLER = "F5 NGINX Ingress Controller"
EXEC_PLUGIN = "client-keystone-auth"
EXEC_API_VERSION = "client.authentication.k8s.io/v1"


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


class RoleGrantOutput(OutputModel):
    """A Keystone role of ``identity.roles``: its group, what it grants, and how to give it to a user."""

    keystone_role: str
    group: str
    grants: str
    command: str


class RbacOutput(OutputModel):
    cluster_admin_binding: str
    # The emergency credential's ClusterRoleBinding (delete it to revoke); None in outputs of
    # stacks deployed before it was exported.
    break_glass_binding: str | None = None
    break_glass_hours: int | None = None
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


def storage_classes_output(spec: ClusterSpec) -> tuple[StorageClassOutput, ...]:
    """The StorageClasses Cinder CSI offers (none without it)."""
    if not spec.services.cinder_csi.enabled:
        return ()
    return tuple(
        StorageClassOutput(
            name=sc.name, provisioner=values.CSI_PROVISIONER, reclaim_policy=sc.reclaim_policy, is_default=sc.default
        )
        for sc in objects.CINDER_STORAGE_CLASSES
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


def networking_output(spec: ClusterSpec, ingress_floating_ip: str | None) -> NetworkingOutput:
    ingress = spec.services.ingress
    return NetworkingOutput(
        cni=spec.networking.cni.value,
        mode=_cni_mode(spec),
        pod_cidr=spec.networking.pod_cidr,
        service_cidr=spec.networking.service_cidr,
        node_cidr=spec.networking.node_cidr,
        default_deny_network_policy=spec.services.default_deny_network_policy,
        ingress=IngressOutput(
            controller=INGRESS_CONTROLLER,
            ingress_class=values.INGRESS_CLASS,
            replicas=ingress.replicas,
            floating_ip=ingress_floating_ip,
            host_pattern=dns_names(spec).wildcard.removesuffix("."),
            cluster_issuer=names.CLUSTER_ISSUER if ingress.cert_manager else None,
        )
        if ingress.enabled
        else None,
    )


def rbac_output(spec: ClusterSpec, admin_role_id: str) -> RbacOutput:
    return RbacOutput(
        cluster_admin_binding=objects.admin_binding_name(spec),
        break_glass_binding=objects.break_glass_binding_name(spec),
        break_glass_hours=BREAK_GLASS_VALIDITY_HOURS,
        cluster_role="cluster-admin",
        group_id=admin_role_id,
        role_name=spec.admin_role_name,
        identity_provider="Keystone",
        initial_admin_user=spec.identity.initial_admin_user,
        roles=tuple(
            RoleGrantOutput(
                keystone_role=mapping.keystone_role,
                group=group,
                grants=access.grants(mapping),
                command=access.grant_command(spec, mapping.keystone_role),
            )
            for mapping, group in spec.role_mappings
        ),
    )


def services_output(spec: ClusterSpec) -> ServicesOutput:
    svc = spec.services

    def url(label: str) -> str:
        return f"https://{values.host(spec, label)}"

    monitoring = svc.monitoring
    mon = monitoring.enabled
    return ServicesOutput(
        grafana=WebServiceOutput(url=url(names.GRAFANA_HOST), volume_gb=monitoring.grafana_volume_gb) if mon else None,
        prometheus=WebServiceOutput(
            url=url(names.PROMETHEUS_HOST),
            volume_gb=monitoring.prometheus_volume_gb,
            retention_days=monitoring.prometheus_retention_days,
        )
        if mon
        else None,
        app_prometheus=WebServiceOutput(
            url=url(names.APP_PROMETHEUS_HOST),
            volume_gb=monitoring.prometheus_volume_gb,
            retention_days=monitoring.app_prometheus_retention_days,
        )
        if mon
        else None,
        alertmanager=WebServiceOutput(url=url(names.ALERTMANAGER_HOST), volume_gb=monitoring.alertmanager_volume_gb)
        if mon
        else None,
        logging=LoggingOutput(
            url=url(svc.logging.dashboards_host),
            backend="OpenSearch",
            collector="Fluent Bit",
            retention_days=svc.logging.retention_days,
            volume_gb=svc.logging.volume_gb,
        )
        if svc.logging.enabled
        else None,
        registry=RegistryOutput(
            url=url(names.REGISTRY_HOST),
            product="Harbor",
            scanner="Trivy" if svc.registry.scanning else None,
            database_gb=svc.registry.database_gb,
            container=spec.container_name("registry"),
        )
        if svc.registry.enabled
        else None,
        dashboard=WebServiceOutput(url=url(names.DASHBOARD_HOST)) if svc.dashboard.enabled else None,
        backups=BackupsOutput(
            tool="Velero",
            schedule=svc.backups.schedule,
            retention_days=svc.backups.retention_days,
            container=spec.container_name("cluster_backups"),
        )
        if svc.backups.enabled
        else None,
    )


def platform_namespaces_output(spec: ClusterSpec) -> tuple[str, ...]:
    return (spec.platform_namespace, names.KUBE_SYSTEM)


def access_output(spec: ClusterSpec) -> AccessOutput:
    return AccessOutput(
        exec_plugin=EXEC_PLUGIN,
        exec_api_version=EXEC_API_VERSION,
        auth_url=spec.openstack.auth_url,
        domain=spec.identity.domain,
        project=spec.identity.project,
        region=spec.openstack.region,
    )
