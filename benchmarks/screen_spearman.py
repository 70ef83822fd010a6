"""How well does one screen rank the candidates?  Spearman against measured gains.

For one target, reads the measured single-auxiliary gains (a study of the records database
whose trials train the target alone and with each candidate, such as
``bioner_transfer_ncbi_disease``, or a long CSV ``target,task_set,split,value,higher_is_better``
as ``taskgraph bench --table`` reads), the screen's predictions (the latest screen stored with
``--screen-study``, default the same study; with ``--spec`` and no screen stored, the screen is
run first: ``taskgraph study screen SPEC``) and the text-embedding (TextEmb, MiniLM) similarity
of each candidate to the target, and prints

    n_candidates: 14
    screen_spearman: X
    textemb_spearman: X

each with its p-value, a 95 % bootstrap interval over the candidates, and the smallest |rho|
significant at 5 % for that many candidates (0.54 for 14: one screen's rho of 0.3 is not
evidence either way; up to 8 candidates counted over every permutation, and with 3 or 4 no
rho is significant at all).  Also the screen's cost against one trial of the study.

    .venv/bin/python benchmarks/screen_spearman.py --storage sqlite:///results.db \\
        --study bioner_transfer_ncbi_disease \\
        --spec searchspaces/results/bioner_transfer_ncbi_disease.yaml
    .venv/bin/python benchmarks/screen_spearman.py --table gains.csv --target ncbi_disease \\
        --storage sqlite:///results.db --screen-study bioner_transfer_ncbi_disease

A screen is written only with ``--spec`` and only when the screen study has none; point
``--storage`` at a copy of a database another process is writing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from taskgraph.affinity.screening import (
    EXACT_MAX_N,
    RankAgreement,
    rank_agreement,
    screen_scores,
    single_auxiliary_gains,
)
from taskgraph.cli.scripts import DATA_HELP, ScriptParser, positive_int, run_script
from taskgraph.errors import ConfigError, TaskgraphError, command_line_wording


def measured_gains(args: argparse.Namespace) -> tuple[str, dict[str, float]]:
    """Return (target, source -> measured single-auxiliary gain) from --table (with --target)
    or --study."""
    if args.table:
        from taskgraph.affinity.longtable import read_long_csv

        data = read_long_csv(args.table)
        split = args.split or ("val" if "val" in data.splits else data.splits[0])
        return args.target, single_auxiliary_gains(data.to_records(split=split), args.target)
    from taskgraph.storage import open_repository

    with open_repository(args.storage, create=False) as repository:
        specs = repository.study_specs()
        if args.study not in specs:
            known = ", ".join(sorted(specs)) or "none"
            raise SystemExit(f"error: no study {args.study!r} in {args.storage} (studies: {known})")
        objective = specs[args.study].get("objective") or {}
        target = args.target or specs[args.study]["target"]
        split = args.split or objective.get("split") or "dev"
        metric = args.metric or objective.get("metric")
        records = [
            r for r in repository.score_records(split=split, metric=metric)
            if r.study == args.study
        ]  # fmt: skip
    return target, single_auxiliary_gains(records, target)


def database_exists(url: str) -> bool:
    """Return False for a SQLite URL whose file is not there yet; True for any other URL."""
    from taskgraph.storage.urls import parse_storage_url, sqlite_path

    path = sqlite_path(parse_storage_url(url))
    return path is None or path.exists()


def screen_predictions(args: argparse.Namespace, target: str) -> tuple[dict[str, float], Any]:
    """Return (candidate -> predicted effect, the screen) of the latest screen, run if asked."""
    from taskgraph.storage import open_repository

    study = args.screen_study or args.study
    storage = args.screen_storage or args.storage
    screens = []
    if study and (database_exists(storage) or not args.spec):
        # Read only: a database that is not there yet is created by the screen run below
        # (without --spec, reading it says there is none).
        with open_repository(storage, create=False) as repository:
            screens = repository.screens(study)
    if not screens and args.spec:
        from taskgraph.app.screening import screen_study
        from taskgraph.app.studies.specs import load_study_spec

        spec = load_study_spec(args.spec)
        print(f"running the screen of {spec.name!r} ({args.spec})", file=sys.stderr)
        screen_study(spec, storage=storage, data=args.data, steps=args.steps,
                     probes=args.probes, source=args.spec)  # fmt: skip
        study = spec.name
        with open_repository(storage) as repository:
            screens = repository.screens(study)
    if not screens:
        named = f"study {study!r} has no screen" if study else "no --screen-study to read"
        raise SystemExit(f"error: {named} in {storage}; pass --spec to run one")
    return screen_scores(screens[-1].matrix, target), screens[-1]


def _line(name: str, agreement: RankAgreement | None) -> None:
    if agreement is None:
        print(f"{name}: nan")
        return
    print(f"{name}: {agreement.spearman:.3f}")
    print(f"{name}_p: {agreement.p_value:.3f}")
    print(f"{name}_ci95: [{agreement.low:.3f}, {agreement.high:.3f}]")


def significance_note(agreement: RankAgreement) -> str:
    """Return, in words, which |rho| is significant at 5 % for ``agreement``'s candidates."""
    n = agreement.n
    if n <= EXACT_MAX_N:
        how = "two-sided, exact: every permutation, as for p"
        if agreement.critical is None:
            return f"with n={n} candidates, no |rho| is significant at 5 % ({how})"
        return (
            f"with n={n} candidates, |rho| >= {agreement.critical:.2f} is significant at 5 % "
            f"({how})"
        )
    return (
        f"with n={n} candidates, |rho| > {agreement.critical:.2f} is significant at 5 % "
        f"(two-sided, t approximation, as for p; p is exact for n <= {EXACT_MAX_N})"
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    embed: Callable[..., Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Print the agreements and return them (``embed``: the TextEmb function, for tests)."""
    parser = ScriptParser(description=__doc__)
    parser.add_argument(
        "--storage",
        default=None,
        help="records database URL (default: $TASKGRAPH_STORAGE, else sqlite:///taskgraph.db)",
    )
    parser.add_argument("--study", help="study with the measured single-auxiliary gains")
    parser.add_argument("--table", help="long CSV of measured scores instead of --study")
    parser.add_argument("--target", help="target task (default: the study's)")
    parser.add_argument("--split", help="split of the measured scores (default: the objective's)")
    parser.add_argument("--metric", help="metric (default: the study's objective metric)")
    parser.add_argument("--screen-study", help="study the screen is stored with (default --study)")
    parser.add_argument("--screen-storage", help="database of the screen (default --storage)")
    parser.add_argument("--spec", help="spec to screen when no screen is stored")
    parser.add_argument("--steps", type=positive_int, help="steps of a screen run here")
    parser.add_argument("--probes", type=positive_int, help="lookahead probes of a screen run here")
    parser.add_argument("--data", help=DATA_HELP)
    parser.add_argument("--no-textemb", action="store_true", help="skip the TextEmb ranking")
    parser.add_argument("--bootstrap", type=positive_int, default=2000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    if not args.study and not args.table:
        parser.error("give --study or --table")
    if args.table and not args.target:
        parser.error("--table needs --target")
    if args.table and not Path(args.table).expanduser().is_file():
        parser.error(f"--table: no file {args.table}")
    from taskgraph.storage.urls import resolve_storage_url

    try:
        with command_line_wording():  # errors name --storage, as the taskgraph command's do
            args.storage = resolve_storage_url(args.storage)  # --storage, TASKGRAPH_STORAGE...
            target, measured = measured_gains(args)
            predicted, screen = screen_predictions(args, target)
    except TaskgraphError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    candidates = sorted(set(measured) & set(predicted))
    print(f"target: {target}")
    print(f"n_candidates: {len(candidates)}")
    result: dict[str, Any] = {"target": target, "n_candidates": len(candidates)}
    try:
        screen_agreement = rank_agreement(predicted, measured, n_bootstrap=args.bootstrap)
    except ConfigError as error:
        print("screen_spearman: nan")
        print("textemb_spearman: nan")
        print(f"note: {error}")
        return {**result, "screen": None, "textemb": None}
    _line("screen_spearman", screen_agreement)
    result["screen"] = screen_agreement
    textemb_agreement = None
    if not args.no_textemb:
        from taskgraph.search.screening import textemb_scores

        similarity = textemb_scores(target, candidates, data_dir=args.data, embed=embed)
        if len(set(similarity) & set(measured)) >= 3:
            textemb_agreement = rank_agreement(similarity, measured, n_bootstrap=args.bootstrap)
    _line("textemb_spearman", textemb_agreement)
    result["textemb"] = textemb_agreement
    print(f"note: {significance_note(screen_agreement)}; the interval resamples the candidates")
    from taskgraph.app.screening import screen_report, study_trial_cost

    storage = args.screen_storage or args.storage
    cost = screen_report(screen.study, storage=storage, screen=screen.number)["cost"]
    if args.study and not args.table:
        # One trial of the study the gains come from (measured where those runs ran).
        trial, run = study_trial_cost(args.study, storage=args.storage)
        if trial:
            cost.update(trial_seconds=trial, run_seconds=run,
                        trials_equivalent=cost["seconds"] / trial)  # fmt: skip
    line = f"screen_cost: {cost['seconds']:.0f} s, {cost['steps']} steps, {cost['probes']} probes"
    if cost["trial_seconds"]:
        line += (
            f"; one trial of {screen.study!r}: {cost['trial_seconds']:.0f} s "
            f"(one seed's run {cost['run_seconds']:.0f} s); screen = "
            f"{cost['trials_equivalent']:.2f} trials"
        )
    print(line)
    result["cost"] = cost
    ranked = sorted(candidates, key=lambda c: -predicted[c])
    print("screen_ranking: " + ", ".join(f"{c} {predicted[c]:+.4f}" for c in ranked))
    by_gain = sorted(candidates, key=lambda c: -measured[c])
    print("measured_ranking: " + ", ".join(f"{c} {measured[c]:+.4f}" for c in by_gain))
    return result


if __name__ == "__main__":
    raise SystemExit(run_script(main))
