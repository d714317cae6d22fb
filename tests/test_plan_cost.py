"""What keeps an offline plan linear in the number of nodes (figures: bench/plan_scale.py).

No timings here: the properties that removed the quadratic and the constant costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

import pytest
import yaml

from kaas.bootstrap import cloudinit
from kaas.offline.plan import plan_spec, plan_stack
from kaas.spec import load_stack_spec


def test_the_runtimes_quiescence_loop_finds_no_outstanding_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the engine settled the program, the loop re-armed a callback on ~2,400 Outputs per wake-up."""
    import pulumi.runtime.stack

    sizes: list[int] = []
    real_wait = asyncio.wait

    async def counting_wait(fs: Iterable[Awaitable[Any]], **kwargs: Any) -> Any:
        futures = list(fs)
        sizes.append(len(futures))
        return await real_wait(futures, **kwargs)  # type: ignore[type-var]

    monkeypatch.setattr(pulumi.runtime.stack.asyncio, "wait", counting_wait)
    data = load_stack_spec("acme-prod").model_dump(mode="json")
    data["workers"]["count"] = 30
    spec = type(load_stack_spec("acme-prod")).model_validate(data)
    plan = plan_spec(spec)
    assert len(plan.resources) == 241
    # The engine's own settle waits once for everything; the runtime's loop only sees the
    # stack outputs registered after the program returned.
    assert sizes and max(sizes[1:], default=0) < 50, sizes[:5]


class _PurePythonBlockDumper(yaml.SafeDumper):
    pass


_PurePythonBlockDumper.add_representer(str, cloudinit._represent_str)


def test_fast_yaml_emitter_writes_the_same_user_data_as_the_pure_python_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert yaml.__with_libyaml__ and cloudinit._SafeDumper is yaml.CSafeDumper
    documents: list[dict[str, Any]] = []
    kubeadm: list[tuple[dict[str, Any], ...]] = []
    rendered: list[str] = []
    real_cloud_config, real_docs = cloudinit.cloud_config, cloudinit._yaml_docs

    def recording_cloud_config(document: dict[str, Any]) -> str:
        documents.append(document)
        rendered.append(real_cloud_config(document))
        return rendered[-1]

    def recording_docs(*docs: dict[str, Any]) -> str:
        kubeadm.append(docs)
        return real_docs(*docs)

    monkeypatch.setattr(cloudinit, "cloud_config", recording_cloud_config)
    monkeypatch.setattr(cloudinit, "_yaml_docs", recording_docs)
    for stack in ("dev", "demo", "acme-prod"):
        plan_stack(stack)
    assert len(documents) == 24 and len(kubeadm) == 15
    for document, text in zip(documents, rendered, strict=True):
        slow = yaml.dump(document, Dumper=_PurePythonBlockDumper, sort_keys=False, default_flow_style=False, width=1000)
        assert text == cloudinit.CLOUD_CONFIG_HEADER + slow
    for docs in kubeadm:
        slow = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=1000)
        assert real_docs(*docs) == slow
