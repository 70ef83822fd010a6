"""``study validate`` and ``study run`` refuse, with one line and exit 2, writing nothing, what
used to fail the trials after the study was written: an eval split of unlabeled examples
(RTE's ``test_unlabeled``), and head options for a task the study does not have."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()

SPEC = """\
name: {name}
target: {target}
objective: {{metric: accuracy, split: dev, direction: maximize}}
candidates: {candidates}
encoder: {{name: tiny-bert, max_length: 16}}
search: {{sharing: [hard], max_steps: 4, batch_size: 4}}
training: {{eval_splits: {eval_splits}, hyperparameters: {hyperparameters}}}
budget: {{trials: 2}}
sampler: {{name: random, seed: 0}}
"""


def write_rte(root: Path) -> Path:
    """Write the catalog task ``rte``'s three files; ``test.tsv`` unlabeled (``-1``), as GLUE's."""
    folder = root / "rte"
    folder.mkdir(parents=True)
    header = "sentence1\tsentence2\tlabel\tidx"
    for split, label in (("train", None), ("dev", None), ("test", "-1")):
        rows = [header] + [
            f"a premise {i}\ta hypothesis {i}\t{label if label else i % 2}\t{i}" for i in range(8)
        ]
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def write_spec(
    tmp_path: Path,
    *,
    name: str = "check",
    target: str = "rte",
    candidates: str = "[synth_related]",
    eval_splits: str = "[dev]",
    hyperparameters: str = "{}",
) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        SPEC.format(
            name=name,
            target=target,
            candidates=candidates,
            eval_splits=eval_splits,
            hyperparameters=hyperparameters,
        )
    )
    return path


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "valid" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_an_unlabeled_eval_split_is_refused_by_validate_and_run(tmp_path: Path) -> None:
    data = write_rte(tmp_path / "data")
    spec = write_spec(tmp_path, eval_splits="[dev, test_unlabeled]")
    line = refused("study", "validate", str(spec), "--data", str(data))
    assert line == (
        f"error: {spec}: training.eval_splits: split 'test_unlabeled' of task rte is unlabeled "
        "(example 0 of rte/test.tsv has no label), so it cannot be scored; every task is "
        "scored on each eval split it has: remove test_unlabeled"
    )
    db = tmp_path / "run.db"
    run_line = refused(
        "study", "run", str(spec), "--data", str(data), "--storage", f"sqlite:///{db}", "--quiet"
    )
    assert run_line == line
    assert not db.exists()


def test_an_auxiliarys_unlabeled_eval_split_is_refused_too(tmp_path: Path) -> None:
    # Every task of a trial is scored on the eval splits it has, not the target only.
    data = write_rte(tmp_path / "data")
    (data / "sst2").mkdir()
    rows = "sentence\tlabel\n" + "".join(f"a film {i}\t{i % 2}\n" for i in range(8))
    for split in ("train", "dev", "test"):
        (data / "sst2" / f"{split}.tsv").write_text(rows, encoding="utf-8")
    spec = write_spec(
        tmp_path,
        target="sst2",
        candidates="[rte]",
        eval_splits="[dev, test_unlabeled]",
    )
    line = refused("study", "validate", str(spec), "--data", str(data))
    assert "split 'test_unlabeled' of task rte is unlabeled" in line, line


def test_labeled_eval_splits_are_valid(tmp_path: Path) -> None:
    data = write_rte(tmp_path / "data")
    spec = write_spec(tmp_path, eval_splits="[dev]")
    result = runner.invoke(app, ["study", "validate", str(spec), "--data", str(data)])
    assert result.exit_code == 0, result.stderr


def test_head_options_of_a_task_not_in_the_study_are_refused_by_run(tmp_path: Path) -> None:
    data = write_rte(tmp_path / "data")
    spec = write_spec(tmp_path, hyperparameters="{head_options: {wnut17: {crf: true}}}")
    db = tmp_path / "run.db"
    line = refused(
        "study", "run", str(spec), "--data", str(data), "--storage", f"sqlite:///{db}", "--quiet"
    )
    assert line == (
        f"error: {spec}: training.hyperparameters.head_options.wnut17: not a task of the "
        "study, so its head options would be ignored; the study's tasks: rte, synth_related"
    )
    assert not db.exists()


def test_an_unlabeled_objective_split_is_refused(tmp_path: Path) -> None:
    data = write_rte(tmp_path / "data")
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("split: dev", "split: test_unlabeled"))
    line = refused("study", "validate", str(spec), "--data", str(data))
    assert line.startswith(f"error: {spec}: objective.split: split 'test_unlabeled' of task rte")
    assert line.endswith("the objective is read from it: name a labeled split"), line


def test_entity_scores_of_plain_tags_are_refused_by_validate_and_run(tmp_path: Path) -> None:
    # `scheme: none` reads IOBES or POS tags as plain labels; f1 of them failed every trial
    # after the study was written ("entity scores need IOB tags ... has 'S-PER'").
    data = tmp_path / "iobes"
    data.mkdir()
    for split in ("train", "dev"):
        (data / f"{split}.tsv").write_text("John\tS-PER\nran\tO\n\n" * 4, encoding="utf-8")
    spec = write_spec(tmp_path, target="synth_target", candidates="[my_tags]")
    task = (
        "tasks:\n  - {name: my_tags, format: iob, type: token_tagging, label_field: ner, "
        f"path: {data}, reader_options: {{scheme: none}}, metrics: [accuracy, f1]}}\n"
    )
    spec.write_text(spec.read_text() + task)
    line = refused("study", "validate", str(spec))
    assert line == (
        f"error: {spec}: tasks[0]: `metrics` has entity score 'f1', but `reader_options.scheme` "
        "is 'none' (tags are plain labels, not IOB spans): use 'accuracy', or set "
        "`reader_options.scheme` to 'iob2' or 'iob1'"
    )
    db = tmp_path / "run.db"
    assert refused("study", "run", str(spec), "--storage", f"sqlite:///{db}", "--quiet") == line
    assert not db.exists()
    spec.write_text(spec.read_text().replace("metrics: [accuracy, f1]", "metrics: [accuracy]"))
    result = runner.invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code == 0, result.stderr
