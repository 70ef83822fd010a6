"""``benchmarks/trainer_throughput.py``: both loops time their steps, warm-up or none."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch


@pytest.mark.parametrize("warmup", [0, 1])
def test_both_loops_time_every_step_after_the_warmup(
    benchmark_script: Callable[[str], ModuleType], data_dir: Path, warmup: int
) -> None:
    bench = benchmark_script("trainer_throughput.py")
    args = argparse.Namespace(
        task="synth_related", encoder="tiny-bert", steps=2, warmup=warmup, batch_size=4,
        device="cpu", data=str(data_dir),
    )  # fmt: skip
    config = bench.make_config(args)
    for run in (bench.run_trainer, bench.run_hand_loop):
        before = bench.clock(torch.device("cpu"))
        seconds, tokens_per_second = run(config, args)
        # The timed span lies within the call: it starts at a mark, not at the clock's zero.
        assert 0 < seconds <= bench.clock(torch.device("cpu")) - before, run.__name__
        assert tokens_per_second > 0, run.__name__
