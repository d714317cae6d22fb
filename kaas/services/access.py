"""Access beyond the admin role: ``identity.roles`` as k8s-keystone-auth role mappings and RBAC bindings.

A spec'd Keystone role reaches Kubernetes in two steps, both from the spec alone:

1. k8s-keystone-auth's sync config maps it to a group: a user whose token carries the
   role gets the group appended to its groups (``syncRoles`` in
   kubernetes/cloud-provider-openstack ``pkg/identity/keystone/sync.go``: a
   ``role-mappings`` entry is ``keystone-role`` + ``groups``).
2. One RBAC binding gives that group its Kubernetes role: a ClusterRoleBinding to
   ``view`` when no namespace is listed, otherwise one RoleBinding per listed
   customer namespace to the ClusterRole (``view``/``edit``/``admin``) or to the
   namespace's own ``Role``.

The API server authorizes with ``Node,RBAC,Webhook``; k8s-keystone-auth runs without an
authorization policy, so RBAC alone decides what a mapped group may do.
"""

from __future__ import annotations

from typing import Any

from kaas.spec.models import ClusterSpec, RoleMappingSpec

Manifest = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"


def sync_role_mappings(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The ``role-mappings`` entries of the spec'd roles (the admin role's entry is the caller's)."""
    return [{"keystone-role": mapping.keystone_role, "groups": [group]} for mapping, group in spec.role_mappings]


def binding_name(spec: ClusterSpec, mapping: RoleMappingSpec) -> str:
    return f"{spec.provider_name}:{mapping.keystone_role}"


def grants(mapping: RoleMappingSpec) -> str:
    """What the role grants, in one line (the handover's wording)."""
    if mapping.cluster_role is not None:
        role = f"ClusterRole `{mapping.cluster_role.value}`"
    else:
        role = f"the namespace's own Role `{mapping.role}`"
    where = "in every namespace" if not mapping.namespaces else "in " + ", ".join(f"`{n}`" for n in mapping.namespaces)
    return f"{role} {where}"


def _role_ref(mapping: RoleMappingSpec) -> dict[str, str]:
    if mapping.cluster_role is not None:
        return {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": mapping.cluster_role.value}
    return {"apiGroup": RBAC_GROUP, "kind": "Role", "name": str(mapping.role)}


def role_bindings(spec: ClusterSpec) -> list[Manifest]:
    """One RoleBinding per (role, namespace), or one ClusterRoleBinding for a cluster-wide ``view``."""
    manifests: list[Manifest] = []
    for mapping, group in spec.role_mappings:
        subjects = [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": group}]
        labels = {"app.kubernetes.io/managed-by": spec.provider_name}
        name = binding_name(spec, mapping)
        if not mapping.namespaces:
            manifests.append(
                {
                    "apiVersion": f"{RBAC_GROUP}/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": name, "labels": labels},
                    "subjects": subjects,
                    "roleRef": _role_ref(mapping),
                }
            )
        for namespace in mapping.namespaces:
            manifests.append(
                {
                    "apiVersion": f"{RBAC_GROUP}/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    "subjects": subjects,
                    "roleRef": _role_ref(mapping),
                }
            )
    return manifests


def grant_command(spec: ClusterSpec, keystone_role: str) -> str:
    """The command that gives a user the role on the cluster's project."""
    project = f"--project {spec.identity.project}" if spec.identity.project else "--project PROJECT"
    return f"openstack role add --user USER --user-domain {spec.identity.domain} {project} {keystone_role}"
