from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from kaas.offline import run_plan
from kaas.offline.planfile import SECRET_MASK, plain
from kaas.outputs import (
    OutputsError,
    StackOutputs,
    build_stack_outputs,
    export_keys,
    load_outputs,
    minimum_kubectl_version,
    output_keys,
)
from tests.helpers import make_facts, make_outputs, make_plan, make_spec, pulumi_output_json


@pytest.mark.parametrize(("version", "expected"), [("1.34.2", "1.33"), ("v1.30.0", "1.29"), ("1.40.1-rc.1", "1.39")])
def test_minimum_kubectl_is_one_minor_below_the_cluster(version: str, expected: str) -> None:
    assert minimum_kubectl_version(version) == expected


def test_minimum_kubectl_rejects_a_non_version() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        minimum_kubectl_version("latest")


def test_outputs_combine_spec_and_run_time_facts() -> None:
    outputs = make_outputs(workers={"count": 5}, provider_name="acme")
    assert outputs.cluster_name == "t1" and outputs.cluster_domain == "t1.k8s.example.com"
    assert outputs.layout.workers.count == 5 and outputs.layout.workers.flavor.vcpus == 4
    assert outputs.api.url == "https://api.t1.k8s.example.com:6443"
    assert outputs.api.floating_ip == "198.51.100.7"
    assert outputs.rbac.cluster_admin_binding == "acme:default-cluster-admin"
    assert outputs.rbac.group_id == outputs.openstack.keystone.admin_role_id == "0123456789abcdef0123456789abcdef"
    assert outputs.platform_namespaces == ("acme-system", "kube-system")
    assert outputs.networking.ingress is not None and outputs.networking.ingress.host_pattern == "*.t1.k8s.example.com"
    assert outputs.etcd.backup_interval_hours == 8 and outputs.etcd.backup_schedule == "0 */8 * * *"
    assert {g.tier: g.id for g in outputs.openstack.server_groups} == {
        "etcd": "sg-etcd",
        "masters": "sg-masters",
        "workers": "sg-workers",
    }
    assert outputs.services.logging is not None
    assert outputs.services.logging.url == "https://kibana.t1.k8s.example.com"


def test_disabled_services_are_not_in_the_outputs() -> None:
    outputs = make_outputs(
        environment="demo",
        services={"logging": {"enabled": False}, "registry": {"enabled": False}, "backups": {"enabled": False}},
    )
    assert outputs.services.logging is None and outputs.services.registry is None and outputs.services.backups is None
    assert outputs.services.grafana is not None
    assert [c.name for c in outputs.openstack.containers] == ["t1-etcd-backups"]


def test_without_dns_the_api_is_addressed_by_its_floating_ip() -> None:
    spec = make_spec(dns={"enabled": False})
    outputs = build_stack_outputs(make_plan(spec), make_facts(dns_zone_name=None, dns_zone_id=None))
    assert outputs.api.dns_name is None and outputs.openstack.dns_zone is None
    assert outputs.api.url == "https://198.51.100.7:6443"


def test_missing_facts_for_enabled_features_are_errors() -> None:
    with pytest.raises(ValueError, match="no ID for tier"):
        build_stack_outputs(make_plan(make_spec()), make_facts(server_group_ids={"etcd": "x"}))
    with pytest.raises(ValueError, match="ingress_floating_ip"):
        build_stack_outputs(make_plan(make_spec()), make_facts(ingress_floating_ip=None))


def test_outputs_hold_no_secret() -> None:
    text = json.dumps(make_outputs().model_dump(mode="json"))
    assert "PRIVATE KEY" not in text and "password" not in text.lower() and "token" not in text.lower()
    assert not {"adminKubeconfig", "kubeconfig"} & set(output_keys())


def test_pulumi_json_round_trips_and_secrets_are_skipped() -> None:
    outputs = make_outputs()
    data = json.loads(json.dumps(pulumi_output_json(outputs)))
    data["someFutureSecret"] = SECRET_MASK
    assert load_outputs(data) == outputs


def test_known_secret_key_is_ignored_even_when_revealed() -> None:
    data = pulumi_output_json(make_outputs())
    data["adminKubeconfig"] = "apiVersion: v1\nkind: Config\n"
    assert load_outputs(data).cluster_name == "t1"


def _broken(mutate: Any) -> str:
    data = json.loads(json.dumps(pulumi_output_json(make_outputs())))
    mutate(data)
    with pytest.raises(OutputsError) as raised:
        load_outputs(data, "out.json")
    return str(raised.value)


def test_another_projects_outputs_are_rejected_by_name() -> None:
    with pytest.raises(OutputsError, match=r"not the outputs of a kaas stack.*bucketName"):
        load_outputs({"bucketName": "logs", "vpcId": "vpc-1"}, "out.json")


def test_a_list_is_not_stack_outputs() -> None:
    with pytest.raises(OutputsError, match="must be a JSON object"):
        load_outputs([1, 2], "out.json")


def test_missing_key_is_named() -> None:
    assert "out.json: api: is missing" in _broken(lambda d: d.pop("api"))


def test_wrong_type_is_named_with_its_path() -> None:
    message = _broken(lambda d: d["layout"]["workers"].update(count="three"))
    assert "layout.workers.count:" in message and "'three'" in message


def test_unknown_key_is_rejected() -> None:
    assert "workerz: is not a known output" in _broken(lambda d: d.update(workerz=3))


def test_masked_non_secret_output_is_an_error() -> None:
    assert "caCertificate: is masked" in _broken(lambda d: d.update(caCertificate=SECRET_MASK))


def test_ca_must_be_a_certificate() -> None:
    assert "caCertificate: is not a PEM-encoded X.509 certificate" in _broken(lambda d: d.update(caCertificate="x"))


def test_export_keys_gives_one_stack_output_per_field() -> None:
    """The lead's wiring, run under the offline engine: Output.all(facts) -> model -> one export per key."""
    spec = make_spec()
    facts = make_facts()

    def program() -> None:
        resolved = pulumi.Output.all(
            **{k: pulumi.Output.from_input(v) for k, v in facts.__dict__.items() if k != "server_group_ids"}
        )
        dumped = resolved.apply(
            lambda f: build_stack_outputs(
                make_plan(spec), make_facts(**f, server_group_ids=facts.server_group_ids)
            ).model_dump(mode="json")
        )
        for key, value in export_keys(dumped).items():
            pulumi.export(key, value)

    plan = run_plan(program, stack="t1")
    assert set(plan.outputs) == set(output_keys())
    assert StackOutputs.model_validate(plain(plan.outputs)) == build_stack_outputs(make_plan(spec), facts)
