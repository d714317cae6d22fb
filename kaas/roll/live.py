"""Wiring ``kaas roll`` to a live stack: where each node answers, the clients and their credentials.

- etcd: the client URL ``https://<address>:2379`` and peer URL ``https://<address>:2380``
  of each node's fixed address; the client certificate from the stack outputs
  (``etcdCaCertPem``, ``etcdClientCertPem``, ``etcdClientKeyPem``: the ``kaas-roll`` client
  certificate the program issues for this, its key a secret) or, overriding them,
  ``--etcd-certs DIR`` (``ca.crt``, ``client.crt``, ``client.key``);
- Kubernetes: the ``adminKubeconfig`` output; its server is the API through the load balancer;
- Octavia: a Keystone application credential from ``OS_AUTH_URL``,
  ``OS_APPLICATION_CREDENTIAL_ID`` and ``OS_APPLICATION_CREDENTIAL_SECRET``.
"""

from __future__ import annotations

import base64
import re
import ssl
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from kaas.bootstrap.pki import ROLL_ETCD_OUTPUT_KEYS
from kaas.openstack.addressing import node_address
from kaas.roll.etcd import EtcdCtl, EtcdTLS
from kaas.roll.gates import ClusterGates, Drainer, EtcdGate, KubernetesGate, Waiting
from kaas.roll.http import JsonClient
from kaas.roll.kube import KubeClient
from kaas.roll.octavia import OctaviaClient, keystone_session
from kaas.roll.runner import RollError
from kaas.rollout.model import ClusterState, Tier
from kaas.rollout.record import parse_record
from kaas.spec import ClusterSpec, parse_spec

ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ETCD_TLS_OUTPUTS = ROLL_ETCD_OUTPUT_KEYS


def node_ip(spec: ClusterSpec, name: str) -> str:
    """The fixed address of node ``<cluster>-<tier>-<index>``."""
    match = re.fullmatch(rf"{re.escape(spec.name)}-(etcd|master|worker)-(\d+)", name)
    if match is None:
        raise RollError(f"{name} is not a node of {spec.name}")
    return node_address(spec.networking.node_cidr, Tier(match.group(1)), int(match.group(2)))


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def etcd_tls(outputs: Mapping[str, Any], directory: Path, certs: Path | None) -> EtcdTLS:
    if certs is not None:
        return EtcdTLS(str(certs / "ca.crt"), str(certs / "client.crt"), str(certs / "client.key"))
    missing = [key for key in ETCD_TLS_OUTPUTS if not outputs.get(key)]
    if missing:
        raise RollError(f"the stack outputs have no {', '.join(missing)}: pass --etcd-certs DIR")
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = (str(outputs[k]) for k in ETCD_TLS_OUTPUTS)
    return EtcdTLS(
        _write(directory / "ca.crt", ca), _write(directory / "client.crt", cert), _write(directory / "client.key", key)
    )


def kube_client(kubeconfig: str, directory: Path) -> KubeClient:
    """A client from a kubeconfig's current (first) cluster and user: CA, client certificate or token."""
    config = yaml.safe_load(kubeconfig)
    cluster = config["clusters"][0]["cluster"]
    user = (config.get("users") or [{}])[0].get("user", {})
    context = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    headers: dict[str, str] = {}
    if user.get("client-certificate-data"):
        directory.mkdir(parents=True, exist_ok=True)
        cert = _write(directory / "kube-client.crt", base64.b64decode(user["client-certificate-data"]).decode())
        key = _write(directory / "kube-client.key", base64.b64decode(user["client-key-data"]).decode())
        context.load_cert_chain(cert, key)
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    return KubeClient(JsonClient(str(cluster["server"]), headers=headers, context=context))


def live_gates(
    spec: ClusterSpec,
    outputs: Mapping[str, Any],
    env: Mapping[str, str],
    directory: Path,
    etcd_certs: Path | None,
    drain_timeout: float,
    gate_timeout: float,
    log: Callable[[str], None],
) -> ClusterGates:
    def client_url(name: str) -> str:
        return f"https://{node_ip(spec, name)}:{ETCD_CLIENT_PORT}"

    def peer_url(name: str) -> str:
        return f"https://{node_ip(spec, name)}:{ETCD_PEER_PORT}"

    waiting = Waiting(timeout=gate_timeout)
    etcd = EtcdGate(EtcdCtl(etcd_tls(outputs, directory, etcd_certs)), client_url, peer_url, waiting, log)
    kube = kube_client(str(outputs["adminKubeconfig"]), directory)
    octavia = None
    if env.get("OS_AUTH_URL"):
        session = keystone_session(
            env["OS_AUTH_URL"],
            env.get("OS_APPLICATION_CREDENTIAL_ID", ""),
            env.get("OS_APPLICATION_CREDENTIAL_SECRET", ""),
        )
        octavia = OctaviaClient(session)
    nodes = KubernetesGate(
        kube,
        Drainer(kube, Waiting(timeout=drain_timeout)),
        waiting,
        api_via_lb=kube,
        octavia=octavia,
        pool=f"{spec.name}-api-masters",
        address=lambda name: node_ip(spec, name),
        log=log,
    )
    return ClusterGates(etcd, nodes)


def _git_show(repo: Path, rev: str, path: str) -> str | None:
    result = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def state_at_base(repo: Path, base: str, stack: str, spec: ClusterSpec) -> ClusterState | None:
    """The stack's nodes at ``base``: its rollout record there, else every node at the base spec's
    revision (a stack deployed before records existed). None: the stack does not exist at ``base``."""
    from kaas.rollout.record import desired_from_spec

    record = _git_show(repo, base, f"stacks/rollout/{stack}.yaml")
    if record is not None:
        return parse_record(yaml.safe_load(record), spec, f"{base[:12]}:stacks/rollout/{stack}.yaml")
    text = _git_show(repo, base, f"stacks/{stack}.yaml")
    if text is None:
        return None
    base_spec = parse_spec(yaml.safe_load(text), f"{base[:12]}:stacks/{stack}.yaml")
    return desired_from_spec(base_spec).initial_state()
