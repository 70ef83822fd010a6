"""Lookahead affinity on a model whose losses are known in closed form."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from taskgraph.tasks.features import EncodedSplit
from taskgraph.tasks.types import TaskType
from taskgraph.training import BatchStream, LookaheadAffinity, TaskTensors


class Output:
    def __init__(self, loss: torch.Tensor) -> None:
        self.loss = loss


class Quadratic(nn.Module):
    """Shared theta (2,), no heads.  L_helper = (theta0 - 1)^2 + (theta1 - 2)^2;
    L_offset = (theta0 - 1)^2 + 100: the same slope in theta0, a large constant loss."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(2))

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> Output:
        t = self.theta
        if task == "helper":
            return Output((t[0] - 1) ** 2 + (t[1] - 2) ** 2)
        return Output((t[0] - 1) ** 2 + 100.0)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.theta]


def _stream() -> BatchStream:
    split = EncodedSplit(
        task_type=TaskType.SENTENCE_CLASSIFICATION,
        features=[{"input_ids": [1, 2], "labels": 0}] * 4,
        example_index=[0, 1, 2, 3],
        n_examples=4,
    )
    return BatchStream(
        tensors=TaskTensors.from_encoded(split, pad_token_id=0), batch_size=2, seed=0
    )


def _affinity(model: Quadratic) -> LookaheadAffinity:
    tasks = ["helper", "offset"]
    return LookaheadAffinity(
        model=model,
        tasks=tasks,
        streams={t: _stream() for t in tasks},
        shared=model.shared_parameters(),
        device=torch.device("cpu"),
    )


def _loss(task: str, theta: torch.Tensor) -> float:
    if task == "helper":
        return float((theta[0] - 1) ** 2 + (theta[1] - 2) ** 2)
    return float((theta[0] - 1) ** 2 + 100.0)


def _adam_next_update(
    optimizer: torch.optim.Optimizer, param: nn.Parameter, grad: torch.Tensor, *, lr: float
) -> torch.Tensor:
    """Return ``param`` after the update torch's Adam makes next on ``grad`` alone: the
    optimizer's second moment and step count, no momentum (beta1 = 0), no weight decay."""
    state = optimizer.state[param]
    copy = nn.Parameter(param.detach().clone())
    adam = torch.optim.Adam([copy], lr=lr, betas=(0.0, 0.999), eps=1e-8)
    adam.state[copy] = {
        "step": state["step"].clone(),
        "exp_avg": torch.zeros_like(copy),
        "exp_avg_sq": state["exp_avg_sq"].clone(),
    }
    copy.grad = grad.clone()
    adam.step()
    return copy.detach()


def test_values_match_the_closed_form_and_orientation() -> None:
    model = Quadratic()
    affinity = _affinity(model)
    lr = 0.1
    matrix = affinity.probe(optimizer=None, lr=lr)
    theta = torch.zeros(2)
    # gradients at 0: helper (-2, -4), offset (-2, 0); first Adam step = lr * sign(g)
    steps = {"helper": torch.tensor([-lr, -lr]), "offset": torch.tensor([-lr, 0.0])}
    for i, source in enumerate(affinity.tasks):
        moved = theta - steps[source]
        for j, target in enumerate(affinity.tasks):
            expected = 1 - _loss(target, moved) / _loss(target, theta)
            assert float(matrix[i, j]) == pytest.approx(expected, rel=1e-5)
    # rows are the stepping task, columns the measured one: the offset task's column is tiny
    values = affinity.result().values  # type: ignore[union-attr]
    assert values[0][0] > 20 * values[0][1] > 0
    assert values[1][0] > 20 * values[1][1] > 0
    assert torch.equal(model.theta.detach(), torch.zeros(2))  # the model never moved


def test_adam_state_preconditions_the_step_and_results_average() -> None:
    model = Quadratic()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.0)
    model(task="helper", batch={}).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    affinity = _affinity(model)
    before = model.theta.detach().clone()
    first = affinity.probe(optimizer=optimizer, lr=0.05)
    state = optimizer.state[model.theta]
    grad = torch.autograd.grad(model("offset", {}).loss, model.theta)[0]
    # Adam's next update on this gradient alone: v joins g^2 before the denominator is taken
    v_next = 0.999 * state["exp_avg_sq"] + 0.001 * grad * grad
    denominator = (v_next / (1 - 0.999 ** (float(state["step"]) + 1))).sqrt() + 1e-8
    moved = before - 0.05 * grad / denominator
    assert torch.allclose(moved, _adam_next_update(optimizer, model.theta, grad, lr=0.05))
    expected = 1 - _loss("helper", moved) / _loss("helper", before)
    assert float(first[1, 0]) == pytest.approx(expected, rel=1e-5)
    second = affinity.probe(optimizer=optimizer, lr=0.05)
    result = affinity.result()
    assert result is not None and result.n_probes == 2 and result.tasks == ["helper", "offset"]
    assert result.values[1][0] == pytest.approx(float((first[1, 0] + second[1, 0]) / 2))
    restored = _affinity(model)
    restored.load_state_dict(affinity.state_dict())
    assert restored.result() == result


def test_no_probe_no_matrix() -> None:
    assert _affinity(Quadratic()).result() is None


class Embedding(nn.Module):
    """A word-embedding-sized shared matrix: each task pulls the rows of its tokens to a value."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.linspace(-1, 1, 5000 * 3).reshape(5000, 3))

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> Output:
        rows = torch.tensor([1, 2, 3]) if task == "helper" else torch.tensor([3, 4000])
        goal = 1.0 if task == "helper" else -1.0
        return Output(((self.table[rows] - goal) ** 2).sum())

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.table]


def test_row_sparse_steps_match_dense_steps_and_restore_the_table() -> None:
    model = Embedding()
    original = model.table.detach().clone()
    tasks = ["helper", "offset"]
    affinity = LookaheadAffinity(
        model=model,
        tasks=tasks,
        streams={t: _stream() for t in tasks},
        shared=model.shared_parameters(),
        device=torch.device("cpu"),
    )
    assert affinity.sparse == [True]
    matrix = affinity.probe(optimizer=None, lr=0.05)
    assert torch.equal(model.table.detach(), original)
    for i, source in enumerate(tasks):
        grad = torch.autograd.grad(model(source, {}).loss, model.table)[0]
        moved = original - 0.05 * grad / (grad.abs() + 1e-8)
        for j, target in enumerate(tasks):
            with torch.no_grad():
                before = float(model(target, {}).loss)
                model.table.copy_(moved)
                after = float(model(target, {}).loss)
                model.table.copy_(original)
            assert float(matrix[i, j]) == pytest.approx(1 - after / before, rel=1e-5)


def test_row_sparse_steps_after_an_update_are_adams_next_update_on_the_touched_rows() -> None:
    model = Embedding()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.0)
    model("helper", {}).loss.backward()  # rows 1-3 get a second moment; row 4000 none
    optimizer.step()
    optimizer.zero_grad()
    original = model.table.detach().clone()
    tasks = ["helper", "offset"]
    affinity = LookaheadAffinity(
        model=model,
        tasks=tasks,
        streams={t: _stream() for t in tasks},
        shared=model.shared_parameters(),
        device=torch.device("cpu"),
    )
    matrix = affinity.probe(optimizer=optimizer, lr=0.05)
    assert torch.equal(model.table.detach(), original)
    for i, source in enumerate(tasks):
        grad = torch.autograd.grad(model(source, {}).loss, model.table)[0]
        moved = _adam_next_update(optimizer, model.table, grad, lr=0.05)
        assert torch.equal(moved[grad == 0], original[grad == 0])  # untouched rows stay
        # no entry moves by more than Adam's bound at its second update
        assert float((moved - original).abs().max()) <= 0.05 * math.sqrt(1.999) * (1 + 1e-6)
        for j, target in enumerate(tasks):
            with torch.no_grad():
                before = float(model(target, {}).loss)
                model.table.copy_(moved)
                after = float(model(target, {}).loss)
                model.table.copy_(original)
            assert float(matrix[i, j]) == pytest.approx(1 - after / before, rel=1e-5)


class Untouched(nn.Module):
    """Shared theta (2,).  ``trained`` = (theta0 - 1)^2 never moves theta1, so training on it
    leaves theta1's second moment at 0; ``pull`` = 1e4 (theta1 - 1)^2 has a large gradient
    there; ``meter`` = 1 - theta1 measures theta1's move exactly (Z(i -> meter) = the move)."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(2))

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> Output:
        t = self.theta
        if task == "trained":
            return Output((t[0] - 1) ** 2)
        if task == "pull":
            return Output(1e4 * (t[1] - 1) ** 2)
        return Output(1 - t[1])

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.theta]


@pytest.mark.parametrize("second_moment", [0.0, 1e-20])
def test_entries_without_a_second_moment_move_at_most_as_far_as_adam_moves_them(
    second_moment: float,
) -> None:
    model = Untouched()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.0)
    for _ in range(2):
        model("trained", {}).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    state = optimizer.state[model.theta]
    assert float(state["exp_avg_sq"][1]) == 0.0
    state["exp_avg_sq"][1] = second_moment
    tasks = ["trained", "pull", "meter"]
    affinity = LookaheadAffinity(
        model=model,
        tasks=tasks,
        streams={t: _stream() for t in tasks},
        shared=model.shared_parameters(),
        device=torch.device("cpu"),
    )
    lr = 0.5
    matrix = affinity.probe(optimizer=optimizer, lr=lr)
    move = float(matrix[1, 2])  # Z(pull -> meter) = how far pull's step moved theta1
    # Adam's third update moves an entry by at most lr * sqrt((1 - beta2^3) / (1 - beta2))
    # (its g enters its own v); the current v alone (~0 here) would let it move ~lr * g / eps.
    bound = lr * math.sqrt((1 - 0.999**3) / (1 - 0.999))
    assert 0.99 * bound < move <= bound * (1 + 1e-6)
    grad = torch.autograd.grad(model("pull", {}).loss, model.theta)[0]
    expected = model.theta.detach() - _adam_next_update(optimizer, model.theta, grad, lr=lr)
    assert move == pytest.approx(-float(expected[1]), rel=1e-5)
    assert bool(torch.isfinite(matrix).all()) and float(matrix.abs().max()) < 10


class TinyEncoderTasks(nn.Module):
    """The tiny random BERT shared by a sentence-pair classifier (``pair``: the [CLS] state) and
    a span task (``span``: a softmax over the positions, as SQuAD's start logits).  A constant
    added to every position's state shifts every span logit alike, so the span loss leaves the
    last LayerNorm's bias (and parts of the attention) with a gradient near 0."""

    def __init__(self) -> None:
        super().__init__()
        from taskgraph.models.encoders import load_encoder

        options = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
        self.encoder = load_encoder("tiny-bert", options=options).model
        self.pair = nn.Linear(32, 2)
        self.span = nn.Linear(32, 1)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> Output:
        hidden = self.encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        if task == "pair":
            logits = self.pair(hidden[:, 0])
        else:
            logits = self.span(hidden).squeeze(-1).masked_fill(batch["attention_mask"] == 0, -1e4)
        return Output(nn.functional.cross_entropy(logits, batch["labels"]))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())


def _sentences(length: int, seed: int) -> BatchStream:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (16, length), generator=generator).tolist()
    split = EncodedSplit(
        task_type=TaskType.SENTENCE_CLASSIFICATION,
        features=[{"input_ids": row, "labels": k % 2} for k, row in enumerate(ids)],
        example_index=list(range(16)),
        n_examples=16,
    )
    return BatchStream(
        tensors=TaskTensors.from_encoded(split, pad_token_id=0), batch_size=4, seed=seed
    )


def test_probes_early_in_a_joint_run_of_a_tiny_encoder_stay_in_a_sane_range() -> None:
    # After span steps, the entries the span loss cannot move (the last LayerNorm's bias) have
    # a second moment near 0: a step of the pair task divided by the current one alone moves
    # them by up to lr * g / eps and blows the pair loss up (Z of -900 and -3e8 were seen on
    # MRPC + SQuAD 2.0 with the tiny BERT, lookahead_every=2).
    torch.manual_seed(0)
    model = TinyEncoderTasks()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tasks = ["pair", "span"]
    affinity = LookaheadAffinity(
        model=model,
        tasks=tasks,
        streams={t: _sentences(24, seed=1) for t in tasks},
        shared=model.shared_parameters(),
        device=torch.device("cpu"),
    )
    training = {t: _sentences(24, seed=2) for t in tasks}
    probes = []
    for task in ["span", "span", "pair", "span"]:
        model(task, training[task].next_batch()[0]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        probes.append(affinity.probe(optimizer=optimizer, lr=1e-3))
    for matrix in probes:
        assert bool(torch.isfinite(matrix).all())
        assert float(matrix.abs().max()) < 10, matrix
    # each task's own step still lowers its own loss
    result = affinity.result()
    assert result is not None and all(result.values[i][i] > 0 for i in range(2))


def test_measuring_one_column_gives_that_column_and_nan_elsewhere() -> None:
    model = Quadratic()
    full = _affinity(model).probe(optimizer=None, lr=0.1)
    tasks = ["helper", "offset"]
    screen = LookaheadAffinity(
        model=model,
        tasks=tasks,
        streams={t: _stream() for t in tasks},
        shared=model.shared_parameters(),
        device=torch.device("cpu"),
        measure=["helper"],
    )
    matrix = screen.probe(optimizer=None, lr=0.1)
    assert torch.allclose(matrix[:, 0], full[:, 0])
    assert bool(torch.isnan(matrix[:, 1]).all())
    with pytest.raises(ValueError, match="outside the run"):
        LookaheadAffinity(model=model, tasks=tasks, streams={}, shared=[], device=torch.device("cpu"),
                          measure=["nope"])  # fmt: skip


def test_the_standard_error_is_the_spread_of_the_probes_over_root_n() -> None:
    model = Quadratic()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.0)
    affinity = _affinity(model)
    probes = []
    for _ in range(3):
        probes.append(affinity.probe(optimizer=optimizer, lr=0.1)[1, 0].item())
        model(task="helper", batch={}).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    result = affinity.result()
    assert result is not None and result.stderr is not None
    spread = torch.tensor(probes, dtype=torch.float64).std().item()
    assert spread > 0
    assert result.stderr[1][0] == pytest.approx(spread / 3**0.5, rel=1e-6)
    one = _affinity(Quadratic())
    one.probe(optimizer=None, lr=0.1)
    assert all(math.isnan(v) for row in one.result().stderr for v in row)  # type: ignore[union-attr]


class TwoRates(nn.Module):
    """Two shared scalars; the optimizer trains ``b`` at 10x the run's rate (as cross-stitch
    units are trained).  L_helper = (a - 1)^2 + (b - 1)^2; L_other = (a - 1)^2 + 10."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> Output:
        if task == "helper":
            return Output((self.a - 1) ** 2 + (self.b - 1) ** 2)
        return Output((self.a - 1) ** 2 + 10.0)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.a, self.b]


def test_parameters_trained_at_a_multiple_of_the_rate_take_that_multiple_of_the_step() -> None:
    model = TwoRates()
    optimizer = torch.optim.AdamW(
        [{"params": [model.a], "lr": 0.01}, {"params": [model.b], "lr": 0.1}], weight_decay=0.0
    )
    affinity = LookaheadAffinity(
        model=model,
        tasks=["helper", "other"],
        streams={t: _stream() for t in ("helper", "other")},
        shared=model.shared_parameters(),
        device=torch.device("cpu"),
    )
    matrix = affinity.probe(optimizer=optimizer, lr=0.05)
    # before any update Adam's step is lr * sign(g): a moves by 0.05, b by 10 x 0.05
    a, b = 0.05, 0.5
    assert float(matrix[0, 0]) == pytest.approx(1 - ((a - 1) ** 2 + (b - 1) ** 2) / 2, rel=1e-5)
    assert float(matrix[0, 1]) == pytest.approx(1 - ((a - 1) ** 2 + 10) / 11, rel=1e-5)


def test_a_probe_with_a_loss_of_zero_before_leaves_that_entry_out_of_the_mean() -> None:
    # At theta = (1, 2) the helper's loss is exactly 0 (float32 cross-entropy of an easy batch
    # reaches 0 too): Z(. -> helper) = 1 - after / 0 has no value.  That probe's entries of the
    # helper column are left out; they made the column NaN for the rest of the run.
    model = Quadratic()
    affinity = _affinity(model)
    with torch.no_grad():
        model.theta.copy_(torch.tensor([1.0, 2.0]))
    first = affinity.probe(optimizer=None, lr=0.1)
    assert not math.isfinite(float(first[1, 0]))  # offset -> helper: 1 - after / 0
    with torch.no_grad():
        model.theta.copy_(torch.tensor([0.0, 0.0]))
    second = affinity.probe(optimizer=None, lr=0.1)
    third = affinity.probe(optimizer=None, lr=0.1)
    result = affinity.result()
    assert result is not None and result.n_probes == 3
    # the helper column: the mean of the two probes that measured it
    assert result.values[1][0] == pytest.approx((float(second[1, 0]) + float(third[1, 0])) / 2)
    assert result.stderr is not None and result.stderr[1][0] == pytest.approx(0.0, abs=1e-12)
    # the offset column: all three probes
    expected = (float(first[0, 1]) + float(second[0, 1]) + float(third[0, 1])) / 3
    assert result.values[0][1] == pytest.approx(expected)
    # and the counts survive a checkpoint
    restored = _affinity(Quadratic())
    restored.load_state_dict(affinity.state_dict())
    again = restored.result()
    assert again is not None and again.values == result.values
