"""Optuna's RDB storage, riding out a database server that restarts.

Optuna's :class:`~optuna.storages.RDBStorage` reconnects a pooled connection that died while
idle (``pool_pre_ping``) but fails a call whose server is down or goes away during it
(``StorageInternalError`` from a write, ``OperationalError`` from a read); only trial creation
is retried, five times within about ten seconds, for deadlocks.  :class:`RetryingRDBStorage`
retries every call that reaches the database as
:func:`taskgraph.storage.retry.with_connection_retry` does the records' writes: each call is
one transaction, so running it again after a connection lost *before* the commit is safe.  A
tell whose answer was lost with the connection may have been applied: the retry finds the
trial finished in the state it was told and takes that as done.

Two calls cannot tell their own commit from another driver's when the answer is lost after
it (the connection drops between the server's commit and the reply, a window of
milliseconds): a lost trial *creation* is created again, and a lost claim of a waiting trial
(WAITING to RUNNING) reads as another driver's claim, so Optuna takes the next one.  Either
leaves one RUNNING trial that nobody trains; it counts as running until it goes stale, and
the next ``study open``/``resume`` fails it as interrupted (a baseline or a trial with stored
runs is then retried), so nothing is lost or counted twice, but that run may stop a trial
short of its budget.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.storages._rdb import models as optuna_models
from optuna.trial import TrialState

from taskgraph.storage.retry import with_connection_retry

__all__ = ["RetryingRDBStorage"]

F = TypeVar("F", bound=Callable[..., Any])

# Every RDBStorage method that runs SQL and that Optuna (directly or through its caching
# wrapper and the heartbeat helpers) calls.
_DATABASE_CALLS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "record_heartbeat",
    "_get_stale_trial_ids",
)


def _retried(name: str, method: F) -> F:
    @functools.wraps(method)
    def call(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return with_connection_retry(
            lambda: method(self, *args, **kwargs), url=self.url, what=f"optuna {name}"
        )

    return call  # type: ignore[return-value]


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """An :class:`~optuna.storages.RDBStorage` whose database calls survive a server restart
    (retried for ``TASKGRAPH_DB_RETRY_S`` seconds, then
    :class:`~taskgraph.storage.retry.DatabaseUnavailableError`)."""

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        """Return whether the trial took ``state`` (see :meth:`RDBStorage.set_trial_state_values`)."""
        tried = False

        def tell() -> bool:
            nonlocal tried
            if tried and state.is_finished():
                # The first attempt may have committed before its connection broke.
                current = optuna.storages.RDBStorage.get_trial(self, trial_id)
                if current.state == state:
                    return True
            tried = True
            return optuna.storages.RDBStorage.set_trial_state_values(self, trial_id, state, values)

        return with_connection_retry(tell, url=self.url, what="optuna set_trial_state_values")

    def stale_trial_ids(self, study_id: int) -> list[int]:
        """Return the ids of the study's RUNNING trials whose heartbeat is older than the grace
        period: what ``optuna.storages.fail_stale_trials`` fails (Optuna's own query)."""
        return self._get_stale_trial_ids(study_id)

    def heartbeat_times(self, trial_ids: Collection[int]) -> dict[int, datetime.datetime]:
        """Return the last heartbeat of each of ``trial_ids`` that has one, by the database's
        clock (what ``record_heartbeat`` writes and ``fail_stale_trials`` compares).

        Optuna has no public read of a heartbeat; this reads its ``trial_heartbeats`` table
        through Optuna's own model, so the column types are Optuna's.
        """
        if not trial_ids:
            return {}
        beat = optuna_models.TrialHeartbeatModel
        query = sqlalchemy.select(beat.trial_id, beat.heartbeat).where(
            beat.trial_id.in_(list(trial_ids))
        )

        def read() -> dict[int, datetime.datetime]:
            with self.engine.connect() as connection:
                return {int(row[0]): row[1] for row in connection.execute(query)}

        return with_connection_retry(read, url=self.url, what="optuna heartbeat_times")


for _name in _DATABASE_CALLS:
    setattr(RetryingRDBStorage, _name, _retried(_name, getattr(optuna.storages.RDBStorage, _name)))
