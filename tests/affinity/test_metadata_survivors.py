"""Task-metadata files (:mod:`taskgraph.affinity.metadata`) where the other tests left it open.

Pins down that every malformed file is one :class:`ConfigError` naming the file and the field
(a binary file, a document that is not an object, a task entry, ``texts`` or ``features`` of
the wrong shape, a feature that is NaN or infinite), that a task without texts or features
leaves no empty entry behind, and that :func:`feature_matrix` takes the columns ``names``
chooses, in that order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taskgraph.affinity.metadata import TaskMetadata, feature_matrix, load_task_metadata
from taskgraph.errors import ConfigError


def test_a_binary_file_is_refused_as_not_json(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(ConfigError, match="not JSON"):
        load_task_metadata(path)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([{"tasks": {"a": {}}}], "non-empty 'tasks' object"),
        ({"tasks": {"a": 3}}, r"tasks\.a must be an object, but got 3"),
        ({"tasks": {"a": ["text"]}}, r"tasks\.a must be an object"),
        ({"tasks": {"a": {"texts": ["fine", 7]}}}, r"tasks\.a\.texts must be a list of strings"),
        ({"tasks": {"a": {"features": [1.0, 2.0]}}}, r"tasks\.a\.features must be an object"),
        ({"tasks": {"a": {"features": "dev_f1"}}}, r"tasks\.a\.features must be an object"),
    ],
)
def test_a_malformed_file_is_one_config_error_naming_the_field(
    tmp_path: Path, document: object, field: str
) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=rf"task metadata {path}: .*{field}"):
        load_task_metadata(path)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_feature_that_is_not_finite_is_refused(tmp_path: Path, literal: str) -> None:
    # Python's json reads these literals; a NaN feature would poison the standardised column.
    path = tmp_path / "meta.json"
    path.write_text('{"tasks": {"a": {"features": {"dev_f1": ' + literal + "}}}}")
    with pytest.raises(ConfigError, match=r"tasks\.a\.features\.dev_f1 must be a finite number"):
        load_task_metadata(path)


def test_a_task_with_empty_texts_and_features_leaves_no_empty_entries(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"tasks": {
        "a": {"texts": [], "features": {}, "categories": ["kept, not used"]},
        "b": {"texts": ["one"], "features": {"f": 2}},
    }}))  # fmt: skip
    metadata = load_task_metadata(path)
    assert metadata == TaskMetadata(texts={"b": ["one"]}, features={"b": {"f": 2.0}})
    # A task present with no features is a task without them, not one with an empty row.
    assert "a" not in metadata.features and "a" not in metadata.texts


def test_feature_matrix_takes_the_columns_names_chooses_in_that_order() -> None:
    features = {"a": {"x": 1.0, "y": 2.0, "z": 9.0}, "b": {"x": 3.0, "y": 6.0, "z": 1.0}}
    matrix, names = feature_matrix(["a", "b"], features, names=["y", "x"])
    assert names == ["y", "x"]
    assert matrix.tolist() == [[-1.0, -1.0], [1.0, 1.0]]
    # A name no task has is a column of NaN, not an error and not dropped.
    matrix, names = feature_matrix(["a", "b"], features, names=["w"])
    assert names == ["w"] and matrix.shape == (2, 1) and np.isnan(matrix).all()
