"""The Velero objects of the documented backup and restore procedures (README, handover).

Pure functions of plain values (the Velero namespace, container names), so the
handover renders them from stack outputs and the tests validate them against the
CRDs the pinned Velero chart ships. Names match :func:`kaas.services.values.velero_values`:
the BackupStorageLocation ``swift`` (the cluster's own container) and the
VolumeSnapshotLocation ``cinder``.

- A namespace: an on-demand ``Backup`` of it, then a ``Restore`` of that backup (into
  the same namespace, or another one with ``namespaceMapping``).
- A whole cluster into a fresh stack: the fresh stack's Velero gets a read-only
  ``BackupStorageLocation`` on the old cluster's container, then one ``Restore`` of the
  chosen backup that leaves the platform's namespaces to the fresh stack.
"""

from __future__ import annotations

from typing import Any

from kaas.spec.models import CNI_NAMESPACES, KUBERNETES_NAMESPACES

Manifest = dict[str, Any]

VELERO_API = "velero.io/v1"
STORAGE_LOCATION = "swift"
SNAPSHOT_LOCATION = "cinder"
OLD_CLUSTER_LOCATION = "previous-cluster"
PROVIDER = "community.openstack.org/openstack"


def namespace_backup(velero_namespace: str, name: str, namespace: str, ttl_hours: int = 720) -> Manifest:
    """An on-demand backup of one namespace: its objects and its volumes' Cinder snapshots."""
    return {
        "apiVersion": VELERO_API,
        "kind": "Backup",
        "metadata": {"name": name, "namespace": velero_namespace},
        "spec": {
            "includedNamespaces": [namespace],
            "storageLocation": STORAGE_LOCATION,
            "volumeSnapshotLocations": [SNAPSHOT_LOCATION],
            "snapshotVolumes": True,
            "ttl": f"{ttl_hours}h0m0s",
        },
    }


def namespace_restore(
    velero_namespace: str, name: str, backup: str, namespace: str, into: str | None = None
) -> Manifest:
    """Restore one namespace of ``backup``, optionally into the namespace ``into``."""
    spec: dict[str, Any] = {
        "backupName": backup,
        "includedNamespaces": [namespace],
        "restorePVs": True,
        "existingResourcePolicy": "none",
    }
    if into is not None and into != namespace:
        spec["namespaceMapping"] = {namespace: into}
    return {
        "apiVersion": VELERO_API,
        "kind": "Restore",
        "metadata": {"name": name, "namespace": velero_namespace},
        "spec": spec,
    }


def previous_cluster_location(velero_namespace: str, container: str, region: str) -> Manifest:
    """The old cluster's backup container, read-only, in the fresh cluster's Velero."""
    return {
        "apiVersion": VELERO_API,
        "kind": "BackupStorageLocation",
        "metadata": {"name": OLD_CLUSTER_LOCATION, "namespace": velero_namespace},
        "spec": {
            "provider": PROVIDER,
            "objectStorage": {"bucket": container},
            "config": {"region": region},
            "accessMode": "ReadOnly",
        },
    }


def platform_namespaces(velero_namespace: str) -> list[str]:
    """What a whole-cluster restore leaves alone: the fresh stack creates these itself."""
    return [velero_namespace, *KUBERNETES_NAMESPACES, *CNI_NAMESPACES]


def cluster_restore(velero_namespace: str, name: str, backup: str) -> Manifest:
    """Every customer namespace and cluster-scoped object of ``backup``, never the platform's own."""
    return {
        "apiVersion": VELERO_API,
        "kind": "Restore",
        "metadata": {"name": name, "namespace": velero_namespace},
        "spec": {
            "backupName": backup,
            "includedNamespaces": ["*"],
            "excludedNamespaces": platform_namespaces(velero_namespace),
            "includeClusterResources": True,
            "restorePVs": True,
            "existingResourcePolicy": "none",
        },
    }
