"""What keeps an offline plan linear in the number of nodes (figures: bench/plan_scale.py).

No timings here: the properties that removed the quadratic and the constant costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

import pytest
import yaml

from kaas.bootstrap.userdata.kubeadm import KUBEADM_CONFIG_PATH
from kaas.bootstrap.userdata.yamltext import CLOUD_CONFIG_HEADER, SafeDumper, cloud_config, represent_str, yaml_docs
from kaas.offline.plan import plan_spec
from kaas.spec import load_stack_spec
from tests.bootstrap_fixtures import bootstrap_plan


def _runtime_wait_sizes(monkeypatch: pytest.MonkeyPatch, workers: int) -> list[int]:
    """Plan acme-prod with ``workers`` through __main__.py; the sizes of the runtime's quiescence-loop waits."""
    import pulumi.runtime.stack

    sizes: list[int] = []
    real_wait = asyncio.wait

    async def counting_wait(fs: Iterable[Awaitable[Any]], **kwargs: Any) -> Any:
        futures = list(fs)
        sizes.append(len(futures))
        return await real_wait(futures, **kwargs)  # type: ignore[type-var]

    monkeypatch.setattr(pulumi.runtime.stack.asyncio, "wait", counting_wait)
    data = load_stack_spec("acme-prod").model_dump(mode="json")
    data["workers"]["count"] = workers
    spec = type(load_stack_spec("acme-prod")).model_validate(data)
    plan = plan_spec(spec)
    assert len(plan.by_type("openstack:compute/instance:Instance")) == 5 + 3 + workers
    return sizes


def test_the_runtimes_quiescence_loop_finds_no_outstanding_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program settles its own registrations (kaas.program.registrations_settled) before the runtime waits."""
    sizes = _runtime_wait_sizes(monkeypatch, 30)
    # The runtime's loop only sees the stack outputs registered after the program returned.
    assert max(sizes, default=0) < 50, sizes[:5]


def test_without_settling_the_runtime_rearms_thousands_of_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the test above guards against (so it can fail): the program returning with its tasks pending."""
    from kaas import program

    async def returns_at_once() -> None:
        return None

    monkeypatch.setattr(program, "registrations_settled", returns_at_once)
    sizes = _runtime_wait_sizes(monkeypatch, 3)
    assert len(sizes) > 50 and max(sizes) > 1000, (len(sizes), max(sizes, default=0))


class _PurePythonBlockDumper(yaml.SafeDumper):
    pass


_PurePythonBlockDumper.add_representer(str, represent_str)


@pytest.mark.parametrize("stack", ["minimal", "dev", "acme-prod"])
def test_fast_yaml_emitter_writes_the_same_user_data_as_the_pure_python_one(stack: str) -> None:
    assert yaml.__with_libyaml__ and SafeDumper is yaml.CSafeDumper
    texts = [
        t for tier in ("etcdUserData", "masterUserData", "workerUserData") for t in bootstrap_plan(stack).texts(tier)
    ]
    kubeadm_configs = 0
    for text in texts:
        document = yaml.safe_load(text)
        slow = yaml.dump(document, Dumper=_PurePythonBlockDumper, sort_keys=False, default_flow_style=False, width=1000)
        assert text == cloud_config(document) == CLOUD_CONFIG_HEADER + slow
        for file in document.get("write_files", []):
            if file["path"] == KUBEADM_CONFIG_PATH:
                docs = list(yaml.safe_load_all(file["content"]))
                slow = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=1000)
                assert file["content"] == yaml_docs(*docs) == slow
                kubeadm_configs += 1
    spec = bootstrap_plan(stack).spec
    assert len(texts) == spec.etcd.count + spec.masters.count + spec.workers.count
    assert kubeadm_configs == spec.masters.count + spec.workers.count
