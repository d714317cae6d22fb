"""`python -m kaas <command>`: the offline plan and the tools built on it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kaas.offline.engine import Plan
from kaas.spec import SpecError

EXIT_OK = 0
EXIT_SPEC = 2


def _add_target(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", "-s", help="plan stacks/<STACK>.yaml")
    target.add_argument("--spec", type=Path, help="plan an explicit spec file")


def plan_target(args: argparse.Namespace) -> Plan:
    """The offline plan of ``--stack`` or ``--spec`` (raises SpecError on a bad spec)."""
    from kaas.offline.plan import plan_file, plan_stack

    if args.spec is not None:
        return plan_file(args.spec)
    return plan_stack(args.stack)


def cmd_plan(args: argparse.Namespace) -> int:
    from kaas.offline.render import outputs_text, plan_json, plan_tree

    plan = plan_target(args)
    if args.json:
        json.dump(plan_json(plan, args.show_secrets), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        print(f"Offline plan of stack {plan.stack} (the program under mocks; no cloud was contacted)\n")
        print(plan_tree(plan))
        print()
        print(outputs_text(plan, args.show_secrets))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kaas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="plan a stack offline and print its resources and outputs")
    _add_target(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON document")
    plan.add_argument("--show-secrets", action="store_true", help="reveal secret values")
    plan.set_defaults(func=cmd_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SpecError as error:
        print(error, file=sys.stderr)
        return EXIT_SPEC
