"""YAML text and file entries for cloud-init: the one dumper, ``#cloud-config``, templates.

Every structured document in the user data (the cloud-config itself, etcd's and kubeadm's
configurations, kubeconfigs) goes through ``safe_dump``/``yaml_docs``; file contents that
span lines are written as literal blocks by ``cloud_config``. Templates render systemd
units and boot scripts, and refuse any value that is not a plain token.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
import yaml

CLOUD_CONFIG_HEADER = "#cloud-config\n"

# Every value a template interpolates is one shell word and one systemd token: letters,
# digits and ``._:/=@+,-``. Templates write shell scripts and systemd units, where a
# quote, '$', '%', ';', a space or a newline would be syntax; such a value is refused
# here instead of being quoted for one of the two languages and wrong for the other.
_TEMPLATE_TOKEN = re.compile(r"[A-Za-z0-9._:/=@+,-]*")


class TemplateValueError(ValueError):
    """A value a template would interpolate that is not a plain token."""


class Verbatim(str):
    """Text kaas composes itself from numbers and constants (a systemd calendar), never from spec strings."""

    __slots__ = ()


def _inert_token(value: Any) -> Any:
    if isinstance(value, Verbatim):
        return value
    text = str(value)
    if not _TEMPLATE_TOKEN.fullmatch(text):
        raise TemplateValueError(
            f"{text!r} cannot be written into a shell script or systemd unit: only letters, digits and '._:/=@+,-'"
        )
    return value


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("kaas.bootstrap", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
    finalize=_inert_token,
)


def render_template(template: str, **values: Any) -> str:
    return _TEMPLATES.get_template(template).render(**values)


# libyaml's emitter when PyYAML was built with it: the same text as the pure-Python
# emitter (tests/test_plan_cost.py compares both on every stack's user data), ~15x faster,
# which matters with hundreds of workers.
SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def safe_dump(data: Any) -> str:
    """One YAML document, keys in the order they were built (every structured file of the user data)."""
    return yaml.dump(data, Dumper=SafeDumper, sort_keys=False)


class _BlockDumper(SafeDumper):  # type: ignore[valid-type,misc]
    """Safe dumper that writes multi-line strings (files, scripts) as literal blocks."""


def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, represent_str)


def cloud_config(document: dict[str, Any]) -> str:
    body = yaml.dump(document, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=1000)
    return CLOUD_CONFIG_HEADER + body


def write_file(path: str, content: str, permissions: str = "0644") -> dict[str, str]:
    """One ``write_files`` entry of a cloud-config, owned by root."""
    return {"path": path, "content": content, "permissions": permissions, "owner": "root:root"}


def secret_file(path: str, content: str) -> dict[str, str]:
    """A ``write_files`` entry only root can read (keys, tokens, credentials)."""
    return write_file(path, content, "0600")


def yaml_docs(*docs: dict[str, Any]) -> str:
    """Several YAML documents in one file (kubeadm's configuration)."""
    return yaml.dump_all(docs, Dumper=SafeDumper, sort_keys=False, default_flow_style=False, width=1000)
