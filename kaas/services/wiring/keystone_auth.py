"""Keystone authentication (k8s-keystone-auth as a DaemonSet on the masters) and the cluster-admin binding."""

from __future__ import annotations

import pulumi

from kaas.services import names, objects, values
from kaas.services.inputs import ServiceInputs
from kaas.services.wiring.deps import ServiceDeps, Wired


def wire_keystone_auth(deps: ServiceDeps, inputs: ServiceInputs) -> Wired:
    name, spec, kube = deps.name, deps.spec, deps.kube
    group = deps.group("KeystoneAuth")
    tls = kube.apply(
        f"{name}-keystone-auth-tls",
        objects.secret(
            spec,
            names.KEYSTONE_AUTH_TLS,
            names.KUBE_SYSTEM,
            {
                "tls.crt": pulumi.Output.secret(inputs.keystone_auth_cert_pem),
                "tls.key": pulumi.Output.secret(inputs.keystone_auth_key_pem),
            },
            secret_type="kubernetes.io/tls",
        ),
        group,
    )
    sync_config = pulumi.Output.from_input(inputs.admin_role_id).apply(
        lambda role_id: objects.keystone_sync_config(spec, role_id)
    )
    sync = kube.apply(f"{name}-keystone-sync", objects.keystone_sync_config_map(spec, sync_config), group)
    account = kube.apply(f"{name}-keystone-auth-sa", objects.keystone_auth_service_account(spec), group)
    role = kube.apply(f"{name}-keystone-auth-role", objects.keystone_auth_cluster_role(spec), group)
    binding = kube.apply(f"{name}-keystone-auth-binding", objects.keystone_auth_cluster_role_binding(spec), group)
    kube.apply(
        f"{name}-keystone-auth",
        objects.keystone_auth_daemon_set(
            spec,
            inputs.project_id,
            inputs.admin_role_id,
            values.config_checksum(inputs.keystone_auth_cert_pem),
        ),
        group,
        (deps.cni, tls, sync, account, role, binding),
    )
    kube.apply(
        f"{name}-default-cluster-admin",
        objects.admin_cluster_role_binding(spec, inputs.admin_role_id),
        group,
    )
    group.done()
    return Wired(group=group)
