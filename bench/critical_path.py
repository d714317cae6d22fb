"""Time to a ready cluster: serial time, makespan, lower bound and the critical path of a stack.

Plans the stack with the offline engine and simulates its creation with the one
duration table (kaas/offline/durations.py: estimates, not measurements). Prints
(a) the serial sum of every create, (b) the makespan with unlimited parallelism
(Pulumi creates a resource as soon as its dependencies exist), (c) the lower
bound: the unavoidable chain network -> subnet -> port -> first master boot ->
kubeadm init -> readiness gate -> CNI -> the slowest service, then the ratio
makespan / lower bound (goal: <= 1.10) and the critical path resource by resource.

    .venv/bin/python bench/critical_path.py [--stack acme-prod] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaas.offline.plan import plan_stack  # noqa: E402
from kaas.offline.timeline import time_to_ready  # noqa: E402

GOAL = 1.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="acme-prod")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = time_to_ready(plan_stack(args.stack))
    if args.json:
        print(
            json.dumps(
                {
                    "stack": args.stack,
                    "serial_s": result.serial,
                    "makespan_s": result.makespan,
                    "lower_bound_s": result.lower_bound,
                    "ratio": round(result.ratio, 3),
                    "lower_bound_chain": [{"step": s, "seconds": d} for s, d in result.lower_bound_chain],
                    "critical_path": [
                        {"step": s.label, "start_s": s.start, "finish_s": s.finish} for s in result.critical_path
                    ],
                },
                indent=2,
            )
        )
    else:
        print(f"stack {args.stack}: time to ready from the duration table (estimates)")
        print(f"  (a) serial sum of all creates   {result.serial:8.0f} s")
        print(f"  (b) makespan, unlimited workers {result.makespan:8.0f} s")
        print(f"  (c) lower bound                 {result.lower_bound:8.0f} s")
        verdict = "meets" if result.ratio <= GOAL else "MISSES"
        print(f"  makespan / lower bound = {result.ratio:.3f} ({verdict} the goal <= {GOAL:.2f})")
        print("\nlower bound chain:")
        for step, seconds in result.lower_bound_chain:
            print(f"  {seconds:6.0f} s  {step}")
        print("\ncritical path:")
        print(f"  {'start':>7} {'finish':>7}  resource")
        for step in result.critical_path:
            print(f"  {step.start:7.0f} {step.finish:7.0f}  {step.label}")
    return 0 if result.ratio <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
