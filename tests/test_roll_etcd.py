"""etcd member replacement by ``kaas roll`` against a real etcd cluster on 127.0.0.1.

Three Debian etcd members are formed from the plan's generated configuration and
certificates (as in tests/test_etcd_cluster.py). The runner, the etcd gate and etcdctl
are the real code; only the cloud is fake: a ``pulumi up`` that creates an etcd server
starts an etcd process joining with ``initial-cluster-state: existing``
(kaas.bootstrap.userdata.etcd.etcd_config(joining=True)), one that deletes a server kills it.

A writer puts a key every few milliseconds through the etcd v3 HTTP gateway
(``POST /v3/kv/put``, https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/) during the
whole replacement of every member: every acknowledged key must be readable at the end,
and the longest stretch of failing writes (from the first failed put, retried on the
next member, to the next acknowledged one) must stay under one election
timeout (etcd's default ``--election-timeout`` is 1000 ms,
https://etcd.io/docs/v3.4/tuning/#time-parameters): quorum was never lost.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from kaas.bootstrap.userdata.etcd import EtcdMember, EtcdPaths, etcd_config
from kaas.bootstrap.userdata.nodes import node_names
from kaas.offline.planfile import plain
from kaas.roll.etcd import EtcdCtl, EtcdTLS, Member
from kaas.roll.gates import ClusterGates, EtcdGate, Waiting
from kaas.roll.position import load_position, position_path
from kaas.roll.runner import RecordFile, Runner
from kaas.rollout import Action, Step, Tier
from kaas.rollout.record import desired_from_spec
from tests.bootstrap_fixtures import bootstrap_plan
from tests.helpers import free_ports
from tests.roll_fakes import CrashError, FakeStack

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("etcdctl") is None, reason="needs etcd")

ELECTION_TIMEOUT = 1.0  # etcd's default --election-timeout (1000 ms); etcd_config does not change it


@dataclass
class EtcdCloud:
    """The fake cloud's etcd servers: one real etcd process per node, on 127.0.0.1."""

    root: Path
    ca: str
    member_certs: list[tuple[str, str]]
    token: str
    peer_ca: str
    peer_certs: list[tuple[str, str]]
    members: dict[str, EtcdMember] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    generation: int = 0

    def member(self, name: str) -> EtcdMember:
        if name not in self.members:
            client, peer, metrics = free_ports(3)
            self.members[name] = EtcdMember(name, "127.0.0.1", client, peer, metrics)
        return self.members[name]

    def start(self, name: str, cluster: list[EtcdMember], joining: bool) -> None:
        self.generation += 1
        member = self.member(name)
        directory = self.root / f"{name}-{self.generation}"
        paths = EtcdPaths(pki_dir=str(directory / "pki"), data_dir=str(directory / "data"))
        Path(paths.pki_dir).mkdir(parents=True)
        cert, key = self.member_certs[len(self.processes) % len(self.member_certs)]
        peer_cert, peer_key = self.peer_certs[len(self.processes) % len(self.peer_certs)]
        for path, text in (
            (paths.ca_cert, self.ca),
            (paths.cert, cert),
            (paths.key, key),
            (paths.peer_ca_cert, self.peer_ca),
            (paths.peer_cert, peer_cert),
            (paths.peer_key, peer_key),
        ):
            Path(path).write_text(text)
            Path(path).chmod(0o600)
        config = etcd_config(member, cluster, self.token, paths, joining=joining)
        # Only for the test's writer: etcd 3.4 read from a config file serves no HTTP gateway
        # unless asked (enable-grpc-gateway; https://github.com/etcd-io/etcd/issues/12168).
        config["enable-grpc-gateway"] = True
        (directory / "etcd.conf.yml").write_text(yaml.safe_dump(config))
        log = (directory / "etcd.log").open("wb")
        self.processes[name] = subprocess.Popen(
            ["etcd", "--config-file", str(directory / "etcd.conf.yml")], stdout=log, stderr=subprocess.STDOUT
        )

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait(timeout=10)
        del self.members[name]

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name)

    def client_url(self, name: str) -> str:
        return self.member(name).client_url

    def peer_url(self, name: str) -> str:
        return self.member(name).peer_url

    def live_client_urls(self) -> list[str]:
        return [self.members[n].client_url for n in list(self.processes) if n in self.members]


@dataclass(eq=False)
class Writer(threading.Thread):
    """Puts ``k<n>`` every few milliseconds through the HTTP gateway of whichever member answers."""

    cloud: EtcdCloud
    context: ssl.SSLContext
    acknowledged: list[str] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)
    failures: int = 0
    outages: list[float] = field(default_factory=list)  # first failure -> next acknowledged write
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True)

    def _put(self, url: str, key: str) -> bool:
        host, port = url.removeprefix("https://").split(":")
        # A short timeout: a member that is being removed may hold a request; the next member is asked.
        connection = http.client.HTTPSConnection(host, int(port), context=self.context, timeout=0.5)
        body = {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(b"v").decode()}
        try:
            connection.request("POST", "/v3/kv/put", json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
            return response.status == 200 and "header" in answer
        except (OSError, http.client.HTTPException, json.JSONDecodeError):
            return False
        finally:
            connection.close()

    def run(self) -> None:
        number, choice, failing_since = 0, 0, None
        while not self.stop.is_set():
            urls = self.cloud.live_client_urls()
            key = f"k{number:06d}"
            attempt = time.monotonic()
            if urls and self._put(urls[choice % len(urls)], key):
                self.acknowledged.append(key)
                self.successes.append(time.monotonic())
                number += 1
                if failing_since is not None:
                    self.outages.append(time.monotonic() - failing_since)
                    failing_since = None
            else:
                self.failures += 1
                failing_since = attempt if failing_since is None else failing_since
                choice += 1  # another member next time
            time.sleep(0.003)

    def longest_gap(self) -> float:
        return max((b - a for a, b in zip(self.successes, self.successes[1:], strict=False)), default=0.0)


@dataclass
class Rig:
    cloud: EtcdCloud
    tls: EtcdTLS
    context: ssl.SSLContext
    spec_name: str

    def etcdctl(self) -> EtcdCtl:
        return EtcdCtl(self.tls)


BP = None


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    global BP
    BP = BP or bootstrap_plan("demo")
    outputs = BP.plan.outputs
    ca = outputs["etcdCaCertPem"]
    certs = [
        (plain(c, show_secrets=True), plain(k, show_secrets=True))
        for c, k in zip(
            outputs["etcdMemberCertPems"], plain(outputs["etcdMemberKeyPems"], show_secrets=True), strict=True
        )
    ]
    for name, text in (
        ("ca.crt", ca),
        ("client.crt", outputs["etcdClientCertPem"]),
        ("client.key", plain(outputs["etcdClientKeyPem"], show_secrets=True)),
    ):
        (tmp_path / name).write_text(text)
    tls = EtcdTLS(str(tmp_path / "ca.crt"), str(tmp_path / "client.crt"), str(tmp_path / "client.key"))
    peers = [
        (plain(c, show_secrets=True), plain(k, show_secrets=True))
        for c, k in zip(outputs["etcdPeerCertPems"], plain(outputs["etcdPeerKeyPems"], show_secrets=True), strict=True)
    ]
    cloud = EtcdCloud(tmp_path / "cloud", ca, certs, f"{BP.spec.name}-etcd", outputs["etcdPeerCaCertPem"], peers)
    names = node_names(BP.spec.name, "etcd", 3)
    initial = [cloud.member(n) for n in names]
    for name in names:
        cloud.start(name, initial, joining=False)
    context = ssl.create_default_context(cafile=tls.ca)
    context.load_cert_chain(tls.cert, tls.key)
    rig = Rig(cloud, tls, context, BP.spec.name)
    try:
        deadline = time.monotonic() + 30
        while any(rig.etcdctl().health(cloud.live_client_urls()).values()):
            assert time.monotonic() < deadline, "the etcd cluster did not become healthy"
            time.sleep(0.2)
        yield rig
    finally:
        cloud.stop_all()


def joining_cluster(rig: Rig, name: str) -> list[EtcdMember]:
    """The initial-cluster of a joining member: every current member (as the cluster lists them) and itself."""
    members = rig.etcdctl().members(rig.cloud.live_client_urls())
    found = [
        EtcdMember(m.name, "127.0.0.1", int(m.client_urls[0].rsplit(":", 1)[1]), int(m.peer_urls[0].rsplit(":", 1)[1]))
        for m in members
        if m.name
    ]
    return [*found, rig.cloud.member(name)]


def cloud_apply(rig: Rig, start_new: bool = True) -> object:
    def apply(step: Step) -> None:
        for move in step.changes:
            if move.tier is not Tier.ETCD:
                continue
            name = move.name(step.cluster)
            if move.action is Action.CREATE and start_new:
                rig.cloud.start(name, joining_cluster(rig, name), joining=True)
            if move.action is Action.DELETE:
                rig.cloud.kill(name)

    return apply


def roll_setup(rig: Rig, tmp_path: Path, timeout: float = 60.0) -> tuple[FakeStack, Runner, list[str]]:
    assert BP is not None
    spec = BP.spec
    base = desired_from_spec(spec)
    desired = dataclasses.replace(
        base,
        etcd=dataclasses.replace(base.etcd, revision=dataclasses.replace(base.etcd.revision, image="ubuntu-26.04")),
    )
    records = RecordFile(spec, tmp_path / "demo.yaml")
    records.save(base.initial_state())
    stack = FakeStack(desired, records, stack="demo", on_apply=cloud_apply(rig))  # type: ignore[arg-type]
    lines: list[str] = []
    gate = EtcdGate(
        rig.etcdctl(), rig.cloud.client_url, rig.cloud.peer_url, Waiting(timeout=timeout, interval=0.2), lines.append
    )
    runner = Runner(
        desired, records, stack, ClusterGates(etcd=gate), position_path(tmp_path / "demo.yaml"), progress=lines.append
    )
    return stack, runner, lines


def member_names(rig: Rig) -> list[str]:
    return sorted(m.name for m in rig.etcdctl().members(rig.cloud.live_client_urls()))


def read_keys(rig: Rig) -> set[str]:
    result = rig.etcdctl().run(rig.cloud.live_client_urls(), "get", "k", "--prefix", "--keys-only", "-w", "json")
    data = json.loads(result.stdout)
    return {base64.b64decode(kv["key"]).decode() for kv in data.get("kvs", [])}


def test_every_member_replaced_in_turn_while_a_writer_never_loses_quorum(rig: Rig, tmp_path: Path) -> None:
    stack, runner, lines = roll_setup(rig, tmp_path)
    before = {m.id for m in rig.etcdctl().members(rig.cloud.live_client_urls())}
    writer = Writer(rig.cloud, rig.context)
    writer.start()
    started = time.monotonic()
    try:
        result = runner.run()
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    elapsed = time.monotonic() - started
    assert result.failure is None, lines
    members = rig.etcdctl().members(rig.cloud.live_client_urls())
    assert len(members) == 3 and not any(m.learner for m in members)
    assert not before & {m.id for m in members}, "an original member is still in the cluster"
    assert sorted(rig.cloud.processes) == member_names(rig)
    assert len(writer.acknowledged) > 200
    missing = set(writer.acknowledged) - read_keys(rig)
    assert not missing, f"{len(missing)} acknowledged writes lost"
    gap, outage = writer.longest_gap(), max(writer.outages, default=0.0)
    print(
        f"\netcd replacement: {len(stack.steps)} steps in {elapsed:.1f}s, {len(writer.acknowledged)} writes acknowledged, "
        f"{writer.failures} failed attempts, longest failing stretch {outage * 1000:.0f} ms, "
        f"longest gap between acknowledged writes {gap * 1000:.0f} ms"
    )
    # Quorum lost = writes failing on every member in turn; a slow but successful write under a
    # loaded machine is latency, not a quorum error, so the failing stretch is what is bounded.
    assert outage < ELECTION_TIMEOUT, f"writes failed for {outage:.2f}s: quorum lost"


def test_a_new_member_that_never_becomes_healthy_stops_the_roll_with_the_cluster_serving(
    rig: Rig, tmp_path: Path
) -> None:
    stack, runner, lines = roll_setup(rig, tmp_path, timeout=8.0)
    stack.on_apply = cloud_apply(rig, start_new=False)  # type: ignore[assignment]
    result = runner.run()
    assert result.failure is not None
    assert (result.failure.check, result.failure.node) == ("etcd-member-promoted", "demo-etcd-3")
    assert "has not joined" in result.failure.detail
    # Still serving: the three voting members answer and accept writes; the learner does not vote.
    ctl = rig.etcdctl()
    members = ctl.members(rig.cloud.live_client_urls())
    assert sorted(m.name for m in members if not m.learner) == ["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"]
    assert [m.learner for m in members if not m.name] == [True]
    ctl.run(rig.cloud.live_client_urls(), "put", "still", "serving")
    # The operator fixes the node (its etcd starts) and reruns: the roll resumes with the gate.
    rig.cloud.start("demo-etcd-3", joining_cluster(rig, "demo-etcd-3"), joining=True)
    stack.on_apply = cloud_apply(rig)  # type: ignore[assignment]
    resumed = runner.run()
    assert resumed.failure is None, lines
    assert len(stack.ups) == len(stack.steps) == 7  # add, remove, then (delete + add, remove) twice, delete
    assert len(member_names(rig)) == 3 and "demo-etcd-0" not in member_names(rig)


class CountingEtcdCtl(EtcdCtl):
    """The real etcdctl client, counting removals and crashing once right after one."""

    removed: list[str] = []
    crash_after_remove: list[bool] = [True]

    def remove(self, endpoints: list[str], member: Member) -> None:  # type: ignore[override]
        super().remove(endpoints, member)
        self.removed.append(member.name)
        if self.crash_after_remove[0]:
            self.crash_after_remove[0] = False
            raise CrashError(f"crash right after removing {member.name}")


def test_a_crash_between_add_and_remove_and_right_after_a_remove_reruns_to_the_end(rig: Rig, tmp_path: Path) -> None:
    stack, runner, lines = roll_setup(rig, tmp_path)
    ctl = CountingEtcdCtl(rig.tls)
    CountingEtcdCtl.removed = []
    assert isinstance(runner.gates, ClusterGates) and runner.gates.etcd is not None
    runner.gates.etcd.etcd = ctl
    stack.crash_before_answer = {2}  # the retire's up is applied, then the operator's machine dies
    with pytest.raises(CrashError):
        runner.run()
    assert len(member_names(rig)) == 4 and ctl.removed == []  # the new member added, the old one not removed
    with pytest.raises(CrashError):
        runner.run()  # removes demo-etcd-2, then dies before recording the step as finished
    assert ctl.removed == ["demo-etcd-2"] and "demo-etcd-2" not in member_names(rig)
    position = load_position(runner.position_file, "demo")
    assert position.applied is not None
    result = runner.run()
    assert result.failure is None, lines
    assert ctl.removed == ["demo-etcd-2", "demo-etcd-1", "demo-etcd-0"]  # never twice
    assert any("removed by an earlier run" in line for line in lines)
    assert len(member_names(rig)) == 3 and sorted(rig.cloud.processes) == member_names(rig)
