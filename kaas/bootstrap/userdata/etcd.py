"""An etcd node's user data: etcd's configuration, the backup timer and its target.

etcd runs from the upstream tarball (sha256 from ``kaas/versions.py``) with a
``--config-file``: mutual TLS for peers (etcd peer CA only) and clients (etcd CA), the
static initial cluster from the address plan. The backup script
(``kaas/bootstrap/scripts/etcd-backup``) runs from a systemd timer and reads its target
from an EnvironmentFile.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from kaas import platform, versions
from kaas.bootstrap import hardening
from kaas.bootstrap.userdata.yamltext import Verbatim, cloud_config, render_template, safe_dump, secret_file, write_file

# Where things live on an etcd node.
ETCD_CONFIG_PATH = "/etc/etcd/etcd.conf.yml"
ETCD_HEALTH_SCRIPT = "/usr/local/sbin/kaas-etcd-health"
ETCD_INSTALL_SCRIPT = "/usr/local/sbin/kaas-etcd-install"
BACKUP_SCRIPT_PATH = "/usr/local/sbin/etcd-backup"
BACKUP_ENV_PATH = "/etc/kaas/etcd-backup.env"
BACKUP_WORK_DIR = "/var/lib/etcd-backup"
BACKUP_PREFIX = "etcd-snapshots/"
BACKUP_METRICS_FILE = f"{platform.NODE_EXPORTER_TEXTFILE_DIR}/etcd-backup.prom"
NODE_EXPORTER_DEFAULTS_PATH = "/etc/default/prometheus-node-exporter"
RSYSLOG_FORWARD_PATH = "/etc/rsyslog.d/60-kaas-forward.conf"


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
        "cipher-suites": list(hardening.TLS_CIPHER_SUITES),
    }


def _backup_hours(interval_hours: int) -> range:
    """The hours (UTC) a backup runs: every N hours from midnight."""
    if not 1 <= interval_hours <= 24:
        raise ValueError(f"interval_hours must be 1..24, got {interval_hours}")
    return range(0, 24, interval_hours)


def on_calendar(interval_hours: int) -> str:
    """systemd OnCalendar for "every N hours", aligned to midnight UTC (8 -> 00,08,16)."""
    hours = ",".join(f"{h:02d}" for h in _backup_hours(interval_hours))
    return f"*-*-* {hours}:00:00 UTC"


def backup_cron(interval_hours: int) -> str:
    """The timer's schedule in cron notation, for people (the stack outputs): the same hours as :func:`on_calendar`."""
    _backup_hours(interval_hours)
    return f"0 */{interval_hours} * * *" if interval_hours < 24 else "0 0 * * *"


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


def backup_script() -> str:
    """The etcd backup script shipped in ``kaas/bootstrap/scripts/etcd-backup``."""
    return resources.files("kaas.bootstrap").joinpath("scripts/etcd-backup").read_text()


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
        write_file(paths.ca_cert, node.ca_cert_pem),
        write_file(paths.cert, node.cert_pem),
        secret_file(paths.key, node.key_pem),
        write_file(paths.peer_ca_cert, node.peer_ca_cert_pem),
        write_file(paths.peer_cert, node.peer_cert_pem),
        secret_file(paths.peer_key, node.peer_key_pem),
        write_file(ETCD_CONFIG_PATH, safe_dump(config)),
        write_file(
            "/etc/systemd/system/etcd.service",
            render_template("etcd.service.j2", version=version, name=member.name, config_path=ETCD_CONFIG_PATH),
        ),
        write_file(ETCD_HEALTH_SCRIPT, health, "0755"),
        write_file(NODE_EXPORTER_DEFAULTS_PATH, node_exporter_defaults()),
        write_file(BACKUP_SCRIPT_PATH, backup_script(), "0755"),
        secret_file(BACKUP_ENV_PATH, environment_file(backup_environment(member, paths, node.backup))),
        write_file(
            "/etc/systemd/system/etcd-backup.service",
            render_template(
                "etcd-backup.service.j2",
                bucket=node.backup.bucket,
                env_path=BACKUP_ENV_PATH,
                script_path=BACKUP_SCRIPT_PATH,
            ),
        ),
        write_file(
            "/etc/systemd/system/etcd-backup.timer",
            render_template(
                "etcd-backup.timer.j2",
                interval_hours=node.backup.interval_hours,
                on_calendar=Verbatim(on_calendar(node.backup.interval_hours)),
            ),
        ),
        write_file(
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
        files.append(write_file(RSYSLOG_FORWARD_PATH, rsyslog_forward_config(node.log_targets)))
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
