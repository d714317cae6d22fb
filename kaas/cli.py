"""`python -m kaas <command>`: the offline plan and the tools built on it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kaas.handover.source import HandoverSource
from kaas.offline.engine import Plan
from kaas.outputs import OutputsError
from kaas.spec import ClusterSpec, SpecError

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


def _handover_source(args: argparse.Namespace) -> tuple[ClusterSpec, HandoverSource]:
    """The stack's spec and its outputs: from ``--outputs FILE``, else a preview from the offline plan."""
    from kaas.handover.source import check_matches_spec, handover_outputs, read_outputs_file
    from kaas.offline.plan import plan_stack
    from kaas.spec import load_stack_spec

    spec = load_stack_spec(args.stack)
    if args.outputs is not None:
        outputs = read_outputs_file(args.outputs)
        check_matches_spec(outputs, spec, str(args.outputs))
        return spec, HandoverSource(outputs, preview=False, origin=f"`pulumi stack output` of stack {args.stack}")
    plan = plan_stack(args.stack)
    return spec, HandoverSource(
        handover_outputs(plan, spec), preview=True, origin=f"offline plan of stack {args.stack}"
    )


def _write(text: str, path: Path | None) -> None:
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def cmd_handover(args: argparse.Namespace) -> int:
    from kaas.handover.render import Kind, render

    spec, source = _handover_source(args)
    kind: Kind = args.kind or ("production" if spec.is_production else "demo")
    _write(render(source.outputs, kind, args.format, source.preview, source.origin), args.output)
    if source.preview:
        print("PREVIEW: rendered from the offline plan; pass --outputs FILE for the real cluster", file=sys.stderr)
    return EXIT_OK


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    from kaas.handover.kubeconfig import kubeconfig_yaml

    _, source = _handover_source(args)
    _write(kubeconfig_yaml(source.outputs, args.user, source.preview), args.output)
    if source.preview:
        print(
            "PREVIEW: server and CA come from the offline plan; pass --outputs FILE for the real cluster",
            file=sys.stderr,
        )
    return EXIT_OK


def _add_outputs_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", "-s", required=True, help="the stack (stacks/<STACK>.yaml)")
    parser.add_argument(
        "--outputs", type=Path, help="JSON of `pulumi stack output --json`; without it: a preview from the offline plan"
    )
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kaas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="plan a stack offline and print its resources and outputs")
    _add_target(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON document")
    plan.add_argument("--show-secrets", action="store_true", help="reveal secret values")
    plan.set_defaults(func=cmd_plan)

    handover = commands.add_parser("handover", help="render the customer handover document of a stack")
    _add_outputs_source(handover)
    handover.add_argument("--kind", choices=["production", "demo"], help="default: the spec's environment")
    handover.add_argument("--format", choices=["markdown", "html"], default="markdown")
    handover.set_defaults(func=cmd_handover)

    kubeconfig = commands.add_parser("kubeconfig", help="a kubeconfig that logs in with Keystone credentials")
    _add_outputs_source(kubeconfig)
    kubeconfig.add_argument("--user", "-u", help="OpenStack user name (default: the initial admin user)")
    kubeconfig.set_defaults(func=cmd_kubeconfig)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (SpecError, OutputsError) as error:
        print(error, file=sys.stderr)
        return EXIT_SPEC
