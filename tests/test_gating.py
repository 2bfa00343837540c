"""End to end through pytest: the update flow round-trips, runs are deterministic, and a degraded
quantizer (one that zeroes a decoder layer) turns the case red with the case, metric and utterances named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "torch-ao.dyn-int8.a-int8.channel.sym"
CASE = f"tiny.en/read-clean/{CONFIG}"


def degrade(monkeypatch) -> None:
    """Make the configuration's quantizer zero one decoder layer first (runs in this process see it)."""
    from whisper_ptq_bench.backends.torch_ao import TorchEager

    original = TorchEager.quantize

    def quantize(self, model, config, scope, device, calibrate=None):
        for module in model.model.decoder.layers[0].modules():
            if hasattr(module, "weight") and module.weight is not None and module.weight.dim() == 2:
                module.weight.data.zero_()
        return original(self, model, config, scope, device, calibrate)

    monkeypatch.setattr(TorchEager, "quantize", quantize)


@pytest.fixture
def project(run_imports, pytester):
    shutil.copy(ROOT / "benchmarks" / "test_quantization.py", pytester.path / "test_quantization.py")
    return pytester


def run(pytester, *extra):
    return pytester.runpytest_inprocess(
        "--benchmark-only",
        "--ptq-corpus=read-clean",
        f"--ptq-matrix={CONFIG}",
        "--ptq-max-utterances=4",
        "--ptq-rounds=2",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::DeprecationWarning",
        *extra,
    )


@pytest.mark.slow
def test_update_round_trip_determinism_and_a_degraded_quantizer(project, monkeypatch):
    baselines = project.path / "baselines.json"

    first = run(project, "--ptq-matrix=fp32")  # no baselines yet: the case fails, what it obtained is written aside
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*no baseline for tiny.en/read-clean/fp32*--ptq-update-baselines*"])
    obtained = json.loads((project.path / "baselines.obtained.json").read_text())
    assert set(obtained["cases"]) == {"tiny.en/read-clean/fp32"}
    assert not baselines.exists()

    with monkeypatch.context() as steady:
        # the recording's rounds in one machine state: a round during which the balance switched belongs to none,
        # and on a loaded machine every round of two could (then no state is recorded, rightly)
        steady.setattr("whisper_ptq_bench.speed.balance", lambda: 1.0)
        run(project, "--ptq-update-baselines").assert_outcomes(passed=2)
    data = json.loads(baselines.read_text())
    assert set(data["cases"]) == {"tiny.en/read-clean/fp32", CASE}
    assert (
        data["cases"]["tiny.en/read-clean/fp32"]["transcripts"]
        == obtained["cases"]["tiny.en/read-clean/fp32"]["transcripts"]
    )
    data["tolerances"]["speed"] = 1.5  # timing on a shared CI machine: only gross slow-downs count here
    baselines.write_text(json.dumps(data))

    again = run(project, "--ptq-strict-transcripts")  # deterministic: identical transcripts and WER
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["machine state (memory/compute balance; speed is judged within a state): * rounds*"])
    assert data["cases"][CASE]["profiles"]  # the speed baseline carries the machine state it was recorded in
    [part] = data["cases"][CASE]["profiles"].values()
    assert part["speed"]["state"] == 1.0

    with monkeypatch.context() as patched:
        degrade(patched)
        bad = run(project)
    bad.assert_outcomes(passed=1, failed=1)
    text = bad.stdout.str()
    assert f"{CASE}:" in text and "WER rose" in text and "paired bootstrap 95% CI" in text
    assert "weights: the weight error of" in text and "model.decoder.layers.0." in text  # the zeroed modules, named
    assert "output: KL divergence from fp32 rose" in text
    assert "utterances with more errors:" in text
    after = json.loads(baselines.read_text())
    assert after["cases"][CASE] == data["cases"][CASE]  # a failing run never rewrites baselines
    assert "transcript(s) changed" in text  # listed as well

    # the batching is recorded with each case; a run with another is refused, not compared (test_baselines.py)
    assert data["cases"][CASE]["batching"] == "batch 8 by duration, encoder 2"


def test_malformed_baselines_stop_the_run_before_any_case_with_file_line_and_column(project):
    (project.path / "baselines.json").write_text('{"schema": 2,\n "cases": [}')
    result = run(project, "--ptq-matrix=fp32")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ptq-baselines: *baselines.json: malformed JSON at line 2, column*"])
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()


def test_baselines_of_an_older_schema_are_refused_before_any_case(project):
    (project.path / "baselines.json").write_text('{"schema": 1, "cases": {}}')
    result = run(project, "--ptq-matrix=fp32")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*schema version 1 is not supported*--ptq-update-baselines*"])


def test_bad_options_are_usage_errors(project):
    result = project.runpytest_inprocess("--ptq-matrix=hqq.w-int9.g64.asym", "--benchmark-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ptq-matrix*weight*int9*"])
    result = project.runpytest_inprocess("--ptq-corpus=nowhere", "--benchmark-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = project.runpytest_inprocess("--ptq-encoder-batch-size=0", "--benchmark-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --ptq-encoder-batch-size: must be >= 1, got 0*"])


def test_unsupported_cases_are_skipped_at_collection_with_the_reason(project):
    result = project.runpytest_inprocess(
        "--benchmark-only",
        "--ptq-matrix=torchao.w-int4.g128.asym.kernel=tinygemm",
        "--ptq-corpus=read-clean",
        "--collect-only",
        "-q",
        "-rs",
    )
    result.stdout.fnmatch_lines(["*tiny.en/read-clean/torchao.w-int4.g128.asym.kernel=tinygemm*"])
    result = project.runpytest_inprocess(
        "--benchmark-only",
        "--ptq-matrix=torchao.w-int4.g128.asym.kernel=tinygemm",
        "--ptq-corpus=read-clean",
        "-k",
        "tinygemm",
        "-rs",
    )
    result.assert_outcomes(skipped=1, deselected=1)
    result.stdout.fnmatch_lines(["*needs a CUDA device*"])


def test_ptq_variables_and_options_never_touch_a_run_without_benchmark_cases(pytester, monkeypatch):
    pytester.makepyfile(test_plain="def test_one():\n    assert 1 + 1 == 2\n")
    monkeypatch.setenv("PTQ_MAX_UTTERANCES", "abc")
    monkeypatch.setenv("PTQ_CORPUS", "nowhere")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "torch" not in result.stdout.str()


def test_bad_ptq_variables_are_usage_errors_that_name_the_variable(project, monkeypatch):
    monkeypatch.setenv("PTQ_MAX_UTTERANCES", "abc")
    result = project.runpytest_inprocess("--benchmark-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PTQ_MAX_UTTERANCES*'abc' is not a whole number*"])
    monkeypatch.delenv("PTQ_MAX_UTTERANCES")
    result = project.runpytest_inprocess("--benchmark-only", "--ptq-model", ",")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --ptq-model: ',' is empty; give at least one value*"])
