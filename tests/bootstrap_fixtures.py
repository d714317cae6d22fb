"""Plans of the bootstrap layer under the offline engine, shared by the bootstrap tests."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pulumi

from kaas.bootstrap.component import ClusterBootstrap
from kaas.cluster_plan import make_cluster_plan
from kaas.offline import Plan, run_plan
from kaas.offline.planfile import plain
from kaas.spec import ClusterSpec, load_stack_spec
from tests.helpers import make_spec

BACKUP_ACCESS = "backup-access-key"
BACKUP_SECRET = "backup-secret-key"


@dataclass
class BootstrapPlan:
    spec: ClusterSpec
    plan: Plan

    def output(self, key: str) -> Any:
        return self.plan.outputs[key]

    def texts(self, key: str) -> list[str]:
        texts: list[str] = plain(self.plan.outputs[key], show_secrets=True)
        return texts


def bootstrap_program(spec: ClusterSpec) -> None:
    cluster_plan = make_cluster_plan(spec, None)
    bootstrap = ClusterBootstrap(
        spec.name,
        cluster_plan,
        api_endpoint_host=f"api.{spec.cluster_domain}",
        backup_access_key=pulumi.Output.secret(BACKUP_ACCESS),
        backup_secret_key=pulumi.Output.secret(BACKUP_SECRET),
    )
    pki = bootstrap.pki
    pulumi.export("etcdUserData", list(bootstrap.etcd_user_data.values()))
    pulumi.export("masterUserData", list(bootstrap.master_user_data.values()))
    pulumi.export("workerUserData", list(bootstrap.worker_user_data.values()))
    pulumi.export("adminKubeconfig", bootstrap.admin_kubeconfig)
    pulumi.export("breakGlassKubeconfig", bootstrap.break_glass_kubeconfig)
    pulumi.export("etcdEndpoints", bootstrap.etcd_endpoints)
    pulumi.export("kubernetesVersion", bootstrap.kubernetes_version)
    pulumi.export("caCertPem", bootstrap.ca_cert_pem)
    pulumi.export("keystoneAuthCertPem", bootstrap.keystone_auth_cert_pem)
    pulumi.export("keystoneAuthKeyPem", bootstrap.keystone_auth_key_pem)
    pulumi.export("caCertHash", pki.ca_cert_hash)
    pulumi.export("apiVip", cluster_plan.api_vip)
    pulumi.export("etcdBackupKey", bootstrap.etcd_backup_key)
    pulumi.export("bootstrapToken", pki.bootstrap_token)
    pulumi.export("secretsEncryptionKey", bootstrap.secrets_encryption_key)
    pulumi.export("certificateKey", bootstrap.certificate_key)
    pulumi.export("etcdCaKeyPem", pki.etcd_ca.key_pem)
    pulumi.export("etcdMemberCertPems", [m.cert_pem for m in pki.etcd_members])
    pulumi.export("etcdMemberKeyPems", [m.key_pem for m in pki.etcd_members])
    pulumi.export("etcdPeerCaCertPem", pki.etcd_peer_ca.cert_pem)
    pulumi.export("etcdPeerCertPems", [m.cert_pem for m in pki.etcd_peers])
    pulumi.export("etcdPeerKeyPems", [m.key_pem for m in pki.etcd_peers])
    for key, value in bootstrap.roll_etcd_credentials().items():  # as the program exports them (kaas roll's)
        pulumi.export(key, value)
    pulumi.export("apiserverEtcdClientCertPem", pki.apiserver_etcd_client.cert_pem)
    pulumi.export("apiserverEtcdClientKeyPem", pki.apiserver_etcd_client.key_pem)
    pulumi.export("adminCertPem", pki.admin_client.cert_pem)
    pulumi.export("serviceAccountKeyPem", pki.service_account_private_key_pem)
    pulumi.export("kubernetesCaKeyPem", pki.kubernetes_ca.key_pem)
    pulumi.export("frontProxyCaKeyPem", pki.front_proxy_ca.key_pem)


@functools.cache
def bootstrap_plan(stack: str) -> BootstrapPlan:
    """The bootstrap layer of ``stacks/<stack>.yaml`` (or the test's minimal spec for "minimal")."""
    spec = make_spec() if stack == "minimal" else load_stack_spec(stack)
    return BootstrapPlan(spec, run_plan(lambda: bootstrap_program(spec), stack=spec.name))
