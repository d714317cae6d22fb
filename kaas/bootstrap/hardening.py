"""Node and API server hardening, as pure functions from typed inputs to documents.

- :func:`metadata_guard_ruleset`: an nftables table on every Kubernetes node that refuses
  pod traffic to the Nova metadata service. It hooks ``forward`` (pod packets are routed
  through the node; the node's own packets pass ``output``), so it works for every CNI the
  spec offers (Calico, Canal, flannel) without relying on the CNI's policy engine. A drop or
  reject in any base chain is final, whatever other tables (kube-proxy, Calico's iptables-nft
  rules) accept at the same hook ("Netfilter hooks" and "Configuring chains" on
  wiki.nftables.org: accept only ends the current base chain, drop is immediate).
  Host-network pods are the node as far as the network is concerned; Pod Security
  ``baseline`` keeps them out of customer namespaces.
- :func:`encryption_configuration`: Secrets encrypted at rest by the API servers
  (``apiserver.config.k8s.io/v1`` EncryptionConfiguration, secretbox, identity last).
- :func:`audit_policy` and :func:`audit_args`: the audit trail (``audit.k8s.io/v1``) and
  its log rotation.
- :func:`admission_configuration`: the cluster-wide Pod Security default.
- ``TLS_CIPHER_SUITES``: the TLS 1.2 suites the control plane and etcd accept.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

METADATA_IPV4 = "169.254.169.254"
METADATA_IPV6 = "fe80::a9fe:a9fe"
METADATA_GUARD_TABLE = "kaas_metadata_guard"
METADATA_GUARD_PATH = "/etc/kaas/metadata-guard.nft"
METADATA_GUARD_UNIT = "kaas-metadata-guard.service"

ENCRYPTION_KEY_BYTES = 32
ENCRYPTED_RESOURCES = ("secrets",)

AUDIT_LOG_DIR = "/var/log/kubernetes/audit"
AUDIT_LOG_PATH = f"{AUDIT_LOG_DIR}/audit.log"
AUDIT_LOG_MAX_AGE_DAYS = 7
AUDIT_LOG_MAX_BACKUPS = 10
AUDIT_LOG_MAX_SIZE_MB = 100

# Namespaces whose pods need host access (CNI agents, CSI node plugins, OCCM, kube-proxy):
# exempt from the Pod Security default. The platform namespace carries its own
# ``privileged`` label instead (kaas.services.objects.platform_namespace).
POD_SECURITY_EXEMPT_NAMESPACES = ("kube-system", "kube-flannel", "tigera-operator", "calico-system", "calico-apiserver")

# Control-plane and etcd TLS: 1.2 at least, and for 1.2 only ECDHE with AEAD ciphers (Go's
# names; TLS 1.3 suites are not configurable in Go). kubeadm's components and etcd use the list.
TLS_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)


# ---------------------------------------------------------------------------------
# Metadata service


def metadata_guard_ruleset(allowed_pod_cidrs: Sequence[str] = ()) -> str:
    """nftables script (``nft -f``): forwarded traffic to the metadata addresses is refused.

    TCP gets a reset (a pod sees "connection refused" at once, not a hang), anything else an
    ICMP administratively-prohibited. ``allowed_pod_cidrs`` (spec
    ``security.metadata_allowed_pod_cidrs``) are let through first. The script replaces only
    its own table, so it can be re-run and leaves kube-proxy's and the CNI's rules alone.
    """
    allow = "".join(
        f'    ip saddr {cidr} ip daddr {METADATA_IPV4} accept comment "spec allow-list"\n' for cidr in allowed_pod_cidrs
    )
    return (
        f"# Pods must not read the node's user data (bootstrap token, keys) from the metadata service.\n"
        f"table inet {METADATA_GUARD_TABLE}\n"
        f"delete table inet {METADATA_GUARD_TABLE}\n"
        f"table inet {METADATA_GUARD_TABLE} {{\n"
        f"  chain forward {{\n"
        f"    type filter hook forward priority filter - 10; policy accept;\n"
        f"{allow}"
        f"    ip daddr {METADATA_IPV4} meta l4proto tcp counter reject with tcp reset\n"
        f"    ip daddr {METADATA_IPV4} counter reject with icmpx type admin-prohibited\n"
        f"    ip6 daddr {METADATA_IPV6} meta l4proto tcp counter reject with tcp reset\n"
        f"    ip6 daddr {METADATA_IPV6} counter reject with icmpx type admin-prohibited\n"
        f"  }}\n"
        f"}}\n"
    )


def metadata_guard_unit() -> str:
    """A oneshot unit loading the table at every boot, before the kubelet starts pods."""
    return (
        "[Unit]\n"
        "Description=kaas: refuse pod traffic to the metadata service\n"
        "DefaultDependencies=no\n"
        "After=local-fs.target\n"
        "Before=network-pre.target kubelet.service containerd.service\n"
        "Wants=network-pre.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart=/usr/sbin/nft -f {METADATA_GUARD_PATH}\n"
        f"ExecStop=/usr/sbin/nft delete table inet {METADATA_GUARD_TABLE}\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


# ---------------------------------------------------------------------------------
# Encryption at rest


@dataclass(frozen=True)
class EncryptionKey:
    """One secretbox key: a name stored with every object it encrypted, and 32 bytes in base64."""

    name: str
    secret_b64: str

    def __post_init__(self) -> None:
        try:
            raw = base64.b64decode(self.secret_b64, validate=True)
        except binascii.Error:
            raise ValueError(f"encryption key {self.name!r} is not base64") from None
        if len(raw) != ENCRYPTION_KEY_BYTES:
            raise ValueError(f"encryption key {self.name!r} has {len(raw)} bytes; secretbox needs 32")


def encryption_configuration(keys: Sequence[EncryptionKey]) -> dict[str, Any]:
    """Secrets encrypted with secretbox (XSalsa20-Poly1305); identity last to read unencrypted data.

    The first key encrypts every write; all keys decrypt. Rotation (docs/architecture.md,
    Security) is a rollout: add the new key second, roll the masters; move it first, roll;
    rewrite every Secret; drop the old key, roll. Identity stays last so Secrets written
    before encryption was switched on remain readable until rewritten.
    """
    if not keys:
        raise ValueError("at least one encryption key")
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": list(ENCRYPTED_RESOURCES),
                "providers": [
                    {"secretbox": {"keys": [{"name": k.name, "secret": k.secret_b64} for k in keys]}},
                    {"identity": {}},
                ],
            }
        ],
    }


# ---------------------------------------------------------------------------------
# Audit


def audit_policy() -> dict[str, Any]:
    """What the API servers record; the first matching rule decides.

    - nothing for health probes and Events (noise);
    - Secrets, ConfigMaps and TokenReviews at ``Metadata`` only: a ``Request`` level entry
      would copy the Secret's values (or a bearer token) into the log shipped to OpenSearch;
    - RBAC writes at ``Request`` (who granted what to whom);
    - everything else at ``Metadata``.
    """
    writes = ["create", "update", "patch", "delete", "deletecollection"]
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version"]},
            {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
            {"level": "None", "resources": [{"group": "events.k8s.io", "resources": ["events"]}]},
            {
                "level": "Metadata",
                "resources": [
                    {"group": "", "resources": ["secrets", "configmaps"]},
                    {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
                ],
            },
            {"level": "Request", "verbs": writes, "resources": [{"group": "rbac.authorization.k8s.io"}]},
            {"level": "Metadata"},
        ],
    }


def audit_args(policy_path: str) -> dict[str, str]:
    """kube-apiserver flags: the policy, the log file on the master and its rotation."""
    return {
        "audit-policy-file": policy_path,
        "audit-log-path": AUDIT_LOG_PATH,
        "audit-log-format": "json",
        "audit-log-maxage": str(AUDIT_LOG_MAX_AGE_DAYS),
        "audit-log-maxbackup": str(AUDIT_LOG_MAX_BACKUPS),
        "audit-log-maxsize": str(AUDIT_LOG_MAX_SIZE_MB),
    }


# ---------------------------------------------------------------------------------
# Pod Security


def admission_configuration(
    level: str, exempt_namespaces: Sequence[str] = POD_SECURITY_EXEMPT_NAMESPACES
) -> dict[str, Any]:
    """Pod Security for namespaces without their own labels: enforce, warn and audit at ``level``.

    Warning at a stricter level than enforced would flag every chart of the platform (a
    namespace's ``enforce`` label does not set its ``warn`` level) on every apply.
    """
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {
                "name": "PodSecurity",
                "configuration": {
                    "apiVersion": "pod-security.admission.config.k8s.io/v1",
                    "kind": "PodSecurityConfiguration",
                    "defaults": {
                        "enforce": level,
                        "enforce-version": "latest",
                        "audit": level,
                        "audit-version": "latest",
                        "warn": level,
                        "warn-version": "latest",
                    },
                    "exemptions": {
                        "usernames": [],
                        "runtimeClasses": [],
                        "namespaces": sorted(exempt_namespaces),
                    },
                },
            }
        ],
    }
