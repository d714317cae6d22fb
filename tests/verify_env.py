"""A live-looking cluster for kaas verify: the acme-prod plan served by fake APIs on 127.0.0.1.

Everything the fakes hold is derived from the stack's offline plan, as a correct ``pulumi up``
would leave it: the planned nodes, the Helm releases at the catalog's versions (stored the way
Helm stores them), the Secrets the program creates (pull secrets included), the Harbor robot
whose secret the plan generated. The API serves a certificate of the cluster CA for the
API's DNS name; Keystone, the service hosts, Harbor and the S3 endpoint serve certificates of a
"public" CA for their planned host names. The connector sends each planned (host, port) to its
local server; nothing in the code under test is patched.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from kaas.handover.render import service_urls
from kaas.handover.source import handover_outputs
from kaas.offline.engine import Plan
from kaas.offline.plan import plan_spec
from kaas.offline.planfile import plain
from kaas.outputs import StackOutputs
from kaas.services import names
from kaas.spec import ClusterSpec, load_stack_spec
from kaas.verify.clients import Credentials
from kaas.verify.context import PROMETHEUS_SERVICE, VELERO_SCHEDULE, Planned, Secrets, VerifyContext, planned
from kaas.verify.http import connect_to
from tests.fakes.apis import FakeHarbor, FakeKeystone, FakePrometheus
from tests.fakes.kube import FakeKube, helm_release_secret, node, secret_from_manifest
from tests.fakes.pki import Issued, TestCa
from tests.fakes.s3 import moto_s3_tls
from tests.fakes.servers import Answer, Request, https_server

STACK = "acme-prod"
CUSTOMER_NAMESPACES = ("team-a", "team-b")
ADMIN_PASSWORD = "admin-password"
VIEWER = Credentials("viewer", "viewer-password")
S3_KEYS = ("verify-access", "verify-secret")


@functools.cache
def stack_plan() -> tuple[ClusterSpec, Plan]:
    spec = load_stack_spec(STACK)
    services = spec.services.model_copy(update={"customer_namespaces": CUSTOMER_NAMESPACES})
    spec = spec.model_copy(update={"services": services})
    return spec, plan_spec(spec, STACK)


def _host_port(url: str, default: int = 443) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "", parts.port or default


def web_ui(request: Request) -> Answer:
    """A web UI behind the ingress: the login redirect Grafana, Headlamp and the others send."""
    return Answer(302, b"", {"Location": "/login"})


@dataclass
class LiveCluster:
    spec: ClusterSpec
    plan: Plan
    outputs: StackOutputs
    planned: Planned
    ctx: VerifyContext
    kube: FakeKube
    keystone: FakeKeystone
    prometheus: FakePrometheus
    harbor: FakeHarbor
    cluster_ca: TestCa
    public_ca: TestCa
    ports: dict[tuple[str, int], int]
    s3: Any
    ca_bundle: Path

    def routes(self) -> dict[tuple[str, int], tuple[str, int]]:
        return {key: ("127.0.0.1", port) for key, port in self.ports.items()}


@contextmanager
def live_cluster(
    tmp_path: Path, *, service_certs: dict[str, Callable[[TestCa], Issued]] | None = None
) -> Iterator[LiveCluster]:
    """Start every fake; ``service_certs`` replaces the certificate a service host serves
    (a function of the public CA, so it can issue a wrong one from the trusted CA)."""
    spec, plan = stack_plan()
    cluster_ca, public_ca = TestCa("acme-prod cluster CA"), TestCa("public test CA")
    outputs = handover_outputs(plan).model_copy(update={"ca_certificate": cluster_ca.pem})
    expected = planned(spec, plan)
    ca_bundle = tmp_path / "public-ca.pem"
    ca_bundle.write_text(public_ca.pem, encoding="utf-8")

    admin = outputs.openstack.keystone.initial_admin_user
    keystone = FakeKeystone(
        users={admin: (ADMIN_PASSWORD, (outputs.rbac.group_id,)), VIEWER.username: (VIEWER.password, ("member-id",))}
    )
    kube = FakeKube(authenticate=keystone.groups_of, admin_group=outputs.rbac.group_id)
    version = "v" + outputs.kubernetes_version.removeprefix("v")
    kube.nodes = [node(name, version) for name in expected.nodes]
    kube.secrets = [
        secret_from_manifest(plain(r.inputs, show_secrets=True)) for r in plan.by_type("kubernetes:core/v1:Secret")
    ]
    kube.secrets += [helm_release_secret(r.name, r.namespace, r.chart, r.version) for r in expected.releases]
    ns = expected.platform_namespace
    fired = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    stamp = fired.strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.velero["schedules"] = [
        {"apiVersion": "velero.io/v1", "kind": "Schedule",
         "metadata": {"name": VELERO_SCHEDULE, "namespace": ns, "creationTimestamp": "2026-11-30T08:00:00Z"},
         "spec": {"schedule": outputs.services.backups.schedule if outputs.services.backups else ""},
         "status": {"phase": "Enabled", "lastBackup": stamp}},
    ]  # fmt: skip
    kube.velero["backups"] = [velero_backup(ns, "velero-daily-20261201020000", stamp, "Completed")]
    prometheus = FakePrometheus(
        targets=[FakePrometheus.target(job) for job in ("apiserver", "kubelet", "node-exporter", "etcd")],
        alerts=[FakePrometheus.alert("Watchdog")],
    )
    kube.proxies[f"{ns}/{PROMETHEUS_SERVICE}"] = prometheus.route
    registry = outputs.services.registry
    assert registry is not None
    registry_host = registry.url.removeprefix("https://")
    robot = next(s for s in kube.secrets if s["metadata"]["name"] == names.HARBOR_ROBOT)
    robot_secret = base64.b64decode(robot["data"]["ROBOT_SECRET"]).decode()
    harbor = FakeHarbor(registry_host, {names.pull_robot_account(spec): robot_secret})

    with ExitStack() as stack:
        ports: dict[tuple[str, int], int] = {}
        api_host = outputs.api.dns_name
        assert api_host is not None
        ports[(api_host, outputs.api.port)] = stack.enter_context(https_server(kube.route, cluster_ca.issue(api_host)))
        ks_host = _host_port(outputs.openstack.keystone.auth_url)
        ports[ks_host] = stack.enter_context(https_server(keystone.route, public_ca.issue(ks_host[0])))
        for _, url in service_urls(outputs):
            host = _host_port(url)
            route = harbor.route if url == registry.url else web_ui
            make = (service_certs or {}).get(host[0])
            issued = make(public_ca) if make else public_ca.issue(host[0])
            ports[host] = stack.enter_context(https_server(route, issued))
        s3_host = _host_port(expected.s3_endpoint)
        ports[s3_host] = stack.enter_context(moto_s3_tls(public_ca.issue(s3_host[0]), expected.s3_endpoint))
        s3 = boto3.client(
            "s3",
            endpoint_url=f"https://127.0.0.1:{ports[s3_host]}",
            region_name=expected.s3_region,
            aws_access_key_id=S3_KEYS[0],
            aws_secret_access_key=S3_KEYS[1],
            verify=str(ca_bundle),
        )
        bucket = outputs.etcd.backup_container
        _reset_bucket(s3, bucket)
        ctx = VerifyContext(
            stack=STACK,
            outputs=outputs,
            planned=expected,
            secrets=Secrets(
                admin=Credentials(admin, ADMIN_PASSWORD),
                non_admin=VIEWER,
                backup_access_key=S3_KEYS[0],
                backup_secret_key=S3_KEYS[1],
            ),
            connector=connect_to({key: ("127.0.0.1", port) for key, port in ports.items()}),
            ca_bundle=str(ca_bundle),
            request_timeout=5.0,
        )
        yield LiveCluster(
            spec, plan, outputs, expected, ctx, kube, keystone, prometheus, harbor, cluster_ca, public_ca, ports, s3,
            ca_bundle,
        )  # fmt: skip


def _reset_bucket(s3: Any, bucket: str) -> None:
    """moto keeps its state per process: empty the backup container of an earlier test."""
    if bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    else:
        s3.create_bucket(Bucket=bucket)


def put_snapshot(cluster: LiveCluster, key: str, body: bytes = b"etcd snapshot bytes") -> None:
    cluster.s3.put_object(Bucket=cluster.outputs.etcd.backup_container, Key=key, Body=body)


def velero_backup(namespace: str, name: str, started: str, phase: str, errors: int = 0) -> dict[str, object]:
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": started,
            "labels": {"velero.io/schedule-name": VELERO_SCHEDULE, "velero.io/storage-location": "swift"},
        },
        "status": {"phase": phase, "startTimestamp": started, "completionTimestamp": started, "errors": errors},
    }
