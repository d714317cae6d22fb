"""Hostile spec values: refused by the spec in one line, or inert in every artifact.

Every string field of ``ClusterSpec`` (found by walking the models, so a new field
without a marker below fails ``test_every_string_field_has_a_marker``) receives
generated hostile strings: newlines, carriage returns, NUL, unicode line separators,
quotes, ``$()``, ``${}``, backticks, INI and YAML syntax. The spec either refuses the
value with one line per problem naming the field, or the value is inert: the whole
stack is planned with it and every artifact is parsed back with its real parser
(YAML for cloud-config and the files it writes, configparser for cloud.conf and
systemd units, ``bash -n`` and a shell tokenizer for scripts), and the result equals
the plan of a baseline spec whose field holds a plain marker, with the marker replaced
by the hostile value. Equal parse trees mean the value is one datum where the marker
was: no extra key, section, command or document appeared.
"""

from __future__ import annotations

import configparser
import functools
import json
import re
import shlex
import subprocess
import types
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from kaas import versions
from kaas.offline.plan import plan_spec
from kaas.offline.planfile import plan_json
from kaas.services import values
from kaas.spec import ClusterSpec, SpecError, parse_spec
from kaas.spec.models import control_character

FieldPath = tuple[str, ...]

# A plain, valid, recognisable value per string field; the baseline spec holds all of them.
MARKERS: dict[FieldPath, Any] = {
    ("name",): "hx1",
    ("domain",): "hx.example.com",
    ("provider_name",): "hxprov",
    ("versions", "kubernetes"): versions.KUBERNETES,
    ("versions", "etcd"): versions.ETCD,
    ("versions", "containerd"): versions.CONTAINERD,
    ("openstack", "cloud"): "hxcloud",
    ("openstack", "auth_url"): "https://keystone.hx.example:5000/v3",
    ("openstack", "s3_endpoint"): "https://swift.hx.example:8080",
    ("openstack", "region"): "hxregion",
    ("openstack", "external_network"): "hxextnet",
    ("openstack", "image"): "hximage",
    ("openstack", "key_pair"): "hxkeypair",
    ("openstack", "availability_zones"): ("hxaz",),  # not a prefix of another marker ("hxzoneid")
    ("etcd", "flavor", "name"): "hxetcdflavor",
    ("masters", "flavor", "name"): "hxmasterflavor",
    ("workers", "flavor", "name"): "hxworkerflavor",
    ("networking", "node_cidr"): "10.0.0.0/22",
    ("networking", "pod_cidr"): "10.244.0.0/16",
    ("networking", "service_cidr"): "10.96.0.0/12",
    ("networking", "dns_servers"): ("192.0.2.53",),
    ("networking", "allowed_api_cidrs"): ("198.51.100.0/24",),
    ("networking", "admin_ssh_cidrs"): ("203.0.113.0/24",),
    ("networking", "existing_network_id"): "hxnetworkid",
    ("networking", "existing_subnet_id"): "hxsubnetid",
    ("dns", "existing_zone_id"): "hxzoneid",
    # Must contain <name>.<domain>; DnsDomain refuses every hostile fragment, so the
    # marker is never substituted and may repeat the domain's.
    ("dns", "existing_zone_name"): "hx.example.com",
    ("dns", "email"): "hxhostmaster@hx.example.com",
    ("object_storage", "etcd_backups"): "hxetcdbackups",
    ("object_storage", "registry"): "hxregistry",
    ("object_storage", "cluster_backups"): "hxclusterbackups",
    ("identity", "admin_role_name"): "hxadminrole",
    ("identity", "initial_admin_user"): "hxadminuser",
    ("identity", "project"): "hxproject",
    ("identity", "domain"): "hxdomain",
    ("identity", "application_credential_roles"): ("hxrole",),
    ("etcd_backup", "s3_region"): "hxs3region",
    # Not on a reserved example domain: Let's Encrypt refuses those (kaas.spec.rules.production_acme_contact).
    ("services", "ingress", "acme_email"): "hxacme@hxoperations.net",
    ("security", "metadata_allowed_pod_cidrs"): ("10.244.255.0/24",),
    ("services", "logging", "dashboards_host"): "hxkibana",
    ("services", "backups", "schedule"): "17 3 * * *",
    ("services", "backups", "plugin_image"): "hxregistry.example/hxmirror/plugin:v1",
    ("services", "customer_namespaces"): ("hxteam",),
    # DnsLabel refuses every hostile fragment: the marker may repeat customer_namespaces'.
    ("services", "default_namespace"): "hxdefaultns",
    ("identity", "roles", "0", "keystone_role"): "hxkeystonerole",
    ("identity", "roles", "0", "group"): "hxgroup",
    ("identity", "roles", "0", "role"): "hxownrole",
    ("identity", "roles", "0", "namespaces"): ("hxteam",),
    # One email receiver carries every receiver field (kind: email; item 0 of the list).
    ("services", "monitoring", "alerting", "receivers", "0", "name"): "hxreceiver",
    ("services", "monitoring", "alerting", "receivers", "0", "secret_config"): "hxsecretconfig",
    ("services", "monitoring", "alerting", "receivers", "0", "email_to"): "hxto@hxmail.example",
    ("services", "monitoring", "alerting", "receivers", "0", "email_from"): "hxfrom@hxmail.example",
    ("services", "monitoring", "alerting", "receivers", "0", "smarthost"): "hxsmtp.hxmail.example:587",
    ("services", "monitoring", "alerting", "receivers", "0", "email_username"): "hxsmtpuser",
    ("services", "monitoring", "alerting", "dead_mans_switch", "secret_config"): "hxheartbeat",
}
_SERVICES = ("cni", "cloud_controller", "cinder_csi", "keystone_auth", "ingress", "monitoring")
_SERVICES += ("metrics_server", "logging", "registry", "backups", "dashboard")
MARKERS.update({("services", s, "chart_version"): f"0.0.{i + 1}-hxchart{i}" for i, s in enumerate(_SERVICES)})

HOSTILE_FRAGMENTS = (
    "\n",
    "\r",
    "\r\n",
    "\x00",
    "\t",
    "\x0b",
    "\x1b[0m",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\u200b",
    "\u202e",
    '"',
    "'",
    "`id`",
    "\\",
    "$(reboot)",
    "${HOME}",
    "$HOME",
    ";reboot",
    "&& reboot",
    "| sh",
    "> /etc/passwd",
    "#",
    "%",
    "%n",
    "=",
    ":",
    ": x",
    "\n- x",
    "\n[Global]\ntls-insecure=true",
    "\nregion=evil",
    "{",
    "}",
    "[",
    "]",
    "*",
    "?",
    "!",
    "&",
    "@",
    "+",
    " ",
    "  ",
    "(",
    ")",
    "~",
    "---",
    "é",
)


def _leaf_str(annotation: Any) -> bool:
    """Whether a field annotation holds free strings (str, str | None, tuple[str, ...]; not enums)."""
    if annotation is str:
        return True
    if isinstance(annotation, type):
        return False
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType, tuple):
        return any(_leaf_str(arg) for arg in get_args(annotation) if arg is not Ellipsis)
    return any(_leaf_str(arg) for arg in get_args(annotation))


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models(arg)


def string_fields(model: type[BaseModel], prefix: FieldPath = ()) -> Iterator[FieldPath]:
    """Paths of the string fields; a tuple of models (``identity.roles``) is walked through its item 0."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if _leaf_str(info.annotation):
            yield path
        item = ("0",) if get_origin(info.annotation) is tuple else ()
        for sub in _models(info.annotation):
            yield from string_fields(sub, (*path, *item))


STRING_FIELDS = tuple(string_fields(ClusterSpec))


def _nested(path: FieldPath, value: Any) -> dict[str, Any]:
    data: Any = {path[-1]: value}
    for key in reversed(path[:-1]):
        data = [data] if key == "0" else {key: data}
    return dict(data)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """tests.helpers.merge, and lists of mappings (``identity.roles``) merged item by item."""
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = merge(old, value)
        elif isinstance(value, list) and isinstance(old, list) and all(isinstance(v, dict) for v in value + old):
            out[key] = [merge(a, b) for a, b in zip(old, value, strict=True)]
        else:
            out[key] = value
    return out


BASE: dict[str, Any] = {
    tier: {"flavor": {"vcpus": 4, "ram_gb": 8, "disk_gb": 40}} for tier in ("etcd", "masters", "workers")
}
BASE = merge(BASE, {"services": {"monitoring": {"alerting": {"receivers": [{"kind": "email"}]}}}})
for _path, _marker in MARKERS.items():
    BASE = merge(BASE, _nested(_path, list(_marker) if isinstance(_marker, tuple) else _marker))


def test_every_string_field_has_a_marker() -> None:
    assert len(STRING_FIELDS) >= 45
    assert set(STRING_FIELDS) == set(MARKERS)


def test_baseline_spec_is_valid() -> None:
    spec = parse_spec(BASE, "<baseline>")
    assert spec.openstack.region == "hxregion" and spec.services.backups.schedule == "17 3 * * *"


# --- the plan, parsed with the artifacts' own parsers ---------------------------------


def _bash_syntax_ok(script: str) -> None:
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr


def _shell_words(script: str) -> list[str]:
    """The script as the shell's words and operators (quotes resolved; ';', '|', '&', '(' split off)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _ini(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return {section: dict(parser[section]) for section in parser.sections()}


def _environment_file(text: str) -> dict[str, str]:
    pairs = (shlex.split(line)[0].split("=", 1) for line in text.splitlines() if line.strip())
    return dict(pairs)


def _file_content(path: str, content: str) -> Any:
    if content.startswith("#!/bin/bash") or content.startswith("#!/bin/sh"):
        _bash_syntax_ok(content)
        return {"shell": _shell_words(content)}
    if path.endswith((".service", ".timer")):
        return {"unit": _ini(content)}
    if path.endswith(".env"):
        return {"env": _environment_file(content)}
    if path.endswith((".yaml", ".yml", ".kubeconfig")):
        return {"yaml": list(yaml.safe_load_all(content))}
    return content


def parsed(value: Any) -> Any:
    """Every artifact inside a plan, replaced by what its consumer's parser reads from it."""
    if isinstance(value, dict):
        return {k: parsed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [parsed(v) for v in value]
    if not isinstance(value, str):
        return value
    if value.startswith("#cloud-config"):
        document = yaml.safe_load(value)
        for item in document.get("write_files", []):
            item["content"] = _file_content(item["path"], item["content"])
        return {"cloud-config": document}
    if value.startswith("[Global]"):
        return {"ini": _ini(value)}
    if value.startswith("apiVersion:") or value.startswith("---\n"):
        return {"yaml": list(yaml.safe_load_all(value))}
    if value.startswith("{") and value.endswith("}"):
        return {"json": json.loads(value)}
    return value


def substituted(value: Any, marker: str, replacement: str) -> Any:
    if isinstance(value, dict):
        return {substituted(k, marker, replacement): substituted(v, marker, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [substituted(v, marker, replacement) for v in value]
    if isinstance(value, str):
        return value.replace(marker, replacement)
    return value


# The mocks derive the IDs of looked-up objects (projects, images) from the name asked
# for, so those IDs differ between a marker and the value that replaces it; Swift ACLs
# join them as ``project:user``.
_ONE_ID = r"(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
_MOCK_ID = re.compile(rf"{_ONE_ID}(?::{_ONE_ID})*")


# Pod-template checksums of Secret content (kaas.services.values.checksum): that content holds
# the mock IDs above, so its hash differs too; the content itself is compared where it is planned.
_CHECKSUM_KEYS = {values.CONFIG_CHECKSUM_ANNOTATION}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def differences(got: Any, want: Any, where: str = "") -> Iterator[str]:
    if isinstance(got, dict) and isinstance(want, dict):
        if set(got) != set(want):
            yield f"{where}: keys {sorted(set(got) ^ set(want))[:5]} differ"
            return
        for key in got:
            if key in _CHECKSUM_KEYS and all(
                isinstance(v, str) and _SHA256.fullmatch(v) for v in (got[key], want[key])
            ):
                continue
            yield from differences(got[key], want[key], f"{where}/{key}")
    elif isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            yield f"{where}: {len(got)} items, expected {len(want)}"
            return
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            yield from differences(a, b, f"{where}[{index}]")
    elif got != want and not (isinstance(got, str) and _MOCK_ID.fullmatch(got) and _MOCK_ID.fullmatch(str(want))):
        yield f"{where}: {got!r:.120} != {want!r:.120}"


def plan_document(spec: ClusterSpec) -> Any:
    return parsed(plan_json(plan_spec(spec), show_secrets=True))


@functools.cache
def baseline_document() -> Any:
    return plan_document(parse_spec(BASE, "<baseline>"))


# --- the property ----------------------------------------------------------------------


def hostile_values(marker: str) -> st.SearchStrategy[str]:
    fragments = st.lists(st.sampled_from(HOSTILE_FRAGMENTS), min_size=1, max_size=3).map("".join)
    placed = st.tuples(st.sampled_from(("prefix", "infix", "suffix", "alone")), fragments).map(
        lambda t: {
            "prefix": t[1] + marker,
            "infix": marker[: len(marker) // 2] + t[1] + marker[len(marker) // 2 :],
            "suffix": marker + t[1],
            "alone": t[1],
        }[t[0]]
    )
    # Arbitrary text too, but only text with a character outside the name alphabets:
    # a plain other name ("hx1" -> "hx10") legitimately changes what derives from it.
    arbitrary = st.text(min_size=1, max_size=20).filter(lambda s: re.search(r"[^A-Za-z0-9._-]", s) is not None)
    return st.one_of(placed, arbitrary.map(lambda s: marker + s + marker))


def _path_text(path: FieldPath) -> str:
    return ".".join(path)


def assert_refused_in_one_line_per_problem(
    error: SpecError, path: FieldPath, value: str, replaced: str | None = None
) -> None:
    assert error.problems, "a refusal names at least one problem"
    for problem in error.problems:
        assert "\n" not in problem and control_character(problem) is None, repr(problem)
    assert str(error).count("\n") == len(error.problems) - 1
    # The field itself, or a rule across fields that quotes the value (a domain the base's
    # dns.existing_zone_name no longer contains is refused under that field's name), or one that
    # quotes the value it replaced (the base's identity.roles grant the namespace `hxteam`: once
    # services.customer_namespaces no longer lists it, the role mapping is refused, naming it).
    quoted = [value] + ([replaced] if replaced else [])
    assert any(p.startswith(_path_text(path)) or any(q in p for q in quoted) for p in error.problems), (
        path,
        error.problems,
    )


def check_hostile(path: FieldPath, value: str) -> bool:
    """Refused (True) or inert across the whole plan (False); fails the test otherwise."""
    marker = MARKERS[path]
    data_value: Any = [value] if isinstance(marker, tuple) else value
    data = merge(BASE, _nested(path, data_value))
    plain_marker = marker[0] if isinstance(marker, tuple) else marker
    try:
        spec = parse_spec(data, "<hostile>")
    except SpecError as err:
        assert_refused_in_one_line_per_problem(err, path, value, replaced=plain_marker)
        return True
    accepted = functools.reduce(lambda obj, key: obj[int(key)] if key.isdigit() else getattr(obj, key), path, spec)
    accepted_text = accepted[0] if isinstance(accepted, tuple) else accepted
    assert control_character(accepted_text) is None
    got = plan_document(spec)
    want = substituted(baseline_document(), plain_marker, accepted_text)
    problems = list(differences(got, want))
    assert not problems, f"{_path_text(path)}={value!r} is not inert: " + "; ".join(problems[:5])
    return False


@pytest.mark.parametrize("path", STRING_FIELDS, ids=_path_text)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_string_is_refused_or_inert(path: FieldPath, data: st.DataObject) -> None:
    marker = MARKERS[path]
    plain_marker = marker[0] if isinstance(marker, tuple) else marker
    refused = check_hostile(path, data.draw(hostile_values(plain_marker), label="value"))
    event("refused by the spec" if refused else "accepted, inert in the plan")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("openstack", "region"), "RegionOne\ntls-insecure=true"),
        (("openstack", "region"), "RegionOne\u2028tls-insecure=true"),
        (("openstack", "auth_url"), "https://keystone.hx.example/v3\n[Global]"),
        (("openstack", "auth_url"), "https://keystone.hx.example/$(reboot)"),
        (("openstack", "s3_endpoint"), "https://swift.hx.example/`id`"),
        (("etcd_backup", "s3_region"), 'us-east-1"\nAWS_SECRET_ACCESS_KEY="x'),
        (("openstack", "image"), "ubuntu\x00"),
        (("identity", "initial_admin_user"), "alice; reboot"),
        (("services", "backups", "schedule"), "0 2 * * *\nevil: true"),
        (("services", "backups", "schedule"), "0 25 * * *"),
        (("services", "ingress", "acme_email"), "ops@acme.example\r\nBcc: x@y"),
        # Found by the property test: a valid DNS label, but R-LDH ('--' 3rd and 4th), which
        # Let's Encrypt refuses for every host of the cluster. It was accepted, and the
        # comparison failed because a new name reseeds every mock-derived key and ID.
        (("name",), "h---x1"),
        (("services", "logging", "dashboards_host"), "hx---kibana"),
    ],
)
def test_known_injections_are_refused(path: FieldPath, value: str) -> None:
    assert check_hostile(path, value) is True


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("openstack", "image"), "Ubuntu 24.04 (Noble) @ hximage"),
        (("identity", "initial_admin_user"), "alice+ops@hx.example.com"),
        (("openstack", "key_pair"), "ops key@hx"),
        (("services", "backups", "schedule"), "*/30 1-5,7 * JAN-MAR mon-fri"),
    ],
)
def test_unusual_but_valid_values_are_inert(path: FieldPath, value: str) -> None:
    assert check_hostile(path, value) is False
