"""The offline plan engine: the real program, in-process, under Pulumi mocks.

The Pulumi Python runtime talks to a resource monitor. Here the monitor is
:class:`RecordingMonitor`, a :class:`pulumi.runtime.mocks.MockMonitor` that keeps
every ``RegisterResource`` request as the engine would receive it (inputs in wire
form with camelCase names, parent, dependencies, options) and the stack outputs.
The mocks (:mod:`kaas.offline.mocks`) stand in for OpenStack and Kubernetes only.

Each plan runs in a fresh :class:`contextvars.Context` and a fresh event loop, and
uses the runtime's own ``run_in_stack`` (what ``pulumi up`` runs), so two plans in
one process share no state.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack

from kaas.offline.mocks import CloudMocks

PROJECT = "kaas"


@dataclass(frozen=True)
class Secret:
    """A value the program marked secret."""

    value: Any


class _Unknown:
    def __repr__(self) -> str:
        return "[unknown]"


UNKNOWN = _Unknown()


@dataclass
class ResourceRecord:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    options: dict[str, Any]


@dataclass
class Plan:
    stack: str
    resources: list[ResourceRecord] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_type(self, type_token: str) -> list[ResourceRecord]:
        return [r for r in self.resources if r.type == type_token]

    def get(self, urn: str) -> ResourceRecord:
        for record in self.resources:
            if record.urn == urn:
                return record
        raise KeyError(urn)

    def find(self, type_token: str, name: str) -> ResourceRecord:
        for record in self.resources:
            if record.type == type_token and record.name == name:
                return record
        raise KeyError(f"{type_token} {name}")


def _from_wire(value: Any) -> Any:
    """Turn a JSON-decoded property value into plain Python, keeping secrets and unknowns visible."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return Secret(_from_wire(value.get("value")))
        if sig == rpc._special_resource_sig:
            return {"urn": value.get("urn"), "id": _from_wire(value.get("id"))}
        if sig == rpc._special_asset_sig or sig == rpc._special_archive_sig:
            return {k: _from_wire(v) for k, v in value.items() if k != rpc._special_sig_key}
        if sig == rpc._special_output_value_sig:
            inner = _from_wire(value.get("value", UNKNOWN))
            return Secret(inner) if value.get("secret") else inner
        return {k: _from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _struct(message: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = _from_wire(json_format.MessageToDict(message))
    return decoded


def _mark_secret(state: Any, names: Any) -> None:
    """What the Pulumi engine does with ``additional_secret_outputs``: those outputs come back secret."""
    for name in names:
        if name in state.fields and not _is_secret_struct(state.fields[name]):
            value = json_format.MessageToDict(state.fields[name])
            state.fields[name].Clear()
            json_format.ParseDict({rpc._special_sig_key: rpc._special_secret_sig, "value": value}, state.fields[name])


def _is_secret_struct(value: Any) -> bool:
    fields = value.struct_value.fields if value.HasField("struct_value") else {}
    return rpc._special_sig_key in fields and fields[rpc._special_sig_key].string_value == rpc._special_secret_sig


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock resource monitor that records what the program registers."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.records: list[ResourceRecord] = []
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn = ""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.additionalSecretOutputs:
            _mark_secret(response.object, request.additionalSecretOutputs)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
        options: dict[str, Any] = {
            "protect": bool(request.protect),
            "retainOnDelete": bool(request.retainOnDelete),
            "ignoreChanges": list(request.ignoreChanges),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "replaceOnChanges": list(request.replaceOnChanges),
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
            "deletedWith": request.deletedWith or None,
            "provider": request.provider or None,
            "aliases": [json_format.MessageToDict(a) for a in request.aliases],
        }
        self.records.append(
            ResourceRecord(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                inputs=_struct(request.object),
                dependencies=sorted(set(request.dependencies)),
                property_dependencies={
                    key: sorted(set(deps.urns)) for key, deps in request.propertyDependencies.items()
                },
                options=options,
            )
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.urn == self.stack_urn:
            self.stack_outputs = _struct(request.outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


class PlanError(Exception):
    """The program failed while it was being planned."""


async def _settle() -> None:
    """Wait until every RPC the program queued and every Output it created has completed.

    The runtime's own quiescence loop (``wait_for_rpcs``) starts by checking its RPC list
    before the queued registration tasks had a turn to put themselves on it; finding it
    empty, it waits on every outstanding Output with ``FIRST_COMPLETED`` and re-arms a
    done-callback on each of them after every completion: quadratic in the number of
    Outputs (each resource property is one). Waiting here first, for all of them at
    once, leaves that loop nothing to do. The program ran unchanged; only when the
    runtime starts waiting differs.
    """
    manager = settings._get_rpc_manager()
    while True:
        await asyncio.sleep(0)  # let newly queued RPC tasks start and register themselves
        # Both lists hold asyncio futures (the runtime creates them with ensure_future).
        tracked: list[Any] = [*manager.rpcs, *settings.SETTINGS.outputs]
        pending = {f for f in tracked if not f.done()}
        if not pending:
            return
        await asyncio.wait(pending)


def _stack_program(program: Callable[[], object]) -> Callable[[], Any]:
    """``program`` as run_in_stack wants it: its result dropped, its work settled."""

    async def run() -> None:
        program()
        await _settle()

    return run


def run_plan(
    program: Callable[[], object],
    stack: str,
    config: dict[str, str] | None = None,
) -> Plan:
    """Run ``program`` as the Pulumi program of ``stack`` under mocks and record its graph."""

    def isolated() -> Plan:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        monitor = RecordingMonitor(CloudMocks())
        try:
            settings.configure(
                pulumi_mocks.MockSettings(  # type: ignore[no-untyped-call]
                    monitor=monitor,
                    engine=pulumi_mocks.MockEngine(None),
                    project=PROJECT,
                    stack=stack,
                    dry_run=False,
                    organization="organization",
                    root_directory=None,
                    parallel=None,
                    legacy_apply_enabled=False,
                    callbacks=None,
                    monitor_features=set(),
                    package_refs={},
                    base_providers_by_ref={},
                )
            )
            settings.set_root_resource(None)  # type: ignore[arg-type]
            set_all_config({f"{PROJECT}:{k}" if ":" not in k else k: v for k, v in (config or {}).items()})
            loop.run_until_complete(run_in_stack(_stack_program(program)))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        # Registration order depends on when outputs resolve; the plan's order must not.
        records = sorted(monitor.records, key=lambda r: (r.type != "pulumi:pulumi:Stack", r.urn))
        return Plan(stack=stack, resources=records, outputs=monitor.stack_outputs)

    return contextvars.Context().run(isolated)
