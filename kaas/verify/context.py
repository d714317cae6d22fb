"""What the checks know: the plan (spec + offline plan), the stack outputs, and how to reach the cluster."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kaas.bootstrap.userdata.etcd import BACKUP_PREFIX
from kaas.offline.engine import Plan
from kaas.openstack.nodes import INDEX_KEY, TIER_KEY
from kaas.outputs import StackOutputs
from kaas.services import names
from kaas.spec import ClusterSpec
from kaas.verify.clients import ApiError, Credentials, KubeClient, keystone_token
from kaas.verify.http import Connector, HttpClient, TlsError, UnreachableError, direct, tls_context

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# kube-prometheus-stack names its Prometheus Service <fullname>-prometheus, port http-web (9090);
# the fullname is the release name when it contains the chart name (chart _helpers.tpl).
PROMETHEUS_SERVICE = "kube-prometheus-stack-prometheus:http-web"
# The velero chart names a schedule <fullname>-<key> (templates/schedule.yaml); values use the key "daily".
VELERO_SCHEDULE = "velero-daily"


class CouldNotRunError(Exception):
    """The check could not observe the cluster (no route, no credentials): nothing is known.

    ``retry=False`` when another attempt cannot change it (a missing credential or tool)."""

    def __init__(self, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.retry = retry


class CheckFailedError(Exception):
    """The cluster is not as planned; the message says how."""


@dataclass(frozen=True)
class PlannedRelease:
    name: str
    namespace: str
    chart: str
    version: str


@dataclass(frozen=True)
class Planned:
    """What the stack should have, from its spec and its offline plan."""

    nodes: tuple[str, ...]
    releases: tuple[PlannedRelease, ...]
    customer_namespaces: tuple[str, ...]
    platform_namespace: str
    s3_endpoint: str
    s3_region: str
    backup_prefix: str = BACKUP_PREFIX
    pull_secret: str = names.HARBOR_PULL


def kubernetes_nodes(plan: Plan) -> tuple[str, ...]:
    """Masters, then workers, as the plan builds them (a rollout may use other indices than 0..n-1)."""
    tiers = ("master", "worker")
    found = []
    for record in plan.by_type("openstack:compute/instance:Instance"):
        metadata = record.inputs.get("metadata") or {}
        if metadata.get(TIER_KEY) in tiers:
            found.append((tiers.index(metadata[TIER_KEY]), int(metadata[INDEX_KEY]), str(record.inputs["name"])))
    return tuple(name for _, _, name in sorted(found))


def planned(spec: ClusterSpec, plan: Plan) -> Planned:
    """The nodes (masters and workers register with Kubernetes; etcd nodes do not) and the Helm
    releases of ``plan``, which must be the offline plan of ``spec``."""
    releases = tuple(
        PlannedRelease(
            name=str(r.inputs["name"]),
            namespace=str(r.inputs.get("namespace") or "default"),
            chart=str(r.inputs["chart"]),
            version=str(r.inputs["version"]),
        )
        for r in plan.by_type(HELM_RELEASE)
    )
    return Planned(
        nodes=kubernetes_nodes(plan),
        releases=tuple(sorted(releases, key=lambda r: (r.namespace, r.name))),
        customer_namespaces=spec.customer_namespaces,
        platform_namespace=spec.platform_namespace,
        s3_endpoint=spec.openstack.s3_endpoint,
        s3_region=spec.etcd_backup.s3_region,
    )


@dataclass(frozen=True)
class Secrets:
    """Credentials the checks use; each missing one makes the checks that need it not run."""

    admin: Credentials | None = None  # holds the cluster-admin Keystone role
    non_admin: Credentials | None = None  # a Keystone user without it
    backup_access_key: str | None = None  # EC2 credentials for Swift's S3 API
    backup_secret_key: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str], default_admin: str) -> Secrets:
        """OS_USERNAME/OS_PASSWORD (the admin; user name defaults to the initial admin),
        KAAS_VERIFY_NONADMIN_USERNAME/_PASSWORD, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."""

        def creds(user_key: str, password_key: str, default_user: str | None) -> Credentials | None:
            user, password = env.get(user_key) or default_user, env.get(password_key)
            return Credentials(user, password) if user and password else None

        return cls(
            admin=creds("OS_USERNAME", "OS_PASSWORD", default_admin),
            non_admin=creds("KAAS_VERIFY_NONADMIN_USERNAME", "KAAS_VERIFY_NONADMIN_PASSWORD", None),
            backup_access_key=env.get("AWS_ACCESS_KEY_ID"),
            backup_secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
        )


@dataclass
class VerifyContext:
    """Everything a check reads. Public endpoints (Keystone, service hosts, the registry, S3)
    are verified against ``ca_bundle`` or the system trust store; the API against the cluster CA."""

    stack: str
    outputs: StackOutputs
    planned: Planned
    secrets: Secrets = field(default_factory=Secrets)
    connector: Connector = direct
    ca_bundle: str | None = None
    kubeconfig: Path | None = None
    request_timeout: float = 10.0
    backup_margin: dt.timedelta = dt.timedelta(minutes=30)
    conformance_mode: str = "quick"
    sonobuoy: str | None = None
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def public(self, base_url: str) -> HttpClient:
        return HttpClient(base_url, tls_context(cafile=self.ca_bundle), self.connector, self.request_timeout)

    def api(self, token: str | None = None) -> HttpClient:
        """The Kubernetes API at the outputs' URL (the load balancer's DNS name), trusting the cluster CA."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        context = tls_context(ca_pem=self.outputs.ca_certificate)
        return HttpClient(self.outputs.api.url, context, self.connector, self.request_timeout, headers)

    def token(self, who: str) -> str:
        """A Keystone token of ``admin`` or ``non_admin`` (CouldNotRunError without credentials)."""
        if who in self._tokens:
            return self._tokens[who]
        user: Credentials | None = getattr(self.secrets, who)
        if user is None:
            env = "OS_USERNAME/OS_PASSWORD" if who == "admin" else "KAAS_VERIFY_NONADMIN_USERNAME/_PASSWORD"
            raise CouldNotRunError(
                f"no credentials for the {who.replace('_', '-')} Keystone user (set {env})", retry=False
            )
        keystone = self.outputs.openstack.keystone
        try:
            token = keystone_token(self.public(keystone.auth_url), user, keystone.domain, keystone.project)
        except (UnreachableError, TlsError) as err:
            raise CouldNotRunError(f"Keystone: {err}") from None
        except ApiError as err:
            raise CouldNotRunError(
                f"Keystone refused the {who.replace('_', '-')} credentials: {err}", retry=False
            ) from None
        self._tokens[who] = token
        return token

    def kube(self) -> KubeClient:
        """The Kubernetes API as cluster admin: ``--kubeconfig`` if given, else the admin's Keystone token."""
        if self.kubeconfig is not None:
            return KubeClient(kubeconfig_client(self.kubeconfig, self.connector, self.request_timeout))
        return KubeClient(self.api(self.token("admin")))


def kubeconfig_client(path: Path, connector: Connector, timeout: float) -> HttpClient:
    """An HTTP client for the current context of a kubeconfig: bearer token, client certificate,
    or an exec credential plugin (client.authentication.k8s.io ExecCredential, status.token)."""
    try:
        config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        current = config["current-context"]
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
    except (OSError, yaml.YAMLError, KeyError, StopIteration, TypeError) as err:
        raise CouldNotRunError(f"kubeconfig {path}: unusable ({type(err).__name__}: {err})", retry=False) from None
    ca = cluster.get("certificate-authority-data")
    context = tls_context(
        ca_pem=base64.b64decode(ca).decode() if ca else None, cafile=cluster.get("certificate-authority")
    )
    headers: dict[str, str] = {}
    if "token" in user:
        headers["Authorization"] = f"Bearer {user['token']}"
    elif "client-certificate-data" in user:
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            context.load_cert_chain(cert, key)
    elif "exec" in user:
        headers["Authorization"] = f"Bearer {_exec_token(user['exec'], timeout)}"
    return HttpClient(cluster["server"], context, connector, timeout, headers)


def _exec_token(spec: dict[str, Any], timeout: float) -> str:
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    try:
        done = subprocess.run(
            [spec["command"], *(spec.get("args") or [])],
            env=env,
            capture_output=True,
            timeout=timeout,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        token: str = json.loads(done.stdout)["status"]["token"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
        raise CouldNotRunError(f"kubeconfig exec plugin {spec.get('command')}: {err}") from None
    return token
