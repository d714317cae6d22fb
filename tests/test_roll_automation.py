"""``AutomationStack`` drives the real ``pulumi.automation`` SDK against a stand-in ``pulumi`` CLI.

No Pulumi CLI exists on the build machines. The SDK's ``LocalWorkspace`` runs the
``pulumi`` executable it finds on ``PATH`` (pulumi/automation/_cmd.py); here that is a
small script that answers the commands the SDK sends (``version``, ``stack select``,
``up``, ``config set``/``config rm``, ``stack output --json [--show-secrets]``, ``stack history --json``,
``stack export``, from ``export.json`` when a test writes one; an ``up`` fails when a test
writes ``up-fails``) and records every argument list, so the test sees the exact command
line ``kaas roll`` makes Pulumi run for one step.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kaas.bootstrap.pki import ROLL_ETCD_OUTPUT_KEYS
from kaas.offline.plan import plan_spec
from kaas.offline.planfile import plain
from kaas.roll.automation import AutomationStack, UpdateFailedError
from kaas.roll.live import live_gates
from kaas.roll.runner import JOIN_TOKEN_CONFIG
from kaas.roll.steps import step_targets
from kaas.rollout import ClusterState, Step, next_step
from kaas.rollout.record import desired_from_spec, load_record, record_document, record_path
from kaas.spec import ClusterSpec, load_stack_spec
from kaas.spec.loader import REPO_ROOT
from tests.bootstrap_fixtures import bootstrap_plan
from tests.helpers import join_prerequisites

FAKE_PULUMI = """#!{python}
import json, os, pathlib, sys
state = pathlib.Path(os.environ["FAKE_PULUMI_DIR"])
args = [a for a in sys.argv[1:] if a != "--non-interactive"]
with open(state / "calls.jsonl", "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[:1] == ["version"]:
    print("v3.200.0")
elif args[:2] == ["stack", "select"]:
    pass
elif args[:2] == ["config", "set"]:
    # The CLI's rule: the value after the key (the SDK passes it after "--"), else standard input.
    config = json.loads((state / "config.json").read_text())
    value = args[-1] if "--" in args else sys.stdin.read()
    if (state / "config-set-fails").exists():
        sys.exit("error: " + (state / "config-set-fails").read_text())
    config[args[2]] = {{"value": value, "secret": "--secret" in args}}
    (state / "config.json").write_text(json.dumps(config))
elif args[:2] == ["config", "rm"]:
    config = json.loads((state / "config.json").read_text())
    del config[args[2]]
    (state / "config.json").write_text(json.dumps(config))
elif args[:1] == ["up"]:
    print("Updating (acme-prod): 2 to create")
    (state / "config-seen-by-up.json").write_text((state / "config.json").read_text())
    if (state / "up-fails").exists():
        sys.exit("error: " + (state / "up-fails").read_text())
    (state / "outputs.json").write_text((state / "next-outputs.json").read_text())
elif args[:2] == ["stack", "output"]:
    print((state / "outputs.json").read_text())
elif args[:2] == ["stack", "history"]:
    print(json.dumps([{{"kind": "update", "startTime": "2026-12-01T11:00:00.000Z", "message": "kaas roll",
                       "environment": {{}}, "config": {{}}, "result": "succeeded"}}]))
elif args[:2] == ["stack", "export"] and (state / "export.json").exists():
    print((state / "export.json").read_text())
elif args[:2] == ["stack", "export"]:
    print(json.dumps({{"version": 3, "deployment": {{"resources": [{{"urn": "urn:pulumi:acme-prod::kaas::x::acme-prod-network"}}]}}}}))
else:
    sys.exit("unexpected pulumi " + " ".join(args))
"""


def _deployed(fake_pulumi: Path, spec: ClusterSpec, recorded: ClusterState | None = None) -> set[str]:
    """The stack's state as `pulumi stack export` shows it: every resource of the recorded rollout's plan."""
    recorded = recorded or load_record(record_path("acme-prod"), spec)
    urns = {r.urn for r in plan_spec(spec, "acme-prod", recorded=recorded).resources}
    deployment = {"version": 3, "deployment": {"resources": [{"urn": u} for u in sorted(urns)]}}
    (fake_pulumi / "export.json").write_text(json.dumps(deployment))
    return urns


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(FAKE_PULUMI.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_DIR", str(tmp_path))
    (tmp_path / "outputs.json").write_text("{}")
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def test_one_step_is_one_pulumi_up_with_a_target_per_resource_of_its_nodes(fake_pulumi: Path) -> None:
    spec = load_stack_spec("acme-prod")
    recorded = load_record(record_path("acme-prod"), spec)
    spec = spec.model_copy(update={"workers": spec.workers.model_copy(update={"count": 4})})
    desired = desired_from_spec(spec)
    step = next_step(desired, recorded)
    outputs = {"nodeRevisions": record_document("acme-prod", step.after)["nodes"], "clusterName": "acme-prod"}
    (fake_pulumi / "next-outputs.json").write_text(json.dumps(outputs))
    lines: list[str] = []
    _deployed(fake_pulumi, load_stack_spec("acme-prod"))
    stack = AutomationStack("acme-prod", Path(__file__).resolve().parents[1], spec, on_output=lines.append)
    resources = stack.resources(step)
    targets = step_targets(step, resources)
    # The worker's own resources; what it needs (network, security groups, ...) exists already.
    assert {u.rsplit("::", 1)[1] for u in targets} == {"acme-prod-worker-3", "acme-prod-worker-3-port"}
    answer = stack.up(targets)
    assert answer == outputs
    calls = [json.loads(line) for line in (fake_pulumi / "calls.jsonl").read_text().splitlines()]
    ups = [c for c in calls if c[0] == "up"]
    assert len(ups) == 1
    up = ups[0]
    assert "--yes" in up and "--skip-preview" in up and up[up.index("--stack") + 1] == "acme-prod"
    assert sorted(up[i + 1] for i, a in enumerate(up) if a == "--target") == sorted(targets)
    assert up[up.index("--message") + 1] == "kaas roll"
    assert any("Updating (acme-prod)" in line for line in lines)


def test_a_join_token_is_secret_config_of_its_one_up_only(fake_pulumi: Path) -> None:
    spec = load_stack_spec("acme-prod")
    (fake_pulumi / "next-outputs.json").write_text(json.dumps({"clusterName": "acme-prod"}))
    stack = AutomationStack("acme-prod", Path(__file__).resolve().parents[1], spec)
    stack.up(["urn:pulumi:acme-prod::kaas::x::acme-prod-worker-3"], {JOIN_TOKEN_CONFIG: "f7k2q9.0123456789abcdef"})
    seen = json.loads((fake_pulumi / "config-seen-by-up.json").read_text())
    assert seen == {"kaas:joinToken": {"value": "f7k2q9.0123456789abcdef", "secret": True}}
    assert json.loads((fake_pulumi / "config.json").read_text()) == {}  # removed after the up
    calls = [json.loads(line) for line in (fake_pulumi / "calls.jsonl").read_text().splitlines()]
    order = [c[0] if c[0] == "up" else " ".join(c[:2]) for c in calls if c[0] in ("config", "up")]
    assert order == ["config set", "up", "config rm"]
    (set_call,) = [c for c in calls if c[:2] == ["config", "set"]]
    assert "--secret" in set_call and "--plaintext" not in set_call
    # The token never appears on a command line (world-readable in /proc/<pid>/cmdline): stdin only.
    assert not [c for c in calls if any("0123456789abcdef" in a for a in c)]
    assert set_call[set_call.index("--stack") + 1] == "acme-prod"
    stack.up(["urn:pulumi:acme-prod::kaas::x::acme-prod-worker-3"])  # a step that builds no node: no config
    assert json.loads((fake_pulumi / "config-seen-by-up.json").read_text()) == {}


def _program_outputs() -> dict[str, object]:
    """What ``pulumi stack output --json --show-secrets`` prints for a stack of the program (its etcd and admin part)."""
    outputs = bootstrap_plan("acme-prod").plan.outputs
    return {key: plain(outputs[key], show_secrets=True) for key in (*ROLL_ETCD_OUTPUT_KEYS, "adminKubeconfig")}


def test_the_roll_takes_its_etcd_client_certificate_from_the_stack_outputs_unless_given_a_directory(
    fake_pulumi: Path, tmp_path: Path
) -> None:
    spec = load_stack_spec("acme-prod")
    program_outputs = _program_outputs()
    (fake_pulumi / "outputs.json").write_text(json.dumps(program_outputs))
    outputs = AutomationStack("acme-prod", Path(__file__).resolve().parents[1], spec).outputs()
    gates = live_gates(spec, outputs, {}, tmp_path / "secrets", None, 1.0, 1.0, print)
    assert gates.etcd is not None
    tls = gates.etcd.etcd.tls
    written = [Path(p).read_text() for p in (tls.ca, tls.cert, tls.key)]
    assert written == [program_outputs[k] for k in ROLL_ETCD_OUTPUT_KEYS]
    assert "PRIVATE KEY" in written[2] and Path(tls.key).stat().st_mode & 0o777 == 0o600
    calls = (fake_pulumi / "calls.jsonl").read_text()
    assert "--show-secrets" in calls  # the key is read in clear, not as "[secret]"
    override = live_gates(spec, outputs, {}, tmp_path / "other", tmp_path / "certs", 1.0, 1.0, print)
    assert override.etcd is not None and override.etcd.etcd.tls.cert == str(tmp_path / "certs" / "client.crt")


def test_kaas_roll_reads_the_etcd_certificate_from_the_outputs_and_names_them_when_missing(fake_pulumi: Path) -> None:
    env = {**os.environ, "OS_AUTH_URL": ""}

    def roll() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "kaas", "roll", "--stack", "acme-prod", "--yes"]
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)

    (fake_pulumi / "outputs.json").write_text(json.dumps({"adminKubeconfig": _program_outputs()["adminKubeconfig"]}))
    missing = roll()
    assert missing.returncode == 1
    assert "kaas roll: the stack outputs have no etcdCaCertPem, etcdClientCertPem, etcdClientKeyPem" in missing.stderr
    (fake_pulumi / "outputs.json").write_text(json.dumps(_program_outputs()))
    found = roll()  # acme-prod's record is its spec: nothing to roll, after the live clients were set up
    assert found.returncode == 0, found.stderr
    assert "acme-prod: 0 step(s) done" in found.stdout


def test_a_failed_update_says_so_in_one_line_and_removes_the_config(fake_pulumi: Path) -> None:
    """The roll prints this line and stops (exit 1) instead of a traceback; nothing is recorded, so a rerun retries."""
    stack = AutomationStack("acme-prod", Path(__file__).resolve().parents[1], load_stack_spec("acme-prod"))
    (fake_pulumi / "up-fails").write_text("quota exceeded for instances")
    with pytest.raises(UpdateFailedError) as failed:
        stack.up(["urn:pulumi:acme-prod::kaas::x::acme-prod-worker-3"], {"kaas:joinToken": "f7k2q9.0123456789abcdef"})
    message = str(failed.value)
    assert "quota exceeded for instances" in message and "rerun to retry it" in message
    assert "\n" not in message and "f7k2q9" not in message
    assert json.loads((fake_pulumi / "config.json").read_text()) == {}


def test_a_secret_config_the_cli_refuses_stops_before_any_update(fake_pulumi: Path) -> None:
    spec = load_stack_spec("acme-prod")
    (fake_pulumi / "config-set-fails").write_text("passphrase must be set with PULUMI_CONFIG_PASSPHRASE")
    stack = AutomationStack("acme-prod", Path(__file__).resolve().parents[1], spec)
    with pytest.raises(UpdateFailedError) as failed:
        stack.up(["urn:pulumi:acme-prod::kaas::x::acme-prod-worker-3"], {JOIN_TOKEN_CONFIG: "f7k2q9.0123456789abcdef"})
    message = str(failed.value)
    assert message.startswith("pulumi config set kaas:joinToken failed (error: passphrase must be set")
    assert "0123456789abcdef" not in message
    calls = [json.loads(line) for line in (fake_pulumi / "calls.jsonl").read_text().splitlines()]
    assert not [c for c in calls if c[0] == "up"]


def _targets(fake_pulumi: Path, spec: ClusterSpec, recorded: ClusterState | None = None) -> tuple[Step, list[str]]:
    _deployed(fake_pulumi, load_stack_spec("acme-prod"), recorded)
    step = next_step(desired_from_spec(spec), recorded or load_record(record_path("acme-prod"), spec))
    stack = AutomationStack("acme-prod", Path(__file__).resolve().parents[1], spec)
    return step, step_targets(step, stack.resources(step))


def test_a_rebuilt_master_targets_what_its_join_needs_that_the_update_creates(fake_pulumi: Path) -> None:
    # pulumi up --target refuses a named resource that depends on an unnamed new one
    # (pkg/resource/deploy/step_generator.go: "depends on ... which was not specified in --target list").
    spec = load_stack_spec("acme-prod")
    bumped = spec.model_copy(update={"versions": spec.versions.model_copy(update={"kubernetes": "1.34.3"})})
    step, targets = _targets(fake_pulumi, bumped)
    assert [m.name("acme-prod") for m in step.changes] == ["acme-prod-master-0"]
    names = {(u.split("::")[2].rsplit("$", 1)[-1], u.rsplit("::", 1)[1]) for u in targets}
    assert names == {
        # the node's own resources (kaas.roll.steps.belongs_to)
        ("openstack:compute/instance:Instance", "acme-prod-master-0"),
        ("openstack:networking/port:Port", "acme-prod-master-0-port"),
        ("openstack:loadbalancer/member:Member", "acme-prod-api-master-0"),
    } | join_prerequisites("acme-prod")  # what its join needs, created by this update


def test_a_renewed_etcd_member_targets_its_new_certificates(fake_pulumi: Path) -> None:
    spec = load_stack_spec("acme-prod")
    renewed = spec.model_copy(update={"security": spec.security.model_copy(update={"etcd_certificates_generation": 2})})
    step, targets = _targets(fake_pulumi, renewed)
    assert [m.name("acme-prod") for m in step.changes] == ["acme-prod-etcd-5"]
    names = {u.rsplit("::", 1)[1] for u in targets}
    assert {"acme-prod-etcd-5", "acme-prod-etcd-5-port"} <= names
    for prefix in ("etcd-g2", "etcd-peer-g2"):  # private key, request and certificate of each
        assert sum(1 for u in targets if u.endswith(f"::acme-prod-{prefix}-acme-prod-etcd-5")) == 3
    assert all(n.endswith("acme-prod-etcd-5") or n.startswith("acme-prod-etcd-5-") for n in names)


def test_healing_a_master_replaces_its_server_and_creates_what_its_join_needs(fake_pulumi: Path) -> None:
    spec = load_stack_spec("acme-prod")
    current = _deployed(fake_pulumi, spec)
    (fake_pulumi / "next-outputs.json").write_text(json.dumps({"clusterName": "acme-prod"}))
    stack = AutomationStack("acme-prod", Path(__file__).resolve().parents[1], spec)
    instance = next(u for u in current if u.endswith("compute/instance:Instance::acme-prod-master-1"))
    stack.replace([instance], config={"kaas:heal": "acme-prod-master-1"})
    calls = [json.loads(line) for line in (fake_pulumi / "calls.jsonl").read_text().splitlines()]
    (up,) = [c for c in calls if c[0] == "up"]
    replaced = [up[i + 1] for i, a in enumerate(up) if a == "--replace"]
    targeted = {up[i + 1] for i, a in enumerate(up) if a == "--target"}
    assert replaced == [instance]
    assert instance in targeted and not targeted & current - {instance}  # nothing else that exists
    assert {u.rsplit("::", 1)[1] for u in targeted - {instance}} == {
        "acme-prod-kubeadm-certs",
        "acme-prod-kubeadm-certs-wait-for-api-before-join",
        "acme-prod-kubeadm-certs-k8s",
        "acme-prod-kubeadm-config",
        "acme-prod-kubelet-config",
    }
