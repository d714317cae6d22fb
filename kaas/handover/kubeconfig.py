"""A customer kubeconfig: Keystone credentials through the ``client-keystone-auth`` exec plugin.

No secret is embedded: the plugin asks for the OpenStack password (or reads
``OS_PASSWORD``) and exchanges it for a Keystone token that the cluster's
k8s-keystone-auth webhook checks. The CA certificate is public.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

from kaas.outputs import StackOutputs


def kubeconfig(outputs: StackOutputs, user: str | None = None) -> dict[str, Any]:
    """The kubeconfig of ``user`` (default: the cluster's initial admin user)."""
    access = outputs.access
    username = user or outputs.rbac.initial_admin_user
    cluster = outputs.cluster_name
    args = [f"--keystone-url={access.auth_url}", f"--domain-name={access.domain}"]
    env = [
        {"name": "OS_AUTH_URL", "value": access.auth_url},
        {"name": "OS_DOMAIN_NAME", "value": access.domain},
        {"name": "OS_USER_DOMAIN_NAME", "value": access.domain},
        {"name": "OS_USERNAME", "value": username},
        {"name": "OS_REGION_NAME", "value": access.region},
    ]
    if access.project:
        args.append(f"--project-name={access.project}")
        env.append({"name": "OS_PROJECT_NAME", "value": access.project})
    context = f"{username}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": outputs.api.url,
                    "certificate-authority-data": base64.b64encode(outputs.ca_certificate.encode()).decode(),
                },
            }
        ],
        "users": [
            {
                "name": username,
                "user": {
                    "exec": {
                        "apiVersion": access.exec_api_version,
                        "command": access.exec_plugin,
                        "args": args,
                        "env": env,
                        "interactiveMode": "IfAvailable",
                        "provideClusterInfo": False,
                        "installHint": (
                            f"{access.exec_plugin} is needed to log in with your OpenStack credentials: "
                            "https://github.com/kubernetes/cloud-provider-openstack/releases"
                        ),
                    }
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": username}}],
        "current-context": context,
    }


def kubeconfig_yaml(outputs: StackOutputs, user: str | None = None, preview: bool = False) -> str:
    header = (
        "# PREVIEW from an offline plan: the server address and CA are stand-ins, not the cluster's.\n"
        if preview
        else ""
    )
    return header + yaml.safe_dump(kubeconfig(outputs, user), sort_keys=False)
