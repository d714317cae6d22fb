"""The bench scripts still run against today's program (they print figures; no timing is asserted here).

A bench that only breaks when someone wants its figures is a bench nobody trusts: acme-prod's
alert receivers added config secrets the offline path of plan_scale.py did not pass, and
nothing noticed until the README's table was regenerated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_plan_scale_plans_both_paths_and_prints_its_summary() -> None:
    result = run_bench("bench/plan_scale.py", "--sizes", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["workers"] == [3]
    assert summary["resources"][0] > 100  # the whole acme-prod plan, not an early failure
    assert summary["entry_over_offline"] > 0


def test_critical_path_prints_the_makespan_and_its_ratio() -> None:
    result = run_bench("bench/critical_path.py", "--stack", "acme-prod")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "makespan" in result.stdout.lower()
