"""ClusterBootstrap: the PKI plus the user data of every node, as typed outputs.

The OpenStack layer passes ``etcd_user_data[name]`` / ``master_user_data[name]`` /
``worker_user_data[name]`` to the node of that name in the cluster plan. Each node's
user data is rendered at the node's own revision (its Kubernetes or etcd version), so
a node the rollout holds back is described as it runs. Each user data is a secret: it
carries private keys.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_random as random

from kaas import platform
from kaas.bootstrap.hardening import ENCRYPTION_KEY_BYTES, EncryptionKey
from kaas.bootstrap.pki import ROLL_ETCD_OUTPUT_KEYS, ClusterPki, EtcdMemberName
from kaas.bootstrap.userdata.etcd import (
    BackupTarget,
    EtcdMember,
    EtcdNodeInput,
    client_endpoints,
    render_etcd_user_data,
)
from kaas.bootstrap.userdata.kubeadm import (
    ControlPlaneCertificates,
    KubernetesCluster,
    KubernetesNode,
    cluster_configuration,
)
from kaas.bootstrap.userdata.kubeconfig import admin_kubeconfig
from kaas.bootstrap.userdata.nodes import render_master_user_data, render_worker_user_data
from kaas.bootstrap.userdata.yamltext import safe_dump
from kaas.cluster_plan import ClusterPlan, PlannedNode
from kaas.rollout import Action, Tier
from kaas.versions import parse_version


def _at_version(cluster: KubernetesCluster, node: PlannedNode) -> KubernetesCluster:
    return dataclasses.replace(cluster, kubernetes_version=node.revision.version)


def _worker_user_data(node: PlannedNode, cluster: KubernetesCluster) -> str:
    return render_worker_user_data(_at_version(cluster, node), KubernetesNode(node.name, node.fixed_ip))


ENCRYPTION_KEY_NAME = "key1"  # rotation adds key2 (docs/architecture.md, Security)


def _secret_random_id(name: str, parent: pulumi.Resource) -> random.RandomId:
    return random.RandomId(
        name,
        byte_length=ENCRYPTION_KEY_BYTES,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["b64Std", "b64Url", "hex", "dec"]),
    )


def api_server_url(api_endpoint_host: str) -> str:
    return f"https://{api_endpoint_host}:{platform.API_SERVER_PORT}"


class ClusterBootstrap(pulumi.ComponentResource):
    """PKI, bootstrap token and cloud-init user data for the etcd, master and worker tiers."""

    pki: ClusterPki
    etcd_user_data: dict[str, pulumi.Output[str]]
    master_user_data: dict[str, pulumi.Output[str]]
    worker_user_data: dict[str, pulumi.Output[str]]
    admin_kubeconfig: pulumi.Output[str]
    break_glass_kubeconfig: pulumi.Output[str]
    api_server_url: str
    etcd_endpoints: list[str]
    kubernetes_version: str
    ca_cert_pem: pulumi.Output[str]
    keystone_auth_cert_pem: pulumi.Output[str]
    keystone_auth_key_pem: pulumi.Output[str]
    secrets_encryption_key: pulumi.Output[str]
    certificate_key: pulumi.Output[str]
    control_plane_certificates: pulumi.Output[ControlPlaneCertificates]
    joining_cluster_configuration: pulumi.Output[str]
    etcd_backup_key: pulumi.Output[str]

    def roll_etcd_credentials(self) -> dict[str, pulumi.Output[str]]:
        """The stack outputs ``kaas roll`` reads for etcd (kaas.bootstrap.pki.ROLL_ETCD_OUTPUT_KEYS): the etcd CA,
        the ``kaas-roll`` client certificate, its key (a secret)."""
        ca, cert, key = ROLL_ETCD_OUTPUT_KEYS
        client = self.pki.roll_etcd_client
        return {ca: self.pki.etcd_ca.cert_pem, cert: client.cert_pem, key: pulumi.Output.secret(client.key_pem)}

    def __init__(
        self,
        name: str,
        plan: ClusterPlan,
        api_endpoint_host: str,
        backup_access_key: pulumi.Input[str],
        backup_secret_key: pulumi.Input[str],
        api_cert_sans: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
        join_token: pulumi.Output[str] | None = None,
    ) -> None:
        super().__init__("kaas:bootstrap:Bootstrap", name, None, opts)
        spec = plan.spec
        etcd_nodes = plan.tier(Tier.ETCD)
        masters = plan.tier(Tier.MASTER)
        self.pki = ClusterPki(
            name,
            [EtcdMemberName(m.name, m.fixed_ip, m.revision.certificates) for m in etcd_nodes],
            opts=pulumi.ResourceOptions(parent=self),
            break_glass_group=platform.break_glass_group(spec.provider_name),
            apiserver_client_generations=[m.revision.certificates for m in masters],
        )
        pki = self.pki
        # What the cluster runs once this step is applied: its oldest API server.
        self.kubernetes_version = plan.control_plane_version
        members = tuple(EtcdMember(m.name, m.fixed_ip) for m in plan.members(Tier.ETCD))
        self.etcd_endpoints = list(client_endpoints(members))
        self.api_server_url = api_server_url(api_endpoint_host)
        self.ca_cert_pem = pki.kubernetes_ca.cert_pem
        self.keystone_auth_cert_pem = pki.keystone_auth.cert_pem
        self.keystone_auth_key_pem = pki.keystone_auth.key_pem
        # The API servers' key for Secrets at rest (secretbox, 32 bytes, base64) and the
        # key that encrypts the control-plane certificates kubeadm uploads for the other masters.
        self.secrets_encryption_key = pulumi.Output.secret(
            _secret_random_id(f"{name}-secrets-encryption-key", pki).b64_std
        )
        self.certificate_key = pulumi.Output.secret(_secret_random_id(f"{name}-kubeadm-certificate-key", pki).hex)

        # Encrypts every etcd snapshot (scripts/etcd-backup). Protected: without it no backup can be read.
        backup_key = random.RandomPassword(
            f"{name}-etcd-backup-key",
            length=64,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True, additional_secret_outputs=["result"]),
        )
        self.etcd_backup_key = pulumi.Output.secret(backup_key.result)
        backup = pulumi.Output.all(
            access_key=backup_access_key, secret_key=backup_secret_key, encryption_key=self.etcd_backup_key
        ).apply(
            lambda keys: BackupTarget(
                endpoint=spec.openstack.s3_endpoint,
                bucket=spec.container_name("etcd_backups"),
                region=spec.etcd_backup.s3_region,
                access_key=keys["access_key"],
                secret_key=keys["secret_key"],
                retention_days=spec.etcd_backup.retention_days,
                interval_hours=spec.etcd_backup.interval_hours,
                encryption_key=keys["encryption_key"],
            )
        )
        # The lowest-index workers' addresses: adding workers never changes the etcd nodes' user data.
        workers = sorted(plan.tier(Tier.WORKER), key=lambda n: n.index)[: platform.ETCD_LOG_TARGETS]
        log_targets = tuple(n.fixed_ip for n in workers) if spec.services.logging.enabled else ()

        def etcd_user_data(node: PlannedNode, v: dict[str, Any]) -> str:
            member = EtcdMember(node.name, node.fixed_ip)
            return render_etcd_user_data(
                EtcdNodeInput(
                    member=member,
                    members=members if member in members else (*members, member),
                    cluster_token=f"{spec.name}-etcd",
                    etcd_version=node.revision.version,
                    joining=not plan.first_deploy and node.action is Action.CREATE,
                    log_targets=log_targets,
                    **v,
                )
            )

        self.etcd_user_data = {
            node.name: pulumi.Output.secret(
                pulumi.Output.all(
                    ca_cert_pem=pki.etcd_ca.cert_pem,
                    cert_pem=certkey.cert_pem,
                    key_pem=certkey.key_pem,
                    backup=backup,
                    peer_ca_cert_pem=pki.etcd_peer_ca.cert_pem,
                    peer_cert_pem=peer.cert_pem,
                    peer_key_pem=peer.key_pem,
                ).apply(functools.partial(etcd_user_data, node))
            )
            for node, certkey, peer in zip(etcd_nodes, pki.etcd_members, pki.etcd_peers, strict=True)
        }

        # The token of the nodes this step builds: a fresh one when given (config kaas:joinToken, from
        # kaas roll), else the stack's first one (kubeadm init creates it; it expires). Nodes the step
        # does not build ignore changes to their user data (kaas.openstack.nodes.BUILT_WITH).
        token = pki.bootstrap_token
        if join_token is not None:
            token = pulumi.Output.secret(join_token)
        cluster = pulumi.Output.all(token=token, ca_cert_pem=pki.kubernetes_ca.cert_pem).apply(
            lambda v: KubernetesCluster(
                name=spec.name,
                api_endpoint_host=api_endpoint_host,
                api_vip=plan.api_vip,
                kubernetes_version=spec.versions.kubernetes,
                containerd_version=spec.versions.containerd,
                pod_cidr=spec.networking.pod_cidr,
                service_cidr=spec.networking.service_cidr,
                etcd_endpoints=tuple(self.etcd_endpoints),
                bootstrap_token=v["token"],
                kubernetes_ca_cert_pem=v["ca_cert_pem"],
                api_cert_sans=tuple(api_cert_sans),
                bootstrap_token_ttl_hours=spec.security.bootstrap_token_ttl_hours,
                pod_security_default=spec.security.pod_security_default.value,
                metadata_allowed_pod_cidrs=spec.security.metadata_allowed_pod_cidrs,
            )
        )
        # The control-plane certificates of each certificate generation a master runs.
        certificates = {
            generation: pulumi.Output.all(
                ca_cert_pem=pki.kubernetes_ca.cert_pem,
                ca_key_pem=pki.kubernetes_ca.key_pem,
                service_account_key_pem=pki.service_account_private_key_pem,
                service_account_pub_pem=pki.service_account_public_key_pem,
                front_proxy_ca_cert_pem=pki.front_proxy_ca.cert_pem,
                front_proxy_ca_key_pem=pki.front_proxy_ca.key_pem,
                etcd_ca_cert_pem=pki.etcd_ca.cert_pem,
                apiserver_etcd_client_cert_pem=client.cert_pem,
                apiserver_etcd_client_key_pem=client.key_pem,
            ).apply(lambda v: ControlPlaneCertificates(**v))
            for generation, client in pki.apiserver_etcd_clients.items()
        }
        # The cluster's ClusterConfiguration as the masters this update builds join with it (kubeadm-config,
        # kaas.bootstrap.kubeadm_certs): at their version (the newest master's when none is built).
        versions = [m.revision.version for m in masters if m.joining] or [m.revision.version for m in masters]
        joining_version = max(versions, key=parse_version)
        # No secret in it (endpoints, SANs, flags, file paths; the token is the JoinConfiguration's), so not
        # a Pulumi secret: a preview shows what a joining master will be built with.
        self.joining_cluster_configuration = pulumi.Output.unsecret(
            cluster.apply(
                lambda c: safe_dump(cluster_configuration(dataclasses.replace(c, kubernetes_version=joining_version)))
            )
        )
        # What the kubeadm-certs Secret carries for the masters this update builds (kaas.bootstrap.kubeadm_certs):
        # their generation (kaas roll builds one master per update; a healed one keeps the generation it ran).
        built = {m.revision.certificates for m in masters if m.joining}
        self.control_plane_certificates = certificates[max(built or certificates)]

        def master_user_data(node: PlannedNode, first: bool, v: dict[str, Any]) -> str:
            return render_master_user_data(
                _at_version(v["cluster"], node),
                KubernetesNode(node.name, node.fixed_ip),
                v["certificates"],
                first=first,
                certificate_key=v["certificate_key"],
                encryption_keys=[EncryptionKey(ENCRYPTION_KEY_NAME, v["encryption_key"])],
            )

        # Only the very first pulumi up runs `kubeadm init`; a master built later (by a rollout too) joins.
        self.master_user_data = {
            node.name: pulumi.Output.secret(
                pulumi.Output.all(
                    cluster=cluster,
                    certificates=certificates[node.revision.certificates],
                    certificate_key=self.certificate_key,
                    encryption_key=self.secrets_encryption_key,
                ).apply(functools.partial(master_user_data, node, plan.first_deploy and node.index == 0))
            )
            for node in masters
        }
        self.worker_user_data = {
            node.name: pulumi.Output.secret(cluster.apply(functools.partial(_worker_user_data, node)))
            for node in plan.tier(Tier.WORKER)
        }
        self.admin_kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                ca_cert_pem=pki.kubernetes_ca.cert_pem,
                client_cert_pem=pki.admin_client.cert_pem,
                client_key_pem=pki.admin_client.key_pem,
            ).apply(lambda v: admin_kubeconfig(spec.name, self.api_server_url, **v))
        )
        self.break_glass_kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                ca_cert_pem=pki.kubernetes_ca.cert_pem,
                client_cert_pem=pki.break_glass_client.cert_pem,
                client_key_pem=pki.break_glass_client.key_pem,
            ).apply(lambda v: admin_kubeconfig(spec.name, self.api_server_url, **v, role="break-glass"))
        )
        self.register_outputs(
            {
                "adminKubeconfig": self.admin_kubeconfig,
                "breakGlassKubeconfig": self.break_glass_kubeconfig,
                "apiServerUrl": self.api_server_url,
                "etcdEndpoints": self.etcd_endpoints,
                "kubernetesVersion": self.kubernetes_version,
                "caCertPem": self.ca_cert_pem,
            }
        )
