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
    add(
        "--ptq-against",
        type=opt.executable,
        default=None,
        metavar="PYTHON",
        help="judge every case side by side against the environment of this Python interpreter (the one an upgrade "
        "replaces; this package installed there), measured in the same run on this machine, instead of against "
        "--ptq-baselines. Default: %(default)r",
    )
    add(
        "--ptq-pairs",
        type=opt.positive,
        default=8,
        help="side by side: alternating (reference, candidate) pairs of the fixed workload per case (more when it "
        "looks slower). Default: %(default)r",
    )
    add(
        "--ptq-transcribe-identical",
        action="store_true",
        default=False,
        help="side by side: transcribe also the cases whose weights and teacher-forced outputs are bit-identical to "
        "the reference's (whose transcripts are reused otherwise), and say whether they matched. Default: %(default)r",
    )
    add(
        "--ptq-fail-on-change",
        action="store_true",
        default=False,
        help="fail a case that changed within tolerance too, for gates that want every numerics change approved. "
        "Default: %(default)r",
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

    against, update = config.getoption("--ptq-against"), config.getoption("--ptq-update-baselines")
    if against and update:
        raise pytest.UsageError(
            "--ptq-against and --ptq-update-baselines: a side-by-side run judges against the other environment and "
            "records no baselines; run them separately"
        )
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
        update_baselines=update,
        against=against,
        pairs=config.getoption("--ptq-pairs"),
        verify_shortcut=config.getoption("--ptq-transcribe-identical"),
        fail_on_change=config.getoption("--ptq-fail-on-change"),
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
    from whisper_ptq_bench.recording import changed_inputs
    from whisper_ptq_bench.runner import Harness

    try:
        data = bl.preflight(options.baselines_path, write=options.update_baselines) if not options.against else {}
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
        "reference": f"the reference environment {harness.options.against}"
        if harness.live is not None
        else str(harness.options.baselines_path),
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
    if harness.live is not None:
        same = harness.live.profile == harness.profile
        return (
            " (the reference environment runs on the same machine)"
            if same
            else f" (the reference's: {harness.live.profile})"
        )
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
    if harness.live is not None:
        env = harness.live.environment
        diffs = [f"{k} {env.get(k)} -> {v}" for k, v in harness.env.items() if env.get(k) != v]
        return [f"reference environment ({harness.options.against}): " + ", ".join(diffs)] if diffs else []
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


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from whisper_ptq_bench import summary

    summaries = config.stash.get(_ROWS, [])
    lines = summary.lines(summaries)
    if not lines:
        return
    terminalreporter.section("whisper-ptq-bench summary")
    for line in lines:
        terminalreporter.write_line(line)
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:  # on GitHub Actions: the same summary as markdown on the job's page
        try:
            with open(target, "a", encoding="utf-8") as out:
                out.write(summary.markdown(summaries))
        except OSError as err:
            terminalreporter.write_line(f"GITHUB_STEP_SUMMARY {target}: cannot be written ({err.strerror})")
