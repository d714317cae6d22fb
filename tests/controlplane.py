"""A real control plane for the tests: the pinned etcd, kube-apiserver and kube-controller-manager, configured by the plan.

The binaries are built from the Go module proxy by ``tools/controlplane/build.sh``
(kube-apiserver, kube-controller-manager and kubeadm at ``kaas.versions.KUBERNETES``,
etcd, etcdctl and etcdutl at ``kaas.versions.ETCD``) into ``.cache/controlplane/bin``;
``.ci/run`` builds them.

Nothing is configured by hand. The first master's user data of an offline plan is
written under a temporary root (``/etc/kaas/...`` -> ``<root>/etc/kaas/...``), the
shared PKI is copied where the node's bootstrap script copies it, and the real kubeadm
turns the generated ClusterConfiguration into certificates (``kubeadm init phase certs
all``), the controller manager's kubeconfig, and the kube-apiserver and
kube-controller-manager static pod manifests (``kubeadm init phase control-plane``).
The commands of those manifests are what runs (the controller manager's bootstrap
signer signs cluster-info, which join discovery needs). Only what a test machine must
change is changed (``LOCAL_CHANGES``): the API is reached at 127.0.0.1 on a free port,
etcd is one local member of the pinned version started from the generated etcd
configuration and certificates, and the Keystone webhook (``k8s-keystone-auth`` on the
masters' 127.0.0.1) is a small fake that answers as it does, records the reviews and
serves the plan's k8s-keystone-auth certificate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import yaml

from kaas.bootstrap.pki import ADMIN_CLUSTER_ROLE_BINDING
from kaas.bootstrap.userdata.etcd import EtcdMember, EtcdPaths, etcd_config
from kaas.bootstrap.userdata.kubeadm import (
    AUTHN_WEBHOOK_PATH,
    AUTHZ_WEBHOOK_PATH,
    KUBEADM_CONFIG_PATH,
    KUBERNETES_PKI_DIR,
)
from kaas.bootstrap.userdata.nodes import SHARED_PKI_DIR, node_names
from kaas.offline.planfile import plain
from tests.bootstrap_fixtures import BootstrapPlan, bootstrap_plan
from tests.helpers import free_ports

REPO = Path(__file__).resolve().parent.parent
BIN_DIR = Path(os.environ.get("KAAS_CONTROLPLANE_BIN", REPO / ".cache" / "controlplane" / "bin"))
BINARIES = ("kube-apiserver", "kube-controller-manager", "kubeadm", "etcd", "etcdctl")
STACK = "minimal"  # the tests' minimal spec: three masters, three workers

LOCAL_CHANGES = """\
What the fixture changes in the generated configuration, and why (everything else is as planned):
- node paths /etc/kaas, /etc/kubernetes and /var/log/kubernetes (the audit log) live under a
  temporary root (no root file system writes);
- ClusterConfiguration.controlPlaneEndpoint and the nodes' API endpoint -> 127.0.0.1:<free port>
  (there is no load balancer; kubeadm puts the endpoint into the serving certificate's SANs as it
  does for the real one);
- InitConfiguration.localAPIEndpoint.bindPort -> the same free port, and apiServer extraArgs
  gets bind-address=127.0.0.1 (servers in tests bind loopback only); controllerManager extraArgs
  gets a free secure-port (kubeadm already binds it to 127.0.0.1);
- ClusterConfiguration.etcd.external.endpoints -> one local etcd member of the pinned version;
- the Keystone webhook kubeconfigs' port -> the fake webhook's free port (host and CA unchanged);
- the controller manager's kubeconfig (kubeadm writes the master's advertise address) -> 127.0.0.1;
- the plan's admin certificate, when the offline pulumi-tls's fixed start date has let it
  expire on today's clock, is re-issued as pulumi-tls would issue it today (same subject,
  key, extensions and lifetime, same CA: `issued_today`);
- the ClusterRoleBinding kubeadm:cluster-admins that `kubeadm init` creates with its
  super-admin.conf (cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go,
  EnsureAdminClusterRoleBindingImpl) is created with the super-admin.conf of
  `kubeadm init phase kubeconfig super-admin` (init's own path needs /etc/kubernetes/admin.conf):
  the plan's admin certificate is cluster-admin only through it;
- `kubeadm join phase control-plane-prepare download-certs` (tests/test_controlplane.py) runs with
  `--rootfs` (kubeadm chroots): the shared certificates it downloads land under a fresh directory
  at the paths the cluster's kubeadm-config names, not over the fixture master's own.
"""


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if not os.access(BIN_DIR / name, os.X_OK)]


def binary(name: str) -> str:
    return str(BIN_DIR / name)


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# ---------------------------------------------------------------------------------
# A node's files


# /etc/kaas/... and /etc/kubernetes/... where a path starts: at the start, after a space,
# "=", ":", ",", a quote or "[" (so "<root>/etc/kubernetes/..." is not moved again).
_NODE_PATH = re.compile(r"(?<![^\s=:,\"'\[])/(?:etc/(?:kaas|kubernetes)|var/log/kubernetes)/")


@dataclass
class NodeRoot:
    """A node's ``write_files``, written under ``root`` with node paths relocated into it."""

    root: Path

    def path(self, node_path: str) -> Path:
        return self.root / node_path.lstrip("/")

    def relocate(self, text: str) -> str:
        """Node paths in ``text`` moved under the root (paths already under it are left alone)."""
        return _NODE_PATH.sub(lambda m: f"{self.root}{m.group(0)}", text)

    def read(self, node_path: str) -> str:
        return self.path(node_path).read_text()


def install_user_data(user_data: str, root: Path) -> NodeRoot:
    """Write a Kubernetes node's cloud-config files under ``root`` (paths inside them relocated too)."""
    node = NodeRoot(root)
    document = yaml.safe_load(user_data)
    for item in document["write_files"]:
        write(node.path(item["path"]), node.relocate(item["content"]), int(item.get("permissions", "0644"), 8))
    return node


def kubeadm_documents(node: NodeRoot) -> dict[str, dict[str, Any]]:
    """The node's kubeadm configuration (``/etc/kaas/kubeadm.yaml``), by kind."""
    return {doc["kind"]: doc for doc in yaml.safe_load_all(node.read(KUBEADM_CONFIG_PATH))}


def with_server(kubeconfig: dict[str, Any], server: Callable[[str], str]) -> dict[str, Any]:
    """A kubeconfig with every cluster's server URL mapped through ``server``."""
    clusters = [
        {**c, "cluster": {**c["cluster"], "server": server(c["cluster"]["server"])}} for c in kubeconfig["clusters"]
    ]
    return {**kubeconfig, "clusters": clusters}


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def run(args: list[str], timeout: int = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env={"PATH": os.environ["PATH"], **(env or {})}
    )


def checked(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(result.args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


# ---------------------------------------------------------------------------------
# The fake Keystone webhook


KEYSTONE_API_VERSIONS = ("authentication.k8s.io/v1beta1", "authorization.k8s.io/v1beta1")


@dataclass
class FakeKeystone:
    """k8s-keystone-auth's webhook as it answers, without Keystone behind it.

    Modelled on cloud-provider-openstack pkg/identity/keystone/keystone.go (``Handler``):
    one URL for both reviews, told apart by ``kind``; any apiVersion other than the
    v1beta1 ones is refused with 400; a TokenReview for an unknown token is answered 401
    with ``authenticated: false``; a SubjectAccessReview is read from ``spec.user`` and
    ``spec.group`` (v1beta1's field name). Here ``tokens`` maps a bearer token to the user
    it authenticates and ``allow(review)`` stands for the policy. Every request is recorded.
    """

    url: str
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    allow: Callable[[dict[str, Any]], bool] = lambda review: False
    reviews: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, review: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.reviews.append(review)
        if review.get("apiVersion") not in KEYSTONE_API_VERSIONS:
            return 400, {"error": f"unknown apiVersion {review.get('apiVersion')!r}"}
        if review.get("kind") == "TokenReview":
            user = self.tokens.get(review["spec"]["token"])
            if user is None:
                return 401, {**review, "status": {"authenticated": False}}
            return 200, {**review, "status": {"authenticated": True, "user": user}}
        if review.get("kind") == "SubjectAccessReview":
            spec = review["spec"]
            if not isinstance(spec.get("user"), str) or not isinstance(spec.get("group"), list):
                return 500, {"error": "spec.user and spec.group expected"}
            answer = {k: v for k, v in review.items() if k != "spec"}
            return 200, {**answer, "status": {"allowed": self.allow(review)}}
        return 400, {"error": f"unknown kind {review.get('kind')!r}"}


@contextmanager
def fake_keystone(cert: Path, key: str | Path) -> Iterator[FakeKeystone]:
    (port,) = free_ports(1)
    webhook = FakeKeystone(url=f"https://127.0.0.1:{port}/webhook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            status, answer = webhook.answer(json.loads(self.rfile.read(length)))
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield webhook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ---------------------------------------------------------------------------------
# The control plane


@dataclass
class ControlPlane:
    """A running etcd, kube-apiserver and kube-controller-manager from the plan's first master; what tests need."""

    plan: BootstrapPlan
    root: Path
    master: NodeRoot
    port: int
    ca_file: Path
    admin_cert: tuple[str, str]
    super_admin_cert: tuple[str, str]  # kubeadm's super-admin.conf identity (system:masters)
    admin_kubeconfig: Path
    kubeadm_config: Path  # the master's kubeadm.yaml with LOCAL_CHANGES
    apiserver_command: list[str]
    keystone: FakeKeystone
    etcd_client_url: str
    etcd_client_tls: tuple[str, str, str]

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        admin: bool = False,
        super_admin: bool = False,
        token: str | None = None,
        body: Any = None,
        timeout: float = 30,
    ) -> requests.Response:
        """A request as the admin or super admin (client certificate), a bearer token, or anonymous (neither)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(
            method,
            self.server + path,
            verify=str(self.ca_file),
            cert=self.super_admin_cert if super_admin else self.admin_cert if admin else None,
            headers=headers,
            json=body,
            timeout=timeout,
        )

    def kubeadm(
        self, *args: str, timeout: int = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run([binary("kubeadm"), *args], timeout=timeout, env=env)

    def etcdctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        ca, cert, key = self.etcd_client_tls
        return run(
            [binary("etcdctl"), f"--endpoints={self.etcd_client_url}", f"--cacert={ca}", f"--cert={cert}",
             f"--key={key}", "--dial-timeout=2s", "--command-timeout=5s", *args],
            timeout=30,
        )  # fmt: skip


def _wait(
    what: str, ready: Callable[[], bool], processes: list[subprocess.Popen[bytes]], logs: list[Path], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
            raise RuntimeError(f"{what} did not become ready in {seconds:.0f} s:\n{tails}")
        time.sleep(0.2)


def _start_etcd(plan: BootstrapPlan, root: Path, processes: list[subprocess.Popen[bytes]]) -> tuple[str, Path]:
    """One member of the pinned etcd from the generated configuration and the plan's member certificate."""
    outputs = plan.plan.outputs
    client_port, peer_port, metrics_port = free_ports(3)
    (name,) = node_names(plan.spec.name, "etcd", 1)
    member = EtcdMember(name, "127.0.0.1", client_port=client_port, peer_port=peer_port, metrics_port=metrics_port)
    paths = EtcdPaths(pki_dir=str(root / "etcd" / "pki"), data_dir=str(root / "etcd" / "data"))
    write(Path(paths.ca_cert), outputs["etcdCaCertPem"])
    write(Path(paths.cert), plain(outputs["etcdMemberCertPems"][0], show_secrets=True))
    write(Path(paths.key), plain(outputs["etcdMemberKeyPems"], show_secrets=True)[0])
    write(Path(paths.peer_ca_cert), outputs["etcdPeerCaCertPem"])
    write(Path(paths.peer_cert), plain(outputs["etcdPeerCertPems"][0], show_secrets=True))
    write(Path(paths.peer_key), plain(outputs["etcdPeerKeyPems"], show_secrets=True)[0])
    config = etcd_config(member, [member], f"{plan.spec.name}-etcd", paths)
    config_path = write(root / "etcd" / "etcd.conf.yml", yaml.safe_dump(config))
    log = root / "etcd.log"
    with log.open("wb") as out:
        processes.append(
            subprocess.Popen([binary("etcd"), "--config-file", str(config_path)], stdout=out, stderr=subprocess.STDOUT)
        )
    return member.client_url, log


def _local_kubeadm_config(master: NodeRoot, port: int, etcd_url: str, controller_manager_port: int) -> Path:
    docs = kubeadm_documents(master)
    cluster, init = docs["ClusterConfiguration"], docs["InitConfiguration"]
    cluster["controlPlaneEndpoint"] = f"127.0.0.1:{port}"
    cluster["etcd"]["external"]["endpoints"] = [etcd_url]
    cluster["apiServer"]["extraArgs"] = [
        *cluster["apiServer"].get("extraArgs", []),
        {"name": "bind-address", "value": "127.0.0.1"},
    ]
    controller_manager = cluster.setdefault("controllerManager", {})
    controller_manager["extraArgs"] = [
        *controller_manager.get("extraArgs", []),
        {"name": "secure-port", "value": str(controller_manager_port)},
    ]
    init["localAPIEndpoint"]["bindPort"] = port
    return write(master.root / "kubeadm-local.yaml", yaml.safe_dump_all(docs.values(), sort_keys=False))


def copy_shared_pki(master: NodeRoot) -> None:
    """What the bootstrap script does first: /etc/kaas/pki/* -> /etc/kubernetes/pki/* (kubeadm reuses them)."""
    shared = master.path(SHARED_PKI_DIR)
    target = master.path(KUBERNETES_PKI_DIR)
    for source in shared.rglob("*"):
        if source.is_file():
            destination = target / source.relative_to(shared)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _component_commands(master: NodeRoot, config: Path) -> dict[str, list[str]]:
    """kubeadm's static pod commands for the API server and controller manager (dry run: manifests land where we say)."""
    manifests = master.root / "manifests"
    manifests.mkdir(exist_ok=True)
    kubeconfig_dir = master.path("/etc/kubernetes")
    checked(run([binary("kubeadm"), "init", "phase", "certs", "all", f"--config={config}"]))
    for kubeconfig_phase in ("controller-manager", "super-admin"):
        checked(
            run(
                [binary("kubeadm"), "init", "phase", "kubeconfig", kubeconfig_phase, f"--config={config}",
                 f"--kubeconfig-dir={kubeconfig_dir}"]
            )
        )  # fmt: skip
    commands = {}
    for component in ("kube-apiserver", "kube-controller-manager"):
        phase = component.removeprefix("kube-")
        checked(
            run(
                [binary("kubeadm"), "init", "phase", "control-plane", phase, f"--config={config}", "--dry-run"],
                env={"KUBEADM_INIT_DRYRUN_DIR": str(manifests)},
            )
        )
        pod = yaml.safe_load((manifests / f"{component}.yaml").read_text())
        (container,) = pod["spec"]["containers"]
        command: list[str] = container["command"]
        assert command[0] == component, command
        # The manifest names kubeconfig files under /etc/kubernetes (kubeadm's fixed folder).
        commands[component] = [binary(component), *(master.relocate(arg) for arg in command[1:])]
    # kubeadm points the controller manager at this master's own API server (the advertise
    # address, which this machine does not have): the same server, at the test's address.
    kubeconfig = kubeconfig_dir / "controller-manager.conf"
    server = f"https://{_endpoint(config)}"
    write(kubeconfig, yaml.safe_dump(with_server(yaml.safe_load(kubeconfig.read_text()), lambda _: server)))
    return commands


def _endpoint(config: Path) -> str:
    (cluster,) = (d for d in yaml.safe_load_all(config.read_text()) if d["kind"] == "ClusterConfiguration")
    endpoint: str = cluster["controlPlaneEndpoint"]
    return endpoint


def _point_webhooks_at(master: NodeRoot, webhook: FakeKeystone) -> None:
    port = urlsplit(webhook.url).port or 443
    for node_path in (AUTHN_WEBHOOK_PATH, AUTHZ_WEBHOOK_PATH):
        kubeconfig = yaml.safe_load(master.read(node_path))
        write(master.path(node_path), yaml.safe_dump(with_server(kubeconfig, lambda url: with_port(url, port))))


@contextmanager
def control_plane(root: Path) -> Iterator[ControlPlane]:
    """Start etcd, the fake Keystone and kube-apiserver as the plan configures them; stop them afterwards."""
    plan = bootstrap_plan(STACK)
    outputs = plan.plan.outputs
    master = install_user_data(plan.texts("masterUserData")[0], root / "master-0")
    processes: list[subprocess.Popen[bytes]] = []
    keystone_cert = write(root / "keystone" / "tls.crt", outputs["keystoneAuthCertPem"])
    keystone_key = write(root / "keystone" / "tls.key", plain(outputs["keystoneAuthKeyPem"], show_secrets=True))
    try:
        with fake_keystone(keystone_cert, keystone_key) as keystone:
            etcd_url, etcd_log = _start_etcd(plan, root, processes)
            pki = master.path(SHARED_PKI_DIR)
            etcd_tls = (
                str(pki / "etcd/ca.crt"),
                str(pki / "apiserver-etcd-client.crt"),
                str(pki / "apiserver-etcd-client.key"),
            )
            port, controller_manager_port = free_ports(2)
            config = _local_kubeadm_config(master, port, etcd_url, controller_manager_port)
            copy_shared_pki(master)
            commands = _component_commands(master, config)
            _point_webhooks_at(master, keystone)

            ca_file = master.path(KUBERNETES_PKI_DIR) / "ca.crt"
            ca_key = master.path(KUBERNETES_PKI_DIR) / "ca.key"
            admin_pem = issued_today(outputs["adminCertPem"], ca_file.read_text(), ca_key.read_text())
            admin_cert = write(root / "admin.crt", admin_pem)
            admin_key = write(root / "admin.key", _admin_key(plan))
            admin_kubeconfig = _with_client_certificate(
                yaml.safe_load(plain(outputs["adminKubeconfig"], show_secrets=True)), admin_pem
            )
            admin_conf = write(
                root / "admin.conf",
                yaml.safe_dump(with_server(admin_kubeconfig, lambda _: f"https://127.0.0.1:{port}")),
            )
            cp = ControlPlane(
                plan=plan,
                root=root,
                master=master,
                port=port,
                ca_file=ca_file,
                admin_cert=(str(admin_cert), str(admin_key)),
                super_admin_cert=_client_files(master.path("/etc/kubernetes/super-admin.conf"), root / "super-admin"),
                admin_kubeconfig=admin_conf,
                kubeadm_config=config,
                apiserver_command=commands["kube-apiserver"],
                keystone=keystone,
                etcd_client_url=etcd_url,
                etcd_client_tls=etcd_tls,
            )
            _wait("etcd", lambda: cp.etcdctl("endpoint", "health").returncode == 0, processes, [etcd_log], 30)

            apiserver_log = root / "kube-apiserver.log"
            with apiserver_log.open("wb") as out:
                processes.append(subprocess.Popen(commands["kube-apiserver"], stdout=out, stderr=subprocess.STDOUT))

            def ready() -> bool:
                try:
                    return cp.request("GET", "/readyz", admin=True, timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            _wait("kube-apiserver", ready, processes, [apiserver_log, etcd_log], 90)
            ensure_admin_cluster_role_binding(cp)

            controller_manager_log = root / "kube-controller-manager.log"
            with controller_manager_log.open("wb") as out:
                processes.append(
                    subprocess.Popen(commands["kube-controller-manager"], stdout=out, stderr=subprocess.STDOUT)
                )

            def controller_manager_healthy() -> bool:
                try:  # serves a self-signed certificate of its own; only its health is asked
                    url = f"https://127.0.0.1:{controller_manager_port}/healthz"
                    return requests.get(url, verify=False, timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            _wait("kube-controller-manager", controller_manager_healthy, processes, [controller_manager_log], 60)
            yield cp
    finally:
        # One by one, last started first: the API server shuts down cleanly only while etcd is up.
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


ADMIN_BINDING_PATH = f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{ADMIN_CLUSTER_ROLE_BINDING}"


def admin_cluster_role_binding() -> dict[str, Any]:
    """kubeadm's binding, as EnsureAdminClusterRoleBindingImpl writes it (group and binding share the name)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": ADMIN_CLUSTER_ROLE_BINDING},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": ADMIN_CLUSTER_ROLE_BINDING}],
    }


def ensure_admin_cluster_role_binding(cp: ControlPlane) -> None:
    """What `kubeadm init` does once the API answers: create kubeadm:cluster-admins as the super admin."""
    path = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    created = cp.request("POST", path, super_admin=True, body=admin_cluster_role_binding())
    assert created.status_code in (201, 409), created.text


def issued_today(cert_pem: str, ca_pem: str, ca_key_pem: str) -> str:
    """The certificate as pulumi-tls would issue it now: the emulation's clock starts at TLS_NOT_BEFORE.

    The offline pulumi-tls starts every certificate at a fixed date so plans are
    reproducible; a short-lived one (the admin's year) has run out by then on a real
    clock. Same subject, key, extensions and lifetime, from the same CA, starting now.
    Certificates still valid are returned unchanged.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        return cert_pem
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(ca.subject)
        .public_key(cert.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + (cert.not_valid_after_utc - cert.not_valid_before_utc))
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _with_client_certificate(kubeconfig: dict[str, Any], cert_pem: str) -> dict[str, Any]:
    import base64

    (user,) = kubeconfig["users"]
    user["user"]["client-certificate-data"] = base64.b64encode(cert_pem.encode()).decode()
    return kubeconfig


def _client_files(kubeconfig_path: Path, prefix: Path) -> tuple[str, str]:
    """The client certificate and key of a kubeconfig, written to files for requests."""
    import base64

    (user,) = yaml.safe_load(kubeconfig_path.read_text())["users"]
    cert = write(prefix.with_suffix(".crt"), base64.b64decode(user["user"]["client-certificate-data"]).decode())
    key = write(prefix.with_suffix(".key"), base64.b64decode(user["user"]["client-key-data"]).decode())
    return str(cert), str(key)


def _admin_key(plan: BootstrapPlan) -> str:
    """The admin client key, from the admin kubeconfig the plan generated."""
    import base64

    kubeconfig = yaml.safe_load(plain(plan.plan.outputs["adminKubeconfig"], show_secrets=True))
    (user,) = kubeconfig["users"]
    return base64.b64decode(user["user"]["client-key-data"]).decode()
