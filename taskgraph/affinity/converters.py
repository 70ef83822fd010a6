"""Converters from the published tables in ``../shared/benchmarks`` to the long CSV format.

Each converter reads one source exactly as its ``SOURCE.md`` describes it and returns a
:class:`~taskgraph.affinity.longtable.LongTable`.  Sources that publish *relative gains*
rather than scores (MTG-Net, TaskWeb, Bingel and Søgaard) are written as scores relative to
the single-task baseline: the baseline row has value ``1`` and a task set with gain ``g`` has
value ``1 + g``, so the relative gain and the absolute gain computed from the long table both
equal the published gain.  Sources with one number per entry (no separate validation and test
measurement) are written as split ``val`` only.

=================  ==============================================  ==========================
name               source                                          rows
=================  ==============================================  ==========================
mimic27            MTG-Net MIMIC-III, 27 tasks, 3,185 groups        2 x 38,522 = 77,044
ettm1              MTG-Net ETTm1, 7 tasks, all 127 groups           2 x 448 = 896
taskonomy5         MTG-Net Taskonomy, 5 tasks, all 31 groups        80 (val only)
standley_s1..s4    Standley et al. 2020 settings 1-4, 31 subsets    2 x 80 = 160 each
taskweb            TaskWeb (Kim et al. 2023), 21 targets x 21       21 + 441 = 462 (val only)
bingel             Bingel and Søgaard 2017, 10 x 9 pairs            10 + 90 = 100 (val only)
=================  ==============================================  ==========================
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.errors import DataFormatError, DataNotFoundError, UnknownNameError, option_name

__all__ = [
    "BENCHMARKS_ENV",
    "CONVERTERS",
    "ETTM1_TASKS",
    "MIMIC27_TASKS",
    "STANDLEY_TASKS",
    "convert",
    "resolve_benchmarks_dir",
]

BENCHMARKS_ENV = "TASKGRAPH_BENCHMARKS"

#: Column order from MTG-Net's ``gain_collection/mimic/27_pairwise_sample.py`` (SOURCE.md),
#: snake-cased so that names need no quoting on a command line.
MIMIC27_TASKS = (
    "icd_infection", "icd_neoplasms", "icd_endocrine", "icd_blood", "icd_mental",
    "icd_nervous", "icd_circulatory", "icd_respiratory", "icd_digestive", "icd_genitourinary",
    "icd_pregnancy", "icd_skin", "icd_musculoskeletal", "icd_congenital", "icd_ill_defined",
    "icd_injury", "disch_24h", "disch_48h", "mort_24h", "mort_48h", "long_los",
    "readmission_30", "final_acuity_outcome", "dnr_24h", "dnr_48h", "cmo_24h", "cmo_48h",
)  # fmt: skip
#: ETTm1's seven variables in the dataset's own column order (SOURCE.md does not name them).
ETTM1_TASKS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
#: Standley settings 1-3: [semantic segmentation, depth, normals, keypoints, edges].
STANDLEY_TASKS = ("segment_semantic", "depth_zbuffer", "normal", "keypoints2d", "edge_texture")
#: Setting 4 uses another task set whose column order is not documented (SOURCE.md).
_STANDLEY_ALT_TASKS = ("alt0", "alt1", "alt2", "alt3", "alt4")
_STANDLEY_FILES = {
    1: ("results.txt", "results_test.txt"),
    2: ("results_large.txt", "results_large_test.txt"),
    3: ("results_small_data.txt", "results_small_data_test.txt"),
    4: ("results_alt.txt", "results_alt_test.txt"),
}


def resolve_benchmarks_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """Return the published-tables directory: ``option``, ``$TASKGRAPH_BENCHMARKS``, ``../shared/benchmarks``."""
    if option is not None:
        source, path = option_name("root"), Path(option)  # convert()'s keyword
    elif os.environ.get(BENCHMARKS_ENV):
        source, path = BENCHMARKS_ENV, Path(os.environ[BENCHMARKS_ENV])
    else:
        checkout = Path(__file__).resolve().parents[2]
        candidates = [
            Path.cwd().parent / "shared" / "benchmarks",
            checkout.parent / "shared" / "benchmarks",
        ]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate.resolve()
        raise DataNotFoundError(
            f"no benchmarks directory: set {BENCHMARKS_ENV} "
            f"(looked for ../shared/benchmarks at {', '.join(map(str, candidates))})"
        )
    if not path.expanduser().is_dir():
        raise DataNotFoundError(f"benchmarks directory from {source} does not exist: {path}")
    return path.expanduser().resolve()


def _matrix(path: Path, *, columns: int, delimiter: str | None = None) -> np.ndarray:
    if not path.is_file():
        raise DataNotFoundError(f"benchmark file does not exist: {path}")
    rows: list[list[float]] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            cells = line.strip().split(delimiter)
            if len(cells) != columns:
                raise DataFormatError(path, line_no, f"{columns} columns", f"{len(cells)}")
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                raise DataFormatError(path, line_no, "numbers", repr(line.strip()[:60])) from None
    return np.asarray(rows, dtype=float)


def _mtgnet(
    directory: Path,
    tasks: Sequence[str],
    mask_file: str,
    splits: Sequence[tuple[str, str]],
    *,
    delimiter: str | None = None,
) -> list[LongRow]:
    n = len(tasks)
    mask = _matrix(directory / mask_file, columns=n, delimiter=delimiter).astype(bool)
    rows: list[LongRow] = []
    for split, gain_file in splits:
        gains = _matrix(directory / gain_file, columns=n)
        if gains.shape != mask.shape:
            raise DataFormatError(
                directory / gain_file, None, f"{len(mask)} rows like {mask_file}", f"{len(gains)}"
            )
        for members, gain_row in zip(mask, gains, strict=True):
            task_set = frozenset(tasks[int(i)] for i in np.flatnonzero(members))
            for i in np.flatnonzero(members):
                value = 1.0 if len(task_set) == 1 else 1.0 + float(gain_row[i])
                rows.append(LongRow(tasks[int(i)], task_set, split, value, True))
    return rows


def mimic27(root: Path) -> LongTable:
    """Return MTG-Net's MIMIC-III 27-task gains (val = ``mimic_y_valid``, test = ``mimic_y_test``)."""
    rows = _mtgnet(
        root / "mtgnet2022_song" / "mimic27", MIMIC27_TASKS, "mimic_x.csv",
        [("val", "mimic_y_valid.csv"), ("test", "mimic_y_test.csv")],
    )  # fmt: skip
    return LongTable(rows=rows, source="mimic27")


def ettm1(root: Path) -> LongTable:
    """Return MTG-Net's ETTm1 gains for all 127 groups (val = ``ETTm1_val_y``, test = ``ETTm1_y``)."""
    rows = _mtgnet(
        root / "mtgnet2022_song" / "ETT", ETTM1_TASKS, "ETTm1_x.csv",
        [("val", "ETTm1_val_y.csv"), ("test", "ETTm1_y.csv")],
    )  # fmt: skip
    return LongTable(rows=rows, source="ettm1")


def taskonomy5(root: Path) -> LongTable:
    """Return MTG-Net's Taskonomy 5-task gains (one split, written as ``val``; names undocumented)."""
    tasks = tuple(f"taskonomy{i}" for i in range(5))
    rows = _mtgnet(
        root / "mtgnet2022_song" / "taskonomy",
        tasks,
        "taskonomy_x.csv",
        [("val", "taskonomy.csv")],
        delimiter=",",
    )
    return LongTable(rows=rows, source="taskonomy5")


def _standley_file(path: Path, tasks: Sequence[str], split: str) -> list[LongRow]:
    if not path.is_file():
        raise DataNotFoundError(f"benchmark file does not exist: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows: list[LongRow] = []
    seen: set[frozenset[str]] = set()
    # Line 1 holds the five half-size single-task networks (cost 0.5): not a task set.
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(tasks):
            raise DataFormatError(
                path, line_no, f"{len(tasks)} tab-separated cells", f"{len(cells)}"
            )
        present = {i: c.strip() for i, c in enumerate(cells) if c.strip()}
        task_set = frozenset(tasks[i] for i in present)
        if not task_set or task_set in seen:
            raise DataFormatError(path, line_no, "a new non-empty task subset", repr(line))
        seen.add(task_set)
        for i, text in present.items():
            try:
                value = float(text)
            except ValueError:
                raise DataFormatError(path, line_no, "a loss value", repr(text)) from None
            rows.append(LongRow(tasks[i], task_set, split, value, False))
    return rows


def standley(root: Path, setting: int) -> LongTable:
    """Return Standley et al. 2020 setting ``setting`` (1-4): per-task val and test losses of all 31 subsets."""
    val_file, test_file = _STANDLEY_FILES[setting]
    tasks = _STANDLEY_ALT_TASKS if setting == 4 else STANDLEY_TASKS
    directory = root / "standley2020_taskgrouping"
    rows = _standley_file(directory / val_file, tasks, "val") + _standley_file(
        directory / test_file, tasks, "test"
    )
    return LongTable(rows=rows, source=f"standley_s{setting}")


def _pair_table(pairs: dict[tuple[str, str], float], *, source: str) -> LongTable:
    rows = [LongRow(t, frozenset({t}), "val", 1.0, True) for t in sorted({t for t, _ in pairs})]
    rows += [
        LongRow(t, frozenset({t, s}), "val", 1.0 + gain, True)
        for (t, s), gain in sorted(pairs.items())
    ]
    return LongTable(rows=rows, source=source)


def _csv_rows(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise DataNotFoundError(f"benchmark file does not exist: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(path, 1, f"columns {list(required)}", f"{reader.fieldnames}")
        return [(reader.line_num, row) for row in reader]


def taskweb(root: Path, *, adaptation: str = "ALL", model: str = "ALL") -> LongTable:
    """Return TaskWeb's pairwise transfer as relative gains (one split, ``val``).

    The gain is TaskWeb's own ranking score ``0.5 * PC + 0.5 * (0.2 * PM - 0.1)`` (SOURCE.md)
    of the ``adaptation``/``model`` setting (default: the ALL/ALL aggregate).
    """
    path = root / "taskweb2023_kim" / "taskweb_pairwise.csv"
    columns = ("target", "source", "adaptation", "model", "PC_avg_pct_change", "PM_prop_positive")
    pairs: dict[tuple[str, str], float] = {}
    for line, row in _csv_rows(path, columns):
        if row["adaptation"] != adaptation or row["model"] != model:
            continue
        try:
            pc, pm = float(row["PC_avg_pct_change"]), float(row["PM_prop_positive"])
        except ValueError:
            raise DataFormatError(path, line, "numeric PC and PM", repr(row)) from None
        pairs[(row["target"], row["source"])] = 0.5 * pc + 0.5 * (0.2 * pm - 0.1)
    if not pairs:
        raise DataFormatError(
            path, None, f"rows with adaptation={adaptation!r}, model={model!r}", "none"
        )
    return _pair_table(pairs, source="taskweb")


def bingel(root: Path) -> LongTable:
    """Return Bingel and Søgaard 2017's pairwise relative dev-metric change (one split, ``val``)."""
    path = root / "bingel2017_eacl" / "pairwise_mtl_gain.csv"
    pairs: dict[tuple[str, str], float] = {}
    for line, row in _csv_rows(path, ("main_task", "aux_task", "rel_change_pct_main_dev_metric")):
        try:
            pairs[(row["main_task"], row["aux_task"])] = (
                float(row["rel_change_pct_main_dev_metric"]) / 100.0
            )
        except ValueError:
            raise DataFormatError(
                path, line, "a numeric rel_change_pct_main_dev_metric", repr(row)
            ) from None
    return _pair_table(pairs, source="bingel")


CONVERTERS: dict[str, Callable[[Path], LongTable]] = {
    "mimic27": mimic27,
    "ettm1": ettm1,
    "taskonomy5": taskonomy5,
    "standley_s1": lambda root: standley(root, 1),
    "standley_s2": lambda root: standley(root, 2),
    "standley_s3": lambda root: standley(root, 3),
    "standley_s4": lambda root: standley(root, 4),
    "taskweb": taskweb,
    "bingel": bingel,
}


def convert(name: str, *, root: str | os.PathLike[str] | None = None) -> LongTable:
    """Return the published table ``name`` (one of :data:`CONVERTERS`) in the long format."""
    if name not in CONVERTERS:
        raise UnknownNameError(f"unknown benchmark table {name!r}; known: {', '.join(CONVERTERS)}")
    return CONVERTERS[name](resolve_benchmarks_dir(root))
