"""pytest plugin: ``--ptq-*`` options, the case parametrization, fixtures and the session summary."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from whisper_ptq_bench import options as opt
from whisper_ptq_bench.errors import BenchError
from whisper_ptq_bench.machine import describe

_HARNESS = pytest.StashKey["object"]()
_ROWS = pytest.StashKey[list]()
_OPTIONS = pytest.StashKey["object"]()
_USAGE = pytest.StashKey["object"]()
_SKIPPED = pytest.StashKey[list]()


#: options whose default comes from an environment variable: dest -> (variable, default, parser)
_FROM_ENV = {
    "ptq_model": ("PTQ_MODEL", "tiny.en", opt.names),
    "ptq_corpus": ("PTQ_CORPUS", "read", opt.names),
    "ptq_matrix": ("PTQ_MATRIX", "default", opt.names),
    "ptq_max_utterances": ("PTQ_MAX_UTTERANCES", "30", opt.utterance_count),
}


def pytest_addoption(parser):
    group = parser.getgroup("whisper-ptq-bench", "post-training quantization benchmark of Whisper")
    add = group.addoption

    def env(dest: str) -> str:
        variable, default, _ = _FROM_ENV[dest]
        return f"Default: ${variable} or {default!r}"

    add(
        "--ptq-model",
        type=opt.names,
        default=None,
        help="model(s), comma separated: offline names (tiny.en, base), local directories or hub ids "
        f"(openai/whisper-small). {env('ptq_model')}",
    )
    add(
        "--ptq-corpus",
        type=opt.names,
        default=None,
        help="corpora, comma separated: read-clean, read-other, hard, synth-clean, synth-other, librispeech-clean, "
        f"librispeech-other, or the groups read, synth, librispeech, all. {env('ptq_corpus')}",
    )
    add(
        "--ptq-matrix",
        type=opt.names,
        default=None,
        help=f"configurations: smoke, default, full, or a comma list of config ids. {env('ptq_matrix')}",
    )
    add(
        "--ptq-max-utterances",
        type=opt.utterance_count,
        default=None,
        help="use N utterances of each corpus, spread evenly over it (LibriSpeech: its first N); 0: all. "
        f"{env('ptq_max_utterances')}",
    )
    add(
        "--ptq-batch-size",
        type=opt.positive,
        default=8,
        help="utterances per generate() call, grouped by duration. Default: %(default)r",
    )
    add(
        "--ptq-encoder-batch-size",
        type=opt.positive,
        default=None,
        help="utterances per encoder call inside a batch. Default: 2 on CPU, the whole batch on CUDA",
    )
    add(
        "--ptq-rounds",
        type=opt.positive,
        default=3,
        help="timed rounds of the fixed speed workload per case, each paired with an fp32 round (after an untimed "
        "warm-up pair in a configuration's first case); pytest-benchmark's statistics are the configuration's rounds; "
        "the speed check judges the rounds of all cases of the configuration so far. Default: %(default)r",
    )
    add(
        "--ptq-device",
        type=opt.device,
        default="auto",
        help="cpu, cuda, cuda:N or auto (cuda when present). Default: %(default)r",
    )
    add(
        "--ptq-scope",
        type=opt.patterns,
        default=",".join(("model.encoder.layers.*", "model.decoder.layers.*")),
        help="fnmatch patterns of the nn.Linear modules to quantize. Default: %(default)r",
    )
    add(
        "--ptq-scope-exclude",
        type=opt.patterns,
        default="",
        help="fnmatch patterns kept in floating point. Default: %(default)r",
    )
    add("--ptq-baselines", default=None, help="baselines file. Default: baselines.json in the rootdir")
    add(
        "--ptq-update-baselines",
        action="store_true",
        default=False,
        help="rewrite the baselines of the cases that ran (others stay untouched). Default: %(default)r",
    )
    add(
        "--ptq-replace-inputs",
        action="store_true",
        default=False,
        help="let --ptq-update-baselines replace baselines measured on another corpus subset or batching "
        "(without it such an update is refused before any case runs). Default: %(default)r",
    )
    add(
        "--ptq-strict-transcripts",
        action="store_true",
        default=False,
        help="fail (not only warn) when a transcript differs from its baseline. Default: %(default)r",
    )


def pytest_configure(config):
    """Only registers markers: a pytest run that collects no ``ptq_case`` imports nothing heavy, changes no
    logging and never fails on ``PTQ_*`` variables."""
    config.addinivalue_line("markers", "ptq: a whisper-ptq-bench quantization case")
    # pytest-xdist registers it when installed; without xdist the mark is inert but must stay known
    config.addinivalue_line("markers", "xdist_group(name): keep a configuration's cases on one xdist worker")
    config.stash[_ROWS] = []


def _value(config, dest: str):
    """An option's value: the command line's, else its environment variable's (parsed here, lazily), else the
    default; a bad variable is a usage error that names it."""
    given = getattr(config.option, dest)
    if given is not None:
        return given
    variable, default, parse = _FROM_ENV[dest]
    text = os.environ.get(variable)
    if text is None:
        return parse(default)
    try:
        return opt.from_environment(parse, variable, text, "--" + dest.replace("_", "-"))
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None


def _session_options(config):
    """The validated options and configurations, parsed on first use (when a ``ptq_case`` is collected); bad
    values, from the command line or from ``PTQ_*`` variables, are usage errors that name both."""
    if _OPTIONS not in config.stash:
        logging.getLogger("transformers").setLevel(logging.ERROR)
        try:
            import transformers

            transformers.logging.set_verbosity_error()
        except ImportError:
            pass
        options = _options(config)
        from whisper_ptq_bench.backends import validate
        from whisper_ptq_bench.configs import matrix

        try:
            configs = matrix(",".join(_value(config, "ptq_matrix")))
            validate(configs)
        except BenchError as err:
            raise pytest.UsageError(f"--ptq-matrix (or PTQ_MATRIX): {err}") from None
        config.stash[_OPTIONS] = (options, configs)
    return config.stash[_OPTIONS]


def _options(config):
    from whisper_ptq_bench.runner import Options

    device = config.getoption("--ptq-device")
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(
                f"--ptq-device={device}: no CUDA device is visible (torch {torch.__version__}); use cpu"
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise pytest.UsageError(
                f"--ptq-device={device}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    from whisper_ptq_bench.data import expand

    root = Path(str(config.rootpath))
    baselines = Path(config.getoption("--ptq-baselines") or root / "baselines.json")
    try:
        corpora = expand(",".join(_value(config, "ptq_corpus")))
    except BenchError as err:
        raise pytest.UsageError(f"--ptq-corpus (or PTQ_CORPUS): {err}") from None
    return Options(
        models=list(_value(config, "ptq_model")),
        corpora=corpora,
        batch_size=config.getoption("--ptq-batch-size"),
        encoder_batch_size=config.getoption("--ptq-encoder-batch-size"),
        max_utterances=_value(config, "ptq_max_utterances") or None,
        rounds=config.getoption("--ptq-rounds"),
        device=device,
        scope=config.getoption("--ptq-scope"),
        scope_exclude=config.getoption("--ptq-scope-exclude"),
        strict_transcripts=config.getoption("--ptq-strict-transcripts"),
        update_baselines=config.getoption("--ptq-update-baselines"),
        replace_inputs=config.getoption("--ptq-replace-inputs"),
        baselines_path=baselines,
        obtained_path=baselines.with_name(baselines.stem + ".obtained.json"),
    )


def pytest_generate_tests(metafunc):
    if "ptq_case" not in metafunc.fixturenames:
        return
    from whisper_ptq_bench.backends import get_backend
    from whisper_ptq_bench.baselines import case_id
    from whisper_ptq_bench.runner import CaseSpec

    try:
        options, configs = _session_options(metafunc.config)
    except pytest.UsageError as err:  # raised again once collection ends: a usage error, not a collection error
        metafunc.config.stash[_USAGE] = err
        metafunc.parametrize("ptq_case", [])
        return
    params = []
    for model in options.models:
        for cfg in configs:
            backend = get_backend(cfg.backend)
            reason = backend.unavailable() or backend.unsupported(cfg, options.device)
            for corpus in options.corpora:
                marks = [pytest.mark.ptq, pytest.mark.xdist_group(f"{model}/{cfg.id}")]
                if reason:
                    marks.append(pytest.mark.skip(reason=reason))
                params.append(pytest.param(CaseSpec(model, corpus, cfg), id=case_id(model, corpus, cfg), marks=marks))
    metafunc.parametrize("ptq_case", params)


@pytest.fixture(scope="session")
def ptq_harness(request):
    """The session's harness: models, corpora and references loaded once, each configuration quantized once."""
    from whisper_ptq_bench.runner import Harness

    config = request.config
    if _HARNESS not in config.stash:
        config.stash[_HARNESS] = Harness(_session_options(config)[0])
    return config.stash[_HARNESS]


def pytest_collection_modifyitems(session, config, items):
    # the fp32 reference of each model runs first, so every other case compares against a measured fp32
    def key(item):
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("ptq_case") if callspec else None
        return 0 if case is not None and case.config.id == "fp32" else 1

    items.sort(key=key)  # stable: the matrix order is kept otherwise


def pytest_collection_finish(session):
    """Before the first case, everything that can be checked is: the baselines file reads and validates (and is
    writable in an update run), an update does not silently replace baselines of other inputs, every model
    loads, the scope matches its modules and every corpus loads. A problem costs one line, not the main job."""
    config = session.config
    if _USAGE in config.stash:
        raise config.stash[_USAGE]
    items = [item for item in session.items if "ptq_case" in getattr(item, "fixturenames", ())]
    if not items or _OPTIONS not in config.stash:
        return
    options, _ = config.stash[_OPTIONS]
    config.stash[_SKIPPED] = [
        _skipped_info(item.callspec.params["ptq_case"], mark.kwargs.get("reason", ""))
        for item in items
        for mark in item.iter_markers("skip")
    ]
    from whisper_ptq_bench import baselines as bl
    from whisper_ptq_bench.runner import Harness, changed_inputs

    try:
        data = bl.preflight(options.baselines_path, write=options.update_baselines)
    except BenchError as err:
        raise pytest.UsageError(f"--ptq-baselines: {err}") from None
    if config.option.collectonly:
        return
    cases = [item.callspec.params["ptq_case"] for item in items if next(item.iter_markers("skip"), None) is None]
    if not cases:  # every case is skipped (e.g. it needs a GPU): nothing to load or check
        return
    try:
        harness = Harness(options)
        harness.preflight(sorted({c.model for c in cases}), sorted({c.corpus for c in cases}))
        changed = (
            changed_inputs(options, cases, data) if options.update_baselines and not options.replace_inputs else []
        )
    except BenchError as err:
        raise pytest.UsageError(str(err)) from None
    if changed:
        shown = "\n  ".join(changed[:10]) + (f"\n  ... and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise pytest.UsageError(
            f"--ptq-update-baselines would replace {len(changed)} baseline(s) measured on other inputs:\n  {shown}\n"
            "run with the baselines' --ptq-max-utterances and batching options, or pass --ptq-replace-inputs to replace them"
        )
    config.stash[_HARNESS] = harness


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # around pytest-benchmark's, which writes --benchmark-json
def pytest_sessionfinish(session, exitstatus):
    _finish(session, exitstatus)
    yield


def _skipped_info(case, reason: str) -> dict:
    from whisper_ptq_bench.baselines import case_id

    model, corpus, config = case
    return {
        "case": case_id(model, corpus, config),
        "model": model,
        "corpus": {"name": corpus},
        "config": config.id,
        "axes": config.axes(),
        "verdict": "skipped",
        "reason": reason,
    }


def _finish(session, exitstatus) -> None:
    """Write baselines or the obtained file, and keep the session's rows for the summary and the JSON."""
    config = session.config
    harness = config.stash.get(_HARNESS, None)
    skipped = config.stash.get(_SKIPPED, [])
    if harness is None:
        if skipped:
            config.stash[_ROWS].append(
                {"rows": [], "lines": [], "phases": {}, "env": {}, "diff": [], "unmeasured": skipped}
            )
        return
    try:
        lines = harness.finish(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
    except BenchError as err:
        lines = [f"ERROR: {err}"]
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    rows = [r.row() for r in harness.results]
    summary = {
        "rows": rows,
        "lines": lines,
        "phases": dict(harness.phases),
        "env": harness.env,
        "diff": _env_diff(harness),
        "unmeasured": [r.extra_info() for r in harness.results if r.result.speed is None] + skipped,
        "batching": harness.options.batching,
        "profile": f"{harness.profile} = {describe(harness.machine)}{_profile_known(harness)}",
    }
    if hasattr(config, "workeroutput"):  # an xdist worker: hand the rows to the controller
        config.workeroutput["ptq_summary"] = json.dumps(summary)
    else:
        config.stash[_ROWS].append(summary)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Cases that ended before the benchmark fixture timed anything (errored ones) have no pytest-benchmark
    entry; their extra_info goes into the same JSON, under ``whisper_ptq_bench.unmeasured``, for the report."""
    timed = {(b.get("extra_info") or {}).get("case") for b in output_json.get("benchmarks", [])}
    unmeasured = {info["case"]: info for s in config.stash.get(_ROWS, []) for info in s.get("unmeasured", [])}
    output_json["whisper_ptq_bench"] = {"unmeasured": [i for c, i in sorted(unmeasured.items()) if c not in timed]}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    output = getattr(node, "workeroutput", {}) or {}
    if "ptq_summary" in output:
        node.config.stash[_ROWS].append(json.loads(output["ptq_summary"]))


def _profile_known(harness) -> str:
    try:
        known = harness.baselines().data.get("profiles", {})
    except BenchError:
        return ""
    if harness.profile in known:
        return " (baselines hold this profile)"
    return (
        f" (NEW: the baselines hold {len(known)} other profile(s); speed and activation-quantized transcripts were not "
        "compared, activation-quantized outputs only at the wider tolerance across machines (kl_across); record this "
        "profile with --ptq-update-baselines before upgrading)"
    )


def _env_diff(harness) -> list[str]:
    try:
        data = harness.baselines().data
    except BenchError:
        return []
    out = []
    for key, env in sorted(data.get("environments", {}).items()):
        diffs = [f"{k} {env.get(k)} -> {v}" for k, v in harness.env.items() if env.get(k) != v]
        if diffs:
            out.append(f"{key}: " + ", ".join(diffs))
    return out


def _fmt(value, spec: str, width: int) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:{width}{spec}}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    summaries = config.stash.get(_ROWS, [])
    rows = [row for s in summaries for row in s["rows"]]
    skipped = list(
        {i["case"]: i for s in summaries for i in s.get("unmeasured", []) if i.get("verdict") == "skipped"}.values()
    )
    if not rows and not skipped:
        return
    tr = terminalreporter
    tr.section("whisper-ptq-bench summary")
    for info in sorted(skipped, key=lambda i: i["case"]):
        tr.write_line(f"SKIPPED {info['case']}: {info['reason']}")
    if not rows:
        return
    tr.write_line(
        f"{'case':58s} {'WER':>7s} {'dWER vs fp32 [95% CI]':>24s} {'MB':>6s} {'compr':>6s} {'w-err':>7s} {'KL':>8s} "
        f"{'kernel':>7s} {'e2e':>6s}  verdict"
    )
    for row in sorted(rows, key=lambda r: r["case"]):
        delta = "-" if row["delta"] is None else "{:+.2f} [{:+.2f},{:+.2f}]".format(*[x * 100 for x in row["delta"]])
        kernel = "-" if row["kernel"] is None else f"{row['kernel']:.2f}x"
        e2e = "-" if row["wer"] is None else f"{row['speedup']:.2f}x"
        tr.write_line(
            f"{row['case'][:58]:58s} {_fmt(None if row['wer'] is None else row['wer'] * 100, '.2f', 7)} {delta:>24s} "
            f"{row['size_mb']:6.1f} {row['compression']:6.1%} {_fmt(row['weight_error'], '.4f', 7)} {_fmt(row['kl'], '.5f', 8)} "
            f"{kernel:>7s} {e2e:>6s}  {row['verdict']} ({row['baseline'] or 'not run'})"
        )
    tr.write_line(
        "WER in %; w-err: mean relative error of the dequantized weights; KL: teacher-forced divergence from fp32 "
        "(nats/token); kernel: speed-up over fp32 on the fixed workload (gated, per machine profile); e2e: end-to-end "
        "speed-up (reported only)"
    )
    for row in sorted(rows, key=lambda r: r["case"]):
        if row.get("error"):
            tr.write_line(f"ERROR {row['case']}: {row['error']}")
    notes = sorted({f"{row['case']}: {n}" for row in rows for n in row.get("notes", [])})
    if notes:
        noted = len({row["case"] for row in rows if row.get("notes")})
        tr.write_line(f"notes on {noted} case(s): what was not compared, or compared otherwise:")
        for n in notes[:20]:
            tr.write_line(f"  {n}")
        if len(notes) > 20:
            tr.write_line(f"  ... and {len(notes) - 20} more")
    radar: dict[str, list[str]] = {}
    for row in rows:
        for w in row.get("library_warnings", []):
            radar.setdefault(w, []).append(row["case"])
    if radar:
        tr.write_line(f"library warnings during the cases ({len(radar)} distinct; the next upgrade's breakage):")
        for w, cases in sorted(radar.items()):
            tr.write_line(f"  [{len(cases)} case(s)] {w}")
    phases: dict[str, float] = {}
    for s in summaries:
        for name, seconds in s["phases"].items():
            phases[name] = phases.get(name, 0.0) + seconds
    for batching in sorted({s["batching"] for s in summaries if s.get("batching")}):
        tr.write_line(f"batching: {batching}")
    for prof in sorted({s["profile"] for s in summaries if s.get("profile")}):
        tr.write_line(f"machine profile: {prof}")
    readings = [b for row in rows for b in row.get("balance", [])]
    if readings:
        from whisper_ptq_bench.speed import describe_states

        tr.write_line(
            f"machine state (memory/compute balance; speed is judged within a state): {describe_states(readings)}"
        )
    if phases:
        tr.write_line(
            "time per phase: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(phases.items(), key=lambda kv: -kv[1]))
        )
    diffs = sorted({d for s in summaries for d in s["diff"]})
    if diffs:
        tr.write_line("environment differs from the baselines':")
        for d in diffs:
            tr.write_line(f"  {d}")
    for line in sorted({line for s in summaries for line in s["lines"]}):
        tr.write_line(line)
