"""``sourcerank`` with task metadata (texts' embeddings, numeric features) and the metadata file format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taskgraph.affinity.estimators import SourceRankEstimator, make_estimator
from taskgraph.affinity.estimators.sourcerank import DEFAULT_FEATURES, metadata_alternatives
from taskgraph.affinity.evaluation import evaluate_source_ranking
from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.affinity.metadata import TaskMetadata, feature_matrix, load_task_metadata
from taskgraph.errors import ConfigError

from .test_sourcerank import _pair_table, _two_camps


def _golden_table() -> LongTable:
    rng = np.random.default_rng(7)
    tasks = [f"t{i}" for i in range(7)]
    rows = [LongRow(t, frozenset({t}), "val", 1.0, True) for t in tasks]
    for t in tasks:
        for s in tasks:
            if s != t and not (t == "t0" and s in ("t4", "t5", "t6")):
                rows.append(
                    LongRow(t, frozenset({t, s}), "val", 1.0 + float(rng.normal(0, 0.1)), True)
                )
    return LongTable(rows=rows, source="synthetic")


def test_sourcerank_without_metadata_predicts_as_before_the_metadata_options() -> None:
    # Predictions on a fixed table, recorded when the ridge's cross-validation stopped reading the
    # held-out rows and each target got its own draws (2026-12-04; before, from commit 0de23cd
    # on: -0.0486, 0.0358, -0.0267, -0.0064).
    records = _golden_table().to_records(split="val")
    queries = [{"t4"}, {"t5"}, {"t6"}, {"t4", "t5"}]
    before = [
        -0.03353589875134289,
        0.017176803896738802,
        -0.016721625588914556,
        -0.008179547427302045,
    ]
    plain = SourceRankEstimator().fit(records)
    assert plain.predict_many("t0", queries)[0].tolist() == pytest.approx(before, rel=1e-12, abs=0)
    # Metadata given but no metadata score chosen: bit for bit the same predictions.
    embeddings = {f"t{i}": np.eye(7)[i] for i in range(7)}
    features = {f"t{i}": {"x": float(i)} for i in range(7)}
    with_metadata = SourceRankEstimator(task_embeddings=embeddings, task_features=features).fit(
        records
    )
    assert np.array_equal(
        with_metadata.predict_many("t0", queries)[0], plain.predict_many("t0", queries)[0]
    )


def _camp_metadata(n: int = 12) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """Return embeddings and features that tell the two camps of ``_two_camps`` apart."""
    rng = np.random.default_rng(1)
    embeddings, features = {}, {}
    for i in range(n):
        camp = 1.0 if i < n // 2 else -1.0
        embeddings[f"t{i:02d}"] = np.array([camp, 0.0, 0.0]) + rng.normal(0.0, 0.1, 3)
        features[f"t{i:02d}"] = {
            "camp": camp + float(rng.normal(0.0, 0.1)),
            "noise": float(rng.normal()),
        }
    return embeddings, features


@pytest.mark.parametrize(
    ("score", "option"),
    [("text_knn", "task_embeddings"), ("feature_knn", "task_features")],
)
def test_metadata_similarity_finds_the_camp_that_one_observed_entry_cannot(
    score: str, option: str
) -> None:
    # With one observed entry the observed scores are silent and the prior averages the camps to
    # noise; similar targets (by text or by features) are in the target's camp.
    embeddings, features = _camp_metadata()
    metadata = {"task_embeddings": embeddings, "task_features": features}[option]
    table = _pair_table(_two_camps())
    options = {"n_observed": 1, option: metadata}
    without = evaluate_source_ranking(
        table,
        ["sourcerank"],
        n_observed=1,
        seeds=[0],
        options={"sourcerank": {**options, "features": ["popular_z"]}},
    )
    with_score = evaluate_source_ranking(
        table, ["sourcerank"], n_observed=1, seeds=[0],
        options={"sourcerank": {**options, "features": ["popular_z", score]}},
    )  # fmt: skip
    # (popular_z alone gets about 0.6 here: its learned weight is negative, because each target's
    # own camp has one member fewer among the others.)
    assert with_score["sourcerank"]["spearman"] > 0.9
    assert with_score["sourcerank"]["spearman"] > without["sourcerank"]["spearman"] + 0.25


def _quality_gains(
    rng: np.random.Generator,
) -> tuple[list[str], dict[str, float], dict[tuple[str, str], float]]:
    """Return 10 tasks, each one's quality, and gains by the source's quality plus noise.

    Every target gains by the source's quality, on its own scale, plus noise larger than the
    differences the popular prior can average out of 9 other targets.
    """
    tasks = [f"t{i:02d}" for i in range(10)]
    quality = {t: float(rng.normal()) for t in tasks}
    gains = {
        (t, s): 0.01 * (1 + i) * (quality[s] + float(rng.normal(0.0, 1.5)))
        for i, t in enumerate(tasks) for s in tasks if s != t
    }  # fmt: skip
    return tasks, quality, gains


def test_source_feature_ranks_sources_by_their_own_property() -> None:
    rng = np.random.default_rng(3)
    _, quality, gains = _quality_gains(rng)
    features = {t: {"quality": q, "unrelated": float(rng.normal())} for t, q in quality.items()}
    estimator = SourceRankEstimator(
        task_features=features, features=["popular_z", "source:quality", "source:unrelated"]
    ).fit(_pair_table(gains).to_records(split="val"))
    weights = estimator.describe()["weights"]
    assert weights["source:quality"] > 0.3
    assert abs(weights["source:unrelated"]) < weights["source:quality"] / 2


def test_tasks_the_metadata_does_not_cover_get_the_average_score() -> None:
    embeddings, features = _camp_metadata()
    del embeddings["t03"], features["t07"]
    estimator = make_estimator(
        "sourcerank", task_embeddings=embeddings, task_features=features,
        features=["popular_z", "text_similarity", "text_knn", "feature_similarity", "feature_knn", "source:camp"],
    ).fit(_pair_table(_two_camps()).to_records(split="val"))  # fmt: skip
    assert np.isfinite(estimator.predict_many("t03", [{"t07"}, {"t00"}])[0]).all()
    assert np.isfinite(estimator.scores[~np.eye(12, dtype=bool)]).all()


def test_metadata_scores_are_checked_against_the_metadata_given() -> None:
    with pytest.raises(ConfigError, match="need `task_embeddings`"):
        SourceRankEstimator(features=["popular_z", "text_similarity"])
    with pytest.raises(ConfigError, match="need `task_features`"):
        SourceRankEstimator(features=["feature_knn"])
    with pytest.raises(ConfigError, match="source:<name>"):
        SourceRankEstimator(task_features={"a": {"x": 1.0}}, features=["source:y"])
    assert SourceRankEstimator(
        task_features={"a": {"x": 1.0}}, features=["source:x"]
    ).feature_names == ["source:x"]


def test_feature_matrix_standardises_each_column_over_the_tasks_that_have_it() -> None:
    matrix, names = feature_matrix(
        ["a", "b", "c"], {"a": {"x": 1.0, "y": 5.0}, "b": {"x": 3.0, "y": 5.0}, "c": {"x": 5.0}}
    )
    assert names == ["x", "y"]
    assert matrix[:, 0].tolist() == pytest.approx([-np.sqrt(1.5), 0.0, np.sqrt(1.5)])
    assert matrix[:2, 1].tolist() == [0.0, 0.0]  # constant: 0
    assert np.isnan(matrix[2, 1])


def test_load_task_metadata_reads_texts_and_features(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({
        "source": {"repository": "x"},
        "tasks": {"a": {"texts": ["first", "second"], "features": {"f": 1, "g": -0.5}, "categories": ["c"]},
                  "b": {"features": {"f": 2.0}}},
    }))  # fmt: skip
    metadata = load_task_metadata(path)
    assert metadata == TaskMetadata(
        texts={"a": ["first", "second"]}, features={"a": {"f": 1.0, "g": -0.5}, "b": {"f": 2.0}}
    )
    assert metadata.feature_names == ["f", "g"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"tasks": {}}', "non-empty 'tasks'"),
        ('{"tasks": {"a": {"texts": "one string"}}}', "tasks.a.texts must be a list of strings"),
        (
            '{"tasks": {"a": {"features": {"f": "high"}}}}',
            "tasks.a.features.f must be a finite number, but got 'high'",
        ),
        (
            '{"tasks": {"a": {"features": {"f": true}}}}',
            "tasks.a.features.f must be a finite number",
        ),
    ],
)
def test_load_task_metadata_names_the_file_and_the_field(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(
        ConfigError, match=f"{path}.*{message}" if message != "not JSON" else "not JSON"
    ):
        load_task_metadata(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_task_metadata(tmp_path / "missing.json")


def test_alternatives_are_kept_only_when_the_cross_validation_prefers_them() -> None:
    records = _pair_table(_two_camps()).to_records(split="val")
    # The camps are found from the observed entries (observed_knn), which popular_z alone lacks.
    weak_first = SourceRankEstimator(features=["popular_z"], alternatives=[DEFAULT_FEATURES])
    described = weak_first.fit(records).describe()
    assert list(described["weights"]) == list(DEFAULT_FEATURES)
    scores = described["cv_by_features"]
    assert scores["+".join(DEFAULT_FEATURES)] > scores["popular_z"] + 0.2
    strong_first = SourceRankEstimator(alternatives=[["popular_z"]]).fit(records)
    assert list(strong_first.describe()["weights"]) == list(DEFAULT_FEATURES)
    # A list that only ties the first is not taken, and without alternatives nothing is weighed.
    tie = SourceRankEstimator(features=["popular_z"], alternatives=[["popular_z"]]).fit(records)
    assert list(tie.describe()["weights"]) == ["popular_z"]
    assert "cv_by_features" not in SourceRankEstimator().fit(records).describe()


def test_metadata_alternatives_of_pure_noise_are_rarely_kept() -> None:
    # Sources differ by a quality every target shares, seen through noisy gains; the task
    # metadata is three random numbers per task.  An alternative must beat the eight by more
    # than the paired standard error over targets, which chance alone passes about one time
    # in six (a one-sided t of 1).
    kept = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        tasks, _, gains = _quality_gains(rng)
        noise = {t: {f"n{k}": float(rng.normal()) for k in range(3)} for t in tasks}
        estimator = SourceRankEstimator(
            task_features=noise,
            alternatives=metadata_alternatives(texts=False, numeric_names=["n0", "n1", "n2"]),
            max_draws=10,
        ).fit(_pair_table(gains).to_records(split="val"))
        kept += any(f.startswith("source:") for f in estimator.describe()["weights"])
    assert kept <= 2


def test_metadata_alternatives_name_one_list_per_kind_and_both() -> None:
    assert metadata_alternatives(texts=False, numeric_names=[]) == []
    assert metadata_alternatives(texts=True, numeric_names=[]) == [[*DEFAULT_FEATURES, "text_knn"]]
    both = metadata_alternatives(texts=True, numeric_names=["b", "a"])
    assert both == [
        [*DEFAULT_FEATURES, "text_knn"],
        [*DEFAULT_FEATURES, "source:a", "source:b"],
        [*DEFAULT_FEATURES, "text_knn", "source:a", "source:b"],
    ]
