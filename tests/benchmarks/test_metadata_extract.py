"""``benchmarks/metadata/extract.py`` on tiny repositories built here (CI has no mirror of the authors' ones)."""

from __future__ import annotations

import json
import pickle
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from taskgraph.affinity.metadata import load_task_metadata


@pytest.fixture(scope="module")
def extract(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("metadata/extract.py")


def _train_log(task: str, slope_per_1000: float, start: float = 5.0, horizon: int = 2000) -> str:
    # A loss falling linearly: every slope is the given one; a restarted run repeats iterations 10-30.
    lines = [f"Iter {i}, task {task}, loss 99.0" for i in (10, 20, 30)]
    lines += [
        f"Iter {i}, task {task}, loss {start + slope_per_1000 * i / 1000}"
        for i in range(10, horizon + 1, 10)
    ]
    return "\n".join(lines) + "\n"


def _dev_log(task: str, f1: list[float], losses: list[float]) -> str:
    return "".join(
        f"Iter {100 * (k + 1)}, task {task}, loss {loss}, acc 0.5, f1 {value}, p 0.5, r 0.5\n"
        for k, (value, loss) in enumerate(zip(f1, losses, strict=True))
    )


def test_curve_features_read_slopes_plateau_and_baseline(extract: ModuleType) -> None:
    f1 = [
        0.1,
        0.3,
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
        0.95,
        0.949,
        0.95,
    ]  # within 1 % of the best from 800 on
    losses = [3.0, 2.5, 2.0, 1.5, 1.2, 1.1, 1.0, 1.05, 1.1, 1.2]  # lowest at 700
    features = extract.curve_features(
        _train_log("a", -0.2), _dev_log("a", f1, losses), horizon=1000
    )
    for p in (10, 20, 30, 50, 70):
        assert features[f"loss_slope_{p}"] == pytest.approx(
            -0.2
        )  # the repeated 99.0 lines were replaced
    assert features["loss_log_slope"] < 0
    assert features["dev_f1"] == 0.95
    assert features["dev_f1_best"] == 0.95
    assert features["dev_plateau_at"] == pytest.approx(0.8)
    assert features["dev_f1_late_gain"] == pytest.approx(0.95 - 0.7)  # f1 at 1000 minus at 500
    assert features["dev_loss_min_at"] == pytest.approx(0.7)
    # dev loss at the end minus the mean training loss of the last 5 % (950..1000)
    tail = np.mean([5.0 - 0.2 * i / 1000 for i in range(950, 1001, 10)])
    assert features["generalisation_gap"] == pytest.approx(1.2 - tail, abs=1e-6)


def test_parse_log_names_a_malformed_line(extract: ModuleType) -> None:
    with pytest.raises(ValueError, match="line 2: expected 'Iter N"):
        extract.parse_log("Iter 10, task a, loss 1.0\nloss went down\n")


def _bingel_repo(root: Path) -> None:
    for task, slope in (("a", -0.1), ("b", -0.3)):
        folder = root / "logs" / task
        folder.mkdir(parents=True)
        (folder / "loss_tr.log").write_text(_train_log(task, slope, horizon=60_000))
        f1 = [0.2 + 0.001 * k for k in range(600)]
        (folder / "loss_dv.log").write_text(_dev_log(task, f1, [1.0] * 600))
    pair = root / "logs" / "a_b"  # the measurement itself: must never be read
    pair.mkdir()
    (pair / "loss_dv.log").write_text("not a log at all\n")


def _taskweb_repo(root: Path) -> None:
    natinstruct = root / "data" / "natinstruct"
    natinstruct.mkdir(parents=True)
    (natinstruct / "x.json").write_text(json.dumps({
        "Categories": ["Textual Entailment"], "Definition": ["Decide   whether\nthe premise entails it."],
        "Positive Examples": [{"input": "p", "output": "yes"}],
    }))  # fmt: skip
    prompts = {
        "x": [
            {"input": f"x example {i}", "output": "yes", "choices": "['yes', 'no']"}
            for i in range(40)
        ],
        "y": [{"input": "y " + "long " * 100, "output": "no", "choices": "None"}],
    }
    (root / "data" / "prompts").mkdir(parents=True)
    (root / "data" / "prompts" / "prompt_info_32.p").write_bytes(pickle.dumps(prompts))


def test_extract_writes_metadata_files_the_library_reads(
    extract: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bingel, taskweb, out = tmp_path / "bingel", tmp_path / "taskweb", tmp_path / "out"
    _bingel_repo(bingel)
    _taskweb_repo(taskweb)
    monkeypatch.setattr(extract, "BINGEL_TASKS", ("a", "b"))  # the fixture's tasks
    monkeypatch.setattr(extract, "TASKWEB_TASKS", ("x", "y"))
    extract.main(["--bingel", str(bingel), "--taskweb", str(taskweb), "--out", str(out)])
    curves = load_task_metadata(out / "bingel2017_eacl.json")
    assert sorted(curves.features) == ["a", "b"]
    assert curves.features["a"]["loss_slope_30"] == pytest.approx(-0.1)
    assert curves.features["b"]["loss_slope_30"] == pytest.approx(-0.3)
    assert curves.features["a"]["dev_f1"] == pytest.approx(
        0.2 + 0.001 * 499
    )  # at 50k batches, not 60k
    document = json.loads((out / "taskweb2023_kim.json").read_text())
    assert document["source"] == {
        "repository": "https://github.com/danieljkim0118/TaskWeb",
        "commit": None,
    }
    x, y = document["tasks"]["x"], document["tasks"]["y"]
    assert x["texts"][0] == "Decide whether the premise entails it."
    assert x["texts"][1:] == [f"x example {i}" for i in (0, 10, 20, 29, 39)]  # spread over the list
    assert x["categories"] == ["Textual Entailment"] and x["definition"] is True
    assert y["definition"] is False and len(y["texts"]) == 1
    assert len(y["texts"][0]) <= 300 and y["texts"][0].endswith("long...")  # cut short
    assert load_task_metadata(out / "taskweb2023_kim.json").texts["y"] == y["texts"]


def test_extract_reads_a_bare_git_directory(extract: ModuleType, tmp_path: Path) -> None:
    work = tmp_path / "work"
    _bingel_repo(work)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    # git is part of every checkout of this project (CI clones it): no skip without it.
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "logs"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(tmp_path / "bare")], check=True)
    reader = extract.RepositoryReader(tmp_path / "bare")
    assert reader.commit() is not None and len(reader.commit()) == 40
    document = extract.bingel_metadata(reader, tasks=("a",))
    assert document["tasks"]["a"]["features"]["loss_slope_50"] == pytest.approx(-0.1)
    with pytest.raises(FileNotFoundError, match=r"logs/c/loss_tr\.log"):
        extract.bingel_metadata(reader, tasks=("c",))


def test_prompt_pickles_naming_a_class_are_refused(extract: ModuleType, tmp_path: Path) -> None:
    root = tmp_path / "taskweb"
    _taskweb_repo(root)
    (root / "data" / "prompts" / "prompt_info_32.p").write_bytes(pickle.dumps({"x": [Path("p")]}))
    with pytest.raises(pickle.UnpicklingError, match="plain data only"):
        extract.taskweb_metadata(extract.RepositoryReader(root), tasks=("x",))
