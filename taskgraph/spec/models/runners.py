"""Where a study's trials run (``runner:``): in-process, on Ray, from a table, or a plug-in's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from taskgraph.registry import RUNNERS
from taskgraph.spec.limits import MAX_RAY_RESOURCES
from taskgraph.spec.models.base import Count, Number, _Strict

__all__ = [
    "LocalRunnerSpec",
    "PluginRunnerSpec",
    "RayResources",
    "RayRunnerSpec",
    "RunnerSpec",
    "TabularRunnerSpec",
]


class LocalRunnerSpec(_Strict):
    """Train in-process, one trial at a time.

    ``threads``: torch's intra-op threads per trial (default: the cores this process may use).
    ``checkpoints``: each (trial, seed) checkpoints its training, so that a trial retried after
    Ctrl-C, ``kill`` or a crash resumes where it stopped; its folder is removed once the trial
    is finished.  ``checkpoint_dir``: where, default ``$TASKGRAPH_CACHE/checkpoints``
    (:func:`taskgraph.runners.local.checkpoint_base`).
    """

    name: Literal["local"] = "local"
    threads: Count | None = Field(default=None, ge=1, le=MAX_RAY_RESOURCES)
    checkpoints: bool = True
    checkpoint_dir: str | None = None

    @field_validator("checkpoint_dir")
    @classmethod
    def _checkpoint_dir_nonempty(cls, value: str | None) -> str | None:
        # An empty path would be the working directory: never what an empty value meant.
        if value is not None and not value.strip():
            raise ValueError(
                f"is empty ({value!r}): give a folder, leave it out for "
                "$TASKGRAPH_CACHE/checkpoints, or turn checkpoints off with checkpoints: false"
            )
        return value


class RayResources(_Strict):
    """Resources per trial; fractional GPUs pack several trials on one device."""

    cpu: Number = Field(default=1.0, gt=0, le=MAX_RAY_RESOURCES)
    gpu: Number = Field(default=0.0, ge=0, le=MAX_RAY_RESOURCES)


class RayRunnerSpec(_Strict):
    """Ray Tune trials on a local or remote Ray cluster.

    ``checkpoints``: each (trial, seed) checkpoints its training through Tune (persisted under
    ``experiment_dir``), so that a trial Tune starts again, or a retry after Ctrl-C or a
    killed driver, resumes where it stopped (docs/search.md, ``ray``).
    """

    name: Literal["ray"] = "ray"
    address: str | None = None  # None: start a local Ray; "auto" or a GCS "host:6379"
    resources: RayResources = RayResources()
    max_concurrent_trials: Count = Field(default=1, ge=1, le=MAX_RAY_RESOURCES)
    num_cpus: Count | None = Field(default=None, ge=1, le=MAX_RAY_RESOURCES)  # local Ray only
    # torch's intra-op threads in each trial (default: resources.cpu, at least one)
    threads: Count | None = Field(default=None, ge=1, le=MAX_RAY_RESOURCES)
    experiment_dir: str | None = None  # Tune's state; default: ~/.taskgraph/ray/<study>
    checkpoints: bool = True

    @field_validator("address")
    @classmethod
    def _address_nonempty(cls, value: str | None) -> str | None:
        # Ray reads "" as "no address" and starts a local Ray: never what an empty value meant.
        if value is not None and not value.strip():
            raise ValueError(
                f"is empty ({value!r}): give a Ray cluster address (auto or the GCS's "
                "host:6379), or leave it out to start a local Ray"
            )
        return value


class TabularRunnerSpec(_Strict):
    """Answer trials from a published results table (benchmark studies)."""

    name: Literal["tabular"] = "tabular"
    table: str
    split: str = "val"

    @field_validator("table")
    @classmethod
    def _table_nonempty(cls, value: str) -> str:
        # An empty path would be the working directory: never what an empty value meant.
        if not value.strip():
            raise ValueError(f"is empty ({value!r}): give the results table's CSV file")
        return value


class PluginRunnerSpec(BaseModel):
    """A runner a plug-in registered in :data:`taskgraph.registry.RUNNERS`.

    Its settings are the plug-in's own: every key besides ``name`` is kept as given (the
    runner reads them from ``spec.runner``) and checked by the runner, not here.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str


_BUILTIN_RUNNERS = ("local", "ray", "tabular")


def _runner_tag(value: Any) -> str | None:
    # Built-in runners have their own models; any other registered name is a plug-in's.
    name = value.get("name") if isinstance(value, Mapping) else getattr(value, "name", None)
    if name in _BUILTIN_RUNNERS:
        return str(name)
    return "plugin" if isinstance(name, str) and name in RUNNERS else None


RunnerSpec = Annotated[
    Annotated[LocalRunnerSpec, Tag("local")]
    | Annotated[RayRunnerSpec, Tag("ray")]
    | Annotated[TabularRunnerSpec, Tag("tabular")]
    | Annotated[PluginRunnerSpec, Tag("plugin")],
    Discriminator(_runner_tag),
]
