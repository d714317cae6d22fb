"""ClusterBootstrap: the PKI plus the user data of every node, as typed outputs.

The OpenStack layer passes ``etcd_user_data[i]`` / ``master_user_data[i]`` /
``worker_user_data[i]`` to node ``i`` of each tier (the node with address
``addresses.<tier>[i]``). Each user data is a secret: it carries private keys.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from kaas import platform
from kaas.bootstrap import cloudinit
from kaas.bootstrap.cloudinit import (
    BackupTarget,
    ControlPlaneCertificates,
    EtcdMember,
    EtcdNodeInput,
    KubernetesCluster,
    KubernetesNode,
)
from kaas.bootstrap.pki import ClusterPki, EtcdMemberName
from kaas.openstack.addressing import AddressPlan
from kaas.spec import ClusterSpec


@dataclass(frozen=True)
class NodePlan:
    """Names and addresses of every node, as data (the same names the user data sets as host names)."""

    etcd: tuple[EtcdMember, ...]
    masters: tuple[KubernetesNode, ...]
    workers: tuple[KubernetesNode, ...]


def plan_nodes(spec: ClusterSpec, addresses: AddressPlan) -> NodePlan:
    def nodes(tier: str, ips: tuple[str, ...]) -> tuple[KubernetesNode, ...]:
        names = cloudinit.node_names(spec.name, tier, len(ips))
        return tuple(KubernetesNode(name, ip) for name, ip in zip(names, ips, strict=True))

    etcd_names = cloudinit.node_names(spec.name, "etcd", len(addresses.etcd))
    return NodePlan(
        etcd=tuple(EtcdMember(name, ip) for name, ip in zip(etcd_names, addresses.etcd, strict=True)),
        masters=nodes("master", addresses.masters),
        workers=nodes("worker", addresses.workers),
    )


def _worker_user_data(node: KubernetesNode, cluster: KubernetesCluster) -> str:
    return cloudinit.render_worker_user_data(cluster, node)


def api_server_url(api_endpoint_host: str) -> str:
    return f"https://{api_endpoint_host}:{platform.API_SERVER_PORT}"


class ClusterBootstrap(pulumi.ComponentResource):
    """PKI, bootstrap token and cloud-init user data for the etcd, master and worker tiers."""

    pki: ClusterPki
    nodes: NodePlan
    etcd_user_data: list[pulumi.Output[str]]
    master_user_data: list[pulumi.Output[str]]
    worker_user_data: list[pulumi.Output[str]]
    admin_kubeconfig: pulumi.Output[str]
    break_glass_kubeconfig: pulumi.Output[str]
    api_server_url: str
    etcd_endpoints: list[str]
    kubernetes_version: str
    ca_cert_pem: pulumi.Output[str]
    keystone_auth_cert_pem: pulumi.Output[str]
    keystone_auth_key_pem: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        addresses: AddressPlan,
        api_endpoint_host: str,
        backup_access_key: pulumi.Input[str],
        backup_secret_key: pulumi.Input[str],
        api_cert_sans: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:bootstrap:Bootstrap", name, None, opts)
        self.nodes = plan_nodes(spec, addresses)
        self.pki = ClusterPki(
            name,
            [EtcdMemberName(m.name, m.ip) for m in self.nodes.etcd],
            opts=pulumi.ResourceOptions(parent=self),
            break_glass_group=platform.break_glass_group(spec.provider_name),
        )
        pki = self.pki
        self.kubernetes_version = spec.versions.kubernetes.lstrip("v")
        self.etcd_endpoints = list(cloudinit.client_endpoints(self.nodes.etcd))
        self.api_server_url = api_server_url(api_endpoint_host)
        self.ca_cert_pem = pki.kubernetes_ca.cert_pem
        self.keystone_auth_cert_pem = pki.keystone_auth.cert_pem
        self.keystone_auth_key_pem = pki.keystone_auth.key_pem

        backup = pulumi.Output.all(backup_access_key, backup_secret_key).apply(
            lambda keys: BackupTarget(
                endpoint=spec.openstack.s3_endpoint,
                bucket=spec.container_name("etcd_backups"),
                region=spec.etcd_backup.s3_region,
                access_key=keys[0],
                secret_key=keys[1],
                retention_days=spec.etcd_backup.retention_days,
                interval_hours=spec.etcd_backup.interval_hours,
            )
        )
        members = self.nodes.etcd
        # The first workers' addresses: adding workers never changes the etcd nodes' user data.
        log_targets = addresses.workers[: platform.ETCD_LOG_TARGETS] if spec.services.logging.enabled else ()

        def etcd_user_data(member: EtcdMember, v: list[Any]) -> str:
            return cloudinit.render_etcd_user_data(
                EtcdNodeInput(
                    member=member,
                    members=members,
                    cluster_token=f"{spec.name}-etcd",
                    etcd_version=spec.versions.etcd,
                    ca_cert_pem=v[0],
                    cert_pem=v[1],
                    key_pem=v[2],
                    backup=v[3],
                    log_targets=log_targets,
                )
            )

        self.etcd_user_data = [
            pulumi.Output.secret(
                pulumi.Output.all(pki.etcd_ca.cert_pem, certkey.cert_pem, certkey.key_pem, backup).apply(
                    functools.partial(etcd_user_data, member)
                )
            )
            for member, certkey in zip(members, pki.etcd_members, strict=True)
        ]

        cluster = pulumi.Output.all(pki.bootstrap_token, pki.kubernetes_ca.cert_pem).apply(
            lambda v: KubernetesCluster(
                name=spec.name,
                api_endpoint_host=api_endpoint_host,
                api_vip=addresses.api_vip,
                kubernetes_version=spec.versions.kubernetes,
                containerd_version=spec.versions.containerd,
                pod_cidr=spec.networking.pod_cidr,
                service_cidr=spec.networking.service_cidr,
                etcd_endpoints=tuple(self.etcd_endpoints),
                bootstrap_token=v[0],
                kubernetes_ca_cert_pem=v[1],
                api_cert_sans=tuple(api_cert_sans),
            )
        )
        certificates = pulumi.Output.all(
            pki.kubernetes_ca.cert_pem,
            pki.kubernetes_ca.key_pem,
            pki.service_account_private_key_pem,
            pki.service_account_public_key_pem,
            pki.front_proxy_ca.cert_pem,
            pki.front_proxy_ca.key_pem,
            pki.etcd_ca.cert_pem,
            pki.apiserver_etcd_client.cert_pem,
            pki.apiserver_etcd_client.key_pem,
        ).apply(lambda v: ControlPlaneCertificates(*v))

        def master_user_data(node: KubernetesNode, first: bool, v: list[Any]) -> str:
            return cloudinit.render_master_user_data(v[0], node, v[1], first=first)

        self.master_user_data = [
            pulumi.Output.secret(
                pulumi.Output.all(cluster, certificates).apply(functools.partial(master_user_data, node, index == 0))
            )
            for index, node in enumerate(self.nodes.masters)
        ]
        self.worker_user_data = [
            pulumi.Output.secret(cluster.apply(functools.partial(_worker_user_data, node)))
            for node in self.nodes.workers
        ]
        self.admin_kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(pki.kubernetes_ca.cert_pem, pki.admin_client.cert_pem, pki.admin_client.key_pem).apply(
                lambda v: cloudinit.admin_kubeconfig(spec.name, self.api_server_url, v[0], v[1], v[2])
            )
        )
        self.break_glass_kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                pki.kubernetes_ca.cert_pem, pki.break_glass_client.cert_pem, pki.break_glass_client.key_pem
            ).apply(
                lambda v: cloudinit.admin_kubeconfig(
                    spec.name, self.api_server_url, v[0], v[1], v[2], role="break-glass"
                )
            )
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
