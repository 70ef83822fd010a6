"""Lookahead probes and checkpoint files: the cases the mutation audit found untested.

Each test names the behaviour it pins; together with ``test_lookahead.py`` and
``test_checkpoint.py`` they kill every non-equivalent mutant of ``lookahead.py`` and
``checkpoint.py`` that the audit tried.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from taskgraph.errors import ConfigError
from taskgraph.training import LookaheadAffinity
from taskgraph.training.checkpoint import CheckpointStore
from taskgraph.training.lookahead import ROW_SPARSE_MIN_ROWS, ReusedGradient
from taskgraph.trial import TrialConfig

from .test_lookahead import Embedding, Output, Quadratic, _affinity, _stream

CPU = torch.device("cpu")


def _probe_of(model: nn.Module, tasks: list[str]) -> LookaheadAffinity:
    return LookaheadAffinity(
        model=model,
        tasks=tasks,
        streams={t: _stream() for t in tasks},
        shared=list(model.shared_parameters()),  # type: ignore[operator]
        device=CPU,
    )


# ----------------------------------------------------------------- restoring the model


class FailsOnCall(Embedding):
    """The row-sparse embedding model whose ``fail_at``-th forward raises (a CUDA OOM, Ctrl-C)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_at = fail_at

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> Output:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("CUDA out of memory")
        return super().forward(task, batch)


def test_a_probe_that_fails_mid_step_still_restores_the_moved_rows_and_the_mode() -> None:
    # Forwards 1 and 2 are the "before" losses; the 3rd is the first "after" one, with the
    # helper's rows already moved in place.  The trainer lets the error propagate, so a
    # runner that catches it (a retry, an OOM fallback) must find the weights untouched.
    model = FailsOnCall(fail_at=3)
    original = model.table.detach().clone()
    affinity = _probe_of(model, ["helper", "offset"])
    assert affinity.sparse == [True]
    model.train()
    with pytest.raises(RuntimeError, match="out of memory"):
        affinity.probe(optimizer=None, lr=0.05)
    assert torch.equal(model.table.detach(), original)
    assert model.training
    assert affinity.count == 0 and affinity.result() is None


@pytest.mark.parametrize("training", [True, False])
def test_a_probe_gives_the_model_back_in_the_mode_it_found_it(training: bool) -> None:
    model = Quadratic()
    model.train(training)
    _affinity(model).probe(optimizer=None, lr=0.1)
    assert model.training is training


# ----------------------------------------------------------------- the step


class PartialRow(nn.Module):
    """A word-embedding-sized table; ``helper`` pulls row 1 whole and only columns 0-1 of row 2,
    so row 2's gradient has an exact zero (column 2) beside nonzero entries."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.linspace(-1, 1, 5000 * 3).reshape(5000, 3))

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> Output:
        if task == "helper":
            return Output(((self.table[1] - 1) ** 2).sum() + ((self.table[2, :2] - 1) ** 2).sum())
        return Output(((self.table[2] + 1) ** 2).sum() + 1.0)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.table]


def test_a_row_moves_when_any_of_its_entries_has_a_gradient() -> None:
    model = PartialRow()
    original = model.table.detach().clone()
    tasks = ["helper", "offset"]
    affinity = _probe_of(model, tasks)
    assert affinity.sparse == [True]
    matrix = affinity.probe(optimizer=None, lr=0.05)
    grad = torch.autograd.grad(model("helper", {}).loss, model.table)[0]
    assert float(grad[2, 2]) == 0.0 and bool((grad[2, :2] != 0).all())
    moved = original - 0.05 * grad / (grad.abs() + 1e-8)  # Adam's first step, dense
    for j, target in enumerate(tasks):
        with torch.no_grad():
            before = float(model(target, {}).loss)
            model.table.copy_(moved)
            after = float(model(target, {}).loss)
            model.table.copy_(original)
        assert float(matrix[0, j]) == pytest.approx(1 - after / before, rel=1e-5)
    assert float(matrix[0, 1]) != 0.0  # the helper's step moved row 2, which offset reads


@pytest.mark.parametrize(
    ("rows", "sparse"), [(ROW_SPARSE_MIN_ROWS, True), (ROW_SPARSE_MIN_ROWS - 1, False)]
)
def test_matrices_from_the_documented_row_count_up_are_row_sparse(rows: int, sparse: bool) -> None:
    table = nn.Parameter(torch.zeros(rows, 2))
    affinity = LookaheadAffinity(
        model=nn.ParameterList([table]), tasks=["a", "b"], streams={}, shared=[table], device=CPU
    )
    assert affinity.sparse == [sparse]


def test_a_probe_at_a_zero_learning_rate_with_lookahead_lr_takes_plain_steps() -> None:
    # The first warmup step has lr 0; with the trial's ``lookahead_lr`` the trainer still
    # probes there, and the optimizer's rate (0) gives no multiple to scale the step by.
    model = Quadratic()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    with_optimizer = _affinity(model).probe(optimizer=optimizer, lr=0.1)
    without = _affinity(model).probe(optimizer=None, lr=0.1)
    assert torch.equal(with_optimizer, without)


# ----------------------------------------------------------------- a reused gradient


def _trained_quadratic() -> tuple[Quadratic, torch.optim.Optimizer]:
    """Return the quadratic model after two AdamW steps on the helper (second moments set)."""
    model = Quadratic()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.0)
    for _ in range(2):
        model("helper", {}).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


@pytest.mark.parametrize("trained", [False, True])
def test_a_reused_gradient_is_divided_by_its_loss_weight(trained: bool) -> None:
    # The training step's gradient of 0.25 x the loss gives the probe a fresh gradient gives.
    # Before any update the step is lr * sign(g), blind to g's scale; after one (trained), v
    # sets the scale, so only then does a gradient not divided back change the probe.
    model, optimizer = _trained_quadratic() if trained else (Quadratic(), None)
    fresh = _affinity(model).probe(optimizer=optimizer, lr=0.05)
    grad = torch.autograd.grad(model("helper", {}).loss * 0.25, model.theta)[0]
    reused = _affinity(model).probe(
        optimizer=optimizer,
        lr=0.05,
        reuse=ReusedGradient(task="helper", batch={}, grads=[grad], scale=0.25),
    )
    assert torch.allclose(fresh, reused, rtol=1e-6)


class BatchMean(nn.Module):
    """Shared theta (1,); each task's loss depends on its batch through m = mean(input_ids):
    ``helper`` = (theta - m)^2 + 1, ``offset`` = (theta + m)^2 + 1."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(1))

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> Output:
        m = batch["input_ids"].float().mean()
        sign = -1.0 if task == "helper" else 1.0
        return Output(((self.theta[0] + sign * m) ** 2) + 1.0)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.theta]


def test_a_reused_task_is_measured_on_the_training_steps_batch() -> None:
    # The probe streams' batches have mean 1.5 (ids 1 and 2); the training step's has 5: the
    # reused task's "before" and "after" losses are both taken on the step's batch.
    model = BatchMean()
    tasks = ["helper", "offset"]
    affinity = _probe_of(model, tasks)
    step_batch = {"input_ids": torch.tensor([[5, 5]])}
    grad = torch.autograd.grad(model("helper", step_batch).loss, model.theta)[0]
    lr = 0.1
    matrix = affinity.probe(
        optimizer=None,
        lr=lr,
        reuse=ReusedGradient(task="helper", batch=step_batch, grads=[grad], scale=1.0),
    )
    # helper's gradient at 0 is -10: Adam's first step moves theta to +lr
    assert float(matrix[0, 0]) == pytest.approx(1 - ((lr - 5) ** 2 + 1) / 26, rel=1e-5)
    assert float(matrix[0, 1]) == pytest.approx(1 - ((lr + 1.5) ** 2 + 1) / 3.25, rel=1e-5)
    # offset's own gradient (on its probe batch, +3) moves theta to -lr
    assert float(matrix[1, 0]) == pytest.approx(1 - ((-lr - 5) ** 2 + 1) / 26, rel=1e-5)


# ----------------------------------------------------------------- the running mean


@pytest.mark.parametrize("lr", [0.01, 0.03, 0.15, 0.3])
def test_identical_probes_have_a_standard_error_of_zero_not_nan(lr: float) -> None:
    # The sum-of-squares variance of equal values rounds to about +-1e-19 (below 0 at 0.03 and
    # 0.15 here); its square root must not turn the error into NaN.
    affinity = _affinity(Quadratic())
    for _ in range(3):
        affinity.probe(optimizer=None, lr=lr)  # the model never moves: the same matrix
    result = affinity.result()
    assert result is not None and result.stderr is not None
    assert all(0.0 <= error < 1e-6 for row in result.stderr for error in row), result.stderr


def test_sums_saved_before_standard_errors_were_kept_still_load() -> None:
    affinity = _affinity(Quadratic())
    for _ in range(2):
        affinity.probe(optimizer=None, lr=0.1)
    state = affinity.state_dict()
    del state["total_sq"]  # a checkpoint written by an older taskgraph
    restored = _affinity(Quadratic())
    restored.load_state_dict(state)
    result, expected = restored.result(), affinity.result()
    assert result is not None and expected is not None
    assert result.values == expected.values and result.n_probes == 2


# ----------------------------------------------------------------- checkpoint files

BASE = TrialConfig(
    target="synth_target", auxiliaries=("synth_related",), encoder="tiny-bert", max_steps=10
)


def _killed_mid_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make torch.save write a few bytes of its file and then die (a kill during a save)."""

    def partial(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        Path(f).write_bytes(b"PK\x03\x04 truncated")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", partial)


def test_a_kill_during_a_save_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(directory=tmp_path, config=BASE)
    store.save({"step": 8})
    store.save_best({"w": torch.ones(2)})
    with monkeypatch.context() as patch:
        _killed_mid_write(patch)
        with pytest.raises(KeyboardInterrupt):
            store.save({"step": 16})
        with pytest.raises(KeyboardInterrupt):
            store.save_best({"w": torch.zeros(2)})
    assert store.load() == {"step": 8}
    best = store.load_best()
    assert best is not None and torch.equal(best["w"], torch.ones(2))


def test_a_kill_while_the_directory_is_claimed_leaves_it_claimable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def partial(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(data[: len(data) // 2])
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", partial)
        with pytest.raises(KeyboardInterrupt):
            CheckpointStore(directory=tmp_path, config=BASE)
    # No half-written config.json: the trial claims the directory on its retry...
    CheckpointStore(directory=tmp_path, config=BASE)
    json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    # ...and another trial is still refused it.
    with pytest.raises(ConfigError, match="belongs to another trial"):
        CheckpointStore(directory=tmp_path, config=BASE.with_seed(7))


def test_discard_removes_the_best_weights_too(tmp_path: Path) -> None:
    # A trial restarted from scratch (its data changed) must not end on the old run's best
    # weights when its own evaluations never beat them.
    store = CheckpointStore(directory=tmp_path, config=BASE)
    store.save({"step": 8})
    store.save_best({"w": torch.ones(2)})
    store.discard()
    assert not store.exists() and store.load_best() is None
    store.discard()  # nothing left to remove is fine


def test_a_checkpoint_written_on_a_gpu_loads_on_a_cpu_only_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trial killed on a GPU node and resumed on a CPU one: the file tags its tensors with
    # cuda:0, which torch.load refuses on a machine without CUDA unless they are mapped.
    store = CheckpointStore(directory=tmp_path, config=BASE)
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        store.save({"model": {"w": torch.arange(3.0)}})
    with monkeypatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: False)
        loaded = store.load()
    assert loaded["model"]["w"].device == CPU
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0))
