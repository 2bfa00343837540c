"""Measurements of the suite itself: harness overhead, batching gain, and that nothing is done twice.

``whisper-ptq-bench perf`` prints them; the figures are measured in one process, ratios only.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass

from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.data import load_corpus
from whisper_ptq_bench.transcribe import FeatureBatches, features, transcribe


@dataclass
class Overhead:
    harness_s: float
    bare_s: float

    @property
    def fraction(self) -> float:
        return self.harness_s / self.bare_s - 1


def harness_overhead(loaded, fb: FeatureBatches, rounds: int = 5) -> Overhead:
    """Median time of the harness's timed transcription against a bare loop of ``model.generate`` calls
    on the same batches, interleaved round by round so that machine load hits both alike."""
    model, gen = loaded.model, loaded.generation_config

    def bare() -> None:
        for feats, cap in zip(fb.batches, fb.max_new_tokens):
            model.generate(input_features=feats, generation_config=gen, max_new_tokens=cap)

    def harness() -> None:
        transcribe(model, gen, loaded.processor.tokenizer, fb)

    import torch

    with torch.no_grad():
        bare()  # warm-up
    h, b = [], []
    for _ in range(rounds):
        for fn, sink in ((harness, h), (bare, b)):
            start = time.perf_counter()
            with torch.no_grad():
                fn()
            sink.append(time.perf_counter() - start)
    return Overhead(statistics.median(h), statistics.median(b))


@dataclass
class Batching:
    batch_size: int
    batched_s: float
    single_s: float
    changed: list[tuple[str, str, str]]  # (utterance, batch 1 text, batched text)

    @property
    def gain(self) -> float:
        return self.single_s / self.batched_s


def batching_gain(loaded, corpus, batch_size: int, rounds: int = 3) -> Batching:
    """Throughput at ``batch_size`` against batch size 1 on the same utterances; transcripts compared."""
    one = features(loaded.processor, corpus, 1)
    many = features(loaded.processor, corpus, batch_size)
    args = (loaded.model, loaded.generation_config, loaded.processor.tokenizer)
    transcribe(*args, FeatureBatches(one.corpus, one.ids[:1], one.batches[:1], one.max_new_tokens[:1], 0, 1))
    t1, tb, texts1, textsb = [], [], [], []
    for _ in range(rounds):
        start = time.perf_counter()
        texts1 = transcribe(*args, one)
        t1.append(time.perf_counter() - start)
        start = time.perf_counter()
        textsb = transcribe(*args, many)
        tb.append(time.perf_counter() - start)
    changed = [(i, a, b) for i, a, b in zip(one.ids, texts1, textsb) if a != b]
    return Batching(batch_size, statistics.median(tb), statistics.median(t1), changed)


def work_counts(model: str, corpora: list[str], configs: list[str], max_utterances: int) -> Counter:
    """Run cases through the harness and count loads, feature extractions, references and quantizations."""
    import whisper_ptq_bench.models as models
    import whisper_ptq_bench.runner as runner
    from whisper_ptq_bench.backends import get_backend
    from whisper_ptq_bench.runner import Harness, Options

    counts: Counter = Counter()
    real_load, real_features = models.load, runner.features
    patched = []

    def counting(name, fn):
        def wrapper(*a, **k):
            counts[name] += 1
            return fn(*a, **k)

        return wrapper

    models.load = counting("model loads", real_load)
    runner.features = counting("feature extractions (incl. cached lookups)", real_features)
    backends = {get_backend(QuantConfig.from_id(c).backend) for c in configs}
    for backend in backends:
        patched.append((type(backend), type(backend).quantize))
        type(backend).quantize = counting("quantizations", type(backend).quantize)
    reference_runs = Counter()
    original_store = Harness._store_reference

    def store(self, model_name, corpus_name, texts, seconds):
        reference_runs[corpus_name] += 1
        return original_store(self, model_name, corpus_name, texts, seconds)

    Harness._store_reference = store
    try:
        harness = Harness(Options(models=[model], corpora=corpora, max_utterances=max_utterances, update_baselines=True))
        for config in configs:
            for corpus in corpora:
                harness.run_case(model, corpus, QuantConfig.from_id(config))
        counts["fp32 reference transcriptions"] = sum(reference_runs.values())
        counts["cases"] = len(harness.results)
    finally:
        models.load, runner.features = real_load, real_features
        Harness._store_reference = original_store
        for cls, fn in patched:
            cls.quantize = fn
    return counts


def main(model: str = "tiny.en", corpus: str = "real-clean", max_utterances: int = 24, batch_size: int = 8, rounds: int = 3) -> int:
    from whisper_ptq_bench.models import load

    loaded = load(model)
    data = load_corpus(corpus, max_utterances)
    fb = features(loaded.processor, data, batch_size)
    print(f"model {model}, corpus {corpus} ({len(data)} utterances, {data.seconds:.1f} s of audio), batch size {batch_size}")
    o = harness_overhead(loaded, fb, rounds)
    print(f"harness overhead: {o.fraction:+.2%} (timed transcription {o.harness_s:.3f} s vs bare generate loop {o.bare_s:.3f} s, median of {rounds})")
    b = batching_gain(loaded, data, batch_size, rounds)
    print(f"batching: batch {batch_size} is {b.gain:.2f}x the throughput of batch 1 ({b.batched_s:.2f} s vs {b.single_s:.2f} s)")
    print(f"  RTF {b.batched_s / data.seconds:.3f} at batch {batch_size}, {b.single_s / data.seconds:.3f} at batch 1")
    if b.changed:
        print(f"  {len(b.changed)} utterance(s) transcribed differently when batched:")
        for utt, one, many in b.changed:
            print(f"    {utt}: batch 1 {one!r} / batched {many!r}")
    else:
        print("  every transcript is identical at both batch sizes")
    counts = work_counts(model, ["real-clean", "real-other"], ["fp32", "torch-ao.dyn-int8.a-int8.tensor.sym", "hqq.w-int4.g64.asym"], 4)
    print("work done for 3 configurations x 2 corpora: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0
