"""cloud-init user data per node tier, rendered by pure functions from typed inputs.

Structured documents (the cloud-config itself, etcd's configuration file, kubeadm's
configuration, kubeconfigs) are built as data and dumped with ``yaml.safe_dump``;
systemd units and the shell steps that run at boot are Jinja2 templates in
``templates/``. Nothing here touches Pulumi: the bootstrap component resolves the
generated certificates and passes plain strings in.

Boot order on each tier: etcd nodes install the pinned etcd release (sha256
verified) and form the cluster from the static address plan; the first master waits
for etcd and runs ``kubeadm init``; the other masters and the workers retry
``kubeadm join`` until the API answers behind the load balancer.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
import yaml

from kaas import platform, versions
from kaas.bootstrap import hardening
from kaas.bootstrap.hardening import EncryptionKey
from kaas.openstack.addressing import node_name

CLOUD_CONFIG_HEADER = "#cloud-config\n"
KUBEADM_API = "kubeadm.k8s.io/v1beta4"
CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"

# Where things live on the nodes.
ETCD_CONFIG_PATH = "/etc/etcd/etcd.conf.yml"
ETCD_HEALTH_SCRIPT = "/usr/local/sbin/kaas-etcd-health"
ETCD_INSTALL_SCRIPT = "/usr/local/sbin/kaas-etcd-install"
BACKUP_SCRIPT_PATH = "/usr/local/sbin/etcd-backup"
BACKUP_ENV_PATH = "/etc/kaas/etcd-backup.env"
BACKUP_WORK_DIR = "/var/lib/etcd-backup"
BACKUP_PREFIX = "etcd-snapshots/"
BACKUP_METRICS_FILE = f"{platform.NODE_EXPORTER_TEXTFILE_DIR}/etcd-backup.prom"
NODE_EXPORTER_DEFAULTS_PATH = "/etc/default/prometheus-node-exporter"
KUBEADM_CONFIG_PATH = "/etc/kaas/kubeadm.yaml"
# kubeadm join's file discovery: the API address, the cluster CA and the bootstrap token.
DISCOVERY_KUBECONFIG_PATH = "/etc/kaas/discovery.kubeconfig"
KUBEADM_BOOTSTRAP_SCRIPT = "/usr/local/sbin/kaas-kubeadm-bootstrap"
SHARED_PKI_DIR = "/etc/kaas/pki"  # survives `kubeadm reset`; copied into /etc/kubernetes/pki
KUBERNETES_PKI_DIR = "/etc/kubernetes/pki"
APISERVER_CONFIG_DIR = "/etc/kaas/apiserver"
AUTHN_WEBHOOK_PATH = f"{APISERVER_CONFIG_DIR}/keystone-authn-webhook.kubeconfig"
AUTHZ_WEBHOOK_PATH = f"{APISERVER_CONFIG_DIR}/keystone-authz-webhook.kubeconfig"
AUTHENTICATION_CONFIG_PATH = f"{APISERVER_CONFIG_DIR}/authentication-config.yaml"
ENCRYPTION_CONFIG_PATH = f"{APISERVER_CONFIG_DIR}/encryption-config.yaml"
AUDIT_POLICY_PATH = f"{APISERVER_CONFIG_DIR}/audit-policy.yaml"
ADMISSION_CONFIG_PATH = f"{APISERVER_CONFIG_DIR}/admission-config.yaml"
ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz")
CERT_RENEW_SCRIPT = "/usr/local/sbin/kaas-cert-renew"
CERT_METRICS_DIR = "/var/lib/kaas/metrics"  # node-exporter's textfile collector reads it
CERT_RENEW_BEFORE_DAYS = 90
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBEADM_KUBECONFIGS = tuple(
    f"/etc/kubernetes/{name}.conf" for name in ("admin", "super-admin", "controller-manager", "scheduler")
)

# Every value a template interpolates is one shell word and one systemd token: letters,
# digits and ``._:/=@+,-``. Templates write shell scripts and systemd units, where a
# quote, '$', '%', ';', a space or a newline would be syntax; such a value is refused
# here instead of being quoted for one of the two languages and wrong for the other.
_TEMPLATE_TOKEN = re.compile(r"[A-Za-z0-9._:/=@+,-]*")


class TemplateValueError(ValueError):
    """A value a template would interpolate that is not a plain token."""


class Verbatim(str):
    """Text kaas composes itself from numbers and constants (a systemd calendar), never from spec strings."""

    __slots__ = ()


def _inert_token(value: Any) -> Any:
    if isinstance(value, Verbatim):
        return value
    text = str(value)
    if not _TEMPLATE_TOKEN.fullmatch(text):
        raise TemplateValueError(
            f"{text!r} cannot be written into a shell script or systemd unit: only letters, digits and '._:/=@+,-'"
        )
    return value


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("kaas.bootstrap", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
    finalize=_inert_token,
)


def render_template(template: str, **values: Any) -> str:
    return _TEMPLATES.get_template(template).render(**values)


def backup_script() -> str:
    """The etcd backup script shipped in ``kaas/bootstrap/scripts/etcd-backup``."""
    return resources.files("kaas.bootstrap").joinpath("scripts/etcd-backup").read_text()


def node_names(cluster: str, tier: str, count: int) -> tuple[str, ...]:
    """Host names of a tier: the Nova instance names (they are also etcd member names)."""
    return tuple(node_name(cluster, tier, i) for i in range(count))


# libyaml's emitter when PyYAML was built with it: the same text as the pure-Python
# emitter (tests/test_perf_graph.py compares both on every stack's user data), ~15x faster,
# which matters with hundreds of workers.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _safe_dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_SafeDumper, sort_keys=False)


class _BlockDumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Safe dumper that writes multi-line strings (files, scripts) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def cloud_config(document: dict[str, Any]) -> str:
    body = yaml.dump(document, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=1000)
    return CLOUD_CONFIG_HEADER + body


def _file(path: str, content: str, permissions: str = "0644") -> dict[str, str]:
    return {"path": path, "content": content, "permissions": permissions, "owner": "root:root"}


def _secret_file(path: str, content: str) -> dict[str, str]:
    return _file(path, content, "0600")


def _yaml_docs(*docs: dict[str, Any]) -> str:
    return yaml.dump_all(docs, Dumper=_SafeDumper, sort_keys=False, default_flow_style=False, width=1000)


# ---------------------------------------------------------------------------------
# etcd


@dataclass(frozen=True)
class EtcdMember:
    """One etcd member: the name and address other members and clients use."""

    name: str
    ip: str
    client_port: int = platform.ETCD_CLIENT_PORT
    peer_port: int = platform.ETCD_PEER_PORT
    metrics_port: int = platform.ETCD_METRICS_PORT

    @property
    def client_url(self) -> str:
        return f"https://{self.ip}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://{self.ip}:{self.peer_port}"


@dataclass(frozen=True)
class EtcdPaths:
    """Where a member keeps its certificates and data (tests point these at a temporary directory)."""

    pki_dir: str = "/etc/etcd/pki"
    data_dir: str = "/var/lib/etcd"

    @property
    def ca_cert(self) -> str:
        return f"{self.pki_dir}/ca.crt"

    @property
    def cert(self) -> str:
        return f"{self.pki_dir}/member.crt"

    @property
    def key(self) -> str:
        return f"{self.pki_dir}/member.key"

    @property
    def peer_ca_cert(self) -> str:
        return f"{self.pki_dir}/peer-ca.crt"

    @property
    def peer_cert(self) -> str:
        return f"{self.pki_dir}/peer.crt"

    @property
    def peer_key(self) -> str:
        return f"{self.pki_dir}/peer.key"


def initial_cluster(members: Sequence[EtcdMember]) -> str:
    return ",".join(f"{m.name}={m.peer_url}" for m in members)


def client_endpoints(members: Sequence[EtcdMember]) -> tuple[str, ...]:
    return tuple(m.client_url for m in members)


def _listen_urls(ip: str, port: int, scheme: str = "https") -> str:
    hosts = [ip] if ipaddress.ip_address(ip).is_loopback else [ip, "127.0.0.1"]
    return ",".join(f"{scheme}://{h}:{port}" for h in hosts)


def etcd_config(
    member: EtcdMember,
    members: Sequence[EtcdMember],
    cluster_token: str,
    paths: EtcdPaths = EtcdPaths(),
    joining: bool = False,
) -> dict[str, Any]:
    """etcd's ``--config-file``: a static bootstrap with mutual TLS for peers and clients, one CA each.

    ``joining``: the member joins a running cluster (``etcdctl member add`` first, then
    ``initial-cluster-state: existing`` with the current members and itself), as a
    rollout adds members; see https://etcd.io/docs/v3.6/op-guide/runtime-configuration/.
    """
    if member not in members:
        raise ValueError(f"{member.name} is not one of the cluster's members")
    tls = {
        "cert-file": paths.cert,
        "key-file": paths.key,
        "trusted-ca-file": paths.ca_cert,
        "client-cert-auth": True,
    }
    return {
        "name": member.name,
        "data-dir": paths.data_dir,
        "listen-peer-urls": member.peer_url,
        "listen-client-urls": _listen_urls(member.ip, member.client_port),
        # Plain HTTP, /metrics and /health only (etcd's --listen-metrics-urls): Prometheus on the
        # workers scrapes it on the node address; security.monitoring_rules opens it to them alone.
        "listen-metrics-urls": _listen_urls(member.ip, member.metrics_port, "http"),
        "initial-advertise-peer-urls": member.peer_url,
        "advertise-client-urls": member.client_url,
        "initial-cluster": initial_cluster(members),
        "initial-cluster-token": cluster_token,
        "initial-cluster-state": "existing" if joining else "new",
        "client-transport-security": dict(tls),
        "peer-transport-security": {
            "cert-file": paths.peer_cert,
            "key-file": paths.peer_key,
            "trusted-ca-file": paths.peer_ca_cert,
            "client-cert-auth": True,
        },
        "snapshot-count": 10000,
        "auto-compaction-mode": "periodic",
        "auto-compaction-retention": "8h",
        "quota-backend-bytes": 8 * 1024**3,
        # Client and peer TLS: 1.2 at least (etcd >= 3.5 reads tls-min-version), ECDHE + AEAD suites only.
        "tls-min-version": "TLS1.2",
        "cipher-suites": list(TLS_CIPHER_SUITES),
    }


def on_calendar(interval_hours: int) -> str:
    """systemd OnCalendar for "every N hours", aligned to midnight UTC (8 -> 00,08,16)."""
    if not 1 <= interval_hours <= 24:
        raise ValueError(f"interval_hours must be 1..24, got {interval_hours}")
    hours = ",".join(f"{h:02d}" for h in range(0, 24, interval_hours))
    return f"*-*-* {hours}:00:00 UTC"


@dataclass(frozen=True)
class BackupTarget:
    """Where snapshots go: the etcd-backup container through Swift's S3 API."""

    endpoint: str
    bucket: str
    region: str
    access_key: str
    secret_key: str
    retention_days: int
    interval_hours: int
    encryption_key: str  # snapshots are encrypted with it before they leave the node
    prefix: str = BACKUP_PREFIX


def backup_environment(member: EtcdMember, paths: EtcdPaths, target: BackupTarget) -> dict[str, str]:
    """The variables the backup script reads (written to an EnvironmentFile by cloud-init)."""
    return {
        "ETCD_ENDPOINT": member.client_url,
        "ETCD_CACERT": paths.ca_cert,
        "ETCD_CERT": paths.cert,
        "ETCD_KEY": paths.key,
        "NODE_NAME": member.name,
        "S3_ENDPOINT": target.endpoint,
        "S3_BUCKET": target.bucket,
        "S3_REGION": target.region,
        "S3_PREFIX": target.prefix,
        "AWS_ACCESS_KEY_ID": target.access_key,
        "AWS_SECRET_ACCESS_KEY": target.secret_key,
        "BACKUP_ENCRYPTION_KEY": target.encryption_key,
        "RETENTION_DAYS": str(target.retention_days),
        "WORK_DIR": BACKUP_WORK_DIR,
        "METRICS_FILE": BACKUP_METRICS_FILE,
    }


def node_exporter_defaults() -> str:
    """``/etc/default/prometheus-node-exporter`` of an etcd VM (the Debian unit's ``$ARGS``).

    Listens on every address at :data:`platform.NODE_EXPORTER_PORT` (the etcd security
    group admits only the workers, where Prometheus runs); the textfile collector reads the
    backup script's metrics. Written before the package is installed; cloud-init installs
    packages with ``--force-confold``, so the package keeps this file.
    """
    args = [
        f"--web.listen-address=:{platform.NODE_EXPORTER_PORT}",
        f"--collector.textfile.directory={platform.NODE_EXPORTER_TEXTFILE_DIR}",
    ]
    return f'ARGS="{" ".join(args)}"\n'


def environment_file(values: dict[str, str]) -> str:
    """systemd EnvironmentFile syntax, every value double-quoted."""

    def quote(value: str) -> str:
        if any(unicodedata.category(c)[0] == "C" or c in "\u2028\u2029" for c in value):
            raise ValueError("environment values must be single-line, without control characters")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f"{key}={quote(value)}\n" for key, value in values.items())


@dataclass(frozen=True)
class EtcdNodeInput:
    """Everything one etcd node's user data is rendered from."""

    member: EtcdMember
    members: tuple[EtcdMember, ...]
    cluster_token: str
    etcd_version: str
    ca_cert_pem: str
    cert_pem: str
    key_pem: str
    backup: BackupTarget
    peer_ca_cert_pem: str
    peer_cert_pem: str
    peer_key_pem: str
    paths: EtcdPaths = field(default_factory=EtcdPaths)
    joining: bool = False  # added to a running cluster by a rollout (see etcd_config)
    # Worker addresses whose Fluent Bit NodePort receives this node's logs (none: logs stay local).
    log_targets: tuple[str, ...] = ()

    @property
    def etcd_sha256(self) -> str:
        version = self.etcd_version.lstrip("v")
        if version not in versions.ETCD_SHA256:
            raise ValueError(f"no verified sha256 for etcd {version}; add it to kaas/versions.py")
        return versions.ETCD_SHA256[version]


RSYSLOG_FORWARD_PATH = "/etc/rsyslog.d/60-kaas-forward.conf"


def rsyslog_forward_config(targets: Sequence[str], port: int = platform.ETCD_LOG_NODE_PORT) -> str:
    """rsyslog: every message of this node to Fluent Bit (first target, the next when it is down).

    The journal reaches rsyslog through journald's syslog socket (Debian/Ubuntu forward to
    it); RFC 5424 (``RSYSLOG_SyslogProtocol23Format``) is what Fluent Bit's
    ``syslog-rfc5424`` parser reads. The primary forwards directly; each fallback runs only
    while the previous is suspended, and the last one queues on disk and retries forever, so
    a worker restart loses nothing.
    """
    if not targets:
        raise ValueError("rsyslog forwarding needs at least one target")
    lines = ["# kaas: this etcd node's logs to the cluster's Fluent Bit (syslog input, NodePort on the workers)."]
    for index, target in enumerate(targets):
        options = [
            'type="omfwd"',
            f'target="{target}"',
            f'port="{port}"',
            'protocol="tcp"',
            'template="RSYSLOG_SyslogProtocol23Format"',
        ]
        if index:
            options.append('action.execOnlyWhenPreviousIsSuspended="on"')
        if index == len(targets) - 1:
            options += [
                'action.resumeRetryCount="-1"',
                'queue.type="LinkedList"',
                'queue.filename="kaas-forward"',
                'queue.maxDiskSpace="512m"',
                'queue.saveOnShutdown="on"',
            ]
        selector = "*.* " if index == 0 else ""
        lines.append(f"{selector}action({' '.join(options)})")
    return "\n".join(lines) + "\n"


def render_etcd_user_data(node: EtcdNodeInput) -> str:
    member, paths = node.member, node.paths
    version = node.etcd_version.lstrip("v")
    health = render_template(
        "etcd-health.sh.j2",
        name=member.name,
        endpoint=member.client_url,
        ca_cert=paths.ca_cert,
        cert=paths.cert,
        key=paths.key,
    )
    config = etcd_config(member, node.members, node.cluster_token, paths, joining=node.joining)
    files = [
        _file(paths.ca_cert, node.ca_cert_pem),
        _file(paths.cert, node.cert_pem),
        _secret_file(paths.key, node.key_pem),
        _file(paths.peer_ca_cert, node.peer_ca_cert_pem),
        _file(paths.peer_cert, node.peer_cert_pem),
        _secret_file(paths.peer_key, node.peer_key_pem),
        _file(ETCD_CONFIG_PATH, _safe_dump(config)),
        _file(
            "/etc/systemd/system/etcd.service",
            render_template("etcd.service.j2", version=version, name=member.name, config_path=ETCD_CONFIG_PATH),
        ),
        _file(ETCD_HEALTH_SCRIPT, health, "0755"),
        _file(NODE_EXPORTER_DEFAULTS_PATH, node_exporter_defaults()),
        _file(BACKUP_SCRIPT_PATH, backup_script(), "0755"),
        _secret_file(BACKUP_ENV_PATH, environment_file(backup_environment(member, paths, node.backup))),
        _file(
            "/etc/systemd/system/etcd-backup.service",
            render_template(
                "etcd-backup.service.j2",
                bucket=node.backup.bucket,
                env_path=BACKUP_ENV_PATH,
                script_path=BACKUP_SCRIPT_PATH,
            ),
        ),
        _file(
            "/etc/systemd/system/etcd-backup.timer",
            render_template(
                "etcd-backup.timer.j2",
                interval_hours=node.backup.interval_hours,
                on_calendar=Verbatim(on_calendar(node.backup.interval_hours)),
            ),
        ),
        _file(
            ETCD_INSTALL_SCRIPT,
            render_template(
                "install-etcd.sh.j2",
                version=version,
                sha256=node.etcd_sha256,
                data_dir=paths.data_dir,
                health_script=ETCD_HEALTH_SCRIPT,
            ),
            "0755",
        ),
    ]
    packages = ["curl", "python3", "prometheus-node-exporter"]
    if node.log_targets:
        files.append(_file(RSYSLOG_FORWARD_PATH, rsyslog_forward_config(node.log_targets)))
        packages.append("rsyslog")
    return cloud_config(
        {
            "hostname": member.name,
            "preserve_hostname": False,
            "package_update": True,
            # prometheus-node-exporter: the etcd VMs' disks, memory and the backup metrics, scraped.
            "packages": packages,
            "write_files": files,
            "runcmd": [[ETCD_INSTALL_SCRIPT]],
        }
    )


# ---------------------------------------------------------------------------------
# Kubernetes nodes


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


# Control-plane TLS: 1.2 at least, and for 1.2 only ECDHE with AEAD ciphers (Go's names; TLS 1.3
# suites are not configurable in Go). Profiling endpoints off on every control-plane component.
TLS_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)
CONTROL_PLANE_HARDENING = {
    "profiling": "false",
    "tls-min-version": "VersionTLS12",
    "tls-cipher-suites": ",".join(TLS_CIPHER_SUITES),
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
        "tlsCipherSuites": list(TLS_CIPHER_SUITES),
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


def discovery_kubeconfig(cluster: KubernetesCluster) -> dict[str, Any]:
    """kubeadm join's discovery file: the VIP, the cluster CA and the bootstrap token as credentials.

    With credentials in the file, kubeadm's file discovery (cmd/kubeadm/app/discovery/file)
    reads ``cluster-info`` as the bootstrap token's user; RBAC grants that ConfigMap to
    anonymous only, so the answer is 403, which kubeadm accepts ("the TLS cert is valid so
    proceeding"). The join then TLS-bootstraps with the same token. Token discovery would
    instead read ``cluster-info`` anonymously, which the API server refuses (401).
    """
    import base64

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


def authentication_configuration() -> dict[str, Any]:
    """Structured authentication: anonymous requests only for the health endpoints."""
    return {
        "apiVersion": "apiserver.config.k8s.io/v1beta1",
        "kind": "AuthenticationConfiguration",
        "anonymous": {"enabled": True, "conditions": [{"path": p} for p in ANONYMOUS_PATHS]},
    }


def webhook_kubeconfig(name: str, url: str, ca_cert_pem: str) -> dict[str, Any]:
    """The kubeconfig-format file the API server uses to reach a webhook (here k8s-keystone-auth)."""
    import base64

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
    import base64

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
    return _safe_dump(document)


def _node_base_files(cluster: KubernetesCluster) -> list[dict[str, str]]:
    return [
        _file(hardening.METADATA_GUARD_PATH, hardening.metadata_guard_ruleset(cluster.metadata_allowed_pod_cidrs)),
        _file(f"/etc/systemd/system/{hardening.METADATA_GUARD_UNIT}", hardening.metadata_guard_unit()),
        # node-exporter's textfile collector reads this directory on every node; a missing
        # directory would be a scrape error (and the chart's NodeTextFileCollectorScrapeError).
        _file(f"{CERT_METRICS_DIR}/README", "Prometheus textfile metrics (*.prom) written by kaas timers.\n"),
        _file("/etc/modules-load.d/kubernetes.conf", "overlay\nbr_netfilter\n"),
        _file(
            "/etc/sysctl.d/90-kubernetes.conf",
            "net.bridge.bridge-nf-call-iptables = 1\n"
            "net.bridge.bridge-nf-call-ip6tables = 1\n"
            "net.ipv4.ip_forward = 1\n",
        ),
        _file(
            "/etc/containerd/config.toml",
            "version = 3\n\n"
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n"
            "  SystemdCgroup = true\n",
        ),
        _file(
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
        _file(
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
        _file(
            "/etc/systemd/system/kaas-cert-renew.service",
            render_template("kaas-cert-renew.service.j2", metrics_dir=CERT_METRICS_DIR, script_path=CERT_RENEW_SCRIPT),
        ),
        _file(
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
        kubeadm_docs = _yaml_docs(
            cluster_configuration(cluster),
            init_configuration(cluster, node, certificate_key),
            kubelet_configuration(),
            kube_proxy_configuration(),
        )
        action, flags = "init", ["--skip-token-print", "--upload-certs"]
        discovery: list[dict[str, str]] = []
        shared = certificates.files()
    else:
        kubeadm_docs = _yaml_docs(
            join_configuration(cluster, node, control_plane=True, certificate_key=certificate_key)
        )
        action, flags = "join", []
        discovery = [_discovery_file(cluster)]
        shared = {}
    files = [
        *_node_base_files(cluster),
        *discovery,
        *(_secret_file(f"{SHARED_PKI_DIR}/{rel}", content) for rel, content in shared.items()),
        _secret_file(KUBEADM_CONFIG_PATH, kubeadm_docs),
        _secret_file(ENCRYPTION_CONFIG_PATH, _safe_dump(hardening.encryption_configuration(encryption_keys))),
        _file(AUDIT_POLICY_PATH, _safe_dump(hardening.audit_policy())),
        _file(ADMISSION_CONFIG_PATH, _safe_dump(hardening.admission_configuration(cluster.pod_security_default))),
        _file(AUTHENTICATION_CONFIG_PATH, _safe_dump(authentication_configuration())),
        _file(
            AUTHN_WEBHOOK_PATH,
            yaml.safe_dump(
                webhook_kubeconfig(
                    "keystone-authn", platform.KEYSTONE_AUTH_WEBHOOK_URL, cluster.kubernetes_ca_cert_pem
                ),
                sort_keys=False,
            ),
        ),
        _file(
            AUTHZ_WEBHOOK_PATH,
            yaml.safe_dump(
                webhook_kubeconfig(
                    "keystone-authz", platform.KEYSTONE_AUTH_WEBHOOK_URL, cluster.kubernetes_ca_cert_pem
                ),
                sort_keys=False,
            ),
        ),
        _file(
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
    return _secret_file(DISCOVERY_KUBECONFIG_PATH, _safe_dump(discovery_kubeconfig(cluster)))


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
        _secret_file(KUBEADM_CONFIG_PATH, _yaml_docs(join_configuration(cluster, node, control_plane=False))),
        _file(
            KUBEADM_BOOTSTRAP_SCRIPT,
            _bootstrap_script(cluster, "join", [], [], wait_for_etcd=False),
            "0755",
        ),
    ]
    return _kubernetes_node_config(cluster, node, files)
