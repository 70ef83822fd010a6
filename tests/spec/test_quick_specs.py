"""The quick CPU variants in `searchspaces/quick/` ask the full studies' question on less.

Each is a study of its own (another name, so it never continues the full one) with the same
target and objective, candidates taken from the full spec, and the target step budget, so that
its trials compare like with like.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.spec import load_spec

SPECS = Path(__file__).resolve().parents[2] / "searchspaces"
QUICK = sorted((SPECS / "quick").glob("*.yaml"))


def test_every_real_data_spec_has_a_quick_variant() -> None:
    full = {p.name for p in SPECS.glob("*.yaml")} - {"demo.yaml"}
    assert {p.name for p in QUICK} == full


@pytest.mark.parametrize("path", QUICK, ids=lambda p: p.stem)
def test_quick_variant_asks_the_full_question_on_less(path: Path) -> None:
    quick = load_spec(path)
    full = load_spec(SPECS / path.name)
    assert quick.name == f"{full.name}_quick"
    assert (quick.target, quick.objective) == (full.target, full.objective)
    assert set(quick.candidate_names) <= set(full.candidate_names)
    assert quick.search.step_budget == "target"
    assert quick.search.max_steps.is_fixed and quick.training.eval_every is not None
    # Several evaluations, so `study show` can tell a baseline still rising from a flat one.
    assert quick.search.max_steps.fixed_value() >= 4 * quick.training.eval_every
