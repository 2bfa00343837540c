"""The ``whisper-ptq-bench`` command line.

    whisper-ptq-bench report RESULTS... [--out DIR] [--title T] [--sort {config,library}]
    whisper-ptq-bench drill [NAME...] [--list] [--model M] [--corpus C] [--baselines B | --side-by-side | --against PY]
        [--json FILE]
    whisper-ptq-bench upgrade [REQUIREMENT...] [--latest] [--reference-pins F] [--candidate-pins F] [-- PYTEST ARGS]
    whisper-ptq-bench baselines-merge OUT SHARD... (fold the baselines files of a sharded recording into OUT)
    whisper-ptq-bench perf [--model M] [--corpus C] [--max-utterances N] [--batch-size B] [--encoder-batch-size E] [--rounds R]
        [--speed-trials N [--speed-config ID]] [--regimes MINUTES]

Exit status: 0 on success, 2 on bad input (unusable results file, conflicting shards, bad usage),
1 when the report cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from whisper_ptq_bench.options import executable, positive

PROG = "whisper-ptq-bench"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tools of the Whisper post-training quantization benchmark."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    from whisper_ptq_bench.report import DEFAULT_TITLE, SORTS

    report = commands.add_parser(
        "report",
        help="write a Markdown/HTML report with Pareto plots from pytest-benchmark JSON results",
        description=(
            "Read the JSON that 'pytest benchmarks/ --benchmark-only --benchmark-json=FILE' writes (several files: "
            "the shards of one run, merged) and write report.md, report.html and one Pareto plot per model "
            "and corpus family into --out."
        ),
    )
    report.add_argument("results", nargs="+", metavar="RESULTS", help="pytest-benchmark JSON file(s)")
    report.add_argument("--out", default="report", metavar="DIR", help="output directory. Default: %(default)s")
    report.add_argument("--title", default=DEFAULT_TITLE, metavar="T", help="report title. Default: %(default)r")
    report.add_argument(
        "--sort",
        choices=SORTS,
        default="config",
        help="row order: the matrix order of the configs, or grouped by library. Default: %(default)s",
    )
    report.set_defaults(func=_report)

    merge = commands.add_parser(
        "baselines-merge",
        help="fold the baselines files of a sharded recording (one per backend or machine) into one file",
        description="Fold each SHARD's cases into OUT (created when absent): a case's portable fields come from the "
        "last shard holding it, its per-profile entries are united. OUT is written atomically.",
    )
    merge.add_argument("out", metavar="OUT", help="the baselines file to update")
    merge.add_argument("shards", nargs="+", metavar="SHARD", help="baselines files written with --ptq-update-baselines")
    merge.set_defaults(func=_baselines_merge)

    perf = commands.add_parser(
        "perf",
        help="measure the suite itself: harness overhead, batching gain, work done once",
        description="Print the harness overhead against a bare generate loop, the throughput of batched against "
        "unbatched transcription (with any transcript that batching changes), and the counts of loads, feature "
        "extractions, references and quantizations of a small session.",
    )
    perf.add_argument("--model", default="tiny.en", help="model spec. Default: %(default)s")
    perf.add_argument("--corpus", default="read-clean", help="corpus. Default: %(default)s")
    perf.add_argument(
        "--max-utterances",
        type=positive,
        default=30,
        help="utterances used, spread over the corpus as in the main job. Default: %(default)s",
    )
    perf.add_argument("--batch-size", type=positive, default=8, help="batched size. Default: %(default)s")
    perf.add_argument(
        "--encoder-batch-size",
        type=positive,
        default=None,
        help="utterances per encoder call inside a batch. Default: 2 (the CPU default)",
    )
    perf.add_argument("--rounds", type=positive, default=3, help="timed rounds per measurement. Default: %(default)s")
    perf.add_argument(
        "--speed-trials",
        type=positive,
        default=None,
        metavar="N",
        help="instead: measure the speed check's false-alarm rate (N A/A trials) and its detection of a "
        "20%% slowdown (N trials) on --speed-config",
    )
    perf.add_argument(
        "--side-by-side",
        action="store_true",
        help="with --speed-trials: the side-by-side speed check (against a worker environment, alternating rounds), "
        "N trials each of A/A, 20%% slower and 10%% slower",
    )
    perf.add_argument(
        "--speed-config", default="hqq.w-int4.g64.asym", help="configuration of --speed-trials. Default: %(default)s"
    )
    perf.add_argument(
        "--regimes",
        type=positive,
        metavar="MINUTES",
        help="time fp32 and weight-only / dynamic configurations round after round for MINUTES, reading the "
        "machine's memory/compute balance each round: the states this machine switches between and each "
        "configuration's cost relative to fp32 in each",
    )
    perf.set_defaults(func=_perf)

    upgrade = commands.add_parser(
        "upgrade",
        help="build the environment an upgrade replaces and the one it makes, and run the main job side by side",
        description="Build two virtual environments from this checkout: the reference (requirements/pinned.txt, or "
        "--reference-pins) and the candidate (the same pins with REQUIREMENT... upgraded, the newest quantization "
        "stack with --latest, or --candidate-pins); then run `pytest benchmarks/ --benchmark-only` in the candidate "
        "with --ptq-against the reference. Arguments after -- go to pytest. Exit status: pytest's.",
    )
    upgrade.add_argument("requirements", nargs="*", metavar="REQUIREMENT", help="e.g. transformers==5.25.0")
    upgrade.add_argument("--latest", action="store_true", help="the newest transformers and quantization libraries")
    upgrade.add_argument("--reference-pins", type=Path, default=None, metavar="FILE", help="the reference's pins")
    upgrade.add_argument("--candidate-pins", type=Path, default=None, metavar="FILE", help="the candidate's pins")
    upgrade.add_argument("--envs", type=Path, default=None, metavar="DIR", help="where the environments live")
    upgrade.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    upgrade.set_defaults(func=_upgrade)

    drill = commands.add_parser(
        "drill",
        help="inject known kinds of dependency regressions into the real libraries and show what the gate catches",
        description="For each regression of the catalogue: patch it into the library in-process, run the cases it "
        "should turn red against the baselines (after an unpatched control run of the same cases) and print "
        "regression, case, verdict, the check that caught it and its message. Exit 1 if any regression was missed.",
    )
    drill.add_argument("names", nargs="*", metavar="NAME", help="regressions to run. Default: the whole catalogue")
    drill.add_argument("--list", action="store_true", help="list the catalogue and exit")
    drill.add_argument("--model", default="tiny.en", help="model spec. Default: %(default)s")
    drill.add_argument("--corpus", default="read-clean", help="corpus. Default: %(default)s")
    drill.add_argument(
        "--max-utterances",
        type=positive,
        default=30,
        help="utterances, as in the main job (the baselines must match). Default: %(default)s",
    )
    drill.add_argument("--baselines", default="baselines.json", help="baselines file. Default: %(default)s")
    drill.add_argument(
        "--per-regression",
        type=positive,
        default=1,
        help="configurations run per regression (its first N). Default: %(default)s",
    )
    drill.add_argument(
        "--rounds",
        type=positive,
        default=6,
        help="speed rounds per case (the main job judges 2 cases x 3 rounds). Default: %(default)s",
    )
    drill.add_argument(
        "--side-by-side",
        action="store_true",
        help="judge against a live reference environment (this Python, unpatched, in a worker process) instead of "
        "the baselines: the patched cases run here; no baselines needed",
    )
    drill.add_argument(
        "--against",
        type=executable,
        default=None,
        metavar="PYTHON",
        help="side by side against the environment of this Python interpreter (implies --side-by-side)",
    )
    drill.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    drill.set_defaults(func=_drill)
    return parser


def _baselines_merge(args) -> int:
    from whisper_ptq_bench import baselines as bl
    from whisper_ptq_bench.errors import BenchError

    try:
        data = bl.load(Path(args.out))
        for shard in args.shards:
            if not Path(shard).is_file():
                raise bl.BaselineError(f"{shard}: no such baselines file")
            data = bl.combine(data, bl.load(Path(shard)))
        bl.atomic_write(Path(args.out), bl.dumps(data))
    except BenchError as err:
        print(f"{PROG} baselines-merge: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(data['cases'])} case(s), profiles {', '.join(sorted(data['profiles'])) or 'none'}")
    return 0


def _perf(args: argparse.Namespace) -> int:
    from whisper_ptq_bench import perf
    from whisper_ptq_bench.errors import BenchError

    try:
        return perf.main(
            args.model,
            args.corpus,
            args.max_utterances,
            args.batch_size,
            args.encoder_batch_size,
            args.rounds,
            args.speed_trials or 0,
            args.speed_config,
            args.regimes or 0,
            side_by_side=args.side_by_side,
        )
    except BenchError as err:
        print(f"{PROG} perf: error: {err}", file=sys.stderr)
        return 2


def _drill(args: argparse.Namespace) -> int:
    import transformers

    from whisper_ptq_bench import drill
    from whisper_ptq_bench.errors import BenchError
    from whisper_ptq_bench.runner import Options

    transformers.logging.set_verbosity_error()

    if args.list:
        for reg in drill.CATALOGUE:
            print(f"{reg.name:30s} {reg.kind:22s} {reg.library:15s} {reg.configs[0]:40s} {reg.models_on}")
        return 0
    try:
        regressions = drill.select(args.names)
    except ValueError as err:
        print(f"{PROG} drill: error: {err}", file=sys.stderr)
        return 2
    against = args.against or (sys.executable if args.side_by_side else None)
    options = Options(
        models=[args.model],
        corpora=[args.corpus],
        max_utterances=args.max_utterances,
        rounds=args.rounds,
        baselines_path=Path(args.baselines),
        against=against,
        verify_shortcut=against is not None,  # every case transcribed: the shortcut is checked, not relied on
    )
    try:
        rows = drill.run(
            regressions,
            options,
            per_regression=args.per_regression,
            echo=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except BenchError as err:
        print(f"{PROG} drill: error: {err}", file=sys.stderr)
        return 2
    print(drill.table(rows))
    if args.json:
        drill.write_json(rows, Path(args.json))
    caught, judged = drill.score(rows)
    return 0 if judged and caught == judged else 1


def _upgrade(args: argparse.Namespace) -> int:
    from whisper_ptq_bench import upgrade
    from whisper_ptq_bench.errors import BenchError

    try:
        return upgrade.main(
            args.requirements,
            args.latest,
            args.reference_pins,
            args.candidate_pins,
            args.envs,
            args.pytest_args,
            args.dry_run,
            echo=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except BenchError as err:
        print(f"{PROG} upgrade: error: {err}", file=sys.stderr)
        return 2


def _report(args: argparse.Namespace) -> int:
    from whisper_ptq_bench import report

    try:
        results = report.load(args.results)
    except report.ReportError as err:
        for line in str(err).splitlines():
            print(f"{PROG} report: error: {line}", file=sys.stderr)
        return 2
    if Path(args.out).exists() and not Path(args.out).is_dir():
        print(f"{PROG} report: error: --out {args.out}: exists and is not a directory", file=sys.stderr)
        return 2
    try:
        paths = report.write_report(results, args.out, title=args.title, sort=args.sort)
    except OSError as err:
        where = err.filename or args.out
        print(
            f"{PROG} report: error: cannot write the report into {args.out}: {where}: {err.strerror or err}",
            file=sys.stderr,
        )
        return 1
    environments = results.environments
    if len(environments) > 1:
        print(
            f"{PROG} report: warning: the results come from {len(environments)} different environments "
            "(see the Environment section)",
            file=sys.stderr,
        )
    errored = [c.case_id for c in results.cases if c.verdict == "error"]
    if errored:
        print(
            f"{PROG} report: warning: {len(errored)} case(s) errored before measuring: {', '.join(errored)}",
            file=sys.stderr,
        )
    for path in paths:
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.pytest_args = rest
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
