"""Study creation: the Optuna study created or loaded, its spec stored, tied to its records.

A study name holds an Optuna study and a records study (``tg_studies``) in one database.
:class:`StudyCreator` refuses a name whose stored study is another (another search spec, or
records of a study deleted outside taskgraph) before anything is written, then creates or
loads the Optuna study, stores the spec on it and ties it to its records study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna

from taskgraph.errors import SpecError
from taskgraph.search.dashboard_notes import write_study_note
from taskgraph.search.heartbeat import quiet_optuna
from taskgraph.search.progress import (
    BUDGET_ATTR,
    SEARCH_HASH_ATTR,
    SPEC_ATTR,
    STARTUP_ATTR,
    spec_differences,
)
from taskgraph.search.samplers import build_pruner, build_sampler
from taskgraph.spec.models import StudySpec
from taskgraph.storage.repository import RECORDS_IDENTITY_ATTR
from taskgraph.storage.urls import mask_url, storable_spec

if TYPE_CHECKING:
    from taskgraph.storage.optuna_rdb import RetryingRDBStorage
    from taskgraph.storage.repository import Repository

__all__ = ["StudyCreator"]


class StudyCreator:
    """Creates or loads study ``spec.name`` on ``storage`` (Optuna's) and ``repository`` (the
    records), after checking that the name holds no other study.

    ``spec``: the spec this run follows; ``stored_spec``: the one the study is stored with
    (without this invocation's wall time); ``storage_url``: the URL errors name.
    """

    def __init__(
        self,
        *,
        spec: StudySpec,
        stored_spec: StudySpec,
        storage: RetryingRDBStorage,
        storage_url: str,
        repository: Repository,
    ) -> None:
        self.spec = spec
        self.stored_spec = stored_spec
        self.storage = storage
        self.storage_url = storage_url
        self.repository = repository

    def create(
        self,
        prior_records: Sequence[Any] | None,
        startup: tuple[str, dict[str, float]],
        screens: list[Any],
        stored_attrs: Mapping[str, Any],
        *,
        keep_stored: bool = False,
    ) -> optuna.Study:
        """Create or load the Optuna study, store its spec and tie it to its records study
        (``keep_stored``: a study that has a stored spec keeps it, and its budget)."""
        spec = self.spec
        self.check_records()
        study = optuna.create_study(
            study_name=spec.name,
            storage=self.storage,
            sampler=build_sampler(
                spec,
                prior_records=prior_records,
                startup_scores=startup[1],
                lookahead=[screen.matrix for screen in screens],
            ),
            pruner=build_pruner(spec.pruner),
            direction=spec.objective.direction,
            load_if_exists=True,
        )
        if study.direction.name.lower() != spec.objective.direction:
            raise SpecError(
                f"study {spec.name!r} exists with direction {study.direction.name.lower()}, "
                f"the spec says {spec.objective.direction}"
            )
        # Stored without the storage URL's password: optuna-dashboard serves user attributes.
        # The stored spec, not this run's: an invocation's wall time is not the study's.
        stored = self.stored_spec.model_dump(mode="json")
        if not (keep_stored and SPEC_ATTR in stored_attrs):
            storable = storable_spec(stored)
            study.set_user_attr(SPEC_ATTR, storable)
            # optuna-dashboard cuts the attribute at 1024 characters; its note shows the whole.
            write_study_note(study, storable, replace=stored_attrs.get(SPEC_ATTR) != storable)
            study.set_user_attr(SEARCH_HASH_ATTR, spec.search_hash())
            study.set_user_attr(BUDGET_ATTR, spec.budget.trials)
        # optuna-dashboard's name for the objective (otherwise "Objective 0").
        metric = f"{spec.target} {self.objective_metric()} on {spec.objective.split}"
        with quiet_optuna():
            if study.metric_names != [metric]:
                study.set_metric_names([metric])
        if spec.sampler.name == "graph":
            study.set_user_attr(STARTUP_ATTR, {"source": startup[0], "scores": startup[1]})
        self.repository.ensure_study(
            spec.name,
            spec=stored,
            direction=spec.objective.direction,
            target=spec.target,
        )
        identity = self.repository.study_identity(spec.name)
        study_id = self.storage.get_study_id_from_name(spec.name)
        if self.storage.get_study_system_attrs(study_id).get(RECORDS_IDENTITY_ATTR) != identity:
            self.storage.set_study_system_attr(study_id, RECORDS_IDENTITY_ATTR, identity)
        return study

    def check_records(self) -> None:
        """Refuse, before anything is written, a study whose name has records of another study.

        The Optuna study carries the identity of its records study
        (``RECORDS_IDENTITY_ATTR``, :meth:`Repository.study_identity`).  Records under the
        name with no Optuna study, or with an Optuna study tied to other records, belong to a
        study deleted outside taskgraph (``optuna delete-study``): the new study's runs would
        be dropped as repeats of the old ones (one run per study, trial and seed) and the old
        spec kept.  Adopted instead: records that hold no spec and no trial's run (written
        through the Repository alone, e.g. a screen stored first: no study ran on them; runs of
        trials under no spec are a deleted study's driver's late write, refused), and, by an
        Optuna study
        written before the tie existed (it has ``taskgraph:spec`` but no tie), the records it
        finds: nothing tells them apart, and refusing would stop every study of an existing
        database.
        """
        name = self.spec.name
        records = self.repository.study_identity(name)
        if records is None:
            return
        try:
            study_id = self.storage.get_study_id_from_name(name)
        except KeyError:
            study_id = None
        # Records without a spec were written through the Repository alone (a screen stored
        # before its study ran): no study has run on them, this one takes them.
        opened = self.repository.study_has_spec(name)
        if study_id is None:
            # Spec-less records holding runs of trials (numbers from 0; a screen's are
            # negative) were written by a driver of a study deleted under it: its late write
            # created the records again.  A new study would drop its own runs as repeats.
            trained = any(number >= 0 for number, _ in self.repository.run_keys(name))
            if not opened and not trained:
                return
            why = (
                "that no Optuna study holds (a study deleted outside taskgraph, or deleted "
                "while a driver still wrote to it, leaves them)"
            )
        else:
            tied = self.storage.get_study_system_attrs(study_id).get(RECORDS_IDENTITY_ATTR)
            if tied == records:
                return
            if tied is None and (
                not opened or SPEC_ATTR in self.storage.get_study_user_attrs(study_id)
            ):
                return  # written before the tie, or records no study ran on: adopted
            why = (
                "from another study of that name than the Optuna study (deleted and created again)"
            )
        from taskgraph.storage.urls import delete_command

        raise SpecError(
            f"study {name!r} has records in {mask_url(self.storage_url)} {why}; they would mix "
            f"with this study's: remove them with `{delete_command(name, self.storage_url)}`, "
            "or rename the study (field `name`)"
        )

    def objective_metric(self) -> str:
        """Return the objective's metric: the spec's, else the catalog's primary metric of the
        target (a task the catalog does not know, such as a table's, says "score")."""
        from taskgraph.tasks import get_task

        if self.spec.objective.metric is not None:
            return self.spec.objective.metric
        try:
            return get_task(self.spec.target).primary_metric
        except KeyError:
            return "score"

    def check_same_study(self, attrs: Mapping[str, Any]) -> None:
        """Raise :class:`SpecError` naming the differing fields if the stored study is another."""
        spec = self.spec
        stored = attrs.get(SEARCH_HASH_ATTR)
        if stored is None or stored == spec.search_hash():
            return
        stored_spec = attrs.get(SPEC_ATTR)
        differences = None
        if isinstance(stored_spec, Mapping):
            differences = spec_differences(stored_spec, spec.model_dump(mode="json"))
            if not differences:
                return  # only fields that do not define the trials differ (e.g. data_dir)
        from taskgraph.storage.urls import resume_command

        which = f" ({'; '.join(differences)})" if differences else ""
        raise SpecError(
            f"study {spec.name!r} already exists in {self.repository.url} with another "
            f"spec{which}; rename the study (field `name`) or continue it with "
            f"`{resume_command(spec.name, self.repository.url)}`"
        )
