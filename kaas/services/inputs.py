"""What the services layer takes from the other layers (``ServiceInputs``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pulumi


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
