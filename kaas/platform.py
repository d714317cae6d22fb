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

# Metrics listeners Prometheus (on the workers) scrapes outside the pod network.
# etcd: a dedicated plain-HTTP listener (``listen-metrics-urls``) that serves only
# /metrics and /health, so the client port keeps mutual TLS; 2381 is the port the
# kube-prometheus-stack chart's kubeEtcd Service expects (values.yaml kubeEtcd.service.port).
ETCD_METRICS_PORT = 2381
NODE_EXPORTER_PORT = 9100  # prometheus-node-exporter (the chart's DaemonSet and the etcd VMs' package)
CONTROLLER_MANAGER_PORT = 10257  # kube-controller-manager --secure-port (HTTPS, self-signed serving cert)
SCHEDULER_PORT = 10259  # kube-scheduler --secure-port (HTTPS, self-signed serving cert)
KUBE_PROXY_METRICS_PORT = 10249  # kube-proxy metricsBindAddress (plain HTTP)
# Where the Debian/Ubuntu prometheus-node-exporter package's textfile collector reads
# (/etc/default/prometheus-node-exporter: --collector.textfile.directory).
NODE_EXPORTER_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"

# The etcd VMs are not Kubernetes nodes: rsyslog on each forwards its journal (RFC 5424 over
# TCP) to Fluent Bit's syslog input, a NodePort on the workers (open to the node subnet).
ETCD_LOG_NODE_PORT = 30514
FLUENT_BIT_SYSLOG_PORT = 5140
ETCD_LOG_TARGETS = 2  # the first workers' addresses: fixed while workers are added


def break_glass_group(provider_name: str) -> str:
    """The break-glass certificate's group, bound to cluster-admin by ``<provider>:break-glass``."""
    return f"{provider_name}:break-glass"
