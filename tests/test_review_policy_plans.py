"""The production rules on real plans: acme-prod passes every rule, and each rule fails on a real plan.

A failing case is, in this order of preference:
- a production spec the validator accepts but the rule rejects (mandatory);
- a demo variant of acme-prod (``environment: demo`` relaxes the validator; the rule's
  violation is then advisory, and its text is asserted);
- the real acme-prod plan with ONE targeted change to its records, where no spec can
  produce the failure because the program itself guarantees the property (protection,
  the health monitor, secret outputs, pinned charts): these prove the rule would catch a
  program change that broke it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from kaas.cluster_plan import cluster_policy_facts
from kaas.offline import Plan, ResourceRecord, Secret, plan_spec
from kaas.review.check import check_plan, view_of
from kaas.review.policy import RULES, instances
from kaas.review.policy_pack import build_policies
from kaas.rollout.record import load_record, record_path
from kaas.spec import load_stack_spec, parse_spec
from kaas.spec.loader import STACKS_DIR
from tests.helpers import merge
from tests.test_review_policy import stack_args

ACME: dict[str, Any] = yaml.safe_load((STACKS_DIR / "acme-prod.yaml").read_text())
INSTANCE = "openstack:compute/instance:Instance"
CONTAINER = "openstack:objectstorage/container:Container"
MONITOR = "openstack:loadbalancer/monitor:Monitor"
RELEASE = "kubernetes:helm.sh/v3:Release"
SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
HALVES = ["0.0.0.0/1", "128.0.0.0/1"]


def acme_plan(**override: Any) -> Plan:
    return plan_spec(parse_spec(merge(ACME, override), "<acme-prod edited>"))


def by_rule(plan: Plan) -> tuple[bool, dict[str, list[str]]]:
    """Checked WITHOUT default facts: the facts must come from the real Cluster component."""
    mandatory, found = check_plan(plan)
    rules: dict[str, list[str]] = {}
    for violation in found:
        rules.setdefault(violation.rule, []).append(violation.message)
    return mandatory, rules


@pytest.fixture(scope="module")
def acme() -> Plan:
    return acme_plan()


def edited(plan: Plan, type_token: str, name: str, change: Callable[[ResourceRecord], None]) -> Plan:
    """A deep copy of ``plan`` with ``change`` applied to one record (which must exist)."""
    copied = copy.deepcopy(plan)
    change(copied.find(type_token, name))
    return copied


def without(plan: Plan, type_token: str) -> Plan:
    copied = copy.deepcopy(plan)
    assert copied.by_type(type_token)
    copied.resources = [r for r in copied.resources if r.type != type_token]
    return copied


# --- the passing case, and the classifiers on the real resource shapes ----------------------------


def test_acme_prod_passes_every_rule_as_a_mandatory_production_stack(acme: Plan) -> None:
    assert by_rule(acme) == (True, {})


def test_rules_see_the_real_tiers_containers_releases_and_facts(acme: Plan) -> None:
    view = view_of(acme)
    assert [r.name for r in instances(view, "etcd")] == [f"acme-prod-etcd-{i}" for i in range(5)]
    assert [r.name for r in instances(view, "master")] == [f"acme-prod-master-{i}" for i in range(3)]
    assert [r.name for r in instances(view, "worker")] == [f"acme-prod-worker-{i}" for i in range(3)]
    spec = parse_spec(ACME, "acme-prod")
    assert view.facts() == cluster_policy_facts(spec)  # from the kaas:index:Cluster component's inputs
    # The registry container is protected too, but it is no backup: only the backup ones are checked.
    unprotected_registry = edited(acme, CONTAINER, "acme-prod-registry", lambda r: r.options.update(protect=False))
    assert by_rule(unprotected_registry) == (True, {})


def test_tiers_come_from_the_kaas_tier_metadata_not_from_names(acme: Plan) -> None:
    def untag(record: ResourceRecord) -> None:
        del record.inputs["metadata"]["kaas-tier"]

    _, found = by_rule(edited(acme, INSTANCE, "acme-prod-etcd-4", untag))
    # The untagged instance, though named like an etcd node, is not counted: 4 members remain.
    assert found == {"etcd-quorum": ["etcd tier has 4 members (spec: 5); it needs an odd number, at least 3"]}


def test_the_pack_passes_acme_prod_and_checks_the_same_resources(acme: Plan) -> None:
    reported: dict[str, list[str]] = {}
    args = stack_args(acme)
    for policy in build_policies():
        policy.validate(args, lambda message, urn=None, name=policy.name: reported.setdefault(name, []).append(message))
    assert reported == {}


# --- one failing case per rule ---------------------------------------------------------------------


def demo(**override: Any) -> dict[str, list[str]]:
    mandatory, found = by_rule(acme_plan(environment="demo", **override))
    assert not mandatory
    return found


def test_etcd_quorum_fails_on_a_single_member_and_on_soft_anti_affinity() -> None:
    assert demo(etcd={"count": 1}) == {"etcd-quorum": ["etcd tier has 1 members; it needs an odd number, at least 3"]}
    assert demo(etcd={"server_group_policy": "soft-anti-affinity"}) == {
        "etcd-quorum": [f"etcd member acme-prod-etcd-{i} is not in a hard anti-affinity server group" for i in range(5)]
    }


def test_masters_rule_fails_on_one_master_and_without_a_health_monitor(acme: Plan) -> None:
    assert demo(masters={"count": 1}) == {
        "masters-behind-load-balancer": [
            "1 master(s); production needs at least 3",
            "the API load balancer has 1 member(s); it needs at least 3",
        ]
    }
    # The program always creates the monitor: only a program change could drop it.
    assert by_rule(without(acme, MONITOR)) == (
        True,
        {"masters-behind-load-balancer": ["the API load balancer pool has no health monitor"]},
    )


def test_admin_ports_fail_on_a_production_spec_whose_ssh_cidrs_cover_the_internet() -> None:
    # Together they are 0.0.0.0/0. The spec refuses that (security.max_open_cidr_share); with
    # the limit lifted, the policy is the second line of defence.
    lifted = {"security": {"max_open_cidr_share": 1}}
    mandatory, found = by_rule(acme_plan(networking={"admin_ssh_cidrs": HALVES}, **lifted))
    assert mandatory
    assert found == {
        "admin-ports-closed-to-world": [
            "SSH port 22 is open to 0.0.0.0/0 through acme-prod-admin-tcp-22-from-0.0.0.0-1, "
            "acme-prod-admin-tcp-22-from-128.0.0.0-1 (0.0.0.0/1, 128.0.0.0/1)"
        ]
    }
    assert by_rule(acme_plan(networking={"admin_ssh_cidrs": HALVES[:1]}, **lifted)) == (True, {})


def test_admin_ports_fail_when_an_etcd_rule_loses_its_remote_group(acme: Plan) -> None:
    def open_to_world(record: ResourceRecord) -> None:
        record.inputs.pop("remoteGroupId")

    plan = edited(acme, SEC_GROUP_RULE, "acme-prod-etcd-tcp-2379-from-master", open_to_world)
    assert by_rule(plan)[1] == {
        "admin-ports-closed-to-world": ["acme-prod-etcd-tcp-2379-from-master opens etcd client port 2379 to 0.0.0.0/0"]
    }


def test_backup_containers_fail_when_unprotected_or_not_retained(acme: Plan) -> None:
    unprotected = edited(acme, CONTAINER, "acme-prod-etcd-backups", lambda r: r.options.update(protect=False))
    assert by_rule(unprotected)[1] == {
        "backup-containers-protected": ["backup container acme-prod-etcd-backups is not protected"]
    }
    dropped = edited(acme, CONTAINER, "acme-prod-cluster-backups", lambda r: r.options.update(retainOnDelete=False))
    assert by_rule(dropped)[1] == {
        "backup-containers-protected": ["backup container acme-prod-cluster-backups is not retained on delete"]
    }


def test_etcd_nodes_fail_when_one_is_unprotected(acme: Plan) -> None:
    plan = edited(acme, INSTANCE, "acme-prod-etcd-2", lambda r: r.options.update(protect=False))
    assert by_rule(plan)[1] == {"etcd-nodes-protected": ["etcd member acme-prod-etcd-2 is not protected"]}


def test_backups_scheduled_fails_on_a_12_hour_interval() -> None:
    assert demo(etcd_backup={"interval_hours": 12}) == {
        "backups-scheduled": ["etcd is backed up every 12 h; at most every 8 h"]
    }


def test_monitoring_and_logging_fail_when_disabled() -> None:
    found = demo(services={"monitoring": {"enabled": False}, "logging": {"enabled": False}})
    assert found == {"monitoring-and-logging": ["monitoring is disabled", "logging is disabled"]}


def test_secret_outputs_fail_when_the_kubeconfig_is_plain(acme: Plan) -> None:
    plain = copy.deepcopy(acme)
    kubeconfig = plain.outputs["adminKubeconfig"]
    assert isinstance(kubeconfig, Secret)
    plain.outputs["adminKubeconfig"] = kubeconfig.value
    assert by_rule(plain)[1] == {
        "secrets-not-in-plain-outputs": ["stack output adminKubeconfig holds a credential but is not a secret"]
    }


def test_helm_releases_fail_when_a_version_is_a_range_or_missing(acme: Plan) -> None:
    ranged = edited(acme, RELEASE, "ingress-nginx", lambda r: r.inputs.update(version="^2.6"))
    assert by_rule(ranged)[1] == {
        "helm-releases-pinned": ["Helm release ingress-nginx is not pinned to a version (got '^2.6')"]
    }
    unpinned = edited(acme, RELEASE, "harbor", lambda r: r.inputs.pop("version"))
    assert by_rule(unpinned)[1] == {
        "helm-releases-pinned": ["Helm release harbor is not pinned to a version (got None)"]
    }


def test_alerts_routed_fails_on_a_production_spec_with_only_the_heartbeat() -> None:
    # acme-prod keeps its dead man's switch but loses its on-call receivers: the Watchdog
    # still reaches the heartbeat, every other alert goes to the "null" receiver.
    mandatory, found = by_rule(acme_plan(services={"monitoring": {"alerting": {"receivers": []}}}))
    assert mandatory
    assert found == {
        "alerts-routed": [
            "Helm release kube-prometheus-stack: Alertmanager has no receiver for alerts "
            "(set services.monitoring.alerting.receivers)"
        ]
    }


def test_day2_rollout_fails_when_a_second_master_moves_in_the_same_step() -> None:
    spec = load_stack_spec("acme-prod")
    bumped = spec.model_copy(update={"versions": spec.versions.model_copy(update={"kubernetes": "1.34.3"})})
    plan = plan_spec(bumped, recorded=load_record(record_path("acme-prod"), spec))
    assert by_rule(plan)[1] == {}  # the program rebuilds master-0 alone

    def also_rebuilt(record: ResourceRecord) -> None:
        record.inputs["metadata"]["kaas-version"] = "1.34.3"

    assert by_rule(edited(plan, INSTANCE, "acme-prod-master-1", also_rebuilt))[1] == {
        "day2-rollout-safe": [
            "[one-master-per-step] acme-prod-master-0, acme-prod-master-1: 2 masters change in one step (at most 1)"
        ]
    }


def test_every_rule_has_a_failing_case_on_a_real_plan() -> None:
    tested = {
        "day2-rollout-safe",
        "etcd-quorum",
        "masters-behind-load-balancer",
        "admin-ports-closed-to-world",
        "backup-containers-protected",
        "etcd-nodes-protected",
        "backups-scheduled",
        "monitoring-and-logging",
        "secrets-not-in-plain-outputs",
        "helm-releases-pinned",
        "alerts-routed",
    }
    assert tested == {rule.name for rule in RULES}
