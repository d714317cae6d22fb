"""The Pulumi program: spec + rollout record -> cluster plan -> KaasCluster -> stack outputs.

``__main__.py`` (what ``pulumi up`` runs, and what the offline engine runs) makes the
cluster plan (:func:`current_plan`: the spec, the rollout record, the next rollout step)
and hands :func:`run` to ``pulumi.run``. Two things here are about speed, not
about the graph; both use public APIs only and are explained where they are done.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pulumi
from pulumi.runtime.config import get_config

from kaas.bootstrap.pki import JOIN_TOKEN_CONFIG_KEY, bootstrap_token
from kaas.cluster import KaasCluster
from kaas.cluster_plan import HEAL_CONFIG, ClusterPlan, make_cluster_plan
from kaas.rollout.record import load_record, record_path
from kaas.spec import SpecError, load_alerting_secrets, load_for_current_stack

# Full (oldest-generation) collections only every this many young collections instead
# of Python's default 10 (see ``run``).
FULL_COLLECTION_EVERY = 1000


def current_record_path() -> Path:
    """The rollout record of the running stack: config ``kaas:rollout`` (a file) or ``stacks/rollout/<stack>.yaml``."""
    explicit = pulumi.Config("kaas").get("rollout")
    return Path(explicit) if explicit else record_path(pulumi.get_stack())


def current_plan() -> ClusterPlan:
    """The plan of this ``pulumi up``: the running stack's spec, one rollout step further than its
    record (none: a stack never deployed), with the nodes ``kaas roll --heal`` replaces
    (:func:`current_heal`). A bad spec or record, a refused edit or a refused heal raises
    :class:`kaas.spec.SpecError` naming the file and field (or config key), before anything is registered."""
    spec = load_for_current_stack()
    path = current_record_path()
    record = load_record(path, spec)
    return make_cluster_plan(spec, record, str(path), pulumi.Config("kaas").get("spec"), healed=current_heal())


def current_heal() -> tuple[str, ...]:
    """Config ``kaas:heal``: the masters and workers (comma-separated names) whose dead servers this
    ``pulumi up --replace`` rebuilds (``kaas roll --heal`` sets it for one update, with a fresh
    ``kaas:joinToken``). They are built from the current user data, not from the inputs in the
    state that ``ignore_changes`` would keep (kaas.roll.heal says why)."""
    value = get_config(HEAL_CONFIG) or ""
    return tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))


def current_join_token() -> str | None:
    """Config ``kaas:joinToken``: a bootstrap token valid now for the masters and workers this
    ``pulumi up`` builds (``kaas roll`` sets it, a secret, for one update; kaas.roll.tokens says
    why the roll mints it). Checked before anything is registered: a malformed one raises
    :class:`kaas.spec.SpecError` naming the key, never the value."""
    value = get_config(f"kaas:{JOIN_TOKEN_CONFIG_KEY}")
    if value is None:
        return None
    token_id, _, secret = value.strip().partition(".")
    try:
        return bootstrap_token(token_id, secret)
    except ValueError:
        raise SpecError(
            f"config kaas:{JOIN_TOKEN_CONFIG_KEY}", ["is not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})"]
        ) from None


def deploy(plan: ClusterPlan, join_token: str | None = None) -> KaasCluster:
    """Build the cluster as ``plan`` says (this step of its rollout) and export its outputs; the
    nodes the step builds join with ``join_token`` (:func:`current_join_token`) when given."""
    joining = [n.name for n in plan.nodes if n.joining]  # created, rebuilt by the step, or healed
    if join_token is None and joining and not plan.first_deploy:
        pulumi.log.warn(
            f"{', '.join(joining)} join with the stack's first bootstrap token, which expired"
            f" {plan.spec.security.bootstrap_token_ttl_hours} h after the first deployment: run this step with"
            " kaas roll (it mints a fresh token), or set one through standard input, never the command line:"
            " ssh <master> kubeadm token create --ttl 1h | pulumi config set --secret kaas:joinToken"
        )
    secret = None if join_token is None else pulumi.Output.secret(join_token)
    # The alert receivers' credentials: kaas: config secrets (a missing one stops here, named).
    cluster = KaasCluster(plan.spec.name, plan, alerting_secrets=load_alerting_secrets(plan.spec), join_token=secret)
    for key, value in cluster.stack_outputs().items():
        pulumi.export(key, value)
    return cluster


async def registrations_settled() -> None:
    """Return when every task the program started has finished, and every task those started.

    Each resource registration and each Output is an asyncio task. If the program returns
    to the runtime while they are pending, the runtime's quiescence loop (which starts
    before any registration had a turn to put itself on its RPC list) waits for them with
    ``FIRST_COMPLETED`` and re-arms a callback on every pending Output after each
    completion: quadratic in the number of Outputs (each resource property is one).
    Waiting here, with asyncio's public API, one task at a time (one callback each, and
    most are done by the time their turn comes), leaves that loop nothing to do. Failures
    are not raised here: the runtime reports them as it always does. The program has no
    task that never finishes (no resource hooks or transforms, whose callback server
    would be one).
    """
    this = asyncio.current_task()
    while pending := [task for task in asyncio.all_tasks() if task is not this]:
        for task in pending:
            if not task.done():
                await asyncio.wait((task,))


async def run(plan: ClusterPlan, join_token: str | None = None) -> None:
    """What ``pulumi up`` runs (through ``pulumi.run``): ``deploy(plan, join_token)``, then its registrations settled.

    While the graph is built, the program allocates about a million objects (Outputs,
    tasks, their futures) that mostly live until the registrations complete; Python's
    cyclic collector re-scanned all of them on every full collection, half of a plan's
    CPU time at 1,000 workers. Full collections are made rarer, not switched off: young
    objects are still collected as usual. A Pulumi program runs in its own process, so the
    setting ends with it (the offline engine restores the previous one after each run).
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    deploy(plan, join_token)
    await registrations_settled()
