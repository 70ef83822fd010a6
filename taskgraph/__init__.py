"""taskgraph: find out which tasks help which in multi-task and transfer learning.

The package is organised along the data flow of ``DESIGN.md``:
``spec`` (study files) -> ``search`` (Optuna) -> ``runners`` (local, Ray Tune, tabular)
-> ``training`` (multi-task trainer over ``models`` and ``tasks``) -> ``storage`` (records)
-> ``affinity`` (gains, estimators, graph).  ``cli`` is the command line on top.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
