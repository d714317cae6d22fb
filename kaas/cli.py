"""`python -m kaas <command>`: the offline plan and the tools built on it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kaas.handover.source import HandoverSource
from kaas.offline.engine import Plan, ProgramExitError
from kaas.outputs import OutputsError
from kaas.review.git import BasePlanError, GitError
from kaas.spec import ClusterSpec, SpecError

if TYPE_CHECKING:
    from kaas.roll.runner import RecordFile, RollResult
    from kaas.rollout.model import Desired, Tier

EXIT_OK = 0
EXIT_CHANGES = 1  # diff --expect-no-changes found changes
EXIT_VIOLATION = 1  # check found a mandatory violation
EXIT_SPEC = 2
EXIT_GIT = 3
EXIT_BROKEN_PIPE = 141  # the reader closed stdout (128 + SIGPIPE, as a shell reports it)
EXIT_NOT_VERIFIED = 1  # verify: a required check failed or could not run


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
    from kaas.offline.planfile import plan_json
    from kaas.offline.render import outputs_text, plan_tree

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
    """The spec (``--stack`` or ``--spec``) and its outputs: from ``--outputs FILE``, else a preview from the offline plan."""
    from kaas.handover.source import check_matches_spec, handover_outputs, read_outputs_file
    from kaas.spec import load_spec_file, load_stack_spec

    spec = load_spec_file(args.spec) if args.spec is not None else load_stack_spec(args.stack)
    if args.outputs is not None:
        outputs = read_outputs_file(args.outputs)
        check_matches_spec(outputs, spec, str(args.outputs))
        stack = args.stack if args.stack is not None else spec.name
        return spec, HandoverSource(outputs, preview=False, origin=f"`pulumi stack output` of stack {stack}")
    target = f"spec {args.spec}" if args.spec is not None else f"stack {args.stack}"
    return spec, HandoverSource(handover_outputs(plan_target(args)), preview=True, origin=f"offline plan of {target}")


def _write(text: str, path: Path | None) -> None:
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def cmd_handover(args: argparse.Namespace) -> int:
    from kaas.handover.render import Kind, render

    spec, source = _handover_source(args)
    kind: Kind = args.kind or ("production" if spec.is_production else "demo")
    report = None
    if args.verify_report is not None:
        from kaas.verify.report import read_report

        report = read_report(args.verify_report)
        if report.cluster != source.outputs.cluster_name:
            raise OutputsError(
                str(args.verify_report),
                [f"cluster: the report is of {report.cluster!r}, the outputs of {source.outputs.cluster_name!r}"],
            )
    _write(render(source.outputs, kind, args.format, source.preview, source.origin, report), args.output)
    if source.preview:
        print("PREVIEW: rendered from the offline plan; pass --outputs FILE for the real cluster", file=sys.stderr)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """The pre-handover checks against the live cluster (see kaas/verify/)."""
    import datetime as dt
    import os

    from kaas.handover.source import check_matches_spec, read_outputs_file
    from kaas.offline.plan import plan_stack
    from kaas.spec import load_stack_spec
    from kaas.verify.checks import checks_for
    from kaas.verify.context import Secrets, VerifyContext, planned
    from kaas.verify.http import connect_to
    from kaas.verify.runner import Policy, line, run_checks
    from kaas.verify.source import automation_outputs

    spec = load_stack_spec(args.stack)
    if args.outputs is not None:
        outputs = read_outputs_file(args.outputs)
        check_matches_spec(outputs, spec, str(args.outputs))
    else:
        outputs = automation_outputs(args.stack, _repo())
        check_matches_spec(outputs, spec, f"stack {args.stack}")
    ctx = VerifyContext(
        stack=args.stack,
        outputs=outputs,
        planned=planned(spec, plan_stack(args.stack)),
        secrets=Secrets.from_environment(os.environ, outputs.openstack.keystone.initial_admin_user),
        connector=connect_to(dict(args.connect_to)),
        ca_bundle=args.ca_bundle,
        kubeconfig=args.kubeconfig,
        request_timeout=min(10.0, args.timeout),
        backup_margin=dt.timedelta(minutes=args.backup_margin),
        conformance_mode=args.conformance_mode,
    )
    checks = checks_for(ctx, with_conformance=args.conformance, conformance_timeout=args.conformance_timeout)
    policy = Policy(timeout=args.timeout, retries=args.retries, delay=args.retry_delay)
    print(f"Verifying cluster {outputs.cluster_name} (stack {args.stack}): {len(checks)} checks", file=sys.stderr)
    report = run_checks(
        checks, ctx, policy, progress=sys.stderr, on_result=None if args.json else lambda r: print(line(r), flush=True)
    )
    if args.output is not None:
        args.output.write_text(report.to_json(), encoding="utf-8")
    if args.json:
        sys.stdout.write(report.to_json())
    counts = {s: sum(c.status is s for c in report.checks) for s in {c.status for c in report.checks}}
    summary = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items()))
    print(f"{'VERIFIED' if report.passed else 'NOT VERIFIED'}: {summary}", file=sys.stderr)
    return EXIT_OK if report.passed else EXIT_NOT_VERIFIED


def _connect_to(text: str) -> tuple[tuple[str, int], tuple[str, int]]:
    host, port, address, to_port = text.rsplit(":", 3)
    try:
        return (host, int(port)), (address, int(to_port))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT:ADDRESS:PORT") from None


def _add_verify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser("verify", help="run the pre-handover checks against the live cluster")
    verify.add_argument("--stack", "-s", required=True, help="the stack (stacks/<STACK>.yaml)")
    verify.add_argument(
        "--outputs", type=Path, help="JSON of `pulumi stack output --json`; without it: the Pulumi Automation API"
    )
    verify.add_argument(
        "--kubeconfig", type=Path, help="cluster-admin kubeconfig (default: the admin's Keystone token)"
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON instead of one line per check")
    verify.add_argument("-o", "--output", type=Path, help="write the JSON report here (for handover --verify-report)")
    verify.add_argument(
        "--conformance", action="store_true", help="also run Sonobuoy (needs sonobuoy and --kubeconfig)"
    )
    verify.add_argument("--conformance-mode", default="quick", help="sonobuoy --mode (default: quick)")
    verify.add_argument(
        "--conformance-timeout", type=float, default=3600.0, help="seconds for the Sonobuoy run (default: 3600)"
    )
    verify.add_argument("--timeout", type=float, default=60.0, help="seconds per check attempt (default: 60)")
    verify.add_argument("--retries", type=int, default=2, help="further attempts of a check that did not pass")
    verify.add_argument("--retry-delay", type=float, default=5.0, help="seconds between attempts (default: 5)")
    verify.add_argument(
        "--backup-margin", type=float, default=30.0, help="minutes allowed past the etcd backup interval"
    )
    verify.add_argument("--ca-bundle", help="trust store for Keystone, service hosts, Harbor, S3 (default: system)")
    verify.add_argument(
        "--connect-to",
        type=_connect_to,
        action="append",
        default=[],
        metavar="HOST:PORT:ADDRESS:PORT",
        help="connect there instead (like curl); TLS still verifies HOST",
    )
    verify.set_defaults(func=cmd_verify)


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
    _add_target(parser)
    parser.add_argument(
        "--outputs", type=Path, help="JSON of `pulumi stack output --json`; without it: a preview from the offline plan"
    )
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")


def _repo() -> Path:
    from kaas.spec.loader import REPO_ROOT

    return Path(REPO_ROOT)


def _base(args: argparse.Namespace) -> str:
    from kaas.review.git import default_base, resolve

    return resolve(_repo(), args.base) if args.base else default_base(_repo())


def _affected(base: str) -> list[str]:
    from kaas.review.affected import affected_stacks
    from kaas.review.git import changed_paths, stacks_at

    repo = _repo()
    return affected_stacks(changed_paths(repo, base), stacks_at(repo, base) | stacks_at(repo, None))


def cmd_affected(args: argparse.Namespace) -> int:
    stacks = _affected(_base(args))
    print(json.dumps(stacks) if args.json else "\n".join(stacks))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from kaas.offline.plan import plan_stack
    from kaas.review.diff import diff_plans, render_markdown, render_text
    from kaas.review.git import plan_in_tree, worktree

    base = _base(args)
    stacks = _affected(base) if args.all else [args.stack]
    render = render_markdown if args.format == "markdown" else render_text
    changed = False
    if not stacks:
        print("No stack is affected by this change." if args.format == "text" else "No stack is affected.\n")
        return EXIT_OK
    with worktree(_repo(), base) as tree:
        for stack in stacks:
            old = plan_in_tree(tree, stack)
            new = plan_stack(stack) if (_repo() / "stacks" / f"{stack}.yaml").exists() else None
            diff = diff_plans(old, new, stack)
            changed = changed or diff.has_changes
            print(render(diff))
    return EXIT_CHANGES if args.expect_no_changes and changed else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from kaas.cluster_plan import cluster_policy_facts
    from kaas.offline.plan import plan_file, plan_stack
    from kaas.review.check import check_plan
    from kaas.spec import load_spec_file, load_stack_spec
    from kaas.spec.loader import STACKS_DIR

    if args.spec is not None:
        targets: list[tuple[str, ClusterSpec, Plan]] = [
            (str(args.spec), load_spec_file(args.spec), plan_file(args.spec))
        ]
    else:
        names = sorted(p.stem for p in STACKS_DIR.glob("*.yaml")) if args.all else [args.stack]
        targets = [(name, load_stack_spec(name), plan_stack(name)) for name in names]
    failed = False
    for stack, spec, plan in targets:
        # Facts the Cluster component does not record (yet) come from the spec itself.
        mandatory, violations = check_plan(plan, cluster_policy_facts(spec))
        level = "mandatory" if mandatory else "advisory"
        print(f"Stack {stack} ({spec.environment}, {level}): {len(violations) or 'no'} violation(s)")
        for violation in violations:
            print(f"  {'error' if mandatory else 'warning'}: [{violation.rule}] {violation.message}")
        failed = failed or (mandatory and bool(violations))
    return EXIT_VIOLATION if failed else EXIT_OK


def cmd_rollout_status(args: argparse.Namespace) -> int:
    """Where the stack's rollout stands: this ``pulumi up`` and every step after it."""
    from kaas.cluster_plan import make_cluster_plan
    from kaas.rollout import rollout
    from kaas.rollout.record import desired_from_spec, load_record, record_path
    from kaas.rollout.render import render_steps
    from kaas.spec import load_stack_spec

    spec = load_stack_spec(args.stack)
    path = record_path(args.stack)
    recorded = load_record(path, spec)
    make_cluster_plan(spec, recorded, str(path))  # a refused edit: one line naming the field
    steps = list(rollout(desired_from_spec(spec), recorded))
    print(render_steps(spec.name, steps, recorded is None))
    return EXIT_OK


def cmd_rollout_record(args: argparse.Namespace) -> int:
    """Write the stack's rollout record from the ``nodeRevisions`` of a successful ``pulumi up``."""
    from kaas.rollout.record import dump_record, load_record, record_document, record_path, state_from_outputs
    from kaas.spec import load_stack_spec

    spec = load_stack_spec(args.stack)
    path = record_path(args.stack)
    if args.outputs is not None:
        source = str(args.outputs)
        outputs = json.loads(args.outputs.read_text(encoding="utf-8"))
    else:
        from kaas.offline.plan import plan_stack

        source = f"offline plan of stack {args.stack}"
        outputs = plan_stack(args.stack).outputs
        print(
            "Recording what the offline plan says this pulumi up leaves; use --outputs FILE after a real update.",
            file=sys.stderr,
        )
    state = state_from_outputs(outputs, spec, source)
    previous = load_record(path, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_record(spec.name, state), encoding="utf-8")
    changed = previous is None or record_document(spec.name, previous) != record_document(spec.name, state)
    shown = path.relative_to(_repo()) if path.is_relative_to(_repo()) else path
    print(f"{shown}: {'updated' if changed else 'unchanged'} ({len(state.nodes)} nodes); commit it with the spec")
    return EXIT_OK


EXIT_ROLL_STOPPED = 1  # roll: a health gate failed; the position is recorded


def _roll_print(document: object, as_json: bool, text: str) -> None:
    print(json.dumps(document) if as_json else text)


def cmd_roll(args: argparse.Namespace) -> int:
    """Walk the stack's rollout: ``--dry-run`` lists it, ``--status`` shows where it stands, else run it."""
    from kaas.roll.live import state_at_base
    from kaas.roll.position import load_position, position_path
    from kaas.roll.runner import RecordFile
    from kaas.roll.steps import dry_run_document, planned_steps
    from kaas.rollout.model import Tier
    from kaas.rollout.record import desired_from_spec, load_record, record_path
    from kaas.spec import load_stack_spec

    spec = load_stack_spec(args.stack)
    if args.heal:
        return _roll_heal(args, spec)
    desired = desired_from_spec(spec)
    tier = Tier(args.tier) if args.tier else None
    path = record_path(args.stack)
    if args.dry_run:
        recorded = state_at_base(_repo(), _base(args), args.stack, spec)
        if recorded is None:
            raise SpecError(args.stack, ["the stack does not exist at the base: its first deployment is pulumi up"])
        document = dry_run_document(args.stack, planned_steps(desired, recorded, tier), tier)
        lines = [f"{args.stack}: {len(document['steps'])} operation(s) from the base to the spec (dry run)"]
        lines += [
            f"  {i}. {s['tier']:<6} {s['action']:<7} {', '.join(s['nodes'])}"
            for i, s in enumerate(document["steps"], 1)
        ]
        _roll_print(document, args.json, "\n".join(lines))
        return EXIT_OK
    position = load_position(position_path(path), args.stack)
    if args.status:
        recorded = load_record(path, spec)
        remaining = planned_steps(desired, recorded, tier) if recorded is not None else []
        document = {
            **position.to_json(),
            "remaining": dry_run_document(args.stack, remaining, tier)["steps"],
        }
        del document["applied"]
        document["applied"] = None if position.applied is None else position.applied_number
        lines = [f"{args.stack}: {len(position.finished)} step(s) finished"]
        lines += [
            f"  [{f.number}] {', '.join(f'{n} {a}' for n, a in f.changes.items())} ({f.seconds:.1f}s)"
            for f in position.finished
        ]
        if position.applied is not None:
            lines.append(
                f"  [{position.applied_number}] pulumi up applied, its health gates not finished (rerun resumes)"
            )
        if position.failed:
            lines.append(f"  stopped: {position.failed}")
        lines.append(
            f"  {len(document['remaining'])} operation(s) remaining" + (" (done)" if not document["remaining"] else "")
        )
        _roll_print(document, args.json, "\n".join(lines))
        return EXIT_OK
    return _roll_live(args, spec, desired, tier, RecordFile(spec, path), position_path(path))


def _roll_live(
    args: argparse.Namespace, spec: ClusterSpec, desired: Desired, tier: Tier | None, records: RecordFile, where: Path
) -> int:
    import os
    import tempfile

    from kaas.roll.automation import AutomationStack, UpdateFailedError
    from kaas.roll.live import kube_client, live_gates
    from kaas.roll.runner import RollError, Runner
    from kaas.roll.tokens import JoinTokens

    if not args.yes:
        answer = input(f"Roll stack {args.stack} with pulumi up, one step at a time? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing done.")
            return EXIT_OK
    driver = AutomationStack(args.stack, _repo(), spec, on_output=lambda line: print(f"    {line}", end=""))
    with tempfile.TemporaryDirectory(prefix="kaas-roll-") as secrets:
        try:
            # The etcd client certificate, the admin kubeconfig: the stack's outputs (--etcd-certs overrides).
            outputs = driver.outputs()
            gates = live_gates(
                spec,
                outputs,
                os.environ,
                Path(secrets),
                args.etcd_certs,
                args.drain_timeout,
                args.gate_timeout,
                print,
            )
            # Fresh bootstrap tokens for the nodes a step builds (kaas.roll.tokens), as the admin.
            tokens = JoinTokens(kube_client(str(outputs["adminKubeconfig"]), Path(secrets)).api)
            result = Runner(desired, records, driver, gates, where, join_tokens=tokens).run(tier)
        except (RollError, UpdateFailedError) as error:
            print(f"kaas roll: {error}", file=sys.stderr)
            return EXIT_ROLL_STOPPED
    return _roll_report(args.stack, result)


EXIT_HEAL_PAGE = 4  # roll --heal: a person is needed (an outage, masters below quorum, an etcd node)


def _roll_heal(args: argparse.Namespace, spec: ClusterSpec) -> int:
    """``kaas roll --heal``: replace masters and workers NotReady beyond the grace period (kaas.roll.heal)."""
    import tempfile
    from datetime import UTC, datetime

    from kaas.roll.automation import AutomationStack, UpdateFailedError
    from kaas.roll.gates import Waiting
    from kaas.roll.heal import Healer, HealPolicy, parse_duration
    from kaas.roll.http import HttpError
    from kaas.roll.live import kube_client
    from kaas.roll.tokens import JoinTokens

    if args.status or args.tier:
        raise SpecError(args.stack, ["--heal takes neither --status nor --tier"])
    try:
        policy = HealPolicy(grace=parse_duration(args.grace), max_workers_down=args.max_workers_down)
    except ValueError as error:
        raise SpecError(args.stack, [f"--grace: {error}"]) from None
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    driver = AutomationStack(args.stack, _repo(), spec, on_output=lambda line: log(f"    {line.rstrip()}"))
    kubeconfig = args.kubeconfig.read_text() if args.kubeconfig else str(driver.outputs()["adminKubeconfig"])
    with tempfile.TemporaryDirectory(prefix="kaas-heal-") as secrets:
        kube = kube_client(kubeconfig, Path(secrets))
        # A fresh bootstrap token for each replaced node's join (kaas.roll.tokens), as the admin.
        tokens = JoinTokens(kube.api)
        healer = Healer(
            spec,
            kube,
            driver,
            policy,
            Waiting(timeout=args.gate_timeout),
            api_via_lb=kube,
            log=log,
            join_tokens=tokens,
        )
        dry_run = args.dry_run
        if not dry_run and not args.yes:
            _, plan = healer.look()
            if plan.replace and plan.page is None:
                answer = input(
                    f"Replace {', '.join(plan.replace)} of {args.stack} with pulumi up, one at a time? [y/N] "
                )
                if answer.strip().lower() not in ("y", "yes"):
                    print("Nothing done.")
                    return EXIT_OK
        try:
            report = healer.run(dry_run=dry_run)
        except (HttpError, LookupError, UpdateFailedError) as error:
            print(f"kaas roll --heal: {error}", file=sys.stderr)
            return EXIT_ROLL_STOPPED
    now = datetime.now(UTC)
    document = report.to_json(args.stack, policy, now, dry_run)
    down = [n for n in document["nodes"] if n["not_ready_seconds"] is not None]
    lines = [f"{args.stack}: {len(document['nodes'])} node(s), {len(down)} NotReady (grace {policy.grace:.0f}s)"]
    lines += [f"  {n['name']}: Ready={n['ready']} for {n['not_ready_seconds']}s" for n in down]
    verb = "would replace" if dry_run else "replaced"
    done = document["replace"] if dry_run else document["replaced"]
    lines.append(f"  {verb}: {', '.join(done) or 'nothing'}")
    if document["waiting"]:
        lines.append(f"  within the grace period: {', '.join(document['waiting'])}")
    lines += [f"  refused {r['node']}: {r['reason']}" for r in document["refused"]]
    if report.failure is not None:
        lines.append(f"  stopped: {report.failure} (the next run looks again)")
    if report.page is not None:
        lines.append(f"  PAGE: {report.page}")
    _roll_print(document, args.json, "\n".join(lines))
    if report.page is not None or report.plan.refused:
        return EXIT_HEAL_PAGE
    return EXIT_ROLL_STOPPED if report.failure is not None else EXIT_OK


def _roll_report(stack: str, result: RollResult) -> int:
    if result.failure is not None:
        failure = result.failure
        print(
            f"kaas roll stopped: check {failure.check} failed on {failure.node}: {failure.detail}\n"
            f"The cluster still serves: nothing was removed before its replacement passed this check.\n"
            f"Resume (after fixing the cause):  python -m kaas roll --stack {stack}\n"
            f"Roll back: restore the spec (git checkout <base> -- stacks/{stack}.yaml), then"
            f" python -m kaas roll --stack {stack}",
            file=sys.stderr,
        )
        return EXIT_ROLL_STOPPED
    if result.waiting_for is not None:
        print(
            f"{stack}: the {result.waiting_for} tier rolls first (kaas roll --stack {stack} --tier {result.waiting_for})"
        )
        return EXIT_OK
    print(f"{stack}: {len(result.finished)} step(s) done; commit stacks/rollout/{stack}.yaml")
    return EXIT_OK


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
    handover.add_argument(
        "--verify-report", type=Path, help="tick the pre-handover checklist from `kaas verify -o FILE`"
    )
    handover.set_defaults(func=cmd_handover)

    kubeconfig = commands.add_parser("kubeconfig", help="a kubeconfig that logs in with Keystone credentials")
    _add_outputs_source(kubeconfig)
    kubeconfig.add_argument("--user", "-u", help="OpenStack user name (default: the initial admin user)")
    kubeconfig.set_defaults(func=cmd_kubeconfig)
    _add_verify(commands)

    diff = commands.add_parser("diff", help="what a change does to a stack: the offline plans at a base and now")
    which = diff.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", "-s", help="diff stacks/<STACK>.yaml")
    which.add_argument("--all", action="store_true", help="every stack the change affects")
    diff.add_argument("--base", help="git revision to compare with (default: the merge base with main)")
    diff.add_argument("--format", choices=["text", "markdown"], default="text")
    diff.add_argument("--expect-no-changes", action="store_true", help="exit 1 if anything would change")
    diff.set_defaults(func=cmd_diff)

    affected = commands.add_parser("affected", help="the stacks a change affects (for the CI matrix)")
    affected.add_argument("--base", help="git revision to compare with (default: the merge base with main)")
    affected.add_argument("--json", action="store_true", help="print a JSON list")
    affected.set_defaults(func=cmd_affected)

    check = commands.add_parser("check", help="apply the production-readiness rules to the offline plan")
    target = check.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", "-s", help="check stacks/<STACK>.yaml")
    target.add_argument("--spec", type=Path, help="check an explicit spec file")
    target.add_argument("--all", action="store_true", help="check every stack in stacks/")
    check.set_defaults(func=cmd_check)

    rollout = commands.add_parser("rollout", help="day 2: where a stack's rollout stands, and recording its steps")
    rollout_commands = rollout.add_subparsers(dest="rollout_command", required=True)
    status = rollout_commands.add_parser("status", help="this pulumi up's step and every step after it")
    status.add_argument("--stack", "-s", required=True, help="the stack (stacks/<STACK>.yaml)")
    status.set_defaults(func=cmd_rollout_status)
    record = rollout_commands.add_parser(
        "record", help="write stacks/rollout/<STACK>.yaml after a successful pulumi up (commit it)"
    )
    record.add_argument("--stack", "-s", required=True, help="the stack (stacks/<STACK>.yaml)")
    record.add_argument(
        "--outputs", type=Path, help="JSON of `pulumi stack output --json` (default: the offline plan's outputs)"
    )
    record.set_defaults(func=cmd_rollout_record)

    roll = commands.add_parser("roll", help="day 2: walk the rollout node by node, health gates between steps")
    roll.add_argument("--stack", "-s", required=True, help="the stack (stacks/<STACK>.yaml)")
    roll.add_argument("--tier", choices=["etcd", "master", "worker"], help="only this tier's steps")
    mode = roll.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the ordered rollout, touch nothing (offline)")
    mode.add_argument("--status", action="store_true", help="show the recorded position")
    roll.add_argument("--json", action="store_true", help="one JSON object")
    roll.add_argument("--base", help="--dry-run: git revision of the deployed state (default: merge base with main)")
    roll.add_argument("--yes", "-y", action="store_true", help="do not ask before the first pulumi up")
    roll.add_argument("--etcd-certs", type=Path, help="directory with ca.crt, client.crt, client.key for etcd")
    roll.add_argument("--drain-timeout", type=float, default=600.0, help="seconds a drain may take (default 600)")
    roll.add_argument("--gate-timeout", type=float, default=900.0, help="seconds any other gate may take")
    roll.add_argument(
        "--heal", action="store_true", help="replace masters/workers NotReady longer than --grace, one at a time"
    )
    roll.add_argument("--grace", default="10m", help="--heal: how long a node may be NotReady (90s, 10m, 1h)")
    roll.add_argument(
        "--max-workers-down",
        type=float,
        default=0.34,
        help="--heal: above this fraction of workers NotReady, replace nothing and page (an outage)",
    )
    roll.add_argument("--kubeconfig", type=Path, help="--heal: kubeconfig (default: the stack's adminKubeconfig)")
    roll.set_defaults(func=cmd_roll)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not at interpreter exit
        return code
    except ProgramExitError as exited:  # the program has already said why on stderr
        return exited.code if isinstance(exited.code, int) else EXIT_SPEC
    except (SpecError, OutputsError) as error:
        print(error, file=sys.stderr)
        return EXIT_SPEC
    except (GitError, BasePlanError) as error:
        print(error, file=sys.stderr)
        return EXIT_GIT
    except BrokenPipeError:
        # The reader left (`kaas plan --json | head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush cannot fail again
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
