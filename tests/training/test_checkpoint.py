"""A checkpoint directory belongs to one trial: another trial may not resume from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.errors import ConfigError
from taskgraph.training.checkpoint import CheckpointStore
from taskgraph.trial import TrialConfig

BASE = TrialConfig(
    target="synth_target", auxiliaries=("synth_related",), encoder="tiny-bert", max_steps=10
)


@pytest.mark.parametrize(
    ("other", "named"),
    [
        # the same task set with the other task as the target: its best weights and best
        # objective would be another task's
        (TrialConfig(target="synth_related", auxiliaries=("synth_target",), encoder="tiny-bert",
                     max_steps=10), "target synth_target"),
        (BASE.with_seed(7), "seed 0"),
        (TrialConfig(target="synth_target", auxiliaries=(), encoder="tiny-bert", max_steps=10),
         "tasks synth_related+synth_target"),
        (TrialConfig(target="synth_target", auxiliaries=("synth_related",), encoder="tiny-bert",
                     max_steps=20), "belongs to another trial"),
    ],
)  # fmt: skip
def test_another_trial_is_refused_the_directory(
    tmp_path: Path, other: TrialConfig, named: str
) -> None:
    CheckpointStore(directory=tmp_path, config=BASE)
    CheckpointStore(directory=tmp_path, config=BASE)  # the same trial resumes
    with pytest.raises(ConfigError, match="belongs to another trial") as refused:
        CheckpointStore(directory=tmp_path, config=other)
    assert named in str(refused.value)
