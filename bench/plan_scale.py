"""Plan cost at scale: offline plan wall time and peak memory for growing worker counts.

Each size runs in a fresh interpreter (so peak RSS is that plan's own), planning
`stacks/acme-prod.yaml` with the worker count replaced (and a node CIDR large
enough to hold them). Prints wall time, CPU time (all threads of the process:
steadier than wall time on a shared machine), peak RSS, resources, per-resource
cost and the growth ratio between sizes (linear growth keeps the ratio of
per-resource costs near 1).

    .venv/bin/python bench/plan_scale.py [--sizes 3,30,300,1000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from kaas.offline.plan import plan_spec
from kaas.spec import load_stack_spec
base = load_stack_spec("acme-prod")
data = base.model_dump(mode="json")
data["workers"]["count"] = {workers}
data["networking"]["node_cidr"] = "10.20.0.0/20"
spec = type(base).model_validate(data)
start, cpu = time.perf_counter(), time.process_time()
plan = plan_spec(spec)
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"workers": {workers}, "seconds": elapsed, "cpu_seconds": cpu, "resources": len(plan.resources), "peak_mb": peak_kb / 1024}}))
"""


def measure(workers: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), workers=workers)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3,30,300,1000")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the fastest is kept")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for workers in sizes:
        print(f"planning {workers} workers ...", file=sys.stderr, flush=True)
        runs = [measure(workers) for _ in range(args.repeat)]
        rows.append(min(runs, key=lambda r: r["seconds"]))
    header = (
        f"{'workers':>8} {'resources':>10} {'wall s':>8} {'cpu s':>7} {'ms/resource':>12} {'peak MB':>8} {'growth':>8}"
    )
    print(header)
    previous = None
    for row in rows:
        per = 1000 * row["seconds"] / row["resources"]
        growth = "" if previous is None else f"{per / previous:.2f}x"
        print(
            f"{row['workers']:>8} {row['resources']:>10} {row['seconds']:>8.2f} {row['cpu_seconds']:>7.2f}"
            f" {per:>12.2f} {row['peak_mb']:>8.0f} {growth:>8}"
        )
        previous = per
    print("ms/resource = wall time per resource; growth = ms/resource relative to the previous size (1.00x = linear)")


if __name__ == "__main__":
    main()
