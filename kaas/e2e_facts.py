"""Helpers of the end-to-end workflow (.github/workflows/e2e.yml).

``python -m kaas.e2e_facts facts <stack>`` prints shell assignments from the stack's spec
(``eval "$(...)"``): ``ns``, ``nodes`` (masters + workers), ``registry`` (Harbor's host,
empty when the registry is off) and ``logging`` (true/false).

``python -m kaas.e2e_facts judge <report.json> [--waive ID=REASON]...`` decides a
``kaas verify -o`` report for a cluster minutes old: every required check must have
passed, except the waived ones, each printed with its reason (a fresh cluster has no
etcd snapshot before the backup timer first fires, for example).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from kaas.services import names
from kaas.services.values import host
from kaas.spec import ClusterSpec, load_stack_spec


def facts(spec: ClusterSpec) -> dict[str, str]:
    services = spec.services
    return {
        "ns": spec.platform_namespace,
        "nodes": str(spec.masters.count + spec.workers.count),
        "registry": host(spec, names.REGISTRY_HOST) if services.registry.enabled else "",
        "logging": "true" if services.logging.enabled else "false",
    }


def judge(report_path: Path, waived: dict[str, str]) -> list[str]:
    """The problems of a verify report: required checks that did not pass and are not waived."""
    from kaas.verify.report import Status, read_report

    report = read_report(report_path)
    problems = []
    for check in report.checks:
        if not check.required or check.status is Status.PASSED:
            continue
        if check.id in waived:
            print(f"WAIVED {check.id} ({check.status.value}: {check.detail}): {waived[check.id]}")
            continue
        problems.append(f"{check.id}: {check.status.value}: {check.detail}")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaas.e2e_facts")
    commands = parser.add_subparsers(dest="command", required=True)
    facts_cmd = commands.add_parser("facts")
    facts_cmd.add_argument("stack")
    judge_cmd = commands.add_parser("judge")
    judge_cmd.add_argument("report", type=Path)
    judge_cmd.add_argument("--waive", action="append", default=[], metavar="ID=REASON")
    args = parser.parse_args(argv)
    if args.command == "facts":
        for key, value in facts(load_stack_spec(args.stack)).items():
            print(f"{key}={shlex.quote(value)}")
        return 0
    waived = dict(item.split("=", 1) for item in args.waive)
    problems = judge(args.report, waived)
    for problem in problems:
        print(f"NOT VERIFIED {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
