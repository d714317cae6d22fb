"""``kaas roll --heal`` end to end: a fake kube-apiserver's Nodes, the real Automation API SDK
driving the stand-in ``pulumi`` CLI of tests/test_roll_automation.py, the real CLI.

The fake API (tests/fakes/roll.py) answers ``GET /api/v1/nodes`` with Ready conditions and
their ``lastTransitionTime`` as kube-apiserver does; its "cloud" registers a node again,
Ready, once the stand-in ``pulumi`` has been asked to replace that node's server. Nothing of
kaas is replaced by a fake: the planner's gates are also property-tested on their own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kaas.cli import main
from kaas.roll.heal import HealPolicy, NodeHealth, node_health, parse_duration, plan_heal
from kaas.rollout.model import Tier
from kaas.spec import load_stack_spec
from tests import test_roll_automation
from tests.fakes.pki import TestCa
from tests.fakes.roll import FakeCluster
from tests.fakes.servers import Request, https_server

fake_pulumi = test_roll_automation.fake_pulumi  # the stand-in pulumi CLI on PATH (a fixture)

STACK = "demo"  # 3 etcd, 3 masters, 3 workers
SPEC = load_stack_spec(STACK)
NOW = datetime.now(UTC)
INSTANCE = "openstack:compute/instance:Instance"


def urn(name: str, type_token: str = INSTANCE) -> str:
    return f"urn:pulumi:{STACK}::kaas::kaas:openstack:NodeTier${type_token}::{name}"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Cloud:
    """The fake API server and the stand-in Pulumi CLI's call log, seen together."""

    cluster: FakeCluster
    calls_file: Path
    seen_ups: int = 0
    timeline: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)  # (event, node, Ready nodes)
    never_ready: set[str] = field(default_factory=set)
    # Per up: the stack config it ran with, and whether its kaas:joinToken was a valid bootstrap token then.
    up_config: list[dict[str, Any]] = field(default_factory=list)
    token_valid_during_up: list[bool] = field(default_factory=list)

    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def bootstrap_tokens(self) -> list[str]:
        return sorted(name for ns, name in self.cluster.secrets if ns == "kube-system" and "bootstrap-token-" in name)

    def ups(self) -> list[list[str]]:
        return [c for c in self.calls() if c[0] == "up"]

    def route(self, request: Request) -> Any:
        ups = self.ups()
        if len(ups) > self.seen_ups:  # one up at a time: each is followed by requests before the next
            seen = json.loads((self.calls_file.parent / "config-seen-by-up.json").read_text())
            self.up_config.append(seen)
            token = seen.get("kaas:joinToken", {}).get("value", "")
            self.token_valid_during_up.append(self.cluster.bootstrap_token_valid(token, datetime.now(UTC)))
        for up in ups[self.seen_ups :]:
            replaced = [up[i + 1] for i, a in enumerate(up) if a == "--replace"]
            for node in (u.rsplit("::", 1)[1] for u in replaced):
                ready = frozenset(n for n, s in self.cluster.nodes.items() if s["ready"])
                self.timeline.append(("up", node, ready))
                if node not in self.never_ready:  # the rebuilt server's kubelet registers, Ready
                    self.cluster.add_node(node, ready=True, since=iso(datetime.now(UTC)))
        self.seen_ups = len(ups)
        if request.method == "DELETE" and request.path.startswith("/api/v1/nodes/"):
            self.timeline.append(("delete-node", request.path.rsplit("/", 1)[1], frozenset()))
        return self.cluster.route(request)


@pytest.fixture
def cloud(fake_pulumi: Path) -> Iterator[Cloud]:
    ca = TestCa("heal-ca")
    cluster = FakeCluster()
    for tier in ("master", "worker"):
        for i in range(3):
            cluster.add_node(f"{STACK}-{tier}-{i}", since=iso(NOW - timedelta(days=3)))
    env = Cloud(cluster, fake_pulumi / "calls.jsonl")
    with https_server(env.route, ca.issue("api.demo.kaas.example.net")) as port:
        cluster.base_url = f"https://127.0.0.1:{port}"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": STACK,
                    "cluster": {
                        "server": cluster.base_url,
                        "certificate-authority-data": base64.b64encode(ca.pem.encode()).decode(),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": "admin-token"}}],
            "contexts": [{"name": STACK, "context": {"cluster": STACK, "user": "admin"}}],
            "current-context": STACK,
        }
        (fake_pulumi / "outputs.json").write_text(json.dumps({"adminKubeconfig": yaml.safe_dump(kubeconfig)}))
        (fake_pulumi / "next-outputs.json").write_text(json.dumps({"adminKubeconfig": yaml.safe_dump(kubeconfig)}))
        resources = [{"urn": urn(f"{STACK}-network", "x"), "type": "openstack:networking/network:Network"}]
        for tier in ("etcd", "master", "worker"):
            for i in range(3):
                name = f"{STACK}-{tier}-{i}"
                resources += [
                    {"urn": urn(name), "type": INSTANCE},
                    {
                        "urn": urn(f"{name}-port", "openstack:networking/port:Port"),
                        "type": "openstack:networking/port:Port",
                    },
                ]
        (fake_pulumi / "export.json").write_text(json.dumps({"version": 3, "deployment": {"resources": resources}}))
        yield env


def down(cloud: Cloud, name: str, minutes: float, status: str = "Unknown") -> None:
    """NotReady since ``minutes`` before now (the test's now: collection may be long before it runs)."""
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    cloud.cluster.add_node(name, ready=False, since=iso(since), status=status)


def heal(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["roll", "--stack", STACK, "--heal", "--json", "--yes", "--gate-timeout", "5", *args])
    return code, json.loads(capsys.readouterr().out)


def test_heal_replaces_overdue_nodes_one_at_a_time_master_first(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    down(cloud, "demo-worker-2", 45)
    down(cloud, "demo-master-1", 20, status="False")
    down(cloud, "demo-worker-0", 3)  # within the grace period
    code, report = heal(capsys, "--grace", "10m", "--max-workers-down", "0.7")  # 2 of 3 down: no outage here
    assert code == 0, report
    assert report["replaced"] == ["demo-master-1", "demo-worker-2"]
    assert report["waiting"] == ["demo-worker-0"] and report["page"] is None
    ups = cloud.ups()
    assert len(ups) == 2  # one pulumi up per node
    for up, node in zip(ups, ["demo-master-1", "demo-worker-2"], strict=True):
        replaced = [up[i + 1] for i, a in enumerate(up) if a == "--replace"]
        targets = [up[i + 1] for i, a in enumerate(up) if a == "--target"]
        assert replaced == targets == [urn(node)]  # the server only: its port (and address) stay
        assert up[up.index("--message") + 1] == "kaas roll --heal"
    # Each Node object goes before its server is rebuilt; the worker waits for the master to be Ready.
    events = [(e, n) for e, n, _ in cloud.timeline]
    assert events == [("delete-node", "demo-master-1"), ("up", "demo-master-1"),
                      ("delete-node", "demo-worker-2"), ("up", "demo-worker-2")]  # fmt: skip
    assert "demo-master-1" in cloud.timeline[3][2]
    assert cloud.cluster.nodes["demo-worker-0"]["ready"] is False


def _config_calls(calls: list[list[str]]) -> list[str]:
    """``config set --secret kaas:joinToken``, ``config set kaas:heal <node>``, ``up``, ``config rm <key>``."""
    found = []
    for call in calls:
        if call[:2] == ["config", "set"]:
            value = "<token>" if "--secret" in call else call[-1]
            found.append(f"config set {'--secret ' if '--secret' in call else ''}{call[2]} {value}")
        elif call[:2] == ["config", "rm"]:
            found.append(f"config rm {call[2]}")
        elif call[0] == "up":
            found.append("up --replace/--target " + call[call.index("--replace") + 1].rsplit("::", 1)[1])
    return found


def test_a_replaced_node_joins_with_a_fresh_token_and_the_current_user_data(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """The up runs with ``kaas:heal=<node>`` (the program rebuilds the server from the current user data,
    not the ignored old inputs) and a token minted for it, valid during the up, deleted once Ready."""
    down(cloud, "demo-worker-1", 30)
    code, report = heal(capsys)
    assert code == 0 and report["replaced"] == ["demo-worker-1"]
    assert _config_calls(cloud.calls()) == [
        "config set --secret kaas:joinToken <token>",
        "config set kaas:heal demo-worker-1",
        "up --replace/--target demo-worker-1",
        "config rm kaas:joinToken",
        "config rm kaas:heal",
    ]
    (seen,) = cloud.up_config
    assert seen["kaas:heal"] == {"value": "demo-worker-1", "secret": False}
    assert seen["kaas:joinToken"]["secret"] is True
    token_id, _, token_secret = seen["kaas:joinToken"]["value"].partition(".")
    assert len(token_id) == 6 and len(token_secret) == 16
    assert cloud.token_valid_during_up == [True]  # the Secret existed, unexpired, while the node booted
    assert cloud.bootstrap_tokens() == []  # joined (Ready): deleted
    assert json.loads((cloud.calls_file.parent / "config.json").read_text()) == {}


def test_a_replacement_never_ready_keeps_its_token_and_removes_the_config(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    down(cloud, "demo-worker-1", 30)
    cloud.never_ready.add("demo-worker-1")
    code, report = heal(capsys)
    assert code == 1 and "node-ready failed on demo-worker-1" in report["failure"]
    (seen,) = cloud.up_config
    assert seen["kaas:heal"]["value"] == "demo-worker-1"
    # Kept until it expires (an hour): a rerun within it can still join.
    assert cloud.bootstrap_tokens() == ["bootstrap-token-" + seen["kaas:joinToken"]["value"].split(".")[0]]
    assert cloud.cluster.bootstrap_token_valid(seen["kaas:joinToken"]["value"], datetime.now(UTC))
    assert json.loads((cloud.calls_file.parent / "config.json").read_text()) == {}
    assert _config_calls(cloud.calls())[-2:] == ["config rm kaas:joinToken", "config rm kaas:heal"]


def test_a_failed_pulumi_up_still_removes_the_config(
    cloud: Cloud, fake_pulumi: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    down(cloud, "demo-worker-1", 30)
    (fake_pulumi / "up-fails").write_text("the replacement failed")
    code = main(["roll", "--stack", STACK, "--heal", "--json", "--yes", "--gate-timeout", "5"])
    assert code == 1
    assert "the replacement failed" in capsys.readouterr().err
    assert _config_calls(cloud.calls()) == [
        "config set --secret kaas:joinToken <token>",
        "config set kaas:heal demo-worker-1",
        "up --replace/--target demo-worker-1",
        "config rm kaas:joinToken",
        "config rm kaas:heal",
    ]
    assert json.loads((fake_pulumi / "config.json").read_text()) == {}
    assert len(cloud.bootstrap_tokens()) == 1  # not joined: kept until it expires


def test_dry_run_lists_the_replacements_and_changes_nothing(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    down(cloud, "demo-worker-1", 30)
    code, report = heal(capsys, "--dry-run")
    assert code == 0
    assert report["dry_run"] is True and report["replace"] == ["demo-worker-1"] and report["replaced"] == []
    node = next(n for n in report["nodes"] if n["name"] == "demo-worker-1")
    assert node["ready"] == "Unknown" and 29 * 60 <= node["not_ready_seconds"] <= 31 * 60
    assert cloud.ups() == [] and "demo-worker-1" in cloud.cluster.nodes


def test_many_workers_down_is_an_outage_nothing_replaced_and_paged(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    down(cloud, "demo-worker-0", 60)
    down(cloud, "demo-worker-1", 60)
    down(cloud, "demo-master-2", 60)
    code, report = heal(capsys)
    assert code == 4
    assert report["replaced"] == [] and "outage" in report["page"] and "2 of 3 workers" in report["page"]
    assert cloud.ups() == [] and cloud.timeline == []


def test_the_outage_threshold_is_the_operators(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    down(cloud, "demo-worker-0", 60)
    down(cloud, "demo-worker-1", 60)
    code, report = heal(capsys, "--max-workers-down", "0.7")
    assert code == 0 and report["replaced"] == ["demo-worker-0", "demo-worker-1"]


def test_masters_below_quorum_are_not_touched(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    down(cloud, "demo-master-0", 60)
    down(cloud, "demo-master-2", 60)
    code, report = heal(capsys)
    assert code == 4 and "below quorum" in report["page"]
    assert {r["node"] for r in report["refused"]} == {"demo-master-0", "demo-master-2"}
    assert cloud.ups() == []


def test_a_replacement_that_never_becomes_ready_stops_the_heal(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    down(cloud, "demo-worker-0", 60)
    down(cloud, "demo-master-0", 60)
    cloud.never_ready.add("demo-master-0")
    code, report = heal(capsys)
    assert code == 1
    assert "node-ready failed on demo-master-0" in report["failure"]
    assert len(cloud.ups()) == 1 and report["replaced"] == []  # the worker waits for a person


def test_an_etcd_node_is_refused_with_the_etcd_roll(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    down(cloud, "demo-etcd-1", 60)
    code, report = heal(capsys)
    assert code == 4 and cloud.ups() == []
    (refusal,) = report["refused"]
    assert refusal["node"] == "demo-etcd-1" and "--tier etcd" in refusal["reason"]


def test_a_healthy_cluster_is_left_alone(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = heal(capsys)
    assert code == 0 and report["replace"] == report["replaced"] == [] and cloud.ups() == []


# --- The gates as properties --------------------------------------------------------

STATUSES = st.sampled_from(["True", "False", "Unknown"])


@st.composite
def cluster_nodes(draw: st.DrawFn) -> list[NodeHealth]:
    nodes = []
    for tier, count in ((Tier.ETCD, 3), (Tier.MASTER, SPEC.masters.count), (Tier.WORKER, SPEC.workers.count)):
        for i in range(count):
            if tier is Tier.ETCD and not draw(st.booleans()):
                continue  # etcd nodes are no Kubernetes nodes; one that shows up anyway must be refused
            minutes = draw(st.integers(min_value=0, max_value=120))
            nodes.append(NodeHealth(f"{SPEC.name}-{tier}-{i}", tier, draw(STATUSES), NOW - timedelta(minutes=minutes)))
    return nodes


@settings(max_examples=300, deadline=None)
@given(nodes=cluster_nodes(), grace=st.integers(min_value=0, max_value=90), fraction=st.floats(0.0, 1.0))
def test_heal_plan_respects_the_rollout_invariants(nodes: list[NodeHealth], grace: int, fraction: float) -> None:
    policy = HealPolicy(grace=grace * 60.0, max_workers_down=fraction)
    plan = plan_heal(SPEC, nodes, NOW, policy)
    by_name = {n.name: n for n in nodes}
    down = {n.name for n in nodes if n.ready != "True"}
    assert all(by_name[name].tier in (Tier.MASTER, Tier.WORKER) for name in plan.replace)  # never etcd
    assert all(name in down and (by_name[name].down_for(NOW) or 0) >= policy.grace for name in plan.replace)
    assert len(plan.replace) == len(set(plan.replace))
    tiers = [by_name[name].tier for name in plan.replace]
    assert tiers == sorted(tiers, key=lambda t: t is Tier.WORKER)  # masters before workers
    workers_down = sum(1 for n in nodes if n.tier is Tier.WORKER and n.name in down)
    if workers_down / SPEC.workers.count > fraction:
        assert plan.replace == [] and plan.page is not None
    masters_ready = sum(1 for n in nodes if n.tier is Tier.MASTER and n.name not in down)
    if masters_ready < SPEC.masters.count // 2 + 1:
        assert not any(by_name[name].tier is Tier.MASTER for name in plan.replace)
    if plan.page is not None:
        assert plan.replace == []
    assert {r.node for r in plan.refused} >= {n.name for n in nodes if n.tier is Tier.ETCD and n.name in down}


def test_node_health_reads_the_ready_condition_as_the_api_gives_it() -> None:
    cluster = FakeCluster()
    cluster.add_node("demo-worker-4", ready=False, since="2026-12-01T10:00:00Z", status="Unknown")
    node = node_health(SPEC, cluster._node("demo-worker-4"))
    assert node == NodeHealth("demo-worker-4", Tier.WORKER, "Unknown", datetime(2026, 12, 1, 10, tzinfo=UTC))
    assert node_health(SPEC, {"metadata": {"name": "bastion"}, "status": {}}).tier is None
    assert node.down_for(datetime(2026, 12, 1, 10, 15, tzinfo=UTC)) == 900.0


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0)])
def test_grace_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_grace_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roll", "--stack", STACK, "--heal", "--grace", "ten minutes"]) == 2
    assert "--grace" in capsys.readouterr().err
