"""The cluster's PKI, generated with pulumi-tls on the operator's machine.

Four CAs (Kubernetes, etcd client traffic, etcd peer traffic, front proxy), the
service-account key pair, per etcd member a server/client certificate from the etcd
(client) CA and a peer certificate from the etcd peer CA, the API server's etcd client certificate,
the etcd client certificate of ``kaas roll``, the admin client certificate behind the
generated kubeconfig (kubeadm's ``kubeadm:cluster-admins``, one year, renewed by
``pulumi up``), the serving
certificate of k8s-keystone-auth, and the kubeadm bootstrap token. Every private
key and the token are secrets. Masters get the shared CA material in their user
data, so ``kubeadm join --control-plane`` needs no certificate upload.

All keys are ECDSA P-256 (kubeadm ``encryptionAlgorithm: ECDSA-P256`` matches).
CAs are valid for 10 years, the admin certificate 1 year, break-glass 8 hours, other
leaf certificates 5 years. The certificates in etcd members' and masters' user data are
named by their generation (:func:`generation_suffix`): raising the spec's
``security.etcd_certificates_generation`` issues new ones, and the rollout replaces the
nodes to carry them (a running server keeps what it was built with).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
import pulumi_tls as tls
from cryptography import x509
from cryptography.hazmat.primitives import serialization

CA_VALIDITY_HOURS = 10 * 365 * 24
LEAF_VALIDITY_HOURS = 5 * 365 * 24
CA_USES = ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"]
SERVER_USES = ["digital_signature", "key_encipherment", "server_auth"]
CLIENT_USES = ["digital_signature", "key_encipherment", "client_auth"]
PEER_USES = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]

BOOTSTRAP_TOKEN_PATTERN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
# Config ``kaas:joinToken`` (a secret): a bootstrap token valid now, for the nodes this
# ``pulumi up`` builds; ``kaas roll`` mints one per step that builds a master or worker
# (kaas.roll.tokens). Without it nodes get the stack's first token, which expires.
JOIN_TOKEN_CONFIG_KEY = "joinToken"
ADMIN_COMMON_NAME = "kubernetes-admin"
# The program's own credential (adminKubeconfig, the Kubernetes provider) is kubeadm's
# admin.conf identity, not its super-admin.conf one: group kubeadm:cluster-admins, which
# `kubeadm init` itself binds to cluster-admin with the ClusterRoleBinding of that name
# (kubernetes/kubernetes cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go,
# getKubeConfigSpecsBase and EnsureAdminClusterRoleBinding; the name is
# constants.ClusterAdminsGroupAndClusterRoleBinding, kubeadm >= 1.29). So the binding
# exists before the first Kubernetes resource (no chicken-and-egg; the API gate waits
# until it authorises this certificate), the certificate is subject to RBAC, and deleting
# the binding revokes it, which no system:masters certificate allows.
ADMIN_ORGANIZATION = "kubeadm:cluster-admins"
ADMIN_CLUSTER_ROLE_BINDING = ADMIN_ORGANIZATION
# One year, renewed by any `pulumi up` in its last 60 days (pulumi-tls early_renewal_hours:
# the resource then reports ready_for_renewal and is replaced; the key pair stays).
ADMIN_VALIDITY_HOURS = 365 * 24
ADMIN_EARLY_RENEWAL_HOURS = 60 * 24
# The break-glass credential: a client certificate for a group that an ordinary
# ClusterRoleBinding makes cluster-admin (deleting the binding revokes it, which no
# system:masters certificate allows), valid for hours. Every `pulumi up` after it
# expires issues a new one: minting it needs the stack's secrets, which is the glass.
BREAK_GLASS_COMMON_NAME = "kaas-break-glass"
BREAK_GLASS_VALIDITY_HOURS = 8
# ``kaas roll``'s own etcd client (member add/promote/remove, health): a certificate of its
# own rather than the API server's, so its use shows in etcd's logs under its name and the
# API servers' key never leaves the masters' user data. Stack outputs etcdClientCertPem/KeyPem.
ROLL_ETCD_CLIENT_COMMON_NAME = "kaas-roll"
ROLL_ETCD_OUTPUT_KEYS = ("etcdCaCertPem", "etcdClientCertPem", "etcdClientKeyPem")  # CA, certificate, key
# Five-year leaves outside user data renew on any `pulumi up` in their last 400 days (pulumi-tls
# early_renewal_hours): the program's own credential lasts one year and its expiry alert
# (KaasClientCertificateExpiresSoon) forces an update at least once a year, so one of those updates
# always falls inside the window, whatever the operators' cadence otherwise.
# - the roll's etcd client lives only in the stack outputs; the etcd CA trusts both.
ROLL_ETCD_CLIENT_EARLY_RENEWAL_HOURS = 400 * 24
# - k8s-keystone-auth's serving certificate is in a Secret (not in user data; the API servers' webhook
#   kubeconfigs trust the Kubernetes CA, not the leaf); its DaemonSet rolls to a new one
#   (kaas.services.objects.keystone_auth_daemon_set).
KEYSTONE_AUTH_EARLY_RENEWAL_HOURS = 400 * 24


def generation_suffix(generation: int) -> str:
    """The resource-name suffix of a certificate generation (kaas.rollout.model.Revision.certificates):
    none for the first, ``-g<N>`` after a renewal, so a re-issued certificate is a new resource
    beside the old one while nodes of both generations run."""
    if generation < 1:
        raise ValueError(f"certificate generation {generation} < 1")
    return "" if generation == 1 else f"-g{generation}"


def discovery_ca_hash(ca_cert_pem: str) -> str:
    """kubeadm's ``--discovery-token-ca-cert-hash``: sha256 of the CA's DER SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def bootstrap_token(token_id: str, token_secret: str) -> str:
    """Join the two random parts into a kubeadm bootstrap token, checking kubeadm's format."""
    token = f"{token_id}.{token_secret}"
    if not BOOTSTRAP_TOKEN_PATTERN.match(token):
        raise ValueError("bootstrap token parts must be [a-z0-9]{6} and [a-z0-9]{16}")
    return token


@dataclass(frozen=True)
class EtcdMemberName:
    """An etcd member as the PKI needs it: its name and fixed IP (both go into the SANs), and the
    generation of its certificates (its revision's ``certificates``)."""

    name: str
    ip: str
    generation: int = 1


@dataclass(frozen=True)
class CertKey:
    """A certificate and its private key (the key is a secret)."""

    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]


class ClusterPki(pulumi.ComponentResource):
    """Every certificate, key and token the cluster's nodes start with."""

    kubernetes_ca: CertKey
    etcd_ca: CertKey
    etcd_peer_ca: CertKey
    front_proxy_ca: CertKey
    service_account_private_key_pem: pulumi.Output[str]
    service_account_public_key_pem: pulumi.Output[str]
    etcd_members: list[CertKey]
    etcd_peers: list[CertKey]
    apiserver_etcd_clients: dict[int, CertKey]
    roll_etcd_client: CertKey
    admin_client: CertKey
    break_glass_client: CertKey
    keystone_auth: CertKey
    bootstrap_token: pulumi.Output[str]
    ca_cert_hash: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        etcd_members: Sequence[EtcdMemberName],
        opts: pulumi.ResourceOptions | None = None,
        break_glass_group: str = "kaas:break-glass",
        apiserver_client_generations: Sequence[int] = (1,),
    ) -> None:
        super().__init__("kaas:bootstrap:Pki", name, None, opts)
        self._name = name
        self.kubernetes_ca = self._ca("kubernetes-ca", "kubernetes")
        self.etcd_ca = self._ca("etcd-ca", "etcd-ca")
        # Peers trust only this CA: a client certificate (the API server's, the backup job's)
        # cannot join the cluster or speak raft, and a peer certificate is no client of etcd.
        self.etcd_peer_ca = self._ca("etcd-peer-ca", "etcd-peer-ca")
        self.front_proxy_ca = self._ca("front-proxy-ca", "front-proxy-ca")

        sa_key = self._key("service-account")
        self.service_account_private_key_pem = pulumi.Output.secret(sa_key.private_key_pem)
        self.service_account_public_key_pem = sa_key.public_key_pem

        # Per member: a client-port certificate from the etcd CA, a peer certificate from the peer CA.
        self.etcd_members = [self._etcd_member_leaf("etcd", self.etcd_ca, m) for m in etcd_members]
        self.etcd_peers = [self._etcd_member_leaf("etcd-peer", self.etcd_peer_ca, m) for m in etcd_members]
        # One per certificate generation a master runs (both while a renewal rolls the masters).
        self.apiserver_etcd_clients = {
            generation: self._leaf(
                f"apiserver-etcd-client{generation_suffix(generation)}",
                self.etcd_ca,
                common_name="kube-apiserver-etcd-client",
                uses=CLIENT_USES,
            )
            for generation in sorted(set(apiserver_client_generations))
        }
        self.roll_etcd_client = self._leaf(
            "roll-etcd-client",
            self.etcd_ca,
            common_name=ROLL_ETCD_CLIENT_COMMON_NAME,
            uses=CLIENT_USES,
            early_renewal_hours=ROLL_ETCD_CLIENT_EARLY_RENEWAL_HOURS,
        )
        self.admin_client = self._leaf(
            "admin",
            self.kubernetes_ca,
            common_name=ADMIN_COMMON_NAME,
            organization=ADMIN_ORGANIZATION,
            uses=CLIENT_USES,
            validity_hours=ADMIN_VALIDITY_HOURS,
            early_renewal_hours=ADMIN_EARLY_RENEWAL_HOURS,
        )
        self.break_glass_client = self._leaf(
            "break-glass",
            self.kubernetes_ca,
            common_name=BREAK_GLASS_COMMON_NAME,
            organization=break_glass_group,
            uses=CLIENT_USES,
            validity_hours=BREAK_GLASS_VALIDITY_HOURS,
        )
        # k8s-keystone-auth listens on 127.0.0.1 of every master (kaas.platform.KEYSTONE_AUTH_WEBHOOK_URL).
        self.keystone_auth = self._leaf(
            "keystone-auth",
            self.kubernetes_ca,
            common_name="k8s-keystone-auth",
            dns_names=["localhost"],
            ip_addresses=["127.0.0.1"],
            uses=SERVER_USES,
            early_renewal_hours=KEYSTONE_AUTH_EARLY_RENEWAL_HOURS,
        )

        token_id = random.RandomString(
            f"{name}-bootstrap-token-id",
            length=6,
            upper=False,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        token_secret = random.RandomString(
            f"{name}-bootstrap-token-secret",
            length=16,
            upper=False,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        self.bootstrap_token = pulumi.Output.secret(
            pulumi.Output.all(token_id.result, token_secret.result).apply(lambda parts: bootstrap_token(*parts))
        )
        self.ca_cert_hash = self.kubernetes_ca.cert_pem.apply(discovery_ca_hash)

        self.register_outputs(
            {
                "kubernetesCaCertPem": self.kubernetes_ca.cert_pem,
                "etcdCaCertPem": self.etcd_ca.cert_pem,
                "etcdPeerCaCertPem": self.etcd_peer_ca.cert_pem,
                "caCertHash": self.ca_cert_hash,
                "bootstrapToken": self.bootstrap_token,
            }
        )

    @property
    def apiserver_etcd_client(self) -> CertKey:
        """The API servers' etcd client certificate of the newest generation (the one masters built now get)."""
        return self.apiserver_etcd_clients[max(self.apiserver_etcd_clients)]

    def _key(self, purpose: str) -> tls.PrivateKey:
        return tls.PrivateKey(
            f"{self._name}-{purpose}",
            algorithm="ECDSA",
            ecdsa_curve="P256",
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _ca(self, purpose: str, common_name: str) -> CertKey:
        key = self._key(purpose)
        cert = tls.SelfSignedCert(
            f"{self._name}-{purpose}",
            private_key_pem=key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=common_name),
            is_ca_certificate=True,
            set_subject_key_id=True,
            validity_period_hours=CA_VALIDITY_HOURS,
            allowed_uses=CA_USES,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return CertKey(cert_pem=cert.cert_pem, key_pem=pulumi.Output.secret(key.private_key_pem))

    def _etcd_member_leaf(self, prefix: str, ca: CertKey, member: EtcdMemberName) -> CertKey:
        """A certificate etcd ``member`` serves and presents (server and client auth) on one of its ports."""
        # ``<prefix>[-g<N>]-<member>``: a node's resources end with its name (kaas.roll.steps.belongs_to).
        return self._leaf(
            f"{prefix}{generation_suffix(member.generation)}-{member.name}",
            ca,
            common_name=member.name,
            dns_names=[member.name, "localhost"],
            ip_addresses=[member.ip, "127.0.0.1"],
            uses=PEER_USES,
        )

    def _leaf(
        self,
        purpose: str,
        ca: CertKey,
        *,
        common_name: str,
        uses: list[str],
        organization: str | None = None,
        dns_names: list[str] | None = None,
        ip_addresses: list[str] | None = None,
        validity_hours: int = LEAF_VALIDITY_HOURS,
        early_renewal_hours: int | None = None,
    ) -> CertKey:
        key = self._key(purpose)
        request = tls.CertRequest(
            f"{self._name}-{purpose}",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=common_name, organization=organization),
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            opts=pulumi.ResourceOptions(parent=self),
        )
        cert = tls.LocallySignedCert(
            f"{self._name}-{purpose}",
            cert_request_pem=request.cert_request_pem,
            ca_cert_pem=ca.cert_pem,
            ca_private_key_pem=ca.key_pem,
            validity_period_hours=validity_hours,
            early_renewal_hours=early_renewal_hours,
            allowed_uses=uses,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return CertKey(cert_pem=cert.cert_pem, key_pem=pulumi.Output.secret(key.private_key_pem))
