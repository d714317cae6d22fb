"""ObjectStorage: the cluster's Swift containers and the S3 credentials of the backup writer."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from kaas.spec.models import ClusterSpec

PURPOSES = ("etcd_backups", "registry", "cluster_backups")


class ObjectStorage(pulumi.ComponentResource):
    """Containers for etcd backups, registry images and cluster backups; Keystone EC2 credentials.

    The containers hold data that must outlive the stack: they are protected, and a
    deliberate ``pulumi destroy`` (after unprotecting) still leaves them in Swift.
    The EC2 credentials belong to the deploying user and project; the etcd backup
    job and the backup service reach Swift through its S3 API with them.
    """

    containers: dict[str, openstack.objectstorage.Container]
    container_names: dict[str, str]
    s3_endpoint: str
    ec2_access: pulumi.Output[str]
    ec2_secret: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        provider: openstack.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:openstack:ObjectStorage", name, None, opts)
        self.container_names = {purpose: spec.container_name(purpose) for purpose in PURPOSES}
        self.s3_endpoint = spec.openstack.s3_endpoint
        self.containers = {
            purpose: openstack.objectstorage.Container(
                f"{name}-{purpose.replace('_', '-')}",
                name=container,
                metadata={"kaas-cluster": spec.name, "kaas-purpose": purpose},
                opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True, retain_on_delete=True),
            )
            for purpose, container in self.container_names.items()
        }
        credential = openstack.identity.Ec2CredentialV3(
            f"{name}-backup-writer",
            opts=pulumi.ResourceOptions(parent=self, provider=provider, additional_secret_outputs=["access", "secret"]),
        )
        self.ec2_access = pulumi.Output.secret(credential.access)
        self.ec2_secret = pulumi.Output.secret(credential.secret)
        self.register_outputs({"containers": self.container_names, "ec2_access": self.ec2_access})
