"""The customer spec: one typed, immutable document per stack.

Every default here is a platform promise (see docs/architecture.md): 5 etcd nodes,
3 masters, 3 workers of 4 vCPU / 8 GB / 40 GB, etcd backups every 8 hours,
Prometheus retention 3 days, log retention 7 days, 2 ingress replicas, a 10 GB
registry database. Field-level checks live here; rules that relate several fields
(CIDR overlap, production readiness) live in :mod:`kaas.spec.rules`.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import unicodedata
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from kaas import versions

# Namespaces Kubernetes itself owns, and those the CNI charts install into.
KUBERNETES_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
CNI_NAMESPACES = ("tigera-operator", "calico-system", "calico-apiserver", "kube-flannel")

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


_LABEL_RULE = "1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"

# Unicode categories no spec value may contain: control (Cc: NUL, newline, tab, ESC,
# NEL), format (Cf: zero-width and bidi overrides), surrogates and private use, and
# the line/paragraph separators (Zl, Zp) that YAML and some parsers treat as newlines.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def control_character(value: str) -> str | None:
    """The first character of ``value`` that no spec string may contain, or None."""
    for char in value:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES or (char.isspace() and char != " "):
            return char
    return None


def _printable(value: object) -> object:
    """Every spec string, at any depth: no control characters, which would end a line in some artifact."""
    items = value if isinstance(value, (list, tuple)) else (value,)
    for item in items:
        if isinstance(item, str):
            char = control_character(item)
            if char is not None:
                raise ValueError(f"contains the control character {char!r} (U+{ord(char):04X}); values are one line")
    return value


def _grammar(pattern: str, rule: str, max_length: int) -> AfterValidator:
    """A validator for a name that lands in an API, a file or a command: the destination's grammar."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if len(value) > max_length or not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not valid here: use {rule} (at most {max_length} characters)")
        return value

    return AfterValidator(check)


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS label: use {_LABEL_RULE}")
    return value


def reserved_label_problem(label: str) -> str | None:
    """Why a DNS label cannot name a public host, or None.

    '--' as the third and fourth characters is reserved for IDNA (R-LDH, RFC 5891
    section 4.2.3.1): only a well-formed ``xn--`` punycode label may have it. Let's
    Encrypt refuses any other such label (letsencrypt/boulder ``policy/pa.go``,
    ``errInvalidRLDH``; its tests refuse ``h---test.hk2yz.org``), so a cluster named
    ``h---x1`` would never get an ingress certificate.
    """
    if label[2:4] != "--":
        return None
    if not label.startswith("xn--"):
        return f"label {label!r} has '--' as its 3rd and 4th characters, which DNS reserves for IDNA (xn--)"
    try:
        label.encode("ascii").decode("idna")  # punycode that round-trips (Python's IDNA 2003 codec)
    except UnicodeError:
        return f"label {label!r} is not a valid IDNA (punycode) label"
    return None


def _host_label(value: str) -> str:
    problem = reserved_label_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} cannot name a host: {problem}")
    return value


# A node is <cluster>-<tier>-<index> (kaas.rollout.model.node_name): its Nova name, the host
# name cloud-init sets and kubeadm's node name. A host name is one DNS label (63 at most;
# Nova truncates longer ones, and two truncated names collide), so the cluster name leaves
# room for "-worker-" and a 7-digit index.
CLUSTER_NAME_MAX = 63 - len("-worker-") - 7


def _cluster_name(value: str) -> str:
    if len(value) > CLUSTER_NAME_MAX:
        raise ValueError(
            f"{value!r} is {len(value)} characters; at most {CLUSTER_NAME_MAX}, so that "
            f"{value}-worker-<index> stays a 63-character host name"
        )
    return value


def _dns_domain(value: str) -> str:
    name = value.rstrip(".")
    if len(name) > 253 or not name:
        raise ValueError(f"{value!r} is not a DNS domain: 1-253 characters")
    for label in name.split("."):
        if not _DNS_LABEL.match(label):
            raise ValueError(f"{value!r} is not a DNS domain: label {label!r} must be {_LABEL_RULE}")
        problem = reserved_label_problem(label)
        if problem is not None:
            raise ValueError(f"{value!r} is not a DNS domain: {problem}")
    return name


def _ipv4_network(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not an IPv4 CIDR with its host bits zero ({err})") from None
    return str(network)


def _ipv4_address(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


# Host: DNS name or IPv4 address; port; a path of RFC 3986 unreserved characters, '%'
# escapes and '/', ':', '@' only: no quote, '$', '(', ';' or '\\' can reach an INI value,
# a shell word or a YAML scalar through a URL. No query, no fragment, no user info.
_URL = re.compile(r"^(https?)://([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(:\d{1,5})?(/[A-Za-z0-9._~%/:@-]*)?$")


def _http_url(value: str) -> str:
    match = _URL.fullmatch(value)
    if not match or (match.group(4) and not 0 < int(match.group(4)[1:]) < 65536):
        raise ValueError(
            f"{value!r} is not an http(s) URL: scheme, host, optional port and a path of letters, digits "
            "and ._~%/:@- (no query, quotes or spaces)"
        )
    return value.rstrip("/")


def _release_version(value: str) -> str:
    """The rollout model's own parser (kaas.versions.parse_version): what the spec accepts, the rollout orders."""
    versions.parse_version(value)
    return value


# SemVer 2.0.0 (semver.org's grammar, build metadata included): what Helm reads as a chart version.
_SEMVER = re.compile(
    r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
)


def _chart_version(value: str) -> str:
    if not _SEMVER.fullmatch(value):
        raise ValueError(f"{value!r} is not a chart version: use SemVer like 1.2.3 or 1.2.3-rc.1")
    return value


def _email(value: str) -> str:
    local, at, domain = value.partition("@")
    if not at:
        raise ValueError(f"{value!r} is not an e-mail address: no '@'")
    if not re.fullmatch(r"[A-Za-z0-9._%+-]{1,64}", local):
        raise ValueError(f"{value!r} is not an e-mail address (local part: letters, digits and ._%+-)")
    try:
        _dns_domain(domain.lower())
    except ValueError:
        raise ValueError(f"{value!r} is not an e-mail address: {domain!r} is not a DNS domain") from None
    return value


def _cron(value: str) -> str:
    from kaas.spec.cron import cron_problem

    problem = cron_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} is not a cron schedule: {problem}")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsDomain = Annotated[str, AfterValidator(_dns_domain)]
# A label of a public host name (on ingress certificates): a DNS label that is not R-LDH.
HostLabel = Annotated[str, AfterValidator(_dns_label), AfterValidator(_host_label)]
ClusterName = Annotated[str, AfterValidator(_dns_label), AfterValidator(_host_label), AfterValidator(_cluster_name)]
Cidr = Annotated[str, AfterValidator(_ipv4_network)]
IPv4 = Annotated[str, AfterValidator(_ipv4_address)]
# Kubernetes, etcd and containerd: exactly what the rollout model parses.
ReleaseVersion = Annotated[str, AfterValidator(_release_version)]
ChartVersion = Annotated[str, AfterValidator(_chart_version)]
HttpUrlText = Annotated[str, AfterValidator(_http_url)]
NonEmpty = Annotated[str, Field(min_length=1)]
Email = Annotated[str, AfterValidator(_email)]
CronSchedule = Annotated[str, AfterValidator(_cron)]
# OpenStack resource names, per destination. Nova, Neutron, Glance and Keystone accept
# almost any text; these grammars keep what real clouds use and nothing a file or a
# command line would read as syntax.
# clouds.yaml cloud names, Keystone region IDs, availability zones (Nova forbids ':').
OpenStackName = Annotated[
    str, _grammar(r"[A-Za-z0-9][A-Za-z0-9._-]*", "letters, digits and '._-', starting with a letter or digit", 64)
]
# Display names that may hold single spaces: images ("Ubuntu 24.04 (Noble)"), flavors,
# networks, projects.
DisplayName = Annotated[
    str,
    _grammar(
        r"[A-Za-z0-9]([A-Za-z0-9._:+()@-]| (?! ))*[A-Za-z0-9.)]|[A-Za-z0-9]",
        "letters, digits, single spaces and '._:+()@-', starting with a letter or digit",
        255,
    ),
]
# Nova key pairs: letters, digits, spaces, '_', '-', '.', '@' (compute API 2.92 keypair name).
KeyPairName = Annotated[
    str,
    _grammar(
        r"[A-Za-z0-9@._-]([A-Za-z0-9@._ -]*[A-Za-z0-9@._-])?",
        "letters, digits, inner spaces and '@._-'",
        255,
    ),
]
# Keystone user and role names as the customer's directory spells them (e-mail-like
# user names included).
KeystoneName = Annotated[
    str,
    _grammar(r"[A-Za-z0-9][A-Za-z0-9@._:+-]*", "letters, digits and '@._:+-', starting with a letter or digit", 255),
]
# Container image references (registry/path:tag@sha256:digest).
ImageReference = Annotated[
    str,
    _grammar(r"[a-z0-9][A-Za-z0-9._/:@-]*", "an image reference: letters, digits and '._/:@-'", 255),
]
# IDs of existing OpenStack objects: UUIDs, with or without dashes (or a test's token).
OpenStackId = Annotated[str, _grammar(r"[A-Za-z0-9][A-Za-z0-9-]*", "letters, digits and '-' (an ID)", 64)]


class SpecModel(BaseModel):
    """Base of every spec section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        return _printable(value)


class Environment(StrEnum):
    PRODUCTION = "production"
    DEMO = "demo"


class ServerGroupPolicy(StrEnum):
    ANTI_AFFINITY = "anti-affinity"
    SOFT_ANTI_AFFINITY = "soft-anti-affinity"


class Cni(StrEnum):
    CALICO = "calico"
    FLANNEL = "flannel"
    CANAL = "canal"


class CalicoEncapsulation(StrEnum):
    VXLAN = "vxlan"
    IPIP = "ipip"
    NONE = "none"  # BGP only: pod IPs routed unencapsulated over Neutron


class OctaviaProvider(StrEnum):
    AMPHORA = "amphora"
    OVN = "ovn"


class Flavor(SpecModel):
    """A Nova flavor and the size it promises (used for checks and the handover)."""

    name: DisplayName
    vcpus: int = Field(ge=1)
    ram_gb: int = Field(ge=1)
    disk_gb: int = Field(ge=1)


class NodeTierSpec(SpecModel):
    count: int = Field(ge=1)
    flavor: Flavor
    boot_volume_gb: int | None = Field(
        default=None, ge=10, description="Boot from a Cinder volume of this size; None boots from the flavor's disk."
    )
    server_group_policy: ServerGroupPolicy = ServerGroupPolicy.ANTI_AFFINITY


class EtcdTierSpec(NodeTierSpec):
    count: int = Field(default=5, ge=1, le=9)
    flavor: Flavor = Flavor(name="kaas.etcd", vcpus=2, ram_gb=4, disk_gb=40)


class MasterTierSpec(NodeTierSpec):
    count: int = Field(default=3, ge=1, le=32)
    flavor: Flavor = Flavor(name="kaas.master", vcpus=4, ram_gb=8, disk_gb=40)


class WorkerTierSpec(NodeTierSpec):
    count: int = Field(default=3, ge=1)
    flavor: Flavor = Flavor(name="kaas.worker", vcpus=4, ram_gb=8, disk_gb=40)
    max_unavailable: int = Field(
        default=1, ge=0, description="Workers a rollout may take out of service at once (cordoned and drained)."
    )
    max_surge: int = Field(
        default=1,
        ge=0,
        description="New workers a rollout builds before old ones go; 0 rebuilds workers in place (delete first).",
    )


class OpenStackSpec(SpecModel):
    cloud: OpenStackName = Field(description="Cloud name in clouds.yaml.")
    auth_url: HttpUrlText = Field(description="Keystone v3 URL; the cluster's cloud-config uses it.")
    s3_endpoint: HttpUrlText = Field(description="Swift's S3-compatible endpoint (s3api) for backups.")
    region: OpenStackName = "RegionOne"
    external_network: DisplayName = Field(description="Name of the external (floating IP) network.")
    image: DisplayName = "ubuntu-24.04"
    key_pair: KeyPairName | None = None
    availability_zones: tuple[OpenStackName, ...] = Field(default=("nova",), min_length=1)
    octavia_provider: OctaviaProvider = OctaviaProvider.AMPHORA


class NetworkingSpec(SpecModel):
    node_cidr: Cidr = "10.0.0.0/22"
    pod_cidr: Cidr = "10.244.0.0/16"
    service_cidr: Cidr = "10.96.0.0/12"
    dns_servers: tuple[IPv4, ...] = ("9.9.9.9", "1.1.1.1")
    cni: Cni = Cni.CALICO
    calico_encapsulation: CalicoEncapsulation = CalicoEncapsulation.VXLAN
    mtu: int = Field(default=1450, ge=1280, le=9000, description="MTU of the Neutron network.")
    allowed_api_cidrs: tuple[Cidr, ...] = Field(default=("0.0.0.0/0",), min_length=1)
    admin_ssh_cidrs: tuple[Cidr, ...] = ()
    existing_network_id: OpenStackId | None = None
    existing_subnet_id: OpenStackId | None = None

    @model_validator(mode="after")
    def _existing_network_pair(self) -> NetworkingSpec:
        if (self.existing_network_id is None) != (self.existing_subnet_id is None):
            raise ValueError("existing_network_id and existing_subnet_id must be given together")
        return self


class LoadBalancerSpec(SpecModel):
    monitor_delay_s: int = Field(default=5, ge=1)
    monitor_timeout_s: int = Field(default=3, ge=1)
    monitor_max_retries: int = Field(default=3, ge=1, le=10)
    stream_timeout_ms: int = Field(
        default=3_600_000,
        ge=50_000,
        description=(
            "Octavia listener timeout_client_data/timeout_member_data: idle time before the LB cuts a "
            "connection. Octavia's 50 s default cuts kubectl exec/logs -f/port-forward and watches."
        ),
    )


class DnsSpec(SpecModel):
    """Designate: by default the stack owns the zone ``<cluster>.<domain>.`` and its two records.

    With ``existing_zone_id`` the records go into a zone the stack does not own (named
    ``existing_zone_name``, default ``domain``), and destroying the stack removes only them.
    """

    enabled: bool = True
    existing_zone_id: OpenStackId | None = None
    existing_zone_name: DnsDomain | None = Field(
        default=None, description="Name of the existing zone; defaults to the spec's domain."
    )
    email: Email = "hostmaster@example.com"
    ttl: int = Field(default=300, ge=30)


class ObjectStorageSpec(SpecModel):
    """Swift containers; names default to ``<cluster>-<purpose>``."""

    etcd_backups: DnsLabel | None = None
    registry: DnsLabel | None = None
    cluster_backups: DnsLabel | None = None
    versioning: bool = Field(
        default=False,
        description="Swift object versioning on the backup containers (needs allow_object_versioning in "
        "the cloud's Swift): an overwritten or deleted snapshot stays as an older version.",
    )


class KubernetesRole(StrEnum):
    """The built-in ClusterRoles a Keystone role may be bound to (Kubernetes' user-facing roles).

    ``cluster-admin`` is not here: the identity's admin role holds it, and only it.
    """

    VIEW = "view"
    EDIT = "edit"
    ADMIN = "admin"


# RBAC group names: letters, digits and '@._:-'; 'system:' is Kubernetes' own prefix (rules refuse it).
KubernetesGroup = Annotated[
    str, _grammar(r"[A-Za-z0-9][A-Za-z0-9@._:-]*", "letters, digits and '@._:-', starting with a letter or digit", 253)
]


class RoleMappingSpec(SpecModel):
    """A Keystone role whose holders get one Kubernetes role, cluster-wide (view only) or in namespaces.

    The program creates the Keystone role, maps it to ``group`` in k8s-keystone-auth's
    sync config, and binds ``group`` to ``cluster_role`` (a built-in ClusterRole) or to
    ``role`` (a namespace's own Role) in each of ``namespaces``.
    """

    keystone_role: KeystoneName
    group: KubernetesGroup | None = Field(default=None, description="Defaults to <provider>:<keystone_role>.")
    cluster_role: KubernetesRole | None = Field(default=None, description="view, edit or admin.")
    role: DnsLabel | None = Field(default=None, description="A Role of each listed namespace (the customer's own).")
    namespaces: tuple[DnsLabel, ...] = Field(
        default=(), description="Customer namespaces to bind in; empty binds cluster-wide (view only)."
    )


class IdentitySpec(SpecModel):
    admin_role_name: KeystoneName | None = Field(default=None, description="Defaults to <cluster>-cluster-admin.")
    initial_admin_user: KeystoneName
    project: DisplayName | None = Field(default=None, description="Project name; defaults to the cloud's project.")
    domain: DisplayName = Field(
        default="Default", description="Keystone domain of the cluster's users (customer kubeconfigs log in there)."
    )
    credentials_issued: datetime.date = Field(
        default=datetime.date(2026, 12, 1),
        description="Issue date of the cluster's application credentials; set a later date to rotate them "
        "(new credentials named by the date replace the old ones, created before the old are deleted).",
    )
    credential_lifetime_days: int = Field(
        default=365, ge=1, le=3 * 365, description="Application credentials expire this long after credentials_issued."
    )
    application_credential_roles: tuple[KeystoneName, ...] = Field(
        default=("member",),
        min_length=1,
        description="The only project roles the in-cluster application credentials carry (a subset of the "
        "deploying user's roles on the project).",
    )
    access_rules: bool = Field(
        default=True,
        description="Restrict the Cinder CSI and Velero application credentials to their services and paths "
        "(Keystone access rules; the cloud's services must name themselves volumev3, compute, object-store).",
    )
    roles: tuple[RoleMappingSpec, ...] = Field(
        default=(), description="Keystone roles beyond the admin role, each mapped to a group and a Kubernetes role."
    )


class EtcdBackupSpec(SpecModel):
    interval_hours: int = Field(default=8, ge=1, le=24)
    retention_days: int = Field(default=14, ge=1)
    s3_region: OpenStackName = Field(
        default="us-east-1",
        description="Region the S3 signatures name; Swift's s3api answers to its 'location' (default us-east-1).",
    )


class VersionsSpec(SpecModel):
    kubernetes: ReleaseVersion = versions.KUBERNETES
    etcd: ReleaseVersion = versions.ETCD
    containerd: ReleaseVersion = versions.CONTAINERD


class ServiceSpec(SpecModel):
    enabled: bool = True
    chart_version: ChartVersion | None = Field(default=None, description="Overrides the catalog's pinned version.")


class CniServiceSpec(ServiceSpec):
    pass


class IngressSpec(ServiceSpec):
    replicas: int = Field(default=2, ge=1)
    cert_manager: bool = True
    acme_email: Email | None = None


class AlertSeverity(StrEnum):
    """The ``severity`` label of kube-prometheus-stack's rules (and of ours)."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class ReceiverKind(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"


class AlertReceiver(SpecModel):
    """One on-call destination of the provider; its credential is a Pulumi config secret.

    ``secret_config`` names the key in the ``kaas`` config namespace (set with
    ``pulumi config set --secret kaas:<key> ...``) that holds the webhook URL, the SMTP
    password, the PagerDuty routing key or the Opsgenie API key. It never appears in the
    spec, the Helm values or the plan: Alertmanager reads it from a mounted Secret.
    """

    name: DnsLabel
    kind: ReceiverKind
    secret_config: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    severities: tuple[AlertSeverity, ...] = Field(default=(AlertSeverity.CRITICAL, AlertSeverity.WARNING), min_length=1)
    email_to: NonEmpty | None = None
    email_from: NonEmpty | None = None
    smarthost: NonEmpty | None = Field(default=None, description="host:port of the SMTP server (email only).")
    email_username: NonEmpty | None = None

    @model_validator(mode="after")
    def _email_fields(self) -> AlertReceiver:
        email = (self.email_to, self.email_from, self.smarthost)
        if self.kind is ReceiverKind.EMAIL and None in email:
            raise ValueError("an email receiver needs email_to, email_from and smarthost")
        if self.kind is not ReceiverKind.EMAIL and any(v is not None for v in (*email, self.email_username)):
            raise ValueError(f"email_* and smarthost are for email receivers, not {self.kind.value}")
        return self


class DeadMansSwitchSpec(SpecModel):
    """Where the always-firing Watchdog alert goes: a heartbeat that pages when it stops."""

    secret_config: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")] = Field(
        description="kaas config secret holding the heartbeat webhook URL."
    )
    repeat_interval_minutes: int = Field(default=5, ge=1, le=60)


class AlertingSpec(SpecModel):
    """Alert routing: by severity to the receivers; the Watchdog to the dead man's switch."""

    receivers: tuple[AlertReceiver, ...] = ()
    dead_mans_switch: DeadMansSwitchSpec | None = None

    @model_validator(mode="after")
    def _unique(self) -> AlertingSpec:
        names = [r.name for r in self.receivers]
        if len(names) != len(set(names)):
            raise ValueError(f"receiver names must be unique, got {names}")
        if "null" in names or "dead-mans-switch" in names:
            raise ValueError("'null' and 'dead-mans-switch' are reserved receiver names")
        return self

    def secret_configs(self) -> tuple[str, ...]:
        """Every config key whose secret the program reads, in a stable order."""
        keys = [r.secret_config for r in self.receivers]
        if self.dead_mans_switch is not None:
            keys.append(self.dead_mans_switch.secret_config)
        return tuple(dict.fromkeys(keys))


class MonitoringSpec(ServiceSpec):
    alerting: AlertingSpec = AlertingSpec()
    prometheus_retention_days: int = Field(default=3, ge=1)
    app_prometheus_retention_days: int = Field(default=3, ge=1)
    prometheus_volume_gb: int = Field(default=50, ge=1)
    alertmanager_volume_gb: int = Field(default=5, ge=1)
    grafana_volume_gb: int = Field(default=5, ge=1)


class LoggingSpec(ServiceSpec):
    retention_days: int = Field(default=7, ge=1)
    volume_gb: int = Field(default=100, ge=1)
    dashboards_host: HostLabel = "kibana"


class RegistrySpec(ServiceSpec):
    database_gb: int = Field(default=10, ge=1)
    scanning: bool = True


class BackupSpec(ServiceSpec):
    schedule: CronSchedule = Field(default="0 2 * * *", description="Velero schedule: 5-field cron or @daily-style.")
    retention_days: int = Field(default=30, ge=1)
    include_secrets: bool = Field(
        default=False,
        description="Velero stores resources unencrypted (Swift encrypts at rest only if the cloud does): "
        "by default Secrets stay out of Velero backups and are restored from the encrypted etcd snapshots.",
    )
    plugin_image: ImageReference | None = Field(
        default=None,
        description="The OpenStack plugin's image as mirrored into the operator's registry "
        "(<registry>/<project>/velero-plugin-for-openstack:<tag>@sha256:<digest>); upstream publishes it only "
        "under a personal Docker Hub account.",
    )


class ServicesSpec(SpecModel):
    cni: CniServiceSpec = CniServiceSpec()
    cloud_controller: ServiceSpec = ServiceSpec()
    cinder_csi: ServiceSpec = ServiceSpec()
    keystone_auth: ServiceSpec = ServiceSpec()
    ingress: IngressSpec = IngressSpec()
    monitoring: MonitoringSpec = MonitoringSpec()
    metrics_server: ServiceSpec = ServiceSpec()
    logging: LoggingSpec = LoggingSpec()
    registry: RegistrySpec = RegistrySpec()
    backups: BackupSpec = BackupSpec()
    dashboard: ServiceSpec = ServiceSpec()
    default_deny_network_policy: bool = False
    default_namespace: DnsLabel | None = Field(
        default="apps",
        description="The customer namespace every stack gets (with the guardrails of customer_namespaces); "
        "null for none.",
    )
    customer_namespaces: tuple[DnsLabel, ...] = Field(
        default=(),
        description="Namespaces created for the customer's applications, each with the registry pull "
        "secret, a resource quota and (with default_deny_network_policy) a default-deny NetworkPolicy.",
    )


class PodSecurityLevel(StrEnum):
    BASELINE = "baseline"
    RESTRICTED = "restricted"


class SecuritySpec(SpecModel):
    """Cluster hardening knobs; the defaults are the platform's promise (docs/architecture.md, Security)."""

    bootstrap_token_ttl_hours: int = Field(
        default=24,
        ge=1,
        le=168,
        description="Lifetime of the kubeadm bootstrap token in the nodes' user data (kubeadm's default is 24 h).",
    )
    etcd_certificates_generation: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Generation of the certificates issued from the etcd CAs (each member's serving and peer "
        "certificate, the API servers' etcd client certificate; 5 years each). Raise it by one to renew them: "
        "kaas roll replaces the etcd members one at a time, then the masters, each carrying new certificates.",
    )
    pod_security_default: PodSecurityLevel = Field(
        default=PodSecurityLevel.BASELINE,
        description="Pod Security level enforced on every namespace without its own label (AdmissionConfiguration).",
    )
    metadata_allowed_pod_cidrs: tuple[Cidr, ...] = Field(
        default=(),
        description="Pod source CIDRs (inside networking.pod_cidr) still allowed to reach the Nova metadata "
        "service; every other pod is refused. Host-network pods (OCCM, Cinder CSI) reach it as the node.",
    )
    max_open_cidr_share: float = Field(
        default=1 / 256,
        gt=0,
        le=1,
        description="In production, the largest share of the IPv4 space admin_ssh_cidrs may cover together, "
        "and allowed_api_cidrs unless they are exactly [0.0.0.0/0] (an API declared public).",
    )


class ClusterSpec(SpecModel):
    """One customer environment."""

    name: ClusterName
    domain: DnsDomain
    environment: Environment = Environment.PRODUCTION
    provider_name: DnsLabel = Field(
        default="kaas", description="Names the platform namespace <provider>-system and RBAC bindings."
    )
    versions: VersionsSpec = VersionsSpec()
    openstack: OpenStackSpec
    etcd: EtcdTierSpec = EtcdTierSpec()
    masters: MasterTierSpec = MasterTierSpec()
    workers: WorkerTierSpec = WorkerTierSpec()
    networking: NetworkingSpec = NetworkingSpec()
    load_balancer: LoadBalancerSpec = LoadBalancerSpec()
    dns: DnsSpec = DnsSpec()
    object_storage: ObjectStorageSpec = ObjectStorageSpec()
    identity: IdentitySpec
    etcd_backup: EtcdBackupSpec = EtcdBackupSpec()
    services: ServicesSpec = ServicesSpec()
    security: SecuritySpec = SecuritySpec()

    @model_validator(mode="after")
    def _rules(self) -> ClusterSpec:
        from kaas.spec.rules import SpecRuleError, problems

        found = problems(self)
        if found:
            raise SpecRuleError(found)
        return self

    # Derived names: one place, so every layer agrees.
    @property
    def platform_namespace(self) -> str:
        return f"{self.provider_name}-system"

    @property
    def cluster_domain(self) -> str:
        """``<cluster>.<domain>``: the parent of every host this cluster serves."""
        return f"{self.name}.{self.domain}"

    @property
    def admin_role_name(self) -> str:
        return self.identity.admin_role_name or f"{self.name}-cluster-admin"

    @property
    def reserved_namespaces(self) -> tuple[str, ...]:
        """Namespaces of Kubernetes and of the platform: no customer guardrail, binding or workload goes there."""
        return (self.platform_namespace, *KUBERNETES_NAMESPACES, *CNI_NAMESPACES)

    @property
    def customer_namespaces(self) -> tuple[str, ...]:
        """The platform-created customer namespaces: the default one, then ``services.customer_namespaces``."""
        default = self.services.default_namespace
        listed = self.services.customer_namespaces
        return ((default,) if default is not None and default not in listed else ()) + listed

    @property
    def role_mappings(self) -> tuple[tuple[RoleMappingSpec, str], ...]:
        """Each spec'd role with its Kubernetes group (``<provider>:<keystone_role>`` unless given)."""
        return tuple((m, m.group or f"{self.provider_name}:{m.keystone_role}") for m in self.identity.roles)

    def container_name(self, purpose: str) -> str:
        override: str | None = getattr(self.object_storage, purpose)
        return override or f"{self.name}-{purpose.replace('_', '-')}"

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION
