"""Who holds which OpenStack credential, and what it may do: the plan as data.

Each in-cluster consumer of the OpenStack APIs gets its own application credential,
limited to ``identity.application_credential_roles`` (default ``member`` only: never the
deploying user's admin or other roles) and, where the set of calls is small enough to
list, Keystone access rules. Every application credential expires
``identity.credential_lifetime_days`` after ``identity.credentials_issued``; the date is
part of its name, so setting a later date creates the next generation (Pulumi creates the
replacement before it deletes the old one) and the Secrets follow.

Swift users (the etcd backup writer, Harbor's registry storage) are Keystone users of
their own that hold only :func:`acl_role_name`, a role no service's policy knows: it scopes
their tokens to the project and grants nothing. The container ACLs name them, so each
reaches its own container and nothing else (see ``kaas.openstack.storage``).

Access rule paths follow Keystone's syntax: ``*`` is one path segment, ``**`` any number.
They are checked by each service's keystonemiddleware against the service type it is
configured with (``volumev3``, ``compute``, ``object-store`` here);
``identity.access_rules: false`` drops them for clouds that name their services otherwise.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum

from kaas.spec.models import ClusterSpec


class Consumer(StrEnum):
    """An in-cluster user of the OpenStack APIs with its own application credential."""

    CLOUD_CONTROLLER = "cloud-controller"
    CINDER_CSI = "cinder-csi"
    VELERO = "velero"


@dataclass(frozen=True)
class AccessRule:
    service: str
    method: str
    path: str


def _rules(service: str, methods: tuple[str, ...], *paths: str) -> tuple[AccessRule, ...]:
    return tuple(AccessRule(service, method, path) for path in paths for method in methods)


READ = ("GET", "HEAD")
WRITE = ("GET", "HEAD", "PUT", "POST", "DELETE")


def access_rules(spec: ClusterSpec, consumer: Consumer) -> tuple[AccessRule, ...]:
    """The calls ``consumer`` may make; empty means the roles alone limit it.

    - Cloud controller: compute, network, load balancer and (for TLS listeners) key
      manager, across most of their APIs: listing them would mirror OCCM's client code;
      it keeps the ``member`` role without access rules.
    - Cinder CSI: the block-storage API, reading servers, and attaching/detaching
      volumes (cloud-provider-openstack pkg/csi/cinder/openstack: volumes, snapshots,
      backups, ``servers/{id}/os-volume_attachments``).
    - Velero (velero-plugin-for-openstack): objects of its own container, and Cinder
      snapshots/volumes for volume backups and restores.
    """
    if not spec.identity.access_rules:
        return ()
    if consumer is Consumer.CINDER_CSI:
        return (
            *_rules("volumev3", WRITE, "/v3/**"),
            *_rules("compute", READ, "/v2.1/**"),
            *_rules("compute", ("POST",), "/v2.1/servers/*/os-volume_attachments"),
            *_rules("compute", ("DELETE",), "/v2.1/servers/*/os-volume_attachments/*"),
        )
    if consumer is Consumer.VELERO:
        container = spec.container_name("cluster_backups")
        return (
            *_rules("object-store", WRITE, f"/v1/*/{container}", f"/v1/*/{container}/**"),
            *_rules("volumev3", WRITE, "/v3/*/snapshots", "/v3/*/snapshots/**", "/v3/*/volumes", "/v3/*/volumes/**"),
        )
    return ()


def expires_at(spec: ClusterSpec) -> str:
    """RFC 3339 expiry of this generation's application credentials (midnight UTC)."""
    identity = spec.identity
    day = identity.credentials_issued + datetime.timedelta(days=identity.credential_lifetime_days)
    return f"{day.isoformat()}T00:00:00Z"


def application_credential_name(spec: ClusterSpec, consumer: Consumer) -> str:
    """``<cluster>-<consumer>-<YYYYMMDD>``: unique per generation (Keystone names are unique per user)."""
    return f"{spec.name}-{consumer.value}-{spec.identity.credentials_issued:%Y%m%d}"


def acl_role_name(spec: ClusterSpec) -> str:
    """The role of the cluster's Swift users: scopes a token to the project, grants nothing by itself."""
    return f"{spec.name}-swift-acl"


def backup_writer_name(spec: ClusterSpec) -> str:
    return f"{spec.name}-etcd-backup"


def registry_user_name(spec: ClusterSpec) -> str:
    return f"{spec.name}-registry"
