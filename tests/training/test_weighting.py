"""Loss weightings: equal, uncertainty (Kendall et al. 2018), PCGrad (Yu et al. 2020)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from taskgraph.errors import UnknownNameError
from taskgraph.training.weighting import LOSS_WEIGHTINGS, build_weighting
from taskgraph.training.weighting.pcgrad import project_conflicting


def test_registry_lists_known_names() -> None:
    assert {"equal", "uncertainty", "pcgrad"} <= set(LOSS_WEIGHTINGS.names())
    with pytest.raises(UnknownNameError, match="known: equal, pcgrad, uncertainty"):
        build_weighting("gradnorm-ish", tasks=["a"])


def test_equal_is_the_sum() -> None:
    weighting = build_weighting("equal", tasks=["a", "b"])
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(3.0)}
    assert float(weighting.combine(losses)) == 5.0


def test_uncertainty_formula_and_gradient() -> None:
    weighting = build_weighting("uncertainty", tasks=["a", "b"])
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.0, math.log(4.0)]))
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(8.0)}
    expected = 2.0 / 2 + 0.0 + 8.0 / (2 * 4.0) + math.log(4.0) / 2
    total = weighting.combine(losses)
    assert float(total.detach()) == pytest.approx(expected)
    total.backward()
    # d/ds [L e^-s / 2 + s / 2] = -L e^-s / 2 + 1/2: a = -0.5, b = -1 + 0.5
    assert weighting.log_vars.grad.tolist() == pytest.approx([-0.5, -0.5])
    assert weighting.task_weights() == pytest.approx({"a": 0.5, "b": 0.125})


def test_pcgrad_projection_by_hand() -> None:
    g1 = torch.tensor([1.0, 0.0])
    g2 = torch.tensor([-1.0, 1.0])  # conflicts with g1 (dot = -1)
    combined = project_conflicting(torch.stack([g1, g2]), [[1], [0]])
    # g1' = g1 - (-1 / 2) g2 = (0.5, 0.5); g2' = g2 - (-1 / 1) g1 = (0, 1)
    assert combined.tolist() == pytest.approx([0.5, 1.5])
    # No conflict: plain sum.
    g3 = torch.tensor([1.0, 1.0])
    assert project_conflicting(torch.stack([g1, g3]), [[1], [0]]).tolist() == [2.0, 1.0]


def test_pcgrad_backward_sets_projected_shared_grads() -> None:
    shared = nn.Parameter(torch.tensor([1.0, 1.0]))
    head_a = nn.Parameter(torch.tensor(1.0))
    head_b = nn.Parameter(torch.tensor(1.0))
    # grad of a wrt shared = (1, 0); of b = (-1, 1): they conflict.
    loss_a = shared[0] * head_a
    loss_b = (-shared[0] + shared[1]) * head_b
    weighting = build_weighting("pcgrad", tasks=["a", "b"], seed=0)
    total = weighting.backward({"a": loss_a, "b": loss_b}, shared=[shared], others=[head_a, head_b])
    assert float(total) == pytest.approx(1.0)
    assert shared.grad.tolist() == pytest.approx([0.5, 1.5])
    assert head_a.grad.item() == pytest.approx(1.0)  # d loss_a / d head_a = shared[0]
    assert head_b.grad.item() == pytest.approx(0.0)  # -1 + 1
    state = weighting.extra_state()
    other = build_weighting("pcgrad", tasks=["a", "b"], seed=5)
    other.load_extra_state(state)
    assert other.rng.bit_generator.state == weighting.rng.bit_generator.state


def test_pcgrad_leaves_a_shared_parameter_no_task_reads_without_a_gradient() -> None:
    # Two tasks (so the projection runs) and a shared parameter neither reads (e.g. encoder
    # layers above every task's layer in hierarchical sharing): it keeps grad None, as under
    # equal weighting, so AdamW neither decays it nor moves it by momentum.
    used = nn.Parameter(torch.tensor([1.0, 2.0]))
    unread = nn.Parameter(torch.tensor([5.0]))
    losses = {"a": (used * torch.tensor([1.0, 0.0])).sum(), "b": (used * used).sum()}
    build_weighting("pcgrad", tasks=["a", "b"]).backward(losses, shared=[used, unread], others=[])
    assert unread.grad is None
    assert used.grad is not None
    assert used.grad.tolist() == pytest.approx([3.0, 4.0])  # (1, 0) . (2, 4) > 0: no projection
    build_weighting("equal", tasks=["a", "b"]).backward(
        {"a": (used * used).sum(), "b": used.sum()}, shared=[used, unread], others=[]
    )
    assert unread.grad is None
