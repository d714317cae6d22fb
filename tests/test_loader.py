from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaas.spec import ClusterSpec, SpecError, load_spec_file, load_stack_spec, parse_spec
from kaas.spec.loader import STACKS_DIR
from tests.helpers import MINIMAL, spec_data


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("stack", sorted(p.stem for p in STACKS_DIR.glob("*.yaml")))
def test_every_stack_file_loads(stack: str) -> None:
    assert load_stack_spec(stack).name


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_file(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: no such spec file"


def test_unknown_stack_lists_the_known_ones() -> None:
    with pytest.raises(SpecError) as caught:
        load_stack_spec("no-such-stack")
    assert "known stacks: acme-prod, demo, dev" in str(caught.value)


def test_bad_yaml_gives_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_file(write(tmp_path, "name: a\nworkers: [1, 2\n"))
    (problem,) = caught.value.problems
    assert problem.startswith("(document): line 3, column 1: not valid YAML")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string"])
def test_document_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_file(write(tmp_path, text))
    assert caught.value.problems[0].startswith("(document): must be a mapping")


def test_error_lines_name_file_and_field(tmp_path: Path) -> None:
    data = spec_data(workers={"count": 0})
    with pytest.raises(SpecError) as caught:
        load_spec_file(write(tmp_path, yaml.safe_dump(data)))
    assert str(caught.value) == f"{tmp_path / 'spec.yaml'}: workers.count: must be >= 1; got 0"


def test_wrong_type_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_data(workers={"count": "many"}), "x.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("workers.count: must be a valid integer")


# Arbitrary YAML-like data: the loader either returns a spec or raises SpecError, nothing else.
yaml_scalars = st.none() | st.booleans() | st.integers(-10, 100) | st.text(max_size=12) | st.floats(allow_nan=False)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
sections = st.sampled_from(sorted(ClusterSpec.model_fields))


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    data: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MINIMAL.items()}
    for _ in range(draw(st.integers(0, 3))):
        data[draw(sections | st.text(max_size=8))] = draw(yaml_values)
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(yaml_values, mutated_specs()))
def test_loader_never_fails_with_anything_but_a_spec_error(data: Any) -> None:
    try:
        spec = parse_spec(data, "fuzz.yaml")
    except SpecError as error:
        assert error.problems and all(isinstance(p, str) and p for p in error.problems)
    else:
        assert isinstance(spec, ClusterSpec)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_files_never_raise_anything_but_spec_error(tmp_path_factory: Any, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "spec.yaml"
    path.write_text(text)
    try:
        load_spec_file(path)
    except SpecError as error:
        assert error.problems
