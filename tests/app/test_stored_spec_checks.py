"""A study stored under looser checks still resumes: the checks added since warn on resume.

`study resume` checks the stored spec, which nobody can edit: a refusal there ("remove
data_selection, or add candidates") left the study impossible to finish.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskgraph.app.studies.running import resumable_spec
from taskgraph.app.studies.specs import check_study_spec
from taskgraph.errors import SpecError
from taskgraph.spec import spec_from_dict
from taskgraph.testing import run_fake_study

SPEC: dict[str, Any] = {
    "name": "alone",
    "target": "synth_target",
    "candidates": ["synth_related"],
    "search": {
        "sharing": ["hard"],
        "auxiliaries": {"exclude": ["synth_related"]},
        "data_selection": {"features": ["jsd"]},
    },
    "sampler": {"name": "random", "seed": 0},
    "budget": {"trials": 1},
    "seeds": 1,
}


def test_a_stored_spec_that_newer_checks_refuse_resumes_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = run_fake_study(SPEC, f"sqlite:///{tmp_path / 'old.db'}")  # as stored before the check
    with pytest.raises(SpecError, match="no auxiliary tasks to select from"):
        check_study_spec(spec_from_dict(SPEC), source="spec.yaml")  # a new study: refused
    capsys.readouterr()
    spec = resumable_spec("alone", storage_url=url, trials=2)
    assert spec.budget.trials == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "warning: study 'alone': search.data_selection: the study has no auxiliary tasks"
    )
    assert err.count("\n") == 1


def test_a_stored_freeze_layers_beyond_the_encoder_warns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from taskgraph.search.checks import check_spec

    spec = spec_from_dict(
        {
            "name": "frz",
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": {"name": "tiny-bert"},
            "search": {"hyperparameters": {"freeze_layers": [0, 1, 50]}},
        }
    )
    with pytest.raises(SpecError, match="must be a whole number of layers in \\[0, 2\\]"):
        check_spec(spec, source="frz.yaml")
    check_spec(spec, source="study 'frz'", stored=True)
    assert capsys.readouterr().err.startswith(
        "warning: study 'frz': search.hyperparameters.freeze_layers: must be a whole number"
    )
