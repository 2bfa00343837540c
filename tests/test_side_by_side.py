"""Side by side: a case judged against the same case measured live in a reference environment (a worker process),
the three verdicts, the kernel path, alternating speed rounds, and the upgrade command's environments."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench import gate, summary, upgrade
from whisper_ptq_bench.checks import CHANGED, IDENTICAL, REGRESSED, Context, SpeedCheck
from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.result import Drift, KernelPath, Outputs, Result, Weights
from whisper_ptq_bench.speed import Paired, alternating, hodges_lehmann

ROOT = Path(__file__).resolve().parents[1]
TOL = dict(bl.DEFAULT_TOLERANCES)


# --------------------------------------------------------------------------- alternating rounds


@pytest.mark.parametrize("pairs", [1, 2, 5, 8])
def test_rounds_alternate_reference_candidate_candidate_reference(pairs):
    log: list[str] = []
    count = {"R": 0, "C": 0}

    def run(who):
        def go():
            count[who] += 1
            log.append(who)
            return float(count[who])  # the reference's "seconds": its run number

        return go

    paired = alternating(run("R"), run("C"), pairs)
    expected = "".join("RC" if i % 2 == 0 else "CR" for i in range(pairs))
    assert "".join(log) == expected  # ABBA: neither side always first
    assert paired.reference == tuple(float(i + 1) for i in range(pairs)) and len(paired.candidate) == pairs


def test_pytest_benchmark_times_the_candidate_and_the_reference_runs_in_its_setup():
    log: list[str] = []

    class Benchmark:
        disabled = False

        def pedantic(self, target, setup, rounds, iterations, warmup_rounds):
            for _ in range(rounds):
                setup()
                log.append("timed")
                target()

    def ref():
        log.append("R")
        return 1.0

    def cand():
        log.append("C")
        return 1.0

    paired = alternating(ref, cand, 4, Benchmark())
    assert [x for x in log if x != "timed"] == list("RCCRRCCR") and log.count("timed") == 4
    assert len(paired.reference) == len(paired.candidate) == 4


@given(st.lists(st.floats(0.05, 5.0), min_size=2, max_size=16), st.floats(0.2, 5.0))
def test_the_paired_ratio_is_the_candidates_factor_whatever_the_machine_speed_of_each_pair(reference, k):
    paired = Paired(tuple(reference), tuple(k * x for x in reference))
    low, high = paired.interval()
    assert np.isclose(paired.ratio, k) and low <= k * (1 + 1e-9) and k <= high * (1 + 1e-9)


def paired(ratios, seconds=1.0) -> Paired:
    return Paired(tuple([seconds] * len(ratios)), tuple(seconds * r for r in ratios))


def test_the_paired_speed_check_is_red_beyond_half_its_tolerance_changed_beyond_noise_identical_else():
    assert SpeedCheck.paired(paired([1.10, 1.11, 1.09, 1.10, 1.12, 1.10, 1.09, 1.11]), TOL).status == REGRESSED
    assert SpeedCheck.paired(paired([1.03, 1.04, 1.03, 1.035, 1.04, 1.03, 1.03, 1.04]), TOL).status == CHANGED
    assert SpeedCheck.paired(paired([0.90, 0.91, 0.89, 0.90, 0.9, 0.91, 0.9, 0.9]), TOL).change.endswith(
        "faster than the reference environment"
    )
    assert SpeedCheck.paired(paired([1.0, 1.01, 0.99, 1.0, 1.005, 0.995, 1.0, 1.0]), TOL).status == IDENTICAL
    assert SpeedCheck.paired(paired([0.8, 1.4, 0.9, 1.5, 0.85, 1.3, 0.9, 1.2]), TOL).status != REGRESSED  # no signal
    # a steady 6% is what two processes of one environment can differ by for a whole case: changed, not red
    six = SpeedCheck.paired(paired([1.06, 1.05, 1.07, 1.06, 1.065, 1.055, 1.06, 1.06]), TOL)
    assert six.status == CHANGED and six.change.startswith("6.0% slower")


def test_a_few_pairs_on_one_side_are_no_evidence_of_a_speed_change():
    """Two pairs both 11% faster: their bootstrap interval excludes 1 (as it does half the time with nothing
    changed), but the signed-rank test cannot reject no change with fewer than six pairs."""
    two = paired([0.89, 0.885])
    low, high = two.interval()
    assert high < 1 and two.p_value() > 0.2
    assert SpeedCheck.paired(two, TOL).status == IDENTICAL
    assert SpeedCheck.paired(paired([1.3, 1.31]), TOL).status == IDENTICAL
    assert SpeedCheck.paired(paired([1.3] * 8), TOL).status == REGRESSED


@given(st.lists(st.floats(0.5, 2.0), min_size=2, max_size=30), st.floats(0.5, 2.0))
def test_the_signed_rank_p_value_does_not_depend_on_the_units_and_flips_with_the_sides(ratios, seconds):
    p = paired(ratios).p_value()
    assert 0.0 <= p <= 1.0
    assert np.isclose(paired(ratios, seconds).p_value(), p)
    assert np.isclose(paired([1 / r for r in ratios]).p_value(), p)


@given(st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=25), st.floats(-2.0, 2.0))
def test_the_hodges_lehmann_estimate_moves_with_the_data_flips_with_it_and_stays_within_it(x, shift):
    x = np.asarray(x)
    est = hodges_lehmann(x)
    assert x.min() - 1e-12 <= est <= x.max() + 1e-12
    assert np.isclose(hodges_lehmann(x + shift), est + shift)
    assert np.isclose(hodges_lehmann(-x), -est)


def test_one_wild_pair_does_not_move_the_ratio_beyond_the_others():
    steady = [1.02, 1.03, 1.01, 1.02, 1.03, 1.02, 1.01, 1.02]
    assert 1.01 <= paired(steady + [3.0]).ratio <= 1.03
    assert paired(steady + [3.0]).ratio < np.mean(steady + [3.0])


class _Worker:
    """``LiveReference.time`` without a process: the reference takes ``seconds`` per run."""

    def __init__(self, seconds):
        self.seconds, self.runs = seconds, 0

    def __call__(self):
        self.runs += 1
        return self.seconds


def _live(seconds):
    from whisper_ptq_bench.live import LiveReference

    live = LiveReference.__new__(LiveReference)
    live.threads = live.prepare = lambda *a: None
    live.run = _Worker(seconds)
    return live


def test_a_configurations_second_corpus_adds_a_quarter_of_the_pairs_to_its_first_and_a_slow_one_is_confirmed():
    first = _live(0.004).time("m", "fp32", _live(0.004), "w", 8, 1)
    assert len(first.ratios) == 8 and first.ratio == 1.0
    second = _live(0.004).time("m", "fp32", _live(0.004), "w", 8, 1, earlier=Paired((0.004,) * 8, (0.004,) * 8))
    assert len(second.ratios) == 10 and second.reference[:8] == (0.004,) * 8
    slow = _live(0.002).time("m", "fp32", _live(0.004), "w", 8, 1, earlier=Paired((0.002,) * 8, (0.004,) * 8))
    assert len(slow.ratios) == 24 and slow.ratio == 2.0  # suspect: confirmed up to three times the pairs
    done = _live(0.002).time("m", "fp32", _live(0.004), "w", 8, 1, earlier=Paired((0.002,) * 24, (0.004,) * 24))
    assert len(done.ratios) == 26  # confirmed already: only its own two


def test_each_side_is_timed_by_a_timing_worker_never_by_the_worker_that_measures_cases(monkeypatch):
    """The worker that measured (transcribed) the case read up to 7.5% apart from a fresh worker of the same
    environment: both sides are timed by workers that only time, and the session closes all three."""
    from types import SimpleNamespace

    from whisper_ptq_bench.configs import QuantConfig
    from whisper_ptq_bench.runner import Harness, Options, Shared

    measuring = _live(0.004)
    measuring.run = lambda: pytest.fail("the worker that measures cases timed a run")
    shared = Shared(live=measuring, timer=_live(0.0044), reference_timer=_live(0.004))
    harness = Harness(Options(models=["tiny.en"], corpora=["read-clean"], against=sys.executable), shared)
    monkeypatch.setattr(harness, "workload", lambda model: SimpleNamespace(describe=lambda: "w"))
    case = SimpleNamespace(model="tiny.en", config=QuantConfig.from_id("fp32"))
    paired = harness.time_against(case)
    assert np.isclose(paired.ratio, 1.1) and len(paired.ratios) == 24  # 10% slower: confirmed to three times 8
    assert shared.workers() == [measuring, shared.timer, shared.reference_timer]
    assert Shared().workers() == []


def test_both_sides_of_a_pair_are_prepared_on_the_timings_threads_and_the_candidate_with_its_slowdown():
    calls = []

    def side(name, seconds):
        live = _live(seconds)
        live.threads = lambda n: calls.append((name, "threads", n))
        live.prepare = lambda model, config, slow=0.0: calls.append((name, "prepare", model, config, slow))
        return live

    paired = side("ref", 0.01).time("m", "hqq.w-int4.g64.asym", side("cand", 0.011), "w", 4, 2, slow=0.1)
    assert ("ref", "threads", 2) in calls and ("cand", "threads", 2) in calls
    assert ("ref", "prepare", "m", "hqq.w-int4.g64.asym", 0.0) in calls
    assert ("cand", "prepare", "m", "hqq.w-int4.g64.asym", 0.1) in calls
    assert [c[1] for c in calls].index("prepare") > [c[1] for c in calls].index("threads")
    assert paired.candidate == (0.011,) * 12 and np.isclose(paired.ratio, 1.1)  # 10% slower: confirmed to 3x4


# --------------------------------------------------------------------------- identity, drift and the kernel path


def test_a_digest_tells_bit_identical_tensors_apart_from_ones_that_differ_in_the_last_bit():
    import torch

    from whisper_ptq_bench.fidelity import digest

    x = torch.randn(64, 64)
    assert digest(x) == digest(x.clone())
    y = x.clone()
    y[3, 7] = torch.nextafter(y[3, 7], torch.tensor(float("inf")))
    assert digest(x) != digest(y)


def outputs(per, digests=None) -> Outputs:
    return Outputs(0.05, 0.9, 1.3, {u: tuple(v) for u, v in per.items()}, digests)


def result(out: Outputs, weights=None, kernels=None, drift=None) -> Result:
    w = Weights({"m": (0.09, "int4")}, weights or {"m": "aa"})
    return Result(
        "tiny.en/read-clean/x",
        QuantConfig.from_id("hqq.w-int4.g64.asym"),
        weights=w,
        outputs=out,
        kernels=kernels,
        drift=drift,
    )


def test_outputs_are_identical_by_their_digests_and_changed_when_one_utterance_moved_a_bit():
    per = {"u1": [0.05, 0.9, 1.3], "u2": [0.04, 0.95, 1.2]}
    ref = result(outputs(per, {"u1": "a", "u2": "b"}))
    same = gate.judge(ref, result(outputs(per, {"u1": "a", "u2": "b"})), Context(TOL))
    assert same.verdict == IDENTICAL and not same.changes()
    drift = Drift({"u2": (1e-7, 1.0)}, 2)
    moved = gate.judge(ref, result(outputs(per, {"u1": "a", "u2": "c"}), drift=drift), Context(TOL))
    assert moved.verdict == CHANGED and not moved.failures  # the same values at six digits, other bits
    assert any(
        "1 utterance(s) moved" in c and "1 of 2 utterance(s) moved from the reference" in c for c in moved.changes()
    )
    assert (
        gate.judge(ref, result(outputs(per, {"u1": "a", "u2": "b"}), weights={"m": "bb"}), Context(TOL)).verdict
        == CHANGED
    )


def test_a_changed_kernel_path_names_the_operators_added_and_removed():
    old = KernelPath({"aten::mm": 10, "quantized::linear_dynamic": 64, "aten::add": 5})
    new = KernelPath({"aten::mm": 74, "aten::dequantize": 64, "aten::add": 5})
    text = old.diff(new)
    assert "operators added: aten::dequantize (x64)" in text and "operators removed: quantized::linear_dynamic" in text
    assert "aten::mm 10 -> 74" in text and old.diff(KernelPath(dict(old.ops))) is None
    per = {"u1": [0.05, 0.9, 1.3]}
    verdict = gate.judge(result(outputs(per), kernels=old), result(outputs(per), kernels=new), Context(TOL))
    assert verdict.verdict == CHANGED and any(
        c.startswith("kernels: kernel path: operators added") for c in verdict.changes()
    )


def test_fail_on_change_makes_a_change_red_and_names_it():
    per = {"u1": [0.05, 0.9, 1.3]}
    old, new = KernelPath({"aten::mm": 1}), KernelPath({"aten::mm": 2})
    verdict = gate.judge(
        result(outputs(per), kernels=old), result(outputs(per), kernels=new), Context(TOL, fail_on_change=True)
    )
    assert verdict.verdict == REGRESSED and "aten::mm 1 -> 2" in verdict.failures[0] and verdict.failed() == ["changed"]


def test_fail_on_change_leaves_a_speed_change_within_tolerance_changed_not_red():
    """Two processes of one environment time a configuration a few percent apart: --ptq-fail-on-change asks for
    every numerics change to be approved, and a speed change within tolerance is not one."""
    import dataclasses

    per = {"u1": [0.05, 0.9, 1.3]}
    slower = paired([1.04, 1.05, 1.04, 1.045, 1.05, 1.04, 1.04, 1.05])
    case = dataclasses.replace(result(outputs(per)), versus=slower)
    verdict = gate.judge(result(outputs(per)), case, Context(TOL, fail_on_change=True))
    assert verdict.verdict == CHANGED and not verdict.failures
    assert any(c.startswith("speed:") and "slower" in c for c in verdict.changes())
    both = dataclasses.replace(case, kernels=KernelPath({"aten::mm": 2}))
    verdict = gate.judge(
        dataclasses.replace(result(outputs(per)), kernels=KernelPath({"aten::mm": 1})),
        both,
        Context(TOL, fail_on_change=True),
    )
    assert verdict.verdict == REGRESSED and "aten::mm 1 -> 2" in verdict.failures[0]


def test_a_case_the_reference_failed_and_this_environment_runs_is_changed_not_red():
    verdict = gate.reference_failed("hqq raised RuntimeError")
    assert verdict.verdict == CHANGED and not verdict.failures and "hqq raised" in verdict.warnings[0]


@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=5), st.tuples(*[st.floats(0, 10)] * 3), min_size=1))
def test_a_result_survives_its_trip_to_json_and_back(per):
    r = result(Outputs(0.1, 0.9, 1.2, per, {u: "d" for u in per}))
    back = Result.from_json(json.loads(json.dumps(r.to_json())))
    assert back.outputs == r.outputs and back.weights == r.weights and back.case_id == r.case_id


# --------------------------------------------------------------------------- the summary


def row(case, comparison, changes=()):
    return {
        "case": case,
        "comparison": comparison,
        "changes": list(changes),
        "verdict": "ok",
        "baseline": "ok",
        "wer": 0.05,
        "delta": None,
        "size_mb": 90.0,
        "compression": 0.3,
        "weight_error": 0.1,
        "kl": 0.01,
        "kernel": None,
        "versus": 1.01,
        "speedup": 1.0,
        "error": None,
        "notes": [],
        "library_warnings": [],
    }


def test_the_summary_opens_with_the_verdict_counts_and_lists_what_changed():
    rows = [
        row("a/b/fp32", "identical"),
        row("a/b/x", "changed", ["output: 3 utterance(s) moved"]),
        row("a/b/y", "regressed"),
    ]
    s = [
        {
            "rows": rows,
            "lines": [],
            "phases": {},
            "diff": ["reference environment (py): transformers 5.24.0 -> 5.25.0"],
            "reference": "the reference environment py",
        }
    ]
    lines = summary.lines(s)
    assert lines[0] == "1 identical, 1 changed, 1 regressed (against the reference environment py)"
    assert lines[1] == "changed a/b/x: output: 3 utterance(s) moved" and lines[2].startswith("REGRESSED a/b/y")
    md = summary.markdown(s)
    assert "**1 identical, 1 changed, 1 regressed**" in md and "- `changed a/b/x`: output: 3 utterance(s) moved" in md
    assert "transformers 5.24.0 -> 5.25.0" in md and "| `a/b/fp32` | identical |" in md


# --------------------------------------------------------------------------- the upgrade command's environments


def test_the_candidate_is_the_pins_with_the_named_upgrade_and_the_reference_the_pins(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "pinned.txt").write_text(
        "# pins\ntorch==2.13.0\ntransformers==5.24.0\nhqq==0.2.8.post1\n"
    )
    reference, candidate = upgrade.plan(tmp_path, ["transformers==5.25.0"], False, None, None)
    assert "transformers==5.24.0" in reference.constraints and "transformers" not in candidate.constraints
    assert "hqq==0.2.8.post1" in candidate.constraints and candidate.requirements == ["transformers==5.25.0"]
    assert (
        reference.key() != candidate.key()
        and reference.key() == upgrade.plan(tmp_path, ["hqq==0.2.6"], False, None, None)[0].key()
    )
    _, latest = upgrade.plan(tmp_path, [], True, None, None)
    assert (
        latest.constraints.strip() == "torch==2.13.0"
        and "transformers" in latest.upgrade
        and "torch" not in latest.upgrade
    )
    with pytest.raises(upgrade.UpgradeError, match="name what to upgrade"):
        upgrade.plan(tmp_path, [], False, None, None)
    with pytest.raises(upgrade.UpgradeError, match="not a requirement"):
        upgrade.plan(tmp_path, ["==1.0"], False, None, None)


def test_the_pins_are_one_venv_whether_reference_or_candidate(tmp_path):
    """A downgrade pair's candidate (the pins) is the same venv as an upgrade pair's reference: built once."""
    pins = tmp_path / "requirements" / "pinned.txt"
    pins.parent.mkdir()
    pins.write_text("torch==2.13.0\nbitsandbytes==0.50.2\n")
    old = tmp_path / "old.txt"
    old.write_text("torch==2.13.0\nbitsandbytes==0.49.2\n")
    upgrade_ref, _ = upgrade.plan(tmp_path, ["transformers==5.25.0"], False, None, None)
    downgrade_ref, downgrade_cand = upgrade.plan(tmp_path, [], False, old, pins)
    assert downgrade_cand.python(tmp_path) == upgrade_ref.python(tmp_path)
    assert downgrade_ref.python(tmp_path) != downgrade_cand.python(tmp_path)
    assert "bitsandbytes==0.49.2" in downgrade_ref.constraints


def test_a_dry_run_prints_both_builds_and_the_side_by_side_command(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    lines: list[str] = []
    assert (
        upgrade.main(["bitsandbytes==0.49.2"], False, None, None, None, ["--ptq-matrix", "smoke"], True, lines.append)
        == 0
    )
    assert any("-e" in line and "[offline]" in line for line in lines) and any(
        "bitsandbytes==0.49.2" in line for line in lines
    )
    assert "--ptq-against=" in lines[-1] and lines[-1].endswith("--ptq-matrix smoke") and "pytest" in lines[-1]


def test_outside_a_checkout_the_upgrade_command_says_so(tmp_path):
    with pytest.raises(upgrade.UpgradeError, match="not inside a whisper-ptq-bench checkout"):
        upgrade.checkout_root(tmp_path)


# --------------------------------------------------------------------------- end to end, through pytest


@pytest.fixture
def project(run_imports, pytester):
    shutil.copy(ROOT / "benchmarks" / "test_quantization.py", pytester.path / "test_quantization.py")
    return pytester


def run(pytester, *extra):
    return pytester.runpytest_inprocess(
        "--benchmark-only",
        "--ptq-corpus=read-clean",
        "--ptq-matrix=fp32,hqq.w-int4.g64.asym",
        "--ptq-max-utterances=2",
        "--ptq-pairs=2",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::DeprecationWarning",
        *extra,
    )


def test_bad_side_by_side_options_are_usage_errors(project, tmp_path):
    missing = run(project, f"--ptq-against={tmp_path / 'no-python'}")
    assert missing.ret == 4 and "no such file" in missing.stderr.str()
    both = run(project, f"--ptq-against={sys.executable}", "--ptq-update-baselines")
    assert both.ret == 4 and "records no baselines" in both.stderr.str()
    bare = shutil.which("python3", path="/usr/bin:/bin")
    if bare:  # a Python without this package
        lacking = run(project, f"--ptq-against={bare}")
        assert lacking.ret == 4 and "not installed there" in lacking.stderr.str()


@pytest.mark.slow
def test_a_a_side_by_side_is_identical_and_a_patched_candidate_is_red(project, monkeypatch, tmp_path):
    """The same environment twice: every case identical (transcription reused); the candidate patched in this process
    (the reference worker is not): red on weights, with the module named."""
    from whisper_ptq_bench.regressions import by_name

    step = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    same = run(project, f"--ptq-against={sys.executable}", "--benchmark-json=aa.json")
    out = same.stdout.str()
    assert same.ret == 0, out
    assert "2 identical, 0 changed, 0 regressed (against the reference environment" in out
    info = {
        b["extra_info"]["case"]: b["extra_info"]
        for b in json.loads((project.path / "aa.json").read_text())["benchmarks"]
    }
    hqq = info["tiny.en/read-clean/hqq.w-int4.g64.asym"]
    assert hqq["comparison"]["verdict"] == "identical" and hqq["reference"]["transcription"] == "reused"
    assert hqq["drift"]["moved"] == 0 and hqq["versus"]["pairs"] >= 2 and hqq["kernels"]["aten::conv1d"] == 2
    assert "**2 identical, 0 changed, 0 regressed**" in step.read_text()
    with by_name("hqq-optimizer-off").patch():
        patched = run(project, f"--ptq-against={sys.executable}", "--ptq-matrix=hqq.w-int4.g64.asym")
    text = patched.stdout.str()
    assert patched.ret == 1 and "1 identical, 0 changed, 1 regressed" in text  # fp32 runs with every matrix
    assert "weights: the weight error of 64 module(s) moved" in text and "moved from the reference environment" in text


@pytest.mark.slow
def test_the_worker_finishes_a_case_on_the_threads_it_is_told_and_stays_in_step_after_a_drain():
    """The protocol: outputs first, then the worker waits for ``go`` (the threads to transcribe on); a session that
    failed the case after the outputs drains it, and the next request is answered in step."""
    from whisper_ptq_bench.configs import REFERENCE
    from whisper_ptq_bench.live import LiveReference
    from whisper_ptq_bench.runner import Options

    live = LiveReference(sys.executable, Options(models=["tiny.en"], corpora=["read-clean"], max_utterances=2))
    try:
        live.start("tiny.en", "read-clean", REFERENCE.id)
        there = live.outputs()
        assert live.waiting and set(there) >= {"weights", "outputs"} and len(there["outputs"]) == 2
        live.drain()  # as after a failure here: go, then the result is read and dropped
        assert not live.waiting and live.pending == 0
        live.start("tiny.en", "read-clean", REFERENCE.id)
        again = live.outputs()
        assert again["outputs"] == there["outputs"]  # deterministic, and in step
        live.go(2)
        result, _ = live.result()
        assert result.case_id == "tiny.en/read-clean/fp32" and result.transcripts is not None
        assert live.call("threads", n=1) == {"ok": True}
    finally:
        live.close()
    assert live.proc.wait(timeout=30) == 0
    assert not live.dir.exists()  # its folder (log, exported outputs) goes with it


@pytest.mark.slow
def test_a_timing_worker_runs_the_workload_slowed_as_asked_and_patched_as_the_drill_asks():
    """The candidate's side of each pair is timed in a worker of the session's environment: it must time what it is
    told to (a slowdown for the error-rate trials, the drill's patch) and drop a copy quantized under a patch."""
    from whisper_ptq_bench.live import LiveReference
    from whisper_ptq_bench.regressions import CATALOGUE
    from whisper_ptq_bench.runner import Options

    timer = LiveReference(sys.executable, Options(models=["tiny.en"], corpora=["read-clean"]), role="timing")
    try:
        timer.threads(1)
        timer.prepare("tiny.en", "fp32")
        plain = timer.call("run")
        assert plain["seconds"] >= plain["worked"] > 0 and plain["seconds"] < 1.05 * plain["worked"]
        timer.prepare("tiny.en", "fp32", slow=1.0)
        slowed = timer.call("run")
        assert slowed["seconds"] >= 2 * slowed["worked"] > 0  # each run followed by a busy wait as long as it
        assert isinstance(timer.run(), float)
        speed = next(r for r in CATALOGUE if r.signals == ("speed",))
        timer.prepare("tiny.en", speed.configs[0])
        unpatched = timer.count()
        assert unpatched > 0 and timer.count() == unpatched  # deterministic for one copy
        with timer.patched(speed.name):
            timer.prepare("tiny.en", speed.configs[0])
            timer.run()
            patched = timer.count()
        with pytest.raises(Exception, match="timing worker"):
            timer.run()  # nothing prepared after the patch is taken out: a clear error, not the patched copy
        timer.prepare("tiny.en", speed.configs[0])
        # the patch dequantizes every weight three times per call: what was timed under it did more work, and the
        # copy prepared after it is the unpatched one again (counted, not timed: a time on a shared machine is not
        # a test's to judge; the drill's timing is judged over its pairs)
        assert patched > unpatched and timer.count() == unpatched, (speed.name, patched, unpatched)
    finally:
        timer.close()


def test_a_worker_whose_session_is_killed_ends_instead_of_measuring_on(tmp_path):
    """The session is killed (SIGKILL: nothing closes the worker) while the worker's stdin stays open: the worker
    notices it lost its parent and exits, so it does not take the cores from the next run."""
    import os
    import signal
    import subprocess
    import time

    pid_file = tmp_path / "worker.pid"
    session = subprocess.Popen(
        ["bash", "-c", f'sleep 300 | "{sys.executable}" -m whisper_ptq_bench.worker & echo $! > "{pid_file}"; wait'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    worker = int(pid_file.read_text())
    os.kill(session.pid, signal.SIGKILL)
    session.wait()

    def alive() -> bool:
        try:
            with open(f"/proc/{worker}/stat") as stat:
                return stat.read().split(") ")[1][0] != "Z"
        except FileNotFoundError:
            return False

    while alive() and time.monotonic() < deadline + 30:
        time.sleep(0.2)
    gone = not alive()
    if not gone:
        os.kill(worker, signal.SIGKILL)
    subprocess.run(["pkill", "-f", "sleep 300"], check=False)
    assert gone, "the worker outlived its session"


def test_the_speed_checks_error_rate_trials_each_start_two_new_workers_and_close_them(monkeypatch):
    """perf's side-by-side trials: one pair of workers kept its own bias (A/A 1.04-1.06) for all its trials, so each
    trial starts a new pair, as each main-job run does, and closes it."""
    from whisper_ptq_bench import live, measure, perf

    started: list = []

    class Fake:
        def __init__(self, python, options, role):
            self.role, self.closed = role, False
            started.append(self)

        def time(self, model, config, candidate, workload, pairs, threads, slow=0.0):
            assert candidate is started[-1] and self is started[-2]  # this trial's pair
            factor = 1 + slow
            return Paired((1.0,) * pairs, (factor,) * pairs, workload)

        def close(self):
            self.closed = True

    class Work:
        def describe(self):
            return "fixed workload"

    monkeypatch.setattr(live, "LiveReference", Fake)
    monkeypatch.setattr(measure, "workload", lambda *a, **k: Work())
    monkeypatch.setattr("whisper_ptq_bench.models.load", lambda name: None)
    out = perf.paired_trials("tiny.en", "hqq.w-int4.g128.asym", 3, pairs=8, echo=lambda line: None)
    assert len(started) == 6 and all(w.closed for w in started)
    assert [w.role for w in started[:2]] == ["reference timing", "timing"]
    assert out["A/A"] == ["identical"] * 3 and out["20% slower"] == ["regressed"] * 3
    assert out["10% slower ratios"] == [1.1] * 3
