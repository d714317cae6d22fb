"""Typed customer specs and their loader."""

from kaas.spec.loader import (
    SpecError,
    load_alerting_secrets,
    load_for_current_stack,
    load_spec_file,
    load_stack_spec,
    parse_spec,
)
from kaas.spec.models import ClusterSpec

__all__ = [
    "ClusterSpec",
    "SpecError",
    "load_alerting_secrets",
    "load_for_current_stack",
    "load_spec_file",
    "load_stack_spec",
    "parse_spec",
]
