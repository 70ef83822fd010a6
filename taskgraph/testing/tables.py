"""Input files written for tests: long score tables with known shapes, a small sst2 data
directory, a small encoder directory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def write_long_rows(directory: Path, rows: Sequence[str], name: str = "t.csv") -> Path:
    """Write ``rows`` (``target,task_set,split,value,higher_is_better`` lines, e.g.
    ``"a,a+b,val,0.6,1"``) under the long format's header to ``directory / name``; return it."""
    path = directory / name
    path.write_text(
        "target,task_set,split,value,higher_is_better\n" + "".join(f"{row}\n" for row in rows)
    )
    return path


def write_rising_table(path: Path, tasks: Sequence[str], *, max_size: int) -> Path:
    """Write a long CSV of every subset of ``tasks`` up to ``max_size`` on val, in which each
    task's score rises with its partners (0.5 + 0.05 per partner + 0.01 per place); return it."""
    import itertools

    from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv

    rows = [
        LongRow(t, frozenset(combo), "val", 0.5 + 0.05 * (len(combo) - 1) + 0.01 * i, True)
        for size in range(1, max_size + 1)
        for combo in itertools.combinations(tasks, size)
        for i, t in enumerate(combo)
    ]
    write_long_csv(LongTable(rows=rows), path)
    return path


def write_pair_table(
    path: Path,
    *,
    seed: int,
    tasks: int = 7,
    popular: float = 0.0,
    noise: float = 0.05,
    baselines: bool = True,
    splits: Sequence[str] = ("val",),
    counts: Mapping[str, int] | None = None,
    no_baseline: Mapping[str, str] | None = None,
) -> Path:
    """Write a long CSV of ``tasks`` tasks ``t0``, ``t1``, ... with pairs only; return it.

    On each split in ``splits``: a baseline row of 0.6 per target (none where ``baselines`` is
    false, or where ``no_baseline`` maps the target to that split), then for each target ``t``
    pair rows with the first ``counts[t]`` other tasks in order (all of them by default), worth
    ``0.6 * (1 + effect[source] + normal(0, noise))``.  A source's ``effect`` is drawn once,
    first, from ``normal(0, popular)`` (0 when ``popular`` is 0, drawing nothing), so one source
    helps every target alike; the draws come from ``numpy.random.default_rng(seed)``.
    """
    import numpy as np

    from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv

    names = [f"t{i}" for i in range(tasks)]
    rng = np.random.default_rng(seed)
    effects = [float(e) for e in rng.normal(0, popular, tasks)] if popular else [0.0] * tasks
    effect = dict(zip(names, effects, strict=True))
    rows: list[LongRow] = []
    for split in splits:
        if baselines:
            rows += [
                LongRow(t, frozenset({t}), split, 0.6, True)
                for t in names
                if (no_baseline or {}).get(t) != split
            ]
        for t in names:
            for s in [s for s in names if s != t][: (counts or {}).get(t, tasks - 1)]:
                value = 0.6 * (1 + effect[s] + float(rng.normal(0, noise)))
                rows.append(LongRow(t, frozenset({t, s}), split, value, True))
    write_long_csv(LongTable(rows=rows), path)
    return path


def write_sst2_data(root: Path) -> Path:
    """Write a data directory ``root`` holding 16 sentences of the catalog task ``sst2`` in each
    of its splits (labels alternating), and return ``root``."""
    folder = root / "sst2"
    folder.mkdir(parents=True)
    rows = ["sentence\tlabel"] + [
        f"{'a fine film' if i % 2 else 'a dull film'} number {i}\t{i % 2}" for i in range(16)
    ]
    for split in ("train", "dev", "test"):
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def write_tiny_encoder(path: Path, *, seed: int = 0, **config: int) -> Path:
    """Write a random tiny BERT (``tiny-bert``, its weights drawn with ``seed``, ``config``
    overriding its sizes) and MiniLM's tokenizer as a Hugging Face model directory ``path``
    (weights, ``config.json``, tokenizer files: what the encoder checks ask of a directory),
    and return it.  Loads torch."""
    from taskgraph.models.encoders import load_encoder

    bundle = load_encoder("tiny-bert", options={**config, "seed": seed})
    bundle.model.save_pretrained(str(path))
    bundle.tokenizer.save_pretrained(str(path))
    return path
