"""OpenStack integration: the cloud controller (OCCM) and Cinder CSI with its StorageClasses.

Each reads its own cloud-config Secret with its own application credential.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from kaas.services import names, objects, values
from kaas.services.catalog import ChartName
from kaas.services.inputs import CINDER_CSI, CLOUD_CONTROLLER, ServiceInputs
from kaas.services.wiring.deps import ServiceDeps, ServiceGroup, Wired


@dataclass(frozen=True, kw_only=True)
class OpenstackIntegration(Wired):
    storage: tuple[pulumi.Resource, ...]  # Cinder CSI and its StorageClasses (empty without Cinder CSI)


def _cloud_secret(
    deps: ServiceDeps, inputs: ServiceInputs, group: ServiceGroup, consumer: str, secret_name: str
) -> tuple[pulumi.CustomResource, pulumi.Output[str]]:
    """The consumer's cloud-config Secret and the checksum of its cloud.conf (for its pods' template)."""
    spec = deps.spec
    credential = inputs.app_credentials[consumer]
    conf: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(
            credential_id=credential.id,
            credential_secret=credential.secret,
            external_network_id=inputs.external_network_id,
            subnet_id=inputs.subnet_id,
        ).apply(
            lambda a: (
                values.cloud_config(spec, str(a["credential_id"]), str(a["credential_secret"]))
                + values.cloud_config_sections(spec, str(a["external_network_id"]), str(a["subnet_id"]))
            )
        )
    )
    secret = deps.kube.apply(
        f"{deps.name}-{secret_name}",
        objects.secret(spec, secret_name, names.KUBE_SYSTEM, {"cloud.conf": conf}),
        group,
    )
    return secret, values.config_checksum(conf)


def wire_openstack_integration(deps: ServiceDeps, inputs: ServiceInputs) -> OpenstackIntegration:
    name, spec, kube, svc = deps.name, deps.spec, deps.kube, deps.spec.services
    group = deps.group("OpenstackIntegration")
    releases = {}
    storage: tuple[pulumi.Resource, ...] = ()
    if svc.cloud_controller.enabled:
        occm_secret, occm_checksum = _cloud_secret(deps, inputs, group, CLOUD_CONTROLLER, names.CLOUD_CONFIG)
        releases["cloud_controller"] = kube.release(
            "openstack-ccm",
            ChartName.OPENSTACK_CLOUD_CONTROLLER_MANAGER,
            svc.cloud_controller.chart_version,
            names.KUBE_SYSTEM,
            values.occm_values(spec, occm_checksum),
            group,
            (deps.cni, occm_secret),
        )
    if svc.cinder_csi.enabled:
        csi_secret, csi_checksum = _cloud_secret(deps, inputs, group, CINDER_CSI, names.CSI_CLOUD_CONFIG)
        csi = kube.release(
            "cinder-csi",
            ChartName.OPENSTACK_CINDER_CSI,
            svc.cinder_csi.chart_version,
            names.KUBE_SYSTEM,
            values.cinder_csi_values(spec, csi_checksum),
            group,
            (deps.cni, csi_secret),
        )
        releases["cinder_csi"] = csi
        storage_classes = tuple(
            kube.apply(
                f"{name}-sc-{sc.key}",
                objects.storage_class(spec, sc.name, sc.reclaim_policy, default=sc.default),
                group,
                (csi,),
            )
            for sc in objects.CINDER_STORAGE_CLASSES
        )
        storage = (csi, *storage_classes)
    group.done()
    return OpenstackIntegration(group=group, releases=releases, storage=storage)
