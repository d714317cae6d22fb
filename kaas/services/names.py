"""Names several service modules share (Secrets the values refer to, labels, hosts)."""

from __future__ import annotations

import re

from kaas.services import catalog, images
from kaas.spec.models import ClusterSpec

CLOUD_CONFIG = "cloud-config"  # the Secret OCCM reads (key cloud.conf)
CSI_CLOUD_CONFIG = "cinder-csi-cloud-config"  # the same for Cinder CSI, with its own application credential
STORAGE_CLASS_DEFAULT = "cinder"
STORAGE_CLASS_RETAIN = "cinder-retain"
CLUSTER_ISSUER = "letsencrypt"
INGRESS_RELEASE = "ingress-nginx"
GRAFANA_ADMIN = "grafana-admin"
WEB_AUTH = "web-basic-auth"  # nginx.org htpasswd Secret for UIs without their own login (key htpasswd)
WEB_LOGIN = "web-login"  # the same account in clear for the operators (keys username, password)
WEB_USER = "admin"
OPENSEARCH_ADMIN = "opensearch-admin"
OPENSEARCH_CLUSTER = "opensearch"
OPENSEARCH_SERVICE = "opensearch-master"  # the chart's Service (clusterName + "-" + nodeGroup)
OPENSEARCH_FLUENT_BIT = "opensearch-fluent-bit"  # Fluent Bit's writer account (keys username, password)
OPENSEARCH_DASHBOARDS = "opensearch-dashboards-account"  # the kibanaserver account (username, password, cookie)
OPENSEARCH_NODE_TLS = "opensearch-node-tls"  # node certificate (cert-manager; keys tls.crt, tls.key, ca.crt)
OPENSEARCH_ADMIN_TLS = "opensearch-admin-tls"  # the security admin's client certificate
PLATFORM_CA = "platform-ca"  # the platform's private CA (Secret and cert-manager Issuer)
PLATFORM_SELF_SIGNED = "platform-selfsigned"
HARBOR_RELEASE = "harbor"
HARBOR_ADMIN = "harbor-admin"
HARBOR_SWIFT = "harbor-swift"
HARBOR_INTERNAL = "harbor-internal"  # Harbor's generated shared secrets (values.HARBOR_INTERNAL_KEYS)
HARBOR_PULL = "registry-pull"  # the docker-config Secret in every customer namespace
GUARDRAIL_PULL_SOURCE = "customer-registry-pull"  # the copy the guardrail reconciler may read (platform ns)
HARBOR_ROBOT = "registry-pull-robot"  # the pull robot's secret in the platform namespace (key ROBOT_SECRET)
HARBOR_ROBOT_PREFIX = "robot$"  # Harbor's default robot_name_prefix (ROBOT_NAME_PREFIX)
VELERO_CREDENTIALS = "velero-openstack"
VELERO_REPOSITORY = "velero-repo-credentials"  # Velero's name (pkg/repository/keys): the Kopia repository password
APP_PROMETHEUS = "apps"
APP_PROMETHEUS_HOST = "prometheus-apps"
APP_PROMETHEUS_PORT = 9090
KEYSTONE_AUTH = "k8s-keystone-auth"
KEYSTONE_AUTH_TLS = "keystone-auth-tls"
KEYSTONE_AUTH_SYNC = "keystone-sync-policy"
GRAFANA_HOST = "grafana"
PROMETHEUS_HOST = "prometheus"
ALERTMANAGER_HOST = "alertmanager"
REGISTRY_HOST = "registry"
DASHBOARD_HOST = "dashboard"
KUBE_SYSTEM = "kube-system"
KUBELET_CSR_APPROVER = "kubelet-csr-approver"


def platform_label(spec: ClusterSpec) -> str:
    """The label (value ``"true"``) that marks a platform namespace."""
    return f"{spec.provider_name}/platform"


def customer_label(spec: ClusterSpec) -> str:
    return f"{spec.provider_name}/customer"


def app_monitoring_label(spec: ClusterSpec) -> str:
    """ServiceMonitors/PodMonitors/rules with this label are scraped by the customer-apps Prometheus."""
    return f"{spec.provider_name}/monitoring"


# Harbor's robot name rule (handler/robot.go validateName).
_HARBOR_ROBOT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def pull_robot_family(spec: ClusterSpec) -> str:
    """``<provider>-pull``: the pull robots of every generation are this, or this and ``-<YYYYMMDD>``."""
    name = f"{spec.provider_name}-pull"
    if not _HARBOR_ROBOT_NAME.match(name):
        raise ValueError(f"provider_name {spec.provider_name!r} gives robot name {name!r}, which Harbor refuses")
    return name


def pull_robot_name(spec: ClusterSpec) -> str:
    """The system robot the customer pull Secrets log in as, as created (without Harbor's prefix):
    ``<provider>-pull-<YYYYMMDD>``, the generation of the cloud's application credentials
    (``identity.credentials_issued``, like :func:`kaas.openstack.credentials.application_credential_name`)."""
    return f"{pull_robot_family(spec)}-{spec.identity.credentials_issued:%Y%m%d}"  # "-<digits>" keeps Harbor's rule


def pull_robot_account(spec: ClusterSpec) -> str:
    """The user name the pull Secrets carry: ``robot$<provider>-pull-<YYYYMMDD>``."""
    return HARBOR_ROBOT_PREFIX + pull_robot_name(spec)


def velero_plugin_image() -> str:
    return images.pinned(catalog.VELERO_OPENSTACK_PLUGIN_IMAGE)
