"""Spec strings typed for their destination, and renderers that refuse what they cannot write."""

from __future__ import annotations

import configparser
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaas import versions
from kaas.bootstrap.userdata.etcd import environment_file
from kaas.bootstrap.userdata.yamltext import TemplateValueError, render_template
from kaas.rollout.model import node_name
from kaas.services import values
from kaas.spec import SpecError
from kaas.spec.cron import cron_problem
from kaas.spec.models import CLUSTER_NAME_MAX
from kaas.versions import parse_version
from tests.helpers import make_spec


def problems_of(**override: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        make_spec(**override)
    return caught.value.problems


def test_production_needs_https_for_keystone_and_s3() -> None:
    problems = problems_of(
        openstack={"auth_url": "http://keystone.test.example:5000/v3", "s3_endpoint": "http://swift.test.example"}
    )
    assert problems == [
        "openstack.auth_url: a production cluster needs https; got http://keystone.test.example:5000/v3 "
        "(or set environment: demo)",
        "openstack.s3_endpoint: a production cluster needs https; got http://swift.test.example "
        "(or set environment: demo)",
    ]


def test_demo_may_use_http() -> None:
    spec = make_spec(
        environment="demo", etcd={"count": 1}, openstack={"auth_url": "http://keystone.test.example:5000/v3"}
    )
    assert spec.openstack.auth_url.startswith("http://")


@pytest.mark.parametrize("field", ["pod_cidr", "service_cidr"])
def test_pod_and_service_networks_must_be_private(field: str) -> None:
    (problem,) = problems_of(networking={field: "8.0.0.0/8"})
    assert problem.startswith(f"networking.{field}: 8.0.0.0/8 is not a private range")


@pytest.mark.parametrize("cidr", ["172.16.0.0/16", "192.168.0.0/20", "100.64.0.0/16"])
def test_private_and_shared_ranges_are_fine(cidr: str) -> None:
    assert make_spec(networking={"service_cidr": cidr}).networking.service_cidr == cidr


# Velero's `velero create schedule` reference: minute 0-59, hour 0-23, day of month 1-31,
# month 1-12, day of week 0-6, or "@every <duration>"; robfig/cron's descriptors.
@pytest.mark.parametrize(
    "schedule",
    ["0 2 * * *", "*/15 * * * *", "0 1-5/2 1,15 JAN-jun mon-FRI", "0 0 ? * 0", "@daily", "@every 6h30m"],
)
def test_velero_accepts_these_schedules(schedule: str) -> None:
    assert cron_problem(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("0 24 * * *", "hour: '24' is outside 0-23"),
        ("60 * * * *", "minute: '60' is outside 0-59"),
        ("0 0 0 * *", "day of month: '0' is outside 1-31"),
        ("0 0 * 13 *", "month: '13' is outside 1-12"),
        ("0 0 * * 7", "day of week: '7' is outside 0-6"),
        ("0 2 * *", "five fields"),
        ("0 2 * * * *", "five fields"),
        ("*/0 * * * *", "minute: step '0' must be a positive number"),
        ("5-1 * * * *", "minute: '5-1' is outside 0-59"),
        ("@sometimes", "use one of"),
        ("@every 6 hours", "is not a duration"),
        ("? * * * *", "minute: '?' only stands for a day"),
    ],
)
def test_schedules_velero_rejects_are_refused(schedule: str, problem: str) -> None:
    found = cron_problem(schedule)
    assert found is not None and problem in found
    (line,) = problems_of(services={"backups": {"schedule": schedule}})
    assert line.startswith("services.backups.schedule: ") and problem in line


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("openstack", "region", "Region One"),
        ("openstack", "cloud", "acme/prod"),
        ("openstack", "availability_zones", ["az:1"]),
        ("openstack", "image", "ubuntu  24.04"),
        ("openstack", "image", " ubuntu"),
        ("openstack", "key_pair", "ops;key"),
        ("identity", "initial_admin_user", "alice smith"),
        ("dns", "email", "hostmaster"),
        ("dns", "existing_zone_id", "zone id"),
        ("etcd_backup", "s3_region", "us east"),
    ],
)
def test_names_outside_their_destinations_grammar_are_refused(section: str, field: str, value: object) -> None:
    problem, *_ = problems_of(**{section: {field: value}})
    assert problem.startswith(f"{section}.{field}") and " is not " in problem and "\n" not in problem


def test_control_characters_are_refused_everywhere_with_the_character_named() -> None:
    (problem,) = problems_of(openstack={"region": "RegionOne\ntls-insecure=true"})
    assert problem == "openstack.region: contains the control character '\\n' (U+000A); values are one line"


# --- renderers --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_cloud_conf_value_is_refused_or_read_back_exactly(value: str) -> None:
    try:
        line = values.ini_line("region", value)
    except ValueError:
        return
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.read_string(f"[Global]\n{line}\n")
    assert dict(parser["Global"]) == {"region": value}


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_template_value_is_refused_or_one_shell_word(value: str) -> None:
    try:
        script = render_template(
            "etcd-health.sh.j2", name=value, endpoint="https://10.0.0.1:2379", ca_cert="a", cert="b", key="c"
        )
    except TemplateValueError:
        return
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, timeout=30)
    assert result.returncode == 0
    assert f'echo "etcd member {value} is not healthy"' in script
    assert not set(value) & set("$`\"'\\;&|<>()% \n")


def test_template_refuses_command_substitution() -> None:
    with pytest.raises(TemplateValueError, match="cannot be written into a shell script"):
        render_template("etcd-backup.service.j2", bucket="x$(reboot)", env_path="/e", script_path="/s")


@pytest.mark.parametrize("value", ["a\nb", "a\x00b", "a\u2028b", "a\x1bb"])
def test_environment_file_refuses_multi_line_and_control_characters(value: str) -> None:
    with pytest.raises(ValueError, match="single-line"):
        environment_file({"S3_REGION": value})


def test_cloud_conf_refuses_a_region_that_would_add_a_key_even_past_the_spec() -> None:
    """Defence in depth: a spec built without validation still cannot inject into cloud.conf."""
    spec = make_spec()
    forged = spec.model_copy(
        update={"openstack": spec.openstack.model_copy(update={"region": "RegionOne\ntls-insecure=true"})}
    )
    with pytest.raises(ValueError, match=r"cloud\.conf region"):
        values.cloud_config(forged, "id", "secret")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(values.cloud_config(spec, "id", "secret"))
    assert dict(parser["Global"]) == {
        "auth-url": "https://keystone.test.example:5000/v3",
        "application-credential-id": "id",
        "application-credential-secret": "secret",
        "region": "RegionOne",
    }


# --- release versions: the spec's grammar is the rollout model's parser -------------------


@pytest.mark.parametrize("field", ["kubernetes", "etcd", "containerd"])
@pytest.mark.parametrize(
    "version", ["1.34.2---", "1.34.2-rc.0", "1.34.2+build", "vv1.34.2", "1.034.2", "1.34", "1.34.2²"]
)
def test_a_release_version_the_rollout_cannot_parse_is_one_spec_error(field: str, version: str) -> None:
    with pytest.raises(ValueError):
        parse_version(version)
    (problem,) = problems_of(versions={field: version})
    assert problem.startswith(f"versions.{field}: {version!r} is not a version: use MAJOR.MINOR.PATCH")


# Strings near the grammar: digits, dots, 'v', suffix characters and digits Python's
# str.isdigit() takes but int() may not (the old parser's hole).
_NEAR_VERSION = st.text(alphabet="0123456789.v-+rc²٣", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_NEAR_VERSION, st.from_regex(versions.RELEASE_VERSION, fullmatch=True)))
def test_the_spec_accepts_a_kubernetes_version_exactly_when_the_rollout_parses_it(version: str) -> None:
    try:
        parsed = parse_version(version)
    except ValueError:
        parsed = None
    try:
        spec = make_spec(versions={"kubernetes": version})
    except SpecError as error:
        assert parsed is None, error.problems
        assert [p.split(":")[0] for p in error.problems] == ["versions.kubernetes"]
        return
    assert parsed is not None
    # The plan's rollout record orders the accepted version: the place that raised before.
    assert parse_version(spec.versions.kubernetes) == parsed


@pytest.mark.parametrize("version", ["1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3-alpha.0+build.7"])
def test_chart_versions_are_semver(version: str) -> None:
    assert make_spec(services={"ingress": {"chart_version": version}}).services.ingress.chart_version == version


@pytest.mark.parametrize("version", ["1.2", "1.2.3-", "1.2.3-01", "1.2.3+", "latest"])
def test_a_chart_version_that_is_not_semver_is_refused(version: str) -> None:
    (problem,) = problems_of(services={"ingress": {"chart_version": version}})
    assert problem.startswith(f"services.ingress.chart_version: {version!r} is not a chart version")


# --- names that become host names ----------------------------------------------------------


@pytest.mark.parametrize("name", ["h---x1", "ab--cd", "xn--a", "xn--99999999"])
def test_a_cluster_name_lets_encrypt_would_refuse_is_refused(name: str) -> None:
    """R-LDH labels (3rd and 4th characters '--') other than valid punycode: Boulder's errInvalidRLDH."""
    (problem,) = problems_of(name=name)
    assert problem.startswith(f"name: {name!r} cannot name a host: label {name!r}")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("domain", "ab--c.example.com"),
        ("domain", "acme.xn--99999999"),
        ("services.logging.dashboards_host", "ki--bana"),
    ],
)
def test_other_public_host_labels_refuse_reserved_labels(field: str, value: str) -> None:
    override: dict[str, object] = {"domain": value}
    if field != "domain":
        override = {"services": {"logging": {"dashboards_host": value}}}
    (problem,) = problems_of(**override)
    assert problem.startswith(f"{field}: {value!r}")
    assert "reserves for IDNA" in problem or "not a valid IDNA" in problem


@pytest.mark.parametrize(("name", "domain"), [("xn--bcher-kva", "test.example"), ("a-b--c", "xn--mnchen-3ya.de")])
def test_valid_punycode_and_later_double_hyphens_are_fine(name: str, domain: str) -> None:
    spec = make_spec(name=name, domain=domain)
    assert spec.cluster_domain == f"{name}.{domain}"


def test_the_cluster_name_leaves_room_for_its_node_host_names() -> None:
    """Nova truncates a host name to 63 characters: a 63-character cluster name gave every node the same one."""
    longest = "c" * CLUSTER_NAME_MAX
    make_spec(name=longest)
    assert len(node_name(longest, "worker", 9_999_999)) == 63
    (problem,) = problems_of(name=longest + "c")
    assert problem.startswith(f"name: '{longest}c' is {CLUSTER_NAME_MAX + 1} characters; at most {CLUSTER_NAME_MAX}")
