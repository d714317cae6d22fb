"""Each kaas verify check against the fake live cluster (tests/verify_env.py): passing as
planned, failing when the cluster differs, could-not-run when it cannot tell."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kaas.verify import checks
from kaas.verify.checks import Check, checks_for
from kaas.verify.clients import Credentials
from kaas.verify.context import Secrets
from kaas.verify.report import Status
from kaas.verify.runner import Policy, run_check
from tests.fakes.apis import FakePrometheus
from tests.fakes.kube import helm_release_secret, node
from tests.fakes.pki import Issued, TestCa
from tests.verify_env import LiveCluster, live_cluster, put_snapshot, velero_backup

ONCE = Policy(timeout=15, retries=0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LiveCluster]:
    with live_cluster(tmp_path) as live:
        put_snapshot(live, "etcd-snapshots/acme-prod-etcd-0-20261201T080000Z.db")
        yield live


def run(cluster: LiveCluster, check_id: str) -> tuple[Status, str]:
    check = next(c for c in checks_for(cluster.ctx, with_conformance=True) if c.id == check_id)
    result = run_check(check, cluster.ctx, ONCE)
    return result.status, result.detail


def test_every_check_passes_on_the_cluster_as_planned(cluster: LiveCluster) -> None:
    found = {c.id: run_check(c, cluster.ctx, ONCE) for c in checks_for(cluster.ctx)}
    assert {k: (r.status, r.detail) for k, r in found.items() if r.status is not Status.PASSED} == {}
    assert {
        "api-admin",
        "api-denied",
        "nodes",
        "helm-releases",
        "registry-pull",
        "etcd-backup",
        "velero-backup",
    } <= set(found)
    assert {
        f"tls-{s}" for s in ("dashboard", "grafana", "prometheus", "alertmanager", "log-dashboards", "registry")
    } <= set(found)


# --- API access ----------------------------------------------------------------------------------


def test_api_admin_passes_through_the_dns_name_with_a_keystone_token(cluster: LiveCluster) -> None:
    status, detail = run(cluster, "api-admin")
    assert status is Status.PASSED, detail
    assert cluster.outputs.api.dns_name in detail
    sent = cluster.kube.requests[-1]
    assert sent.header(
        "Authorization",
    ) in {f"Bearer {t}" for t in cluster.keystone.issued}
    scope = cluster.keystone.bodies[-1]["scope"]
    assert scope == {"project": {"name": cluster.outputs.openstack.keystone.project,
                                 "domain": {"name": cluster.outputs.openstack.keystone.domain}}}  # fmt: skip


def test_api_admin_fails_when_the_admin_lacks_the_role(cluster: LiveCluster) -> None:
    user = cluster.outputs.openstack.keystone.initial_admin_user
    cluster.keystone.users[user] = (cluster.keystone.users[user][0], ("member-id",))
    status, detail = run(cluster, "api-admin")
    assert status is Status.FAILED and "HTTP 403" in detail


def test_api_admin_fails_when_the_api_certificate_is_not_the_cluster_ca(tmp_path: Path) -> None:
    with live_cluster(tmp_path) as live:
        other = live.outputs.model_copy(update={"ca_certificate": live.public_ca.pem})
        live.ctx.outputs = other
        status, detail = run(live, "api-admin")
    assert status is Status.FAILED and "unable to get local issuer certificate" in detail


def test_api_admin_could_not_run_without_credentials(cluster: LiveCluster) -> None:
    cluster.ctx.secrets = Secrets()
    status, detail = run(cluster, "api-admin")
    assert status is Status.COULD_NOT_RUN and "OS_USERNAME" in detail


def test_api_admin_could_not_run_when_keystone_refuses_the_password(cluster: LiveCluster) -> None:
    admin = cluster.ctx.secrets.admin
    assert admin is not None
    cluster.ctx.secrets = Secrets(admin=Credentials(admin.username, "wrong"))
    status, detail = run(cluster, "api-admin")
    assert status is Status.COULD_NOT_RUN and "Keystone refused" in detail and "401" in detail


def test_api_denied_passes_when_a_user_without_the_role_gets_403(cluster: LiveCluster) -> None:
    status, detail = run(cluster, "api-denied")
    assert status is Status.PASSED and "forbidden" in detail


def test_api_denied_fails_when_a_user_without_the_role_gets_in(cluster: LiveCluster) -> None:
    cluster.kube.admin_group = "member-id"  # a binding that lets every member in
    cluster.keystone.users["viewer"] = ("viewer-password", ("member-id",))
    status, detail = run(cluster, "api-denied")
    assert status is Status.FAILED and "HTTP 200" in detail


def test_api_denied_fails_when_the_token_is_not_authenticated(cluster: LiveCluster) -> None:
    cluster.kube.authenticate = lambda token: None  # the Keystone webhook is broken
    status, detail = run(cluster, "api-denied")
    assert status is Status.FAILED and "401" in detail


# --- Nodes ---------------------------------------------------------------------------------------


def test_nodes_pass_when_every_planned_node_is_ready_at_the_version(cluster: LiveCluster) -> None:
    status, detail = run(cluster, "nodes")
    assert status is Status.PASSED and detail.startswith(f"{len(cluster.planned.nodes)} nodes")
    assert len(cluster.planned.nodes) == cluster.outputs.layout.masters.count + cluster.outputs.layout.workers.count


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda nodes: nodes.pop(), "is not registered"),
        (lambda nodes: nodes.__setitem__(0, node(nodes[0]["metadata"]["name"], "v1.34.2", ready=False)), "not Ready"),
        (lambda nodes: nodes.__setitem__(1, node(nodes[1]["metadata"]["name"], "v1.33.9")), "runs v1.33.9"),
        (lambda nodes: nodes.append(node("stray-1", "v1.34.2")), "unplanned node(s): stray-1"),
    ],
    ids=["missing", "not-ready", "old-version", "unplanned"],
)
def test_nodes_fail_when_the_cluster_differs(cluster: LiveCluster, change: object, expected: str) -> None:
    change(cluster.kube.nodes)  # type: ignore[operator]
    status, detail = run(cluster, "nodes")
    assert status is Status.FAILED and expected in detail


# --- Helm releases -------------------------------------------------------------------------------


def test_helm_releases_pass_at_the_catalog_versions(cluster: LiveCluster) -> None:
    status, detail = run(cluster, "helm-releases")
    assert status is Status.PASSED, detail
    assert "harbor" in {r.name for r in cluster.planned.releases}


def test_helm_releases_fail_when_the_latest_revision_is_another_version_or_failed(cluster: LiveCluster) -> None:
    harbor = next(r for r in cluster.planned.releases if r.name == "harbor")
    cert = next(r for r in cluster.planned.releases if r.name == "cert-manager")
    cluster.kube.secrets.append(helm_release_secret("harbor", harbor.namespace, "harbor", "1.17.0", revision=2))
    cluster.kube.secrets.append(
        helm_release_secret("cert-manager", cert.namespace, "cert-manager", cert.version, revision=3, state="failed")
    )
    status, detail = run(cluster, "helm-releases")
    assert status is Status.FAILED
    assert f"harbor runs harbor 1.17.0, catalog harbor {harbor.version}" in detail
    assert "cert-manager revision 3 is failed" in detail


def test_helm_releases_fail_when_a_release_is_missing(cluster: LiveCluster) -> None:
    cluster.kube.secrets = [s for s in cluster.kube.secrets if s["metadata"].get("labels", {}).get("name") != "velero"]
    status, detail = run(cluster, "helm-releases")
    assert status is Status.FAILED and "velero is not installed" in detail


# --- Service hosts with valid TLS ----------------------------------------------------------------


DASHBOARD, GRAFANA, REGISTRY = (f"{h}.acme-prod.k8s.acme.example" for h in ("dashboard", "grafana", "registry"))


@pytest.mark.parametrize(
    ("host", "make", "expected"),
    [
        (DASHBOARD, lambda ca: ca.issue(GRAFANA), "Hostname mismatch"),
        (REGISTRY, lambda ca: ca.issue(REGISTRY, expired=True), "certificate has expired"),
        (GRAFANA, lambda ca: TestCa("somebody else").issue(GRAFANA), "unable to get local issuer certificate"),
    ],
    ids=["other-host", "expired", "untrusted-ca"],
)
def test_tls_fails_for_a_certificate_that_does_not_verify(
    tmp_path: Path, host: str, make: Callable[[TestCa], Issued], expected: str
) -> None:
    with live_cluster(tmp_path, service_certs={host: make}) as live:
        results = {c.id: run_check(c, live.ctx, ONCE) for c in checks_for(live.ctx) if c.id.startswith("tls-")}
    failed = {k: r.detail for k, r in results.items() if r.status is not Status.PASSED}
    assert list(failed) == [f"tls-{host.split('.')[0]}"]
    assert expected in next(iter(failed.values()))


def test_tls_fails_when_the_service_answers_5xx(cluster: LiveCluster) -> None:
    from kaas.verify.http import connect_to
    from tests.fakes.servers import Answer, https_server

    host = "alertmanager.acme-prod.k8s.acme.example"
    with https_server(lambda request: Answer(503, b"no endpoints"), cluster.public_ca.issue(host)) as port:
        cluster.ctx.connector = connect_to({**cluster.routes(), (host, 443): ("127.0.0.1", port)})
        status, detail = run(cluster, "tls-alertmanager")
    assert status is Status.FAILED and "HTTP 503" in detail


def test_tls_could_not_run_when_nothing_listens(cluster: LiveCluster) -> None:
    from kaas.verify.http import connect_to

    routes = cluster.routes()
    routes[("grafana.acme-prod.k8s.acme.example", 443)] = ("127.0.0.1", 1)
    cluster.ctx.connector = connect_to(routes)
    status, detail = run(cluster, "tls-grafana")
    assert status is Status.COULD_NOT_RUN and "cannot reach grafana.acme-prod.k8s.acme.example:443" in detail


# --- Registry pull secrets -----------------------------------------------------------------------


def test_registry_pull_logs_in_with_the_secret_the_program_creates(cluster: LiveCluster) -> None:
    status, detail = run(cluster, "registry-pull")
    assert status is Status.PASSED and "apps, team-a, team-b" in detail and "robot$kaas-pull-20261201" in detail
    assert len(cluster.harbor.tokens) == 3  # the stack's default namespace and the two listed


def test_registry_pull_fails_when_a_namespace_lacks_the_secret(cluster: LiveCluster) -> None:
    cluster.kube.secrets = [
        s
        for s in cluster.kube.secrets
        if (s["metadata"]["namespace"], s["metadata"]["name"]) != ("team-b", "registry-pull")
    ]
    status, detail = run(cluster, "registry-pull")
    assert status is Status.FAILED and "team-b/registry-pull does not exist" in detail


def test_registry_pull_fails_when_harbor_refuses_the_robot(cluster: LiveCluster) -> None:
    cluster.harbor.accounts = {"robot$kaas-pull-20261201": "rotated-secret"}
    status, detail = run(cluster, "registry-pull")
    assert status is Status.FAILED and "refused" in detail and "401" in detail
    assert not cluster.harbor.tokens


# --- Backups ---------------------------------------------------------------------------------------


def test_etcd_backup_fails_when_the_newest_snapshot_is_too_old(cluster: LiveCluster) -> None:
    hours = cluster.outputs.etcd.backup_interval_hours
    cluster.ctx.now = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours, minutes=31)
    status, detail = run(cluster, "etcd-backup")
    assert status is Status.FAILED and "old; the limit is" in detail


def test_etcd_backup_passes_inside_the_margin(cluster: LiveCluster) -> None:
    hours = cluster.outputs.etcd.backup_interval_hours
    cluster.ctx.now = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours, minutes=25)
    status, detail = run(cluster, "etcd-backup")
    assert status is Status.PASSED, detail


def test_etcd_backup_fails_without_a_snapshot(tmp_path: Path) -> None:
    with live_cluster(tmp_path) as live:
        put_snapshot(live, "other-prefix/not-a-snapshot.db")
        status, detail = run(live, "etcd-backup")
    assert status is Status.FAILED and "no snapshot" in detail


def test_etcd_backup_could_not_run_without_s3_credentials(cluster: LiveCluster) -> None:
    cluster.ctx.secrets = Secrets(admin=cluster.ctx.secrets.admin)
    status, detail = run(cluster, "etcd-backup")
    assert status is Status.COULD_NOT_RUN and "AWS_ACCESS_KEY_ID" in detail


def test_velero_fails_when_the_latest_backup_partially_failed(cluster: LiveCluster) -> None:
    ns = cluster.planned.platform_namespace
    cluster.kube.velero["backups"].append(
        velero_backup(ns, "velero-daily-20261202020000", "2026-12-02T02:00:00Z", "PartiallyFailed", errors=3)
    )
    status, detail = run(cluster, "velero-backup")
    assert status is Status.FAILED and "PartiallyFailed (3 errors)" in detail


def test_velero_passes_when_no_backup_was_due_yet(cluster: LiveCluster) -> None:
    cluster.kube.velero["schedules"][0]["status"].pop("lastBackup")
    cluster.kube.velero["backups"] = []
    status, detail = run(cluster, "velero-backup")
    assert status is Status.PASSED and "no backup due yet" in detail


def test_velero_fails_when_the_schedule_is_missing(cluster: LiveCluster) -> None:
    cluster.kube.velero["schedules"] = []
    status, detail = run(cluster, "velero-backup")
    assert status is Status.FAILED and "does not exist" in detail


# --- Prometheus ------------------------------------------------------------------------------------


def test_prometheus_targets_fail_when_one_is_down(cluster: LiveCluster) -> None:
    cluster.prometheus.targets.append(FakePrometheus.target("opensearch", "down", "connection refused"))
    status, detail = run(cluster, "prometheus-targets")
    assert status is Status.FAILED and "1 of 5 targets not up" in detail and "connection refused" in detail


def test_prometheus_is_read_through_the_api_servers_service_proxy(cluster: LiveCluster) -> None:
    assert run(cluster, "prometheus-targets")[0] is Status.PASSED
    path = cluster.kube.requests[-1].path
    assert (
        path == "/api/v1/namespaces/kaas-system/services/kube-prometheus-stack-prometheus:http-web/proxy/api/v1/targets"
    )


def test_prometheus_alerts_fail_when_another_alert_fires(cluster: LiveCluster) -> None:
    cluster.prometheus.alerts += [FakePrometheus.alert("KubePodCrashLooping"), FakePrometheus.alert("X", "pending")]
    status, detail = run(cluster, "prometheus-alerts")
    assert status is Status.FAILED and detail == "firing: KubePodCrashLooping"


def test_prometheus_alerts_fail_without_the_watchdog(cluster: LiveCluster) -> None:
    cluster.prometheus.alerts = []
    status, detail = run(cluster, "prometheus-alerts")
    assert status is Status.FAILED and "Watchdog" in detail


# --- Conformance -----------------------------------------------------------------------------------


def test_conformance_could_not_run_without_sonobuoy(cluster: LiveCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    status, detail = run(cluster, "conformance")
    assert status is Status.COULD_NOT_RUN and "sonobuoy is not installed" in detail


SONOBUOY = """#!/bin/sh
# Stands in for the sonobuoy CLI: `run` and `retrieve` as documented, `results` prints its summary.
case "$1" in
  run) echo "$@" > "{log}" ;;
  retrieve) touch "$2/202612011030_sonobuoy_x.tar.gz"; echo "202612011030_sonobuoy_x.tar.gz" ;;
  results) printf 'Plugin: e2e\\nStatus: {status}\\nTotal: 7411\\nPassed: 1\\nFailed: {failed}\\nSkipped: 7410\\n' ;;
esac
"""


@pytest.mark.parametrize(("result", "expected"), [("passed", Status.PASSED), ("failed", Status.FAILED)])
def test_conformance_summarises_sonobuoy_results(
    cluster: LiveCluster, tmp_path: Path, result: str, expected: Status
) -> None:
    script, log = tmp_path / "sonobuoy", tmp_path / "run.log"
    script.write_text(SONOBUOY.format(log=log, status=result, failed=0 if result == "passed" else 1))
    script.chmod(0o755)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    cluster.ctx.sonobuoy, cluster.ctx.kubeconfig = str(script), kubeconfig
    status, detail = run(cluster, "conformance")
    assert status is expected and f"sonobuoy quick: {result}" in detail and "Skipped 7410" in detail
    assert log.read_text().split() == ["run", "--mode", "quick", "--wait", "--kubeconfig", str(kubeconfig)]


def test_check_list_follows_the_enabled_services(cluster: LiveCluster) -> None:
    services = cluster.outputs.services.model_copy(update={"registry": None, "backups": None, "prometheus": None})
    cluster.ctx.outputs = cluster.outputs.model_copy(update={"services": services})
    ids = [c.id for c in checks_for(cluster.ctx)]
    assert "registry-pull" not in ids and "velero-backup" not in ids and "prometheus-targets" not in ids
    assert "conformance" not in ids and "conformance" in [c.id for c in checks_for(cluster.ctx, True)]
    assert all(isinstance(c, Check) and c.required for c in checks_for(cluster.ctx))
    assert checks.api_admin in [c.run for c in checks_for(cluster.ctx)]
