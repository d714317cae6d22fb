"""Certificate expiry alerts: a PrometheusRule that fires 30 days before any platform
certificate expires, and the node-exporter setting that lets Prometheus read the
masters' certificate report.

Sources, each a metric that exists on a kaas cluster:
- ``kaas_certificate_expiry_timestamp_seconds``: written daily by the masters'
  ``kaas-cert-renew`` timer (kubeadm's certificates and kubeconfigs, the CAs, the
  API server's etcd client certificate and every etcd member's serving certificate),
  read through node-exporter's textfile collector (``--collector.textfile.directory``).
- ``apiserver_client_certificate_expiration_seconds``: the API server's histogram of
  the client certificates presented to it (kubelets, controller manager, scheduler,
  the program's admin credential, the break-glass credential).
- ``kubelet_certificate_manager_client_ttl_seconds`` / ``..._server_ttl_seconds``:
  the kubelets' own rotating certificates.

Renewal runs 90 days ahead (kubeadm's certificates) or through a rollout (etcd's),
so an alert 30 days ahead means renewal failed and leaves a month to act.
"""

from __future__ import annotations

from typing import Any

from kaas.bootstrap.cloudinit import CERT_METRICS_DIR
from kaas.spec.models import ClusterSpec

ALERT_BEFORE_DAYS = 30
ALERT_BEFORE_SECONDS = ALERT_BEFORE_DAYS * 86400
PROMETHEUS_STACK_RELEASE = "kube-prometheus-stack"
RULE_NAME = "kaas-certificate-expiry"
# prometheus-node-exporter mounts the host's / at /host/root (hostRootFsMount).
TEXTFILE_DIRECTORY = f"/host/root{CERT_METRICS_DIR}"
# kube-prometheus-stack 88.5.3's own prometheus-node-exporter.extraArgs, kept: setting
# the list replaces the chart's.
_NODE_EXPORTER_DEFAULT_ARGS = (
    "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|run/containerd/.+|var/lib/docker/.+"
    "|var/lib/kubelet/.+)($|/)",
    "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs"
    "|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs"
    "|sysfs|tracefs|erofs)$",
)


def _alert(name: str, expr: str, summary: str, for_: str = "1h", severity: str = "warning") -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def certificate_alerts() -> list[dict[str, Any]]:
    soon = ALERT_BEFORE_SECONDS
    return [
        _alert(
            "KaasCertificateExpiresSoon",
            f"kaas_certificate_expiry_timestamp_seconds - time() < {soon}",
            "Certificate {{ $labels.certificate }} (seen from {{ $labels.node }}) expires within "
            f"{ALERT_BEFORE_DAYS} days: its renewal failed.",
        ),
        _alert(
            "KaasCertificateReportStale",
            'time() - node_textfile_mtime_seconds{file=~".*certificates.prom"} > 2 * 86400',
            "The certificate check on {{ $labels.instance }} has not run for two days.",
        ),
        _alert(
            "KaasCertificateReportMissing",
            'absent(node_textfile_mtime_seconds{file=~".*certificates.prom"})',
            "No master reports its certificates (kaas-cert-renew.timer or node-exporter's textfile collector).",
            for_="1d",
        ),
        _alert(
            "KaasClientCertificateExpiresSoon",
            'apiserver_client_certificate_expiration_seconds_count{job="apiserver"} > 0 and on (job) '
            'histogram_quantile(0.01, sum by (job, le) (rate(apiserver_client_certificate_expiration_seconds_bucket{job="apiserver"}[5m]))) '
            f"< {soon}",
            f"A client certificate used against the API server expires within {ALERT_BEFORE_DAYS} days.",
        ),
        _alert(
            "KaasKubeletCertificateExpiresSoon",
            f"kubelet_certificate_manager_client_ttl_seconds < {soon} or kubelet_certificate_manager_server_ttl_seconds < {soon}",
            f"The kubelet on {{{{ $labels.node }}}} holds a certificate that expires within {ALERT_BEFORE_DAYS} days.",
        ),
    ]


def certificate_expiry_rule(spec: ClusterSpec) -> dict[str, Any]:
    """The PrometheusRule; the chart's Prometheus selects rules labelled with its release."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": RULE_NAME,
            "namespace": spec.platform_namespace,
            "labels": {"app.kubernetes.io/managed-by": spec.provider_name, "release": PROMETHEUS_STACK_RELEASE},
        },
        "spec": {"groups": [{"name": "kaas-certificates", "rules": certificate_alerts()}]},
    }


def node_exporter_textfile_values() -> dict[str, Any]:
    """kube-prometheus-stack values: node-exporter reads the masters' certificate report."""
    return {
        "prometheus-node-exporter": {
            "extraArgs": [*_NODE_EXPORTER_DEFAULT_ARGS, f"--collector.textfile.directory={TEXTFILE_DIRECTORY}"]
        }
    }


def with_certificate_report(release_values: dict[str, Any]) -> dict[str, Any]:
    """``release_values`` with node-exporter reading the certificate report; extra arguments are appended."""
    exporter = dict(release_values.get("prometheus-node-exporter", {}))
    args = list(exporter.get("extraArgs", _NODE_EXPORTER_DEFAULT_ARGS))
    wanted = node_exporter_textfile_values()["prometheus-node-exporter"]["extraArgs"]
    exporter["extraArgs"] = args + [a for a in wanted if a not in args]
    return {**release_values, "prometheus-node-exporter": exporter}
