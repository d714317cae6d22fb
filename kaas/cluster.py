"""KaasCluster: the only place that wires the layers together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_openstack as openstack

from kaas.bootstrap import pki
from kaas.bootstrap.component import ClusterBootstrap
from kaas.bootstrap.kubeadm_certs import KubeadmCerts, joining_masters
from kaas.cluster_plan import ClusterPlan, cluster_policy_facts
from kaas.openstack.dns import ClusterDns
from kaas.openstack.identity import KeystoneAccess
from kaas.openstack.loadbalancer import ApiLoadBalancer
from kaas.openstack.network import ClusterNetwork
from kaas.openstack.nodes import NodeTier
from kaas.openstack.provider import openstack_provider
from kaas.openstack.security import Role, SecurityGroups, allowed_address_pairs, node_groups
from kaas.openstack.storage import ObjectStorage
from kaas.outputs import ClusterFacts, build_stack_outputs, export_keys
from kaas.readiness import ApiReadiness
from kaas.services import ManagedServices, ServiceInputs


class KaasCluster(pulumi.ComponentResource):
    """One customer's managed Kubernetes cluster, built from its spec.

    Reads like a table of contents: OpenStack layer, bootstrap layer (PKI and user
    data for the node tiers), the readiness gate, then the managed services.
    """

    network: ClusterNetwork
    security_groups: SecurityGroups
    api_load_balancer: ApiLoadBalancer
    object_storage: ObjectStorage
    bootstrap: ClusterBootstrap
    etcd_nodes: NodeTier
    masters: NodeTier
    workers: NodeTier
    dns: ClusterDns
    identity: KeystoneAccess
    kubeadm_certs: KubeadmCerts | None
    api_ready: ApiReadiness
    services: ManagedServices

    def __init__(
        self,
        name: str,
        plan: ClusterPlan,
        opts: pulumi.ResourceOptions | None = None,
        *,
        alerting_secrets: Mapping[str, pulumi.Input[str]] | None = None,
        join_token: pulumi.Output[str] | None = None,
    ) -> None:
        # The policy pack reads the spec's facts (environment, backup interval, ...) and the
        # rollout step (recorded state, desired revisions) from these inputs.
        super().__init__(
            "kaas:index:Cluster",
            name,
            {"kaasPolicy": cluster_policy_facts(plan.spec), "kaasRollout": plan.rollout_facts()},
            opts,
        )
        self.spec = spec = plan.spec
        self.plan = plan
        child = pulumi.ResourceOptions(parent=self)
        provider = self.openstack_provider = openstack_provider(name, spec.openstack, parent=self)

        # OpenStack layer.
        self.network = ClusterNetwork(
            name, spec.networking, external_network=spec.openstack.external_network, provider=provider, opts=child
        )
        self.security_groups = SecurityGroups(name, spec, provider=provider, opts=child)
        self.api_load_balancer = ApiLoadBalancer(
            name,
            spec,
            api_vip=plan.api_vip,
            # Retired masters leave the pool; a master rebuilt in place keeps its address and member.
            masters=[(m.index, m.fixed_ip) for m in plan.members(Role.MASTER)],
            network_id=self.network.network_id,
            subnet_id=self.network.subnet_id,
            security_group_ids=self.security_groups.ids([Role.API_LB]),
            provider=provider,
            floating_ip_depends_on=self.network.routing,
            opts=child,
        )
        self.dns = ClusterDns(
            name, spec, api_address=self.api_load_balancer.floating_address, provider=provider, opts=child
        )
        self.identity = KeystoneAccess(name, spec, provider=provider, opts=child)
        self.object_storage = ObjectStorage(
            name,
            spec,
            provider=provider,
            project_id=self.identity.project_id,
            writers={
                "etcd_backups": self.identity.backup_writer_id,
                **({"registry": self.identity.registry_user_id} if self.identity.registry_user_id else {}),
            },
            opts=child,
        )

        # Bootstrap layer: PKI and the user data that turns the node tiers into a cluster.
        self.bootstrap = ClusterBootstrap(
            name,
            plan,
            api_endpoint_host=plan.api_host,
            backup_access_key=self.identity.backup_access_key,
            backup_secret_key=self.identity.backup_secret_key,
            join_token=join_token,
            opts=child,
        )
        self.etcd_nodes = self._tier(Role.ETCD, provider, self.bootstrap.etcd_user_data)
        # A master this update builds (not the first deployment's) joins with what kubeadm reads from the
        # cluster: the shared certificates (kube-system/kubeadm-certs), the ClusterConfiguration and the
        # kubelet configuration, declared for this update only (kaas.bootstrap.kubeadm_certs).
        joining = joining_masters(plan)
        self.kubeadm_certs = None
        if joining:
            self.kubeadm_certs = KubeadmCerts(
                name,
                certificates=self.bootstrap.control_plane_certificates,
                cluster_configuration=self.bootstrap.joining_cluster_configuration,
                certificate_key=self.bootstrap.certificate_key,
                kubeconfig=self.bootstrap.admin_kubeconfig,
                **self._api_check(),
                # The API path without the masters this update builds (they wait for the Secret).
                after=self._api_path(),
                opts=child,
            )
        prerequisites = self.kubeadm_certs.join_prerequisites if self.kubeadm_certs is not None else []
        self.masters = self._tier(
            Role.MASTER, provider, self.bootstrap.master_user_data, depends_on={n.name: prerequisites for n in joining}
        )
        self.workers = self._tier(Role.WORKER, provider, self.bootstrap.worker_user_data)

        # Kubernetes layer, behind the gate that waits for kubeadm's control plane.
        self.api_ready = ApiReadiness(
            name,
            **self._api_check(),
            # The API path: masters, LB members, the floating IP, and the DNS name the
            # Kubernetes provider's kubeconfig connects to.
            after=[*self.masters.instances, *self._api_path()],
            opts=child,
        )
        self.services = ManagedServices(
            name,
            spec,
            ServiceInputs(
                kubeconfig=self.bootstrap.admin_kubeconfig,
                ingress_ip=self.dns.ingress_address,
                external_network_id=self.network.external_network_id,
                subnet_id=self.network.subnet_id,
                admin_role_id=self.identity.admin_role_id,
                project_id=self.identity.project_id,
                app_credentials={c.value: cred for c, cred in self.identity.application_credentials.items()},
                keystone_auth_cert_pem=self.bootstrap.keystone_auth_cert_pem,
                keystone_auth_key_pem=self.bootstrap.keystone_auth_key_pem,
                registry_swift_username=self.identity.registry_username,
                registry_swift_password=self.identity.registry_password,
                # Without the API load balancer the cluster is unreachable: in-cluster objects go with it.
                cluster=self.api_load_balancer.load_balancer,
                ready=self.api_ready,
                alerting_secrets=alerting_secrets or {},
            ),
            opts=child,
        )
        self.register_outputs({})

    def _api_check(self) -> dict[str, Any]:
        """What an API gate checks: the API server through the load balancer's floating address,
        with the Kubernetes provider's own credential and the binding that authorises it."""
        return {
            "api_url": self.bootstrap.api_server_url,
            "connect_to": self.api_load_balancer.floating_address,
            "ca_cert_pem": self.bootstrap.ca_cert_pem,
            "client_cert_pem": self.bootstrap.pki.admin_client.cert_pem,
            "client_key_pem": self.bootstrap.pki.admin_client.key_pem,
            "authorised_path": f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{pki.ADMIN_CLUSTER_ROLE_BINDING}",
        }

    def _api_path(self) -> list[pulumi.Resource]:
        """The API's way in, masters aside: load balancer members, floating IP, the API's DNS record."""
        record = [self.dns.api_record] if self.dns.api_record is not None else []
        return [*self.api_load_balancer.members, self.api_load_balancer.floating_ip, *record]

    def _tier(
        self,
        tier: Role,
        provider: openstack.Provider,
        user_data: dict[str, pulumi.Output[str]],
        depends_on: Mapping[str, Sequence[pulumi.Resource]] | None = None,
    ) -> NodeTier:
        kubernetes_node = tier is not Role.ETCD
        return NodeTier(
            self.spec.name,
            self.spec,
            tier,
            self.plan.tier(tier),
            network_id=self.network.network_id,
            subnet_id=self.network.subnet_id,
            security_group_ids=self.security_groups.ids(node_groups(self.spec, tier)),
            provider=provider,
            allowed_address_pairs=allowed_address_pairs(self.spec) if kubernetes_node else (),
            user_data=user_data,
            depends_on=depends_on,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def facts(self) -> pulumi.Output[ClusterFacts]:
        """The values only known once the cluster exists, for the typed stack outputs."""
        dns = self.dns
        tiers = {"etcd": self.etcd_nodes, "masters": self.masters, "workers": self.workers}
        return pulumi.Output.all(
            api_floating_ip=self.api_load_balancer.floating_address,
            ingress_floating_ip=dns.ingress_address,
            admin_role_id=self.identity.admin_role_id,
            network_id=self.network.network_id,
            subnet_id=self.network.subnet_id,
            dns_zone_id=dns.zone_id if dns.zone_id is not None else None,
            api_load_balancer_id=self.api_load_balancer.load_balancer.id,
            server_group_ids=pulumi.Output.all(**{k: t.server_group.id for k, t in tiers.items()}),
            ca_certificate=self.bootstrap.ca_cert_pem,
        ).apply(
            lambda f: ClusterFacts(
                dns_zone_name=dns.names.zone if self.spec.dns.enabled else None,
                ingress_floating_ip=f["ingress_floating_ip"] if self.spec.services.ingress.enabled else None,
                **{k: v for k, v in f.items() if k != "ingress_floating_ip"},
            )
        )

    def stack_outputs(self) -> dict[str, Any]:
        """Typed, non-secret outputs (kaas.outputs.StackOutputs, one key per field) + the secret kubeconfigs,
        the etcd backup key and kaas roll's etcd client credentials."""
        plan = self.plan
        dumped = self.facts().apply(lambda facts: build_stack_outputs(plan, facts).model_dump(mode="json"))
        return {
            **export_keys(dumped),
            "adminKubeconfig": self.bootstrap.admin_kubeconfig,
            "breakGlassKubeconfig": self.bootstrap.break_glass_kubeconfig,
            # The only key to the etcd snapshots: kept by the stack (a protected secret), read for a restore.
            "etcdBackupKey": self.bootstrap.etcd_backup_key,
            # kaas roll's etcd client (membership changes, health gates); the key is a secret.
            **self.bootstrap.roll_etcd_credentials(),
        }
