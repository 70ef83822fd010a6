"""Results tables: a study's runs as the table it reproduces (rows x metrics, over seeds).

A study's rows are its spec's ``rows`` (fixed configurations, see
:class:`~taskgraph.spec.models.RowSpec`); a run belongs to the row whose configuration it
trained (same task set and model configuration hash; the seed aside).  A study without ``rows``
gets one row per distinct configuration, in the order its first run was stored.  Each cell is
the mean over the row's complete runs (one per seed: the latest run of a seed run twice) with a
95 % Student-t interval; a row also reports its paired difference from the first row in the
objective metric (per seed, the row's run minus the first row's run of the same seed: mean,
standard error and paired t-test), its seeds, failed runs and cost (training seconds per run,
mean and total).

A difference never compares two versions of the target's data.  Where the study's runs trained
the target on more than one version of its data (a data file changed between runs: the runs'
``task_fingerprints``, told apart as :func:`~taskgraph.storage.score_reads.data_families` tells
the affinity records' apart), each configuration's runs of each version are a row of their own:
the latest version's (that of the study's latest run) under the configuration's name, each
earlier version's marked ``(data:<fingerprint>, earlier data)`` after it.  A row's Δ is taken
from the first row's configuration on the row's own version (none where that configuration has
no run on it), and the long CSV keeps the latest version's rows only.  Runs recorded without
fingerprints (older databases) are one version, as before.

:func:`results_table` reads the records; :meth:`ResultsTable.to_markdown` renders the table,
:meth:`ResultsTable.long_rows` gives the long CSV of ``taskgraph bench`` (one row per task set
and split: the mean of the objective metric; a row whose task set an earlier row already has is
left out, since the format keys a score by task set), and :func:`write_results` writes both: the
CSV as ``<study>.csv`` and the table into the study's marked section of ``README.md``.

One module per concept:

- :mod:`~taskgraph.app.results.intervals`: a cell's mean and interval, a paired difference;
- :mod:`~taskgraph.app.results.table`: the table's rows and its renderings;
- :mod:`~taskgraph.app.results.build`: the table of a study's stored spec and runs;
- :mod:`~taskgraph.app.results.writing`: the CSV and README section of a results folder;
- :mod:`~taskgraph.app.results.record_filters`: checks of the records commands' filters.
"""

from __future__ import annotations

from taskgraph.app.results.build import build_table, results_table
from taskgraph.app.results.intervals import Cell, Paired, mean_interval
from taskgraph.app.results.record_filters import check_record_family, check_record_filters
from taskgraph.app.results.table import ResultRow, ResultsTable
from taskgraph.app.results.writing import (
    ResultsWriteError,
    check_results_folder,
    replace_section,
    section_markers,
    write_results,
)

__all__ = [
    "Cell",
    "Paired",
    "ResultRow",
    "ResultsTable",
    "ResultsWriteError",
    "build_table",
    "check_record_family",
    "check_record_filters",
    "check_results_folder",
    "mean_interval",
    "replace_section",
    "results_table",
    "section_markers",
    "write_results",
]
