"""Two screens of one study written at the same time both keep their number and details.

On PostgreSQL (READ COMMITTED) each writer found no screen yet, both took trial number -1, and
the second insert was dropped as a conflict: its caller got the other screen back (20 of 20
tries before the study row was locked).  SQLite runs write transactions one at a time.
"""

from __future__ import annotations

import threading

from taskgraph.storage import open_repository
from taskgraph.trial import Cost, LookaheadMatrix, TrialConfig, TrialResult, TrialStatus

CONFIG = TrialConfig(target="ner", auxiliaries=("pos",), seed=0)
RESULT = TrialResult(
    status=TrialStatus.COMPLETE,
    scores={},
    objective=0.5,
    cost=Cost(seconds=1.0),
    lookahead=LookaheadMatrix(tasks=["ner", "pos"], values=[[0.0, 0.1], [0.2, 0.0]], n_probes=2),
)


def test_screens_written_at_once_are_both_kept(storage_url: str) -> None:
    with open_repository(storage_url) as repo:
        repo.ensure_study("s", target="ner")  # a study with its target: no row update to wait on
    for attempt in range(5):
        barrier = threading.Barrier(2)
        got: dict[str, tuple[int, str]] = {}

        def screen(name: str, barrier: threading.Barrier, got: dict[str, tuple[int, str]]) -> None:
            with open_repository(storage_url) as repo:
                repo.runs()  # connect before the race
                barrier.wait()
                stored = repo.add_screen(
                    study="s", config=CONFIG, result=RESULT, details={"who": name}
                )
                got[name] = (stored.number, stored.details["who"])

        threads = [
            threading.Thread(target=screen, args=(n, barrier, got))
            for n in (f"a{attempt}", f"b{attempt}")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {who for _, who in got.values()} == {f"a{attempt}", f"b{attempt}"}, got
    with open_repository(storage_url) as repo:
        screens = repo.screens("s")
    assert sorted(s.number for s in screens) == list(range(-10, 0))
    assert len({s.details["who"] for s in screens}) == 10
