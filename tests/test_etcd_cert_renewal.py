"""Renewing etcd's certificates: a generation in the nodes' revision, carried by the rollout.

The etcd members' serving and peer certificates and the API servers' etcd client certificate
are issued by pulumi-tls for five years and live only in user data (the etcd CA keys never
reach a node), so no timer on a node can renew them. Raising the spec's
``security.etcd_certificates_generation`` issues new ones (resources named ``-g<N>``) and, as a
server keeps what it was built with, makes every etcd member and master outdated: the rollout
replaces the members one at a time (add learner, promote, remove), then rebuilds the masters
one at a time, each built with the new generation; workers carry none and are not touched.

Proven here: the planner's sequence and its day-2 invariants, the plan of the first etcd step
and of the first master step (new certificates from the same CAs, the old ones kept while a node
carries them, kubeadm-certs carrying the joining master's generation), the record and the
policy pack reading the generation back, and a real etcd cluster of first-generation members
taking in a second-generation member from the plan and dropping an old one (etcd checks peers
and clients against the CA only, https://etcd.io/docs/v3.6/op-guide/security/, so both
generations serve side by side).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from kaas.bootstrap import kubeadm_certs
from kaas.bootstrap.pki import (
    ADMIN_VALIDITY_HOURS,
    KEYSTONE_AUTH_EARLY_RENEWAL_HOURS,
    LEAF_VALIDITY_HOURS,
    ROLL_ETCD_CLIENT_EARLY_RENEWAL_HOURS,
    generation_suffix,
)
from kaas.bootstrap.userdata.etcd import EtcdMember, EtcdPaths, etcd_config
from kaas.cluster_plan import make_cluster_plan
from kaas.offline import Plan, plan_spec
from kaas.offline.planfile import plain
from kaas.review.check import check_plan, view_of
from kaas.review.policy import planned_step
from kaas.roll.etcd import EtcdCtl, EtcdTLS
from kaas.roll.gates import EtcdGate, Waiting
from kaas.rollout import Action, Tier, rollout
from kaas.rollout.invariants import check_step
from kaas.rollout.record import desired_from_spec, dump_record, load_record, parse_record, record_path
from kaas.services import values
from kaas.spec import SpecError, load_stack_spec, parse_spec
from kaas.spec.loader import STACKS_DIR
from tests.bootstrap_fixtures import bootstrap_plan
from tests.controlplane import BIN_DIR
from tests.helpers import cloud_config_files, free_ports, merge

INSTANCE = "openstack:compute/instance:Instance"
CERT = "tls:index/locallySignedCert:LocallySignedCert"
ACME: dict[str, Any] = yaml.safe_load((STACKS_DIR / "acme-prod.yaml").read_text())
ACME_SPEC = parse_spec(ACME, "acme-prod")
RECORDED = load_record(record_path("acme-prod"), ACME_SPEC)
RENEWED = parse_spec(merge(ACME, {"security": {"etcd_certificates_generation": 2}}), "<acme-prod renewal>")
ETCD_PATHS = EtcdPaths()


def _steps() -> list[Any]:
    assert RECORDED is not None
    return list(rollout(desired_from_spec(RENEWED), RECORDED))


def _user_data_files(plan: Plan, node: str) -> dict[str, str]:
    (instance,) = [r for r in plan.by_type(INSTANCE) if r.name == node]
    files = cloud_config_files(yaml.safe_load(plain(instance.inputs["userData"], show_secrets=True)))
    return {path: f["content"] for path, f in files.items()}


def _certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _signed_by(cert: x509.Certificate, ca_pem: str) -> bool:
    try:
        cert.verify_directly_issued_by(_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _cert_names(plan: Plan) -> set[str]:
    return {r.name for r in plan.by_type(CERT)}


# --- the rollout -----------------------------------------------------------------------------


def test_raising_the_generation_replaces_every_member_then_every_master_and_no_worker() -> None:
    steps = _steps()
    moved = [(m.tier, m.action) for step in steps for m in step.changes]
    assert not [m for m in moved if m[0] is Tier.WORKER]
    # etcd: five adds (each a learner promoted by kaas roll), five retirements, five deletions.
    assert sum(1 for t, a in moved if t is Tier.ETCD and a is Action.CREATE) == 5
    assert sum(1 for t, a in moved if t is Tier.ETCD and a is Action.RETIRE) == 5
    # Then each master rebuilt in place, one per step, after every etcd member carries generation 2.
    masters = [i for i, step in enumerate(steps) if step.moving(Tier.MASTER)]
    assert [len(steps[i].moving(Tier.MASTER)) for i in masters] == [1, 1, 1]
    assert all(not steps[i].moving(Tier.ETCD) for i in masters)
    before_masters = steps[masters[0]].before
    assert {n.revision.certificates for n in before_masters.tier(Tier.ETCD)} == {2}
    final = steps[-1].after
    assert {n.revision.certificates for n in final.tier(Tier.ETCD) + final.tier(Tier.MASTER)} == {2}
    assert {n.revision.certificates for n in final.tier(Tier.WORKER)} == {1}
    desired = desired_from_spec(RENEWED)
    for step in steps:
        assert not check_step(desired, step), step.changes


def test_a_lower_generation_than_a_node_carries_is_refused_naming_the_spec_field() -> None:
    renewed = _steps()[-1].after
    with pytest.raises(SpecError) as error:
        make_cluster_plan(ACME_SPEC, renewed, spec_source="stacks/acme-prod.yaml")
    (problem,) = error.value.problems
    assert problem.startswith("security.etcd_certificates_generation: 1 is older than generation 2 that acme-prod-")
    assert "stacks/acme-prod.yaml" in str(error.value)


def test_the_record_carries_a_renewed_generation_and_reads_an_older_record_as_the_first() -> None:
    renewed = _steps()[-1].after
    text = dump_record("acme-prod", renewed)
    assert "acme-prod-etcd-5: {image: ubuntu-24.04, version: 3.6.5, template: 1, flavor: kaas.etcd, " in text
    assert text.count("certificates: 2") == 5 + 3
    assert "certificates" not in next(line for line in text.splitlines() if "worker-0" in line)
    assert parse_record(yaml.safe_load(text), RENEWED, "record") == renewed
    assert RECORDED is not None and {n.revision.certificates for n in RECORDED.nodes} == {1}


def test_the_spec_refuses_a_generation_below_one() -> None:
    with pytest.raises(SpecError, match=r"security\.etcd_certificates_generation"):
        parse_spec(merge(ACME, {"security": {"etcd_certificates_generation": 0}}), "x")


# --- the plans of the first etcd step and the first master step --------------------------------


@pytest.fixture(scope="module")
def etcd_step() -> Plan:
    """The renewal's first step: acme-prod-etcd-5 added with second-generation certificates."""
    return plan_spec(RENEWED, recorded=RECORDED)


@pytest.fixture(scope="module")
def master_step() -> Plan:
    """The first master step: every member renewed, acme-prod-master-0 rebuilt in place (a join)."""
    steps = _steps()
    first = next(s for s in steps if s.moving(Tier.MASTER))
    return plan_spec(RENEWED, recorded=first.before)


def test_the_added_member_carries_new_certificates_from_the_same_cas(etcd_step: Plan) -> None:
    assert etcd_step.outputs["rollout"]["step"] == {"acme-prod-etcd-5": "create"}
    names = _cert_names(etcd_step)
    for prefix in ("etcd", "etcd-peer"):
        assert f"acme-prod-{prefix}{generation_suffix(2)}-acme-prod-etcd-5" in names
        assert f"acme-prod-{prefix}-acme-prod-etcd-5" not in names
        # The members that keep running keep their first-generation certificates (their servers
        # keep their user data), so the resources stay until the member is deleted.
        assert {f"acme-prod-{prefix}-acme-prod-etcd-{i}" for i in range(5)} <= names
    new, old = _user_data_files(etcd_step, "acme-prod-etcd-5"), _user_data_files(etcd_step, "acme-prod-etcd-0")
    assert new[ETCD_PATHS.ca_cert] == old[ETCD_PATHS.ca_cert]
    assert new[ETCD_PATHS.peer_ca_cert] == old[ETCD_PATHS.peer_ca_cert]
    for path, ca in ((ETCD_PATHS.cert, ETCD_PATHS.ca_cert), (ETCD_PATHS.peer_cert, ETCD_PATHS.peer_ca_cert)):
        cert = _certificate(new[path])
        assert _signed_by(cert, new[ca])
        assert cert.subject.rfc4514_string() == "CN=acme-prod-etcd-5"
    (instance,) = [r for r in etcd_step.by_type(INSTANCE) if r.name == "acme-prod-etcd-5"]
    assert instance.inputs["metadata"]["kaas-certificates"] == "2"
    (kept,) = [r for r in etcd_step.by_type(INSTANCE) if r.name == "acme-prod-etcd-0"]
    assert "kaas-certificates" not in kept.inputs["metadata"]
    assert etcd_step.outputs["nodeRevisions"]["acme-prod-etcd-5"]["certificates"] == 2
    assert etcd_step.outputs["nodeRevisions"]["acme-prod-etcd-0"]["certificates"] == 1


def test_the_policy_pack_reads_the_generation_back_and_passes_the_step(etcd_step: Plan, master_step: Plan) -> None:
    for plan, node in ((etcd_step, "acme-prod-etcd-5"), (master_step, "acme-prod-master-0")):
        found = planned_step(view_of(plan))
        assert found is not None
        _, step = found
        (move,) = step.changes
        assert move.name("acme-prod") == node and move.after is not None and move.after.revision.certificates == 2
        assert check_plan(plan) == (True, [])  # production: every rule mandatory, none broken


def test_the_rebuilt_master_joins_with_the_new_api_server_etcd_client_while_the_old_one_stays(
    master_step: Plan,
) -> None:
    assert master_step.outputs["rollout"]["step"] == {"acme-prod-master-0": "replace"}
    certs = {r.name for r in master_step.by_type(CERT)}
    # masters 1 and 2 still run generation 1 (their servers keep it), master-0 gets generation 2.
    assert {"acme-prod-apiserver-etcd-client", "acme-prod-apiserver-etcd-client-g2"} <= certs
    # No member carries a first-generation certificate any more: those resources are gone.
    assert not [
        n
        for n in certs
        if n.startswith("acme-prod-etcd-") and not n.startswith(("acme-prod-etcd-g2-", "acme-prod-etcd-peer-g2-"))
    ]
    (secret,) = [r for r in master_step.by_type("kubernetes:core/v1:Secret") if r.name.endswith("-kubeadm-certs")]
    data = plain(secret.inputs["data"], show_secrets=True)
    (master,) = [r for r in master_step.by_type(INSTANCE) if r.name == "acme-prod-master-0"]
    user_data = plain(master.inputs["userData"], show_secrets=True)
    (key,) = {line.split(":", 1)[1].strip() for line in user_data.splitlines() if "certificateKey:" in line}
    # kubeadm join --control-plane downloads external-etcd.crt as apiserver-etcd-client.crt
    # (cmd/kubeadm/app/phases/copycerts/copycerts.go, certsToTransfer).
    downloaded = _certificate(kubeadm_certs.decrypt(key, base64.b64decode(data["external-etcd.crt"])).decode())
    first = _certificate(bootstrap_plan("acme-prod").output("apiserverEtcdClientCertPem"))
    assert downloaded.serial_number != first.serial_number
    assert downloaded.subject == first.subject  # the same identity, CN kube-apiserver-etcd-client
    ca = kubeadm_certs.decrypt(key, base64.b64decode(data["external-etcd-ca.crt"])).decode()
    assert _signed_by(downloaded, ca) and _signed_by(first, ca)


def test_the_roll_client_certificate_renews_itself_on_an_update_in_its_last_400_days(etcd_step: Plan) -> None:
    cert = etcd_step.find(CERT, "acme-prod-roll-etcd-client")
    assert cert.inputs["earlyRenewalHours"] == ROLL_ETCD_CLIENT_EARLY_RENEWAL_HOURS
    # Longer than the admin credential's year, whose expiry alert forces a yearly update: one lands inside.
    assert ADMIN_VALIDITY_HOURS < ROLL_ETCD_CLIENT_EARLY_RENEWAL_HOURS < cert.inputs["validityPeriodHours"]


# --- a real etcd cluster takes in a renewed member ----------------------------------------------

ETCD_PATH = os.pathsep.join([str(BIN_DIR), os.environ["PATH"]]) if (BIN_DIR / "etcd").exists() else os.environ["PATH"]
ETCD = shutil.which("etcd", path=ETCD_PATH)
ETCDCTL = shutil.which("etcdctl", path=ETCD_PATH)


class LocalEtcd:
    """The step's etcd members on 127.0.0.1, each with the files its planned user data writes."""

    def __init__(self, plan: Plan, root: Path) -> None:
        self.plan, self.root = plan, root
        self.members: dict[str, EtcdMember] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def member(self, name: str) -> EtcdMember:
        if name not in self.members:
            client, peer, metrics = free_ports(3)
            self.members[name] = EtcdMember(name, "127.0.0.1", client, peer, metrics)
        return self.members[name]

    def start(self, name: str, cluster: list[EtcdMember], joining: bool) -> None:
        files = _user_data_files(self.plan, name)
        paths = EtcdPaths(pki_dir=str(self.root / name / "pki"), data_dir=str(self.root / name / "data"))
        for planned, local in (
            (ETCD_PATHS.ca_cert, paths.ca_cert),
            (ETCD_PATHS.cert, paths.cert),
            (ETCD_PATHS.key, paths.key),
            (ETCD_PATHS.peer_ca_cert, paths.peer_ca_cert),
            (ETCD_PATHS.peer_cert, paths.peer_cert),
            (ETCD_PATHS.peer_key, paths.peer_key),
        ):
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            Path(local).write_text(files[planned])
            Path(local).chmod(0o600)
        config = etcd_config(self.member(name), cluster, "acme-prod-etcd", paths, joining=joining)
        config_path = self.root / f"{name}.conf.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = (self.root / f"{name}.log").open("wb")
        assert ETCD is not None
        self.processes[name] = subprocess.Popen(
            [ETCD, "--config-file", str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait(timeout=10)

    def endpoints(self) -> list[str]:
        return [self.members[n].client_url for n in self.processes]

    def logs(self) -> str:
        return "\n".join(f"{n}: {(self.root / f'{n}.log').read_text()[-1500:]}" for n in self.processes)


DEMO = load_stack_spec("demo")  # three etcd members
DEMO_RENEWED = parse_spec(
    merge(DEMO.model_dump(mode="json"), {"security": {"etcd_certificates_generation": 2}}), "<demo renewal>"
)
DEMO_BUILT = desired_from_spec(DEMO).initial_state()


@pytest.fixture(scope="module")
def demo_step() -> Plan:
    """demo's renewal, first step: demo-etcd-3 added with second-generation certificates."""
    return plan_spec(DEMO_RENEWED, recorded=DEMO_BUILT)


@pytest.fixture
def local_etcd(demo_step: Plan, tmp_path: Path) -> Iterator[tuple[LocalEtcd, EtcdCtl]]:
    cluster = LocalEtcd(demo_step, tmp_path)
    outputs = demo_step.outputs
    tls = EtcdTLS(str(tmp_path / "roll-ca.crt"), str(tmp_path / "roll-client.crt"), str(tmp_path / "roll-client.key"))
    Path(tls.ca).write_text(outputs["etcdCaCertPem"])
    Path(tls.cert).write_text(outputs["etcdClientCertPem"])
    Path(tls.key).write_text(plain(outputs["etcdClientKeyPem"], show_secrets=True))
    assert ETCDCTL is not None
    etcdctl = EtcdCtl(tls, binary=ETCDCTL)
    first = [n.name(DEMO.name) for n in DEMO_BUILT.tier(Tier.ETCD)]
    initial = [cluster.member(n) for n in first]
    for name in first:
        cluster.start(name, initial, joining=False)
    try:
        deadline = time.monotonic() + 30
        while any(etcdctl.health(cluster.endpoints()).values()):
            if time.monotonic() > deadline:
                pytest.fail(f"the first-generation members did not become healthy:\n{cluster.logs()}")
            time.sleep(0.2)
        yield cluster, etcdctl
    finally:
        for name in list(cluster.processes):
            cluster.kill(name)


def _served_certificate(url: str, tls: EtcdTLS) -> x509.Certificate:
    """The certificate a member presents on its client port (the handshake as kaas roll's client)."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=tls.ca)
    context.check_hostname = False  # the member's SANs are its node address, not 127.0.0.1's name
    context.load_cert_chain(tls.cert, tls.key)
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as conn:
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.mark.skipif(ETCD is None or ETCDCTL is None, reason="needs etcd")
def test_a_real_cluster_of_first_generation_members_takes_in_a_renewed_member_and_drops_an_old_one(
    demo_step: Plan, local_etcd: tuple[LocalEtcd, EtcdCtl]
) -> None:
    cluster, etcdctl = local_etcd
    add, retire = list(rollout(desired_from_spec(DEMO_RENEWED), DEMO_BUILT))[:2]
    assert demo_step.outputs["rollout"]["step"] == {"demo-etcd-3": "create"}
    (new,) = (m.name(DEMO.name) for m in add.changes)
    (old,) = (m.name(DEMO.name) for m in retire.changes)
    # kaas roll's etcd gate around each step's pulumi up (the up: the new server boots its user data).
    lines: list[str] = []
    gate = EtcdGate(
        etcdctl,
        lambda name: cluster.member(name).client_url,
        lambda name: cluster.member(name).peer_url,
        Waiting(timeout=60, interval=0.2),
        lines.append,
    )
    gate.before_up(add)
    joining = [*(cluster.members[n] for n in list(cluster.processes)), cluster.member(new)]
    cluster.start(new, joining, joining=True)
    gate.after_up(add)
    gate.before_up(retire)
    gate.after_up(retire)  # etcdctl member remove of the retired first-generation member
    cluster.kill(old)  # the next step deletes its server
    members = etcdctl.members(cluster.endpoints())
    assert sorted(m.name for m in members) == ["demo-etcd-0", "demo-etcd-1", new], lines
    assert not any(m.learner for m in members)
    assert not any(etcdctl.health(cluster.endpoints()).values()), cluster.logs()
    # Writes through the renewed member reach the first-generation ones (raft across generations).
    etcdctl.run([cluster.members[new].client_url], "put", "/registry/renewed", "yes")
    got = etcdctl.run([cluster.members["demo-etcd-0"].client_url], "get", "/registry/renewed", "--print-value-only")
    assert got.stdout.strip() == "yes"
    # The renewed member serves the second-generation certificate the plan issued, for five years
    # from its issue (the offline engine issues at a fixed instant, so plans stay deterministic).
    served = _served_certificate(cluster.members[new].client_url, etcdctl.tls)
    assert served == _certificate(_user_data_files(demo_step, new)[ETCD_PATHS.cert])
    kept = _served_certificate(cluster.members["demo-etcd-0"].client_url, etcdctl.tls)
    assert kept == _certificate(_user_data_files(demo_step, "demo-etcd-0")[ETCD_PATHS.cert])
    assert kept.serial_number != served.serial_number
    validity = served.not_valid_after_utc - served.not_valid_before_utc
    assert validity == datetime.timedelta(hours=LEAF_VALIDITY_HOURS)


# --- the other five-year leaves outside user data renew on any pulumi up --------------------------


def test_the_keystone_auth_serving_certificate_renews_early_and_rolls_its_daemon_set(etcd_step: Plan) -> None:
    # Not in user data: the API servers' webhook kubeconfigs trust the Kubernetes CA, and the
    # certificate reaches the pods through a Secret, so pulumi-tls may simply re-issue it.
    cert = etcd_step.find(CERT, "acme-prod-keystone-auth")
    assert cert.inputs["earlyRenewalHours"] == KEYSTONE_AUTH_EARLY_RENEWAL_HOURS
    assert ADMIN_VALIDITY_HOURS < KEYSTONE_AUTH_EARLY_RENEWAL_HOURS < cert.inputs["validityPeriodHours"]
    secret = etcd_step.find("kubernetes:core/v1:Secret", "acme-prod-keystone-auth-tls")
    pem = plain(secret.inputs["stringData"], show_secrets=True)["tls.crt"]
    daemon_set = etcd_step.find("kubernetes:apps/v1:DaemonSet", "acme-prod-keystone-auth")
    annotations = daemon_set.inputs["spec"]["template"]["metadata"]["annotations"]
    # Both containers load the certificate at start: a new one must change the pod template.
    assert annotations == {values.CONFIG_CHECKSUM_ANNOTATION: hashlib.sha256(pem.encode()).hexdigest()}
