"""What the ``taskgraph study`` commands share: their options, reading a spec with its
``--set`` overrides, the database URL, and how a stopped command says so.

``--trials``, ``--runner``, ``--address`` and ``--set`` all set spec fields; a conflict between
an option and a ``--set`` of the same field is refused (:func:`_refuse_conflicts`), and an error
in a field names the option that set it (:func:`_labels`).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from taskgraph.cli.output import stderr_console
from taskgraph.errors import ConfigError

TrialsOption = Annotated[
    int | None, typer.Option("--trials", min=1, help="Budget of trials (overrides budget.trials).")
]
RunnerOption = Annotated[
    str | None,
    typer.Option(
        "--runner",
        help="Runner: local, ray or tabular (overrides runner.name; the spec's other runner "
        "settings are kept only for the same name, and --set runner.* applies after it).",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray cluster address, e.g. auto or the GCS's head:6379 (overrides runner.address; "
        "Ray Client's ray:// is refused); local: taskgraph's own Ray on this machine (leaves "
        "a dead cluster stored with a study); switches to the ray runner.",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a spec field: dotted.path=value (value read as YAML), repeatable; e.g. "
        "--set search.max_steps=20 --set encoder.name=tiny-bert.",
    ),
]
WallOption = Annotated[
    str | None,
    typer.Option(
        "--wall-time",
        help="Wall-time budget of this invocation only (not stored; without it, the spec's "
        "budget.wall_time), e.g. 600, 10m, 2h.",
    ),
]
TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust-remote-code",
        help="Allow `encoder.options: {trust_remote_code: true}`, which runs Python code "
        "shipped with the model directory.",
    ),
]

# The spec field each command-line option sets: an error in that field names the option.
_OPTION_LABELS = {
    "budget.trials": "--trials",
    "runner.name": "--runner",
    "runner.address": "--address",
}


def _overrides(*, trials: int | None, runner: str | None, address: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if trials is not None:
        out["budget.trials"] = trials
    # --runner and --address are runner.name and runner.address, set before any
    # --set runner.*: the app applies those to the runner they choose.
    out.update(_runner_choice(runner, address) or {})
    return out


def _runner_choice(runner: str | None, address: str | None) -> dict[str, Any] | None:
    """Return ``{"runner.name": ..., "runner.address": ...}`` for --runner/--address (None
    without either); --address alone means the ray runner."""
    if address is not None and not address.strip():
        raise ConfigError(
            "--address is empty: give a Ray cluster address (auto or the GCS's "
            "host:6379), or drop --address"
        )
    if runner is None and address is None:
        return None
    out: dict[str, Any] = {"runner.name": "ray" if runner is None else runner}
    if address is not None:
        out["runner.address"] = address
    return out


def _parse_sets(values: list[str] | None) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects dotted.path=value, got {item!r}")
        if not raw.strip():  # YAML reads it as null, which every field then calls "None"
            raise ConfigError(
                f"--set {key.strip()}= has no value: give one (null for none, '\"\"' for an "
                "empty string)"
            )
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML") from None
    return out


def _load_checked(
    path: Path,
    overrides: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """Return the checked spec at ``path`` with ``overrides`` (:func:`taskgraph.app.load_study_spec`)."""
    from taskgraph.app.studies.specs import load_study_spec

    return load_study_spec(path, overrides, labels=labels, trust_remote_code=trust_remote_code)


def _labels(sets: dict[str, Any], options: dict[str, Any]) -> dict[str, str]:
    # --set first, so that an option given explicitly (--trials) names itself.
    labels = {key: f"--set {key}" for key in sets}
    labels.update({key: _OPTION_LABELS.get(key, key) for key in options})
    return labels


_MISSING = object()


def _set_value(key: str, set_key: str, value: Any) -> Any:
    """Return the value that ``--set set_key=value`` gives spec field ``key`` (``_MISSING``
    where it gives none): the field itself, or inside a mapping set whole (``--set
    'budget={trials: 3}'``; ``--set runner=ray`` is the runner's name)."""
    if set_key == key:
        return value
    if not key.startswith(set_key + "."):
        return _MISSING
    if set_key == "runner" and isinstance(value, str):
        value = {"name": value}  # the spec's `runner: ray` shorthand
    for part in key.removeprefix(set_key + ".").split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _refuse_conflicts(
    sets: dict[str, Any], options: dict[str, Any], labels: dict[str, str], *, fixed: str = ""
) -> None:
    """Refuse a ``--set`` that gives a spec field another value than the option that sets it
    (``--set budget.trials=3 --trials 4``): neither silently wins.  ``labels`` name the
    options (``--address`` for the ray runner it implies); ``fixed`` is the key an option
    sets that the user cannot drop (`study submit`'s ray runner)."""
    for key, value in options.items():
        for set_key, set_value in sets.items():
            given = _set_value(key, set_key, set_value)
            if given is _MISSING or given == value:
                continue
            way_out = f"drop --set {set_key}" if key == fixed else "give one"
            raise ConfigError(
                f"{labels.get(key, key)} and --set {set_key} both set spec field {key} "
                f"({value!r} and {given!r}): {way_out}"
            )


def _storage(option: str | None, spec: Any = None, labels: dict[str, str] | None = None) -> str:
    """Return the storage URL (``option``, else the environment's, else ``spec``'s); an error
    in the spec's names ``--set storage`` where ``labels`` say it set the field."""
    from taskgraph.storage import resolve_storage_url

    return resolve_storage_url(
        option,
        spec_storage=None if spec is None else spec.storage,
        spec_origin=(labels or {}).get("storage"),
    )


def _stopped(stop: KeyboardInterrupt, what: str) -> NoReturn:
    """Say how the command was stopped and ``what`` became of its work; exit 130 after Ctrl-C,
    143 after SIGTERM (raised under ``terminate_as_interrupt``, also when a library turned
    it into a plain ``KeyboardInterrupt``)."""
    from taskgraph.search.heartbeat import was_terminated

    terminated = was_terminated(stop)
    how = "terminated (SIGTERM)" if terminated else "interrupted"
    stderr_console.print(f"{how}: {what}", soft_wrap=True)
    raise typer.Exit(143 if terminated else 130) from None


def _quiet_transformers() -> None:
    # Loading an encoder draws transformers' "Loading weights" tqdm bar on stderr in every
    # trial: noise between the trial lines of a log, and a second bar fighting ours in a
    # terminal.  transformers reads this variable (through huggingface_hub) when it is first
    # imported, which is after this point; Ray workers started from here inherit it.  A user
    # who sets it to 0 keeps the bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] != "0":
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # imported before (in-process callers of the CLI)


def _done_of_budget(n_done: int, budget: int | None) -> str:
    """Return ``5/20 trials``; past a budget that a smaller ``--trials`` lowered, ``24 trials,
    more than the budget of 20`` (never ``24/20``); ``5 trials`` without a budget (a study
    that taskgraph did not create)."""
    if budget is None:
        return f"{n_done} trials"
    if n_done <= budget:
        return f"{n_done}/{budget} trials"
    return f"{n_done} trials, more than the budget of {budget}"


def _masked(url: str) -> str:
    from taskgraph.storage import mask_url

    return shlex.quote(mask_url(url))
