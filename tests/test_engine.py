"""The offline engine runs __main__.py as the language host does and records what the Pulumi engine would receive."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pulumi
import pulumi_openstack as openstack
import pulumi_random as random
import pytest
import yaml

from kaas.offline import ProgramExitError, Secret, plan_spec, plan_stack, run_plan, run_project
from kaas.offline.engine import PROJECT_DIR, UNKNOWN, PlanError, invisible_to_preview
from kaas.offline.mocks import stable_id
from tests.helpers import make_spec, spec_data


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


def test_the_language_host_setup_main_module_project_dir_on_path_cwd_and_stack_config(tmp_path: Path) -> None:
    """What pulumi-language-python-exec gives the program, checked from inside a program."""
    (tmp_path / "Pulumi.yaml").write_text(
        "name: probe\nruntime: python\nconfig:\n  probe:size:\n    value: 3\n  flags:\n    value: [a, b]\n"
    )
    (tmp_path / "Pulumi.one.yaml").write_text("config:\n  probe:size: '5'\n  other:key: value\n")
    (tmp_path / "__main__.py").write_text(
        "import os, sys, pulumi\n"
        "config = pulumi.Config()\n"
        "pulumi.export('name', __name__)\n"
        "pulumi.export('path0', sys.path[0])\n"
        "pulumi.export('cwd', os.getcwd())\n"
        "pulumi.export('argv', sys.argv)\n"
        "pulumi.export('project', pulumi.get_project())\n"
        "pulumi.export('size', config.get_int('size'))\n"
        "pulumi.export('flags', config.get_object('flags'))\n"
        "pulumi.export('other', pulumi.Config('other').get('key'))\n"
        "pulumi.export('extra', config.get('extra'))\n"
    )
    cwd, argv, threshold = os.getcwd(), sys.argv, gc.get_threshold()
    plan = run_project("one", config={"extra": "x"}, project_dir=tmp_path)
    assert plan.outputs == {
        "name": "__main__",
        "path0": str(tmp_path),
        "cwd": str(tmp_path),
        "argv": [str(tmp_path)],
        "project": "probe",
        "size": 5,
        "flags": ["a", "b"],
        "other": "value",
        "extra": "x",
    }
    assert [r.urn for r in plan.resources] == ["urn:pulumi:one::probe::pulumi:pulumi:Stack::probe-one"]
    # The process the tests run in is left as it was.
    assert (os.getcwd(), sys.argv, gc.get_threshold()) == (cwd, argv, threshold)
    assert "__main__" not in sys.modules or sys.modules["__main__"].__name__ == "__main__"
    assert str(tmp_path) not in sys.path


def test_encrypted_stack_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: probe\nruntime: python\n")
    (tmp_path / "Pulumi.one.yaml").write_text("config:\n  probe:password:\n    secure: AAABAKx=\n")
    (tmp_path / "__main__.py").write_text("")
    with pytest.raises(PlanError, match="probe:password is encrypted"):
        run_project("one", project_dir=tmp_path)


def test_stack_config_naming_another_cloud_exits_2_with_one_line_and_registers_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """__main__.py's SpecError path, run as the language host runs it (the config as `-c` would set it)."""
    from kaas.spec.loader import STACKS_DIR

    with pytest.raises(ProgramExitError) as exited:
        run_project("dev", config={"openstack:cloud": "acme"})
    assert exited.value.code == 2
    assert capfd.readouterr().err.splitlines() == [
        f"{STACKS_DIR / 'dev.yaml'}: openstack.cloud: the spec says 'dev' but Pulumi config openstack:cloud says 'acme'"
    ]
    assert [r.type for r in exited.value.plan.resources] == ["pulumi:pulumi:Stack"]
    assert exited.value.plan.outputs == {}


def test_bad_spec_file_exits_2_with_one_line_per_problem(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = spec_data(workers={"count": -1}, bogus=1)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProgramExitError) as exited:
        run_project("bad", config={"spec": str(path)})
    assert exited.value.code == 2
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{path}: ") for line in lines), lines
    assert any("workers.count" in line for line in lines) and any(
        "bogus: is not a known field" in line for line in lines
    )
    assert [r.type for r in exited.value.plan.resources] == ["pulumi:pulumi:Stack"]


def test_a_version_the_rollout_cannot_parse_exits_2_with_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """__main__.py: the spec refuses it by the rollout model's own parser, before any resource."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec_data(versions={"kubernetes": "1.34.2---"})))
    with pytest.raises(ProgramExitError) as exited:
        run_project("bad", config={"spec": str(path)})
    assert exited.value.code == 2
    (line,) = capfd.readouterr().err.splitlines()
    assert line.startswith(f"{path}: versions.kubernetes: '1.34.2---' is not a version")
    assert [r.type for r in exited.value.plan.resources] == ["pulumi:pulumi:Stack"]


def test_stack_config_matching_the_spec_plans_normally() -> None:
    plan = run_project("dev", config={"openstack:cloud": "dev", "openstack:region": "RegionOne"})
    assert plan.outputs["clusterName"] == "dev"


@pytest.mark.parametrize("stack", sorted(p.stem for p in (PROJECT_DIR / "stacks").glob("*.yaml")))
def test_preview_registers_the_same_resources_as_the_full_run(stack: str) -> None:
    full, preview = plan_stack(stack), plan_stack(stack, preview=True)
    assert preview.preview and not full.preview
    assert invisible_to_preview(full, preview) == []
    # The preview really had unknowns: no custom resource has an ID there.
    assert UNKNOWN in {r.inputs.get("networkId") for r in preview.resources if "networkId" in r.inputs}


def test_a_resource_created_inside_apply_is_invisible_to_preview() -> None:
    def program() -> None:
        net = openstack.networking.Network("net", name="n")
        net.id.apply(lambda _: openstack.networking.Router("router"))

    full, preview = run_plan(program, stack="unit"), run_plan(program, stack="unit", preview=True)
    assert invisible_to_preview(full, preview) == [
        "urn:pulumi:unit::kaas::pulumi:pulumi:Stack$openstack:networking/router:Router::router"
    ]


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


def test_kaas_plan_exits_with_the_programs_status_when_the_stack_config_refuses_the_spec(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A spec named like a stack is planned with that stack's config, as `pulumi up -s dev` would."""
    from kaas.cli import main

    path = tmp_path / "dev-elsewhere.yaml"
    path.write_text(yaml.safe_dump(spec_data(name="dev", openstack={"cloud": "elsewhere"})))
    assert main(["plan", "--spec", str(path)]) == 2
    err = capfd.readouterr().err.splitlines()
    assert err == [f"{path}: openstack.cloud: the spec says 'elsewhere' but Pulumi config openstack:cloud says 'dev'"]
