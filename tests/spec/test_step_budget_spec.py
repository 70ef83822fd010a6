"""`search.step_budget`: target steps by default; studies made before the field keep going."""

from __future__ import annotations

from typing import Any

import pytest

from taskgraph.errors import SpecError
from taskgraph.spec import spec_from_dict
from taskgraph.trial import TrialConfig, config_hash

BASE: dict[str, Any] = {"name": "s", "target": "synth_target", "candidates": ["synth_related"]}


def test_default_is_the_target_budget_and_unknown_values_are_refused() -> None:
    assert spec_from_dict(BASE).search.step_budget == "target"
    with pytest.raises(SpecError, match="step_budget"):
        spec_from_dict({**BASE, "search": {"step_budget": "target_steps"}})


def test_a_study_stored_before_the_field_continues_under_the_total_budget() -> None:
    total = spec_from_dict({**BASE, "search": {"step_budget": "total"}})
    # What search_hash() was before `step_budget` existed: the dump without the field.
    # (`rows`, added later, is left out when empty)
    dump = total.model_dump(
        mode="json", exclude={"budget", "runner", "storage", "description", "rows"}
    )
    del dump["search"]["step_budget"]
    del dump["search"]["data_selection"]  # nor `data_selection`, added later (None: left out)
    assert total.search_hash() == config_hash(dump)[:16]
    # The target budget is another study: it must not silently continue an old one.
    assert spec_from_dict(BASE).search_hash() != total.search_hash()


def test_a_config_stored_before_the_field_reads_back_as_total() -> None:
    data = TrialConfig(target="synth_target", auxiliaries=("synth_related",)).to_dict()
    assert TrialConfig.from_dict(data).step_budget == "target"
    del data["step_budget"]
    assert TrialConfig.from_dict(data).step_budget == "total"
