"""The Pulumi program: spec -> KaasCluster -> stack outputs.

``__main__.py`` (what ``pulumi up`` runs, and what the offline engine runs) loads the
spec and hands :func:`run` to ``pulumi.run``. Two things here are about speed, not
about the graph; both use public APIs only and are explained where they are done.
"""

from __future__ import annotations

import asyncio
import gc

import pulumi

from kaas.cluster import KaasCluster
from kaas.spec import ClusterSpec, load_alerting_secrets

# Full (oldest-generation) collections only every this many young collections instead
# of Python's default 10 (see ``run``).
FULL_COLLECTION_EVERY = 1000


def deploy(spec: ClusterSpec) -> KaasCluster:
    """Build the whole cluster for ``spec`` and export its outputs."""
    # The alert receivers' credentials: kaas: config secrets (a missing one stops here, named).
    cluster = KaasCluster(spec.name, spec, alerting_secrets=load_alerting_secrets(spec))
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


async def run(spec: ClusterSpec) -> None:
    """What ``pulumi up`` runs (through ``pulumi.run``): ``deploy(spec)``, then its registrations settled.

    While the graph is built, the program allocates about a million objects (Outputs,
    tasks, their futures) that mostly live until the registrations complete; Python's
    cyclic collector re-scanned all of them on every full collection, half of a plan's
    CPU time at 1,000 workers. Full collections are made rarer, not switched off: young
    objects are still collected as usual. A Pulumi program runs in its own process, so the
    setting ends with it (the offline engine restores the previous one after each run).
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    deploy(spec)
    await registrations_settled()
