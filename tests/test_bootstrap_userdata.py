"""User data per tier: valid for the real `cloud-init schema`, and carrying the expected configuration."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaas import platform, versions
from kaas.bootstrap.userdata.etcd import (
    BACKUP_ENV_PATH,
    BACKUP_SCRIPT_PATH,
    ETCD_CONFIG_PATH,
    ETCD_INSTALL_SCRIPT,
    backup_cron,
    backup_script,
    environment_file,
    on_calendar,
)
from kaas.bootstrap.userdata.kubeadm import (
    AUTHENTICATION_CONFIG_PATH,
    AUTHN_WEBHOOK_PATH,
    AUTHZ_WEBHOOK_PATH,
    DISCOVERY_KUBECONFIG_PATH,
)
from kaas.bootstrap.userdata.nodes import KUBEADM_BOOTSTRAP_SCRIPT, SHARED_PKI_DIR, node_names
from kaas.spec import SpecError
from tests.bootstrap_fixtures import BACKUP_SECRET, bootstrap_plan
from tests.helpers import cloud_config_files, cloud_config_kubeadm, make_spec

STACKS = ("dev", "demo", "acme-prod", "minimal")
NOVA_USER_DATA_LIMIT = 65535  # bytes, base64-encoded


def _doc(text: str) -> dict[str, Any]:
    assert text.startswith("#cloud-config\n")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_every_user_data_passes_cloud_init_schema(tmp_path: Path) -> None:
    paths = []
    for stack in STACKS:
        bp = bootstrap_plan(stack)
        for tier in ("etcdUserData", "masterUserData", "workerUserData"):
            for i, text in enumerate(bp.texts(tier)):
                path = tmp_path / f"{stack}-{tier}-{i}.yaml"
                path.write_text(text)
                paths.append(path)
    running = [
        (
            p,
            subprocess.Popen(
                ["cloud-init", "schema", "--config-file", str(p)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            ),
        )
        for p in paths
    ]
    failures = []
    for path, process in running:
        out, _ = process.communicate(timeout=60)
        if process.returncode != 0:
            failures.append(f"{path.name}: {out.decode()}")
    assert not failures, failures
    assert len(paths) == (1 + 1 + 2) + (3 + 3 + 3) + (5 + 3 + 3) + (5 + 3 + 3)


@pytest.mark.parametrize("stack", STACKS)
def test_user_data_fits_novas_limit(stack: str) -> None:
    bp = bootstrap_plan(stack)
    for tier in ("etcdUserData", "masterUserData", "workerUserData"):
        for text in bp.texts(tier):
            assert len(base64.b64encode(text.encode())) < NOVA_USER_DATA_LIMIT


@pytest.mark.parametrize("stack", ["dev", "acme-prod"])
def test_etcd_nodes_form_a_static_tls_cluster_from_the_address_plan(stack: str) -> None:
    bp = bootstrap_plan(stack)
    texts = bp.texts("etcdUserData")
    assert len(texts) == bp.spec.etcd.count
    names = node_names(bp.spec.name, "etcd", bp.spec.etcd.count)
    ips = [e.split("//")[1].split(":")[0] for e in bp.output("etcdEndpoints")]
    expected_cluster = ",".join(f"{n}=https://{ip}:{platform.ETCD_PEER_PORT}" for n, ip in zip(names, ips, strict=True))
    for name, ip, text in zip(names, ips, texts, strict=True):
        doc = _doc(text)
        assert doc["hostname"] == name
        files = cloud_config_files(doc)
        config = yaml.safe_load(files[ETCD_CONFIG_PATH]["content"])
        assert config["name"] == name
        assert config["initial-cluster"] == expected_cluster
        assert config["advertise-client-urls"] == f"https://{ip}:{platform.ETCD_CLIENT_PORT}"
        for section in ("client-transport-security", "peer-transport-security"):
            assert config[section]["client-cert-auth"] is True
        assert files["/etc/etcd/pki/member.key"]["permissions"] == "0600"
        assert "PRIVATE KEY" in files["/etc/etcd/pki/member.key"]["content"]
        install = files[ETCD_INSTALL_SCRIPT]["content"]
        assert versions.ETCD_SHA256[bp.spec.versions.etcd] in install and "sha256sum --check" in install
        assert f"etcd-v{bp.spec.versions.etcd}-linux-amd64.tar.gz" in install


def test_etcd_nodes_back_up_on_the_specs_schedule_to_the_backup_container() -> None:
    bp = bootstrap_plan("acme-prod")
    files = cloud_config_files(_doc(bp.texts("etcdUserData")[0]))
    timer = files["/etc/systemd/system/etcd-backup.timer"]["content"]
    assert "OnCalendar=*-*-* 00,08,16:00:00 UTC" in timer
    env = files[BACKUP_ENV_PATH]
    assert env["permissions"] == "0600"
    assert f'S3_BUCKET="{bp.spec.container_name("etcd_backups")}"' in env["content"]
    assert f'AWS_SECRET_ACCESS_KEY="{BACKUP_SECRET}"' in env["content"]
    assert f'RETENTION_DAYS="{bp.spec.etcd_backup.retention_days}"' in env["content"]
    assert files[BACKUP_SCRIPT_PATH]["content"] == backup_script()
    assert "EnvironmentFile=/etc/kaas/etcd-backup.env" in files["/etc/systemd/system/etcd-backup.service"]["content"]


def test_on_calendar_follows_the_interval() -> None:
    assert on_calendar(8) == "*-*-* 00,08,16:00:00 UTC"
    assert on_calendar(24) == "*-*-* 00:00:00 UTC"
    assert on_calendar(6) == "*-*-* 00,06,12,18:00:00 UTC"
    with pytest.raises(ValueError):
        on_calendar(0)


@pytest.mark.parametrize("interval_hours", range(1, 25))
def test_backup_cron_names_the_timers_hours(interval_hours: int) -> None:
    """The stack outputs' cron line and the systemd timer fire at the same hours of the day."""
    minute, hour, *rest = backup_cron(interval_hours).split()
    step = int(hour.removeprefix("*/")) if hour.startswith("*/") else 24
    assert (minute, rest) == ("0", ["*", "*", "*"]) and (hour == "0") == (interval_hours == 24)
    cron_hours = [f"{h:02d}" for h in range(0, 24, step)]
    assert on_calendar(interval_hours) == f"*-*-* {','.join(cron_hours)}:00:00 UTC"


@pytest.mark.parametrize("stack", ["dev", "acme-prod"])
def test_first_master_runs_kubeadm_init_against_external_etcd(stack: str) -> None:
    bp = bootstrap_plan(stack)
    spec = bp.spec
    doc = _doc(bp.texts("masterUserData")[0])
    kubeadm = cloud_config_kubeadm(doc)
    cluster = kubeadm["ClusterConfiguration"]
    assert cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert cluster["kubernetesVersion"] == f"v{spec.versions.kubernetes}"
    # Nodes and kube-proxy reach the API at the load balancer's internal VIP.
    assert cluster["controlPlaneEndpoint"] == f"{bp.output('apiVip')}:6443"
    assert {f"api.{spec.cluster_domain}", bp.output("apiVip")} <= set(cluster["apiServer"]["certSANs"])
    assert cluster["etcd"]["external"]["endpoints"] == bp.output("etcdEndpoints")
    assert cluster["networking"]["podSubnet"] == spec.networking.pod_cidr
    assert cluster["networking"]["serviceSubnet"] == spec.networking.service_cidr
    args = {a["name"]: a["value"] for a in cluster["apiServer"]["extraArgs"]}
    assert args["authentication-config"] == AUTHENTICATION_CONFIG_PATH
    assert args["authorization-mode"] == "Node,RBAC,Webhook"
    init = kubeadm["InitConfiguration"]
    assert init["bootstrapTokens"][0]["token"] == bp.output("bootstrapToken").value
    kubelet_args = {a["name"]: a["value"] for a in init["nodeRegistration"]["kubeletExtraArgs"]}
    assert kubelet_args["cloud-provider"] == "external"
    # kubelet-config ConfigMap: serving certificates from the cluster CA, for every node.
    assert kubeadm["KubeletConfiguration"]["serverTLSBootstrap"] is True
    script = cloud_config_files(doc)[KUBEADM_BOOTSTRAP_SCRIPT]["content"]
    assert "kubeadm init --config" in script
    assert "--provider-id=openstack:///${instance_id}" in script
    assert "cloud-init query v1.instance_id" in script
    packages = [p for p in doc["packages"] if isinstance(p, list)]
    assert ["kubeadm", f"{spec.versions.kubernetes}-1.1"] in packages
    source = doc["apt"]["sources"]["kubernetes.list"]
    assert f"/v{spec.versions.kubernetes.rsplit('.', 1)[0]}/deb/" in source["source"]


def test_other_masters_join_the_control_plane_with_the_uploaded_certificates_and_no_private_key() -> None:
    bp = bootstrap_plan("acme-prod")
    key = bp.output("certificateKey").value
    first = _doc(bp.texts("masterUserData")[0])
    # kubeadm init --upload-certs encrypts the shared certificates with this key (hex, 32 bytes).
    assert cloud_config_kubeadm(first)["InitConfiguration"]["certificateKey"] == key
    assert len(bytes.fromhex(key)) == 32
    assert "--upload-certs" in cloud_config_files(first)[KUBEADM_BOOTSTRAP_SCRIPT]["content"]
    for text in bp.texts("masterUserData")[1:]:
        doc = _doc(text)
        kubeadm = cloud_config_kubeadm(doc)
        assert set(kubeadm) == {"JoinConfiguration"}
        join = kubeadm["JoinConfiguration"]
        assert join["controlPlane"]["certificateKey"] == key
        assert join["discovery"] == {"file": {"kubeConfigPath": DISCOVERY_KUBECONFIG_PATH}}
        files = cloud_config_files(doc)
        assert files[DISCOVERY_KUBECONFIG_PATH]["permissions"] == "0600"
        assert not [p for p in files if p.startswith(SHARED_PKI_DIR)]
        assert not any("PRIVATE KEY" in f["content"] for f in doc["write_files"])
        assert "kubeadm join --config" in files[KUBEADM_BOOTSTRAP_SCRIPT]["content"]


def test_apiserver_allows_anonymous_only_on_health_endpoints_and_uses_keystone_webhooks() -> None:
    bp = bootstrap_plan("acme-prod")
    files = cloud_config_files(_doc(bp.texts("masterUserData")[1]))
    auth = yaml.safe_load(files[AUTHENTICATION_CONFIG_PATH]["content"])
    assert auth["kind"] == "AuthenticationConfiguration"
    assert auth["anonymous"] == {
        "enabled": True,
        "conditions": [{"path": "/healthz"}, {"path": "/livez"}, {"path": "/readyz"}],
    }
    for path in (AUTHN_WEBHOOK_PATH, AUTHZ_WEBHOOK_PATH):
        kubeconfig = yaml.safe_load(files[path]["content"])
        cluster = kubeconfig["clusters"][0]["cluster"]
        assert cluster["server"] == platform.KEYSTONE_AUTH_WEBHOOK_URL
        assert base64.b64decode(cluster["certificate-authority-data"]).decode() == bp.output("caCertPem")


def test_workers_join_by_file_discovery_at_the_vip_with_the_ca_and_token_only() -> None:
    bp = bootstrap_plan("demo")
    for text in bp.texts("workerUserData"):
        doc = _doc(text)
        join = cloud_config_kubeadm(doc)["JoinConfiguration"]
        assert "controlPlane" not in join
        assert join["discovery"] == {"file": {"kubeConfigPath": DISCOVERY_KUBECONFIG_PATH}}
        files = cloud_config_files(doc)
        discovery = yaml.safe_load(files[DISCOVERY_KUBECONFIG_PATH]["content"])
        assert files[DISCOVERY_KUBECONFIG_PATH]["permissions"] == "0600"
        [cluster] = discovery["clusters"]
        assert cluster["cluster"]["server"] == f"https://{bp.output('apiVip')}:6443"
        assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]).decode() == bp.output("caCertPem")
        [user] = discovery["users"]
        assert user["user"] == {"token": bp.output("bootstrapToken").value}
        assert not any("PRIVATE KEY" in f["content"] for f in doc["write_files"])


def test_admin_kubeconfig_points_at_the_api_endpoint() -> None:
    bp = bootstrap_plan("acme-prod")
    kubeconfig = yaml.safe_load(bp.output("adminKubeconfig").value)
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://api.{bp.spec.cluster_domain}:6443"
    user = kubeconfig["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]).decode() == bp.output("adminCertPem")
    assert "PRIVATE KEY" in base64.b64decode(user["client-key-data"]).decode()


def test_spec_rejects_an_etcd_version_without_a_verified_checksum() -> None:
    with pytest.raises(SpecError, match=r"versions\.etcd: no verified sha256"):
        make_spec(versions={"etcd": "3.6.99"})
    assert make_spec(versions={"etcd": "3.5.25"}).versions.etcd == "3.5.25"


def test_environment_file_quotes_values() -> None:
    assert environment_file({"A": 'x"y\\z'}) == 'A="x\\"y\\\\z"\n'
    with pytest.raises(ValueError):
        environment_file({"A": "two\nlines"})
