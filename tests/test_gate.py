"""The gate: weight, output and speed checks, machine profiles, and what fails, warns or is not compared."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench import gate, machine
from whisper_ptq_bench.checks import Context, OutputCheck, SpeedCheck, WeightCheck
from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.metrics import score
from whisper_ptq_bench.result import Inputs, Outputs, Result, Size, Transcripts, Weights, parse_speed, split
from whisper_ptq_bench.speed import Speed, Timing

HQQ = QuantConfig.from_id("hqq.w-int4.g64.asym")
DYN = QuantConfig.from_id("torch-ao.dyn-int8.a-int8.tensor.sym")
FMT = "int4 g64 asym (HQQ, axis 1)"
MODULES = [f"model.encoder.layers.{i}.fc1" for i in range(4)]
IDS = [f"u{i}" for i in range(20)]
REFS = ["the cat sat on the mat", "a dog ran in the park", "birds fly south in winter", "we eat bread and jam"] * 5
TOL = dict(bl.DEFAULT_TOLERANCES)


def per_utt(kl=0.05, nll=1.3, bump=()):
    rng = np.random.default_rng(0)
    out = {}
    for k, i in enumerate(IDS):
        base = kl * (0.5 + rng.random())
        out[i] = [base * (1.5 if k in bump else 1.0), 0.9, nll + (0.05 if k in bump else 0.0)]
    return {"kl": kl, "top1": 0.9, "nll": nll, "per_utterance": out}


def speed(cost, spread=0.02):
    """A speed without its rounds (as a baseline holds it, or one measured before the machine state was read)."""
    return Speed(cost, (cost * (1 - spread), cost * (1 + spread)), 5, "w")


def make(weights=None, output=None, sp=None, hyps=None, corpus="abc", config=HQQ) -> Result:
    """A candidate result as the harness measures it."""
    hyps = hyps or list(REFS)
    scored = score(IDS, REFS, hyps)
    weights = weights if weights is not None else {m: [0.09, FMT] for m in MODULES}
    return Result(
        "tiny.en/read-clean/x",
        config,
        "tiny.en",
        inputs=Inputs(corpus, "f" * 64, None),
        weights=Weights({m: tuple(v) for m, v in weights.items()}),
        size=Size(1000, 0.3),
        outputs=Outputs.of(output or per_utt()),
        transcripts=Transcripts.measured(dict(zip(IDS, hyps)), scored, scored, None, ()),
        speed=sp or speed(0.8),
    )


def expected(o: Result, config=HQQ, profile="cpu-a", **over) -> dict:
    """The baselines entry that recording ``o`` on ``profile`` writes, with ``over`` replacing its keys."""
    full = {**o.entry(), "environment": "env-1", **over}
    portable, bound = split(full, config.activation is not None)
    return {**portable, "profiles": {profile: bound}}


def judge(candidate: Result, entry: dict, profile: str, strict=False, machines=None, this=None) -> gate.Verdict:
    """The gate's verdict on ``candidate`` against ``entry`` read as baselines.json on ``profile``."""
    reference = bl.BaselineReference({"cases": {candidate.case_id: entry}, "profiles": machines or {}}, profile, this)
    context = Context(TOL, strict, reference.same_profile(candidate.case_id))
    return gate.judge(reference.result(candidate.case_id, candidate.config), candidate, context)


def held(sp: Speed) -> Speed:
    """``sp`` as a baseline keeps it (rounded, without its rounds)."""
    return parse_speed({"speed": sp.entry()}, "test")


def baseline_result(o: Result) -> Result:
    return bl.BaselineReference({"cases": {o.case_id: expected(o)}}, "cpu-a", None).result(o.case_id, o.config)


def fails(check, candidate: Result, base: Result) -> str | None:
    """``check``'s failure on ``candidate`` against the baseline recorded from ``base``."""
    return check.compare(baseline_result(base), candidate, Context(TOL)).failure


# --------------------------------------------------------------------------- weights


def test_unchanged_weights_pass_and_every_kind_of_change_is_named():
    base = make()
    assert fails(WeightCheck(0.01), base, base) is None
    lost = fails(WeightCheck(0.01), make(weights={m: [0.09, FMT] for m in MODULES[1:]}), base)
    assert "no longer quantized" in lost and MODULES[0] in lost
    fmt = make(weights={**{m: [0.09, FMT] for m in MODULES}, MODULES[2]: [0.09, "int4 g128 asym (HQQ, axis 1)"]})
    assert "changed format" in fails(WeightCheck(0.01), fmt, base) and MODULES[2] in fails(WeightCheck(0.01), fmt, base)
    nan = make(weights={**{m: [0.09, FMT] for m in MODULES}, MODULES[3]: [float("nan"), FMT]})
    assert "NaN" in fails(WeightCheck(0.01), nan, base)


@given(st.floats(0.001, 0.5), st.floats(-0.5, 0.5))
def test_a_weight_error_fails_exactly_when_it_moves_beyond_the_relative_tolerance(error, change):
    assume(abs(abs(change) - 0.01) > 1e-4)  # near the tolerance, the baseline's six significant digits decide
    base = make(weights={MODULES[0]: [error, FMT]})
    moved = make(weights={MODULES[0]: [error * (1 + change), FMT]})
    message = fails(WeightCheck(0.01), moved, base)
    assert (message is not None) == (abs(error * change) > 0.01 * error)
    if message:
        assert MODULES[0] in message and ("1 worse" in message) == (change > 0)


# --------------------------------------------------------------------------- outputs


def test_a_significant_kl_rise_fails_and_names_the_utterances_that_moved():
    base = make()
    worse = make(output=per_utt(bump=range(0, 20)))
    message = fails(OutputCheck(0.05, 0.002, 0.05), worse, base)
    assert message and "KL divergence from fp32 rose" in message and "95% CI" in message and "u" in message
    assert fails(OutputCheck(0.05, 0.002, 0.05), base, base) is None


def test_one_utterance_moving_is_not_significant():
    assert fails(OutputCheck(0.01, 10.0, 0.05), make(output=per_utt(bump=[3])), make()) is None


def test_the_reference_nll_gates_fp32_whose_kl_is_zero():
    fp32 = QuantConfig.from_id("fp32")
    zero = {i: [0.0, 1.0, 1.3] for i in IDS}
    shifted = {i: [0.0, 1.0, 1.31 + 0.001 * k] for k, i in enumerate(IDS)}
    base = make(output={"kl": 0, "top1": 1, "nll": 1.3, "per_utterance": zero}, config=fp32)
    now = make(output={"kl": 0, "top1": 1, "nll": 1.32, "per_utterance": shifted}, config=fp32)
    assert "reference NLL rose" in judge(now, expected(base, fp32), "cpu-a").failures[0]


# --------------------------------------------------------------------------- speed


def test_speed_fails_on_a_significant_slowdown_beyond_three_quarters_of_the_tolerance_only():
    old = held(speed(0.8))
    assert SpeedCheck(0.2).fails(old, speed(0.8 * 1.25))  # 25% slower, tight interval
    assert SpeedCheck(0.2).fails(old, speed(0.8 * 1.13)) is None  # within three quarters of it
    assert SpeedCheck(0.2).fails(old, speed(0.8 * 1.17))  # a 20% slowdown measured a little low
    assert SpeedCheck(0.2).fails(old, speed(0.8 * 1.3, spread=0.4)) is None  # interval holds no change
    assert SpeedCheck(0.2).fails(old, speed(0.6)) is None  # faster


def test_a_wide_interval_beyond_a_quarter_of_the_tolerance_is_suspect_and_gets_more_rounds():
    """Few rounds give a wide interval: a real 20% slowdown may not fail on them, but it is suspect."""
    old = held(speed(0.8))
    wide = speed(0.8 * 1.2, spread=0.3)
    assert SpeedCheck(0.2).fails(old, wide) is None and SpeedCheck(0.2).suspect(old, wide)
    assert SpeedCheck(0.2).suspect(old, speed(0.8 * 1.06))
    assert not SpeedCheck(0.2).suspect(old, speed(0.8 * 1.04))


@given(st.lists(st.floats(0.05, 5.0), min_size=3, max_size=12), st.floats(0.1, 10.0), st.floats(0.1, 10.0))
def test_relative_cost_ignores_a_common_machine_speed_and_scales_with_the_configuration(fp32, machine_speed, k):
    t = Timing(fp32=list(fp32), config=[k * x for x in fp32])
    slower_machine = Timing(fp32=[machine_speed * x for x in fp32], config=[machine_speed * k * x for x in fp32])
    assert np.isclose(t.cost, k) and np.isclose(slower_machine.cost, k)
    low, high = t.interval()
    assert low <= t.cost * (1 + 1e-9) and t.cost <= high * (1 + 1e-9)


def test_rounds_disturbed_by_load_are_not_steady():
    assert Timing(fp32=[1.0, 1.01, 0.99, 1.0, 1.02], config=[0.8] * 5).steady
    assert not Timing(fp32=[1.0, 1.6, 0.99, 1.0, 1.02], config=[0.8] * 5).steady
    assert not Timing(fp32=[1.0] * 5, config=[0.8] * 5, foreign_load=0.4).steady


def timed(costs, balances, fp32=1.0) -> Speed:
    """A speed as the harness measures it: per-round fp32 and configuration times with the balance."""
    return Speed.measured(Timing(fp32=[fp32] * len(costs), config=[fp32 * c for c in costs], balance=list(balances)))


A, B = 0.45, 0.24  # two memory/compute balances about a factor two apart, as measured (README, Speed)


@given(
    st.lists(st.floats(0.5, 2.0), min_size=3, max_size=9),
    st.lists(st.floats(0.5, 2.0), min_size=0, max_size=9),
    st.floats(0.9, 1.1),
)
def test_a_recorded_cost_is_that_of_the_state_most_rounds_were_in(majority, minority, jitter):
    """Rounds in a second machine state, fewer than those in the first, leave the recorded cost and state alone."""
    assume(len(minority) < len(majority))
    rounds = timed(majority + minority, [A * jitter] * len(majority) + [B] * len(minority)).info()
    assert np.isclose(rounds["cost"], np.median(majority)) and np.isclose(rounds["state"], A * jitter)
    assert rounds["state_rounds"] == len(majority) and rounds["rounds"] == len(majority) + len(minority)


def test_speed_in_another_machine_state_is_not_judged_and_says_why():
    exp = held(timed([1.2] * 6, [A] * 6))
    other = timed([1.5] * 6, [B] * 6)  # 25% slower, but measured in the other state
    assert SpeedCheck(0.2).fails(exp, other) is None and not SpeedCheck(0.2).suspect(exp, other)
    why = SpeedCheck.not_judged(exp, other)
    assert "0.24" in why and "0.45" in why and "not judged" in why
    verdict = judge(make(sp=other), expected(make(sp=timed([1.2] * 6, [A] * 6))), "cpu-a")
    assert not verdict.failures and any("memory/compute balance" in w for w in verdict.warnings)


def test_speed_timed_while_the_machine_switched_in_every_round_is_not_judged():
    exp = held(timed([1.2] * 6, [A] * 6))
    switching = timed([1.5] * 4, [0.0] * 4)
    assert switching.state is None and SpeedCheck(0.2).fails(exp, switching) is None
    assert "changed during every round" in SpeedCheck.not_judged(exp, switching)


def test_speed_is_judged_on_the_rounds_in_the_baselines_state():
    exp = held(timed([1.2] * 6, [A] * 6))
    mixed_slow = timed([1.5, 1.5, 1.5, 1.2, 1.2], [A, A, A, B, B])  # slower where comparable: red
    assert SpeedCheck.not_judged(exp, mixed_slow) is None
    assert "3 interleaved rounds in the machine state the baseline measured it in (balance 0.45)" in SpeedCheck(
        0.2
    ).fails(exp, mixed_slow)
    mixed_ok = timed([1.2, 1.21, 1.19, 1.55, 1.5], [A, A, A, B, B])  # the slow rounds were in state B
    assert SpeedCheck(0.2).fails(exp, mixed_ok) is None and not SpeedCheck(0.2).suspect(exp, mixed_ok)
    single = timed([1.5, 1.5, 1.5, 1.5], [A, B, B, B])  # one comparable round is not enough
    assert SpeedCheck(0.2).fails(exp, single) is None and SpeedCheck.not_judged(exp, single)


def test_a_baseline_with_a_cost_in_each_state_judges_each_state_against_its_own():
    """Rounds recorded in two states (three and two) keep a cost for each; a run in the second state is judged
    against the second state's cost, a run in the first against the first's."""
    recorded = timed([1.2, 1.21, 1.19, 1.5, 1.52], [A, A, A, B, B])
    assert [round(o.cost, 2) for o in recorded.others] == [1.51] and recorded.others[0].rounds == 2
    exp = held(recorded)
    in_b = timed([1.5] * 4, [B] * 4)  # the second state's usual cost: judged, green
    assert SpeedCheck.not_judged(exp, in_b) is None and SpeedCheck(0.2).fails(exp, in_b) is None
    slow_b = timed([1.51 * 1.25] * 4, [B] * 4)
    assert "(balance 0.24)" in SpeedCheck(0.2).fails(exp, slow_b) and "1.25x slower" in SpeedCheck(0.2).fails(
        exp, slow_b
    )
    slow_a = timed([1.5] * 4, [A] * 4)  # the second state's cost measured in the first: 25% slower, red
    assert "(balance 0.45)" in SpeedCheck(0.2).fails(exp, slow_a)
    third = timed([1.2] * 4, [0.1] * 4)
    why = SpeedCheck.not_judged(exp, third)
    assert "0.45 and 0.24" in why and "--ptq-update-baselines" in why


@given(st.lists(st.sampled_from([A, B, 0.1, 0.0]), min_size=1, max_size=12))
def test_a_run_is_judged_against_the_held_state_with_most_of_its_rounds(balances):
    """Whichever states a run's rounds fell in, it is judged on the held state with most of them (the recorded
    state on a tie), and only when that state has at least two of its rounds."""
    recorded = held(timed([1.0] * 4 + [2.0] * 3, [A] * 4 + [B] * 3))
    run = timed([1.0 if b == A else 2.0 if b == B else 9.0 for b in balances], balances)
    judged = run.in_state_of(recorded)
    counts = {A: balances.count(A), B: balances.count(B)}
    if max(counts.values()) < 2:
        assert judged is None
    else:
        state = A if counts[A] >= counts[B] else B
        measured, ref = judged
        assert np.isclose(ref.state, state) and measured.rounds == counts[state]
        assert np.isclose(measured.cost, ref.cost)  # same cost in the same state: no slowdown


def test_speed_without_a_recorded_state_is_judged_on_every_round():
    """Baselines recorded before the probe (or on a GPU, where it does not run) keep the earlier rule."""
    exp = held(speed(1.2))
    slow = timed([1.5] * 6, [B] * 6)
    assert SpeedCheck.not_judged(exp, slow) is None and SpeedCheck(0.2).fails(exp, slow)


def test_the_balance_probe_reads_a_positive_ratio_and_rounds_carry_it():
    from whisper_ptq_bench.speed import BalanceProbe, in_state, interleaved

    probe, reads = BalanceProbe(stream_mib=8, steps=5), []

    def reading() -> float:
        reads.append(probe())
        return reads[-1]

    timing = interleaved(lambda: None, lambda: None, 3, probe=reading)
    assert len(reads) == 4 and all(r > 0 for r in reads)  # before each round and after the last
    # a round keeps the reading before it where the reading after it is in the same state, else it is in none
    assert timing.balance == [a if in_state([b], a)[0] else 0.0 for a, b in zip(reads, reads[1:])]
    assert len(timing.as_dict()["balance"]) == 3


@given(st.lists(st.one_of(st.just(0.0), st.floats(0.1, 10.0)), min_size=1, max_size=30))
def test_machine_states_partition_the_readings_largest_first(values):
    from whisper_ptq_bench.speed import states

    found = states(values)
    masks = [mask for _, mask in found]
    covered = np.sum(masks, axis=0) if masks else np.zeros(len(values))
    assert np.array_equal(covered, np.asarray(values) > 0)  # every reading of a round in one state, exactly once
    sizes = [int(m.sum()) for m in masks]
    assert sizes == sorted(sizes, reverse=True) and all(size > 0 for size in sizes)


def test_the_session_line_names_each_state_and_the_switches():
    from whisper_ptq_bench.speed import describe_states

    line = describe_states([3.0, 3.1, 2.9, 1.5, 1.6, 0.0])
    assert line == "3.00 in 3, 1.55 in 2 of 6 rounds (1 during a switch)"


def test_a_round_during_which_the_machine_switched_state_belongs_to_none():
    from whisper_ptq_bench.speed import interleaved

    readings = iter([A, A, B, B, B])  # before each of 4 rounds, and after the last
    timing = interleaved(lambda: None, lambda: None, 4, probe=lambda: next(readings))
    assert timing.balance == [A, 0.0, B, B]
    assert np.isclose(timing.state, B) and len(timing.dominant().fp32) == 2


# --------------------------------------------------------------------------- the gate and machine profiles


def test_another_profile_is_green_on_what_it_cannot_compare_and_says_so():
    exp = expected(make(sp=speed(0.8), config=DYN), DYN, profile="cpu-a")
    slower = make(sp=speed(2.0), hyps=["x"] * 20, config=DYN)  # fails speed, WER and transcripts on its profile
    same = judge(slower, exp, "cpu-a")
    assert same.failures and "speed" in same.failed() and "wer" in same.failed()
    other = judge(slower, exp, "cpu-b")
    assert other.failures == [] and other.warnings == []
    assert other.notes and "this machine profile has no baseline" in other.notes[0]
    assert {"speed", "wer", "transcripts"} <= set(other.not_compared)


X86 = {"device": "cpu", "arch": "x86_64", "cpu": "A"}
MACHINES = {"cpu-a": X86, "cpu-c": {**X86, "cpu": "C"}, "gpu-a": {"device": "cuda", "gpu": "G"}}


def scaled(output: Outputs, factor: float) -> dict:
    """``output`` with every utterance's KL multiplied by ``factor`` (its NLL unchanged)."""
    per = {i: [v[0] * factor, v[1], v[2]] for i, v in output.per_utterance.items()}
    return {"kl": output.kl * factor, "top1": output.top1, "nll": output.nll, "per_utterance": per}


def output_outcome(verdict: gate.Verdict):
    return next((o for o in verdict.outcomes if o.check == "output"), None)


@given(st.floats(0.5, 3.0).filter(lambda f: abs(f - 1.3) > 0.02))
def test_an_activation_quantized_output_on_a_new_profile_fails_beyond_the_across_machine_tolerance(factor):
    base = make(config=DYN)
    exp = expected(base, DYN, profile="cpu-a")
    now = make(output=scaled(base.outputs, factor), config=DYN)
    verdict = judge(now, exp, "cpu-b", machines=MACHINES, this={**X86, "cpu": "B"})
    assert output_outcome(verdict) is not None
    assert any(n.startswith("output compared with machine profile cpu-a") for n in verdict.notes)
    failed = [m for m in verdict.failures if m.startswith("output (against machine profile cpu-a")]
    assert bool(failed) == (factor > 1 + TOL["kl_across"])
    assert verdict.failed() in ([], ["output"])  # speed and WER stay not compared


def test_across_profiles_a_case_passes_when_it_is_within_tolerance_of_any_recorded_machine():
    base = make(config=DYN)
    exp = expected(base, DYN, profile="cpu-a")
    exp["profiles"]["cpu-c"] = {**exp["profiles"]["cpu-a"], "output": scaled(base.outputs, 1.5)}
    now = make(output=scaled(base.outputs, 1.6), config=DYN)  # +60% from cpu-a, +7% from cpu-c
    this = {**X86, "cpu": "B"}
    assert judge(now, exp, "cpu-b", machines=MACHINES, this=this).failures == []
    worse = make(output=scaled(base.outputs, 2.5), config=DYN)
    verdict = judge(worse, exp, "cpu-b", machines=MACHINES, this=this)
    assert (
        len(verdict.failures) == 1
        and "cpu-a" in verdict.failures[0]
        and "utterances that moved most" in verdict.failures[0]
    )


def test_across_profiles_only_the_same_device_kind_and_architecture_compare():
    base = make(config=DYN)
    exp = expected(base, DYN, profile="cpu-a")
    worse = make(output=scaled(base.outputs, 3.0), config=DYN)
    arm = {"device": "cpu", "arch": "aarch64", "cpu": "N1"}
    for machines, this in ((MACHINES, arm), (MACHINES, {"device": "cuda", "gpu": "H"}), (None, None)):
        verdict = judge(worse, exp, "other", machines=machines, this=this)
        assert verdict.failures == [] and "output" in verdict.not_compared and output_outcome(verdict) is None


def test_on_its_own_profile_an_activation_quantized_output_keeps_the_narrow_tolerance():
    base = make(config=DYN)
    exp = expected(base, DYN, profile="cpu-a")
    verdict = judge(make(output=scaled(base.outputs, 1.2), config=DYN), exp, "cpu-a", machines=MACHINES, this=X86)
    assert any(m.startswith("output: KL") for m in verdict.failures) and output_outcome(verdict).note is None


def test_weight_only_outputs_are_portable_across_profiles():
    base = make()
    worse = make(output=per_utt(bump=range(20)))
    verdict = judge(worse, expected(base, HQQ, profile="cpu-a"), "cpu-b")
    assert any(m.startswith("output:") for m in verdict.failures)


def test_a_broken_configuration_warns_on_wer_but_still_fails_on_weights():
    good = make()
    exp = expected(good, HQQ, wer=0.9, fp32_wer=0.05)  # baseline already 85 points above fp32
    worse = make(hyps=["x"] * 20, weights={m: [0.2, FMT] for m in MODULES})
    verdict = judge(worse, exp, "cpu-a")
    assert any("not gating" in w for w in verdict.warnings)
    assert verdict.failed() == ["weights"]


def test_speed_measured_under_load_warns_instead_of_failing():
    exp = expected(make(sp=speed(0.8)))
    loaded = Speed.measured(Timing(fp32=[1.0] * 5, config=[2.0] * 5, foreign_load=0.45))
    verdict = judge(make(sp=loaded), exp, "cpu-a")
    assert not verdict.failures and "speed not judged" in verdict.warnings[0] and "45%" in verdict.warnings[0]


def test_recording_a_second_profile_keeps_the_first():
    case = "tiny.en/read-clean/torch-ao.dyn-int8.a-int8.tensor.sym"
    full = {"compression": 0.3, "corpus_hash": "abc", "weights": {}, "speed": speed(0.7).entry(), "wer": 0.1}
    a = split({**full, "transcripts": {}}, True)
    b = split({**full, "speed": speed(0.9).entry(), "wer": 0.2, "transcripts": {}}, True)
    env = {"torch": "2.13.0"}
    data = bl.merge(bl.empty(), [(case, *a, env, ("cpu-a", {"cpu": "A"}))])
    data = bl.merge(data, [(case, *b, env, ("cpu-b", {"cpu": "B"}))])
    parts = data["cases"][case]["profiles"]
    assert parts["cpu-a"]["speed"]["cost"] == 0.7 and parts["cpu-b"]["speed"]["cost"] == 0.9
    assert parts["cpu-a"]["wer"] == 0.1 and parts["cpu-b"]["wer"] == 0.2  # activation-quantized outputs per profile
    assert set(data["profiles"]) == {"cpu-a", "cpu-b"}
    bl.validate(data)


def test_machine_profile_names_what_selects_kernels(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx avx2 fma avx512f avx512_vnni\n")
    prof = machine.profile("cpu", info)
    assert prof["cpu"] == "Test CPU 9000" and prof["flags"] == "avx avx2 fma avx512f avx512_vnni"
    assert machine.profile_key(prof) == machine.profile_key(dict(prof))
    assert machine.profile_key(prof) != machine.profile_key({**prof, "flags": "avx avx2 fma"})
    assert machine.profile_key(prof).startswith("cpu-")
    assert "Test CPU 9000" in machine.describe(prof)


def test_steadiness_is_judged_on_the_latest_rounds_not_on_drift_between_cases():
    from whisper_ptq_bench.speed import pooled

    earlier = Timing(fp32=[1.0, 1.01, 1.0], config=[0.8, 0.81, 0.8])
    later = Timing(fp32=[1.4, 1.41, 1.4], config=[1.12, 1.13, 1.12])  # the whole machine 40% slower, steadily
    both = pooled(earlier, later)
    assert both.steady and len(both.ratios) == 6 and np.isclose(both.cost, 0.8, rtol=0.01)
    disturbed = pooled(earlier, Timing(fp32=[1.0, 1.6, 1.0], config=[0.8, 1.3, 0.8]))
    assert not disturbed.steady


@pytest.mark.parametrize(
    ("steady", "other", "suspect", "calls", "kept"),
    [
        ([True], False, False, [(True, 3)], 3),
        ([False, True], False, False, [(True, 3), (False, 3)], 3),  # disturbed: timed once more, instead
        ([True, True], True, False, [(True, 3), (False, 3)], 6),  # another machine state: one more set, pooled
        ([True, True], False, True, [(True, 3), (False, 9)], 12),  # suspect: confirmed on 3x more rounds, pooled
        ([True, True, True], True, True, [(True, 3), (False, 3), (False, 9)], 15),
        ([False, False], False, True, [(True, 3), (False, 3)], 3),  # still disturbed: never confirmed
    ],
)
def test_a_case_is_timed_again_when_disturbed_in_another_state_or_suspect(steady, other, suspect, calls, kept):
    from whisper_ptq_bench.speed import time_case

    made = []

    def measure(first, n):
        made.append((first, n))
        ok = steady[len(made) - 1]
        return Timing(fp32=[1.0] * n if ok else [1.0, 2.0] * (n // 2) + [1.0] * (n % 2), config=[1.0] * n)

    timing = time_case(measure, 3, None, lambda t: other, lambda t: suspect)
    assert made == calls and len(timing.fp32) == kept and timing.steady == steady[-1]
