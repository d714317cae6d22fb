"""A real etcd cluster from the generated configuration and certificates, and the backup script against it.

Three etcd members run on 127.0.0.1 with distinct ports: the pinned etcd
(kaas/versions.py, built by tools/controlplane/build.sh) when it is built, else
Debian's older one. Their configuration comes from the same `etcd_config` the user
data uses (loopback addresses substituted), their certificates from an offline plan
of the PKI. The backup script runs for real against them (finding the same etcdctl
and etcdutl on its PATH as on a node) and a moto S3 server on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaas import bootstrap
from kaas.bootstrap.userdata.etcd import (
    BackupTarget,
    EtcdMember,
    EtcdPaths,
    backup_environment,
    environment_file,
    etcd_config,
)
from kaas.bootstrap.userdata.nodes import node_names
from kaas.offline.planfile import plain
from tests.bootstrap_fixtures import bootstrap_plan
from tests.controlplane import BIN_DIR
from tests.helpers import free_ports

# The pinned etcd release when tools/controlplane/build.sh has built it, else the system's.
ETCD_PATH = os.pathsep.join([str(BIN_DIR), os.environ["PATH"]]) if (BIN_DIR / "etcd").exists() else os.environ["PATH"]
ETCD = shutil.which("etcd", path=ETCD_PATH)
ETCDCTL = shutil.which("etcdctl", path=ETCD_PATH)
ETCDUTL = shutil.which("etcdutl", path=ETCD_PATH)  # etcd >= 3.5; the restore procedure uses it

pytestmark = pytest.mark.skipif(ETCD is None or ETCDCTL is None, reason="needs etcd")

BACKUP_SCRIPT = Path(bootstrap.__file__).parent / "scripts" / "etcd-backup"
BUCKET = "demo-etcd-backups"
BACKUP_KEY = "k" * 40 + "0123456789abcdefghijklmn"  # stands in for the stack's etcdBackupKey (64 characters)


@dataclass
class EtcdCluster:
    members: list[EtcdMember]
    paths: list[EtcdPaths]
    client: tuple[str, str, str]  # ca, cert, key of the apiserver-etcd-client certificate
    root: Path

    def etcdctl(
        self, *args: str, endpoints: str | None = None, tls: tuple[str, ...] | None = None, timeout: int = 5
    ) -> subprocess.CompletedProcess[str]:
        ca, cert, key = self.client
        flags = tls if tls is not None else (f"--cacert={ca}", f"--cert={cert}", f"--key={key}")
        endpoint = endpoints or ",".join(m.client_url for m in self.members)
        return subprocess.run(
            [
                str(ETCDCTL),
                f"--endpoints={endpoint}",
                *flags,
                "--dial-timeout=2s",
                f"--command-timeout={timeout}s",
                *args,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "ETCDCTL_API": "3"},
            timeout=30,
        )


def _write(path: Path, text: str, mode: int = 0o600) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop the test's own etcd processes (their data is throw-away, so no graceful leader transfer)."""
    for process in processes:
        process.kill()
    for process in processes:
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    bp = bootstrap_plan("demo")  # three etcd members
    outputs = bp.plan.outputs
    root = tmp_path_factory.mktemp("etcd")
    names = node_names(bp.spec.name, "etcd", 3)
    ports = free_ports(9)
    members = [
        EtcdMember(
            name, "127.0.0.1", client_port=ports[3 * i], peer_port=ports[3 * i + 1], metrics_port=ports[3 * i + 2]
        )
        for i, name in enumerate(names)
    ]
    ca_pem = outputs["etcdCaCertPem"]
    paths = []
    processes: list[subprocess.Popen[bytes]] = []
    for i, member in enumerate(members):
        member_paths = EtcdPaths(pki_dir=str(root / member.name / "pki"), data_dir=str(root / member.name / "data"))
        _write(Path(member_paths.ca_cert), ca_pem)
        _write(Path(member_paths.cert), plain(outputs["etcdMemberCertPems"][i], show_secrets=True))
        _write(Path(member_paths.key), plain(outputs["etcdMemberKeyPems"], show_secrets=True)[i])
        _write(Path(member_paths.peer_ca_cert), outputs["etcdPeerCaCertPem"])
        _write(Path(member_paths.peer_cert), plain(outputs["etcdPeerCertPems"][i], show_secrets=True))
        _write(Path(member_paths.peer_key), plain(outputs["etcdPeerKeyPems"], show_secrets=True)[i])
        config = etcd_config(member, members, f"{bp.spec.name}-etcd", member_paths)
        config_path = _write(root / member.name / "etcd.conf.yml", yaml.safe_dump(config))
        log = (root / f"{member.name}.log").open("wb")
        processes.append(
            subprocess.Popen([str(ETCD), "--config-file", config_path], stdout=log, stderr=subprocess.STDOUT)
        )
        paths.append(member_paths)
    client = (
        str(root / "pki-ca.crt"),
        _write(root / "client.crt", outputs["etcdClientCertPem"]),
        _write(root / "client.key", plain(outputs["etcdClientKeyPem"], show_secrets=True)),
    )
    _write(Path(client[0]), ca_pem)
    cluster = EtcdCluster(members, paths, client, root)
    try:
        deadline = time.monotonic() + 20
        while cluster.etcdctl("endpoint", "health").returncode != 0:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                logs = "\n".join((root / f"{m.name}.log").read_text()[-2000:] for m in members)
                pytest.fail(f"etcd cluster did not become healthy:\n{logs}")
            time.sleep(0.2)
        # A cluster the API server uses is never empty; the backup refuses a snapshot without keys
        # ("snapshot verification found no keys"), and pytest-xdist may hand any backup test a fresh
        # module fixture on its worker before the test that writes its own keys.
        assert cluster.etcdctl("put", "/registry/namespaces/default", "namespace").returncode == 0
        yield cluster
    finally:
        _stop(processes)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    (port,) = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _s3(endpoint: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(s3_server: str) -> Iterator[str]:
    s3 = _s3(s3_server)
    s3.create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
    try:
        yield BUCKET
    finally:
        for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):  # type: ignore[attr-defined]
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])  # type: ignore[attr-defined]
        s3.delete_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]


def _objects(endpoint: str) -> list[str]:
    listing = _s3(endpoint).list_objects_v2(Bucket=BUCKET)  # type: ignore[attr-defined]
    return [item["Key"] for item in listing.get("Contents", [])]


def _run_backup(
    cluster: EtcdCluster, index: int, s3_endpoint: str, **overrides: str
) -> subprocess.CompletedProcess[str]:
    member, paths = cluster.members[index], cluster.paths[index]
    target = BackupTarget(
        endpoint=s3_endpoint,
        bucket=BUCKET,
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
        retention_days=14,
        interval_hours=8,
        encryption_key=BACKUP_KEY,
    )
    env = backup_environment(member, paths, target)
    env["WORK_DIR"] = str(cluster.root / f"backup-{member.name}")
    env["METRICS_FILE"] = str(_metrics_file(cluster, index))
    env.update(overrides)
    env_file = _write(cluster.root / f"backup-{member.name}.env", environment_file(env))
    return subprocess.run(
        [sys.executable, str(BACKUP_SCRIPT), "--env-file", env_file],
        capture_output=True,
        text=True,
        env={"PATH": ETCD_PATH},
        timeout=60,
    )


def _backup_on_the_leader(cluster: EtcdCluster, s3_endpoint: str) -> int:
    """Runs the backup on every member until the leader uploads; returns the leader's index.
    Leadership can move between the three runs on a loaded machine (an election between two
    timer firings), so a round where nobody uploaded is retried; what each member said is
    reported if no round succeeds."""
    said: list[str] = []
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        for index in range(len(cluster.members)):
            result = _run_backup(cluster, index, s3_endpoint)
            if "uploaded s3://" in result.stderr:
                return index
            said.append(f"{cluster.members[index].name} (exit {result.returncode}): {result.stderr.strip()}")
        time.sleep(0.5)
    pytest.fail("no member uploaded a backup:\n" + "\n".join(said[-6:]))


def _metrics_file(cluster: EtcdCluster, index: int) -> Path:
    return cluster.root / f"textfile-{cluster.members[index].name}" / "etcd-backup.prom"


def _samples(path: Path) -> dict[str, float]:
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in path.read_text().splitlines())
        if not name.startswith("#")
    }


def test_metrics_listener_serves_plain_http_metrics_without_a_client_cert(etcd_cluster: EtcdCluster) -> None:
    # etcd's --listen-metrics-urls: /metrics and /health over plain HTTP, so Prometheus needs no
    # etcd client certificate (kube-prometheus-stack scrapes kubeEtcd with scheme http by default).
    member = etcd_cluster.members[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{member.metrics_port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "etcd_server_has_leader 1" in body
    # The series the chart's etcd rules use (templates/prometheus/rules-1.14/etcd.yaml).
    for series in ("etcd_server_leader_changes_seen_total", "etcd_mvcc_db_total_size_in_bytes"):
        assert series in body
    with urllib.request.urlopen(f"http://127.0.0.1:{member.metrics_port}/health", timeout=5) as response:
        assert json.loads(response.read())["health"] == "true"
    # The data plane stays mutual TLS: the client port refuses a plain HTTP request.
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{member.client_port}/v3/kv/range", timeout=5)


def test_generated_cluster_is_healthy_over_tls_with_the_generated_client_cert(etcd_cluster: EtcdCluster) -> None:
    health = etcd_cluster.etcdctl("endpoint", "health", "--cluster")
    assert health.returncode == 0, health.stderr
    assert health.stderr.count("is healthy") + health.stdout.count("is healthy") == 3
    members = etcd_cluster.etcdctl("member", "list", "--write-out=simple")
    assert sorted(line.split(", ")[2] for line in members.stdout.splitlines()) == sorted(
        m.name for m in etcd_cluster.members
    )


def test_the_roll_client_certificate_of_the_stack_outputs_writes_and_lists_members_beside_the_api_servers(
    etcd_cluster: EtcdCluster, tmp_path: Path
) -> None:
    # The fixture's client is the stack outputs' etcdClientCertPem/KeyPem: kaas roll's own certificate.
    outputs = bootstrap_plan("demo").plan.outputs
    roll_cert = x509.load_pem_x509_certificate(Path(etcd_cluster.client[1]).read_bytes())
    assert roll_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kaas-roll"
    assert etcd_cluster.etcdctl("put", "kaas-roll-probe", "1").returncode == 0
    listed = etcd_cluster.etcdctl("member", "list", "--write-out=json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["members"]) == 3, listed.stderr
    # The API servers' own certificate keeps working: the roll's is an addition, not a replacement.
    apiserver = (
        f"--cacert={etcd_cluster.client[0]}",
        f"--cert={_write(tmp_path / 'apiserver.crt', outputs['apiserverEtcdClientCertPem'])}",
        f"--key={_write(tmp_path / 'apiserver.key', plain(outputs['apiserverEtcdClientKeyPem'], show_secrets=True))}",
    )
    got = etcd_cluster.etcdctl("get", "kaas-roll-probe", "--print-value-only", tls=apiserver)
    assert got.returncode == 0 and got.stdout.strip() == "1", got.stderr


def test_client_without_a_ca_signed_cert_is_refused(etcd_cluster: EtcdCluster, tmp_path: Path) -> None:
    ca = etcd_cluster.client[0]
    no_cert = etcd_cluster.etcdctl("put", "intruder", "1", tls=(f"--cacert={ca}",), timeout=1)
    assert no_cert.returncode != 0
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-etcd-client")])
    now = time.time()
    import datetime

    start = datetime.datetime.fromtimestamp(now - 60, datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path = _write(tmp_path / "self.crt", cert.public_bytes(serialization.Encoding.PEM).decode())
    key_path = _write(
        tmp_path / "self.key",
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )
    self_signed = etcd_cluster.etcdctl(
        "put", "intruder", "1", tls=(f"--cacert={ca}", f"--cert={cert_path}", f"--key={key_path}"), timeout=1
    )
    assert self_signed.returncode != 0
    assert etcd_cluster.etcdctl("get", "intruder").stdout == ""


SECRET_VALUE = "s3cr3t-database-password-7f2c9e"


def _decrypt(source: Path, target: Path, key: str = BACKUP_KEY) -> subprocess.CompletedProcess[str]:
    """The restore procedure's decrypt step (README): the shipped script, the key from a file."""
    key_file = _write(target.parent / f"{target.name}.key", key + "\n")
    return subprocess.run(
        [sys.executable, str(BACKUP_SCRIPT), "--key-file", key_file, "decrypt", str(source), str(target)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        timeout=60,
    )


def _snapshot_status(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ETCDUTL or ETCDCTL), "snapshot", "status", str(path), "--write-out=json"],
        capture_output=True,
        text=True,
        env={**os.environ, "ETCDCTL_API": "3"},
        timeout=30,
    )


def test_backup_is_uploaded_by_the_leader_only_encrypted_and_restores_into_a_fresh_member(
    etcd_cluster: EtcdCluster, s3_server: str, bucket: str, tmp_path: Path
) -> None:
    assert etcd_cluster.etcdctl("put", "/registry/kaas/probe", "before-backup").returncode == 0
    # A Kubernetes Secret as the API server stores it (no encryption at rest configured): the value in clear.
    assert etcd_cluster.etcdctl("put", "/registry/secrets/shop/db", f"password={SECRET_VALUE}").returncode == 0
    results = [_run_backup(etcd_cluster, i, s3_server) for i in range(3)]
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    uploaders = [i for i, r in enumerate(results) if "uploaded s3://" in r.stderr]
    assert len(uploaders) == 1, [r.stderr for r in results]
    assert sum("is not the etcd leader" in r.stderr for r in results) == 2
    (key,) = _objects(s3_server)
    leader = etcd_cluster.members[uploaders[0]].name
    assert key.startswith("etcd-snapshots/") and key.endswith(f"-{leader}.db.enc")
    assert not any(any((etcd_cluster.root / f"backup-{m.name}").glob("*")) for m in etcd_cluster.members)
    # node-exporter's textfile collector: every member reports its run, only the uploader a success time.
    samples = [_samples(_metrics_file(etcd_cluster, i)) for i in range(3)]
    assert all(s["kaas_etcd_backup_last_run_success"] == 1 for s in samples)
    with_upload = [i for i, s in enumerate(samples) if "kaas_etcd_backup_last_success_timestamp_seconds" in s]
    assert with_upload == uploaders
    assert abs(samples[uploaders[0]]["kaas_etcd_backup_last_success_timestamp_seconds"] - time.time()) < 120

    # What the store holds is no snapshot and carries none of the cluster's data in clear text.
    stored = tmp_path / "snapshot.db.enc"
    _s3(s3_server).download_file(BUCKET, key, str(stored))  # type: ignore[attr-defined]
    data = stored.read_bytes()
    assert data.startswith(b"KAASENC1Salted__")
    assert _snapshot_status(stored).returncode != 0
    for clear in (SECRET_VALUE, "before-backup", "/registry/secrets/shop/db", "/registry/kaas/probe"):
        assert clear.encode() not in data, clear
    assert BACKUP_KEY.encode() not in data

    # Restore: the documented procedure (README, "Restoring etcd from a backup"), on one fresh member.
    snapshot = tmp_path / "snapshot.db"
    decrypted = _decrypt(stored, snapshot)
    assert decrypted.returncode == 0, decrypted.stderr
    assert _snapshot_status(snapshot).returncode == 0
    client_port, peer_port = free_ports(2)
    data_dir = tmp_path / "restored"
    # README: `etcdutl snapshot restore`; etcd 3.4 has no etcdutl: `etcdctl snapshot restore`.
    restore = subprocess.run(
        [
            str(ETCDUTL or ETCDCTL),
            "snapshot",
            "restore",
            str(snapshot),
            f"--data-dir={data_dir}",
            "--name=restored",
            f"--initial-cluster=restored=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ETCDCTL_API": "3"},
        timeout=30,
    )
    assert restore.returncode == 0, restore.stderr
    fresh = subprocess.Popen(
        [
            str(ETCD),
            "--name=restored",
            f"--data-dir={data_dir}",
            f"--listen-client-urls=http://127.0.0.1:{client_port}",
            f"--advertise-client-urls=http://127.0.0.1:{client_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=restored=http://127.0.0.1:{peer_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        restored: dict[str, str] = {}
        deadline = time.monotonic() + 15
        while True:
            got = etcd_cluster.etcdctl(
                "get", "/registry/kaas/probe", "--print-value-only", endpoints=f"http://127.0.0.1:{client_port}", tls=()
            )
            if got.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        restored["/registry/kaas/probe"] = got.stdout.strip()
        secret = etcd_cluster.etcdctl(
            "get",
            "/registry/secrets/shop/db",
            "--print-value-only",
            endpoints=f"http://127.0.0.1:{client_port}",
            tls=(),
        )
        restored["/registry/secrets/shop/db"] = secret.stdout.strip()
        assert restored == {
            "/registry/kaas/probe": "before-backup",
            "/registry/secrets/shop/db": f"password={SECRET_VALUE}",
        }, got.stderr
    finally:
        _stop([fresh])


def test_decrypt_refuses_a_wrong_key_and_an_altered_object(
    etcd_cluster: EtcdCluster, s3_server: str, bucket: str, tmp_path: Path
) -> None:
    _backup_on_the_leader(etcd_cluster, s3_server)
    (key,) = _objects(s3_server)
    stored = tmp_path / "snapshot.db.enc"
    _s3(s3_server).download_file(BUCKET, key, str(stored))  # type: ignore[attr-defined]
    wrong = _decrypt(stored, tmp_path / "wrong.db", key="another-key")
    assert wrong.returncode == 1 and "authentication failed" in wrong.stderr
    assert not (tmp_path / "wrong.db").exists()
    altered = bytearray(stored.read_bytes())
    altered[100] ^= 0x01
    (tmp_path / "altered.enc").write_bytes(bytes(altered))
    result = _decrypt(tmp_path / "altered.enc", tmp_path / "altered.db")
    assert result.returncode == 1 and "authentication failed" in result.stderr
    plain = tmp_path / "plain.db"
    assert (
        etcd_cluster.etcdctl("snapshot", "save", str(plain), endpoints=etcd_cluster.members[0].client_url).returncode
        == 0
    )
    not_encrypted = _decrypt(plain, tmp_path / "again.db")
    assert not_encrypted.returncode == 1 and "not an encrypted kaas etcd snapshot" in not_encrypted.stderr


def test_backup_without_an_encryption_key_uploads_nothing(
    etcd_cluster: EtcdCluster, s3_server: str, bucket: str
) -> None:
    results = [_run_backup(etcd_cluster, i, s3_server, BACKUP_ENCRYPTION_KEY="") for i in range(3)]
    assert all(r.returncode == 1 and "BACKUP_ENCRYPTION_KEY is not set" in r.stderr for r in results)
    assert _objects(s3_server) == []


def test_backup_prunes_snapshots_older_than_the_retention(
    etcd_cluster: EtcdCluster, s3_server: str, bucket: str
) -> None:
    leader = _backup_on_the_leader(etcd_cluster, s3_server)
    (first,) = _objects(s3_server)
    time.sleep(1.1)  # object names carry the second
    second = _run_backup(etcd_cluster, leader, s3_server, RETENTION_DAYS="0")
    assert second.returncode == 0, second.stderr
    assert f"pruned {first}" in second.stderr
    (remaining,) = _objects(s3_server)
    assert remaining != first


def test_failing_upload_exits_nonzero_and_leaves_no_object(
    etcd_cluster: EtcdCluster, s3_server: str, bucket: str
) -> None:
    (dead_port,) = free_ports(1)
    last_success = "kaas_etcd_backup_last_success_timestamp_seconds"
    before = [
        _samples(f).get(last_success) if (f := _metrics_file(etcd_cluster, i)).exists() else None for i in range(3)
    ]
    results = [_run_backup(etcd_cluster, i, f"http://127.0.0.1:{dead_port}") for i in range(3)]
    leader = [r for r in results if "is not the etcd leader" not in r.stderr]
    assert len(leader) == 1 and leader[0].returncode == 1, [r.stderr for r in results]
    assert "FAILED" in leader[0].stderr
    # The failure is what the EtcdBackupFailed alert sees; the last success time is kept, not reset.
    failed = results.index(leader[0])
    after = _samples(_metrics_file(etcd_cluster, failed))
    assert after["kaas_etcd_backup_last_run_success"] == 0
    assert after.get(last_success) == before[failed]
    # Credentials the store rejects: moto accepts any key, so use a bucket that does not exist.
    missing = [_run_backup(etcd_cluster, i, s3_server, S3_BUCKET="no-such-bucket") for i in range(3)]
    assert sorted(r.returncode for r in missing) == [0, 0, 1]
    assert _objects(s3_server) == []
    assert not any(any((etcd_cluster.root / f"backup-{m.name}").glob("*")) for m in etcd_cluster.members)


def test_unreachable_etcd_exits_nonzero_and_leaves_no_object(
    etcd_cluster: EtcdCluster, s3_server: str, bucket: str
) -> None:
    (dead_port,) = free_ports(1)
    result = _run_backup(
        etcd_cluster, 0, s3_server, ETCD_ENDPOINT=f"https://127.0.0.1:{dead_port}", ETCD_STATUS_TIMEOUT="2"
    )
    assert result.returncode == 1
    assert "FAILED" in result.stderr
    assert _objects(s3_server) == []


def test_peer_port_accepts_only_certificates_of_the_peer_ca(etcd_cluster: EtcdCluster) -> None:
    """Separate CAs: the API server's etcd client certificate is no peer, a peer certificate is no client."""
    import ssl
    import urllib.request

    member, paths = etcd_cluster.members[0], etcd_cluster.paths[0]
    ca, client_cert, client_key = etcd_cluster.client

    def get_members(cert: str, key: str) -> bool:
        context = ssl.create_default_context(cafile=paths.peer_ca_cert)
        context.load_cert_chain(cert, key)
        try:
            with urllib.request.urlopen(f"{member.peer_url}/members", context=context, timeout=5) as response:
                return bool(response.status == 200)
        except (ssl.SSLError, OSError):
            return False

    assert get_members(paths.peer_cert, paths.peer_key)
    assert not get_members(client_cert, client_key)
    as_client = etcd_cluster.etcdctl(
        "get",
        "/registry/kaas/probe",
        tls=(f"--cacert={ca}", f"--cert={paths.peer_cert}", f"--key={paths.peer_key}"),
        timeout=2,
    )
    assert as_client.returncode != 0


def test_client_port_refuses_tls12_suites_outside_the_ecdhe_aead_list(etcd_cluster: EtcdCluster) -> None:
    """etcd's cipher-suites (hardening.TLS_CIPHER_SUITES) apply: a CBC suite is refused, GCM is served."""
    import ssl

    member = etcd_cluster.members[0]
    ca, cert, key = etcd_cluster.client

    def handshake(cipher: str) -> bool:
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(cert, key)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(cipher)
        try:
            with (
                socket.create_connection(("127.0.0.1", member.client_port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return True
        except (ssl.SSLError, OSError):
            return False

    assert handshake("ECDHE-ECDSA-AES128-GCM-SHA256")
    assert not handshake("ECDHE-ECDSA-AES128-SHA")
    assert not handshake("ECDHE-ECDSA-AES256-SHA384")
