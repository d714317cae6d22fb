"""The Kubernetes layer: managed services released with Helm, Keystone RBAC, storage, ingress."""

from kaas.services.component import ManagedServices
from kaas.services.inputs import ServiceInputs

__all__ = ["ManagedServices", "ServiceInputs"]
