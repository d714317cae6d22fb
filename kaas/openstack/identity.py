"""KeystoneAccess: the cluster-admin role, its first holder, and the cluster's application credential."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from kaas.spec.models import ClusterSpec


class KeystoneAccess(pulumi.ComponentResource):
    """Keystone role ``spec.admin_role_name`` assigned to the initial admin user on the project.

    The Kubernetes layer binds the role to ``cluster-admin`` (k8s-keystone-auth). The
    application credential is what the cluster's cloud-config (OCCM, Cinder CSI) uses
    instead of the operator's password.
    """

    admin_role_name: str
    admin_role_id: pulumi.Output[str]
    project_id: pulumi.Output[str]
    application_credential_id: pulumi.Output[str]
    application_credential_secret: pulumi.Output[str]

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

        credential = openstack.identity.ApplicationCredential(
            f"{name}-cloud-config",
            name=f"{name}-cloud-config",
            description=f"kaas {spec.name}: OpenStack cloud controller manager and Cinder CSI",
            opts=child,
        )
        self.application_credential_id = credential.id
        self.application_credential_secret = pulumi.Output.secret(credential.secret)
        self.register_outputs(
            {"admin_role_id": self.admin_role_id, "application_credential_id": self.application_credential_id}
        )
