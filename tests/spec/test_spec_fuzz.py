"""Hypothesis fuzzing of the spec loader: a valid StudySpec or exactly one SpecError line.

Three generators, each ``FUZZ_EXAMPLES`` examples (200 by default; set
TASKGRAPH_FUZZ_EXAMPLES for a deeper run):

* arbitrary bytes and text (invalid UTF-8, control characters, YAML punctuation);
* YAML documents built from the spec's own field names with hostile values (huge and
  non-finite numbers, booleans, nested lists and mappings, ``${VAR}`` strings), dumped by PyYAML;
* a valid spec with one field replaced by such a value, or with anchors and aliases added.

Whatever comes in, ``load_spec`` returns a spec or raises :class:`SpecError` whose message is one
line starting with the file's path; any other exception fails the test.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskgraph.errors import SpecError
from taskgraph.spec import StudySpec, load_spec

FUZZ_EXAMPLES = int(os.environ.get("TASKGRAPH_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VALID = {
    "name": "fuzz",
    "target": "synth_a",
    "candidates": ["synth_b", "synth_c"],
    "search": {
        "sharing": ["hard"],
        "batch_size": [8, 16],
        "learning_rate": {"low": 1.0e-5, "high": 1.0e-3, "log": True},
        "mixing": {"temperature": 2.0, "max_examples": {"low": 100, "high": 1000}},
    },
    "budget": {"trials": 4, "wall_time": "10m"},
    "seeds": 2,
    "sampler": {"name": "tpe", "seed": 1},
    "pruner": "median",
    "recovery": {"heartbeat_interval": 5, "grace_period": 20},
}
# every field name of the spec's models, so generated documents reach deep validators
KEYS = sorted(
    {
        "name",
        "target",
        "candidates",
        "tasks",
        "search",
        "encoder",
        "training",
        "seeds",
        "budget",
        "sampler",
        "pruner",
        "runner",
        "recovery",
        "storage",
        "data_dir",
        "objective",
        "description",
        "auxiliaries",
        "sharing",
        "mixing",
        "loss_weighting",
        "transfer_mode",
        "pretraining",
        "learning_rate",
        "epochs",
        "max_steps",
        "batch_size",
        "hyperparameters",
        "min_size",
        "max_size",
        "include",
        "exclude",
        "scheme",
        "temperature",
        "weights",
        "max_examples",
        "value",
        "choices",
        "low",
        "high",
        "log",
        "step",
        "type",
        "options",
        "max_length",
        "eval_every",
        "trials",
        "wall_time",
        "max_failures",
        "seed",
        "n_startup_trials",
        "min_resource",
        "reduction_factor",
        "heartbeat_interval",
        "grace_period",
        "max_retry",
        "address",
        "resources",
        "cpu",
        "gpu",
        "table",
        "split",
        "metric",
        "direction",
        "format",
        "label_field",
        "files",
        "path",
        "trust_remote_code",
        "local",
        "ray",
        "tabular",
        "tpe",
        "hard",
        "soft",
    }
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(KEYS),
    st.sampled_from(["${HOME}", "${TG_FUZZ_UNSET}", "${TG_FUZZ_UNSET:-x}", "10m", "3 weeks"]),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    ),
    max_leaves=20,
)


def outcome(data: bytes) -> StudySpec | None:
    """Load ``data`` as a spec file; return the spec, or None after a clean SpecError."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "spec.yaml"
        path.write_bytes(data)
        try:
            return load_spec(path)
        except SpecError as error:
            message = str(error)
            assert "\n" not in message and "\r" not in message, message
            assert message.startswith(str(path)), message
            return None


def dump(document: Any) -> bytes:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode("utf-8")


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_arbitrary_bytes_give_a_spec_or_one_error_line(data: bytes) -> None:
    outcome(data)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8))
def test_generated_documents_give_a_spec_or_one_error_line(document: dict[str, Any]) -> None:
    outcome(dump(document))


def _replace(document: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    node = document
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value
    return document


@FUZZ
@given(
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=3),
    VALUES,
    st.booleans(),
)
def test_a_valid_spec_with_one_hostile_field_gives_a_spec_or_one_error_line(
    path: list[str], value: Any, aliased: bool
) -> None:
    import copy

    document = _replace(copy.deepcopy(VALID), path, value)
    text = dump(document)
    if aliased:
        # Make PyYAML write anchors and aliases by sharing one object in two places.
        shared = document.get("search", {})
        document["training"] = {"hyperparameters": {"copy": shared}}
        text = dump(document)
    outcome(text)


def test_the_base_document_is_valid() -> None:
    spec = outcome(dump(VALID))
    assert spec is not None and spec.seeds == (0, 1)
