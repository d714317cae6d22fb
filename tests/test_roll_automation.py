"""``AutomationStack`` drives the real ``pulumi.automation`` SDK against a stand-in ``pulumi`` CLI.

No Pulumi CLI exists on the build machines. The SDK's ``LocalWorkspace`` runs the
``pulumi`` executable it finds on ``PATH`` (pulumi/automation/_cmd.py); here that is a
small script that answers the commands the SDK sends (``version``, ``stack select``,
``up``, ``stack output --json [--show-secrets]``, ``stack history --json``,
``stack export``, from ``export.json`` when a test writes one) and records every argument
list, so the test sees the exact command line ``kaas roll`` makes Pulumi run for one step.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from kaas.roll.automation import AutomationStack
from kaas.roll.steps import step_targets
from kaas.rollout import next_step
from kaas.rollout.record import desired_from_spec, load_record, record_document, record_path
from kaas.spec import load_stack_spec

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
elif args[:1] == ["up"]:
    print("Updating (acme-prod): 2 to create")
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
    stack = AutomationStack("acme-prod", Path(__file__).resolve().parents[1], spec, on_output=lines.append)
    urns = stack.urns(step)
    assert "urn:pulumi:acme-prod::kaas::x::acme-prod-network" in urns  # the stack's current resources too
    targets = step_targets(step, urns)
    assert {u.rsplit("::", 1)[1] for u in targets} >= {"acme-prod-worker-3", "acme-prod-worker-3-port"}
    assert all("worker-3" in u for u in targets)
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
