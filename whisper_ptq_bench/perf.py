"""Measurements of the suite itself: harness overhead, batching gain, and that nothing is done twice.

``whisper-ptq-bench perf`` prints them; the figures are measured in one process, ratios only.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.data import load_corpus
from whisper_ptq_bench.speed import REGIME_TOLERANCE
from whisper_ptq_bench.transcribe import (
    FeatureBatches,
    batching,
    capped,
    default_encoder_batch_size,
    encode,
    features,
    transcribe,
)

#: Configurations of ``perf --regimes``: weight-only ones of three libraries (the memory-bound kind that moved
#: with the machine's state) and dynamic int8 (compute-bound).
REGIME_CONFIGS = (
    "hqq.w-int4.g128.asym",
    "torchao.w-int8.tensor.sym",
    "quanto.w-int4.g128.asym",
    "bnb.w-nf4.g64.sym",
    "torch-ao.dyn-int8.a-int8.tensor.sym",
)


@dataclass
class Overhead:
    harness_s: float
    bare_s: float
    plain_generate_s: float

    @property
    def fraction(self) -> float:
        return self.harness_s / self.bare_s - 1


def _interleaved(fns: dict, rounds: int) -> dict[str, float]:
    """Median time of each function, run round by round in turn so that machine load hits all alike;
    the order rotates every round, so that no function always runs first (or right after another)."""
    import torch

    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            with torch.no_grad():
                fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def harness_overhead(loaded, fb: FeatureBatches, encoder_batch_size: int | None, rounds: int = 5) -> Overhead:
    """The harness's timed transcription against a bare loop of the same model calls on the same batches
    (encoder chunks, then ``model.generate``), and against plain ``model.generate(input_features=...)``."""
    import torch

    model, gen = loaded.model, loaded.generation_config
    chunk = encoder_batch_size or fb.batch_size

    def bare() -> None:
        for feats, caps in zip(fb.batches, fb.caps):
            model.generate(encoder_outputs=encode(model, feats, chunk), **capped(gen, caps))

    def plain() -> None:
        for feats, caps in zip(fb.batches, fb.caps):
            model.generate(input_features=feats, **capped(gen, caps))

    def harness() -> None:
        transcribe(model, gen, loaded.processor.tokenizer, fb, "cpu", encoder_batch_size)

    with torch.no_grad():
        bare()  # warm-up
    t = _interleaved({"harness": harness, "bare": bare, "plain": plain}, rounds)
    return Overhead(t["harness"], t["bare"], t["plain"])


@dataclass
class Batching:
    batch_size: int
    batched_s: float
    whole_encoder_s: float
    single_s: float
    changed: list[tuple[str, str, str]]  # (utterance, batch 1 text, batched text)

    @property
    def gain(self) -> float:
        return self.single_s / self.batched_s


def batching_gain(loaded, corpus, batch_size: int, encoder_batch_size: int | None, rounds: int = 3) -> Batching:
    """Throughput at ``batch_size`` (encoder in chunks, and over the whole batch) against batch size 1 on
    the same utterances; every transcript compared with batch size 1's."""
    one = features(loaded.processor, corpus, 1)
    many = features(loaded.processor, corpus, batch_size)
    args = (loaded.model, loaded.generation_config, loaded.processor.tokenizer)
    texts: dict[str, list[str]] = {}

    def run(name, fb, chunk):
        def fn():
            texts[name] = transcribe(*args, fb, "cpu", chunk)

        return fn

    run("warm-up", many, encoder_batch_size)()
    t = _interleaved(
        {
            "single": run("single", one, None),
            "batched": run("batched", many, encoder_batch_size),
            "whole": run("whole", many, None),
        },
        rounds,
    )
    changed = [
        (i, a, b) for name in ("batched", "whole") for i, a, b in zip(one.ids, texts["single"], texts[name]) if a != b
    ]
    return Batching(batch_size, t["batched"], t["whole"], t["single"], sorted(set(changed)))


def work_counts(model: str, corpora: list[str], configs: list[str], max_utterances: int) -> Counter:
    """Run cases through the harness and count loads, feature extractions, references and quantizations."""
    from whisper_ptq_bench.runner import Harness, Options

    harness = Harness(Options(models=[model], corpora=corpora, max_utterances=max_utterances, update_baselines=True))
    for config in configs:
        for corpus in corpora:
            harness.run_case(model, corpus, QuantConfig.from_id(config))
    counts = Counter(harness.counts)
    counts["cases"] = len(harness.results)
    return counts


def _quantized_and_workload(model_name: str, config_ids: list[str]):
    """The fp32 model, a quantized copy per configuration (``measure.quantize``) and the fixed workload."""
    from whisper_ptq_bench import measure
    from whisper_ptq_bench import scope as sc
    from whisper_ptq_bench.models import load
    from whisper_ptq_bench.runner import Options

    loaded = load(model_name)
    options = Options(models=[model_name], corpora=[])
    models = {"fp32": loaded.model}
    for cid in config_ids:
        models[cid] = measure.quantize(loaded.model, QuantConfig.from_id(cid), sc.select(loaded.model), "cpu").model
    work = measure.workload(loaded, load_corpus(options.calibration_corpus), options.workload_steps)
    return models, work


@dataclass
class SpeedTrials:
    config: str
    baseline_cost: float
    same: list[str]  # per A/A case timing: "pass", "fail" or "not judged"
    slowed: list[str]  # per case timing with the injected slowdown
    slowdown: float
    ratios: list[tuple[bool, float]] = field(default_factory=list)  # (slowed?, measured cost / baseline cost)
    baseline_state: float | None = None  # the baseline's memory/compute balance
    other_state: int = 0  # case timings not judged: no two rounds in a memory/compute state the baseline holds
    states_recorded: int = 1  # machine states the baseline holds a cost for by the end

    @staticmethod
    def rate(outcomes: list[str], what: str) -> str:
        judged = [o for o in outcomes if o != "not judged"]
        n = sum(1 for o in judged if o == what)
        return f"{n}/{len(judged)} ({n / len(judged):.0%})" if judged else "none judged"


def speed_trials(model_name: str, config_id: str, trials: int, rounds: int = 3, slowdown: float = 0.2) -> SpeedTrials:
    """The speed check's error rates on this machine: a baseline measured as an update run records it (two cases'
    rounds pooled), then ``trials`` A/A trials (nothing changed) and ``trials`` trials of the same configuration
    made ``slowdown`` slower (a busy wait after each of its workload runs, proportional to that run),
    alternating. A trial is a configuration's two cases, each timed and judged as the harness does (``rounds``
    per case, the main job's default): two case timings per trial."""
    from whisper_ptq_bench.checks import SpeedCheck
    from whisper_ptq_bench.speed import Speed, balance, interleaved, pooled, time_case

    models, work = _quantized_and_workload(model_name, [config_id])
    loaded_model, quantized = models["fp32"], models[config_id]

    def fp32() -> None:
        work.run(loaded_model, "cpu")

    def same() -> None:
        work.run(quantized, "cpu")

    def slowed() -> None:
        start = time.perf_counter()
        work.run(quantized, "cpu")
        until = time.perf_counter() + (time.perf_counter() - start) * slowdown
        while time.perf_counter() < until:
            pass

    def fails(timing, baseline: Speed) -> bool:
        return SpeedCheck(0.2).fails(baseline, Speed.measured(timing)) is not None

    def suspect(timing, baseline: Speed) -> bool:
        return SpeedCheck(0.2).suspect(baseline, Speed.measured(timing))

    def other_state(timing, baseline: Speed) -> bool:
        return SpeedCheck.not_judged(baseline, Speed.measured(timing)) is not None

    def record() -> Speed:
        """A baseline as an update run records it: the pooled rounds of the configuration's two cases."""
        return Speed.measured(
            pooled(
                interleaved(fp32, same, rounds // 2, probe=balance),
                interleaved(fp32, same, rounds - rounds // 2, warm_up=False, probe=balance),
            )
        )

    def judged_case(config_fn, earlier):
        """One case timed as the harness times it (``speed.time_case``) and judged. A case in a state the baseline
        holds no cost for has one recorded there, as a second update run on the same machine and libraries keeps
        it, and is judged against it."""

        def measure(first: bool, n: int):
            return interleaved(fp32, config_fn, n, warm_up=first and earlier is None, probe=balance)

        timing = time_case(measure, rounds, earlier, lambda t: other_state(t, held[0]), lambda t: suspect(t, held[0]))
        if not timing.steady:
            return "not judged", earlier
        total = pooled(earlier, timing)
        if other_state(total, held[0]):
            held[0] = held[0].with_states(record())
            result.states_recorded = len(held[0].references())
        if other_state(total, held[0]):
            result.other_state += 1
            return "not judged", earlier
        ratio = Speed.measured(total).slowdown(held[0])[0]
        result.ratios.append((config_fn is slowed, round(ratio, 4)))
        return ("fail" if fails(total, held[0]) else "pass"), total

    def trial(config_fn) -> list[str]:
        """A configuration's two cases (clean and noisy corpus), the second judged on the pooled rounds."""
        first, earlier = judged_case(config_fn, None)
        second, _ = judged_case(config_fn, earlier if first != "not judged" else None)
        return [first, second]

    held = [record()]  # the baseline, gaining the cost of each further machine state the trials meet
    result = SpeedTrials(config_id, held[0].cost, [], [], slowdown, baseline_state=held[0].state)
    for _ in range(trials):
        result.same += trial(same)
        result.slowed += trial(slowed)
        print(
            f"  A/A {result.rate(result.same, 'fail')}, slowed {result.rate(result.slowed, 'fail')}; "
            f"measured slowdowns {result.ratios[-4:]}; baseline states "
            f"{', '.join(format(r.state, '.2f') for r in held[0].references())}",
            flush=True,
        )
    return result


def paired_trials(model_name: str, config_id: str, trials: int, pairs: int = 8, echo=print) -> dict[str, list[str]]:
    """The side-by-side speed check's error rates on this machine: two new workers of this environment per trial
    time the configuration's fixed workload in alternating rounds (``LiveReference.time``, as a side-by-side case
    does: one as the reference, one as the candidate), each timing judged by ``SpeedCheck.paired``. Trials rotate
    between nothing changed (A/A), the candidate made 20% slower and 10% slower (a busy wait after each of its
    runs, proportional to it). Returns per kind the verdict of each timing, with the measured ratios under
    ``<kind> ratios``."""
    import sys

    import torch

    from whisper_ptq_bench import measure
    from whisper_ptq_bench.baselines import DEFAULT_TOLERANCES
    from whisper_ptq_bench.checks import SpeedCheck
    from whisper_ptq_bench.live import LiveReference
    from whisper_ptq_bench.models import load
    from whisper_ptq_bench.runner import Options

    options = Options(models=[model_name], corpora=[])
    QuantConfig.from_id(config_id)  # an unknown configuration fails here, before the workers start
    workload = measure.workload(load(model_name), load_corpus(options.calibration_corpus), options.workload_steps)
    threads = torch.get_num_threads()
    kinds = {"A/A": 0.0, "20% slower": 0.2, "10% slower": 0.1}
    out: dict[str, list] = {k: [] for k in kinds} | {f"{k} ratios": [] for k in kinds}
    for trial in range(trials):
        # new workers each trial, as each main-job run starts its own: one pair of workers read A/A 1.04-1.06 in
        # all of 8 trials, other pairs 0.95-0.97 and 0.98-1.02 (hqq int4 g128, 2-core EPYC)
        live = LiveReference(sys.executable, options, role="reference timing")
        timer = LiveReference(sys.executable, options, role="timing")
        try:
            for kind, slow in kinds.items():
                paired = live.time(model_name, config_id, timer, workload.describe(), pairs, threads, slow=slow)
                outcome = SpeedCheck.paired(paired, DEFAULT_TOLERANCES)
                out[kind].append(outcome.status)
                out[f"{kind} ratios"].append(round(paired.ratio, 4))
        finally:
            live.close()
            timer.close()
        echo(f"  trial {trial + 1}: " + "; ".join(f"{k} {out[f'{k} ratios'][-1]:.3f} {out[k][-1]}" for k in kinds))
    return out


@dataclass
class Regimes:
    """Rounds of fp32 and several configurations on the fixed workload, each with the machine's balance."""

    configs: list[str]
    balance: list[float] = field(default_factory=list)
    costs: dict[str, list[float]] = field(default_factory=dict)  # per configuration, its time / fp32's, per round

    def states(self) -> list[tuple[float, np.ndarray]]:
        """The machine states the rounds fell into, largest first: (median balance, mask of its rounds)."""
        from whisper_ptq_bench.speed import states

        return states(self.balance)

    def summary(self) -> list[str]:
        lines = []
        for state, mask in self.states():
            costs = ", ".join(f"{c} {np.median(np.asarray(self.costs[c])[mask]):.3f}" for c in self.configs)
            lines.append(
                f"  balance {state:.2f}: {int(mask.sum())} of {len(mask)} rounds; cost relative to fp32: {costs}"
            )
        return lines


def regimes(model_name: str, config_ids: list[str], minutes: float) -> Regimes:
    """Time fp32 and each configuration on the fixed workload round after round for ``minutes`` (the order
    rotating each round), reading the machine's memory/compute balance before each round: whether this
    machine switches between states, and how each configuration's relative cost moves with them."""
    from whisper_ptq_bench.speed import balance

    models, work = _quantized_and_workload(model_name, config_ids)
    names = list(models)
    for name in names:  # warm-up
        work.run(models[name], "cpu")
    result = Regimes(config_ids, [], {c: [] for c in config_ids})
    end, r = time.monotonic() + minutes * 60, 0
    while time.monotonic() < end:
        result.balance.append(balance())
        seconds = {}
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            work.run(models[name], "cpu")
            seconds[name] = time.perf_counter() - start
        for c in config_ids:
            result.costs[c].append(seconds[c] / seconds["fp32"])
        r += 1
        print(
            f"  round {r}: balance {result.balance[-1]:.3f}; "
            + ", ".join(f"{c} {result.costs[c][-1]:.3f}" for c in config_ids),
            flush=True,
        )
    return result


def main(
    model: str = "tiny.en",
    corpus: str = "read-clean",
    max_utterances: int = 40,
    batch_size: int = 8,
    encoder_batch_size: int | None = None,
    rounds: int = 3,
    speed_trials_n: int = 0,
    speed_config: str = "hqq.w-int4.g64.asym",
    regime_minutes: float = 0.0,
    regime_configs: tuple[str, ...] = REGIME_CONFIGS,
    side_by_side: bool = False,
) -> int:
    import transformers

    from whisper_ptq_bench.models import load

    transformers.logging.set_verbosity_error()
    if regime_minutes:
        survey = regimes(model, list(regime_configs), regime_minutes)
        found = survey.states()
        print(
            f"machine states over {regime_minutes:g} min ({len(survey.balance)} rounds; rounds within "
            f"{REGIME_TOLERANCE:.0%} of each other's balance share a state): {len(found)}"
        )
        print("\n".join(survey.summary()))
        return 0
    if speed_trials_n and side_by_side:
        out = paired_trials(model, speed_config, speed_trials_n)
        for kind in ("A/A", "20% slower", "10% slower"):
            red, ratios = out[kind].count("regressed"), out[f"{kind} ratios"]
            print(
                f"{kind}: {red} of {len(ratios)} timings red ({red / len(ratios):.0%}); "
                f"{out[kind].count('changed')} changed; ratios {min(ratios):.3f}-{max(ratios):.3f} "
                f"(median {float(np.median(ratios)):.3f})"
            )
        return 0
    if speed_trials_n:
        t = speed_trials(model, speed_config, speed_trials_n, rounds)
        print(
            f"speed check on {t.config} ({t.baseline_cost:.3f} of fp32's time at baseline), {speed_trials_n} trials of "
            f"two cases, {rounds} rounds each: A/A false alarms {t.rate(t.same, 'fail')} of case timings, "
            f"{t.slowdown:.0%} slowdown caught {t.rate(t.slowed, 'fail')}; not judged: "
            f"{t.same.count('not judged') + t.slowed.count('not judged')} ({t.other_state} in a machine state the "
            f"baseline held no cost for, the rest disturbed); baseline recorded at balance {t.baseline_state or 0:.2f}, "
            f"holding {t.states_recorded} state(s) by the end"
        )
        return 0
    loaded = load(model)
    data = load_corpus(corpus, max_utterances)
    chunk = encoder_batch_size or default_encoder_batch_size("cpu")
    fb = features(loaded.processor, data, batch_size)
    print(
        f"model {model}, corpus {corpus} ({len(data)} utterances, {data.seconds:.1f} s of audio), {batching(batch_size, chunk)}"
    )
    o = harness_overhead(loaded, fb, chunk, rounds)
    print(
        f"harness overhead: {o.fraction:+.2%} (timed transcription {o.harness_s:.3f} s vs a bare loop of the same "
        f"model calls {o.bare_s:.3f} s, median of {rounds}; plain generate(input_features) loop {o.plain_generate_s:.3f} s)"
    )
    b = batching_gain(loaded, data, batch_size, chunk, rounds)
    print(
        f"batching: batch {batch_size} (encoder {chunk}) is {b.gain:.2f}x the throughput of batch 1 "
        f"({b.batched_s:.2f} s vs {b.single_s:.2f} s); with the encoder over the whole batch "
        f"{b.single_s / b.whole_encoder_s:.2f}x ({b.whole_encoder_s:.2f} s)"
    )
    print(f"  RTF {b.batched_s / data.seconds:.3f} at batch {batch_size}, {b.single_s / data.seconds:.3f} at batch 1")
    if b.changed:
        print(f"  {len(b.changed)} utterance(s) transcribed differently when batched:")
        for utt, one, many in b.changed:
            print(f"    {utt}: batch 1 {one!r} / batched {many!r}")
    else:
        print("  every transcript is identical at both batch sizes")
    counts = work_counts(
        model, ["read-clean", "read-other"], ["fp32", "torch-ao.dyn-int8.a-int8.tensor.sym", "hqq.w-int4.g64.asym"], 4
    )
    print("work done for 3 configurations x 2 corpora: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0
