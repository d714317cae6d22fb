"""Plan cost at scale: the real entry (`__main__.py`) beside the program called directly, for growing worker counts.

Each size plans `stacks/acme-prod.yaml` with the worker count replaced (and a node CIDR
large enough to hold them) two ways, each run in a fresh interpreter (so peak RSS is
that plan's own):

- offline: the engine calls the program's function (`kaas.program.run(plan)`) itself;
- entry: the engine runs `__main__.py` as Pulumi's language host does (`runpy`, the
  project directory, stack config, the spec as config `kaas:spec`): what `pulumi up` runs.

The program's modules are imported before the clock starts, on both paths. Prints wall
time and CPU time (all threads of the process: steadier than wall time on a shared
machine) of both, their ratios, peak RSS, resources, CPU time per resource and its
growth between sizes (linear growth keeps it near 1.00x), and as its last line one JSON
object: {"workers", "resources", "offline_s", "entry_s", "entry_over_offline" (max wall
ratio), "peak_mb" (max)}. With --repeat N the two paths alternate N times per size and
the fastest run of each is kept.

    .venv/bin/python bench/plan_scale.py [--sizes 3,30,300,1000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("offline", "entry")

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from kaas.spec import load_stack_spec
base = load_stack_spec("acme-prod")
data = base.model_dump(mode="json")
data["workers"]["count"] = {workers}
data["networking"]["node_cidr"] = "10.20.0.0/20"
spec = type(base).model_validate(data)
from kaas import program  # imported before the clock starts on both paths (__main__.py imports it)
if {path!r} == "entry":
    from kaas.offline.plan import plan_spec
    plan_it = lambda: plan_spec(spec)
else:
    from kaas.offline.engine import run_plan
    from kaas.offline.plan import offline_secrets
    from kaas.cluster_plan import make_cluster_plan
    plan_it = lambda: run_plan(
        lambda: program.run(make_cluster_plan(spec, None)), stack=spec.name, config=offline_secrets(spec)
    )
start, cpu = time.perf_counter(), time.process_time()
plan = plan_it()
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": elapsed, "cpu_seconds": cpu, "resources": len(plan.resources), "peak_mb": peak_kb / 1024}}))
"""


def measure(path: str, workers: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), workers=workers, path=path)],
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
    parser.add_argument("--repeat", type=int, default=1, help="runs per size and path; the fastest is kept")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, dict[str, float]]] = []
    for workers in sizes:
        print(f"planning {workers} workers ...", file=sys.stderr, flush=True)
        runs: dict[str, list[dict[str, float]]] = {path: [] for path in PATHS}
        for _ in range(args.repeat):
            for path in PATHS:  # alternate, so both paths see the same load
                runs[path].append(measure(path, workers))
        best = {path: min(results, key=lambda r: r["seconds"]) for path, results in runs.items()}
        if best["offline"]["resources"] != best["entry"]["resources"]:
            raise SystemExit(f"{workers} workers: the two paths registered different resource counts: {best}")
        rows.append(best)

    print(
        f"{'workers':>8} {'resources':>10} {'offline s':>10} {'cpu s':>6} {'entry s':>8} {'cpu s':>6}"
        f" {'entry/offline':>14} {'cpu ratio':>9} {'cpu ms/res':>11} {'peak MB':>8} {'growth':>7}"
    )
    previous = None
    for workers, row in zip(sizes, rows, strict=True):
        offline, entry = row["offline"], row["entry"]
        resources = int(entry["resources"])
        per = 1000 * entry["cpu_seconds"] / resources
        growth = "" if previous is None else f"{per / previous:.2f}x"
        print(
            f"{workers:>8} {resources:>10} {offline['seconds']:>10.2f} {offline['cpu_seconds']:>6.2f}"
            f" {entry['seconds']:>8.2f} {entry['cpu_seconds']:>6.2f} {entry['seconds'] / offline['seconds']:>14.2f}"
            f" {entry['cpu_seconds'] / offline['cpu_seconds']:>9.2f} {per:>11.2f}"
            f" {max(offline['peak_mb'], entry['peak_mb']):>8.0f} {growth:>7}"
        )
        previous = per
    print(
        "cpu ms/res = entry CPU time per resource (steadier than wall time under load); growth = cpu ms/res"
        " relative to the previous size (1.00x = linear); peak MB = the larger of the two processes"
    )
    print(
        json.dumps(
            {
                "workers": sizes,
                "resources": [int(row["entry"]["resources"]) for row in rows],
                "offline_s": [round(row["offline"]["seconds"], 2) for row in rows],
                "entry_s": [round(row["entry"]["seconds"], 2) for row in rows],
                "entry_over_offline": round(
                    max(row["entry"]["seconds"] / row["offline"]["seconds"] for row in rows), 3
                ),
                "peak_mb": round(max(max(row[path]["peak_mb"] for path in PATHS) for row in rows)),
            }
        )
    )


if __name__ == "__main__":
    main()
