"""Where a handover's outputs come from: a ``pulumi stack output --json`` file, or the offline plan.

A plan is a preview: its floating IPs and IDs are the mocks' stand-ins. Once
``KaasCluster`` exports the typed outputs (``outputsSchema`` among the plan's
outputs) they are read as they are; until then the facts are derived from the
plan where it has them (network and subnet IDs) and otherwise the same way the
mocks compute them (stable IDs from names, TEST-NET-3 floating IPs), and the CA is
a deterministic stand-in certificate.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaas.offline.engine import Plan
from kaas.offline.mocks import floating_address, stable_id
from kaas.offline.render import plain
from kaas.outputs import SCHEMA, TIERS, ClusterFacts, OutputsError, StackOutputs, build_stack_outputs, load_outputs
from kaas.spec import ClusterSpec, load_stack_spec


@dataclass(frozen=True)
class HandoverSource:
    """Validated outputs and whether they are a preview from an offline plan."""

    outputs: StackOutputs
    preview: bool
    origin: str


def preview_ca_certificate(cluster: str) -> str:
    """A deterministic self-signed Ed25519 CA standing in for the cluster's CA in previews."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.x509.oid import NameOID

    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"kaas-preview-ca/{cluster}".encode()).digest())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster} PREVIEW CA (offline plan, not the cluster's)")]
    )
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(hashlib.sha256(cluster.encode()).digest()[:8], "big"))
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def preview_facts(spec: ClusterSpec, plan: Plan) -> ClusterFacts:
    """Facts for a preview: from the plan's outputs where present, else as the mocks would compute them."""
    out = plain(plan.outputs)

    def fact(key: str, default: str) -> str:
        value = out.get(key)
        return value if isinstance(value, str) and value != "[secret]" else default

    zone = f"{spec.cluster_domain}."
    return ClusterFacts(
        kubernetes_version=spec.versions.kubernetes,
        api_floating_ip=fact("apiFloatingIp", floating_address(f"{spec.name}-api")),
        ingress_floating_ip=fact("ingressFloatingIp", floating_address(f"{spec.name}-ingress"))
        if spec.services.ingress.enabled
        else None,
        admin_role_id=fact("adminRoleId", stable_id("role", spec.admin_role_name).replace("-", "")),
        network_id=fact("networkId", stable_id("network", spec.name)),
        subnet_id=fact("subnetId", stable_id("subnet", spec.name)),
        dns_zone_name=zone if spec.dns.enabled else None,
        dns_zone_id=(spec.dns.existing_zone_id or fact("dnsZoneId", stable_id("zone", zone)))
        if spec.dns.enabled
        else None,
        api_load_balancer_id=fact("apiLoadBalancerId", stable_id("loadbalancer", f"{spec.name}-api")),
        server_group_ids={tier: stable_id("servergroup", f"{spec.name}-{tier}") for tier in TIERS},
        ca_certificate=preview_ca_certificate(spec.name),
    )


def handover_outputs(plan: Plan, spec: ClusterSpec | None = None) -> StackOutputs:
    """The typed outputs of an offline plan (the spec is only needed while the plan lacks them)."""
    exported = plain(plan.outputs)
    if exported.get("outputsSchema") == SCHEMA:
        return load_outputs(exported, f"offline plan of {plan.stack}")
    return build_stack_outputs(
        spec or load_stack_spec(plan.stack), preview_facts(spec or load_stack_spec(plan.stack), plan)
    )


def read_outputs_file(path: Path) -> StackOutputs:
    """Outputs from ``pulumi stack output --json > FILE`` (OutputsError naming what is wrong)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputsError(source, ["no such file"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise OutputsError(source, [f"cannot read: {err}"]) from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise OutputsError(
            source,
            [f"not JSON (line {err.lineno}, column {err.colno}: {err.msg}); expected `pulumi stack output --json`"],
        ) from None
    return load_outputs(data, source)


def check_matches_spec(outputs: StackOutputs, spec: ClusterSpec, source: str) -> None:
    """Outputs of another cluster than the stack's spec are an error, not a document about the wrong cluster."""
    if outputs.cluster_name != spec.name:
        raise OutputsError(
            source,
            [
                f"clusterName: the outputs are of cluster {outputs.cluster_name!r}, but the stack's spec is {spec.name!r}"
            ],
        )
