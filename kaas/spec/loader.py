"""Stack name or file -> validated :class:`ClusterSpec`, or a :class:`SpecError`.

This module is the only place that reads YAML or Pulumi configuration. Every
problem is reported once, as ``<file>: <field.path>: <message>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kaas.spec.models import ClusterSpec
from kaas.spec.rules import SpecRuleError

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = REPO_ROOT / "stacks"
_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SpecError(Exception):
    """A spec that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("\n".join(f"{source}: {p}" for p in problems))
        self.source = source
        self.problems = problems


def stack_spec_path(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    if not _STACK_NAME.match(stack):
        raise SpecError(stack, [f"{stack!r} is not a stack name (letters, digits, '.', '_', '-')"])
    return stacks_dir / f"{stack}.yaml"


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        symbol = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()))
        return f"must be {symbol} {bound}; got {error.get('input')!r}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    message = message.replace("Input should be", "must be")
    if "input" in error and kind not in ("value_error", "model_type", "dict_type"):
        message += f"; got {error['input']!r}"
    return message


def problems_from_validation(error: ValidationError) -> list[str]:
    problems: list[str] = []
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, SpecRuleError):
            problems.extend(str(p) for p in cause.problems)
        else:
            problems.append(f"{_path(item['loc'])}: {_message(item)}")
    return problems


def parse_spec(data: object, source: str) -> ClusterSpec:
    """Validate already-parsed data (a mapping) as a ClusterSpec."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError(source, [f"(document): must be a mapping of spec sections; the document is {kind}"])
    try:
        return ClusterSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(source, problems_from_validation(err)) from None


def load_spec_file(path: Path | str) -> ClusterSpec:
    file = Path(path)
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(source, ["no such spec file"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(source, [f"cannot read the spec: {err}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(source, [f"(document): {where}not valid YAML: {problem}"]) from None
    return parse_spec(data, source)


def load_stack_spec(stack: str, stacks_dir: Path = STACKS_DIR) -> ClusterSpec:
    path = stack_spec_path(stack, stacks_dir)
    if not path.exists():
        known = sorted(p.stem for p in stacks_dir.glob("*.yaml"))
        raise SpecError(str(path), [f"no spec for stack {stack!r}; known stacks: {', '.join(known) or 'none'}"])
    return load_spec_file(path)


def check_stack_config(spec: ClusterSpec, source: str, config: Mapping[str, str | None]) -> None:
    """``Pulumi.<stack>.yaml`` may name the OpenStack cloud/region; they must be the spec's.

    The program builds its OpenStack provider from the spec, so a stack file that names
    another cloud means the operator is about to deploy one customer's spec against
    another cloud: refuse instead of guessing.
    """
    problems = [
        f"openstack.{key}: the spec says {expected!r} but Pulumi config openstack:{key} says {configured!r}"
        for key, expected, configured in (
            ("cloud", spec.openstack.cloud, config.get("cloud")),
            ("region", spec.openstack.region, config.get("region")),
        )
        if configured is not None and configured != expected
    ]
    if problems:
        raise SpecError(source, problems)


def load_for_current_stack() -> ClusterSpec:
    """The spec of the running Pulumi stack: config ``kaas:spec`` (a file) or ``stacks/<stack>.yaml``."""
    import pulumi

    explicit = pulumi.Config("kaas").get("spec")
    path = Path(explicit) if explicit else stack_spec_path(pulumi.get_stack())
    spec = load_spec_file(path) if explicit else load_stack_spec(pulumi.get_stack())
    openstack_config = pulumi.Config("openstack")
    check_stack_config(
        spec, str(path), {"cloud": openstack_config.get("cloud"), "region": openstack_config.get("region")}
    )
    return spec


def load_alerting_secrets(spec: ClusterSpec) -> dict[str, Any]:
    """The alert receivers' credentials: ``kaas:<secret_config>`` Pulumi config secrets, by key.

    ``pulumi up`` fails here, naming the key, when one is not set
    (``pulumi config set --secret kaas:<key> <value>``). Values are ``pulumi.Output`` secrets.
    """
    import pulumi

    config = pulumi.Config("kaas")
    return {key: config.require_secret(key) for key in spec.services.monitoring.alerting.secret_configs()}
