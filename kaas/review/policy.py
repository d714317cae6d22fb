"""Production-readiness rules: plain functions over resource records and the whole plan.

The same functions run in two places: ``python -m kaas check`` applies them to the
offline plan, and the CrossGuard pack in ``policy/`` adapts them to pulumi-policy
``StackValidationPolicy`` objects for ``pulumi preview/up --policy-pack policy``.
This module imports nothing from the Pulumi runtime, so the pack stays light.

Facts that are not visible as resources (the environment, the etcd backup
interval, monitoring and logging retention) come from the ``kaasPolicy`` input of
the ``kaas:index:Cluster`` component (:func:`kaas.cluster_plan.cluster_policy_facts` builds it from
the spec). The day-2 rule rebuilds the rollout step the plan performs from the
``kaasRollout`` input (the recorded node revisions, the desired ones) and the
instances' own revisions, then applies :func:`kaas.rollout.check_step` (kaas.rollout is
plain Python too). A violation is *mandatory* for a production stack and *advisory* for a
demo stack; a stack whose facts are missing is treated as production.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaas.platform import ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBELET_PORT
from kaas.rollout import ClusterState, Desired, Node, Phase, Revision, Step, Tier, check_step, moves_between
from kaas.rollout.model import desired_from_data, state_from_data
from kaas.rollout.planner import pending_moves

INSTANCE = "openstack:compute/instance:Instance"
SERVER_GROUP = "openstack:compute/serverGroup:ServerGroup"
SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
LOAD_BALANCER = "openstack:loadbalancer/loadBalancer:LoadBalancer"
LB_MEMBER = "openstack:loadbalancer/member:Member"
LB_MONITOR = "openstack:loadbalancer/monitor:Monitor"
CONTAINER = "openstack:objectstorage/container:Container"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER = "kaas:index:Cluster"
FACTS_KEY = "kaasPolicy"

SSH_PORT = 22
ADMIN_PORTS = {SSH_PORT: "SSH", ETCD_CLIENT_PORT: "etcd client", ETCD_PEER_PORT: "etcd peer", KUBELET_PORT: "kubelet"}
MAX_BACKUP_INTERVAL_HOURS = 8


@dataclass(frozen=True)
class Record:
    """What a rule sees of one resource: the fields both the offline plan and pulumi-policy have."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    protect: bool = False
    retain_on_delete: bool | None = False  # None: not known (pulumi-policy does not expose retainOnDelete)
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    urn: str | None = None


@dataclass(frozen=True)
class PlanView:
    """The whole plan as the rules see it."""

    resources: Sequence[Record]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    is_secret: Callable[[Any], bool] = lambda value: False
    # Used when no Cluster component in the plan carries facts (``kaas check`` passes the spec's).
    default_facts: Mapping[str, Any] = field(default_factory=dict)

    def by_type(self, type_token: str) -> list[Record]:
        return [r for r in self.resources if r.type == type_token]

    def facts(self) -> Mapping[str, Any]:
        for record in self.by_type(CLUSTER):
            facts = record.inputs.get(FACTS_KEY)
            if isinstance(facts, Mapping):
                return facts
        return self.default_facts


def is_production(view: PlanView) -> bool:
    return bool(view.facts().get("environment", "production") != "demo")


# ---------------------------------------------------------------------------
# Classifying resources.

TIER_KEY = "kaas-tier"  # instance metadata set by kaas.openstack.nodes.NodeTier
PURPOSE_KEY = "kaas-purpose"  # container metadata set by kaas.openstack.storage.ObjectStorage
BACKUP_PURPOSES = frozenset({"etcd_backups", "cluster_backups"})


def _metadata(record: Record, key: str) -> str | None:
    metadata = record.inputs.get("metadata")
    value = metadata.get(key) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) else None


def tier_of(record: Record) -> str | None:
    """``etcd``/``master``/``worker``: the instance's ``kaas-tier`` metadata (names prove nothing)."""
    tier = _metadata(record, TIER_KEY)
    return tier if tier in ("etcd", "master", "worker") else None


def instances(view: PlanView, tier: str) -> list[Record]:
    return [r for r in view.by_type(INSTANCE) if tier_of(r) == tier]


# ---------------------------------------------------------------------------
# The rules. Each returns violations; an empty list is a pass.


def _hard_anti_affinity(group: Record) -> bool:
    policies = group.inputs.get("policies")  # one policy name (a list in older provider versions)
    names = [policies] if isinstance(policies, str) else list(policies or [])
    return "anti-affinity" in names


def etcd_quorum(view: PlanView) -> list[Violation]:
    """The etcd tier has an odd number (>= 3) of members in a hard anti-affinity server group.

    During a rollout a member is added before one is removed, so the tier may hold one
    member more or less than the spec's (odd) count for a step; retired members do not count.
    """
    rule = "etcd-quorum"
    members = [m for m in instances(view, "etcd") if _metadata(m, PHASE_KEY) != Phase.LEAVING]
    found: list[Violation] = []
    planned = planned_step(view)
    wanted = planned[0].etcd.count if planned is not None else len(members)
    in_rollout = planned is not None and not planned[1].bootstrap
    if wanted < 3 or wanted % 2 == 0 or abs(len(members) - wanted) > (1 if in_rollout else 0):
        spec = f" (spec: {wanted})" if wanted != len(members) else ""
        found.append(Violation(rule, f"etcd tier has {len(members)} members{spec}; it needs an odd number, at least 3"))
    groups = {g.urn: g for g in view.by_type(SERVER_GROUP)}
    for member in members:
        hinted = [groups[u] for u in member.property_dependencies.get("schedulerHints", []) if u in groups]
        if not any(_hard_anti_affinity(g) for g in hinted):
            found.append(
                Violation(rule, f"etcd member {member.name} is not in a hard anti-affinity server group", member.urn)
            )
    return found


def masters_behind_load_balancer(view: PlanView) -> list[Violation]:
    """At least 3 masters, a load balancer with at least 3 members, and a health monitor."""
    rule = "masters-behind-load-balancer"
    found: list[Violation] = []
    masters = instances(view, "master")
    if len(masters) < 3:
        found.append(Violation(rule, f"{len(masters)} master(s); production needs at least 3"))
    if not view.by_type(LOAD_BALANCER):
        found.append(Violation(rule, "no load balancer in front of the API servers"))
    members = view.by_type(LB_MEMBER)
    if len(members) < 3:
        found.append(Violation(rule, f"the API load balancer has {len(members)} member(s); it needs at least 3"))
    if not view.by_type(LB_MONITOR):
        found.append(Violation(rule, "the API load balancer pool has no health monitor"))
    return found


def _ports(inputs: Mapping[str, Any]) -> range:
    low = inputs.get("portRangeMin") or 1
    high = inputs.get("portRangeMax") or (65535 if not inputs.get("portRangeMin") else low)
    return range(int(low), int(high) + 1)


def _world(version: int) -> str:
    return "0.0.0.0/0" if version == 4 else "::/0"


def admin_ports_closed_to_world(view: PlanView) -> list[Violation]:
    """No ingress rule opens SSH, etcd (2379/2380) or the kubelet (10250) to 0.0.0.0/0 or ::/0.

    Prefixes of several rules that together cover the whole internet (``0.0.0.0/1`` and
    ``128.0.0.0/1``) count as one rule open to the world.
    """
    rule = "admin-ports-closed-to-world"
    found: list[Violation] = []
    partial: dict[tuple[int, int], list[tuple[Record, ipaddress.IPv4Network | ipaddress.IPv6Network]]] = {}
    for record in view.by_type(SEC_GROUP_RULE):
        inputs = record.inputs
        if inputs.get("direction", "ingress") != "ingress" or inputs.get("protocol") not in (None, "", "tcp", "any"):
            continue
        if inputs.get("remoteGroupId"):
            continue
        version = 6 if inputs.get("ethertype") == "IPv6" else 4
        prefix = inputs.get("remoteIpPrefix") or _world(version)
        try:
            network = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            continue
        ports = _ports(inputs)
        for port, what in ADMIN_PORTS.items():
            if port not in ports:
                continue
            if network.prefixlen == 0:
                found.append(Violation(rule, f"{record.name} opens {what} port {port} to {prefix}", record.urn))
            else:
                partial.setdefault((port, network.version), []).append((record, network))
    for (port, version), opened in sorted(partial.items(), key=lambda item: item[0]):
        networks = [network for _, network in opened]
        if any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(networks)):  # type: ignore[type-var]
            names = ", ".join(sorted({r.name for r, _ in opened}))
            prefixes = ", ".join(str(n) for n in sorted(networks))
            found.append(
                Violation(
                    rule,
                    f"{ADMIN_PORTS[port]} port {port} is open to {_world(version)} through {names} ({prefixes})",
                    opened[0][0].urn,
                )
            )
    return found


def _is_backup_container(record: Record) -> bool:
    """An etcd or cluster backup container: its ``kaas-purpose`` metadata (the registry's is not a backup)."""
    return _metadata(record, PURPOSE_KEY) in BACKUP_PURPOSES


def backup_containers_protected(view: PlanView) -> list[Violation]:
    """Backup containers are protected and retained when the stack is destroyed."""
    rule = "backup-containers-protected"
    found: list[Violation] = []
    containers = [r for r in view.by_type(CONTAINER) if _is_backup_container(r)]
    if not containers:
        found.append(Violation(rule, "no backup container in the plan"))
    for record in containers:
        if not record.protect:
            found.append(Violation(rule, f"backup container {record.name} is not protected", record.urn))
        if record.retain_on_delete is False:
            found.append(Violation(rule, f"backup container {record.name} is not retained on delete", record.urn))
    return found


def etcd_nodes_protected(view: PlanView) -> list[Violation]:
    """Every etcd member is protected (deleting one by accident costs quorum); a retired one may go."""
    rule = "etcd-nodes-protected"
    return [
        Violation(rule, f"etcd member {r.name} is not protected", r.urn)
        for r in instances(view, "etcd")
        if not r.protect and _metadata(r, PHASE_KEY) != Phase.LEAVING
    ]


# ---------------------------------------------------------------------------
# Day 2: the rollout step a plan performs, rebuilt from its instances.

ROLLOUT_KEY = "kaasRollout"  # Cluster component input: {"desired": ..., "recorded": ... | None}
PHASE_KEY = "kaas-phase"


def node_of(record: Record) -> Node | None:
    """The node an instance is, at the revision it is built with (None: not a kaas node)."""
    tier = tier_of(record)
    index, version, image = (_metadata(record, k) for k in ("kaas-index", "kaas-version", "kaas-image"))
    template, phase = _metadata(record, "kaas-template"), _metadata(record, PHASE_KEY)
    if tier is None or index is None or version is None or image is None or template is None:
        return None
    devices = record.inputs.get("blockDevices") or []
    volume = devices[0].get("volumeSize") if devices and isinstance(devices[0], Mapping) else None
    revision = Revision(
        image=image,
        version=version,
        template=int(template),
        flavor=str(record.inputs.get("flavorName")),
        key_pair=record.inputs.get("keyPair"),
        volume_gb=int(volume) if volume is not None else None,
        certificates=int(_metadata(record, "kaas-certificates") or 1),
    )
    return Node(Tier(tier), int(index), revision, Phase(phase or Phase.RUNNING))


def planned_step(view: PlanView) -> tuple[Desired, Step] | None:
    """``(desired, step)``: from the recorded state (the Cluster component's facts) to what the plan's
    instances are built as. None when the plan carries no rollout facts."""
    for cluster in view.by_type(CLUSTER):
        facts = cluster.inputs.get(ROLLOUT_KEY)
        if isinstance(facts, Mapping):
            break
    else:
        return None
    desired = desired_from_data(facts["desired"])
    nodes = [node for node in (node_of(r) for r in view.by_type(INSTANCE)) if node is not None]
    after = ClusterState(tuple(nodes))
    recorded = facts.get("recorded")
    if recorded is None:
        return desired, Step(
            desired.cluster, ClusterState(), after, moves_between(ClusterState(), after), bootstrap=True
        )
    before = state_from_data(recorded)
    return desired, Step(desired.cluster, before, after, moves_between(before, after), pending_moves(desired, after))


def day2_rollout_safe(view: PlanView) -> list[Violation]:
    """The update keeps etcd quorum, the API and the workloads serving, with no version skew."""
    rule = "day2-rollout-safe"
    planned = planned_step(view)
    if planned is None:
        return []
    desired, step = planned
    return [Violation(rule, str(violation)) for violation in check_step(desired, step)]


def backups_scheduled(view: PlanView) -> list[Violation]:
    """etcd is backed up at least every 8 hours."""
    rule = "backups-scheduled"
    interval = view.facts().get("etcdBackupIntervalHours")
    if not isinstance(interval, int):
        return [Violation(rule, "the etcd backup interval is unknown (no kaasPolicy facts on the Cluster component)")]
    if interval > MAX_BACKUP_INTERVAL_HOURS:
        return [Violation(rule, f"etcd is backed up every {interval} h; at most every {MAX_BACKUP_INTERVAL_HOURS} h")]
    return []


def monitoring_and_logging(view: PlanView) -> list[Violation]:
    """Monitoring and logging are enabled, each with a retention of more than 0 days."""
    rule = "monitoring-and-logging"
    facts = view.facts()
    found: list[Violation] = []
    for service in ("monitoring", "logging"):
        section = facts.get(service)
        if not isinstance(section, Mapping):
            found.append(Violation(rule, f"{service} is unknown (no kaasPolicy facts on the Cluster component)"))
        elif not section.get("enabled"):
            found.append(Violation(rule, f"{service} is disabled"))
        elif not (section.get("retentionDays") or 0) > 0:
            found.append(Violation(rule, f"{service} retention is {section.get('retentionDays')} days; it must be > 0"))
    return found


MONITORING_CHART = "kube-prometheus-stack"


def _routes(route: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    children = [r for r in route.get("routes") or [] if isinstance(r, Mapping)]
    return [route, *(nested for child in children for nested in _routes(child))]


def _pages_someone(receiver: Mapping[str, Any]) -> bool:
    return any(key.endswith("_configs") and value for key, value in receiver.items())


def alerts_routed(view: PlanView) -> list[Violation]:
    """Alertmanager routes alerts to at least one receiver besides the Watchdog's heartbeat."""
    rule = "alerts-routed"
    found: list[Violation] = []
    for record in view.by_type(HELM_RELEASE):
        if record.inputs.get("chart") != MONITORING_CHART:
            continue
        values = record.inputs.get("values")
        alertmanager = values.get("alertmanager") if isinstance(values, Mapping) else None
        config = alertmanager.get("config") if isinstance(alertmanager, Mapping) else None
        config = config if isinstance(config, Mapping) else {}
        receivers = {r.get("name"): r for r in config.get("receivers") or [] if isinstance(r, Mapping)}
        route = config.get("route")
        route = route if isinstance(route, Mapping) else {}
        routed = {
            r.get("receiver") for r in _routes(route) if not any("Watchdog" in str(m) for m in r.get("matchers") or [])
        }
        if not any(_pages_someone(receivers[name]) for name in routed if name in receivers):
            found.append(
                Violation(
                    rule,
                    f"Helm release {record.name}: Alertmanager has no receiver for alerts "
                    "(set services.monitoring.alerting.receivers)",
                    record.urn,
                )
            )
    return found


_SECRET_OUTPUT = re.compile(r"kubeconfig|password|passwd|token|secret|private.?key|credential", re.IGNORECASE)


def secrets_not_in_plain_outputs(view: PlanView) -> list[Violation]:
    """Stack outputs named like credentials (kubeconfig, password, token, key, ...) are Pulumi secrets."""
    rule = "secrets-not-in-plain-outputs"
    return [
        Violation(rule, f"stack output {key} holds a credential but is not a secret")
        for key, value in sorted(view.outputs.items())
        if _SECRET_OUTPUT.search(key) and value not in (None, "") and not view.is_secret(value)
    ]


_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")


def helm_releases_pinned(view: PlanView) -> list[Violation]:
    """Every Helm release names an exact chart version (no range, no latest)."""
    rule = "helm-releases-pinned"
    found: list[Violation] = []
    for record in view.by_type(HELM_RELEASE):
        version = record.inputs.get("version")
        if not isinstance(version, str) or not _EXACT_VERSION.match(version):
            found.append(
                Violation(rule, f"Helm release {record.name} is not pinned to a version (got {version!r})", record.urn)
            )
    return found


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[PlanView], list[Violation]]
    # Whether the pulumi-policy pack can evaluate it (the analyzer does not see which values are secret).
    in_pack: bool = True


RULES: tuple[Rule, ...] = tuple(
    Rule(name, (func.__doc__ or name).strip().splitlines()[0], func, in_pack)
    for name, func, in_pack in (
        ("etcd-quorum", etcd_quorum, True),
        ("masters-behind-load-balancer", masters_behind_load_balancer, True),
        ("admin-ports-closed-to-world", admin_ports_closed_to_world, True),
        ("backup-containers-protected", backup_containers_protected, True),
        ("etcd-nodes-protected", etcd_nodes_protected, True),
        ("backups-scheduled", backups_scheduled, True),
        ("monitoring-and-logging", monitoring_and_logging, True),
        ("alerts-routed", alerts_routed, True),
        ("secrets-not-in-plain-outputs", secrets_not_in_plain_outputs, False),
        ("helm-releases-pinned", helm_releases_pinned, True),
        ("day2-rollout-safe", day2_rollout_safe, True),
    )
)


def evaluate(view: PlanView, rules: Sequence[Rule] = RULES) -> list[Violation]:
    return [violation for rule in rules for violation in rule.check(view)]
