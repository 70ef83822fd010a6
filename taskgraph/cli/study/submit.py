"""``taskgraph study submit``: send a study to a running Ray cluster as a job."""

from __future__ import annotations

from typing import Annotated

import typer

from taskgraph.cli.options import SpecArgument, StorageOption
from taskgraph.cli.output import stderr_console, stdout_console
from taskgraph.cli.study._common import (
    SetOption,
    TrialsOption,
    TrustOption,
    _labels,
    _load_checked,
    _masked,
    _overrides,
    _parse_sets,
    _refuse_conflicts,
    _storage,
)
from taskgraph.errors import ConfigError


def submit(
    spec: SpecArgument,
    address: Annotated[
        str,
        typer.Option(
            "--address", help="Ray dashboard (job server) address, e.g. http://head:8265."
        ),
    ],
    storage: StorageOption = None,
    trials: TrialsOption = None,
    sets: SetOption = None,
    trust_remote_code: TrustOption = False,
    cluster_address: Annotated[
        str, typer.Option("--cluster-address", help="Ray address the job's driver connects to.")
    ] = "auto",
    cluster_storage: Annotated[
        str | None,
        typer.Option(
            "--cluster-storage",
            help="Database URL as the cluster sees it (default: the --storage URL), e.g. "
            "postgresql+psycopg://user:pw@postgres:5432/taskgraph inside docker compose.",
        ),
    ] = None,
) -> None:
    """Send a study to a running Ray cluster and return at once; follow it with `study status`."""
    from taskgraph.runners.builtin import require_ray

    require_ray("study submit")  # before the spec's checks, which would name the ray runner
    from taskgraph.runners.ray import submit_study

    if not address.strip():  # required here: dropping it is no way out
        raise ConfigError(
            "--address is empty: give the Ray dashboard (job server) address, e.g. http://head:8265"
        )
    if not cluster_address.strip():
        raise ConfigError(
            "--cluster-address is empty: give a Ray address, or drop --cluster-address"
        )
    overrides = _parse_sets(sets)
    options = _overrides(trials=trials, runner="ray", address=None)
    labels = _labels(overrides, options)
    labels["runner.name"] = "study submit (the ray runner)"
    _refuse_conflicts(overrides, options, labels, fixed="runner.name")
    overrides.update(options)
    checked = _load_checked(spec, overrides, labels=labels, trust_remote_code=trust_remote_code)
    url = _storage(storage, checked, labels)
    if (cluster_storage or url).startswith("sqlite"):
        stderr_console.print(
            "warning: a SQLite database must be on a file system the cluster shares; use "
            "PostgreSQL (--storage postgresql+psycopg://...) for a real cluster",
            soft_wrap=True,
        )
    job_id = submit_study(
        checked,
        storage_url=url,
        address=address,
        cluster_address=cluster_address,
        cluster_storage_url=cluster_storage,
    )
    stdout_console.print(
        f"submitted study {checked.name!r} as Ray job {job_id}; follow it with "
        f"`taskgraph study status {checked.name} --storage {_masked(url)}`",
        soft_wrap=True,
    )
