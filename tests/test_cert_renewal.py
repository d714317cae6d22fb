"""Control-plane certificates renew on the masters before they expire.

kubeadm's certificate management guide (kubernetes.io, "Certificate Management with
kubeadm"): client certificates kubeadm generates expire after one year;
``kubeadm certs renew all`` renews them with the CA on the node; afterwards the
control plane Pods must be restarted, because not every component reloads its
certificates, and a static Pod is restarted by removing its manifest from
``/etc/kubernetes/manifests/`` for longer than the kubelet's ``fileCheckFrequency``
(20 s) and putting it back. These tests run the real script (bash, real openssl) on
real certificates, with a recording ``kubeadm`` on the PATH, and check the units with
``systemd-analyze``.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import promql_parser
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaas.bootstrap.userdata.nodes import (
    CERT_METRICS_DIR,
    CERT_RENEW_BEFORE_DAYS,
    CERT_RENEW_SCRIPT,
    KUBEADM_BOOTSTRAP_SCRIPT,
    STATIC_PODS,
)
from kaas.bootstrap.userdata.yamltext import render_template
from kaas.services import alerts
from tests.bootstrap_fixtures import bootstrap_plan
from tests.helpers import promql_selectors

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def certificate(days_left: int) -> tuple[bytes, datetime.datetime]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"expires-in-{days_left}")])
    not_after = NOW + datetime.timedelta(days=days_left)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), not_after


class Master:
    """A master's certificate layout in a temporary directory, and the renewal script for it."""

    def __init__(self, root: Path, days_left: dict[str, int], etcd_members: tuple[str, ...] = ()) -> None:
        self.root = root
        self.pki = root / "pki"
        (self.pki / "etcd").mkdir(parents=True)
        self.manifests = root / "manifests"
        self.manifests.mkdir()
        for pod in STATIC_PODS:
            (self.manifests / f"{pod}.yaml").write_text(f"kind: Pod\nmetadata: {{name: {pod}}}\n")
        self.expiry: dict[str, datetime.datetime] = {}
        for name, days in days_left.items():
            pem, not_after = certificate(days)
            self.expiry[name] = not_after
            if name.endswith(".conf"):
                data = base64.b64encode(pem).decode()
                (root / name).write_text(
                    yaml.safe_dump({"users": [{"name": "u", "user": {"client-certificate-data": data}}]})
                )
            else:
                (self.pki / name).write_text(pem.decode())
        self.bin = root / "bin"
        self.bin.mkdir()
        self.kubeadm_log = root / "kubeadm.log"
        fake = self.bin / "kubeadm"
        fake.write_text(f'#!/bin/bash\necho "$*" >> {self.kubeadm_log}\nls {self.manifests} >> {self.kubeadm_log}\n')
        fake.chmod(0o755)
        self.metrics = root / "certificates.prom"
        self.script = root / "kaas-cert-renew"
        self.script.write_text(
            render_template(
                "kaas-cert-renew.sh.j2",
                pki_dir=str(self.pki),
                renew_before_seconds=CERT_RENEW_BEFORE_DAYS * 86400,
                metrics_file=str(self.metrics),
                manifests_dir=str(self.manifests),
                restart_pause_seconds=0,
                kubeconfigs=[str(root / name) for name in ("admin.conf", "controller-manager.conf", "scheduler.conf")],
                static_pods=list(STATIC_PODS),
                etcd_members=list(etcd_members),
            )
        )
        self.script.chmod(0o755)

    def run(self) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        return subprocess.run([str(self.script)], env=env, capture_output=True, text=True, timeout=60)

    def kubeadm_calls(self) -> list[str]:
        if not self.kubeadm_log.exists():
            return []
        return [line for line in self.kubeadm_log.read_text().splitlines() if line.startswith("certs")]

    def metric_values(self) -> dict[str, int]:
        pattern = re.compile(r'^kaas_certificate_expiry_timestamp_seconds\{node="[^"]+",certificate="([^"]+)"\} (\d+)$')
        values = {}
        for line in self.metrics.read_text().splitlines():
            if line.startswith("#"):
                continue
            match = pattern.match(line)
            assert match, line
            values[match.group(1)] = int(match.group(2))
        return values


HEALTHY = {
    "ca.crt": 3650,
    "apiserver.crt": 300,
    "apiserver-kubelet-client.crt": 300,
    "front-proxy-client.crt": 300,
    "apiserver-etcd-client.crt": 1500,
    "etcd/ca.crt": 3650,
    "admin.conf": 300,
    "controller-manager.conf": 300,
    "scheduler.conf": 300,
}


def test_nothing_is_renewed_while_every_certificate_has_more_than_90_days(tmp_path: Path) -> None:
    master = Master(tmp_path, HEALTHY)
    result = master.run()
    assert result.returncode == 0, result.stderr
    assert master.kubeadm_calls() == []
    assert sorted(p.name for p in master.manifests.iterdir()) == sorted(f"{p}.yaml" for p in STATIC_PODS)


@pytest.mark.parametrize("expiring", ["apiserver.crt", "front-proxy-client.crt", "scheduler.conf"])
def test_a_certificate_within_90_days_renews_all_and_restarts_every_static_pod(tmp_path: Path, expiring: str) -> None:
    master = Master(tmp_path, {**HEALTHY, expiring: 60})
    result = master.run()
    assert result.returncode == 0, result.stderr
    assert master.kubeadm_calls() == ["certs renew all"]
    # Renewal ran while every manifest was in place, and every manifest is back.
    log = master.kubeadm_log.read_text()
    assert all(f"{pod}.yaml" in log for pod in STATIC_PODS)
    assert sorted(p.name for p in master.manifests.iterdir()) == sorted(f"{p}.yaml" for p in STATIC_PODS)
    assert "renewing" in result.stdout


def test_every_certificate_expiry_is_exported_for_prometheus(tmp_path: Path) -> None:
    master = Master(tmp_path, HEALTHY)
    assert master.run().returncode == 0
    values = master.metric_values()
    assert set(values) == set(HEALTHY)
    for name, not_after in master.expiry.items():
        assert values[name] == int(not_after.timestamp()), name
    assert oct(master.metrics.stat().st_mode & 0o777) == "0o644"


def test_masters_install_and_enable_the_renewal_timer_after_joining() -> None:
    plan = bootstrap_plan("acme-prod")
    for text in plan.texts("masterUserData"):
        document = yaml.safe_load(text)
        files = {f["path"]: f for f in document["write_files"]}
        assert files[CERT_RENEW_SCRIPT]["permissions"] == "0755"
        assert "/etc/systemd/system/kaas-cert-renew.timer" in files
        # The metadata guard first (issue 17), then kubeadm, then the renewal timer.
        assert document["runcmd"][-2:] == [
            [KUBEADM_BOOTSTRAP_SCRIPT],
            ["systemctl", "enable", "--now", "kaas-cert-renew.timer"],
        ]
        script = files[CERT_RENEW_SCRIPT]["content"]
        assert subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True).returncode == 0
        # Every external etcd member is probed for the certificate it serves.
        assert script.count(":2379") == 5
    for text in plan.texts("workerUserData") + plan.texts("etcdUserData"):
        assert "kaas-cert-renew" not in text
    # Every Kubernetes node has the directory node-exporter reads, report or not.
    for text in plan.texts("workerUserData") + plan.texts("masterUserData"):
        paths = [f["path"] for f in yaml.safe_load(text)["write_files"]]
        assert f"{CERT_METRICS_DIR}/README" in paths


def test_systemd_accepts_the_renewal_units(tmp_path: Path) -> None:
    plan = bootstrap_plan("acme-prod")
    document = yaml.safe_load(plan.texts("masterUserData")[0])
    files = {f["path"]: f["content"] for f in document["write_files"]}
    script = tmp_path / "kaas-cert-renew"
    script.write_text(files[CERT_RENEW_SCRIPT])
    script.chmod(0o755)
    units = []
    for unit in ("kaas-cert-renew.service", "kaas-cert-renew.timer"):
        content = files[f"/etc/systemd/system/{unit}"].replace(CERT_RENEW_SCRIPT, str(script))
        (tmp_path / unit).write_text(content)
        units.append(str(tmp_path / unit))
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Unknown" not in result.stderr and "Invalid" not in result.stderr, result.stderr
    timer = files["/etc/systemd/system/kaas-cert-renew.timer"]
    calendar = re.search(r"^OnCalendar=(.+)$", timer, re.MULTILINE)
    assert calendar is not None
    check = subprocess.run(["systemd-analyze", "calendar", calendar.group(1)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _signed(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str, days: int, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def test_each_etcd_members_served_certificate_is_reported(tmp_path: Path) -> None:
    """A TLS server that, like an etcd member, demands a client certificate from the etcd CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    member, member_key = _signed(ca, ca_key, "etcd-0", 45, server=True)
    client, client_key = _signed(ca, ca_key, "kube-apiserver-etcd-client", 1500, server=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    master = Master(tmp_path / "m", HEALTHY, etcd_members=(address,))
    (master.pki / "etcd" / "ca.crt").write_bytes(_pem(ca))
    (master.pki / "apiserver-etcd-client.crt").write_bytes(_pem(client))
    (master.pki / "apiserver-etcd-client.key").write_bytes(_key_pem(client_key))
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    for name, data in (("ca.crt", _pem(ca)), ("member.crt", _pem(member)), ("member.key", _key_pem(member_key))):
        (server_dir / name).write_bytes(data)
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", address, "-cert", str(server_dir / "member.crt"),
         "-key", str(server_dir / "member.key"), "-CAfile", str(server_dir / "ca.crt"), "-Verify", "1", "-www"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        result = master.run()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    values = master.metric_values()
    assert values[f"etcd-member {address}"] == int(member.not_valid_after_utc.timestamp())
    assert values["apiserver-etcd-client.crt"] == int(client.not_valid_after_utc.timestamp())
    # KaasEtcdCertificateRenewalDue selects exactly etcd's certificates among what the report names
    # (nothing on a node renews them; kubeadm's renew themselves and have their own alert).
    (rule,) = [r for r in alerts.certificate_alerts() if r["alert"] == "KaasEtcdCertificateRenewalDue"]
    (selector,) = promql_selectors(promql_parser.parse(rule["expr"]))
    (matcher,) = [m for m in selector.matchers.matchers if m.name == "certificate"]
    etcd = {c for c in values if re.fullmatch(matcher.value, c)}
    assert etcd == {f"etcd-member {address}", "apiserver-etcd-client.crt"}, sorted(values)
