"""The bad-input sweep: every wrong input ends as one clear usage error before any case runs (exit 4, the
message names the input and what to do, nothing is written), or as the honest verdict after the work, with
nothing measured lost. README "Reliability" lists each row with what it gets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST = (
    "--benchmark-only",
    "--ptq-corpus=read-clean",
    "--ptq-matrix=fp32",
    "--ptq-max-utterances=2",
    "--ptq-rounds=1",
    "-p",
    "no:cacheprovider",
)
ENV_BACKED = {"PTQ_CORPUS": "--ptq-corpus", "PTQ_MATRIX": "--ptq-matrix", "PTQ_MAX_UTTERANCES": "--ptq-max-utterances"}


def fast(env: dict, args: list[str]) -> list[str]:
    """FAST, without the options a row sets itself or leaves to its environment variable."""
    own = {a.split("=")[0] for a in args} | {ENV_BACKED[k] for k in env if k in ENV_BACKED}
    return [a for a in FAST if a.split("=")[0] not in own] + list(args)


BASELINE_OK = {"schema": 2, "tolerances": {}, "environments": {}, "profiles": {}, "cases": {}}


@pytest.fixture
def project(run_imports, pytester):
    shutil.copy(ROOT / "benchmarks" / "test_quantization.py", pytester.path / "test_quantization.py")
    return pytester


def _untouched(project, result, before: dict[str, bytes]):
    """Nothing ran and nothing was written."""
    out = result.stdout.str()
    assert " passed" not in out and " failed" not in out and "whisper-ptq-bench summary" not in out
    after = {
        p.name: p.read_bytes() for p in project.path.iterdir() if p.is_file() and p.name not in ("stdout", "stderr")
    }
    assert after == before


# (row, environment, extra arguments, files to write first, expected fragments of the usage error)
USAGE_ERRORS = [
    (
        "baselines truncated",
        {},
        [],
        {"baselines.json": '{"schema": 2, "cases": {'},
        ["--ptq-baselines", "malformed JSON at line 1"],
    ),
    (
        "baselines NaN",
        {},
        [],
        {"baselines.json": json.dumps({**BASELINE_OK, "tolerances": {"wer": float("nan")}})},
        ["--ptq-baselines", "NaN is not allowed"],
    ),
    (
        "baselines unknown key",
        {},
        [],
        {"baselines.json": json.dumps({**BASELINE_OK, "casez": {}})},
        ["--ptq-baselines", "casez"],
    ),
    ("baselines not UTF-8", {}, [], {"baselines.json": b"\xff\xfe{"}, ["--ptq-baselines", "not UTF-8"]),
    ("baselines is a directory", {}, ["--ptq-baselines=bdir"], {"bdir/x": "x"}, ["--ptq-baselines", "bdir"]),
    (
        "baselines dir missing, update",
        {},
        ["--ptq-baselines=no/such/dir/b.json", "--ptq-update-baselines"],
        {},
        ["--ptq-baselines", "cannot write in no/such/dir"],
    ),
    (
        "PTQ_MAX_UTTERANCES=abc",
        {"PTQ_MAX_UTTERANCES": "abc"},
        [],
        {},
        ["--ptq-max-utterances", "PTQ_MAX_UTTERANCES", "'abc'"],
    ),
    (
        "PTQ_MAX_UTTERANCES empty",
        {"PTQ_MAX_UTTERANCES": ""},
        [],
        {},
        ["--ptq-max-utterances", "PTQ_MAX_UTTERANCES", "''"],
    ),
    ("PTQ_MODEL empty", {"PTQ_MODEL": ""}, [], {}, ["--ptq-model", "PTQ_MODEL", "empty"]),
    ("PTQ_MATRIX unknown", {"PTQ_MATRIX": "nonsense"}, [], {}, ["--ptq-matrix (or PTQ_MATRIX)", "nonsense"]),
    ("--ptq-model ,", {}, ["--ptq-model=,"], {}, ["--ptq-model", "is empty"]),
    ("bad PTQ_MAX_UTTERANCES, option given", {"PTQ_MAX_UTTERANCES": "abc"}, ["--ptq-max-utterances=2"], {}, None),
    ("PTQ_CORPUS unknown", {"PTQ_CORPUS": "nowhere"}, [], {}, ["--ptq-corpus", "PTQ_CORPUS", "nowhere"]),
    ("--ptq-rounds 0", {}, ["--ptq-rounds=0"], {}, ["--ptq-rounds", "must be >= 1"]),
    ("--ptq-device gpu", {}, ["--ptq-device=gpu"], {}, ["--ptq-device", "'gpu' is not a device"]),
    ("--ptq-device cuda without GPU", {}, ["--ptq-device=cuda"], {}, ["--ptq-device=cuda", "no CUDA device"]),
    (
        "config option misspelt",
        {},
        ["--ptq-matrix=torchao.w-int4.g128.asym.kernal=tinygemm"],
        {},
        ["--ptq-matrix", "torchao has no option 'kernal'", "kernel (tinygemm"],
    ),
    ("config option unknown", {}, ["--ptq-matrix=hqq.w-int4.g64.asym.foo=1"], {}, ["hqq has no option 'foo'"]),
    (
        "config option bad value",
        {},
        ["--ptq-matrix=bnb.dyn-int8.a-int8.channel.sym.threshold=x"],
        {},
        ["threshold='x' is not valid", "whole number"],
    ),
    (
        "config id not canonical",
        {},
        ["--ptq-matrix=hqq.w-int4.asym.g64"],
        {},
        ["not in canonical form", "hqq.w-int4.g64.asym"],
    ),
    (
        "model directory missing",
        {},
        ["--ptq-model=./no-such-model"],
        {},
        ["--ptq-model", "no-such-model does not exist"],
    ),
    ("model spec unknown", {}, ["--ptq-model=tiny"], {}, ["--ptq-model", "unknown model spec 'tiny'"]),
    (
        "model directory empty",
        {},
        ["--ptq-model=emptymodel"],
        {"emptymodel/README": "x"},
        ["--ptq-model", "holds neither a transformers Whisper"],
    ),
    (
        "model weights truncated",
        {},
        ["--ptq-model=brokenmodel"],
        {"brokenmodel/config.json": "{}", "brokenmodel/model.safetensors": b"\x08\x00"},
        ["--ptq-model", "brokenmodel", "not a loadable transformers Whisper"],
    ),
    (
        "scope matches nothing",
        {},
        ["--ptq-scope=model.nowhere.*", "--ptq-matrix=hqq.w-int4.g64.asym"],
        {},
        ["--ptq-scope", "match no nn.Linear", "model tiny.en"],
    ),
]


@pytest.mark.parametrize("row,env,args,files,expected", USAGE_ERRORS, ids=[r[0] for r in USAGE_ERRORS])
def test_bad_input_is_a_usage_error_before_any_case(project, monkeypatch, row, env, args, files, expected):
    for name, content in files.items():
        path = project.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = {p.name: p.read_bytes() for p in project.path.iterdir() if p.is_file()}
    result = project.runpytest_inprocess(*fast(env, args))  # in-process: each row stops before any case
    if expected is None:  # the command-line option overrides the bad variable: the run works (no baseline: red)
        assert (
            result.ret == pytest.ExitCode.TESTS_FAILED
            and "no baseline for tiny.en/read-clean/fp32" in result.stdout.str()
        )
        return
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    for fragment in expected:
        assert fragment in err, (fragment, err)
    _untouched(project, result, before)


def test_update_on_a_smaller_subset_asks_for_the_flag_and_keeps_the_baselines(project):
    first = project.runpytest_inprocess(*FAST, "--ptq-max-utterances=3", "--ptq-update-baselines")
    first.assert_outcomes(passed=1)
    recorded = (project.path / "baselines.json").read_bytes()
    smaller = project.runpytest_inprocess(*FAST, "--ptq-update-baselines")  # 2 utterances
    assert smaller.ret == pytest.ExitCode.USAGE_ERROR
    smaller.stderr.fnmatch_lines(
        [
            "*would replace 1 baseline(s) measured on other inputs*",
            "*read-clean differs (2 utterance(s) now*",
            "*--ptq-replace-inputs*",
        ]
    )
    assert (project.path / "baselines.json").read_bytes() == recorded
    batching = project.runpytest_inprocess(
        *FAST, "--ptq-max-utterances=3", "--ptq-update-baselines", "--ptq-batch-size=2"
    )
    assert batching.ret == pytest.ExitCode.USAGE_ERROR and "batching" in batching.stderr.str()
    forced = project.runpytest_inprocess(*FAST, "--ptq-update-baselines", "--ptq-replace-inputs")
    forced.assert_outcomes(passed=1)
    assert (
        len(
            json.loads((project.path / "baselines.json").read_text())["cases"]["tiny.en/read-clean/fp32"]["transcripts"]
        )
        == 2
    )


def test_an_update_that_cannot_be_written_is_red_and_keeps_the_measurements(project, monkeypatch):
    """The file is checked before work; if it still cannot be written at the end, the run is red and what was
    measured is in the obtained file (here a patch makes the final write fail)."""
    import whisper_ptq_bench.baselines as bl

    original = bl.update

    def update(path, entries, **kw):
        if path.name == "baselines.json":
            raise OSError(28, "No space left on device")
        return original(path, entries, **kw)

    monkeypatch.setattr(bl, "update", update)
    result = project.runpytest_inprocess(*FAST, "--ptq-update-baselines")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR: the baselines could not be written*No space left*baselines.obtained.json*"])
    assert "ok (updated)" not in result.stdout.str()
    assert not (project.path / "baselines.json").exists()
    assert set(json.loads((project.path / "baselines.obtained.json").read_text())["cases"]) == {
        "tiny.en/read-clean/fp32"
    }


def test_an_interrupted_update_leaves_the_baselines_untouched(project):
    (project.path / "baselines.json").write_text(json.dumps(BASELINE_OK))
    project.makeconftest(
        "import pytest\n"
        "def pytest_runtest_teardown(item):\n"
        "    if 'hqq' in item.name:\n"
        "        raise KeyboardInterrupt\n"
    )
    result = project.runpytest_inprocess(
        *FAST, "--ptq-matrix=hqq.w-int4.g64.asym", "--ptq-update-baselines", no_reraise_ctrlc=True
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert json.loads((project.path / "baselines.json").read_text()) == BASELINE_OK
    obtained = json.loads((project.path / "baselines.obtained.json").read_text())
    assert "tiny.en/read-clean/fp32" in obtained["cases"]
    result.stdout.fnmatch_lines(["*interrupted: *baselines.json left untouched*"])


def test_an_errored_case_is_red_in_the_summary_the_json_and_the_report(project, tmp_path, monkeypatch):
    from whisper_ptq_bench.backends.hqq import Hqq

    def broken(self, model, config, scope, device, calibrate=None):
        raise RuntimeError("quantize kernel exploded")

    monkeypatch.setattr(Hqq, "quantize", broken)
    json_path = project.path / "run.json"
    result = project.runpytest_inprocess(
        *FAST, "--ptq-matrix=hqq.w-int4.g64.asym", "--ptq-update-baselines", f"--benchmark-json={json_path}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*hqq.w-int4.g64.asym*ERROR (errored)*",
            "ERROR tiny.en/read-clean/hqq.w-int4.g64.asym: *hqq*raised RuntimeError: quantize kernel exploded*",
        ]
    )
    data = json.loads(json_path.read_text())
    [errored] = data["whisper_ptq_bench"]["unmeasured"]
    assert errored["case"] == "tiny.en/read-clean/hqq.w-int4.g64.asym" and errored["verdict"] == "error"
    assert "quantize kernel exploded" in errored["error"] and "hqq" in errored["error"]

    from whisper_ptq_bench import report

    report.write_report(report.load([json_path]), tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "1 errored before measuring" in markdown and "quantize kernel exploded" in markdown


def test_a_skipped_case_says_why_in_the_summary_and_the_json(project):
    json_path = project.path / "run.json"
    result = project.runpytest_inprocess(
        *FAST,
        "--ptq-matrix=torchao.w-int4.g128.asym.kernel=tinygemm",
        "--ptq-update-baselines",
        f"--benchmark-json={json_path}",
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["SKIPPED tiny.en/read-clean/torchao.w-int4.g128.asym.kernel=tinygemm: *needs a CUDA device*"]
    )
    unmeasured = json.loads(json_path.read_text())["whisper_ptq_bench"]["unmeasured"]
    assert [(u["verdict"], "CUDA" in u["reason"]) for u in unmeasured] == [("skipped", True)]


def test_bad_ptq_variables_do_not_touch_other_projects_runs(pytester, monkeypatch):
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    for key, value in {
        "PTQ_MAX_UTTERANCES": "abc",
        "PTQ_MODEL": "",
        "PTQ_MATRIX": "nonsense",
        "PTQ_CORPUS": "x",
    }.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_no_benchmark_case_collected_is_not_a_pass(project):
    """``-k`` that selects nothing: pytest's exit code 5, never 0."""
    result = project.runpytest_inprocess(*FAST, "-k", "no-such-case")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_damaged_corpus_file_is_found_before_the_first_case(monkeypatch, tmp_path):
    """The harness decodes (and so hash-checks) every utterance of the run's corpora in its preflight."""
    from whisper_ptq_bench import runner
    from whisper_ptq_bench.data.corpus import Corpus, Utterance
    from whisper_ptq_bench.errors import BenchError, CorpusError

    def damaged():
        raise CorpusError("utterance 'u1' of corpus 'read-clean': x.flac has sha256 0000..., the manifest says 1111...")

    corpus = Corpus("read-clean", [Utterance("u1", "a", "test", "test", damaged)])
    monkeypatch.setattr(runner, "load_corpus", lambda name, n=None: corpus)
    harness = runner.Harness(runner.Options(models=[], corpora=["read-clean"], baselines_path=tmp_path / "b.json"))
    with pytest.raises(
        BenchError, match=r"--ptq-corpus \(or PTQ_CORPUS\): utterance 'u1' of corpus 'read-clean'.*manifest"
    ):
        harness.preflight([], ["read-clean"])
