"""Masters' and workers' user data: what every Kubernetes node shares, then each tier's steps.

Every node gets the metadata guard, kernel settings, containerd (tarball, sha256 pinned)
and kubelet/kubeadm/kubectl from the pkgs.k8s.io apt repository of the minor version, then
runs the kubeadm bootstrap script: the first master ``kubeadm init --upload-certs``, the
other masters ``kubeadm join --control-plane``, workers ``kubeadm join``. Masters also
carry the API server's configuration files and the daily certificate renewal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kaas import platform, versions
from kaas.bootstrap import hardening
from kaas.bootstrap.hardening import EncryptionKey
from kaas.bootstrap.userdata.kubeadm import (
    ADMISSION_CONFIG_PATH,
    AUDIT_POLICY_PATH,
    AUTHENTICATION_CONFIG_PATH,
    AUTHN_WEBHOOK_PATH,
    AUTHZ_WEBHOOK_PATH,
    DISCOVERY_KUBECONFIG_PATH,
    ENCRYPTION_CONFIG_PATH,
    KUBEADM_CONFIG_PATH,
    KUBERNETES_PKI_DIR,
    ControlPlaneCertificates,
    KubernetesCluster,
    KubernetesNode,
    cluster_configuration,
    init_configuration,
    join_configuration,
    kube_proxy_configuration,
    kubelet_configuration,
)
from kaas.bootstrap.userdata.kubeconfig import authentication_configuration, discovery_kubeconfig, webhook_kubeconfig
from kaas.bootstrap.userdata.yamltext import (
    cloud_config,
    render_template,
    safe_dump,
    secret_file,
    write_file,
    yaml_docs,
)
from kaas.openstack.addressing import node_name

KUBEADM_BOOTSTRAP_SCRIPT = "/usr/local/sbin/kaas-kubeadm-bootstrap"
SHARED_PKI_DIR = "/etc/kaas/pki"  # survives `kubeadm reset`; copied into /etc/kubernetes/pki
CERT_RENEW_SCRIPT = "/usr/local/sbin/kaas-cert-renew"
CERT_METRICS_DIR = "/var/lib/kaas/metrics"  # node-exporter's textfile collector reads it
CERT_RENEW_BEFORE_DAYS = 90
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBEADM_KUBECONFIGS = tuple(
    f"/etc/kubernetes/{name}.conf" for name in ("admin", "super-admin", "controller-manager", "scheduler")
)


def node_names(cluster: str, tier: str, count: int) -> tuple[str, ...]:
    """Host names of a tier: the Nova instance names (they are also etcd member names)."""
    return tuple(node_name(cluster, tier, i) for i in range(count))


def _node_base_files(cluster: KubernetesCluster) -> list[dict[str, str]]:
    return [
        write_file(hardening.METADATA_GUARD_PATH, hardening.metadata_guard_ruleset(cluster.metadata_allowed_pod_cidrs)),
        write_file(f"/etc/systemd/system/{hardening.METADATA_GUARD_UNIT}", hardening.metadata_guard_unit()),
        # node-exporter's textfile collector reads this directory on every node; a missing
        # directory would be a scrape error (and the chart's NodeTextFileCollectorScrapeError).
        write_file(f"{CERT_METRICS_DIR}/README", "Prometheus textfile metrics (*.prom) written by kaas timers.\n"),
        write_file("/etc/modules-load.d/kubernetes.conf", "overlay\nbr_netfilter\n"),
        write_file(
            "/etc/sysctl.d/90-kubernetes.conf",
            "net.bridge.bridge-nf-call-iptables = 1\n"
            "net.bridge.bridge-nf-call-ip6tables = 1\n"
            "net.ipv4.ip_forward = 1\n",
        ),
        write_file(
            "/etc/containerd/config.toml",
            "version = 3\n\n"
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n"
            "  SystemdCgroup = true\n",
        ),
        write_file(
            "/etc/systemd/system/containerd.service",
            render_template("containerd.service.j2", version=cluster.containerd_version.lstrip("v")),
        ),
    ]


def _apt_and_packages(cluster: KubernetesCluster) -> dict[str, Any]:
    return {
        "apt": {
            "sources": {
                "kubernetes.list": {
                    "source": f"deb [signed-by=$KEY_FILE] https://pkgs.k8s.io/core:/stable:/v{cluster.minor}/deb/ /",
                    "keyid": versions.KUBERNETES_APT_KEY_FINGERPRINT,
                    "keyserver": "keyserver.ubuntu.com",
                }
            }
        },
        "package_update": True,
        "packages": [
            "curl",
            "nftables",
            "runc",
            "conntrack",
            "socat",
            ["kubelet", cluster.deb_version],
            ["kubeadm", cluster.deb_version],
            ["kubectl", cluster.deb_version],
        ],
    }


def _bootstrap_script(
    cluster: KubernetesCluster,
    action: str,
    extra_flags: Sequence[str],
    certificates: Sequence[tuple[str, str]],
    wait_for_etcd: bool,
) -> str:
    # After a successful init/join, the node deletes what only bootstrapping needed: the
    # token (discovery file, kubeadm config with the certificate key) and the shared copy
    # of the CA keys (kubeadm keeps its own under /etc/kubernetes/pki).
    wipe = [KUBEADM_CONFIG_PATH, DISCOVERY_KUBECONFIG_PATH, *(source for source, _ in certificates)]
    return render_template(
        "kubeadm-bootstrap.sh.j2",
        containerd_version=cluster.containerd_version.lstrip("v"),
        containerd_sha256=cluster.containerd_sha256,
        action=action,
        extra_flags=list(extra_flags),
        config_path=KUBEADM_CONFIG_PATH,
        certificates=list(certificates),
        wait_for_etcd=wait_for_etcd,
        etcd_ca=f"{KUBERNETES_PKI_DIR}/etcd/ca.crt",
        etcd_cert=f"{KUBERNETES_PKI_DIR}/apiserver-etcd-client.crt",
        etcd_key=f"{KUBERNETES_PKI_DIR}/apiserver-etcd-client.key",
        etcd_health_url=(cluster.etcd_endpoints[0] + "/health") if cluster.etcd_endpoints else "",
        wipe_after=wipe,
    )


def certificate_renewal_files(cluster: KubernetesCluster) -> list[dict[str, str]]:
    """The daily certificate check on a master: renew kubeadm's certificates 90 days before
    expiry (kubeadm issues them for a year), restart the static pods, export every expiry."""
    members = [url.removeprefix("https://") for url in cluster.etcd_endpoints]
    return [
        write_file(
            CERT_RENEW_SCRIPT,
            render_template(
                "kaas-cert-renew.sh.j2",
                pki_dir=KUBERNETES_PKI_DIR,
                renew_before_seconds=CERT_RENEW_BEFORE_DAYS * 86400,
                metrics_file=f"{CERT_METRICS_DIR}/certificates.prom",
                manifests_dir="/etc/kubernetes/manifests",
                restart_pause_seconds=30,
                kubeconfigs=list(KUBEADM_KUBECONFIGS),
                static_pods=list(STATIC_PODS),
                etcd_members=members,
            ),
            "0755",
        ),
        write_file(
            "/etc/systemd/system/kaas-cert-renew.service",
            render_template("kaas-cert-renew.service.j2", metrics_dir=CERT_METRICS_DIR, script_path=CERT_RENEW_SCRIPT),
        ),
        write_file(
            "/etc/systemd/system/kaas-cert-renew.timer",
            render_template("kaas-cert-renew.timer.j2", renew_before_days=CERT_RENEW_BEFORE_DAYS),
        ),
    ]


def render_master_user_data(
    cluster: KubernetesCluster,
    node: KubernetesNode,
    certificates: ControlPlaneCertificates,
    first: bool,
    *,
    certificate_key: str,
    encryption_keys: Sequence[EncryptionKey],
) -> str:
    """A master: the first runs ``kubeadm init --upload-certs``, the others ``kubeadm join --control-plane``.

    Only the first master's user data holds the CA keys (kubeadm init needs them on disk to
    sign the cluster's certificates); the others download them once, encrypted with
    ``certificate_key``, from the ``kubeadm-certs`` Secret. Every master needs the
    Secrets' encryption keys: each API server encrypts and decrypts on its own.
    """
    if first:
        kubeadm_docs = yaml_docs(
            cluster_configuration(cluster),
            init_configuration(cluster, node, certificate_key),
            kubelet_configuration(),
            kube_proxy_configuration(),
        )
        action, flags = "init", ["--skip-token-print", "--upload-certs"]
        discovery: list[dict[str, str]] = []
        shared = certificates.files()
    else:
        kubeadm_docs = yaml_docs(join_configuration(cluster, node, control_plane=True, certificate_key=certificate_key))
        action, flags = "join", []
        discovery = [_discovery_file(cluster)]
        shared = {}
    files = [
        *_node_base_files(cluster),
        *discovery,
        *(secret_file(f"{SHARED_PKI_DIR}/{rel}", content) for rel, content in shared.items()),
        secret_file(KUBEADM_CONFIG_PATH, kubeadm_docs),
        secret_file(ENCRYPTION_CONFIG_PATH, safe_dump(hardening.encryption_configuration(encryption_keys))),
        write_file(AUDIT_POLICY_PATH, safe_dump(hardening.audit_policy())),
        write_file(ADMISSION_CONFIG_PATH, safe_dump(hardening.admission_configuration(cluster.pod_security_default))),
        write_file(AUTHENTICATION_CONFIG_PATH, safe_dump(authentication_configuration())),
        write_file(
            AUTHN_WEBHOOK_PATH,
            safe_dump(
                webhook_kubeconfig("keystone-authn", platform.KEYSTONE_AUTH_WEBHOOK_URL, cluster.kubernetes_ca_cert_pem)
            ),
        ),
        write_file(
            AUTHZ_WEBHOOK_PATH,
            safe_dump(
                webhook_kubeconfig("keystone-authz", platform.KEYSTONE_AUTH_WEBHOOK_URL, cluster.kubernetes_ca_cert_pem)
            ),
        ),
        write_file(
            KUBEADM_BOOTSTRAP_SCRIPT,
            _bootstrap_script(
                cluster,
                action,
                flags,
                [(f"{SHARED_PKI_DIR}/{rel}", f"{KUBERNETES_PKI_DIR}/{rel}") for rel in shared],
                # Joining masters have no etcd client certificate before the join; kubeadm's
                # own retries wait for the API (and so for etcd) instead.
                wait_for_etcd=first,
            ),
            "0755",
        ),
        *certificate_renewal_files(cluster),
    ]
    enable_renewal = ["systemctl", "enable", "--now", "kaas-cert-renew.timer"]
    return _kubernetes_node_config(cluster, node, files, after_join=[enable_renewal])


def _discovery_file(cluster: KubernetesCluster) -> dict[str, str]:
    return secret_file(DISCOVERY_KUBECONFIG_PATH, safe_dump(discovery_kubeconfig(cluster)))


def _kubernetes_node_config(
    cluster: KubernetesCluster,
    node: KubernetesNode,
    files: list[dict[str, str]],
    after_join: Sequence[list[str]] = (),
) -> str:
    """The cloud-config of a master or worker: host name, pinned packages, files, then the kubeadm script."""
    return cloud_config(
        {
            "hostname": node.name,
            "preserve_hostname": False,
            **_apt_and_packages(cluster),
            "write_files": files,
            "runcmd": [
                ["systemctl", "daemon-reload"],
                ["systemctl", "enable", "--now", hardening.METADATA_GUARD_UNIT],
                [KUBEADM_BOOTSTRAP_SCRIPT],
                *after_join,
            ],
        }
    )


def render_worker_user_data(cluster: KubernetesCluster, node: KubernetesNode) -> str:
    """A worker: ``kubeadm join`` with file discovery (VIP, cluster CA, bootstrap token)."""
    files = [
        *_node_base_files(cluster),
        _discovery_file(cluster),
        secret_file(KUBEADM_CONFIG_PATH, yaml_docs(join_configuration(cluster, node, control_plane=False))),
        write_file(
            KUBEADM_BOOTSTRAP_SCRIPT,
            _bootstrap_script(cluster, "join", [], [], wait_for_etcd=False),
            "0755",
        ),
    ]
    return _kubernetes_node_config(cluster, node, files)
