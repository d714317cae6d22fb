"""The registry (Harbor on Swift) and its pull robot, whose credentials every customer namespace gets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from kaas.services import names, objects, values
from kaas.services.catalog import ChartName
from kaas.services.inputs import ServiceInputs
from kaas.services.wiring.deps import ServiceDeps, Wired
from kaas.services.wiring.kube import password


@dataclass(frozen=True, kw_only=True)
class Registry(Wired):
    pull_config: pulumi.Output[str]  # the pull robot's .dockerconfigjson (secret)
    robot_job_after: tuple[pulumi.Resource, ...]  # what the robot Job waits for besides the pull Secrets


def wire_registry(deps: ServiceDeps, inputs: ServiceInputs) -> Registry:
    if inputs.registry_swift_username is None or inputs.registry_swift_password is None:
        raise ValueError(
            "services.registry is enabled but ServiceInputs has no registry_swift_username/password: "
            "Harbor's Swift storage driver needs a Keystone user"
        )
    name, spec, kube = deps.name, deps.spec, deps.kube
    namespace, ns = deps.platform_namespace, spec.platform_namespace
    group = deps.group("Registry")
    harbor_pw = password(f"{name}-harbor-admin", group)
    harbor_admin = kube.apply(
        f"{name}-harbor-admin",
        objects.secret(spec, names.HARBOR_ADMIN, ns, {"HARBOR_ADMIN_PASSWORD": harbor_pw.result}),
        group,
        (namespace,),
    )
    swift_password = pulumi.Output.secret(inputs.registry_swift_password)
    swift = kube.apply(
        f"{name}-harbor-swift",
        objects.secret(spec, names.HARBOR_SWIFT, ns, {"REGISTRY_STORAGE_SWIFT_PASSWORD": swift_password}),
        group,
        (namespace,),
    )
    # Every secret Harbor's chart would otherwise default ("not-a-secure-key", "changeit",
    # the published registry credentials) is generated here.
    internal_passwords: dict[str, pulumi.Input[str]] = {
        key: password(f"{name}-{values.harbor_internal_password_name(key)}", group, length=length).result
        for key, length in values.HARBOR_INTERNAL_KEYS.items()
    }
    internal = kube.apply(
        f"{name}-harbor-internal",
        objects.secret(spec, names.HARBOR_INTERNAL, ns, internal_passwords),
        group,
        (namespace,),
    )
    database_pw = password(f"{name}-harbor-database", group)
    registry_pw = password(f"{name}-harbor-registry-credentials", group)
    kube.apply(f"{name}-harbor-redis-policy", objects.harbor_redis_network_policy(spec), group, (namespace,))
    harbor = kube.release(
        names.HARBOR_RELEASE,
        ChartName.HARBOR,
        spec.services.registry.chart_version,
        deps.platform_namespace_name,
        values.harbor_values(
            spec,
            inputs.registry_swift_username,
            database_pw.result,
            registry_pw.result,
            swift_project_id=inputs.project_id,
        ),
        group,
        (*deps.data, harbor_admin, swift, internal),
    )
    # The pull robot: its secret (Harbor's rules: upper, lower, digit) goes to a platform
    # Secret the registering Job reads and into every customer namespace's pull Secret. Robot
    # and secret are of the application credentials' generation (identity.credentials_issued):
    # the keepers replace the password when the robot's name changes.
    robot = names.pull_robot_name(spec)
    robot_pw = password(f"{name}-registry-pull", group, keepers={"robot": robot})
    robot_secret = kube.apply(
        f"{name}-harbor-robot",
        objects.secret(spec, names.HARBOR_ROBOT, ns, {"ROBOT_SECRET": robot_pw.result}),
        group,
        (namespace,),
    )
    registry_host = values.host(spec, names.REGISTRY_HOST)
    account = names.pull_robot_account(spec)
    pull_config = robot_pw.result.apply(lambda pw: objects.docker_config_json(registry_host, account, pw))
    group.done()
    return Registry(
        group=group,
        releases={"registry": harbor},
        pull_config=pull_config,
        robot_job_after=(harbor, harbor_admin, robot_secret),
    )


def wire_robot_job(deps: ServiceDeps, registry: Registry, pull_secrets: list[pulumi.Resource]) -> pulumi.Resource:
    """The Job that registers this generation's pull robot and retires older ones
    (:mod:`kaas.services.harbor_robot`). It starts once the program's pull Secrets (the spec'd
    namespaces' and the reconciler's source) carry the new generation, so that what it retires
    is no longer in a Secret the program writes; the reconciler's copies follow within its grace."""
    return deps.kube.apply(
        f"{deps.name}-harbor-robot-job",
        objects.harbor_robot_job(deps.spec),
        registry.group,
        (*registry.robot_job_after, *pull_secrets),
    )
