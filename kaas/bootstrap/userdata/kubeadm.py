"""kubeadm's documents: the cluster-wide settings, the init/join configurations, the kubelet's.

kubeadm v1beta4 with an external etcd; the API server reads its authentication,
authorization webhooks, encryption, audit and admission configuration from files under
``APISERVER_CONFIG_DIR`` (written by ``kaas.bootstrap.userdata.nodes``). Nodes reach the API
at the load balancer's internal VIP; joins use file discovery (``DISCOVERY_KUBECONFIG_PATH``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kaas import platform, versions
from kaas.bootstrap import hardening

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"

# Where things live on a master or worker.
KUBEADM_CONFIG_PATH = "/etc/kaas/kubeadm.yaml"
# kubeadm join's file discovery: the API address, the cluster CA and the bootstrap token.
DISCOVERY_KUBECONFIG_PATH = "/etc/kaas/discovery.kubeconfig"
KUBERNETES_PKI_DIR = "/etc/kubernetes/pki"
APISERVER_CONFIG_DIR = "/etc/kaas/apiserver"
AUTHN_WEBHOOK_PATH = f"{APISERVER_CONFIG_DIR}/keystone-authn-webhook.kubeconfig"
AUTHZ_WEBHOOK_PATH = f"{APISERVER_CONFIG_DIR}/keystone-authz-webhook.kubeconfig"
AUTHENTICATION_CONFIG_PATH = f"{APISERVER_CONFIG_DIR}/authentication-config.yaml"
ENCRYPTION_CONFIG_PATH = f"{APISERVER_CONFIG_DIR}/encryption-config.yaml"
AUDIT_POLICY_PATH = f"{APISERVER_CONFIG_DIR}/audit-policy.yaml"
ADMISSION_CONFIG_PATH = f"{APISERVER_CONFIG_DIR}/admission-config.yaml"


@dataclass(frozen=True)
class KubernetesCluster:
    """The cluster-wide settings every Kubernetes node's user data shares."""

    name: str
    api_endpoint_host: str
    api_vip: str
    kubernetes_version: str
    containerd_version: str
    pod_cidr: str
    service_cidr: str
    etcd_endpoints: tuple[str, ...]
    bootstrap_token: str
    kubernetes_ca_cert_pem: str
    api_cert_sans: tuple[str, ...] = ()
    api_port: int = platform.API_SERVER_PORT
    bootstrap_token_ttl_hours: int = 24
    pod_security_default: str = "baseline"
    metadata_allowed_pod_cidrs: tuple[str, ...] = ()

    @property
    def control_plane_endpoint(self) -> str:
        """Where nodes and control-plane components reach the API: the load balancer's internal VIP.

        The public name (``api_endpoint_host``, resolving to the floating IP) is for people;
        a node using it would come from the router's SNAT address, which the listener's
        allowed CIDRs would then have to admit for every tenant of the external network.
        """
        return f"{self.api_vip}:{self.api_port}"

    @property
    def node_api_server_url(self) -> str:
        return f"https://{self.control_plane_endpoint}"

    @property
    def minor(self) -> str:
        major, minor, *_ = self.kubernetes_version.lstrip("v").split(".")
        return f"{major}.{minor}"

    @property
    def deb_version(self) -> str:
        return f"{self.kubernetes_version.lstrip('v')}-{versions.KUBERNETES_DEB_REVISION}"

    @property
    def containerd_sha256(self) -> str:
        version = self.containerd_version.lstrip("v")
        if version not in versions.CONTAINERD_SHA256:
            raise ValueError(f"no verified sha256 for containerd {version}; add it to kaas/versions.py")
        return versions.CONTAINERD_SHA256[version]


@dataclass(frozen=True)
class KubernetesNode:
    name: str
    ip: str


@dataclass(frozen=True)
class ControlPlaneCertificates:
    """The certificates all masters share: the first master's user data carries them.

    ``kubeadm init --upload-certs`` then stores them in the ``kubeadm-certs`` Secret,
    encrypted with the certificate key, and deleted by kubeadm after two hours; the other
    masters fetch them with ``controlPlane.certificateKey`` and carry no private key.
    """

    ca_cert_pem: str
    ca_key_pem: str
    service_account_key_pem: str
    service_account_pub_pem: str
    front_proxy_ca_cert_pem: str
    front_proxy_ca_key_pem: str
    etcd_ca_cert_pem: str
    apiserver_etcd_client_cert_pem: str
    apiserver_etcd_client_key_pem: str

    def files(self) -> dict[str, str]:
        """Path under the PKI directory -> content."""
        return {
            "ca.crt": self.ca_cert_pem,
            "ca.key": self.ca_key_pem,
            "sa.key": self.service_account_key_pem,
            "sa.pub": self.service_account_pub_pem,
            "front-proxy-ca.crt": self.front_proxy_ca_cert_pem,
            "front-proxy-ca.key": self.front_proxy_ca_key_pem,
            "etcd/ca.crt": self.etcd_ca_cert_pem,
            "apiserver-etcd-client.crt": self.apiserver_etcd_client_cert_pem,
            "apiserver-etcd-client.key": self.apiserver_etcd_client_key_pem,
        }


# Control-plane components: profiling endpoints off, TLS as hardening.TLS_CIPHER_SUITES says.
CONTROL_PLANE_HARDENING = {
    "profiling": "false",
    "tls-min-version": "VersionTLS12",
    "tls-cipher-suites": ",".join(hardening.TLS_CIPHER_SUITES),
}


def _args(values: dict[str, str]) -> list[dict[str, str]]:
    """kubeadm v1beta4 extra arguments: a list of name/value pairs."""
    return [{"name": k, "value": v} for k, v in values.items()]


def _node_registration(node: KubernetesNode) -> dict[str, Any]:
    # cloud-provider=external: the OpenStack cloud controller initialises the node; the
    # provider ID (openstack:///<instance uuid>) is set at boot through /etc/default/kubelet.
    return {
        "name": node.name,
        "criSocket": CRI_SOCKET,
        "kubeletExtraArgs": _args({"cloud-provider": "external", "node-ip": node.ip}),
    }


def kubelet_configuration() -> dict[str, Any]:
    """Cluster-wide kubelet settings (kubeadm stores them in the ``kubelet-config`` ConfigMap).

    ``serverTLSBootstrap``: each kubelet requests its serving certificate from the cluster
    CA (signer ``kubernetes.io/kubelet-serving``) instead of signing one itself, so
    metrics-server and the API server can verify it; the kubelet-csr-approver in the
    services layer approves the requests (the controller manager never approves serving
    certificates on its own).

    TLS and access as the control plane's, set rather than left to kubeadm's defaults
    (k8s.io/kubelet/config/v1beta1 types.go field names): no anonymous requests, clients
    authenticated by the cluster CA or a token review, authorised by SubjectAccessReview, no
    read-only port. Its clients (API server, metrics-server, Prometheus) are Go: ECDHE + AEAD.
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "serverTLSBootstrap": True,
        "rotateCertificates": True,
        "tlsMinVersion": CONTROL_PLANE_HARDENING["tls-min-version"],
        "tlsCipherSuites": list(hardening.TLS_CIPHER_SUITES),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True}},
        "authorization": {"mode": "Webhook"},
        "readOnlyPort": 0,
    }


def cluster_configuration(cluster: KubernetesCluster) -> dict[str, Any]:
    sans = [cluster.api_endpoint_host, cluster.api_vip, *cluster.api_cert_sans]
    return {
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "clusterName": cluster.name,
        "kubernetesVersion": "v" + cluster.kubernetes_version.lstrip("v"),
        "controlPlaneEndpoint": cluster.control_plane_endpoint,
        "certificatesDir": KUBERNETES_PKI_DIR,
        "encryptionAlgorithm": "ECDSA-P256",
        "networking": {
            "podSubnet": cluster.pod_cidr,
            "serviceSubnet": cluster.service_cidr,
            "dnsDomain": "cluster.local",
        },
        "etcd": {
            "external": {
                "endpoints": list(cluster.etcd_endpoints),
                "caFile": f"{KUBERNETES_PKI_DIR}/etcd/ca.crt",
                "certFile": f"{KUBERNETES_PKI_DIR}/apiserver-etcd-client.crt",
                "keyFile": f"{KUBERNETES_PKI_DIR}/apiserver-etcd-client.key",
            }
        },
        "apiServer": {
            "certSANs": list(dict.fromkeys(sans)),
            "extraArgs": _args(
                {
                    "authentication-config": AUTHENTICATION_CONFIG_PATH,
                    "authentication-token-webhook-config-file": AUTHN_WEBHOOK_PATH,
                    "authorization-webhook-config-file": AUTHZ_WEBHOOK_PATH,
                    "authorization-mode": "Node,RBAC,Webhook",
                    "encryption-provider-config": ENCRYPTION_CONFIG_PATH,
                    "admission-control-config-file": ADMISSION_CONFIG_PATH,
                    **hardening.audit_args(AUDIT_POLICY_PATH),
                    **CONTROL_PLANE_HARDENING,
                }
            ),
            # kubeadm mounts only the certificates directory into the static pod; the
            # configuration files above and the audit log need their own hostPath volumes.
            "extraVolumes": [
                {
                    "name": "kaas-apiserver-config",
                    "hostPath": APISERVER_CONFIG_DIR,
                    "mountPath": APISERVER_CONFIG_DIR,
                    "readOnly": True,
                    "pathType": "DirectoryOrCreate",
                },
                {
                    "name": "kaas-audit-log",
                    "hostPath": hardening.AUDIT_LOG_DIR,
                    "mountPath": hardening.AUDIT_LOG_DIR,
                    "readOnly": False,
                    "pathType": "DirectoryOrCreate",
                },
            ],
        },
        **metrics_listeners(),
    }


# kubeadm binds kube-controller-manager and kube-scheduler to 127.0.0.1 (its static pod
# manifests set --bind-address=127.0.0.1) and kube-proxy's metrics to 127.0.0.1:10249
# (KubeProxyConfiguration metricsBindAddress default). Prometheus runs on the workers, so
# each listens on every address instead: the controller manager and the scheduler serve
# HTTPS with their own (self-signed) serving certificates and authorise /metrics against the
# API server (delegated authorisation), kube-proxy serves plain HTTP. The master and worker
# security groups admit exactly these ports from the workers (security.monitoring_rules).
ALL_ADDRESSES = "0.0.0.0"


def metrics_listeners() -> dict[str, Any]:
    """The controller manager's and scheduler's ClusterConfiguration sections: hardened, metrics reachable."""
    return {
        "controllerManager": {"extraArgs": _args({**CONTROL_PLANE_HARDENING, "bind-address": ALL_ADDRESSES})},
        "scheduler": {"extraArgs": _args({**CONTROL_PLANE_HARDENING, "bind-address": ALL_ADDRESSES})},
    }


def kube_proxy_configuration() -> dict[str, Any]:
    """kube-proxy's component config (kubeadm init stores it in the kube-proxy ConfigMap)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "metricsBindAddress": f"{ALL_ADDRESSES}:{platform.KUBE_PROXY_METRICS_PORT}",
    }


def init_configuration(cluster: KubernetesCluster, node: KubernetesNode, certificate_key: str) -> dict[str, Any]:
    token_id = cluster.bootstrap_token.split(".")[0]
    return {
        "apiVersion": KUBEADM_API,
        "kind": "InitConfiguration",
        # The token in every node's user data expires (spec security.bootstrap_token_ttl_hours):
        # whoever reads the user data later (a pod, the metadata service's logs) holds a
        # dead credential. Nodes built after it expired join with the fresh token kaas roll mints
        # for their step (config kaas:joinToken, kaas.roll.tokens).
        "bootstrapTokens": [
            {
                "token": cluster.bootstrap_token,
                "description": f"kaas node bootstrap token ({token_id})",
                "ttl": f"{cluster.bootstrap_token_ttl_hours}h0m0s",
                "usages": ["signing", "authentication"],
                "groups": ["system:bootstrappers:kubeadm:default-node-token"],
            }
        ],
        # With --upload-certs: the key that encrypts the kubeadm-certs Secret (hex, 32 bytes).
        "certificateKey": certificate_key,
        "localAPIEndpoint": {"advertiseAddress": node.ip, "bindPort": cluster.api_port},
        "nodeRegistration": _node_registration(node),
    }


def join_configuration(
    cluster: KubernetesCluster, node: KubernetesNode, control_plane: bool, certificate_key: str | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": KUBEADM_API,
        "kind": "JoinConfiguration",
        "discovery": {"file": {"kubeConfigPath": DISCOVERY_KUBECONFIG_PATH}},
        "nodeRegistration": _node_registration(node),
        "timeouts": {"discovery": "30m0s", "tlsBootstrap": "10m0s"},
    }
    if control_plane:
        if certificate_key is None:
            raise ValueError("a control-plane join needs the certificate key of the uploaded certificates")
        document["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": node.ip, "bindPort": cluster.api_port},
            "certificateKey": certificate_key,
        }
    return document
