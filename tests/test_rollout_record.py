"""The rollout record beside the spec: read, written, and refused when it disagrees with the spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kaas.rollout import Phase, Tier
from kaas.rollout.record import desired_from_spec, dump_record, load_record, record_path
from kaas.spec import SpecError, load_stack_spec
from kaas.spec.loader import REPO_ROOT
from tests.helpers import make_spec

ACME = load_stack_spec("acme-prod")
COMMITTED = record_path("acme-prod").read_text()


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "acme-prod.yaml"
    path.write_text(text)
    return path


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as error:
        load_record(written(tmp_path, text), ACME)
    return str(error.value).removeprefix(f"{tmp_path / 'acme-prod.yaml'}: ")


def test_the_committed_record_is_acme_prod_at_its_spec() -> None:
    recorded = load_record(record_path("acme-prod"), ACME)
    assert recorded == desired_from_spec(ACME).initial_state()


def test_dump_and_load_round_trip_including_a_leaving_node(tmp_path: Path) -> None:
    state = desired_from_spec(ACME).initial_state()
    leaving = tuple(
        n if (n.tier, n.index) != (Tier.WORKER, 2) else n.__class__(n.tier, n.index, n.revision, Phase.LEAVING)
        for n in state.nodes
    )
    state = state.__class__(leaving)
    text = dump_record("acme-prod", state)
    assert "acme-prod-worker-2: {image: ubuntu-24.04, version: 1.34.2" in text and "phase: leaving}" in text
    assert load_record(written(tmp_path, text), ACME) == state


def test_no_record_is_a_stack_never_deployed(tmp_path: Path) -> None:
    assert load_record(tmp_path / "missing.yaml", ACME) is None


def test_a_record_of_another_cluster_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, COMMITTED.replace("cluster: acme-prod", "cluster: acme-dev")) == (
        "cluster: the record is of 'acme-dev' but the spec is 'acme-prod'"
    )


def test_a_hand_edited_node_name_is_refused_naming_it(tmp_path: Path) -> None:
    text = COMMITTED.replace("acme-prod-master-2:", "acme-prod-mastr-2:")
    assert refusal(tmp_path, text) == (
        "nodes.acme-prod-mastr-2: not a node name of acme-prod (acme-prod-<etcd|master|worker>-<index>)"
    )


def test_a_missing_field_is_refused_naming_it(tmp_path: Path) -> None:
    text = COMMITTED.replace("acme-prod-etcd-3: {image: ubuntu-24.04, ", "acme-prod-etcd-3: {")
    assert refusal(tmp_path, text) == "nodes.acme-prod-etcd-3.image: is required"


def test_an_index_outside_the_address_block_is_refused(tmp_path: Path) -> None:
    text = COMMITTED.replace("acme-prod-etcd-4:", "acme-prod-etcd-16:")
    assert refusal(tmp_path, text) == "nodes.acme-prod-etcd-16: index 16 is outside the etcd address block (16 slots)"


def test_a_truncated_record_is_refused_before_anything_is_planned(tmp_path: Path) -> None:
    # Cut after the masters: no worker is recorded although the spec has three.
    truncated = COMMITTED[: COMMITTED.index("  acme-prod-worker-0")]
    path = written(tmp_path, truncated)
    from kaas.cluster_plan import make_cluster_plan

    with pytest.raises(SpecError) as error:
        make_cluster_plan(ACME, load_record(path, ACME), str(path))
    assert str(error.value) == (
        f"{path}: nodes: the rollout record has no running worker node but the spec wants 3: "
        "a truncated or hand-edited record (restore it from git)"
    )
    cut_mid_line = COMMITTED[: COMMITTED.index("acme-prod-worker-1") + 30]
    assert refusal(tmp_path, cut_mid_line).startswith("(document): line 14, column")


def test_an_empty_record_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, "") == "(document): must be a rollout record (cluster, nodes); the document is empty"


def test_worker_rollout_settings_must_let_a_rollout_progress() -> None:
    with pytest.raises(SpecError) as error:
        make_spec(workers={"max_surge": 0, "max_unavailable": 0})
    assert str(error.value) == (
        "<test>: workers.max_unavailable: must be >= 1 when workers.max_surge is 0, or no worker could ever be replaced"
    )
    assert make_spec(workers={"max_surge": 2, "max_unavailable": 0}).workers.max_surge == 2


def kaas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaas", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_rollout_status_of_acme_prod_is_done() -> None:
    result = kaas("rollout", "status", "--stack", "acme-prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "acme-prod: rollout done, every node runs the spec's revision.\n"


def test_rollout_record_from_outputs_writes_the_same_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kaas import cli
    from kaas.offline import plan_stack
    from kaas.offline.planfile import plain
    from kaas.rollout import record

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(plain(plan_stack("acme-prod").outputs)))  # secrets masked, as pulumi prints
    monkeypatch.setattr(record, "STACKS_DIR", tmp_path)
    target = tmp_path / "rollout" / "acme-prod.yaml"
    monkeypatch.setattr(record, "record_path", lambda stack, stacks_dir=tmp_path: target)
    assert cli.main(["rollout", "record", "--stack", "acme-prod", "--outputs", str(outputs)]) == 0
    assert target.read_text() == COMMITTED
