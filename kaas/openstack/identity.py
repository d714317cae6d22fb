"""KeystoneAccess: the cluster-admin role, and every credential the cluster's software holds.

What each credential may do is data in :mod:`kaas.openstack.credentials`; this
component turns it into Keystone resources.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack
import pulumi_random as random

from kaas.openstack import credentials
from kaas.openstack.credentials import Consumer
from kaas.spec.models import ClusterSpec


@dataclass(frozen=True)
class ApplicationCredential:
    """An application credential's ID and (secret) secret, as the cloud-config Secrets need them."""

    id: pulumi.Output[str]
    secret: pulumi.Output[str]


class KeystoneAccess(pulumi.ComponentResource):
    """Keystone role ``spec.admin_role_name`` for the initial admin; the cluster's own credentials.

    The Kubernetes layer lets the role's holders in this project act as ``cluster-admin``
    (k8s-keystone-auth's authorization policy). The in-cluster consumers (cloud
    controller, Cinder CSI, Velero) each get an application credential of the deploying
    user, limited to ``identity.application_credential_roles`` and, for CSI and Velero,
    access rules; all expire (``identity.credentials_issued`` + lifetime). The etcd
    backup writer and Harbor's Swift storage are Keystone users of their own holding only
    the cluster's Swift ACL role: they reach the containers whose ACLs name them. No
    credential of the deploying user other than the restricted application credentials
    leaves the operator's machine.
    """

    admin_role_name: str
    admin_role_id: pulumi.Output[str]
    mapped_role_ids: dict[str, pulumi.Output[str]]
    project_id: pulumi.Output[str]
    application_credentials: dict[Consumer, ApplicationCredential]
    backup_writer_id: pulumi.Output[str]
    backup_access_key: pulumi.Output[str]
    backup_secret_key: pulumi.Output[str]
    registry_user_id: pulumi.Output[str] | None
    registry_username: pulumi.Output[str] | None
    registry_password: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        provider: openstack.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:openstack:KeystoneAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        lookup = pulumi.InvokeOutputOptions(parent=self, provider=provider)
        identity = spec.identity

        if identity.project is not None:
            self.project_id = openstack.identity.get_project_output(name=identity.project, opts=lookup).id
        else:
            self.project_id = openstack.identity.get_auth_scope_output(name="current", opts=lookup).project_id
        user_id = openstack.identity.get_user_output(name=identity.initial_admin_user, opts=lookup).id

        self.admin_role_name = spec.admin_role_name
        role = openstack.identity.Role(f"{name}-cluster-admin", name=self.admin_role_name, opts=child)
        openstack.identity.RoleAssignment(
            f"{name}-cluster-admin-{identity.initial_admin_user}",
            role_id=role.id,
            user_id=user_id,
            project_id=self.project_id,
            opts=pulumi.ResourceOptions(parent=role, provider=provider),
        )
        self.admin_role_id = role.id
        self.mapped_role_ids = self._mapped_roles(name, spec, child)

        self.application_credentials = {
            consumer: self._application_credential(name, spec, consumer, child) for consumer in Consumer
        }

        # The Swift users' only role: scopes their tokens to the project, no service grants it anything.
        self._acl_role = openstack.identity.Role(f"{name}-swift-acl", name=credentials.acl_role_name(spec), opts=child)
        writer = self._swift_user(
            name, "etcd-backup", credentials.backup_writer_name(spec), "etcd snapshots (S3 API)", provider
        )
        self.backup_writer_id = writer.id
        ec2 = openstack.identity.Ec2CredentialV3(
            f"{name}-backup-writer",
            user_id=writer.id,
            project_id=self.project_id,
            opts=pulumi.ResourceOptions(
                parent=writer, provider=provider, additional_secret_outputs=["access", "secret"]
            ),
        )
        self.backup_access_key = pulumi.Output.secret(ec2.access)
        self.backup_secret_key = pulumi.Output.secret(ec2.secret)

        self.registry_user_id = self.registry_username = self.registry_password = None
        if spec.services.registry.enabled:
            self._registry_user(name, spec, provider)
        self.register_outputs(
            {
                "admin_role_id": self.admin_role_id,
                "application_credential_ids": {c.value: a.id for c, a in self.application_credentials.items()},
                "backup_writer_id": self.backup_writer_id,
            }
        )

    def _application_credential(
        self, name: str, spec: ClusterSpec, consumer: Consumer, opts: pulumi.ResourceOptions
    ) -> ApplicationCredential:
        rules = credentials.access_rules(spec, consumer)
        credential = openstack.identity.ApplicationCredential(
            f"{name}-{consumer.value}",
            name=credentials.application_credential_name(spec, consumer),
            description=f"kaas {spec.name}: {consumer.value}",
            roles=list(spec.identity.application_credential_roles),
            access_rules=[
                openstack.identity.ApplicationCredentialAccessRuleArgs(
                    service=rule.service, method=rule.method, path=rule.path
                )
                for rule in rules
            ]
            or None,
            expires_at=credentials.expires_at(spec),
            unrestricted=False,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["secret"])),
        )
        return ApplicationCredential(id=credential.id, secret=pulumi.Output.secret(credential.secret))

    def _mapped_roles(
        self, name: str, spec: ClusterSpec, child: pulumi.ResourceOptions
    ) -> dict[str, pulumi.Output[str]]:
        """One Keystone role per ``identity.roles`` entry; nobody holds it until the customer grants it.

        k8s-keystone-auth maps the role by name to its group; the handover gives the
        ``openstack role add`` command that grants it.
        """
        ids: dict[str, pulumi.Output[str]] = {}
        for mapping in spec.identity.roles:
            role = openstack.identity.Role(
                f"{name}-role-{mapping.keystone_role}", name=mapping.keystone_role, opts=child
            )
            ids[mapping.keystone_role] = role.id
        return ids

    def _swift_user(
        self,
        name: str,
        purpose: str,
        user_name: str,
        description: str,
        provider: openstack.Provider,
        password: pulumi.Input[str] | None = None,
    ) -> openstack.identity.User:
        user = openstack.identity.User(
            f"{name}-{purpose}",
            name=user_name,
            description=f"kaas {user_name}: {description}; reaches only containers whose ACL names it",
            default_project_id=self.project_id,
            password=password,
            ignore_password_expiry=True if password is not None else None,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        openstack.identity.RoleAssignment(
            f"{name}-{purpose}-swift-acl",
            role_id=self._acl_role.id,
            user_id=user.id,
            project_id=self.project_id,
            opts=pulumi.ResourceOptions(parent=user, provider=provider),
        )
        return user

    def _registry_user(self, name: str, spec: ClusterSpec, provider: openstack.Provider) -> None:
        """A Keystone user for Harbor: its Swift driver logs in with a user and password only.

        The password comes from pulumi-random and stays secret; the registry container's
        ACL is what lets the user write there.
        """
        password = random.RandomPassword(
            f"{name}-registry-swift", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        user = self._swift_user(
            name,
            "registry",
            credentials.registry_user_name(spec),
            "Harbor image storage in Swift",
            provider,
            password=password.result,
        )
        self.registry_user_id = user.id
        self.registry_username = user.name
        self.registry_password = pulumi.Output.secret(password.result)
