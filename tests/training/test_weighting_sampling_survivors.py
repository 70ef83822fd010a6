"""Loss weightings and task sampling: the cases a mutation audit found no test for.

Each test names the mistake it guards against; the hand-computed numbers follow the formulas
in the modules' docstrings (Kendall et al. 2018, Yu et al. 2020, the mixing schemes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from torch import nn

from taskgraph.errors import ConfigError
from taskgraph.training.sampling import TaskSampler
from taskgraph.training.weighting import build_weighting
from taskgraph.training.weighting import pcgrad as pcgrad_module
from taskgraph.training.weighting.pcgrad import project_conflicting
from taskgraph.training.weighting.uncertainty import UncertaintyWeighting
from taskgraph.trial import MixingConfig

# ------------------------------------------------------------------ uncertainty weighting


def test_uncertainty_starts_at_zero_log_variance() -> None:
    # s_t = 0 at the start: every task weighs 1/2 and the regulariser adds nothing.
    weighting = build_weighting("uncertainty", tasks=["a", "b"])
    assert weighting.task_weights() == pytest.approx({"a": 0.5, "b": 0.5})
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(4.0)}
    assert float(weighting.combine(losses).detach()) == pytest.approx(3.0)


def test_uncertainty_reads_each_tasks_own_log_variance() -> None:
    # A step holds only the tasks it drew, in any order, and the task list need not be sorted:
    # each loss must meet the s_t that task_weights reports for it.
    weighting = build_weighting("uncertainty", tasks=["b", "a"])
    assert isinstance(weighting, UncertaintyWeighting)
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([math.log(4.0), 0.0]))
    assert weighting.task_weights() == pytest.approx({"b": 0.125, "a": 0.5})
    only_a = weighting.combine({"a": torch.tensor(2.0)})
    assert float(only_a.detach()) == pytest.approx(2.0 / 2)
    only_b = weighting.combine({"b": torch.tensor(8.0)})
    assert float(only_b.detach()) == pytest.approx(8.0 / 8 + math.log(4.0) / 2)


# ------------------------------------------------------------------ the base class


@pytest.mark.parametrize("name", ["equal", "uncertainty", "pcgrad"])
def test_backward_returns_a_detached_loss(name: str) -> None:
    # The trainer sums the returned losses over steps: a tensor with a graph would keep every
    # step's graph alive.
    weighting = build_weighting(name, tasks=["a", "b"])
    shared = nn.Parameter(torch.tensor([1.0, 2.0]))
    losses = {"a": shared.sum(), "b": (shared * shared).sum()}
    total = weighting.backward(losses, shared=[shared], others=list(weighting.parameters()))
    assert not total.requires_grad
    assert shared.grad is not None


def test_equal_and_pcgrad_weigh_every_task_once() -> None:
    # The lookahead probe scales a reused gradient by these weights.
    for name in ("equal", "pcgrad"):
        assert build_weighting(name, tasks=["a", "b"]).task_weights() == {"a": 1.0, "b": 1.0}


# ------------------------------------------------------------------ PCGrad projection


def test_pcgrad_projects_the_already_projected_gradient() -> None:
    # Yu et al.'s loop updates g_i in place: the second conflict test uses the projected g_i.
    # g0 = (1, 0), g1 = (-1, 1), g2 = (0, -1), each task against the others in index order:
    # g0 -> (0.5, 0.5) by g1, which now conflicts with g2 -> (0.5, 0)  [g0 . g2 = 0 would not]
    # g1 -> (0, 1) by g0 -> (0, 0) by g2;  g2 -> unchanged by g0 -> (-0.5, -0.5) by g1.
    grads = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])
    combined = project_conflicting(grads, [[1, 2], [0, 2], [0, 1]])
    assert combined.tolist() == pytest.approx([0.0, -0.5])


def test_pcgrad_task_without_a_shared_gradient_projects_nothing() -> None:
    # A task that does not touch the shared parameters has an all-zero row: 0 / |0|^2 must
    # not turn the update into NaN.
    grads = torch.tensor([[1.0, -2.0], [0.0, 0.0]])
    combined = project_conflicting(grads, [[1], [0]])
    assert combined.tolist() == [1.0, -2.0]


def _linear_losses(
    shared: nn.Parameter, directions: Sequence[Sequence[float]]
) -> dict[str, torch.Tensor]:
    """Return losses ``c_t . shared`` (gradient ``c_t``) named t0, t1, ..."""
    return {f"t{t}": (shared * torch.tensor(list(c))).sum() for t, c in enumerate(directions)}


def test_pcgrad_splits_the_update_over_several_shared_parameters() -> None:
    # Task a uses w1 only (no gradient for w2), task b both; flattened over (w1, w2):
    # g_a = (1, 0, 0), g_b = (-1, 1, 2), g_a . g_b = -1:
    # g_a' = g_a + g_b / 6 = (5/6, 1/6, 1/3), g_b' = g_b + g_a = (0, 1, 2).
    w1 = nn.Parameter(torch.tensor([1.0, 1.0]))
    w2 = nn.Parameter(torch.tensor([1.0]))
    head = nn.Parameter(torch.tensor(3.0))
    losses = {
        "a": (w1 * torch.tensor([1.0, 0.0])).sum(),
        "b": (-w1[0] + w1[1] + 2 * w2[0]) * head / 3,
    }
    weighting = build_weighting("pcgrad", tasks=["a", "b"])
    weighting.backward(losses, shared=[w1, w2], others=[head])
    assert w1.grad is not None and w2.grad is not None and head.grad is not None
    assert w1.grad.tolist() == pytest.approx([5 / 6, 7 / 6])
    assert w2.grad.tolist() == pytest.approx([7 / 3])
    assert head.grad.item() == pytest.approx(2 / 3)  # (-1 + 1 + 2) / 3


def test_pcgrad_adds_to_gradients_already_there() -> None:
    # LossWeighting.backward accumulates into .grad, as loss.backward() does.
    shared = nn.Parameter(torch.tensor([1.0, 1.0]))
    shared.grad = torch.tensor([10.0, 20.0])
    losses = _linear_losses(shared, [[1.0, 0.0], [-1.0, 1.0]])
    build_weighting("pcgrad", tasks=["t0", "t1"]).backward(losses, shared=[shared], others=[])
    assert shared.grad.tolist() == pytest.approx([10.5, 21.5])  # + (0.5, 1.5), projected


def test_pcgrad_without_shared_parameters_is_the_plain_sum() -> None:
    head_a = nn.Parameter(torch.tensor(2.0))
    head_b = nn.Parameter(torch.tensor(-1.0))
    losses = {"a": head_a * 3.0, "b": head_b * head_b}
    weighting = build_weighting("pcgrad", tasks=["a", "b"])
    total = weighting.backward(losses, shared=[], others=[head_a, head_b])
    assert float(total) == pytest.approx(7.0)
    assert head_a.grad is not None and head_b.grad is not None
    assert (head_a.grad.item(), head_b.grad.item()) == pytest.approx((3.0, -2.0))


def test_pcgrad_with_one_task_is_a_plain_backward() -> None:
    # Nothing to project: the step is loss.backward(), so a shared parameter the task does not
    # use keeps no gradient (AdamW then leaves it alone instead of decaying it).
    used = nn.Parameter(torch.tensor([1.0, 2.0]))
    unused = nn.Parameter(torch.tensor([5.0]))
    weighting = build_weighting("pcgrad", tasks=["a", "b"])
    weighting.backward({"a": (used * used).sum()}, shared=[used, unused], others=[])
    assert used.grad is not None
    assert used.grad.tolist() == [2.0, 4.0]
    assert unused.grad is None


# ------------------------------------------------------------------ PCGrad projection order

# Three pairwise conflicting gradients in the plane (120 degrees apart).
_TRIANGLE = [[1.0, 0.0], [-0.5, math.sqrt(3) / 2], [-0.5, -math.sqrt(3) / 2]]


def _orders(monkeypatch: pytest.MonkeyPatch, seed: int, steps: int) -> list[list[list[int]]]:
    """Return the projection orders a seeded PCGrad weighting uses over ``steps`` steps."""
    seen: list[list[list[int]]] = []

    def recording(grads: torch.Tensor, order: Sequence[Sequence[int]]) -> torch.Tensor:
        seen.append([list(o) for o in order])
        return project_conflicting(grads, order)

    monkeypatch.setattr(pcgrad_module, "project_conflicting", recording)
    weighting = build_weighting("pcgrad", tasks=["t0", "t1", "t2"], seed=seed)
    for _ in range(steps):
        shared = nn.Parameter(torch.tensor([0.3, -0.2]))
        weighting.backward(_linear_losses(shared, _TRIANGLE), shared=[shared], others=[])
    return seen


def test_pcgrad_projects_each_task_on_the_others_in_a_fresh_random_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orders = _orders(monkeypatch, seed=0, steps=200)
    for step in orders:
        for i, others in enumerate(step):
            assert sorted(others) == [j for j in range(3) if j != i]  # never itself
    # The order changes from step to step ...
    assert {tuple(step[0]) for step in orders} == {(1, 2), (2, 1)}
    # ... and each task shuffles on its own (Yu et al., Algorithm 1): some steps' orders come
    # from no single permutation of the three tasks.
    shared_permutations = [
        [[j for j in perm if j != i] for i in range(3)] for perm in itertools.permutations(range(3))
    ]
    assert any(step not in shared_permutations for step in orders)


def test_pcgrad_order_follows_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    first = _orders(monkeypatch, seed=7, steps=20)
    assert _orders(monkeypatch, seed=7, steps=20) == first
    assert _orders(monkeypatch, seed=8, steps=20) != first


# ------------------------------------------------------------------ task sampling

SIZES = {"a": 900, "b": 100}


def _sampler(
    scheme: str = "proportional",
    *,
    sizes: dict[str, int] | None = None,
    total_steps: int = 100,
    seed: int = 0,
    **kwargs: object,
) -> TaskSampler:
    mixing = MixingConfig(scheme=scheme, **kwargs)  # type: ignore[arg-type]
    return TaskSampler(
        sizes=SIZES if sizes is None else sizes, mixing=mixing, total_steps=total_steps, seed=seed
    )


def test_annealed_probabilities_move_within_one_sampler() -> None:
    # The static schemes cache their distribution; the annealed one must not.
    sampler = _sampler("annealed", temperature=2.0)
    assert sampler.probabilities(0) == pytest.approx({"a": 0.75, "b": 0.25})
    assert sampler.probabilities(100) == pytest.approx({"a": 0.9, "b": 0.1})
    assert sampler.probabilities(0) == pytest.approx({"a": 0.75, "b": 0.25})


def test_annealing_stops_at_its_endpoints() -> None:
    sampler = _sampler("annealed", temperature=2.0, total_steps=10)
    assert sampler.probabilities(25) == pytest.approx(sampler.probabilities(10))
    assert sampler.probabilities(-3) == pytest.approx(sampler.probabilities(0))


@pytest.mark.parametrize("scheme", ["proportional", "annealed"])
def test_a_zero_step_budget_still_has_a_distribution(scheme: str) -> None:
    sampler = _sampler(scheme, temperature=2.0, total_steps=0)
    expected = {"a": 0.75, "b": 0.25} if scheme == "annealed" else {"a": 0.9, "b": 0.1}
    assert sampler.probabilities(0) == pytest.approx(expected)


def test_draws_do_not_depend_on_the_order_of_the_sizes() -> None:
    forward = _sampler("uniform", sizes={"a": 900, "b": 100}, seed=4).sample(0, 200)
    backward = _sampler("uniform", sizes={"b": 100, "a": 900}, seed=4).sample(0, 200)
    assert forward == backward
    assert _sampler(sizes={"b": 100, "a": 900}).probabilities() == pytest.approx(
        {"a": 0.9, "b": 0.1}
    )


def test_draws_follow_the_seed() -> None:
    assert _sampler("uniform", seed=1).sample(0, 50) == _sampler("uniform", seed=1).sample(0, 50)
    assert _sampler("uniform", seed=1).sample(0, 50) != _sampler("uniform", seed=2).sample(0, 50)


def test_a_single_task_is_drawn_count_times() -> None:
    sampler = _sampler(sizes={"only": 5})
    assert sampler.sample(3, 4) == ["only"] * 4
    assert sampler.plan("only", 3, 2) == [["only", "only"]] * 3


def test_plan_ends_at_the_target_steps_th_step_that_draws_the_target() -> None:
    # Two draws a step: a step that draws the target twice is still one target update.
    sampler = _sampler("uniform", seed=5)
    plan = sampler.plan("b", 30, 2)
    assert sum("b" in step for step in plan) == 30
    assert "b" in plan[-1]
    assert any(step == ["b", "b"] for step in plan)  # the case that must count once
    assert all(len(step) == 2 for step in plan)


def test_annealed_plan_measures_progress_in_target_steps() -> None:
    sampler = _sampler("annealed", temperature=4.0, seed=2)
    scheme = sampler.scheme
    progress: list[float] = []

    def recording(sizes: np.ndarray, temperature: float, at: float) -> np.ndarray:
        progress.append(at)
        return scheme(sizes, temperature, at)

    sampler.scheme = recording
    plan = sampler.plan("b", 5, 1)
    assert len(plan) > 5  # the auxiliary took steps too
    # After the two bounds (progress 0 and 1), one lookup per step at done / target_steps.
    assert progress[:2] == [0.0, 1.0]
    during = progress[2:]
    assert len(during) == len(plan)
    assert set(during) == {0.0, 0.2, 0.4, 0.6, 0.8}
    assert during == sorted(during)


def test_plan_refuses_a_target_that_annealing_makes_too_rare() -> None:
    # T = 2: p_target = 1 / (1 + sqrt(2000)) = 0.022 at the start, but 1 / 2001 at the end.
    sampler = _sampler("annealed", sizes={"t": 1, "aux": 2000}, temperature=2.0)
    assert sampler.probabilities(0)["t"] > 0.02
    with pytest.raises(ConfigError, match=r"'t' is drawn with probability 0\.0005"):
        sampler.plan("t", 1)


@pytest.mark.parametrize("size", [1, 2])  # p = 1e-3 exactly, then 2e-3
def test_plan_accepts_a_target_drawn_one_time_in_a_thousand(size: int) -> None:
    sampler = _sampler(sizes={"t": size, "aux": 1000 - size}, seed=1)
    plan = sampler.plan("t", 1)
    assert plan[-1] == ["t"]


def test_plan_refuses_a_target_outside_the_task_set() -> None:
    with pytest.raises(ConfigError, match="target 'c' is not among the sampled tasks"):
        _sampler().plan("c", 3)


def test_a_task_without_examples_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="task 'b' has no training examples"):
        _sampler(sizes={"a": 5, "b": 0})


def test_a_negative_mixing_weight_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mixing weight of 'b' must be >= 0 and finite"):
        _sampler("uniform", weights={"b": -1.0})
