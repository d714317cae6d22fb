"""The typed stack outputs: everything a customer handover needs, and no secret.

Each layer describes the facts it owns, as a typed part computed from the same
definitions the layer builds its resources from: :mod:`kaas.openstack.outputs` (node
tiers, API endpoint, cloud resources), :mod:`kaas.bootstrap.outputs` (etcd and its
backups), :mod:`kaas.services.outputs` (networking, RBAC, the managed services and
their URLs). This module assembles them into the versioned schema (``SCHEMA``) and
reads it back.

``build_stack_outputs(plan, facts)`` is a pure function from the cluster plan (the
spec, the nodes and the rollout step, :mod:`kaas.cluster_plan`) and the few values
only known at run time (:class:`ClusterFacts`: floating IPs, IDs, the CA)
to :class:`StackOutputs`. ``KaasCluster`` exports the model with one top-level stack
output per field (camelCase keys, see :func:`export_keys`); ``python -m kaas handover``
reads the JSON of ``pulumi stack output --json`` back with :func:`load_outputs`.

Secret outputs (the admin kubeconfig) are separate stack outputs, never part of the
model, and so are the operator's etcd client credentials for ``kaas roll`` (not handover
material): :func:`load_outputs` ignores those keys and any key whose value is masked as
``"[secret]"``, and rejects everything else that does not fit the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from kaas.bootstrap.outputs import EtcdOutput, etcd_output
from kaas.bootstrap.pki import ROLL_ETCD_OUTPUT_KEYS
from kaas.cluster_plan import ClusterPlan
from kaas.offline.planfile import SECRET_MASK
from kaas.openstack.outputs import (
    TIERS,
    ApiOutput,
    LayoutOutput,
    OpenStackOutput,
    api_output,
    layout_output,
    openstack_output,
)
from kaas.output_model import OutputModel, PemCertificate
from kaas.services.outputs import (
    AccessOutput,
    NetworkingOutput,
    RbacOutput,
    ServicesOutput,
    access_output,
    networking_output,
    platform_namespaces_output,
    rbac_output,
    services_output,
    storage_classes_output,
)

SCHEMA: Literal["kaas.outputs/v1"] = "kaas.outputs/v1"
# Stack outputs that hold secrets: exported separately (as Pulumi secrets), never in the model.
SECRET_OUTPUT_KEYS = frozenset(
    {"adminKubeconfig", "breakGlassKubeconfig", "kubeconfig", "etcdBackupKey", "etcdClientKeyPem"}
)
# kaas roll's etcd client (the etcd CA, the ``kaas-roll`` client certificate and its key,
# kaas.bootstrap.pki.ROLL_ETCD_OUTPUT_KEYS): separate stack outputs for the operator, the key
# a secret (above), the certificates plain; not part of the customer's model.
OPERATOR_OUTPUT_KEYS = frozenset(ROLL_ETCD_OUTPUT_KEYS) - SECRET_OUTPUT_KEYS


def minimum_kubectl_version(kubernetes_version: str) -> str:
    """kubectl is supported within one minor version of the API server (version skew policy)."""
    match = re.match(r"^v?(\d+)\.(\d+)", kubernetes_version)
    if match is None:
        raise ValueError(f"{kubernetes_version!r} is not a Kubernetes version like 1.34.2")
    major, minor = int(match.group(1)), int(match.group(2))
    return f"{major}.{max(minor - 1, 0)}"


class NodeRevisionOutput(OutputModel):
    """The revision one node runs (the rollout record's entry for it)."""

    image: str
    version: str
    template: int
    flavor: str
    key_pair: str | None
    volume_gb: int | None = None
    certificates: int = 1
    phase: Literal["running", "leaving"] = "running"


class RolloutOutput(OutputModel):
    """Where the rollout stands once this update is applied."""

    state: Literal["done", "in progress"]
    kubernetes_desired: str
    etcd_desired: str
    step: dict[str, str]
    pending: tuple[str, ...]


class StackOutputs(OutputModel):
    """The non-secret stack outputs; one top-level stack output per field."""

    outputs_schema: Literal["kaas.outputs/v1"] = SCHEMA
    cluster_name: str
    environment: Literal["production", "demo"]
    provider_name: str
    domain: str
    cluster_domain: str
    kubernetes_version: str
    minimum_kubectl_version: str
    api: ApiOutput
    ca_certificate: PemCertificate
    layout: LayoutOutput
    openstack: OpenStackOutput
    networking: NetworkingOutput
    etcd: EtcdOutput
    rbac: RbacOutput
    services: ServicesOutput
    platform_namespaces: tuple[str, ...]
    access: AccessOutput
    # Day 2 (absent in outputs written before rollouts existed).
    node_revisions: dict[str, NodeRevisionOutput] | None = None
    rollout: RolloutOutput | None = None


@dataclass(frozen=True)
class ClusterFacts:
    """Values only known once the cluster exists (resolved Pulumi outputs)."""

    api_floating_ip: str
    admin_role_id: str
    network_id: str
    subnet_id: str
    api_load_balancer_id: str
    ca_certificate: str
    ingress_floating_ip: str | None = None
    dns_zone_name: str | None = None
    dns_zone_id: str | None = None
    server_group_ids: Mapping[str, str] = field(default_factory=dict)


def build_stack_outputs(plan: ClusterPlan, facts: ClusterFacts) -> StackOutputs:
    """The stack outputs of ``plan`` once this update is applied, given the run-time ``facts``. Pure.

    Versions and node counts are what the nodes run after this step, not what the spec
    asks for: during a rollout ``kubernetesVersion`` is the oldest API server's.
    """
    spec = plan.spec
    kubernetes_version = plan.control_plane_version
    missing_groups = [tier for tier in TIERS if tier not in facts.server_group_ids]
    if missing_groups:
        raise ValueError(f"server_group_ids: no ID for tier(s) {', '.join(missing_groups)}")
    if spec.dns.enabled and (facts.dns_zone_name is None or facts.dns_zone_id is None):
        raise ValueError("dns_zone_name and dns_zone_id are required when the spec enables DNS")
    if spec.services.ingress.enabled and facts.ingress_floating_ip is None:
        raise ValueError("ingress_floating_ip is required when the spec enables the ingress controller")
    return StackOutputs(
        cluster_name=spec.name,
        environment=spec.environment.value,
        provider_name=spec.provider_name,
        domain=spec.domain,
        cluster_domain=spec.cluster_domain,
        kubernetes_version=kubernetes_version,
        minimum_kubectl_version=minimum_kubectl_version(kubernetes_version),
        api=api_output(plan, facts.api_floating_ip),
        ca_certificate=facts.ca_certificate,
        layout=layout_output(plan),
        openstack=openstack_output(
            spec,
            storage_classes=storage_classes_output(spec),
            admin_role_id=facts.admin_role_id,
            network_id=facts.network_id,
            subnet_id=facts.subnet_id,
            api_load_balancer_id=facts.api_load_balancer_id,
            api_floating_ip=facts.api_floating_ip,
            ingress_floating_ip=facts.ingress_floating_ip,
            dns_zone_name=facts.dns_zone_name,
            dns_zone_id=facts.dns_zone_id,
            server_group_ids=facts.server_group_ids,
        ),
        networking=networking_output(spec, facts.ingress_floating_ip),
        etcd=etcd_output(plan),
        rbac=rbac_output(spec, facts.admin_role_id),
        services=services_output(spec),
        platform_namespaces=platform_namespaces_output(spec),
        access=access_output(spec),
        node_revisions={name: NodeRevisionOutput(**entry) for name, entry in plan.node_revisions().items()},
        rollout=RolloutOutput(
            kubernetes_desired=spec.versions.kubernetes.lstrip("v"),
            etcd_desired=spec.versions.etcd.lstrip("v"),
            **plan.rollout_output(),
        ),
    )


def export_keys(outputs: Any) -> dict[str, Any]:
    """One stack output per top-level field, from a ``pulumi.Output`` of the dumped model.

    ``outputs`` is ``Output.all(**facts).apply(lambda f: build_stack_outputs(plan,
    ClusterFacts(**f)).model_dump(mode="json"))``; the keys are known before the
    values, so this can run at program time: ``for k, v in export_keys(o).items():
    pulumi.export(k, v)``.
    """
    return {key: outputs.apply(lambda dumped, key=key: dumped[key]) for key in output_keys()}


def output_keys() -> tuple[str, ...]:
    """The top-level stack output keys the model occupies."""
    return tuple(info.alias or name for name, info in StackOutputs.model_fields.items())


class OutputsError(Exception):
    """Stack outputs that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("\n".join(f"{source}: {p}" for p in problems))
        self.source = source
        self.problems = problems


def _problems(error: ValidationError) -> list[str]:
    found = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(document)"
        kind = item["type"]
        if kind == "missing":
            message = "is missing"
        elif kind == "extra_forbidden":
            message = "is not a known output"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            message += f"; got {item.get('input')!r}"[:200]
        found.append(f"{path}: {message}")
    return found


def load_outputs(data: object, source: str = "<outputs>") -> StackOutputs:
    """Validate ``pulumi stack output --json`` data; secrets are skipped, anything else must fit."""
    if not isinstance(data, dict):
        raise OutputsError(
            source,
            [f"must be a JSON object of stack outputs (pulumi stack output --json); got a {type(data).__name__}"],
        )
    if data.get("outputsSchema") != SCHEMA:
        if "outputsSchema" in data:
            found = data["outputsSchema"]
            raise OutputsError(
                source, [f"outputsSchema: {found!r} is not {SCHEMA!r} (written by another kaas version)"]
            )
        keys = ", ".join(sorted(map(str, data))[:8]) or "none"
        raise OutputsError(
            source,
            [f"not the outputs of a kaas stack: no 'outputsSchema' key (keys found: {keys})"],
        )
    model_keys = set(output_keys())
    masked = sorted(k for k, v in data.items() if v == SECRET_MASK and k in model_keys)
    if masked:
        raise OutputsError(
            source, [f"{key}: is masked as {SECRET_MASK!r} but is not a secret output" for key in masked]
        )
    skipped = SECRET_OUTPUT_KEYS | OPERATOR_OUTPUT_KEYS
    kept = {k: v for k, v in data.items() if k not in skipped and v != SECRET_MASK}
    try:
        return StackOutputs.model_validate(kept, by_alias=True, by_name=False)
    except ValidationError as error:
        raise OutputsError(source, _problems(error)) from None
