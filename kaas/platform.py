"""Constants that several layers must agree on (one place, so they cannot drift)."""

API_SERVER_PORT = 6443
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
KUBELET_PORT = 10250

# k8s-keystone-auth runs with host networking on every master; the API server's
# authentication/authorization webhook files (written by the bootstrap layer) point here.
KEYSTONE_AUTH_PORT = 8443
KEYSTONE_AUTH_WEBHOOK_URL = f"https://127.0.0.1:{KEYSTONE_AUTH_PORT}/webhook"

API_HOST_LABEL = "api"  # api.<cluster>.<domain>


def break_glass_group(provider_name: str) -> str:
    """The break-glass certificate's group, bound to cluster-admin by ``<provider>:break-glass``."""
    return f"{provider_name}:break-glass"
