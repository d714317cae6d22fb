"""ObjectStorage: the cluster's Swift containers, each writable only by its own writer."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from kaas.spec.models import ClusterSpec

PURPOSES = ("etcd_backups", "registry", "cluster_backups")
BACKUP_PURPOSES = ("etcd_backups", "cluster_backups")


def acl(project_id: str, user_id: str) -> str:
    """A Swift keystoneauth ACL entry naming one user of one project (``<project_id>:<user_id>``)."""
    return f"{project_id}:{user_id}"


class ObjectStorage(pulumi.ComponentResource):
    """Containers for etcd backups, registry images and cluster backups.

    The containers hold data that must outlive the stack: they are protected, and a
    deliberate ``pulumi destroy`` (after unprotecting) still leaves them in Swift.
    The etcd backup writer and Harbor's Swift user hold a role no service knows
    (``kaas.openstack.credentials.acl_role_name``): the read and write ACLs of their own
    container are their only access to object storage. Velero's application
    credential (``member``, a Swift operator role) is limited to its container by
    access rules. Members of the project remain the containers' owners: Swift gives a
    project's operators every container of the project, which no ACL can take away.
    With ``object_storage.versioning`` the backup containers keep overwritten and
    deleted objects as older versions.
    """

    containers: dict[str, openstack.objectstorage.Container]
    container_names: dict[str, str]
    s3_endpoint: str

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        provider: openstack.Provider,
        project_id: pulumi.Input[str],
        writers: dict[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``writers`` maps a purpose to the ID of the one user (besides the owners) that may use it."""
        super().__init__("kaas:openstack:ObjectStorage", name, None, opts)
        unknown = set(writers) - set(PURPOSES)
        if unknown:
            raise ValueError(f"writers for unknown container purposes: {sorted(unknown)}")
        self.container_names = {purpose: spec.container_name(purpose) for purpose in PURPOSES}
        self.s3_endpoint = spec.openstack.s3_endpoint
        self.containers = {}
        for purpose, container in self.container_names.items():
            writer = writers.get(purpose)
            entry = pulumi.Output.all(project_id, writer).apply(lambda v: acl(*v)) if writer is not None else None
            self.containers[purpose] = openstack.objectstorage.Container(
                f"{name}-{purpose.replace('_', '-')}",
                name=container,
                metadata={"kaas-cluster": spec.name, "kaas-purpose": purpose},
                container_read=entry,
                container_write=entry,
                versioning=True if spec.object_storage.versioning and purpose in BACKUP_PURPOSES else None,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True, retain_on_delete=True),
            )
        self.register_outputs({"containers": self.container_names})
