"""Shared test helpers: specs built in memory, plans through the offline engine."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from kaas.offline.planfile import SECRET_MASK
from kaas.spec import ClusterSpec, parse_spec
from kaas.spec.loader import REPO_ROOT

MINIMAL: dict[str, Any] = {
    "name": "t1",
    "domain": "k8s.example.com",
    "openstack": {
        "cloud": "test",
        "auth_url": "https://keystone.test.example:5000/v3",
        "s3_endpoint": "https://swift.test.example:8080",
        "external_network": "public",
        "availability_zones": ["az1", "az2", "az3"],
    },
    "identity": {"initial_admin_user": "admin"},
    # Production specs need an ACME contact Let's Encrypt accepts (kaas.spec.rules.production_acme_contact).
    "services": {"ingress": {"acme_email": "certificates@t1-operations.net"}},
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def spec_data(**override: Any) -> dict[str, Any]:
    return merge(MINIMAL, override)


def make_spec(**override: Any) -> ClusterSpec:
    return parse_spec(spec_data(**override), "<test>")


def make_ca_pem(common_name: str = "test-ca") -> str:
    """A real self-signed EC CA certificate (PEM), built independently of the code under test."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


_CA_PEM: list[str] = []


def make_facts(**override: Any) -> Any:
    """Run-time facts as a deployed cluster would report them (distinct, recognisable values)."""
    from kaas.outputs import ClusterFacts

    if not _CA_PEM:
        _CA_PEM.append(make_ca_pem())
    values: dict[str, Any] = {
        "api_floating_ip": "198.51.100.7",
        "ingress_floating_ip": "198.51.100.8",
        "admin_role_id": "0123456789abcdef0123456789abcdef",
        "network_id": "net-1111",
        "subnet_id": "subnet-2222",
        "dns_zone_name": "t1.k8s.example.com.",
        "dns_zone_id": "zone-3333",
        "api_load_balancer_id": "lb-4444",
        "server_group_ids": {"etcd": "sg-etcd", "masters": "sg-masters", "workers": "sg-workers"},
        "ca_certificate": _CA_PEM[0],
    }
    values.update(override)
    return ClusterFacts(**values)


def make_plan(spec: Any, recorded: Any = None) -> Any:
    """The cluster plan of ``spec`` (a new cluster unless ``recorded`` node revisions are given)."""
    from kaas.cluster_plan import make_cluster_plan

    return make_cluster_plan(spec, recorded)


def make_outputs(facts: dict[str, Any] | None = None, **spec_override: Any) -> Any:
    from kaas.outputs import build_stack_outputs

    return build_stack_outputs(make_plan(make_spec(**spec_override)), make_facts(**(facts or {})))


def pulumi_output_json(outputs: Any) -> dict[str, Any]:
    """``pulumi stack output --json`` of a stack exporting ``outputs``: one key per field, secrets masked."""
    data: dict[str, Any] = outputs.model_dump(mode="json")
    data["adminKubeconfig"] = SECRET_MASK
    return data


# --- the CLI in a throwaway git repository -------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


def kaas_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m kaas ARGS`` run in ``repo``, as an operator types it."""
    return subprocess.run(
        [sys.executable, "-m", "kaas", *args], cwd=repo, capture_output=True, text=True, timeout=300, check=False
    )


def checkout_as_repo(parent: Path, branch: str) -> Path:
    """This checkout's files as a one-commit repository on ``main``, with ``branch`` checked out from it.

    Tool caches (.cache holds the built control plane and helm, hundreds of MB) and virtualenvs are
    left out: the CLI needs neither."""
    path = parent / "kaas"
    ignore = shutil.ignore_patterns(".git", ".venv", ".cache", "__pycache__", ".*_cache", ".hypothesis", "node_modules")
    shutil.copytree(REPO_ROOT, path, ignore=ignore)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "base")
    git(path, "checkout", "-q", "-b", branch)
    return path


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (all held open together, so never the same one twice)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def promql_selectors(node: Any) -> list[Any]:
    """Every vector selector in an expression parsed by ``promql_parser.parse``."""
    if isinstance(node, promql_parser.VectorSelector):
        return [node]
    found = []
    for attribute in ("lhs", "rhs", "expr", "args"):
        child = getattr(node, attribute, None)
        for item in child if isinstance(child, list) else [child]:
            if item is not None and not isinstance(item, (str, int, float)):
                found += promql_selectors(item)
    return found


def join_prerequisites(cluster: str) -> set[tuple[str, str]]:
    """(type, name) of what an update that builds a master declares for its ``kubeadm join``
    (kaas.bootstrap.kubeadm_certs.KubeadmCerts): the component, its gate and provider, the
    kubeadm-certs Secret and kubeadm's two ConfigMaps."""
    return {
        ("kaas:bootstrap:KubeadmCerts", f"{cluster}-kubeadm-certs"),
        ("kaas:index:ApiReadiness", f"{cluster}-kubeadm-certs"),
        ("command:local:Command", f"{cluster}-kubeadm-certs-wait-for-api-before-join"),
        ("pulumi:providers:kubernetes", f"{cluster}-kubeadm-certs-k8s"),
        ("kubernetes:core/v1:Secret", f"{cluster}-kubeadm-certs"),
        ("kubernetes:core/v1:ConfigMap", f"{cluster}-kubeadm-config"),
        ("kubernetes:core/v1:ConfigMap", f"{cluster}-kubelet-config"),
    }


def cloud_config_files(document: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A node's cloud-config ``write_files``, by path."""
    return {f["path"]: f for f in document["write_files"]}


def cloud_config_kubeadm(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The kubeadm documents of a node's cloud-config (its kubeadm.yaml), by kind."""
    from kaas.bootstrap.userdata.kubeadm import KUBEADM_CONFIG_PATH

    content = cloud_config_files(document)[KUBEADM_CONFIG_PATH]["content"]
    return {d["kind"]: d for d in yaml.safe_load_all(content)}
