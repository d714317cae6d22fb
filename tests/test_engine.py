"""The offline engine records what the Pulumi engine would receive."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack
import pulumi_random as random

from kaas.offline import Secret, plan_spec, plan_stack, run_plan
from kaas.offline.mocks import stable_id
from tests.helpers import make_spec


def small_program() -> None:
    provider = openstack.Provider("os", cloud="c")
    parent = pulumi.ComponentResource("test:index:Group", "group")
    net = openstack.networking.Network(
        "net", name="n", opts=pulumi.ResourceOptions(parent=parent, provider=provider, protect=True)
    )
    password = random.RandomPassword("pw", length=20, special=False, opts=pulumi.ResourceOptions(parent=parent))
    subnet = openstack.networking.Subnet(
        "subnet",
        network_id=net.id,
        cidr="10.0.0.0/24",
        description=password.result,
        opts=pulumi.ResourceOptions(
            parent=net,
            provider=provider,
            ignore_changes=["description"],
            retain_on_delete=True,
            delete_before_replace=True,
            replace_on_changes=["cidr"],
        ),
    )
    openstack.networking.Router("router", opts=pulumi.ResourceOptions(provider=provider, depends_on=[subnet]))
    pulumi.export("password", password.result)
    pulumi.export("subnet", subnet.id)


def test_records_parents_dependencies_options_and_secrets() -> None:
    plan = run_plan(small_program, stack="unit")
    net = plan.find("openstack:networking/network:Network", "net")
    subnet = plan.find("openstack:networking/subnet:Subnet", "subnet")
    router = plan.find("openstack:networking/router:Router", "router")
    group = plan.find("test:index:Group", "group")
    pw = plan.find("random:index/randomPassword:RandomPassword", "pw")

    assert net.parent == group.urn and subnet.parent == net.urn
    assert not group.custom and net.custom
    # protect is inherited by children (the Pulumi SDK does this), not by siblings.
    assert net.options["protect"] is True and subnet.options["protect"] is True
    assert router.options["protect"] is False
    assert subnet.options["ignoreChanges"] == ["description"]
    assert subnet.options["retainOnDelete"] and subnet.options["deleteBeforeReplace"]
    assert subnet.options["replaceOnChanges"] == ["cidr"]
    # Dependencies through inputs and through depends_on.
    assert set(subnet.dependencies) == {net.urn, pw.urn}
    assert subnet.property_dependencies["networkId"] == [net.urn]
    assert router.dependencies == [subnet.urn]
    # Inputs in wire form (camelCase) with secrets kept visible as secrets.
    assert isinstance(subnet.inputs["description"], Secret)
    assert len(subnet.inputs["description"].value) == 20
    assert net.options["provider"].startswith(plan.find("pulumi:providers:openstack", "os").urn)
    assert isinstance(plan.outputs["password"], Secret)
    # The exported ID is the one the cloud mock assigned to that subnet (stable from its type and name).
    assert plan.outputs["subnet"] == stable_id("openstack:networking/subnet:Subnet", "subnet")


def test_two_runs_in_one_process_do_not_share_state() -> None:
    first = run_plan(small_program, stack="one")
    second = run_plan(small_program, stack="two")
    assert len(first.resources) == len(second.resources)
    assert all(r.urn.startswith("urn:pulumi:two::") for r in second.resources)
    assert [r.type for r in first.resources] == [r.type for r in second.resources]


def test_plans_are_deterministic() -> None:
    spec = make_spec()
    a, b = plan_spec(spec), plan_spec(spec)
    assert [(r.urn, r.inputs) for r in a.resources] == [(r.urn, r.inputs) for r in b.resources]
    assert a.outputs == b.outputs


def test_stack_plan_runs_the_program_of_the_stack() -> None:
    plan = plan_stack("dev")
    assert plan.stack == "dev"
    assert plan.outputs["clusterName"] == "dev"
    stack = plan.by_type("pulumi:pulumi:Stack")
    assert [r.name for r in stack] == ["kaas-dev"]


def test_stack_config_naming_another_cloud_is_refused_before_anything_is_registered() -> None:
    from kaas import program
    from kaas.spec import SpecError
    from kaas.spec.loader import STACKS_DIR

    recorded: list[str] = []

    def guarded() -> None:
        try:
            program.main()
        except SpecError as error:
            recorded.append(str(error))

    plan = run_plan(guarded, stack="dev", config={"openstack:cloud": "acme", "openstack:region": "RegionOne"})
    assert recorded == [
        f"{STACKS_DIR / 'dev.yaml'}: openstack.cloud: the spec says 'dev' but Pulumi config openstack:cloud says 'acme'"
    ]
    assert [r.type for r in plan.resources] == ["pulumi:pulumi:Stack"]


def test_stack_config_matching_the_spec_plans_normally() -> None:
    from kaas import program

    plan = run_plan(program.main, stack="dev", config={"openstack:cloud": "dev", "openstack:region": "RegionOne"})
    assert plan.outputs["clusterName"] == "dev"


def test_random_password_honours_its_minimum_character_classes() -> None:
    def program() -> None:
        for i in range(20):
            password = random.RandomPassword(
                f"pw{i}", length=12, special=False, min_upper=2, min_lower=2, min_numeric=3
            )
            pulumi.export(f"pw{i}", password.result)

    plan = run_plan(program, stack="min")
    for value in plan.outputs.values():
        text = value.value
        assert len(text) == 12 and text.isalnum()
        assert sum(c.isupper() for c in text) >= 2
        assert sum(c.islower() for c in text) >= 2
        assert sum(c.isdigit() for c in text) >= 3
