"""``taskgraph study submit``: create a study in the database and run its driver as a Ray job."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from taskgraph.errors import ConfigError
from taskgraph.runners.builtin import require_ray
from taskgraph.search.engine import StudyEngine
from taskgraph.spec.models import StudySpec

__all__ = ["submit_study"]


def submit_study(
    spec: StudySpec,
    *,
    storage_url: str,
    address: str,
    cluster_address: str = "auto",
    cluster_storage_url: str | None = None,
    client: Any = None,
) -> str:
    """Create the study in the database and submit its driver as a Ray job; return the job id.

    The job runs ``taskgraph study resume NAME --runner ray --address CLUSTER`` on the cluster
    with ``TASKGRAPH_STORAGE`` in its environment (so the password is not on a command line),
    and returns at once; progress is read from the database with ``taskgraph study status``.
    ``cluster_storage_url`` is the same database as the cluster reaches it (inside docker
    compose, ``postgres:5432`` rather than ``127.0.0.1:5432``).  Without Ray installed (the
    ``ray`` extra), one ``ConfigError`` line and no study.
    """
    import shlex

    # Imported here, not with the module: without Ray, the line above instead of a traceback.
    require_ray("study submit")
    from taskgraph.runners.ray.runner import QUIET_RAY_ENV

    # The cluster first: an address where no job API answers is one error, and no study.
    if client is None:
        from ray.job_submission import JobSubmissionClient

        from taskgraph.runners.ray.address import (
            ClusterUnavailableError,
            check_job_server_address,
        )

        check_job_server_address(address)
        try:
            client = JobSubmissionClient(address)
        except ConnectionError as error:
            # Nothing answers (the connection refused, the head gone since the check): the
            # environment, exit 1, as check_job_server_address says of a closed port.
            raise ClusterUnavailableError(
                f"--address {address}: no Ray job server answers there "
                f"({_first_line(error)}); start one with `ray start --head "
                "--include-dashboard=true` or correct the address"
            ) from None
        except (ValueError, RuntimeError) as error:
            # Something answers that is no job server (a 404, another Ray version): the
            # address given is wrong, exit 2.
            raise ConfigError(
                f"--address {address}: no Ray job server answers there ({_first_line(error)});"
                " study submit needs the job server (dashboard) address, e.g. http://HEAD:8265"
            ) from None
    engine = StudyEngine(spec=spec, storage_url=storage_url)
    try:
        engine.open()
    finally:
        engine.close()
    entrypoint = (
        f"taskgraph study resume {shlex.quote(spec.name)} --runner ray "
        f"--address {shlex.quote(cluster_address)} --quiet"
    )
    env: Mapping[str, str] = {
        "TASKGRAPH_STORAGE": cluster_storage_url or storage_url,
        **QUIET_RAY_ENV,
    }
    job_id: str = client.submit_job(
        entrypoint=entrypoint,
        submission_id=f"taskgraph-{spec.name}-{uuid.uuid4().hex[:8]}",
        runtime_env={"env_vars": dict(env)},
        metadata={"study": spec.name},
    )
    return job_id


def _first_line(error: BaseException) -> str:
    # Ray's message names the address it tried, which may not be the one given.
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
