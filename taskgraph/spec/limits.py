"""Bounds on what a study spec may ask for, so that a small file can neither hang nor exhaust memory.

A spec is read by people and by machines (``--set`` on a command line, a stored spec on
resume); every count in it is bounded here, in one place, so that a typo such as
``seeds: 1000000000`` is one ``error:`` line naming the field and its bound instead of a
``MemoryError`` after minutes.  The bounds are far above any real study (the largest real
spec in the repository uses 5 seeds, 40 trials and batch size 32) and are documented in
docs/search.md ("Limits").

The YAML limits guard the loader itself: ``MAX_SPEC_NODES`` counts nodes with every alias
expanded, which is what ``${VAR}`` expansion and validation walk, so a "billion laughs" alias
bomb of a few hundred bytes is refused while it is being composed.
"""

from __future__ import annotations

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_CAP_EXAMPLES",
    "MAX_COUNT",
    "MAX_ENCODER_LENGTH",
    "MAX_EPOCHS",
    "MAX_FAILURES",
    "MAX_INTERVAL",
    "MAX_LEARNING_RATE",
    "MAX_RAY_RESOURCES",
    "MAX_SEED",
    "MAX_SEEDS",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "MAX_SPEC_NODES",
    "MAX_STEPS",
    "MAX_TRIALS",
    "MAX_WALL_TIME",
]

#: Size of a spec file in bytes (the largest example spec is under 3 kB).
MAX_SPEC_BYTES = 1_000_000
#: YAML nodes in a spec with every alias expanded (scalars, lists and mappings each count 1).
MAX_SPEC_NODES = 10_000
#: Nesting depth of lists and mappings in a spec.
MAX_SPEC_DEPTH = 64

#: Seeds per configuration (``seeds: N`` or the length of the list).
MAX_SEEDS = 1_000
#: Largest seed value (NumPy seeds are 32-bit).
MAX_SEED = 2**32 - 1
#: ``budget.trials``.
MAX_TRIALS = 100_000
#: ``budget.max_failures``.
MAX_FAILURES = 100_000
#: ``budget.wall_time`` in seconds (one year).
MAX_WALL_TIME = 365 * 86_400.0
#: ``search.max_steps`` (optimiser steps of one trial).
MAX_STEPS = 10_000_000
#: ``search.epochs``.
MAX_EPOCHS = 10_000.0
#: ``search.batch_size`` (examples per step; memory grows with it).
MAX_BATCH_SIZE = 4_096
#: ``search.learning_rate`` (must also be > 0).
MAX_LEARNING_RATE = 10.0
#: ``search.mixing.max_examples`` (a per-task cap of training examples).
MAX_CAP_EXAMPLES = 1_000_000_000
#: ``encoder.max_length`` in tokens.
MAX_ENCODER_LENGTH = 8_192
#: Any other count or step interval (evaluation/lookahead intervals, patience, startup
#: trials, pruner resources, retries, subset sizes).
MAX_COUNT = 10_000_000
#: Heartbeat interval and grace period in seconds (one day).
MAX_INTERVAL = 86_400
#: CPUs or GPUs per Ray trial, Ray CPUs and concurrent trials.
MAX_RAY_RESOURCES = 4_096
