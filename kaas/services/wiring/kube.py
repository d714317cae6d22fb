"""How a service creates Kubernetes objects, Helm releases and generated passwords."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from kaas.services import images, objects
from kaas.services.catalog import ChartName, chart_for
from kaas.services.passwords import password_arguments

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


class Kube:
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


def password(
    name: str, parent: pulumi.Resource, length: int | None = None, keepers: dict[str, str] | None = None
) -> random.RandomPassword:
    """A password every consumer's policy accepts (:mod:`kaas.services.passwords`); ``length``
    where the consumer fixes it (Harbor's 16-character secrets, its 32-character XSRF key);
    ``keepers``: a change to them replaces the password (a new generation)."""
    arguments: dict[str, Any] = password_arguments()
    if length is not None:
        arguments["length"] = length
    if keepers is not None:
        arguments["keepers"] = keepers
    return random.RandomPassword(
        name,
        **arguments,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["result"]),
    )
