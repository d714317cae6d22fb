"""Every container image the plan references, with its digest where one is known.

``IMAGES`` is the reviewed inventory: the images of the pinned charts as they render
with the planned values (``tests/test_images.py`` renders every chart with real Helm
and fails on an image that is not listed here, or listed but no longer rendered), plus
the images of the platform's own objects. The value is the image's ``sha256`` digest.

No digest is filled in yet: the build machines have no access to a registry, and no
authoritative source readable offline states them (the projects' release notes and
manifests name tags only; digests quoted in third-party repositories disagree with each
other for the same tag). They are filled with ``crane digest <image>`` (or ``docker
buildx imagetools inspect``) on a machine with registry access, for the multi-arch
index; ``pinned`` then appends them wherever the platform sets an image itself, and
:func:`with_digests` passes them into each chart's values (``CHART_IMAGES``: the values
key of every image of every chart, found by rendering each chart with a marker tag and
checked the same way by the tests). Until every value is set,
``tests/test_images.py::test_every_image_is_pinned_by_digest`` fails as a strict
expected failure.

``PERSONAL`` lists images published under a person's account rather than a project's
organisation; each needs a mirror the operator controls (Harbor) before production.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from kaas.services.catalog import ChartName

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

IMAGES: dict[str, str | None] = {
    # Platform objects (kaas/services/objects.py, catalog.py).
    "registry.k8s.io/provider-os/k8s-keystone-auth:v1.36.0": None,
    "curlimages/curl:8.17.0": None,
    "python:3.13.9-alpine3.22": None,
    "lirt/velero-plugin-for-openstack:v0.8.2": None,
    "ghcr.io/postfinance/kubelet-csr-approver:v1.2.14": None,
    # tigera-operator v3.31.3 (the operator pulls the Calico images it manages by itself).
    "quay.io/tigera/operator:v1.40.3": None,
    # flannel v0.28.9
    "ghcr.io/flannel-io/flannel:v0.28.9": None,
    "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3": None,
    # openstack-cloud-controller-manager / openstack-cinder-csi 2.36.0
    "registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.36.0": None,
    "registry.k8s.io/provider-os/cinder-csi-plugin:v1.36.0": None,
    "registry.k8s.io/sig-storage/csi-attacher:v4.10.0": None,
    "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.15.0": None,
    "registry.k8s.io/sig-storage/csi-provisioner:v5.3.0": None,
    "registry.k8s.io/sig-storage/csi-resizer:v1.14.0": None,
    "registry.k8s.io/sig-storage/csi-snapshotter:v8.4.0": None,
    "registry.k8s.io/sig-storage/livenessprobe:v2.17.0": None,
    # nginx-ingress 2.6.4
    "nginx/nginx-ingress:5.5.4": None,
    # cert-manager v1.21.1
    "quay.io/jetstack/cert-manager-acmesolver:v1.21.1": None,
    "quay.io/jetstack/cert-manager-cainjector:v1.21.1": None,
    "quay.io/jetstack/cert-manager-controller:v1.21.1": None,
    "quay.io/jetstack/cert-manager-startupapicheck:v1.21.1": None,
    "quay.io/jetstack/cert-manager-webhook:v1.21.1": None,
    # kube-prometheus-stack 88.5.3
    "docker.io/bats/bats:1.14.0": None,
    "docker.io/grafana/grafana:13.2.0": None,
    "docker.io/library/busybox:1.38.0": None,
    "ghcr.io/jkroepke/kube-webhook-certgen:1.8.7": None,
    "quay.io/kiwigrid/k8s-sidecar:2.10.1": None,
    "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1": None,
    "quay.io/prometheus-operator/prometheus-operator:v0.93.1": None,
    "quay.io/prometheus/alertmanager:v0.34.0": None,
    "quay.io/prometheus/node-exporter:v1.12.1-distroless": None,
    "quay.io/prometheus/prometheus:v3.14.0-distroless": None,
    "quay.io/thanos/thanos:v0.42.4": None,
    "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0": None,
    # metrics-server 3.13.1
    "registry.k8s.io/metrics-server/metrics-server:v0.8.1": None,
    # opensearch / opensearch-dashboards 3.6.0 (busybox:latest: the chart's init container)
    "opensearchproject/opensearch:3.6.0": None,
    "opensearchproject/opensearch-dashboards:3.6.0": None,
    "busybox:latest": None,
    # fluent-bit 0.58.1
    "cr.fluentbit.io/fluent/fluent-bit:5.1.1": None,
    # harbor 1.18.1
    "goharbor/harbor-core:v2.14.1": None,
    "goharbor/harbor-db:v2.14.1": None,
    "goharbor/harbor-jobservice:v2.14.1": None,
    "goharbor/harbor-portal:v2.14.1": None,
    "goharbor/harbor-registryctl:v2.14.1": None,
    "goharbor/redis-photon:v2.14.1": None,
    "goharbor/registry-photon:v2.14.1": None,
    "goharbor/trivy-adapter-photon:v2.14.1": None,
    # velero 11.2.0 (bitnamilegacy: Bitnami's frozen, unmaintained catalogue, used by the CRD-upgrade Job)
    "velero/velero:v1.17.1": None,
    "docker.io/bitnamilegacy/kubectl:1.34": None,
    # headlamp 0.45.0
    "ghcr.io/headlamp-k8s/headlamp:v0.45.0": None,
}

# Published under a person's account: mirror into the operator's registry
# (services.backups.plugin_image) before production.
PERSONAL = frozenset({"lirt/velero-plugin-for-openstack:v0.8.2"})


def pinned(image: str) -> str:
    """``image@sha256:...`` when its digest is known, else ``image`` (and the inventory test says so)."""
    if image not in IMAGES:
        raise KeyError(f"{image} is not in kaas.services.images.IMAGES: add it (with its digest) after review")
    digest = IMAGES[image]
    if digest is None:
        return image
    if not DIGEST.match(digest):
        raise ValueError(f"{image}: {digest!r} is not a sha256 digest")
    return f"{image}@{digest}"


# Where each chart takes each image's tag: values path -> (image, key of the tag). A tag of
# ``<tag>@sha256:<digest>`` renders as ``<repository>:<tag>@sha256:<digest>`` in every chart below;
# the key ``digest`` takes the digest alone.
CHART_IMAGES: dict[ChartName, dict[str, tuple[str, str]]] = {
    ChartName.TIGERA_OPERATOR: {"tigeraOperator": ("quay.io/tigera/operator:v1.40.3", "version")},
    ChartName.FLANNEL: {
        "flannel.image": ("ghcr.io/flannel-io/flannel:v0.28.9", "tag"),
        "flannel.flannel_cni.image": ("ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3", "tag"),
    },
    ChartName.OPENSTACK_CLOUD_CONTROLLER_MANAGER: {
        "image": ("registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.36.0", "tag"),
    },
    ChartName.OPENSTACK_CINDER_CSI: {
        "csi.plugin.image": ("registry.k8s.io/provider-os/cinder-csi-plugin:v1.36.0", "tag"),
        "csi.attacher.image": ("registry.k8s.io/sig-storage/csi-attacher:v4.10.0", "tag"),
        "csi.provisioner.image": ("registry.k8s.io/sig-storage/csi-provisioner:v5.3.0", "tag"),
        "csi.snapshotter.image": ("registry.k8s.io/sig-storage/csi-snapshotter:v8.4.0", "tag"),
        "csi.resizer.image": ("registry.k8s.io/sig-storage/csi-resizer:v1.14.0", "tag"),
        "csi.livenessprobe.image": ("registry.k8s.io/sig-storage/livenessprobe:v2.17.0", "tag"),
        "csi.nodeDriverRegistrar.image": ("registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.15.0", "tag"),
    },
    ChartName.NGINX_INGRESS: {"controller.image": ("nginx/nginx-ingress:5.5.4", "tag")},
    ChartName.CERT_MANAGER: {
        "image": ("quay.io/jetstack/cert-manager-controller:v1.21.1", "tag"),
        "webhook.image": ("quay.io/jetstack/cert-manager-webhook:v1.21.1", "tag"),
        "cainjector.image": ("quay.io/jetstack/cert-manager-cainjector:v1.21.1", "tag"),
        "acmesolver.image": ("quay.io/jetstack/cert-manager-acmesolver:v1.21.1", "tag"),
        "startupapicheck.image": ("quay.io/jetstack/cert-manager-startupapicheck:v1.21.1", "tag"),
    },
    ChartName.KUBE_PROMETHEUS_STACK: {
        "alertmanager.alertmanagerSpec.image": ("quay.io/prometheus/alertmanager:v0.34.0", "tag"),
        "prometheus.prometheusSpec.image": ("quay.io/prometheus/prometheus:v3.14.0-distroless", "tag"),
        "prometheusOperator.image": ("quay.io/prometheus-operator/prometheus-operator:v0.93.1", "tag"),
        "prometheusOperator.admissionWebhooks.patch.image": ("ghcr.io/jkroepke/kube-webhook-certgen:1.8.7", "tag"),
        "prometheusOperator.prometheusConfigReloader.image": (
            "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
            "tag",
        ),
        "prometheusOperator.thanosImage": ("quay.io/thanos/thanos:v0.42.4", "tag"),
        "grafana.image": ("docker.io/grafana/grafana:13.2.0", "tag"),
        "grafana.testFramework.image": ("docker.io/bats/bats:1.14.0", "tag"),
        "grafana.initChownData.image": ("docker.io/library/busybox:1.38.0", "tag"),
        "grafana.sidecar.image": ("quay.io/kiwigrid/k8s-sidecar:2.10.1", "tag"),
        "kube-state-metrics.image": ("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0", "tag"),
        # node-exporter checks its tag as semver; it takes the digest in image.digest.
        "prometheus-node-exporter.image": ("quay.io/prometheus/node-exporter:v1.12.1-distroless", "digest"),
    },
    ChartName.METRICS_SERVER: {"image": ("registry.k8s.io/metrics-server/metrics-server:v0.8.1", "tag")},
    # opensearch: a tag with a digest is no semver, so majorVersion is set beside it (see with_digests).
    ChartName.OPENSEARCH: {
        "image": ("opensearchproject/opensearch:3.6.0", "tag"),
        "persistence": ("busybox:latest", "imageTag"),
    },
    ChartName.OPENSEARCH_DASHBOARDS: {"image": ("opensearchproject/opensearch-dashboards:3.6.0", "tag")},
    ChartName.FLUENT_BIT: {
        "image": ("cr.fluentbit.io/fluent/fluent-bit:5.1.1", "tag"),
        "testFramework.image": ("busybox:latest", "tag"),
    },
    ChartName.HARBOR: {
        "portal.image": ("goharbor/harbor-portal:v2.14.1", "tag"),
        "core.image": ("goharbor/harbor-core:v2.14.1", "tag"),
        "jobservice.image": ("goharbor/harbor-jobservice:v2.14.1", "tag"),
        "registry.registry.image": ("goharbor/registry-photon:v2.14.1", "tag"),
        "registry.controller.image": ("goharbor/harbor-registryctl:v2.14.1", "tag"),
        "trivy.image": ("goharbor/trivy-adapter-photon:v2.14.1", "tag"),
        "database.internal.image": ("goharbor/harbor-db:v2.14.1", "tag"),
        "redis.internal.image": ("goharbor/redis-photon:v2.14.1", "tag"),
    },
    ChartName.VELERO: {
        "image": ("velero/velero:v1.17.1", "tag"),
        "kubectl.image": ("docker.io/bitnamilegacy/kubectl:1.34", "tag"),
    },
    ChartName.HEADLAMP: {"image": ("ghcr.io/headlamp-k8s/headlamp:v0.45.0", "tag")},
}


def _tag(image: str) -> str:
    return image.rsplit(":", 1)[1]


def with_digests(chart: ChartName, values: Any) -> Any:
    """``values`` with the tag of every image of ``chart`` whose digest is known as ``<tag>@<digest>``.

    Values that are not a plain dict (a Pulumi output) pass unchanged; so do values for
    charts whose images have no digest yet.
    """
    overrides = {path: (image, key) for path, (image, key) in CHART_IMAGES.get(chart, {}).items() if IMAGES[image]}
    if not overrides or not isinstance(values, dict):
        return values
    merged = copy.copy(values)
    for path, (image, key) in overrides.items():
        node = merged
        for part in path.split("."):
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        digest = IMAGES[image]
        node[key] = digest if key == "digest" else f"{_tag(image)}@{digest}"
        if chart is ChartName.OPENSEARCH and path == "image":
            merged["majorVersion"] = _tag(image).split(".")[0]
    return merged
