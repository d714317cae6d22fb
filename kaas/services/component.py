"""ManagedServices: every managed service, released into the cluster in dependency order.

One explicit Kubernetes provider, built here from the generated kubeconfig, serves
every Kubernetes resource. Each service is a small ``kaas:services:<Service>``
component, present only when the spec enables it. Dependencies (see
docs/architecture.md): every Helm release and every pod-running object waits for
the CNI; storage users wait for the Cinder CSI release and its StorageClasses;
plain Ingress objects and the ClusterIssuer wait for the ingress controller (Helm
releases that contain Ingresses do not); nothing else is serialised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from kaas.services import access, alerts, guardrails, images, names, objects, values
from kaas.services import monitoring as monitoring_values
from kaas.services.catalog import ChartName, chart_for
from kaas.services.passwords import password_arguments
from kaas.spec.models import ClusterSpec, Cni


class CloudCredential(Protocol):
    """An OpenStack application credential (``kaas.openstack.identity.ApplicationCredential``)."""

    @property
    def id(self) -> pulumi.Input[str]: ...

    @property
    def secret(self) -> pulumi.Input[str]: ...


# The consumers of ServiceInputs.app_credentials (kaas.openstack.credentials.Consumer values).
CLOUD_CONTROLLER = "cloud-controller"
CINDER_CSI = "cinder-csi"
VELERO = "velero"


@dataclass(frozen=True)
class ServiceInputs:
    """What the services need from the other layers (secrets marked so by their producers or here)."""

    kubeconfig: pulumi.Input[str]
    ingress_ip: pulumi.Input[str]
    external_network_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    admin_role_id: pulumi.Input[str]
    # One application credential per consumer (CLOUD_CONTROLLER, CINDER_CSI, VELERO): none is shared.
    app_credentials: Mapping[str, CloudCredential]
    # The cluster's Keystone project: only its tokens carry the admin role into Kubernetes;
    # it also owns the registry container (Harbor's Swift driver scopes its token to it).
    project_id: pulumi.Input[str]
    keystone_auth_cert_pem: pulumi.Input[str]
    keystone_auth_key_pem: pulumi.Input[str]
    # Harbor's Swift driver (distribution) authenticates with a Keystone user and password only.
    registry_swift_username: pulumi.Input[str] | None = None
    registry_swift_password: pulumi.Input[str] | None = None
    # In-cluster objects are deleted_with this resource (the cluster's control plane); the
    # Kubernetes provider stands in when it is not given.
    cluster: pulumi.Resource | None = None
    # The Kubernetes provider (and so every in-cluster object) waits for this: the API is ready.
    ready: pulumi.Resource | None = None
    # Alert receivers' credentials by ``kaas`` config key (spec services.monitoring.alerting),
    # read by the loader as Pulumi secrets.
    alerting_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


_KINDS: dict[tuple[str, str], Any] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "ResourceQuota"): k8s.core.v1.ResourceQuota,
    ("v1", "LimitRange"): k8s.core.v1.LimitRange,
    ("v1", "Service"): k8s.core.v1.Service,
    ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
    ("apps/v1", "DaemonSet"): k8s.apps.v1.DaemonSet,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("batch/v1", "Job"): k8s.batch.v1.Job,
    ("batch/v1", "CronJob"): k8s.batch.v1.CronJob,
    ("storage.k8s.io/v1", "StorageClass"): k8s.storage.v1.StorageClass,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


class _Kube:
    """Creates the Kubernetes resources of one service with the shared options."""

    def __init__(self, provider: k8s.Provider, deleted_with: pulumi.Resource) -> None:
        self.provider = provider
        self.deleted_with = deleted_with

    def opts(self, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=parent, provider=self.provider, deleted_with=self.deleted_with, depends_on=list(depends_on)
        )

    def apply(
        self, name: str, manifest: objects.Manifest, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()
    ) -> pulumi.CustomResource:
        key = (manifest["apiVersion"], manifest["kind"])
        fields = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
        opts = self.opts(parent, depends_on)
        if key not in _KINDS:
            return k8s.apiextensions.CustomResource(
                name, api_version=key[0], kind=key[1], opts=opts, **{_snake(k): v for k, v in fields.items()}
            )
        resource: pulumi.CustomResource = _KINDS[key](name, opts=opts, **{_snake(k): v for k, v in fields.items()})
        return resource

    def release(
        self,
        name: str,
        chart: ChartName,
        version: str | None,
        namespace: pulumi.Input[str],
        release_values: pulumi.Input[dict[str, Any]],
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource],
        create_namespace: bool = False,
    ) -> k8s.helm.v3.Release:
        pinned = chart_for(chart, version)
        return k8s.helm.v3.Release(
            name,
            name=name,
            chart=pinned.name.value,
            version=pinned.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pinned.repo),
            namespace=namespace,
            create_namespace=create_namespace,
            values=images.with_digests(pinned.name, release_values),
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            opts=self.opts(parent, depends_on),
        )


def _password(name: str, parent: pulumi.Resource, length: int | None = None) -> random.RandomPassword:
    """A password every consumer's policy accepts (:mod:`kaas.services.passwords`); ``length``
    where the consumer fixes it (Harbor's 16-character secrets, its 32-character XSRF key)."""
    arguments = password_arguments()
    if length is not None:
        arguments["length"] = length
    return random.RandomPassword(
        name,
        **arguments,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["result"]),
    )


class ServiceGroup(pulumi.ComponentResource):
    """One managed service (``kaas:services:<kind>``): the unit a spec switches on or off."""

    def __init__(self, kind: str, name: str, parent: pulumi.Resource) -> None:
        super().__init__(f"kaas:services:{kind}", name, None, pulumi.ResourceOptions(parent=parent))

    def done(self, **outputs: Any) -> None:
        self.register_outputs(outputs)


class ManagedServices(pulumi.ComponentResource):
    """The managed services of one cluster (CNI, OpenStack integration, Keystone RBAC, ingress, ...)."""

    cni: k8s.helm.v3.Release
    groups: dict[str, ServiceGroup]
    releases: dict[str, k8s.helm.v3.Release]

    def __init__(
        self, name: str, spec: ClusterSpec, inputs: ServiceInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kaas:services:ManagedServices", name, None, opts)
        self.spec = spec
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(inputs.kubeconfig),
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[inputs.ready] if inputs.ready else []),
        )
        kube = _Kube(self.provider, inputs.cluster or self.provider)
        self.groups = {}
        self.releases = {}
        svc = spec.services

        def group(kind: str) -> ServiceGroup:
            self.groups[kind] = ServiceGroup(kind, f"{name}-{_kebab(kind)}", self)
            return self.groups[kind]

        # The platform namespace: API-only, it needs no pods and so no CNI.
        namespaces = group("Namespaces")
        self.namespace = kube.apply(f"{name}-ns-platform", objects.platform_namespace(spec), namespaces)
        platform_ns: pulumi.Input[str] = self.namespace.metadata.name  # type: ignore[attr-defined]
        kube.apply(f"{name}-break-glass", objects.break_glass_cluster_role_binding(spec), namespaces)

        # CNI first: nothing schedules a pod before it.
        cni = group("Cni")
        if spec.networking.cni is Cni.FLANNEL:
            cni_release = kube.release(
                "flannel", ChartName.FLANNEL, svc.cni.chart_version, "kube-flannel",
                values.flannel_values(spec), cni, (), create_namespace=True,
            )  # fmt: skip
        else:
            cni_values = values.canal_values(spec) if spec.networking.cni is Cni.CANAL else values.calico_values(spec)
            cni_release = kube.release(
                "calico", ChartName.TIGERA_OPERATOR, svc.cni.chart_version, "tigera-operator",
                cni_values, cni, (), create_namespace=True,
            )  # fmt: skip
        self.cni = cni_release
        self.releases["cni"] = cni_release
        cni.done(release=cni_release.status)

        # OpenStack integration: OCCM and Cinder CSI each read a cloud-config Secret with their own credential.
        storage_deps: list[pulumi.Resource] = []
        openstack_needed = svc.cloud_controller.enabled or svc.cinder_csi.enabled
        if openstack_needed:
            integration = group("OpenstackIntegration")

            def cloud_secret(consumer: str, secret_name: str) -> pulumi.CustomResource:
                credential = inputs.app_credentials[consumer]
                conf: pulumi.Output[str] = pulumi.Output.secret(
                    pulumi.Output.all(
                        credential.id, credential.secret, inputs.external_network_id, inputs.subnet_id
                    ).apply(
                        lambda a: (
                            values.cloud_config(spec, str(a[0]), str(a[1]))
                            + values.cloud_config_sections(spec, str(a[2]), str(a[3]))
                        )
                    )
                )
                return kube.apply(
                    f"{name}-{secret_name}",
                    objects.secret(spec, secret_name, names.KUBE_SYSTEM, {"cloud.conf": conf}),
                    integration,
                )

            if svc.cloud_controller.enabled:
                occm_secret = cloud_secret(CLOUD_CONTROLLER, names.CLOUD_CONFIG)
                self.releases["cloud_controller"] = kube.release(
                    "openstack-ccm", ChartName.OPENSTACK_CLOUD_CONTROLLER_MANAGER, svc.cloud_controller.chart_version,
                    names.KUBE_SYSTEM, values.occm_values(spec), integration, (cni_release, occm_secret),
                )  # fmt: skip
            if svc.cinder_csi.enabled:
                csi_secret = cloud_secret(CINDER_CSI, names.CSI_CLOUD_CONFIG)
                csi = kube.release(
                    "cinder-csi", ChartName.OPENSTACK_CINDER_CSI, svc.cinder_csi.chart_version,
                    names.KUBE_SYSTEM, values.cinder_csi_values(spec), integration, (cni_release, csi_secret),
                )  # fmt: skip
                self.releases["cinder_csi"] = csi
                sc_default = kube.apply(
                    f"{name}-sc-default",
                    objects.storage_class(spec, names.STORAGE_CLASS_DEFAULT, "Delete", default=True),
                    integration,
                    (csi,),
                )
                sc_retain = kube.apply(
                    f"{name}-sc-retain",
                    objects.storage_class(spec, names.STORAGE_CLASS_RETAIN, "Retain", default=False),
                    integration,
                    (csi,),
                )
                storage_deps = [csi, sc_default, sc_retain]
            integration.done()

        # Keystone authentication and the cluster-admin binding.
        if svc.keystone_auth.enabled:
            keystone = group("KeystoneAuth")
            tls = kube.apply(
                f"{name}-keystone-auth-tls",
                objects.secret(
                    spec,
                    names.KEYSTONE_AUTH_TLS,
                    names.KUBE_SYSTEM,
                    {
                        "tls.crt": pulumi.Output.secret(inputs.keystone_auth_cert_pem),
                        "tls.key": pulumi.Output.secret(inputs.keystone_auth_key_pem),
                    },
                    secret_type="kubernetes.io/tls",
                ),
                keystone,
            )
            sync = kube.apply(
                f"{name}-keystone-sync",
                objects.keystone_sync_config_map(
                    spec, pulumi.Output.from_input(inputs.admin_role_id).apply(
                        lambda role_id: objects.keystone_sync_config(spec, role_id)
                    )
                ),
                keystone,
            )  # fmt: skip
            account = kube.apply(f"{name}-keystone-auth-sa", objects.keystone_auth_service_account(spec), keystone)
            role = kube.apply(f"{name}-keystone-auth-role", objects.keystone_auth_cluster_role(spec), keystone)
            binding = kube.apply(
                f"{name}-keystone-auth-binding", objects.keystone_auth_cluster_role_binding(spec), keystone
            )
            kube.apply(
                f"{name}-keystone-auth",
                objects.keystone_auth_daemon_set(spec, inputs.project_id, inputs.admin_role_id),
                keystone,
                (cni_release, tls, sync, account, role, binding),
            )
            kube.apply(
                f"{name}-default-cluster-admin",
                objects.admin_cluster_role_binding(spec, inputs.admin_role_id),
                keystone,
            )
            keystone.done()

        # Ingress (and cert-manager with its ClusterIssuer).
        ingress_deps: list[pulumi.Resource] = []
        if svc.ingress.enabled:
            ingress = group("Ingress")
            controller = kube.release(
                names.INGRESS_RELEASE, ChartName.NGINX_INGRESS, svc.ingress.chart_version, platform_ns,
                values.ingress_values(spec, inputs.ingress_ip), ingress, (cni_release,),
            )  # fmt: skip
            self.releases["ingress"] = controller
            ingress_deps = [controller]
            if svc.ingress.cert_manager:
                cert_manager = kube.release(
                    "cert-manager", ChartName.CERT_MANAGER, None, platform_ns,
                    values.cert_manager_values(spec), ingress, (cni_release,),
                )  # fmt: skip
                self.releases["cert_manager"] = cert_manager
                kube.apply(f"{name}-cluster-issuer", objects.cluster_issuer(spec), ingress, (cert_manager, controller))
            ingress.done()

        # Kubelet serving certificates: kubelets request them from the cluster CA
        # (serverTLSBootstrap); the approver approves requests from the cluster's nodes.
        kubelet_certs = group("KubeletServingCerts")
        approver_rbac = [
            kube.apply(f"{name}-kubelet-csr-approver-{suffix}", manifest, kubelet_certs)
            for suffix, manifest in (
                ("sa", objects.kubelet_csr_approver_service_account(spec)),
                ("role", objects.kubelet_csr_approver_cluster_role(spec)),
                ("binding", objects.kubelet_csr_approver_cluster_role_binding(spec)),
            )
        ]
        approver = kube.apply(
            f"{name}-kubelet-csr-approver",
            objects.kubelet_csr_approver_deployment(spec),
            kubelet_certs,
            (cni_release, *approver_rbac),
        )
        kubelet_certs.done()

        if svc.metrics_server.enabled:
            metrics = group("MetricsServer")
            self.releases["metrics_server"] = kube.release(
                "metrics-server", ChartName.METRICS_SERVER, svc.metrics_server.chart_version, names.KUBE_SYSTEM,
                values.metrics_server_values(spec), metrics, (cni_release, approver),
            )  # fmt: skip
            metrics.done()

        # Releases with Ingresses (Grafana, OpenSearch Dashboards, Harbor, Headlamp) do NOT wait
        # for the ingress controller: the API server accepts an Ingress before its controller
        # runs (the F5 chart installs no admission webhook), the controller serves the existing
        # Ingresses when it starts, and `helm install --wait` does not wait on Ingresses. The
        # controller's release waits for its Octavia load balancer; queuing Harbor behind it
        # would add minutes to every new cluster. Plain Ingress objects (below) keep the edge:
        # Pulumi's await for an Ingress is its controller publishing the address.
        web_deps = [cni_release]
        data_deps = [cni_release, *storage_deps]

        if svc.monitoring.enabled:
            monitoring = group("Monitoring")
            grafana_pw = _password(f"{name}-grafana-admin", monitoring)
            grafana_secret = kube.apply(
                f"{name}-grafana-admin",
                objects.secret(
                    spec, names.GRAFANA_ADMIN, spec.platform_namespace,
                    {"admin-user": "admin", "admin-password": grafana_pw.result},
                ),
                monitoring, (self.namespace,),
            )  # fmt: skip
            # Prometheus, apps-Prometheus and Alertmanager have no login: one generated account
            # guards their Ingresses (values.BASIC_AUTH_ANNOTATIONS); operators read it from web-login.
            web_pw = _password(f"{name}-web-login", monitoring)
            web_auth = [
                kube.apply(
                    f"{name}-web-basic-auth",
                    objects.secret(
                        spec, names.WEB_AUTH, spec.platform_namespace,
                        {"htpasswd": pulumi.Output.secret(
                            web_pw.result.apply(lambda p: values.htpasswd_line(names.WEB_USER, p))
                        )},
                        secret_type="nginx.org/htpasswd",
                    ),
                    monitoring, (self.namespace,),
                ),
                kube.apply(
                    f"{name}-web-login",
                    objects.secret(
                        spec, names.WEB_LOGIN, spec.platform_namespace,
                        {"username": names.WEB_USER, "password": web_pw.result},
                    ),
                    monitoring, (self.namespace,),
                ),
            ]  # fmt: skip
            receivers = _alert_receivers(name, spec, inputs, kube, monitoring, self.namespace)
            stack = kube.release(
                "kube-prometheus-stack", ChartName.KUBE_PROMETHEUS_STACK, svc.monitoring.chart_version, platform_ns,
                alerts.with_certificate_report(values.monitoring_values(spec)), monitoring,
                (*data_deps, grafana_secret, *web_auth, *receivers),
            )  # fmt: skip
            self.releases["monitoring"] = stack
            # The PrometheusRule CRD comes with the chart.
            kube.apply(f"{name}-certificate-expiry", alerts.certificate_expiry_rule(spec), monitoring, (stack,))
            rbac = [
                kube.apply(f"{name}-apps-prometheus-{m['kind'].lower()}", m, monitoring, (self.namespace,))
                for m in objects.app_prometheus_rbac(spec)
            ]
            kube.apply(
                f"{name}-apps-prometheus", objects.app_prometheus(spec), monitoring, (stack, *storage_deps, *rbac)
            )
            if monitoring_values.replicas(spec) > 1:
                kube.apply(
                    f"{name}-apps-prometheus-pdb", objects.app_prometheus_pdb(spec), monitoring, (self.namespace,)
                )
            for m in objects.app_prometheus_exposure(spec):
                # The Ingress needs the ingress controller; the Service only its namespace.
                needs = (self.namespace, *ingress_deps) if m["kind"] == "Ingress" else (self.namespace,)
                kube.apply(f"{name}-apps-prometheus-{m['kind'].lower()}", m, monitoring, needs)
            monitoring.done()

        if svc.logging.enabled:
            self._logging(name, spec, kube, group("Logging"), platform_ns, cni_release, data_deps, web_deps)

        pull_config: pulumi.Output[str] | None = None
        if svc.registry.enabled:
            if inputs.registry_swift_username is None or inputs.registry_swift_password is None:
                raise ValueError(
                    "services.registry is enabled but ServiceInputs has no registry_swift_username/password: "
                    "Harbor's Swift storage driver needs a Keystone user"
                )
            registry = group("Registry")
            harbor_pw = _password(f"{name}-harbor-admin", registry)
            harbor_admin = kube.apply(
                f"{name}-harbor-admin",
                objects.secret(
                    spec, names.HARBOR_ADMIN, spec.platform_namespace, {"HARBOR_ADMIN_PASSWORD": harbor_pw.result}
                ),
                registry, (self.namespace,),
            )  # fmt: skip
            swift = kube.apply(
                f"{name}-harbor-swift",
                objects.secret(
                    spec, names.HARBOR_SWIFT, spec.platform_namespace,
                    {"REGISTRY_STORAGE_SWIFT_PASSWORD": pulumi.Output.secret(inputs.registry_swift_password)},
                ),
                registry, (self.namespace,),
            )  # fmt: skip
            # Every secret Harbor's chart would otherwise default ("not-a-secure-key", "changeit",
            # the published registry credentials) is generated here.
            internal = kube.apply(
                f"{name}-harbor-internal",
                objects.secret(
                    spec, names.HARBOR_INTERNAL, spec.platform_namespace,
                    {
                        key: _password(
                            f"{name}-{values.harbor_internal_password_name(key)}", registry, length=length
                        ).result
                        for key, length in values.HARBOR_INTERNAL_KEYS.items()
                    },
                ),
                registry, (self.namespace,),
            )  # fmt: skip
            database_pw = _password(f"{name}-harbor-database", registry)
            registry_pw = _password(f"{name}-harbor-registry-credentials", registry)
            kube.apply(
                f"{name}-harbor-redis-policy", objects.harbor_redis_network_policy(spec), registry, (self.namespace,)
            )
            harbor = kube.release(
                names.HARBOR_RELEASE, ChartName.HARBOR, svc.registry.chart_version, platform_ns,
                values.harbor_values(
                    spec, inputs.registry_swift_username, database_pw.result, registry_pw.result,
                    swift_project_id=inputs.project_id,
                ),
                registry, (*data_deps, harbor_admin, swift, internal),
            )  # fmt: skip
            self.releases["registry"] = harbor
            # The pull robot: its secret (Harbor's rules: upper, lower, digit) goes to a platform
            # Secret the registering Job reads and into every customer namespace's pull Secret.
            robot_pw = _password(f"{name}-registry-pull", registry)
            robot_secret = kube.apply(
                f"{name}-harbor-robot",
                objects.secret(spec, names.HARBOR_ROBOT, spec.platform_namespace, {"ROBOT_SECRET": robot_pw.result}),
                registry, (self.namespace,),
            )  # fmt: skip
            kube.apply(
                f"{name}-harbor-robot-job",
                objects.harbor_robot_job(spec),
                registry,
                (harbor, harbor_admin, robot_secret),
            )
            registry_host = values.host(spec, names.REGISTRY_HOST)
            robot = names.pull_robot_account(spec)
            pull_config = robot_pw.result.apply(lambda pw: objects.docker_config_json(registry_host, robot, pw))
            registry.done()

        if svc.backups.enabled:
            backups = group("Backups")
            credentials = kube.apply(
                f"{name}-velero-credentials",
                objects.secret(
                    spec, names.VELERO_CREDENTIALS, spec.platform_namespace,
                    {
                        "OS_AUTH_URL": spec.openstack.auth_url,
                        "OS_REGION_NAME": spec.openstack.region,
                        "OS_APPLICATION_CREDENTIAL_ID": pulumi.Output.secret(inputs.app_credentials[VELERO].id),
                        "OS_APPLICATION_CREDENTIAL_SECRET": pulumi.Output.secret(inputs.app_credentials[VELERO].secret),
                    },
                ),
                backups, (self.namespace,),
            )  # fmt: skip
            # Velero encrypts its Kopia repositories (file-system backups) with this password; without
            # the Secret it would create one holding a fixed, published default. Protected: the key to backups.
            repo_password = random.RandomPassword(
                f"{name}-velero-repository",
                **password_arguments(),
                opts=pulumi.ResourceOptions(parent=backups, protect=True, additional_secret_outputs=["result"]),
            )
            repository = kube.apply(
                f"{name}-velero-repository",
                objects.secret(
                    spec, names.VELERO_REPOSITORY, spec.platform_namespace,
                    {"repository-password": repo_password.result},
                ),
                backups, (self.namespace,),
            )  # fmt: skip
            velero = kube.release(
                "velero", ChartName.VELERO, svc.backups.chart_version, platform_ns,
                values.velero_values(spec), backups, (cni_release, credentials, repository),
            )  # fmt: skip
            self.releases["backups"] = velero
            if "monitoring" in self.releases:
                # Watched: its metrics scraped, failures alerted (CRDs from kube-prometheus-stack);
                # part of Monitoring, so they go with either switch.
                after = (velero, self.releases["monitoring"])
                watch = self.groups["Monitoring"]
                kube.apply(f"{name}-velero-monitor", monitoring_values.velero_service_monitor(spec), watch, after)
                kube.apply(f"{name}-velero-rules", monitoring_values.velero_prometheus_rule(spec), watch, after)
            backups.done()

        if svc.dashboard.enabled:
            dashboard = group("Dashboard")
            self.releases["dashboard"] = kube.release(
                "headlamp", ChartName.HEADLAMP, svc.dashboard.chart_version, platform_ns,
                values.headlamp_values(spec), dashboard, web_deps,
            )  # fmt: skip
            dashboard.done()

        # Customer namespaces (the default one and the listed ones): quota, default requests and
        # limits, optional default-deny, the registry pull secret (kaas.services.guardrails).
        customer_ns: dict[str, pulumi.Resource] = {}
        suffixes = {"ResourceQuota": "quota", "LimitRange": "limits", "NetworkPolicy": "deny"}
        for customer in spec.customer_namespaces:
            ns = kube.apply(f"{name}-ns-{customer}", objects.customer_namespace(spec, customer), namespaces)
            customer_ns[customer] = ns
            for guardrail in guardrails.namespace_guardrails(spec):
                kube.apply(
                    f"{name}-{suffixes[guardrail['kind']]}-{customer}",
                    guardrails.in_namespace(guardrail, customer), namespaces, (ns,),
                )  # fmt: skip
            if pull_config is not None:
                kube.apply(
                    f"{name}-pull-{customer}",
                    guardrails.pull_secret(spec, customer, pulumi.Output.secret(pull_config)),
                    self.groups["Registry"], (ns,),
                )  # fmt: skip
        # Namespaces created later: the same guardrails from an in-cluster reconciler.
        reconciler_deps: list[pulumi.Resource] = [self.namespace]
        if pull_config is not None:
            pull_source = kube.apply(
                f"{name}-guardrails-pull-source",
                guardrails.pull_source(spec, pulumi.Output.secret(pull_config)),
                self.groups["Registry"], (self.namespace,),
            )  # fmt: skip
            reconciler_deps.append(pull_source)
        for manifest in guardrails.reconciler(spec, with_pull_secret=pull_config is not None):
            # The Role and binding that read the pull source exist with the registry alone.
            parent = self.groups["Registry"] if manifest["kind"] in ("Role", "RoleBinding") else namespaces
            kube.apply(f"{name}-guardrails-{manifest['kind'].lower()}", manifest, parent, tuple(reconciler_deps))
        namespaces.done()

        if svc.keystone_auth.enabled and spec.identity.roles:
            self._access_bindings(name, spec, kube, customer_ns)

        self.register_outputs({"releases": {k: r.status for k, r in self.releases.items()}})

    def _access_bindings(
        self, name: str, spec: ClusterSpec, kube: _Kube, customer_ns: dict[str, pulumi.Resource]
    ) -> None:
        """The RBAC bindings of ``identity.roles`` (:mod:`kaas.services.access`), after their namespaces."""
        group = ServiceGroup("Access", f"{name}-access", self)
        self.groups["Access"] = group
        for manifest in access.role_bindings(spec):
            namespace = manifest["metadata"].get("namespace")
            role = manifest["metadata"]["name"].split(":", 1)[1]
            suffix = f"{role}-{namespace}" if namespace else role
            deps = (customer_ns[namespace],) if namespace else ()
            kube.apply(f"{name}-rbac-{suffix}", manifest, group, deps)
        group.done()

    def _logging(
        self,
        name: str,
        spec: ClusterSpec,
        kube: _Kube,
        logging: ServiceGroup,
        platform_ns: pulumi.Input[str],
        cni_release: pulumi.Resource,
        data_deps: Sequence[pulumi.Resource],
        web_deps: Sequence[pulumi.Resource],
    ) -> None:
        """OpenSearch without its demo security: certificates from the platform CA, users from Secrets.

        The releases that mount cert-manager-issued Secrets (OpenSearch, Dashboards, Fluent Bit)
        do not wait for cert-manager: the kubelet retries a Secret volume until it exists, and
        cert-manager issues them within seconds of starting, long before Helm's 900 s timeout;
        waiting would queue every logging release behind the cert-manager release. Only the
        Jobs that call OpenSearch wait for it (and for the admin certificate they present).
        """
        svc = spec.services
        ns = spec.platform_namespace

        def account(secret_name: str, username: str, **extra: pulumi.Input[str]) -> pulumi.Resource:
            # Mixed classes: OpenSearch's REST API refuses weak passwords (score-based validation).
            password = _password(f"{name}-{secret_name}", logging)
            return kube.apply(
                f"{name}-{secret_name}",
                objects.secret(spec, secret_name, ns, {"username": username, "password": password.result, **extra}),
                logging, (self.namespace,),
            )  # fmt: skip

        admin = account(names.OPENSEARCH_ADMIN, "admin")
        writer = account(names.OPENSEARCH_FLUENT_BIT, values.OPENSEARCH_FLUENT_BIT_USER)
        cookie = _password(f"{name}-opensearch-dashboards-cookie", logging)
        dashboards_account = account(
            names.OPENSEARCH_DASHBOARDS, values.OPENSEARCH_DASHBOARDS_USER, cookie=cookie.result
        )
        # The platform CA and OpenSearch's certificates (cert-manager; a spec rule requires it).
        cert_manager = self.releases["cert_manager"]
        ca_deps: list[pulumi.Resource] = [cert_manager, self.namespace]
        for manifest in objects.platform_ca_objects(spec):
            ca_deps = [
                cert_manager,
                kube.apply(
                    f"{name}-{manifest['kind'].lower()}-{manifest['metadata']['name']}", manifest, logging, ca_deps
                ),
            ]
        _node_cert, admin_cert = (
            kube.apply(f"{name}-certificate-{m['metadata']['name']}", m, logging, ca_deps)
            for m in objects.opensearch_certificates(spec)
        )
        opensearch = kube.release(
            "opensearch", ChartName.OPENSEARCH, svc.logging.chart_version, platform_ns,
            values.opensearch_values(spec), logging, data_deps,
        )  # fmt: skip
        self.releases["logging"] = opensearch
        kube.apply(
            f"{name}-opensearch-security",
            objects.opensearch_security_job(spec),
            logging,
            (opensearch, admin_cert, admin, writer, dashboards_account),
        )
        self.releases["logging_dashboards"] = kube.release(
            "opensearch-dashboards", ChartName.OPENSEARCH_DASHBOARDS, None, platform_ns,
            values.opensearch_dashboards_values(spec), logging, (*web_deps, dashboards_account),
        )  # fmt: skip
        self.releases["logging_shipper"] = kube.release(
            "fluent-bit", ChartName.FLUENT_BIT, None, platform_ns,
            values.fluent_bit_values(spec), logging, (cni_release, writer),
        )  # fmt: skip
        policy = kube.apply(f"{name}-ism-policy", objects.ism_policy_config_map(spec), logging, (self.namespace,))
        kube.apply(f"{name}-ism-policy-job", objects.ism_policy_job(spec), logging, (opensearch, policy, admin_cert))
        logging.done()


def _alert_receivers(
    name: str, spec: ClusterSpec, inputs: ServiceInputs, kube: _Kube, parent: ServiceGroup, namespace: pulumi.Resource
) -> list[pulumi.Resource]:
    """The Secret Alertmanager mounts: one key per receiver (and the heartbeat), each a Pulumi secret."""
    keys = monitoring_values.secret_keys(spec)
    if not keys:
        return []
    missing = sorted({config for config in keys.values() if config not in inputs.alerting_secrets})
    if missing:
        raise ValueError(f"alert receivers need the kaas config secrets {missing}; ServiceInputs has none for them")
    data: dict[str, pulumi.Input[str]] = {
        key: pulumi.Output.secret(inputs.alerting_secrets[config]) for key, config in keys.items()
    }
    manifest = objects.secret(spec, monitoring_values.RECEIVERS_SECRET, spec.platform_namespace, data)
    return [kube.apply(f"{name}-alertmanager-receivers", manifest, parent, (namespace,))]


def _kebab(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()
