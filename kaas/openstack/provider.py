"""The explicit OpenStack provider every OpenStack resource uses."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from kaas.spec.models import OpenStackSpec


def openstack_provider(name: str, spec: OpenStackSpec, parent: pulumi.Resource) -> openstack.Provider:
    """Credentials come from the operator's clouds.yaml entry ``spec.cloud``; none live in the stack."""
    return openstack.Provider(
        f"{name}-openstack",
        cloud=spec.cloud,
        region=spec.region,
        opts=pulumi.ResourceOptions(parent=parent),
    )
