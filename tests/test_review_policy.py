"""Production-readiness rules: each passes on a sound plan and fails on a broken one.

The plans come from the offline engine running small programs that register the
same resource types, names and options the layers use; the pack's pulumi-policy
``validate`` functions are called with ``StackValidationArgs`` built from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_openstack as openstack
import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
)

from kaas.cluster_plan import cluster_policy_facts
from kaas.offline import Plan, run_plan
from kaas.offline.planfile import plain
from kaas.review.check import check_plan
from kaas.review.policy import RULES
from kaas.review.policy_pack import build_policies
from kaas.rollout.model import desired_to_data, state_to_data
from kaas.rollout.record import desired_from_spec
from tests.helpers import make_spec


@dataclass(frozen=True)
class Shape:
    """Knobs of a synthetic cluster; the defaults are production ready."""

    environment: str = "production"
    etcd: int = 3
    etcd_policy: str = "anti-affinity"
    etcd_protect: bool = True
    masters: int = 3
    load_balancer: bool = True
    monitor: bool = True
    ssh_prefix: str = "198.51.100.0/24"
    etcd_rule_prefix: str | None = None  # a remote group by default
    backup_protect: bool = True
    backup_retain: bool = True
    backup_interval: int = 8
    monitoring_enabled: bool = True
    logging_retention: int = 7
    kubeconfig_secret: bool = True
    chart_version: str | None = "1.2.3"
    alert_receiver: bool = True
    facts: dict[str, Any] = field(default_factory=dict)
    rollout: dict[str, Any] | None = None  # the Cluster component's kaasRollout facts


def cluster_program(shape: Shape) -> Callable[[], None]:
    def run() -> None:
        facts = cluster_policy_facts(make_spec(environment=shape.environment))
        facts |= {"etcdBackupIntervalHours": shape.backup_interval}
        facts["monitoring"] = {**facts["monitoring"], "enabled": shape.monitoring_enabled}
        facts["logging"] = {**facts["logging"], "retentionDays": shape.logging_retention}
        inputs: dict[str, Any] = {"kaasPolicy": facts | shape.facts}
        if shape.rollout is not None:
            inputs["kaasRollout"] = shape.rollout
        cluster = pulumi.ComponentResource("kaas:index:Cluster", "c1", inputs)
        provider = openstack.Provider("c1-openstack", cloud="c", opts=pulumi.ResourceOptions(parent=cluster))
        child = pulumi.ResourceOptions(parent=cluster, provider=provider)
        group = openstack.compute.ServerGroup("c1-etcd", name="c1-etcd", policies=shape.etcd_policy, opts=child)
        for index in range(shape.etcd):
            openstack.compute.Instance(
                f"c1-etcd-{index}",
                flavor_name="f",
                metadata={"kaas-tier": "etcd"},
                scheduler_hints=[{"group": group.id}],
                opts=pulumi.ResourceOptions(parent=cluster, provider=provider, protect=shape.etcd_protect),
            )
        masters = [
            openstack.compute.Instance(f"c1-master-{i}", flavor_name="f", metadata={"kaas-tier": "master"}, opts=child)
            for i in range(shape.masters)
        ]
        if shape.load_balancer:
            lb = openstack.loadbalancer.LoadBalancer("c1-api", vip_subnet_id="s", opts=child)
            pool = openstack.loadbalancer.Pool(
                "c1-api", protocol="TCP", lb_method="ROUND_ROBIN", loadbalancer_id=lb.id, opts=child
            )
            for index, master in enumerate(masters):
                openstack.loadbalancer.Member(
                    f"c1-api-{index}", pool_id=pool.id, address=master.access_ip_v4, protocol_port=6443, opts=child
                )
            if shape.monitor:
                openstack.loadbalancer.Monitor(
                    "c1-api", pool_id=pool.id, type="TCP", delay=5, timeout=3, max_retries=3, opts=child
                )
        secgroup = openstack.networking.SecGroup("c1-nodes", name="c1-nodes", opts=child)
        openstack.networking.SecGroupRule(
            "c1-ssh", direction="ingress", ethertype="IPv4", protocol="tcp", port_range_min=22, port_range_max=22,
            remote_ip_prefix=shape.ssh_prefix, security_group_id=secgroup.id, opts=child,
        )  # fmt: skip
        openstack.networking.SecGroupRule(
            "c1-etcd-client", direction="ingress", ethertype="IPv4", protocol="tcp", port_range_min=2379,
            port_range_max=2380, remote_ip_prefix=shape.etcd_rule_prefix,
            remote_group_id=None if shape.etcd_rule_prefix else secgroup.id, security_group_id=secgroup.id, opts=child,
        )  # fmt: skip
        openstack.objectstorage.Container(
            "c1-etcd-backups",
            name="c1-etcd-backups",
            metadata={"kaas-purpose": "etcd_backups"},
            opts=pulumi.ResourceOptions(
                parent=cluster, provider=provider, protect=shape.backup_protect, retain_on_delete=shape.backup_retain
            ),
        )
        k8s = kubernetes.Provider("c1-k8s", kubeconfig="{}", opts=pulumi.ResourceOptions(parent=cluster))
        kubernetes.helm.v3.Release(
            "c1-ingress",
            chart="ingress-nginx",
            version=shape.chart_version,
            opts=pulumi.ResourceOptions(parent=cluster, provider=k8s),
        )
        # Alertmanager's routing as the chart's values carry it: the Watchdog to a heartbeat,
        # and (unless broken) critical alerts to PagerDuty.
        heartbeat = {"name": "dead-mans-switch", "webhook_configs": [{"url_file": "/s/hb"}]}
        pager = {"name": "oncall", "pagerduty_configs": [{"routing_key_file": "/s/pd"}]}
        routes = [{"receiver": "dead-mans-switch", "matchers": ['alertname = "Watchdog"']}]
        if shape.alert_receiver:
            routes.append({"receiver": "oncall", "matchers": ['severity =~ "critical"']})
        config = {
            "route": {"receiver": "null", "routes": routes},
            "receivers": [{"name": "null"}, heartbeat, *([pager] if shape.alert_receiver else [])],
        }
        kubernetes.helm.v3.Release(
            "c1-monitoring",
            chart="kube-prometheus-stack",
            version="88.5.3",
            values={"alertmanager": {"config": config}},
            opts=pulumi.ResourceOptions(parent=cluster, provider=k8s),
        )
        kubeconfig = "apiVersion: v1\nkind: Config\n"
        pulumi.export("kubeconfig", pulumi.Output.secret(kubeconfig) if shape.kubeconfig_secret else kubeconfig)
        pulumi.export("clusterName", "c1")

    return run


def plan_of(shape: Shape) -> Plan:
    return run_plan(cluster_program(shape), stack="policy")


def violations(shape: Shape) -> dict[str, list[str]]:
    _, found = check_plan(plan_of(shape))
    by_rule: dict[str, list[str]] = {}
    for violation in found:
        by_rule.setdefault(violation.rule, []).append(violation.message)
    return by_rule


SOUND = Shape()

# One broken shape per rule, and a message the rule must print.
_DESIRED = desired_from_spec(make_spec(etcd={"count": 3}, masters={"count": 3}))
RECORDED_ROLLOUT = {"desired": desired_to_data(_DESIRED), "recorded": state_to_data(_DESIRED.initial_state())}

BROKEN = [
    ("etcd-quorum", replace(SOUND, etcd=4), "etcd tier has 4 members; it needs an odd number, at least 3"),
    ("etcd-quorum", replace(SOUND, etcd=1), "etcd tier has 1 members"),
    ("etcd-quorum", replace(SOUND, etcd_policy="soft-anti-affinity"), "is not in a hard anti-affinity server group"),
    ("masters-behind-load-balancer", replace(SOUND, masters=1), "1 master(s); production needs at least 3"),
    ("masters-behind-load-balancer", replace(SOUND, load_balancer=False), "no load balancer"),
    ("masters-behind-load-balancer", replace(SOUND, monitor=False), "no health monitor"),
    ("admin-ports-closed-to-world", replace(SOUND, ssh_prefix="0.0.0.0/0"), "c1-ssh opens SSH port 22 to 0.0.0.0/0"),
    ("admin-ports-closed-to-world", replace(SOUND, etcd_rule_prefix="0.0.0.0/0"), "opens etcd client port 2379"),
    ("backup-containers-protected", replace(SOUND, backup_protect=False), "c1-etcd-backups is not protected"),
    ("backup-containers-protected", replace(SOUND, backup_retain=False), "c1-etcd-backups is not retained on delete"),
    ("etcd-nodes-protected", replace(SOUND, etcd_protect=False), "etcd member c1-etcd-0 is not protected"),
    ("backups-scheduled", replace(SOUND, backup_interval=12), "etcd is backed up every 12 h; at most every 8 h"),
    ("monitoring-and-logging", replace(SOUND, monitoring_enabled=False), "monitoring is disabled"),
    ("monitoring-and-logging", replace(SOUND, logging_retention=0), "logging retention is 0 days"),
    (
        "secrets-not-in-plain-outputs",
        replace(SOUND, kubeconfig_secret=False),
        "stack output kubeconfig holds a credential",
    ),
    ("helm-releases-pinned", replace(SOUND, chart_version=None), "Helm release c1-ingress is not pinned"),
    ("helm-releases-pinned", replace(SOUND, chart_version="^1.2"), "not pinned to a version (got '^1.2')"),
    # Only the Watchdog's heartbeat has a destination: every other alert goes nowhere.
    ("alerts-routed", replace(SOUND, alert_receiver=False), "c1-monitoring: Alertmanager has no receiver for alerts"),
    # The recorded nodes are gone from the plan without being retired first (and none is built).
    ("day2-rollout-safe", replace(SOUND, rollout=RECORDED_ROLLOUT), "[retire-before-delete] t1-etcd-0, t1-etcd-1"),
]


def test_sound_production_plan_passes_every_rule() -> None:
    mandatory, found = check_plan(plan_of(SOUND))
    assert mandatory and found == []


def test_every_rule_has_a_failing_case() -> None:
    assert {rule for rule, _, _ in BROKEN} == {rule.name for rule in RULES}


@pytest.mark.parametrize(("rule", "shape", "message"), BROKEN, ids=[f"{r}:{m[:30]}" for r, _, m in BROKEN])
def test_broken_plan_violates_exactly_its_rule(rule: str, shape: Shape, message: str) -> None:
    found = violations(shape)
    assert set(found) == {rule}
    assert any(message in m for m in found[rule]), found


def test_demo_stack_violations_are_advisory() -> None:
    mandatory, found = check_plan(plan_of(replace(SOUND, environment="demo", etcd=1, masters=1)))
    assert not mandatory
    assert {v.rule for v in found} == {"etcd-quorum", "masters-behind-load-balancer"}


def test_missing_facts_count_as_production_and_name_the_gap() -> None:
    def bare() -> None:
        pulumi.ComponentResource("kaas:index:Cluster", "c1")

    mandatory, found = check_plan(run_plan(bare, stack="bare"))
    assert mandatory
    assert "no kaasPolicy facts on the Cluster component" in " ".join(v.message for v in found)


# --- the pulumi-policy pack ------------------------------------------------------------------------


def stack_args(plan: Plan) -> StackValidationArgs:
    """What the analyzer would hand a stack validation: every resource with its properties and options."""
    resources: dict[str, PolicyResource] = {}
    for record in plan.resources:
        options = PolicyResourceOptions(
            protect=bool(record.options["protect"]),
            ignore_changes=list(record.options["ignoreChanges"]),
            delete_before_replace=bool(record.options["deleteBeforeReplace"]),
            aliases=[],
            custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
            additional_secret_outputs=list(record.options["additionalSecretOutputs"]),
            parent=record.parent,
        )
        resources[record.urn] = PolicyResource(
            record.type, plain(record.inputs, show_secrets=True), record.urn, record.name, options, None, None, [], {}
        )
    for record in plan.resources:
        resources[record.urn].property_dependencies = {
            key: [resources[u] for u in urns if u in resources] for key, urns in record.property_dependencies.items()
        }
    return StackValidationArgs(list(resources.values()))


def pack_report(shape: Shape) -> dict[str, list[tuple[str, str | None]]]:
    args = stack_args(plan_of(shape))
    reported: dict[str, list[tuple[str, str | None]]] = {}
    for policy in build_policies():
        policy.validate(
            args, lambda message, urn=None, name=policy.name: reported.setdefault(name, []).append((message, urn))
        )
    return reported


def test_pack_has_a_mandatory_and_an_advisory_policy_per_rule() -> None:
    levels = {p.name: p.enforcement_level for p in build_policies()}
    in_pack = [r.name for r in RULES if r.in_pack]
    assert {n: levels[n] for n in in_pack} == dict.fromkeys(in_pack, EnforcementLevel.MANDATORY)
    assert {n: levels[f"{n}-demo"] for n in in_pack} == dict.fromkeys(in_pack, EnforcementLevel.ADVISORY)
    assert "secrets-not-in-plain-outputs" not in levels  # the analyzer cannot see which values are secret


def test_pack_passes_a_sound_production_stack() -> None:
    assert pack_report(SOUND) == {}


def test_pack_reports_a_world_open_ssh_rule_as_mandatory_on_production() -> None:
    reported = pack_report(replace(SOUND, ssh_prefix="0.0.0.0/0"))
    assert list(reported) == ["admin-ports-closed-to-world"]
    ((message, urn),) = reported["admin-ports-closed-to-world"]
    assert message == "c1-ssh opens SSH port 22 to 0.0.0.0/0" and urn is not None and urn.endswith("::c1-ssh")


def test_pack_reports_demo_stack_problems_only_as_advisory() -> None:
    reported = pack_report(replace(SOUND, environment="demo", etcd=1))
    assert list(reported) == ["etcd-quorum-demo"]


def test_pack_checks_etcd_anti_affinity_through_property_dependencies() -> None:
    reported = pack_report(replace(SOUND, etcd_policy="soft-anti-affinity"))
    assert set(reported) == {"etcd-quorum"} and len(reported["etcd-quorum"]) == 3
