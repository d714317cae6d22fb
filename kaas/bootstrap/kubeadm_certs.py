"""The ``kube-system/kubeadm-certs`` Secret, written by the program for the updates that build masters.

``kubeadm init --upload-certs`` on the first master stores the shared control-plane
certificates in this Secret, and kubeadm deletes it two hours later (an owner reference to
a bootstrap token with a 2 h TTL). Every master built afterwards (a patch upgrade rebuilding
masters in place, ``kaas roll --heal``, an added master) runs ``kubeadm join --control-plane``
with ``controlPlane.certificateKey`` and downloads the certificates from it; its user data
holds no CA key. So an update that builds a master (not the first deployment) declares the
Secret itself, in kubeadm's format, and the joining masters' instances depend on it; an
update that builds none does not declare it and Pulumi deletes it: the encrypted CA keys
are in the cluster only while a master is being built.

kubeadm's format (kubernetes v1.34.2, the pinned version):

- ``cmd/kubeadm/app/phases/copycerts/copycerts.go``: ``UploadCerts`` writes the Secret
  ``kubeadm-certs`` in ``kube-system`` (``constants.KubeadmCertsSecret``); ``certsToTransfer``
  names the files: ``ca.crt``, ``ca.key``, ``front-proxy-ca.crt``, ``front-proxy-ca.key``,
  ``sa.pub``, ``sa.key`` and, with an external etcd (ours), ``external-etcd-ca.crt``,
  ``external-etcd.crt``, ``external-etcd.key`` (the ClusterConfiguration's
  ``etcd.external`` caFile, certFile, keyFile); each data key is the name with ``/`` replaced
  by ``-`` (``certOrKeyNameToSecretName``), each value the file encrypted with the key.
  ``DownloadCerts`` decrypts every entry and writes each file to its path.
- ``cmd/kubeadm/app/util/crypto/crypto.go``: ``EncryptBytes`` is AES-GCM with the 32-byte
  key (the hex certificate key decoded), the 12-byte nonce prepended to the sealed bytes
  (``gcm.Seal(nonce, nonce, data, nil)``), no additional data; ``DecryptBytes`` splits them
  the same way.

kubeadm draws the nonce at random. Offline plans are compared byte for byte, so here it is
derived: HMAC-SHA256(key, file name + NUL + plaintext), the first 12 bytes. The same nonce
comes back only for the same file and the same plaintext, which then encrypts to the same
bytes (GCM's nonce-reuse weakness needs two different plaintexts under one nonce).

The same updates also write the ``ClusterConfiguration`` of ``kube-system/kubeadm-config``.
``kubeadm join`` builds a joining master's static pods from the cluster's copy, not from
anything in the node's JoinConfiguration (``cmd/kubeadm/app/cmd/join.go``
``fetchInitConfigurationFromJoinConfiguration`` -> ``configutil.FetchInitConfigurationFromCluster``
reads that ConfigMap; the control-plane phase renders ``kubernetesVersion``, the components'
extraArgs and volumes from it). ``kubeadm init`` uploads it once, so without this a master
rebuilt for a patch upgrade would start the OLD version's kube-apiserver image, and one
rebuilt after a template change the old flags. The program writes the ClusterConfiguration
it renders for the joining masters' revision (the ``kubeadm upgrade apply`` step of a
kubeadm upgrade: the first upgraded master moves the cluster's configuration). The
ConfigMap is kubeadm's (it carries its other keys and is read by every ``kubeadm join``):
only that key is applied (server-side apply, forced over kubeadm's field manager), and the
resource is retained when an update no longer declares it, so Pulumi never deletes it.

The Role and RoleBinding ``kubeadm:kubeadm-certs`` that let the bootstrap-token group
``system:bootstrappers:kubeadm:default-node-token`` get this Secret are created by the same
``UploadCerts`` (``createRBAC``), with no owner reference: they outlive the Secret and stay
from the first master's ``kubeadm init --upload-certs``. The program does not declare them
(a Pulumi-owned copy would be deleted with the Secret, and ``kubeadm init phase upload-certs``
run by hand needs them too).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kaas.bootstrap.userdata.kubeadm import ControlPlaneCertificates, kubelet_configuration
from kaas.bootstrap.userdata.yamltext import safe_dump
from kaas.cluster_plan import ClusterPlan, PlannedNode
from kaas.readiness import ApiReadiness
from kaas.rollout import Tier

SECRET_NAME = "kubeadm-certs"  # constants.KubeadmCertsSecret
SECRET_NAMESPACE = "kube-system"
CONFIG_MAP_NAME = "kubeadm-config"  # constants.KubeadmConfigConfigMap
CLUSTER_CONFIGURATION_KEY = "ClusterConfiguration"  # constants.ClusterConfigurationConfigMapKey
KUBELET_CONFIG_MAP_NAME = "kubelet-config"  # constants.KubeletBaseConfigurationConfigMap
KUBELET_CONFIGURATION_KEY = "kubelet"  # constants.KubeletBaseConfigurationConfigMapKey
CERTIFICATE_KEY_BYTES = 32  # constants.CertificateKeySize
NONCE_BYTES = 12  # cipher.NewGCM's standard nonce size

# copycerts.go certsToTransfer with cfg.Etcd.External set: kubeadm's file name -> ours.
# (certOrKeyNameToSecretName leaves these names as they are: none has a "/".)
CERTS_TO_TRANSFER: dict[str, str] = {
    "ca.crt": "ca.crt",
    "ca.key": "ca.key",
    "front-proxy-ca.crt": "front-proxy-ca.crt",
    "front-proxy-ca.key": "front-proxy-ca.key",
    "sa.pub": "sa.pub",
    "sa.key": "sa.key",
    "external-etcd-ca.crt": "etcd/ca.crt",
    "external-etcd.crt": "apiserver-etcd-client.crt",
    "external-etcd.key": "apiserver-etcd-client.key",
}


def secret_data_key(name: str) -> str:
    """copycerts.go certOrKeyNameToSecretName: ``/`` -> ``-``."""
    return name.replace("/", "-")


def _key(certificate_key: str) -> bytes:
    key = bytes.fromhex(certificate_key)
    if len(key) != CERTIFICATE_KEY_BYTES:
        raise ValueError(f"the certificate key must be {CERTIFICATE_KEY_BYTES} bytes (hex), got {len(key)}")
    return key


def nonce(certificate_key: str, name: str, plaintext: bytes) -> bytes:
    """The GCM nonce of one file: HMAC-SHA256(key, name NUL plaintext), truncated (module docstring)."""
    return hmac.new(_key(certificate_key), name.encode() + b"\0" + plaintext, hashlib.sha256).digest()[:NONCE_BYTES]


def encrypt(certificate_key: str, name: str, plaintext: bytes) -> bytes:
    """crypto.go EncryptBytes with a derived nonce: nonce || AES-GCM(key, nonce, plaintext)."""
    iv = nonce(certificate_key, name, plaintext)
    return iv + AESGCM(_key(certificate_key)).encrypt(iv, plaintext, None)


def decrypt(certificate_key: str, data: bytes) -> bytes:
    """crypto.go DecryptBytes (for the tests and for checking a live Secret)."""
    return AESGCM(_key(certificate_key)).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)


def secret_data(certificates: ControlPlaneCertificates, certificate_key: str) -> dict[str, str]:
    """The Secret's ``data``: data key -> base64 of the encrypted file, in kubeadm's key order."""
    files = certificates.files()
    return {
        secret_data_key(name): base64.b64encode(encrypt(certificate_key, name, files[ours].encode())).decode()
        for name, ours in sorted(CERTS_TO_TRANSFER.items())
    }


def secret_manifest(certificates: ControlPlaneCertificates, certificate_key: str) -> dict[str, Any]:
    """The Secret as kubeadm's UploadCerts writes it (less the owner reference to its 2 h token)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": SECRET_NAMESPACE},
        "type": "Opaque",
        "data": secret_data(certificates, certificate_key),
    }


def joining_masters(plan: ClusterPlan) -> tuple[PlannedNode, ...]:
    """The masters this update builds that run ``kubeadm join --control-plane``: none in the first deployment
    (its first master runs ``kubeadm init --upload-certs``, which uploads the certificates itself)."""
    if plan.first_deploy:
        return ()
    return tuple(n for n in plan.tier(Tier.MASTER) if n.joining)


GATE_SUFFIX = "wait-for-api-before-join"  # not the cluster's gate (kaas.offline.durations.READINESS_GATE_SUFFIX)


class KubeadmCerts(pulumi.ComponentResource):
    """What ``kubeadm join --control-plane`` reads from the cluster, for the masters this update builds
    (declared only in such an update): the ``kube-system/kubeadm-certs`` Secret, the
    ClusterConfiguration of ``kube-system/kubeadm-config`` and the ``kubelet`` key of
    ``kube-system/kubelet-config``, the KubeletConfiguration the first master's user data holds.
    Every ``kubeadm join`` (workers' too) writes the node's /var/lib/kubelet/config.yaml from the
    cluster's copy (``cmd/kubeadm/app/phases/kubelet/config.go`` ``DownloadConfig``), which
    ``kubeadm init`` uploads once. A change to it is a template change, so a ``BOOTSTRAP_TEMPLATE``
    bump (tests/test_template_revision.py), and the rollout rebuilds the masters before any worker:
    the first master step writes it, and the workers built after it join with it. Both
    ConfigMaps are kubeadm's: only that key is applied, forced, and retained when an update no
    longer declares it.

    The cluster's readiness gate and the services' Kubernetes provider wait for every master
    instance, the joining ones too, and those wait for these objects: so the component has its own
    gate (the same check, run when this update creates it: the serving masters answer through the
    load balancer) and its own provider (the same admin kubeconfig).
    """

    secret: k8s.core.v1.Secret
    cluster_configuration: k8s.core.v1.ConfigMap
    kubelet_configuration: k8s.core.v1.ConfigMap

    def __init__(
        self,
        name: str,
        *,
        certificates: pulumi.Output[ControlPlaneCertificates],
        cluster_configuration: pulumi.Input[str],
        certificate_key: pulumi.Output[str],
        kubeconfig: pulumi.Output[str],
        api_url: str,
        connect_to: pulumi.Input[str],
        ca_cert_pem: pulumi.Input[str],
        client_cert_pem: pulumi.Input[str],
        client_key_pem: pulumi.Input[str],
        authorised_path: str,
        after: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:bootstrap:KubeadmCerts", f"{name}-kubeadm-certs", None, opts)
        gate = ApiReadiness(
            f"{name}-kubeadm-certs",
            api_url=api_url,
            connect_to=connect_to,
            ca_cert_pem=ca_cert_pem,
            client_cert_pem=client_cert_pem,
            client_key_pem=client_key_pem,
            authorised_path=authorised_path,
            after=after,
            command_suffix=GATE_SUFFIX,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._provider = k8s.Provider(
            f"{name}-kubeadm-certs-k8s",
            kubeconfig=kubeconfig,  # a secret (ClusterBootstrap.admin_kubeconfig)
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[gate]),
        )
        encrypted: pulumi.Output[dict[str, str]] = pulumi.Output.all(
            certificates=certificates, key=certificate_key
        ).apply(lambda v: secret_data(v["certificates"], v["key"]))
        data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(encrypted)
        self.secret = k8s.core.v1.Secret(
            f"{name}-kubeadm-certs",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SECRET_NAME,
                namespace=SECRET_NAMESPACE,
                # A kubeadm-certs kubeadm uploaded (within its two hours, or by hand) is taken over.
                annotations={"pulumi.com/patchForce": "true"},
            ),
            type="Opaque",
            data=data,
            opts=pulumi.ResourceOptions(parent=self, provider=self._provider, additional_secret_outputs=["data"]),
        )
        self.cluster_configuration = self._kubeadm_key(
            f"{name}-kubeadm-config", CONFIG_MAP_NAME, CLUSTER_CONFIGURATION_KEY, cluster_configuration
        )
        self.kubelet_configuration = self._kubeadm_key(
            f"{name}-kubelet-config",
            KUBELET_CONFIG_MAP_NAME,
            KUBELET_CONFIGURATION_KEY,
            safe_dump(kubelet_configuration()),
        )
        self.register_outputs({})

    def _kubeadm_key(self, resource: str, config_map: str, key: str, text: pulumi.Input[str]) -> k8s.core.v1.ConfigMap:
        """One key of one of kubeadm's ConfigMaps: forced over kubeadm's field manager, never deleted."""
        return k8s.core.v1.ConfigMap(
            resource,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=config_map, namespace=SECRET_NAMESPACE, annotations={"pulumi.com/patchForce": "true"}
            ),
            data={key: text},
            opts=pulumi.ResourceOptions(parent=self, provider=self._provider, retain_on_delete=True),
        )

    @property
    def join_prerequisites(self) -> list[pulumi.Resource]:
        """What a joining master's instance waits for."""
        return [self.secret, self.cluster_configuration, self.kubelet_configuration]
