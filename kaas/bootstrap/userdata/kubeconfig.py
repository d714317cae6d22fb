"""Kubeconfigs (join discovery, the API server's webhooks, admins) and the API server's authentication configuration."""

from __future__ import annotations

import base64
from typing import Any

from kaas.bootstrap.userdata.kubeadm import KubernetesCluster
from kaas.bootstrap.userdata.yamltext import safe_dump

ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz")


def discovery_kubeconfig(cluster: KubernetesCluster) -> dict[str, Any]:
    """kubeadm join's discovery file: the VIP, the cluster CA and the bootstrap token as credentials.

    With credentials in the file, kubeadm's file discovery (cmd/kubeadm/app/discovery/file)
    reads ``cluster-info`` as the bootstrap token's user; RBAC grants that ConfigMap to
    anonymous only, so the answer is 403, which kubeadm accepts ("the TLS cert is valid so
    proceeding"). The join then TLS-bootstraps with the same token. Token discovery would
    instead read ``cluster-info`` anonymously, which the API server refuses (401).
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster.name,
                "cluster": {
                    "server": cluster.node_api_server_url,
                    "certificate-authority-data": base64.b64encode(cluster.kubernetes_ca_cert_pem.encode()).decode(),
                },
            }
        ],
        "users": [{"name": "tls-bootstrap-token-user", "user": {"token": cluster.bootstrap_token}}],
        "contexts": [
            {
                "name": f"tls-bootstrap-token-user@{cluster.name}",
                "context": {"cluster": cluster.name, "user": "tls-bootstrap-token-user"},
            }
        ],
        "current-context": f"tls-bootstrap-token-user@{cluster.name}",
    }


def authentication_configuration() -> dict[str, Any]:
    """Structured authentication: anonymous requests only for the health endpoints."""
    return {
        "apiVersion": "apiserver.config.k8s.io/v1beta1",
        "kind": "AuthenticationConfiguration",
        "anonymous": {"enabled": True, "conditions": [{"path": p} for p in ANONYMOUS_PATHS]},
    }


def webhook_kubeconfig(name: str, url: str, ca_cert_pem: str) -> dict[str, Any]:
    """The kubeconfig-format file the API server uses to reach a webhook (here k8s-keystone-auth)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": url,
                    "certificate-authority-data": base64.b64encode(ca_cert_pem.encode()).decode(),
                },
            }
        ],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "kube-apiserver"}}],
        "current-context": name,
    }


def admin_kubeconfig(
    cluster_name: str,
    server: str,
    ca_cert_pem: str,
    client_cert_pem: str,
    client_key_pem: str,
    role: str = "admin",
) -> str:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    user = f"{cluster_name}-{role}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": b64(ca_cert_pem)}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(client_cert_pem), "client-key-data": b64(client_key_pem)},
            }
        ],
        "contexts": [{"name": user + "@" + cluster_name, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": user + "@" + cluster_name,
    }
    return safe_dump(document)
