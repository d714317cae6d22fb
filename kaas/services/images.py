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
index; ``pinned`` then appends them wherever the platform sets an image itself, and the
per-chart values must be extended to pass them (see docs/architecture.md). Until every
value is set, ``tests/test_images.py::test_every_image_is_pinned_by_digest`` fails as a
strict expected failure.

``PERSONAL`` lists images published under a person's account rather than a project's
organisation; each needs a mirror the operator controls (Harbor) before production.
"""

from __future__ import annotations

import re

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

IMAGES: dict[str, str | None] = {
    # Platform objects (kaas/services/objects.py, catalog.py).
    "registry.k8s.io/provider-os/k8s-keystone-auth:v1.36.0": None,
    "curlimages/curl:8.17.0": None,
    "python:3.13.9-alpine3.22": None,
    "lirt/velero-plugin-for-openstack:v0.8.2": None,
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
