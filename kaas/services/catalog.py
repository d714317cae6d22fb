"""The pinned chart catalog: the only place a chart's repository, name and version are set.

Every version below was read from the chart's upstream source (the ``Chart.yaml`` of
the release tag, or the project's install docs) while this catalog was written; the
comment on each entry names that source. A spec's ``services.<name>.chart_version``
overrides the version (see :func:`chart_for`); the repository and chart name never
come from anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class ChartName(StrEnum):
    TIGERA_OPERATOR = "tigera-operator"
    FLANNEL = "flannel"
    OPENSTACK_CLOUD_CONTROLLER_MANAGER = "openstack-cloud-controller-manager"
    OPENSTACK_CINDER_CSI = "openstack-cinder-csi"
    NGINX_INGRESS = "nginx-ingress"
    CERT_MANAGER = "cert-manager"
    KUBE_PROMETHEUS_STACK = "kube-prometheus-stack"
    METRICS_SERVER = "metrics-server"
    OPENSEARCH = "opensearch"
    OPENSEARCH_DASHBOARDS = "opensearch-dashboards"
    FLUENT_BIT = "fluent-bit"
    HARBOR = "harbor"
    VELERO = "velero"
    HEADLAMP = "headlamp"


@dataclass(frozen=True)
class Chart:
    """One Helm chart at one version in one repository."""

    name: ChartName
    repo: str
    version: str


_CLOUD_PROVIDER_OPENSTACK = "https://kubernetes.github.io/cloud-provider-openstack"
_OPENSEARCH = "https://opensearch-project.github.io/helm-charts/"

CATALOG: dict[ChartName, Chart] = {
    chart.name: chart
    for chart in (
        # docs.tigera.io "Install using Helm" (repo projectcalico); v3.31.3 is a Calico release tag.
        Chart(ChartName.TIGERA_OPERATOR, "https://docs.tigera.io/calico/charts", "v3.31.3"),
        # flannel-io/flannel chart/kube-flannel/Chart.yaml at tag v0.28.9.
        Chart(ChartName.FLANNEL, "https://flannel-io.github.io/flannel/", "v0.28.9"),
        # kubernetes/cloud-provider-openstack charts/*/Chart.yaml: 2.36.0 (app v1.36.0) for both.
        Chart(ChartName.OPENSTACK_CLOUD_CONTROLLER_MANAGER, _CLOUD_PROVIDER_OPENSTACK, "2.36.0"),
        Chart(ChartName.OPENSTACK_CINDER_CSI, _CLOUD_PROVIDER_OPENSTACK, "2.36.0"),
        # nginx/kubernetes-ingress charts/nginx-ingress/Chart.yaml at tag v5.5.4 (chart 2.6.4).
        Chart(ChartName.NGINX_INGRESS, "https://helm.nginx.com/stable", "2.6.4"),
        # cert-manager/cert-manager release tag v1.21.1 (the chart is versioned with the release).
        Chart(ChartName.CERT_MANAGER, "https://charts.jetstack.io", "v1.21.1"),
        # prometheus-community/helm-charts charts/kube-prometheus-stack/Chart.yaml (operator v0.93.1).
        Chart(ChartName.KUBE_PROMETHEUS_STACK, "https://prometheus-community.github.io/helm-charts", "88.5.3"),
        # kubernetes-sigs/metrics-server tag metrics-server-helm-chart-3.13.1 (app 0.8.1).
        Chart(ChartName.METRICS_SERVER, "https://kubernetes-sigs.github.io/metrics-server/", "3.13.1"),
        # opensearch-project/helm-charts charts/opensearch{,-dashboards}/Chart.yaml: 3.6.0 (app 3.6.0).
        Chart(ChartName.OPENSEARCH, _OPENSEARCH, "3.6.0"),
        Chart(ChartName.OPENSEARCH_DASHBOARDS, _OPENSEARCH, "3.6.0"),
        # fluent/helm-charts charts/fluent-bit/Chart.yaml: 0.58.1 (Fluent Bit 5.1.1).
        Chart(ChartName.FLUENT_BIT, "https://fluent.github.io/helm-charts", "0.58.1"),
        # goharbor/harbor-helm Chart.yaml at tag v1.18.1 (Harbor 2.14.1).
        Chart(ChartName.HARBOR, "https://helm.goharbor.io", "1.18.1"),
        # vmware-tanzu/helm-charts charts/velero/Chart.yaml 11.2.0 = Velero 1.17.1; the OpenStack
        # plugin's README declares v0.8.x compatible with Velero 1.15-1.17 (see VELERO_OPENSTACK_PLUGIN).
        Chart(ChartName.VELERO, "https://vmware-tanzu.github.io/helm-charts", "11.2.0"),
        # kubernetes-sigs/headlamp charts/headlamp/Chart.yaml at tag v0.45.0.
        Chart(ChartName.HEADLAMP, "https://kubernetes-sigs.github.io/headlamp/", "0.45.0"),
    )
}

# Lirt/velero-plugin-for-openstack tag v0.8.2: compatible with Velero 1.15.x-1.17.x (README matrix).
VELERO_OPENSTACK_PLUGIN_IMAGE = "lirt/velero-plugin-for-openstack:v0.8.2"
# The Velero app version the pinned chart ships; the plugin pairing above is checked against it.
VELERO_APP_VERSION = "1.17.1"
VELERO_PLUGIN_COMPATIBLE_MINORS = ("1.15", "1.16", "1.17")

# k8s-keystone-auth has no upstream chart; its image comes from the same project and release line.
KEYSTONE_AUTH_IMAGE = "registry.k8s.io/provider-os/k8s-keystone-auth:v1.36.0"


# postfinance/kubelet-csr-approver tag v1.2.14 (ko publishes ghcr.io/postfinance/<name>:<tag>);
# installed as plain objects (its deploy/k8s manifests), no chart.
KUBELET_CSR_APPROVER_IMAGE = "ghcr.io/postfinance/kubelet-csr-approver:v1.2.14"


def chart_for(name: ChartName, override: str | None = None) -> Chart:
    """The catalog's chart ``name``, at ``override`` when the spec pins another version."""
    chart = CATALOG[name]
    return replace(chart, version=override) if override else chart
