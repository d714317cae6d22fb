"""KeystoneAccess: the cluster-admin role, its first holder, and the cluster's application credential."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack
import pulumi_random as random

from kaas.spec.models import ClusterSpec

MEMBER_ROLE = "member"  # Keystone's default project role (Swift's operator role in most deployments)


class KeystoneAccess(pulumi.ComponentResource):
    """Keystone role ``spec.admin_role_name`` assigned to the initial admin user on the project.

    The Kubernetes layer binds the role to ``cluster-admin`` (k8s-keystone-auth). The
    application credential is what the cluster's cloud-config (OCCM, Cinder CSI) uses
    instead of the operator's password.
    """

    admin_role_name: str
    admin_role_id: pulumi.Output[str]
    mapped_role_ids: dict[str, pulumi.Output[str]]
    project_id: pulumi.Output[str]
    application_credential_id: pulumi.Output[str]
    application_credential_secret: pulumi.Output[str]
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

        credential = openstack.identity.ApplicationCredential(
            f"{name}-cloud-config",
            name=f"{name}-cloud-config",
            description=f"kaas {spec.name}: OpenStack cloud controller manager and Cinder CSI",
            opts=child,
        )
        self.application_credential_id = credential.id
        self.application_credential_secret = pulumi.Output.secret(credential.secret)

        self.registry_username = self.registry_password = None
        if spec.services.registry.enabled:
            self._registry_user(name, spec, provider, lookup)
        self.register_outputs(
            {"admin_role_id": self.admin_role_id, "application_credential_id": self.application_credential_id}
        )

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

    def _registry_user(
        self, name: str, spec: ClusterSpec, provider: openstack.Provider, lookup: pulumi.InvokeOutputOptions
    ) -> None:
        """A Keystone user for Harbor: its Swift driver logs in with a user and password only.

        The user is a member of the project (so it can write the registry container) and
        nothing else; its password comes from pulumi-random and stays secret.
        """
        password = random.RandomPassword(
            f"{name}-registry-swift", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        user = openstack.identity.User(
            f"{name}-registry",
            name=f"{spec.name}-registry",
            description=f"kaas {spec.name}: Harbor image storage in Swift",
            default_project_id=self.project_id,
            password=password.result,
            ignore_password_expiry=True,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        member = openstack.identity.get_role_output(name=MEMBER_ROLE, opts=lookup)
        openstack.identity.RoleAssignment(
            f"{name}-registry-member",
            role_id=member.id,
            user_id=user.id,
            project_id=self.project_id,
            opts=pulumi.ResourceOptions(parent=user, provider=provider),
        )
        self.registry_username = user.name
        self.registry_password = pulumi.Output.secret(password.result)
