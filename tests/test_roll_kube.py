"""The master and worker gates of ``kaas roll`` against a fake kube-apiserver, Keystone and Octavia over HTTPS.

The runner, the gates and the thin clients are the real code; the API servers are the
fakes in tests/fakes/roll.py (answering as the upstream references cited there), and
the Pulumi stack is tests/roll_fakes.FakeStack whose "cloud" adds a Node when it builds
a server and refuses to delete a server that still runs pods other than DaemonSet ones.
"""

from __future__ import annotations

import base64
import dataclasses
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kaas.bootstrap.pki import BOOTSTRAP_TOKEN_PATTERN
from kaas.roll.gates import ClusterGates, Drainer, KubernetesGate, Waiting
from kaas.roll.http import HttpError, JsonClient
from kaas.roll.kube import KubeClient
from kaas.roll.live import node_ip
from kaas.roll.octavia import OctaviaClient, keystone_session
from kaas.roll.position import position_path
from kaas.roll.runner import JOIN_TOKEN_CONFIG, RecordFile, Runner
from kaas.roll.steps import joining_nodes
from kaas.roll.tokens import JoinToken, JoinTokens
from kaas.rollout import Action, Step, Tier
from kaas.rollout.model import Desired
from kaas.rollout.record import desired_from_spec
from kaas.spec import load_stack_spec
from tests.fakes.pki import TestCa
from tests.fakes.roll import FakeCluster, FakePod
from tests.fakes.servers import https_server
from tests.roll_fakes import FakeStack

SPEC = load_stack_spec("demo")  # 3 etcd, 3 masters, 3 workers
BASE = desired_from_spec(SPEC)
QUICK = Waiting(timeout=3.0, interval=0.02)


def new_image(tier: Tier) -> Desired:
    field = {Tier.MASTER: "masters", Tier.WORKER: "workers"}[tier]
    target = BASE.target(tier)
    revised = dataclasses.replace(target, revision=dataclasses.replace(target.revision, image="ubuntu-26.04"))
    return dataclasses.replace(BASE, **{field: revised})


@dataclasses.dataclass
class Env:
    cluster: FakeCluster
    context: ssl.SSLContext
    deleted_with_pods: list[str] = dataclasses.field(default_factory=list)

    def kube(self) -> KubeClient:
        return KubeClient(JsonClient(self.cluster.base_url, context=self.context, timeout=5))

    def octavia(self) -> OctaviaClient:
        return OctaviaClient(keystone_session(self.cluster.base_url, "roll-id", "roll-secret", context=self.context))


@pytest.fixture
def env() -> Iterator[Env]:
    ca = TestCa("roll-ca")
    cluster = FakeCluster()
    for tier in ("master", "worker"):
        for i in range(3):
            cluster.add_node(f"demo-{tier}-{i}")
    for i in range(3):
        cluster.pods.append(
            FakePod("kube-system", f"calico-node-{i}", f"demo-worker-{i}", "calico-node", daemonset=True)
        )
        cluster.pods.append(FakePod("shop", f"web-{i}", f"demo-worker-{i}", "web"))
        cluster.pool_members[node_ip(SPEC, f"demo-master-{i}")] = "ONLINE"
    cluster.min_available["web"] = 2  # PodDisruptionBudget: at most one web pod down at a time
    context = ssl.create_default_context(cadata=ca.pem)
    with https_server(cluster.route, ca.issue("api.demo.kaas.example.net")) as port:
        cluster.base_url = f"https://127.0.0.1:{port}"
        yield Env(cluster, context)


def cloud(env: Env, new_member_status: str = "ONLINE", stack: FakeStack | None = None) -> object:
    """What the cloud does with a step; with ``stack``, a node it builds joins (its Node appears) only
    if the up's ``kaas:joinToken`` is a bootstrap token the API server accepts at that moment."""

    def apply(step: Step) -> None:
        cluster = env.cluster
        for move in step.changes:
            name = move.name(step.cluster)
            if move.action in (Action.DELETE, Action.REPLACE) and move.tier is not Tier.ETCD:
                if any(p.node == name and not p.daemonset for p in cluster.pods):
                    env.deleted_with_pods.append(name)
                cluster.pods = [p for p in cluster.pods if p.node != name]
            if move.action in (Action.CREATE, Action.REPLACE) and move.tier is not Tier.ETCD:
                if stack is not None:
                    token = stack.configs[-1].get(JOIN_TOKEN_CONFIG, "")
                    if not cluster.bootstrap_token_valid(token, datetime.now(UTC)):
                        continue
                cluster.add_node(name)
                if move.tier is Tier.MASTER:
                    cluster.pool_members[node_ip(SPEC, name)] = new_member_status

    return apply


def roller(env: Env, tmp_path: Path, desired: Desired, waiting: Waiting = QUICK) -> tuple[FakeStack, Runner, list[str]]:
    records = RecordFile(SPEC, tmp_path / "demo.yaml")
    records.save(BASE.initial_state())
    stack = FakeStack(desired, records, stack="demo", on_apply=cloud(env))  # type: ignore[arg-type]
    lines: list[str] = []
    kube = env.kube()
    gate = KubernetesGate(
        kube,
        Drainer(kube, waiting),
        waiting,
        api_via_lb=kube,
        octavia=env.octavia(),
        pool="demo-api-masters",
        address=lambda name: node_ip(SPEC, name),
        log=lines.append,
    )
    runner = Runner(
        desired, records, stack, ClusterGates(nodes=gate), position_path(tmp_path / "demo.yaml"), lines.append
    )
    return stack, runner, lines


def test_workers_roll_with_new_nodes_ready_and_old_ones_cordoned_and_drained_before_deletion(
    env: Env, tmp_path: Path
) -> None:
    stack, runner, lines = roller(env, tmp_path, new_image(Tier.WORKER))
    result = runner.run()
    assert result.failure is None, lines
    assert len(stack.steps) == 7
    final = RecordFile(SPEC, tmp_path / "demo.yaml").load()
    assert final is not None
    workers = sorted(n.name("demo") for n in final.running(Tier.WORKER))
    assert (
        sorted(n for n in env.cluster.nodes if "worker" in n)
        == workers
        == ["demo-worker-2", "demo-worker-3", "demo-worker-4"]
    )
    assert all(not s["unschedulable"] for s in env.cluster.nodes.values())
    assert env.deleted_with_pods == []  # every server went empty (DaemonSet pods aside)
    assert not any("calico-node" in e for e in env.cluster.evictions)  # DaemonSets ignored
    assert len([p for p in env.cluster.pods if p.app == "web"]) == 3
    cordons = [(p, b) for m, p, b in env.cluster.requests if m == "PATCH" and b == {"spec": {"unschedulable": True}}]
    assert [p for p, _ in cordons] == [f"/api/v1/nodes/demo-worker-{i}" for i in (2, 1, 0)]


def test_a_drain_blocked_by_a_disruption_budget_stops_before_the_server_goes_and_a_rerun_finishes(
    env: Env, tmp_path: Path
) -> None:
    env.cluster.min_available["web"] = 3  # no web pod may go
    stack, runner, lines = roller(env, tmp_path, new_image(Tier.WORKER), Waiting(timeout=1.0, interval=0.05))
    result = runner.run()
    assert result.failure is not None
    assert (result.failure.check, result.failure.node) == ("drain", "demo-worker-2")
    assert "PodDisruptionBudget (429) for shop/web-2" in result.failure.detail
    assert "after 1s" in result.failure.detail
    assert env.cluster.nodes["demo-worker-2"]["unschedulable"]
    assert not any(m.action is Action.DELETE for s in stack.steps for m in s.changes)  # the server still runs
    assert len([p for p in env.cluster.pods if p.app == "web"]) == 3  # the application still serves
    env.cluster.min_available["web"] = 2
    resumed = runner.run()
    assert resumed.failure is None, lines
    assert env.deleted_with_pods == []


def test_an_api_server_that_never_reaches_readyz_stops_with_the_other_masters_serving(env: Env, tmp_path: Path) -> None:
    env.cluster.readyz = False
    stack, runner, lines = roller(env, tmp_path, new_image(Tier.MASTER))
    result = runner.run()
    assert result.failure is not None
    assert (result.failure.check, result.failure.node) == ("api-readyz-through-load-balancer", "demo-master-0")
    assert "readyz check failed" in result.failure.detail
    assert len(stack.steps) == 1  # one master rebuilt; the two others untouched and ONLINE
    assert [env.cluster.pool_members[node_ip(SPEC, f"demo-master-{i}")] for i in (1, 2)] == ["ONLINE", "ONLINE"]
    env.cluster.readyz = True
    resumed = runner.run()
    assert resumed.failure is None, lines
    assert len(stack.steps) == 3 and len(stack.ups) == 3


def test_a_master_whose_pool_member_never_goes_online_stops_the_roll(env: Env, tmp_path: Path) -> None:
    stack, runner, _ = roller(env, tmp_path, new_image(Tier.MASTER))
    stack.on_apply = cloud(env, new_member_status="OFFLINE")  # type: ignore[assignment]
    result = runner.run()
    assert result.failure is not None
    assert (result.failure.check, result.failure.node) == ("load-balancer-member-online", "demo-master-0")
    assert f"pool member {node_ip(SPEC, 'demo-master-0')} is OFFLINE" in result.failure.detail


def test_a_master_rebuilt_in_place_is_drained_and_its_node_deleted_before_the_up(env: Env, tmp_path: Path) -> None:
    stack, runner, _ = roller(env, tmp_path, new_image(Tier.MASTER))
    runner.run(max_steps=1)
    assert len(stack.ups) == 1
    methods = [(m, p) for m, p, _ in env.cluster.requests if p == "/api/v1/nodes/demo-master-0" and m != "GET"]
    assert methods[:3] == [
        ("PATCH", "/api/v1/nodes/demo-master-0"),
        ("DELETE", "/api/v1/nodes/demo-master-0"),
        ("PATCH", "/api/v1/nodes/demo-master-0"),
    ]


def _roll_tokens(env: Env) -> list[str]:
    return sorted(name for (ns, name), s in env.cluster.secrets.items() if s["type"] == "bootstrap.kubernetes.io/token")


def test_every_step_that_builds_a_node_gets_a_fresh_token_deleted_once_the_node_joined(
    env: Env, tmp_path: Path
) -> None:
    stack, runner, lines = roller(env, tmp_path, new_image(Tier.WORKER))
    stack.on_apply = cloud(env, stack=stack)  # type: ignore[assignment]
    now = datetime.now(UTC).replace(microsecond=0)  # the fake API server checks expiry against the real clock
    tokens = JoinTokens(env.kube().api, clock=lambda: now)
    runner.join_tokens = tokens
    created: list[dict[str, str]] = []
    create = tokens.create

    def create_and_look(description: str) -> JoinToken:
        token = create(description)
        secret = env.cluster.secrets[("kube-system", f"bootstrap-token-{token.token_id}")]
        created.append({k: base64.b64decode(v).decode() for k, v in secret["data"].items()})
        return token

    tokens.create = create_and_look  # type: ignore[method-assign]
    result = runner.run()
    assert result.failure is None, lines
    joining = [bool(joining_nodes(step)) for step in stack.steps]
    assert joining == [True, False, True, False, True, False, False]  # add, remove, ..., the last deletion
    given = [c.get(JOIN_TOKEN_CONFIG) for c in stack.configs]
    assert [g is not None for g in given] == joining
    values = [g for g in given if g is not None]
    assert len(set(values)) == 3 and all(BOOTSTRAP_TOKEN_PATTERN.match(v) for v in values)
    assert [f"{c['token-id']}.{c['token-secret']}" for c in created] == values
    for data in created:
        assert data["expiration"] == (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert data["usage-bootstrap-authentication"] == "true"
        assert data["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"
    assert _roll_tokens(env) == []  # each deleted once its node was Ready
    deletes = [p for m, p, _ in env.cluster.requests if m == "DELETE" and "/secrets/" in p]
    assert deletes == [f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{c['token-id']}" for c in created]
    assert not any(v in line for v in values for line in lines)  # the progress names the ID, never the token


def test_a_node_without_a_valid_token_never_joins_and_a_stopped_roll_keeps_the_token_for_its_rerun(
    env: Env, tmp_path: Path
) -> None:
    stack, runner, lines = roller(env, tmp_path, new_image(Tier.MASTER))
    stack.on_apply = cloud(env, stack=stack)  # type: ignore[assignment]
    # The stack's first token (no fresh one): the rebuilt master never registers.
    failure = runner.run(max_steps=1).failure
    assert failure is not None and (failure.check, failure.node) == ("node-ready", "demo-master-0"), failure
    assert "demo-master-0" not in env.cluster.nodes and stack.configs == [{}]
    # With fresh tokens, from a new roll: the API behind the load balancer is down, so the gate stops it.
    stack, runner, lines = roller(env, tmp_path / "again", new_image(Tier.MASTER))
    stack.on_apply = cloud(env, stack=stack)  # type: ignore[assignment]
    runner.join_tokens = JoinTokens(env.kube().api)
    env.cluster.readyz = False
    assert runner.run().failure is not None
    (kept,) = _roll_tokens(env)
    assert "demo-master-0" in env.cluster.nodes  # it joined with the fresh token
    env.cluster.readyz = True
    assert runner.run().failure is None, lines
    assert len(stack.configs) == 3 and stack.configs[0][JOIN_TOKEN_CONFIG].startswith(
        kept.removeprefix("bootstrap-token-")
    )
    assert _roll_tokens(env) == []


def test_octavia_needs_a_valid_application_credential(env: Env) -> None:
    with pytest.raises(HttpError) as error:
        keystone_session(env.cluster.base_url, "roll-id", "wrong", context=env.context)
    assert error.value.status == 401
    members = env.octavia().pool_members("demo-api-masters")
    assert len(members) == 3


def test_the_client_from_a_kubeconfig_verifies_the_ca_and_sends_the_token(env: Env, tmp_path: Path) -> None:
    import base64

    import yaml

    from kaas.roll.live import kube_client

    ca_pem = env.context.get_ca_certs(binary_form=True)
    assert ca_pem
    pem = ssl.DER_cert_to_PEM_cert(ca_pem[0])
    config = {
        "clusters": [
            {
                "name": "demo",
                "cluster": {
                    "server": env.cluster.base_url,
                    "certificate-authority-data": base64.b64encode(pem.encode()).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": "admin-token"}}],
    }
    client = kube_client(yaml.safe_dump(config), tmp_path)
    assert client.node_ready("demo-worker-0")
    assert client.node("demo-worker-9") is None
    del config["clusters"][0]["cluster"]["certificate-authority-data"]  # type: ignore[attr-defined]
    with pytest.raises(HttpError):  # the fake's CA is not a system CA: refused
        kube_client(yaml.safe_dump(config), tmp_path).node_ready("demo-worker-0")


def test_etcd_credentials_missing_from_the_outputs_are_named(tmp_path: Path) -> None:
    from kaas.roll.live import etcd_tls
    from kaas.roll.runner import RollError

    with pytest.raises(RollError, match="no etcdCaCertPem, etcdClientCertPem, etcdClientKeyPem: pass --etcd-certs DIR"):
        etcd_tls({"adminKubeconfig": "x"}, tmp_path, None)
    tls = etcd_tls({"etcdCaCertPem": "ca", "etcdClientCertPem": "cert", "etcdClientKeyPem": "key"}, tmp_path, None)
    assert Path(tls.key).read_text() == "key" and Path(tls.key).stat().st_mode & 0o777 == 0o600
