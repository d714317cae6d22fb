from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kaas.spec.loader import REPO_ROOT, STACKS_DIR

STACKS = sorted(p.stem for p in STACKS_DIR.glob("*.yaml"))


def kaas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaas", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("stack", STACKS)
def test_plan_json_of_every_stack(stack: str) -> None:
    result = kaas("plan", "--stack", stack, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"stack", "resources", "outputs"}
    assert document["stack"] == stack
    for resource in document["resources"]:
        assert {"urn", "type", "name", "parent", "custom", "inputs", "dependencies", "options"} <= set(resource)


def test_plan_prints_a_tree_and_a_summary() -> None:
    result = kaas("plan", "--stack", "dev")
    assert result.returncode == 0, result.stderr
    assert "kaas:index:Cluster" in result.stdout
    assert "to create" in result.stdout and "Outputs:" in result.stdout


def test_plan_of_an_explicit_file(tmp_path: Path) -> None:
    spec = tmp_path / "other.yaml"
    spec.write_text((STACKS_DIR / "dev.yaml").read_text().replace("name: dev", "name: other"))
    result = kaas("plan", "--spec", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outputs"]["clusterName"] == "other"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: dev\nworkers: {count: 0}\n", "workers.count: must be >= 1"),
        ("name: [unclosed\n", "not valid YAML"),
        ("{}\n", "name: is required"),
    ],
)
def test_bad_spec_exits_2_without_traceback(tmp_path: Path, text: str, expected: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    result = kaas("plan", "--spec", str(spec))
    assert result.returncode == 2
    assert expected in result.stderr and str(spec) in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("field", ["kubernetes", "etcd"])
def test_a_version_the_rollout_cannot_parse_is_one_line_naming_the_field(tmp_path: Path, field: str) -> None:
    """Such a version used to pass the spec and end in a ValueError traceback from the rollout model."""
    spec = tmp_path / "bad.yaml"
    spec.write_text((STACKS_DIR / "dev.yaml").read_text() + f'versions: {{{field}: "1.34.2---"}}\n')
    result = kaas("plan", "--spec", str(spec))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{spec}: versions.{field}: '1.34.2---' is not a version: use MAJOR.MINOR.PATCH like 1.34.2 "
        "(an optional leading 'v', no suffix)"
    ]


def test_unknown_stack_exits_2() -> None:
    result = kaas("plan", "--stack", "nope")
    assert result.returncode == 2 and "no spec for stack 'nope'" in result.stderr


def test_a_reader_that_leaves_early_ends_the_plan_quietly() -> None:
    # `kaas plan --json | head`: the pipe closes after the first line; Python then raises
    # BrokenPipeError on the next write or flush (SIGPIPE is ignored by the interpreter).
    process = subprocess.Popen(
        [sys.executable, "-m", "kaas", "plan", "--stack", "dev", "--json"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().strip() == b"{"
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
