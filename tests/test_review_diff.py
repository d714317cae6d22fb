"""The offline structural diff: small programs first, then whole specs through the real program."""

from __future__ import annotations

import json
from collections.abc import Callable

import pulumi
import pulumi_openstack as openstack

from kaas.offline import Plan, plan_spec, run_plan
from kaas.offline.planfile import plan_from_json, plan_json
from kaas.review.diff import Operation, diff_plans, render_markdown, render_text
from tests.helpers import make_spec

INSTANCE = "openstack:compute/instance:Instance"


def program(
    image: str = "ubuntu-24.04",
    flavor: str = "m1.small",
    workers: int = 1,
    password: str = "s3cret",
    description: str = "nodes",
    metadata_role: str = "worker",
    ignore_image: bool = False,
    replace_on_description: bool = False,
) -> Callable[[], None]:
    def run() -> None:
        provider = openstack.Provider("os", cloud="c")
        net = openstack.networking.Network(
            "net",
            name="n",
            description=description,
            opts=pulumi.ResourceOptions(
                provider=provider, replace_on_changes=["description"] if replace_on_description else None
            ),
        )
        for index in range(workers):
            openstack.compute.Instance(
                f"worker-{index}",
                image_name=image,
                flavor_name=flavor,
                admin_pass=pulumi.Output.secret(password),
                metadata={"role": metadata_role},
                networks=[{"uuid": net.id}],
                opts=pulumi.ResourceOptions(provider=provider, ignore_changes=["imageName"] if ignore_image else None),
            )

    return run


def plan(**kwargs: object) -> Plan:
    return run_plan(program(**kwargs), stack="unit")  # type: ignore[arg-type]


def ops(old: Plan | None, new: Plan | None) -> dict[str, Operation]:
    return {r.name: r.operation for r in diff_plans(old, new).resources}


def test_identical_plans_have_no_changes() -> None:
    diff = diff_plans(plan(), plan())
    assert not diff.has_changes
    assert "no changes" in render_text(diff)


def test_added_and_removed_resources_are_create_and_delete() -> None:
    assert ops(plan(workers=1), plan(workers=3)) == {"worker-1": Operation.CREATE, "worker-2": Operation.CREATE}
    assert ops(plan(workers=2), plan(workers=1)) == {"worker-1": Operation.DELETE}


def test_missing_base_shows_everything_as_create() -> None:
    new = plan()
    diff = diff_plans(None, new, "unit")
    assert diff.base_missing
    assert {r.operation for r in diff.resources} == {Operation.CREATE}
    assert len(diff.resources) == len(new.resources) - 1  # all but the Stack itself
    assert "does not exist at the base" in render_markdown(diff)


def test_in_place_input_change_is_an_update_with_old_and_new_values() -> None:
    diff = diff_plans(plan(metadata_role="worker"), plan(metadata_role="gpu-worker"))
    (resource,) = diff.resources
    assert resource.operation is Operation.UPDATE
    (change,) = resource.changes
    assert change.key == "metadata" and change.old == {"role": "worker"} and change.new == {"role": "gpu-worker"}
    # Nested values print down to the changed leaf.
    assert "metadata.role: worker => gpu-worker" in render_text(diff)


def test_change_to_an_input_the_provider_replaces_on_is_a_replace() -> None:
    diff = diff_plans(plan(flavor="m1.small"), plan(flavor="m1.large"))
    (resource,) = diff.resources
    assert resource.operation is Operation.REPLACE
    assert resource.changes[0].forces_replacement
    assert "(forces replacement)" in render_text(diff)


def test_replace_on_changes_option_makes_an_otherwise_in_place_change_a_replace() -> None:
    assert ops(plan(description="a"), plan(description="b")) == {"net": Operation.UPDATE}
    assert ops(
        plan(description="a", replace_on_description=True), plan(description="b", replace_on_description=True)
    ) == {"net": Operation.REPLACE}


def test_ignored_inputs_are_not_changes() -> None:
    assert ops(plan(image="a"), plan(image="b")) == {"worker-0": Operation.REPLACE}
    assert ops(plan(image="a", ignore_image=True), plan(image="b", ignore_image=True)) == {}


def test_changed_secret_is_detected_but_masked() -> None:
    diff = diff_plans(plan(password="old-pass"), plan(password="new-pass"))
    (resource,) = diff.resources
    (change,) = resource.changes
    assert change.key == "adminPass" and change.secret
    text = render_text(diff) + render_markdown(diff)
    assert "old-pass" not in text and "new-pass" not in text
    assert "adminPass: [secret] => [secret]" in text


def test_unchanged_secret_is_no_change() -> None:
    assert not diff_plans(plan(password="same"), plan(password="same")).has_changes


def test_plan_read_back_from_json_keeps_secrets_and_diffs_like_the_original() -> None:
    original = plan(password="p1")
    revealed = json.loads(json.dumps(plan_json(original, show_secrets=True)))
    masked = json.loads(json.dumps(plan_json(original, show_secrets=False)))
    restored = plan_from_json(revealed, masked)
    assert not diff_plans(restored, original).has_changes
    changed = diff_plans(restored, plan(password="p2"))
    assert [c.secret for r in changed.resources for c in r.changes] == [True]


def test_markdown_counts_operations_and_collapses_long_details() -> None:
    diff = diff_plans(plan(workers=1), plan(workers=20))
    markdown = render_markdown(diff)
    assert "| create | 19 |" in markdown
    assert "<details>" in markdown and markdown.count("**create**") == 19
    short = render_markdown(diff_plans(plan(workers=1), plan(workers=2)))
    assert "<details>" not in short and "**create** `openstack:compute/instance:Instance` `worker-1`" in short


# --- whole specs through the real program -------------------------------------------------------


def spec_diff(before: dict[str, object], after: dict[str, object]) -> dict[Operation, list[str]]:
    diff = diff_plans(plan_spec(make_spec(**before)), plan_spec(make_spec(**after)))
    return {op: [f"{r.type} {r.name}" for r in diff.of(op)] for op in Operation}


def test_same_spec_twice_is_no_change() -> None:
    assert not diff_plans(plan_spec(make_spec()), plan_spec(make_spec())).has_changes


def test_renamed_cluster_replaces_resources_instead_of_updating_them() -> None:
    diff = spec_diff({"name": "t1"}, {"name": "t2"})
    # New names give new URNs: the old cluster's resources are deleted, the new one's created.
    assert diff[Operation.DELETE] and diff[Operation.CREATE]
    assert not diff[Operation.UPDATE]
    assert len(diff[Operation.DELETE]) == len(diff[Operation.CREATE])
