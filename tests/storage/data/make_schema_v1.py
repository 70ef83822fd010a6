"""Regenerate ``schema_v1.db``: a small records database at schema revision 0001.

Run from the repository root: ``.venv/bin/python tests/storage/data/make_schema_v1.py``.
It writes three runs through the repository at head, then downgrades to 0001 (which only
drops the affinity-edge tables of 0002), so the file holds real rows in the old schema.
The migration test copies it and upgrades it; the committed file is what it tests.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from taskgraph.storage import open_repository
from taskgraph.storage.migrate import alembic_config
from taskgraph.trial import Cost, LookaheadMatrix, TrialConfig, TrialResult, TrialStatus

OUT = Path(__file__).with_name("schema_v1.db")


def main() -> None:
    """Write ``schema_v1.db`` next to this script."""
    OUT.unlink(missing_ok=True)
    url = f"sqlite:///{OUT}"
    with open_repository(url) as repo:
        repo.ensure_study("legacy", spec={"name": "legacy", "target": "ner"}, target="ner")
        for number, aux in enumerate([(), ("pos",), ("pos", "chunk")]):
            config = TrialConfig(target="ner", auxiliaries=aux, seed=number)
            scores = {t: {"dev": {"f1": 0.6 + 0.05 * number}} for t in config.task_set}
            lookahead = None
            if len(config.task_set) == 2:
                lookahead = LookaheadMatrix(
                    tasks=list(config.task_set), values=[[0.0, 0.2], [0.1, 0.0]], n_probes=2
                )
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores=scores,
                objective=scores["ner"]["dev"]["f1"],
                cost=Cost(seconds=10.0 + number),
                lookahead=lookahead,
            )
            repo.add_run_result(study="legacy", trial_number=number, config=config, result=result)
        with repo.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
    with sqlite3.connect(OUT) as connection:
        connection.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    with sqlite3.connect(OUT) as connection:
        connection.execute("VACUUM")


if __name__ == "__main__":
    main()
