"""Task metadata for the source-ranking tables, derived from the authors' repositories.

Writes two task-metadata files (the JSON format :func:`taskgraph.affinity.metadata.load_task_metadata`
reads) into ``benchmarks/metadata/``:

* ``bingel2017_eacl.json``: per task, numeric features of its *single-task* learning curves
  (``logs/<task>/loss_tr.log`` and ``loss_dv.log`` of jbingel/eacl2017_mtl), the kind Bingel &
  Søgaard 2017 found predictive of multi-task gains.  The pair logs (``logs/<main>_<aux>/``)
  are the measurement being predicted and are never read.
* ``taskweb2023_kim.json``: per task, a short text (its Super-NaturalInstructions definition
  where the repository has it, and a few example inputs from ``data/prompts/prompt_info_32.p``)
  and its categories, from danieljkim0118/TaskWeb.

    python benchmarks/metadata/extract.py --bingel /path/to/eacl2017_mtl --taskweb /path/to/TaskWeb

Each directory is a checkout or a bare git directory (then files are read from ``HEAD``).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import pickle
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BINGEL_TASKS = ("ccg", "chunking", "com", "fnt", "gpos", "hyperlinks", "keysem17", "mwe",
                "semcor", "streusle")  # fmt: skip
TASKWEB_TASKS = ("anli_r3", "boolq", "cb", "copa", "cosmosqa", "hellaswag", "imdb", "mrpc",
                 "piqa", "qnli", "qqp", "quartz", "rotten_tomatoes", "rte", "scitail", "snli",
                 "socialiqa", "squad_v2", "stsb", "wic", "winogrande", "wsc")  # fmt: skip
#: Single-task models were compared with pairs after 50k batches (experiments.ipynb, cell 15).
STL_ITERATIONS = 50_000
#: Fractions of training where the loss slope is read (Bingel & Søgaard's loss_grad_10..70).
SLOPE_AT = (0.1, 0.2, 0.3, 0.5, 0.7)
SLOPE_WINDOW = 0.025  # least-squares slope over +-2.5 % of training: one batch's loss is noise
N_EXAMPLES = 5
EXAMPLE_CHARS = 300
HERE = Path(__file__).resolve().parent


class RepositoryReader:
    """Reads files of a checkout, or of a bare git directory at ``HEAD``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def exists(self, path: str) -> bool:
        """Return whether ``path`` is readable."""
        if (self.root / path).is_file():
            return True
        return self._git("cat-file", "-e", f"HEAD:{path}") is not None

    def read(self, path: str) -> bytes:
        """Return the bytes of ``path``; raise ``FileNotFoundError`` naming it when absent."""
        if (self.root / path).is_file():
            return (self.root / path).read_bytes()
        data = self._git("show", f"HEAD:{path}")
        if data is None:
            raise FileNotFoundError(f"{self.root}: no file {path!r}")
        return data

    def commit(self) -> str | None:
        """Return the ``HEAD`` commit, or None when ``root`` is not a git repository."""
        out = self._git("rev-parse", "HEAD")
        return out.decode().strip() if out else None

    def _git(self, *args: str) -> bytes | None:
        try:
            done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True,
                                  check=False)  # fmt: skip
        except FileNotFoundError:  # no git: a plain checkout only
            return None
        return done.stdout if done.returncode == 0 else None


# ----------------------------------------------------------------- Bingel & Søgaard
def parse_log(text: str) -> dict[str, np.ndarray]:
    """Return the columns of a training log (``iter`` and every ``name value`` pair), by iteration.

    Lines look like ``Iter 100, task ccg, loss 6.79, acc 0.216, f1 0.216``; a repeated
    iteration (a restarted run) keeps its last line.
    """
    rows: dict[int, dict[str, float]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        parts = [p.strip().split() for p in line.split(",") if p.strip()]
        if not parts:
            continue
        if parts[0][0] != "Iter" or any(len(p) != 2 for p in parts):
            raise ValueError(f"line {number}: expected 'Iter N, name value, ...', found {line!r}")
        row = {name: float(value) for name, value in parts[1:] if name != "task"}
        rows[int(parts[0][1])] = row
    iterations = sorted(rows)
    names = sorted({n for r in rows.values() for n in r})
    columns = {"iter": np.array(iterations, dtype=float)}
    for name in names:
        columns[name] = np.array([rows[i].get(name, math.nan) for i in iterations])
    return columns


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    return float((x @ (y - y.mean())) / (x @ x)) if len(x) >= 2 and x @ x > 0 else math.nan


def curve_features(
    train_log: str, dev_log: str, *, horizon: int = STL_ITERATIONS
) -> dict[str, float]:
    """Return the single-task learning-curve features of one task (training up to ``horizon`` iterations).

    * ``loss_slope_<p>``: least-squares slope of the training loss per 1000 iterations over
      +-2.5 % of training around ``p`` % (Bingel & Søgaard's ``loss_grad_<p>``, smoothed);
    * ``loss_log_slope``: ``b`` of ``loss ~ a + b log(iteration)`` (their curve steepness);
    * ``dev_f1``, ``dev_f1_best``: the dev F1 at ``horizon`` (the gains' baseline) and its best;
    * ``dev_plateau_at``: the fraction of training after which dev F1 stays within 1 % (relative)
      of its best (``1`` when it still improves at the end);
    * ``dev_f1_late_gain``: dev F1 at ``horizon`` minus at half of it (still learning?);
    * ``dev_loss_min_at``: the fraction of training where the dev loss is lowest (overfitting);
    * ``generalisation_gap``: dev loss minus the mean training loss of the last 5 % of training.
    """
    train, dev = parse_log(train_log), parse_log(dev_log)
    keep = train["iter"] <= horizon
    it, loss = train["iter"][keep], train["loss"][keep]
    d_keep = dev["iter"] <= horizon
    d_it, f1, d_loss = dev["iter"][d_keep], dev["f1"][d_keep], dev["loss"][d_keep]
    if len(it) < 10 or len(d_it) < 4:
        raise ValueError(
            f"too short a log: {len(it)} training and {len(d_it)} dev lines up to {horizon}"
        )
    end = float(it[-1])
    out: dict[str, float] = {}
    for p in SLOPE_AT:
        window = np.abs(it - p * end) <= SLOPE_WINDOW * end
        out[f"loss_slope_{round(100 * p)}"] = 1000 * _slope(it[window], loss[window])
    out["loss_log_slope"] = _slope(np.log(it), loss)
    best = float(np.nanmax(f1))
    out["dev_f1"] = float(f1[-1])
    out["dev_f1_best"] = best
    below = np.flatnonzero(f1 < 0.99 * best)
    start = below[-1] + 1 if len(below) else 0  # first point of the final stretch near the best
    out["dev_plateau_at"] = float(d_it[start] / d_it[-1]) if start < len(d_it) else 1.0
    half = int(np.argmin(np.abs(d_it - d_it[-1] / 2)))
    out["dev_f1_late_gain"] = float(f1[-1] - f1[half])
    out["dev_loss_min_at"] = float(d_it[int(np.nanargmin(d_loss))] / d_it[-1])
    tail = it >= 0.95 * end
    out["generalisation_gap"] = float(d_loss[-1] - loss[tail].mean())
    return {k: round(v, 6) for k, v in out.items()}


def bingel_metadata(
    reader: RepositoryReader, tasks: Sequence[str] = BINGEL_TASKS
) -> dict[str, Any]:
    """Return the task-metadata document of Bingel & Søgaard's single tasks."""
    out: dict[str, Any] = {}
    for task in tasks:
        train = reader.read(f"logs/{task}/loss_tr.log").decode()
        dev = reader.read(f"logs/{task}/loss_dv.log").decode()
        try:
            out[task] = {"features": curve_features(train, dev)}
        except ValueError as error:
            raise ValueError(f"logs/{task}: {error}") from None
    return {"tasks": out}


# ----------------------------------------------------------------- TaskWeb
class _DataOnly(pickle.Unpickler):
    """Unpickles plain containers only: a pickle that names any class is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: plain data only")


def _short(text: str, limit: int = EXAMPLE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _spread(items: Sequence[Any], k: int) -> list[Any]:
    """Return ``k`` items evenly spaced over ``items`` (the prompt lists cycle through templates)."""
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)] if k > 1 else [items[0]]


def taskweb_task(instruction: Mapping[str, Any] | None, prompts: Sequence[Mapping[str, Any]],
                 *, n_examples: int = N_EXAMPLES) -> dict[str, Any]:  # fmt: skip
    """Return one TaskWeb task's metadata: ``texts`` (definition first, where known, then example inputs) and ``categories``."""
    texts: list[str] = []
    categories: list[str] = []
    if instruction is not None:
        definition = instruction.get("Definition") or []
        texts.extend(_short(d, 600) for d in definition[:1])
        categories = [str(c) for c in instruction.get("Categories") or []]
    texts.extend(_short(p["input"]) for p in _spread(list(prompts), n_examples) if p.get("input"))
    if not texts:
        raise ValueError("neither a definition nor example inputs")
    return {
        "texts": texts,
        "categories": categories,
        "definition": bool(instruction and instruction.get("Definition")),
    }


def taskweb_metadata(
    reader: RepositoryReader, tasks: Sequence[str] = TASKWEB_TASKS
) -> dict[str, Any]:
    """Return the task-metadata document of TaskWeb's tasks (a task whose instruction file is absent gets examples only)."""
    prompts = _DataOnly(io.BytesIO(reader.read("data/prompts/prompt_info_32.p"))).load()
    out: dict[str, Any] = {}
    for task in tasks:
        path = f"data/natinstruct/{task}.json"
        instruction = json.loads(reader.read(path)) if reader.exists(path) else None
        try:
            out[task] = taskweb_task(instruction, prompts.get(task, []))
        except ValueError as error:
            raise ValueError(f"{task}: {error}") from None
    return {"tasks": out}


def write(document: Mapping[str, Any], path: Path, *, repository: str, commit: str | None) -> None:
    """Write ``document`` with its provenance to ``path`` (JSON, sorted keys)."""
    payload = {"source": {"repository": repository, "commit": commit}, **document}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bingel", type=Path, help="jbingel/eacl2017_mtl checkout or git directory"
    )
    parser.add_argument(
        "--taskweb", type=Path, help="danieljkim0118/TaskWeb checkout or git directory"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output folder (default: next to this script)"
    )
    args = parser.parse_args(argv)
    if not args.bingel and not args.taskweb:
        parser.error("give --bingel and/or --taskweb")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.bingel:
        reader = RepositoryReader(args.bingel)
        write(bingel_metadata(reader, BINGEL_TASKS), args.out / "bingel2017_eacl.json",
              repository="https://github.com/jbingel/eacl2017_mtl", commit=reader.commit())  # fmt: skip
    if args.taskweb:
        reader = RepositoryReader(args.taskweb)
        write(taskweb_metadata(reader, TASKWEB_TASKS), args.out / "taskweb2023_kim.json",
              repository="https://github.com/danieljkim0118/TaskWeb", commit=reader.commit())  # fmt: skip


if __name__ == "__main__":
    main()
