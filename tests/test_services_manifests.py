"""Every plain Kubernetes object the services create, rendered to YAML and checked by kubernetes-validate."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from kaas.offline.planfile import plain
from kaas.services import objects
from tests.helpers import make_spec
from tests.services_helpers import default_plan

CUSTOM_RESOURCES = {
    "Prometheus",
    "ClusterIssuer",
    "Issuer",
    "Certificate",
    "PrometheusRule",
    "ServiceMonitor",
}  # CRDs from the charts: validated against them in tests/test_helm_render.py


def _plain_objects() -> list[tuple[str, dict[str, Any]]]:
    plan = default_plan()
    found = []
    for record in plan.resources:
        if not record.type.startswith("kubernetes:") or record.type == "kubernetes:helm.sh/v3:Release":
            continue
        manifest = plain(record.inputs, show_secrets=True)
        if manifest["kind"] in CUSTOM_RESOURCES:
            continue
        found.append((record.name, yaml.safe_load(yaml.safe_dump(manifest))))
    return found


OBJECTS = _plain_objects()


def test_every_kind_the_brief_names_is_rendered() -> None:
    kinds = {m["kind"] for _, m in OBJECTS}
    assert {"ClusterRoleBinding", "StorageClass", "Namespace", "Secret", "DaemonSet", "ConfigMap", "Job",
            "NetworkPolicy", "ResourceQuota", "ServiceAccount", "ClusterRole"} <= kinds  # fmt: skip


@pytest.mark.parametrize(("name", "manifest"), OBJECTS, ids=[n for n, _ in OBJECTS])
def test_object_is_valid_for_the_clusters_kubernetes_version(name: str, manifest: dict[str, Any]) -> None:
    version = make_spec().versions.kubernetes
    kubernetes_validate.validate(manifest, version, strict=True)


def test_validation_catches_a_broken_object() -> None:
    broken = objects.storage_class(make_spec(), "x", "Delete", default=True)
    broken["reclaimPolicie"] = "Delete"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, make_spec().versions.kubernetes, strict=True)
