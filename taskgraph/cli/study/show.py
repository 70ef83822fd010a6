"""``taskgraph study show``: a study's baseline, best trial and the gains of its top trials
(or the spec it was created with)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from taskgraph.cli.options import JsonOption, StorageOption
from taskgraph.cli.output import emit_json, emit_rows, stdout_console
from taskgraph.cli.study._common import _done_of_budget, _storage
from taskgraph.errors import ConfigError


def show(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top", min=1, help="Trials to list by score [default: 10; with --json, all]."
        ),
    ] = None,
    as_json: JsonOption = False,
    spec: Annotated[
        bool,
        typer.Option(
            "--spec",
            help="Print the spec the study was created with (YAML; JSON with --json), whole: "
            "optuna-dashboard cuts it at 1024 characters.",
        ),
    ] = False,
) -> None:
    """Show a study: baseline, best task set and configuration, gains of the top trials."""
    from taskgraph.app.studies.stored import study_spec, study_summary

    if spec:
        if top is not None:
            raise ConfigError("`--top` lists trials; `--spec` prints the spec alone: give one")
        stored = study_spec(name, storage=_storage(storage))
        if as_json:
            emit_json(stored)
        else:
            import yaml

            typer.echo(yaml.safe_dump(stored, sort_keys=False, allow_unicode=True), nl=False)
        return
    if top is None and not as_json:
        top = 10
    report = study_summary(name, storage=_storage(storage), top=top)
    if as_json:
        emit_json(report)
        return
    base = report["baseline"]
    best = report["best"]
    stdout_console.print(
        f"study {report['name']!r} (target {report['target']}, {report['direction']}): "
        f"{_done_of_budget(report['n_done'], report['budget'])}, {report['n_complete']} complete, "
        f"{report['n_pruned']} pruned, {report['n_failed']} failed, {report['n_running']} running"
        + _interrupted_note(report.get("n_interrupted") or 0, report.get("n_waiting") or 0)
        + _repeats_note(report.get("n_repeats") or 0),
        soft_wrap=True,
    )
    # The trials' pretraining is named where some trial pretrained (as the table's column).
    pretrained = any(r.get("pretraining", "none") != "none" for r in report["gains"]) or any(
        _pretraining_of(shown.get("configuration"), searched=False)
        for shown in (base, best)
        if shown is not None
    )
    if base is not None:
        stdout_console.print(
            f"baseline (target alone"
            f"{_pretraining_of(base.get('configuration'), searched=pretrained)}, "
            f"trial {base['trial']}): {base['score']:.4f}",
            soft_wrap=True,
        )
    if best is not None:
        aux = "+".join(best["auxiliaries"] or []) or "target alone"
        stdout_console.print(
            f"best (trial {best['trial']}): {best['score']:.4f} with {aux}"
            f"{_pretraining_of(best.get('configuration'), searched=pretrained)}, sharing "
            f"{best['configuration'].get('sharing')}"
            + _measured(best["measured_absolute_gain"], best["measured_relative_gain"])
            + (
                ", no measured gain (see below)"
                if base is not None and best.get("no_baseline_because")
                else ""
            )
            + _selection(best.get("data_selection"))
            + _tied_note(best.get("tied_trials") or [], best["score"]),
            soft_wrap=True,
        )
    # Headers with spaces wrap in a narrow terminal; the JSON keys name the same numbers.
    rows = [
        {**r, "measured absolute gain": r["measured_absolute_gain"],
         "measured relative gain": r["measured_relative_gain"]}
        for r in report["gains"]
    ]  # fmt: skip
    columns = ["trial", "auxiliaries", "sharing"]
    # The pretraining and selection columns only when some trial has them (most studies do
    # not, and print as before).
    if any(r.get("pretraining", "none") != "none" for r in rows):
        columns.append("pretraining")
    if any(r.get("data_selection") for r in rows):
        columns.append("selection")
        for r in rows:
            r["selection"] = _selection_cell(r.get("data_selection"))
    columns += ["value", "measured absolute gain", "measured relative gain"]
    # A trial measured against another baseline than the header's (a baseline of its own model
    # family or settings, or on a newer version of the target's data): the column says which.
    shown_base = None if base is None else base["trial"]
    if any(r.get("baseline_trial") not in (None, shown_base) for r in rows):
        columns.append("baseline")
        values = {r["trial"]: r["value"] for r in report["gains"]}
        for r in rows:
            other = r.get("baseline_trial")
            r["baseline"] = (
                ""
                if other is None
                else f"trial {other}"
                + (f" ({values[other]:.4f})" if isinstance(values.get(other), float) else "")
            )
    if any(r.get("repeat_of") is not None for r in rows):
        # A repeat is the earlier trial's measurement told again, not new evidence.
        columns.insert(1, "repeat of")
        for r in rows:
            r["repeat of"] = "" if r.get("repeat_of") is None else f"trial {r['repeat_of']}"
    emit_rows(
        rows,
        columns=columns,
        title=(
            "trials by score (absolute gain = value - baseline; relative = that / baseline)"
            if report.get("direction", "maximize") == "maximize"
            else "trials by score (lower is better: absolute gain = baseline - value; "
            "relative = that / baseline)"
        ),
    )  # fmt: skip
    differing = [r for r in report["gains"] if r.get("differs_from_baseline")]
    if differing:
        names = sorted({name for r in differing for name in r["differs_from_baseline"]})
        stdout_console.print(
            f"{len(differing)} of the {len(report['gains'])} trials shown differ from the "
            f"baseline in settings the study searched ({', '.join(names)}): their measured "
            "gains hold those settings' effect besides the transfer (`--json`: each trial's "
            "`differs_from_baseline`); fix them in the spec to measure the transfer alone",
            soft_wrap=True,
        )
    # Trials with no complete baseline of their model family on their version of the target's
    # data: a gain against another family's or version's baseline would hold that difference
    # besides the transfer.  One line per reason.
    unmeasured: dict[str, list[int]] = {}
    for r in sorted(report["gains"], key=lambda r: r["trial"]):
        if r.get("no_baseline_because"):
            unmeasured.setdefault(r["no_baseline_because"], []).append(r["trial"])
    if base is not None:
        for reason, trials in unmeasured.items():
            numbers = ", ".join(map(str, trials))
            stdout_console.print(
                f"no measured gain for trial{'s' if len(trials) != 1 else ''} {numbers}: "
                f"{reason} (`--json`: each trial's `no_baseline_because`)",
                soft_wrap=True,
            )
    for late in report["not_converged"]:
        # A score still rising at its last evaluation understates the trial: a weak comparison.
        # A repeat shares its earlier trial's runs: said so, not a second piece of evidence.
        repeat = late.get("repeat_of")
        stdout_console.print(
            f"trial {late['trial']}{' (baseline)' if late['role'] == 'baseline' else ''}: "
            f"not converged: still rising ({late['rise']:+.4f} at the last evaluation)"
            + ("" if repeat is None else f"; repeat of trial {repeat}: the same measurement"),
            soft_wrap=True,
        )
    for failure in report["failures"]:
        stdout_console.print(
            f"trial {failure['trial']} failed: {failure['reason']}", soft_wrap=True
        )


def _interrupted_note(interrupted: int, waiting: int) -> str:
    """Return the header's words for trials a stopped driver interrupted (they do not count
    against the budget) and the trials queued to run, e.g. their retries ('' for none)."""
    parts = []
    if interrupted:
        parts.append(f"{interrupted} interrupted")
    if waiting:
        parts.append(f"{waiting} waiting for `study resume`")
    return "".join(f", {part}" for part in parts)


def _repeats_note(n_repeats: int) -> str:
    """Return ``study show``'s note on repeated trials (none: empty)."""
    if not n_repeats:
        return ""
    return (
        f"; {n_repeats} repeat{'s' if n_repeats != 1 else ''} of an earlier configuration "
        "(counted against the budget, not new measurements)"
    )


def _tied_note(tied: list[int], score: float) -> str:
    """Return the best line's note on trials that reached the same value ("" when none)."""
    if not tied:
        return ""
    shown = ", ".join(str(t) for t in tied[:_SHOWN_TIES])
    more = f" and {len(tied) - _SHOWN_TIES} more" if len(tied) > _SHOWN_TIES else ""
    return (
        f"; tied at {score:.4f} with {len(tied)} other trial{'s' if len(tied) > 1 else ''} "
        f"({shown}{more}): the study cannot tell them apart, this one only came first"
    )


#: how many trials tied with the best `study show` names
_SHOWN_TIES = 8


def _pretraining_of(configuration: dict[str, Any] | None, *, searched: bool) -> str:
    """Return ", pretraining random" for `study show`'s baseline and best lines (", no
    pretraining" where the study searches the stage, else empty)."""
    stage = (configuration or {}).get("pretraining") or {}
    scheme = stage.get("scheme") if isinstance(stage, dict) else None
    if scheme and scheme != "none":
        return f", pretraining {scheme}"
    return ", no pretraining" if searched else ""


def _selection(selection: dict[str, Any] | None) -> str:
    """Return ", keep 0.42 of 3 auxiliaries (1008/2400 examples)" (empty without selection)."""
    if not selection:
        return ""
    kept = selection.get("kept") or {}
    share = ""
    if kept:
        n_kept = sum(int(r.get("kept") or 0) for r in kept.values())
        n_pool = sum(int(r.get("pool") or r.get("examples") or 0) for r in kept.values())
        share = f" ({n_kept}/{n_pool} examples)"
    return f", keep {float(selection.get('keep') or 0):.2f} of each auxiliary{share}"


def _selection_cell(selection: dict[str, Any] | None) -> str:
    """Return "keep 0.46 (184/400)" for the trials table."""
    text = _selection(selection).removeprefix(", keep ")
    return "keep " + text.replace(" of each auxiliary", "").replace(" examples", "") if text else ""


def _measured(absolute: float | None, relative: float | None) -> str:
    """Return ", measured gain +0.2998 (+42.8 % of the baseline)" (empty without a baseline)."""
    if absolute is None:
        return ""
    share = "" if relative is None else f" ({relative:+.1%} of the baseline)"
    return f", measured gain {absolute:+.4f}{share}"
