"""The harness: one session object that loads each input once, quantizes each configuration once, measures each
case into one :class:`~whisper_ptq_bench.result.Result` (through ``measure``, ``fidelity`` and ``speed``) and
hands it with its reference to ``gate.judge``. It orchestrates; it measures and decides nothing itself."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench import fidelity as fd
from whisper_ptq_bench import gate, machine, measure
from whisper_ptq_bench import scope as sc
from whisper_ptq_bench import speed as sp
from whisper_ptq_bench.backends import get_backend
from whisper_ptq_bench.checks import Context, SpeedCheck
from whisper_ptq_bench.configs import REFERENCE, QuantConfig
from whisper_ptq_bench.data import load_corpus
from whisper_ptq_bench.environment import environment, radar
from whisper_ptq_bench.errors import BenchError
from whisper_ptq_bench.measure import QuantizationFailed, Reference
from whisper_ptq_bench.metrics import PeakMemory, paired_bootstrap, rtf, score
from whisper_ptq_bench.record import CaseRecord
from whisper_ptq_bench.result import (
    Drift,
    EndToEnd,
    Inputs,
    KernelPath,
    Outputs,
    Result,
    Scope,
    Size,
    Transcripts,
    Weights,
)
from whisper_ptq_bench.transcribe import FeatureBatches, batching, check_outputs, default_encoder_batch_size, features

__all__ = ["CaseSpec", "Harness", "Options", "QuantizationFailed", "Shared"]

log = logging.getLogger(__name__)


@dataclass
class Options:
    models: list[str]
    corpora: list[str]
    batch_size: int = 8
    encoder_batch_size: int | None = None  # None: default_encoder_batch_size(device)
    max_utterances: int | None = None
    rounds: int = 3  # interleaved (fp32, configuration) rounds per case; a configuration's cases pool them
    workload_steps: int = 16  # KV-cached decoder steps of the fixed workload
    device: str = "cpu"
    scope: tuple[str, ...] = sc.DEFAULT_SCOPE
    scope_exclude: tuple[str, ...] = ()
    calibration_corpus: str = "calibration"
    strict_transcripts: bool = False
    update_baselines: bool = False
    replace_inputs: bool = False  # an update may replace baselines measured on another subset or batching
    baselines_path: Path = Path("baselines.json")
    obtained_path: Path = Path("baselines.obtained.json")
    against: str | None = None  # the python of a reference environment: judge against it, side by side
    pairs: int = 8  # alternating (reference, candidate) pairs of the fixed workload per case, side by side
    verify_shortcut: bool = False  # side by side: transcribe even a case bit-identical to the reference's
    fail_on_change: bool = False  # a case that changed (within tolerance) fails too
    judge: bool = True  # False: measure only (a reference environment's worker)

    @property
    def encoder_chunk(self) -> int | None:
        return self.encoder_batch_size or default_encoder_batch_size(self.device)

    @property
    def batching(self) -> str:
        return batching(self.batch_size, self.encoder_chunk)


class CaseSpec(NamedTuple):
    """What a benchmark case runs: the ``ptq_case`` parameter (its id is ``baselines.case_id`` of it)."""

    model: str
    corpus: str
    config: QuantConfig


@dataclass
class Shared:
    """What harnesses of one process may share: loaded fp32 models, fixed workloads and fp32 references per
    (model, corpus). The drill runs its patched cases on the models and references of its control run."""

    models: dict[str, Any] = field(default_factory=dict)
    workloads: dict[str, fd.Workload] = field(default_factory=dict)
    references: dict[tuple[str, str], Reference] = field(default_factory=dict)
    live: Any = None  # side by side: the reference environment's worker (live.LiveReference) that measures cases
    timer: Any = None  # side by side: this environment's worker that times the candidate's side of each pair
    reference_timer: Any = None  # side by side: the reference environment's worker that times its side

    def workers(self) -> list:
        """The side-by-side worker processes started (none in the stored-baselines mode)."""
        return [w for w in (self.live, self.timer, self.reference_timer) if w is not None]


class Harness:
    """Session state and the steps of a case. Loads each fp32 model, corpus and fp32 reference once,
    quantizes each configuration once, and leaves every verdict to ``gate.judge``. ``counts`` says how often
    each piece of work was done."""

    def __init__(self, options: Options, shared: Shared | None = None):
        self.options = options
        self.shared = shared or Shared()
        self.corpora: dict[str, Any] = {}
        self.fp32_sizes: dict[str, tuple[int, int]] = {}
        self.timings: dict[tuple, sp.Timing] = {}  # per (model, configuration): steady rounds of its cases so far
        self.readings: list[float] = []  # the machine-state reading of every timed round of the session
        self.tokens: dict[tuple[str, str], list[list[int]]] = {}
        self.counts: Counter = Counter()
        self._quantized: tuple[tuple, measure.Quantized] | None = None
        self._failed: dict[tuple, str] = {}
        self.phases: dict[str, float] = defaultdict(float)
        self.results: list[CaseRecord] = []
        self.env = environment(options.device)
        self.machine = machine.profile(options.device)
        self.profile = machine.profile_key(self.machine)
        self._reference: bl.BaselineReference | None = None
        self.kernels: dict[tuple, KernelPath] = {}
        self.paired: dict[tuple, sp.Paired] = {}  # side by side, per (model, configuration): its pairs so far
        import torch

        self.threads = torch.get_num_threads()
        if options.against and self.live is None:
            import sys

            from whisper_ptq_bench.live import LiveReference

            self.shared.live = LiveReference(options.against, options)
            # each side timed by a worker that does nothing else (same history on both sides): with the reference's
            # side timed by the worker that had measured the case, an A/A default matrix read 0.953-1.075; with
            # timing-only workers on both sides, 0.955-1.053
            self.shared.timer = LiveReference(sys.executable, options, role="timing")
            self.shared.reference_timer = LiveReference(options.against, options, role="reference timing")
        if self.live is not None:
            self.concurrent_threads()
            self.live.threads(torch.get_num_threads())

    @property
    def live(self):
        """Side by side: the reference environment's worker that measures cases (``Shared.live``)."""
        return self.shared.live

    @property
    def timer(self):
        """Side by side: this environment's timing worker (``Shared.timer``)."""
        return self.shared.timer

    @property
    def models(self) -> dict[str, Any]:
        return self.shared.models

    @property
    def references(self) -> dict[tuple[str, str], Reference]:
        return self.shared.references

    def preflight(self, models: list[str], corpora: list[str]) -> None:
        """Before the first case: every model loads, the scope matches modules of each, every corpus loads.
        Errors name the option to change (``BenchError``)."""
        for name in models:
            try:
                loaded = self.model(name)
            except BenchError as err:
                raise BenchError(f"--ptq-model (or PTQ_MODEL): {err}") from None
            try:
                sc.select(loaded.model, self.options.scope, self.options.scope_exclude)
            except ValueError as err:
                raise BenchError(f"--ptq-scope / --ptq-scope-exclude: {err} (model {name})") from None
        for name in corpora:
            try:
                for utterance in self.corpus(name):
                    _ = utterance.audio  # decoded and checked against its manifest hash now, not in a case
            except BenchError as err:
                raise BenchError(f"--ptq-corpus (or PTQ_CORPUS): {err}") from None

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] += time.perf_counter() - start

    # ------------------------------------------------------------------ inputs (each loaded once)
    def model(self, name: str):
        if name not in self.models:
            from whisper_ptq_bench.models import load

            with self.phase("load"):
                self.models[name] = load(name)
            self.counts["model loads"] += 1
        return self.models[name]

    def corpus(self, name: str):
        """The run's subset of corpus ``name``, loaded once (a hub dataset would otherwise be re-read per call)."""
        if name not in self.corpora:
            with self.phase("load"):
                self.corpora[name] = load_corpus(name, self.options.max_utterances or None)
        return self.corpora[name]

    def features(self, model_name: str, corpus_name: str) -> FeatureBatches:
        loaded, corpus = self.model(model_name), self.corpus(corpus_name)
        self.counts["feature extractions (incl. cached lookups)"] += 1
        with self.phase("features"):
            return features(loaded.processor, corpus, self.options.batch_size)

    def reference_tokens(self, model_name: str, corpus_name: str) -> list[list[int]]:
        """Prompt + reference text + end-of-text per utterance: the teacher-forcing input of every configuration."""
        key = (model_name, corpus_name)
        if key not in self.tokens:
            loaded = self.model(model_name)
            corpus = (
                self.corpus(corpus_name) if corpus_name != self.options.calibration_corpus else load_corpus(corpus_name)
            )
            texts = [u.text for u in corpus]
            self.tokens[key] = fd.reference_tokens(loaded.processor.tokenizer, loaded.generation_config, texts)
        return self.tokens[key]

    def baselines(self) -> bl.BaselineReference:
        """baselines.json as this run's reference (read once; a BaselineError names the file)."""
        if self._reference is None:
            data = bl.load(self.options.baselines_path)
            self._reference = bl.BaselineReference(data, self.profile, self.machine, self.options.baselines_path)
        return self._reference

    def on_device(self, model):
        return measure.on_device(model, self.options.device)

    def fp32_size(self, model_name: str) -> tuple[int, int]:
        if model_name not in self.fp32_sizes:
            with self.phase("size"):
                self.fp32_sizes[model_name] = measure.fp32_sizes(self.model(model_name).model)
        return self.fp32_sizes[model_name]

    def reference(self, model_name: str, corpus_name: str) -> Reference:
        """fp32 on a corpus: encoder outputs, transcripts, WER and end-to-end time; computed once."""
        key = (model_name, corpus_name)
        if key not in self.references:
            loaded = self.model(model_name)
            fb = self.features(model_name, corpus_name)
            with self.phase("reference"):
                encoded, texts, seconds = measure.transcribe(
                    self.on_device(loaded.model), loaded, fb, self.options.device, self.options.encoder_chunk
                )
            self.counts["fp32 reference transcriptions"] += 1
            corpus = self.corpus(corpus_name)
            wer = score([u.id for u in corpus], [u.text for u in corpus], texts)
            self.references[key] = Reference(texts, seconds, wer, encoded)
        return self.references[key]

    def workload(self, model_name: str, steps: int | None = None) -> fd.Workload:
        steps = steps or self.options.workload_steps
        key = model_name if steps == self.options.workload_steps else f"{model_name}@{steps}"
        if key not in self.shared.workloads:
            corpus = load_corpus(self.options.calibration_corpus)
            self.shared.workloads[key] = measure.workload(self.model(model_name), corpus, steps)
        return self.shared.workloads[key]

    @contextmanager
    def timing_threads(self):
        """torch's intra-op threads set to the timing's (all the session's) for the block, then back to what they were
        (half of them side by side)."""
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    @property
    def half_threads(self) -> int:
        """Side by side, both environments measure a case at once: each on half the cores."""
        return max(1, self.threads // 2)

    def concurrent_threads(self) -> None:
        import torch

        torch.set_num_threads(self.half_threads)

    # ------------------------------------------------------------------ quantization (once per configuration)
    def quantized(self, model_name: str, config: QuantConfig) -> measure.Quantized:
        """The quantized copy for ``config`` with its scope, size and weight errors; kept until another is asked for."""
        key = (model_name, config)
        if key in self._failed:
            raise QuantizationFailed(self._failed[key])
        if self._quantized is not None and self._quantized[0] == key:
            return self._quantized[1]
        self.forget_quantized()  # free the previous copy first
        loaded = self.model(model_name)
        backend = get_backend(config.backend)
        requested = (
            [] if config == REFERENCE else sc.select(loaded.model, self.options.scope, self.options.scope_exclude)
        )
        calibrate = None
        if backend.needs_calibration(config):
            corpus = load_corpus(self.options.calibration_corpus)
            calibrate = measure.calibration(loaded, corpus, self.options.device, self.phase)
        try:
            q = measure.quantize(loaded.model, config, requested, self.options.device, calibrate, self.phase)
        except QuantizationFailed as err:
            self._failed[key] = str(err)
            log.debug("quantization failed", exc_info=True)
            raise
        self.counts["quantizations"] += 1
        self._quantized = (key, q)
        return q

    def forget_quantized(self) -> None:
        """Drop the kept quantized copy (the drill never reuses a copy made under a patch)."""
        self._quantized = None

    # ------------------------------------------------------------------ a case
    def run_case(
        self, model_name: str, corpus_name: str, config: QuantConfig, benchmark=None, announce=None
    ) -> CaseRecord:
        """Run one case; its verdict is in ``failures``/``warnings``/``notes``; a library error raises
        ``QuantizationFailed`` after the record is marked errored."""
        corpus = self.corpus(corpus_name)
        start = Result(
            bl.case_id(model_name, corpus_name, config),
            config,
            model_name,
            corpus.summary(),
            environment=self.env,
            profile=self.profile,
        )
        record = CaseRecord(start)
        self.results.append(record)
        try:
            with radar(record.library_warnings):
                self.measure_case(record, benchmark, announce)
        except QuantizationFailed as err:
            if self.live is not None:
                self.live.drain()
            record.result = replace(record.result, error=str(err))
            record.status = "errored"
            if benchmark is not None:
                benchmark.extra_info.update(record.extra_info())
            raise
        self.compare(record)
        if benchmark is not None:
            benchmark.extra_info.update(record.extra_info())
        return record

    def measure_case(self, record: CaseRecord, benchmark=None, announce=None) -> None:
        """Measure ``record``'s case into ``record.result``, part after part (an error leaves the parts so far).
        Against a live reference the reference environment measures the same case meanwhile; ``announce(result,
        log_probs)`` (a worker's) hears the teacher-forced outputs before the case is transcribed."""
        r = record.result
        model_name, corpus_name, config, device = r.model, r.corpus["name"], r.config, self.options.device
        loaded, corpus = self.model(model_name), self.corpus(corpus_name)
        backend = get_backend(config.backend)
        who = f"{config.id}: {backend.requirement or 'fp32'} {backend.version()}".rstrip()
        fb = self.features(model_name, corpus_name)
        # 1. quantize (once per configuration): scope, size and weight error per module
        q = self.quantized(model_name, config)
        fp32_bytes, fp16_bytes = self.fp32_size(model_name)
        r = record.result = replace(
            r,
            inputs=Inputs(corpus.summary()["hash"], loaded.fingerprint, self.options.batching),
            scope=Scope(q.scope.line(), q.scope.summary()),
            weights=Weights({m: tuple(v) for m, v in q.weights.items()}, dict(q.digests)),
            size=Size(
                q.serialized_bytes,
                1 - q.serialized_bytes / fp32_bytes,
                q.tensor_bytes,
                1 - q.serialized_bytes / fp16_bytes,
            ),
        )
        live = self.live
        if live is not None:
            live.start(model_name, corpus_name, config.id)  # the reference environment measures it meanwhile
        # 2. fp32 on this corpus (once per session), then this configuration's encoder
        ref = self.reference(model_name, corpus_name)
        with PeakMemory(device) as memory:
            if config == REFERENCE:
                encoded = ref.encoded
            else:
                with self.phase("transcribe"):
                    encoded, encoding = measure.encode(q.model, fb, device, self.options.encoder_chunk)
        # 3. teacher-forced output fidelity against fp32 on the reference tokens
        tokens = self.reference_tokens(model_name, corpus_name)
        prompt_len = len(fd.prompt_ids(loaded.generation_config))
        with self.phase("fidelity"):
            if ref.scored is None:
                ref.scored = fd.reference_log_probs(
                    self.on_device(loaded.model), ref.encoded, fb, tokens, prompt_len, device
                )
            keep = live is not None or announce is not None
            tf = fd.teacher_forced(q.model, encoded, ref.scored, fb, tokens, prompt_len, device, keep)
        r = record.result = replace(r, end_to_end=EndToEnd(0.0, 0.0, 1.0, memory.peak))
        if not tf.finite():
            raise QuantizationFailed(f"{who} produced NaN or infinite logits")
        notes = ()
        if fb.long:
            notes = (
                f"output fidelity: {len(fb.long)} utterance(s) over 30 s transcribed long-form, not teacher-forced "
                f"({', '.join(fb.long_ids[:5])}{' ...' if len(fb.long) > 5 else ''})",
            )
        outputs = Outputs.of(tf.as_dict(), dict(zip(tf.ids, tf.digests)))
        r = record.result = replace(r, outputs=outputs, notes=notes)
        if announce is not None:
            announce(r, tf.log_probs)
        # 4. the kernel path, before decoding, on the timing's threads (``kernel_path``)
        kernels = self.kernel_path(model_name, config)
        same = live is not None and self.live_outputs(record) and record.shortcut == "identical"
        # 5. decoding (skipped where weights and outputs are bit-identical to a live reference's: its transcripts)
        if config == REFERENCE:
            texts, seconds = ref.texts, ref.seconds
        elif same and not self.options.verify_shortcut:
            texts, seconds = None, None
        else:
            with PeakMemory(device) as decoding, self.phase("transcribe"):
                texts, seconds = measure.decode_texts(q.model, loaded, fb, encoded, device)
            seconds += encoding
            memory.peak = max(memory.peak, decoding.peak)
        if texts is not None:
            broken = check_outputs(texts)
            if broken:
                raise QuantizationFailed(f"{who}: {broken}")
        drift = self.live_result(record, texts, tf.log_probs) if live is not None else None
        # 6. speed: the fixed workload interleaved with fp32, or alternating with a live reference
        if live is not None:
            timing, versus = None, self.time_against(r, benchmark)
        else:
            timing, versus = (self.time(r, benchmark) if self.options.judge else None), None
        texts = texts if texts is not None else [record.reference.transcripts.texts[i] for i in fb.ids]
        # 7. scoring
        with self.phase("scoring"):
            scored = score(fb.ids, [u.text for u in corpus], texts)
            iv = paired_bootstrap(ref.wer.error_vector(), scored.error_vector(), scored.word_vector())
            changed = [i for i, a, b in zip(fb.ids, ref.texts, texts) if a != b]
            transcripts = Transcripts.measured(
                dict(zip(fb.ids, texts)), scored, ref.wer, {**iv.as_dict(), "fp32_wer": ref.wer.wer}, changed
            )
            if seconds is None:  # not transcribed again: the reference environment's time
                e2e = record.reference.end_to_end
            else:
                speedup = ref.seconds / seconds if seconds else float("nan")
                e2e = EndToEnd(seconds, rtf(seconds, fb.audio_seconds), speedup, memory.peak)
            record.result = replace(
                record.result,
                speed=timing,
                transcripts=transcripts,
                end_to_end=e2e,
                kernels=kernels,
                versus=versus,
                drift=drift,
            )

    def kernel_path(self, model_name: str, config: QuantConfig) -> KernelPath:
        """The operators the configuration's short fixed workload dispatches (once per configuration)."""
        key = (model_name, config)
        if key not in self.kernels:
            q = self.quantized(model_name, config)
            work = self.workload(model_name, measure.PATH_STEPS)
            # as timed: quanto and bnb split work, and dispatch, by thread count
            with self.timing_threads(), self.phase("kernel path"):
                work.run(q.model, self.options.device)  # warm
                self.kernels[key] = KernelPath(measure.kernel_path(work, q.model, self.options.device))
        return self.kernels[key]

    def time(self, r: Result, benchmark=None) -> sp.Speed:
        """The configuration's fixed workload timed interleaved with fp32 (``speed.time_case``): its rounds so far,
        pooled, with this case's own count."""
        device = self.options.device
        loaded, q, work = self.model(r.model), self.quantized(r.model, r.config), self.workload(r.model)
        fp32_model = self.on_device(loaded.model)
        key = (r.model, r.config)
        earlier = self.timings.get(key)

        def measure_rounds(first: bool, rounds: int) -> sp.Timing:  # the case's first rounds are pytest-benchmark's
            return sp.interleaved(
                lambda: work.run(fp32_model, device),
                lambda: work.run(q.model, device),
                rounds,
                benchmark if first else None,
                work.describe(),
                warm_up=earlier is None,
                probe=sp.balance if device == "cpu" else None,
            )

        with self.phase("timing"):
            timing = sp.time_case(
                measure_rounds,
                self.options.rounds,
                earlier,
                lambda t: self._other_state(r, t),
                lambda t: self._speed_suspect(r, t),
            )
        self.readings += timing.balance
        if timing.steady:
            self.timings[key] = sp.pooled(earlier, timing)
        return sp.Speed.measured(sp.pooled(earlier, timing), len(timing.config))

    # ------------------------------------------------------------------ side by side with a live reference
    def live_outputs(self, record: CaseRecord) -> bool:
        """The reference environment's digests of the case: ``record.shortcut`` is "identical" when its weights and
        teacher-forced outputs are bit-identical to this environment's. False when the case failed there."""
        import torch

        try:
            there = self.live.outputs()
        except QuantizationFailed as err:
            record.reference_error = str(err)
            return False
        r = record.result
        same = there["weights"] == r.weights.digests and there["outputs"] == r.outputs.digests
        record.shortcut = "identical" if same else None
        skips = same and not self.options.verify_shortcut and r.config != REFERENCE
        self.live.go(self.threads if skips else torch.get_num_threads())  # this process idles while it transcribes
        return True

    def live_result(self, record: CaseRecord, texts: list[str] | None, log_probs: dict) -> Drift | None:
        """The reference environment's result of the case (``record.reference``) and how far this environment's
        outputs moved from its (``result.Drift``); None when the case failed there."""
        if record.reference_error is not None:
            return None
        reference, record.reference_warnings = self.live.result()
        record.reference = reference
        mine, theirs = record.result.outputs.digests, reference.outputs.digests
        if record.shortcut == "identical" and texts is not None:  # transcribed although identical: was it sound?
            fb = self.features(reference.model, reference.corpus["name"])
            same = reference.transcripts.texts == dict(zip(fb.ids, texts))
            record.shortcut = "verified" if same else "unsound"
        moved = [u for u in mine if theirs.get(u) != mine[u]]
        if not moved:
            return Drift({}, len(mine))
        with self.phase("divergence"):
            divergence = fd.divergence(self.live.log_probs(), {u: log_probs[u] for u in moved})
        return Drift(divergence, len(mine))

    def time_against(self, r: Result, benchmark=None) -> sp.Paired:
        """The configuration's fixed workload timed in alternating rounds by two timing workers, the reference
        environment's and this environment's (``LiveReference.time``), both on every core, one at a time, pooled
        with its pairs for other corpora. Not in this process: the session's pytest (its log capture: bnb logs a
        warning per LLM.int8 matmul) and history made quanto int4 and LLM.int8 11-24% slower here than in a worker
        of the same environment."""
        key = (r.model, r.config)
        with self.phase("timing"):
            self.paired[key] = self.shared.reference_timer.time(
                r.model,
                r.config.id,
                self.timer,
                self.workload(r.model).describe(),
                self.options.pairs,
                self.threads,
                benchmark,
                self.paired.get(key),
            )
        return self.paired[key]

    # ------------------------------------------------------------------ the reference
    def speed_reference(self, r: Result) -> tuple[sp.Speed, float] | None:
        """This profile's recorded speed of the case and its tolerance, when there is one to judge against."""
        if self.options.update_baselines:
            return None
        try:
            reference = self.baselines()
        except BenchError:
            return None
        expected = reference.result(r.case_id, r.config) if reference.same_profile(r.case_id) else None
        if expected is None or expected.speed is None:
            return None
        return expected.speed, reference.tolerances(r.case_id)["speed"]

    def _other_state(self, r: Result, timing: sp.Timing) -> bool:
        """Were fewer than two of ``timing``'s rounds in the machine state of the case's baseline? When recording:
        in the session's home state (the one most of its rounds so far were in), so that a baseline is not
        recorded in a state the machine is seldom in."""
        if self.options.update_baselines:
            found = sp.states(self.readings + timing.balance)
            return len(found) > 1 and len(timing.in_state(found[0][0]).fp32) < 2
        known = self.speed_reference(r)
        return known is not None and SpeedCheck.not_judged(known[0], sp.Speed.measured(timing)) is not None

    def _speed_suspect(self, r: Result, timing: sp.Timing) -> bool:
        """Does ``timing`` look slower than this profile's baseline of the case (``SpeedCheck.suspect``)?"""
        known = self.speed_reference(r)
        return known is not None and SpeedCheck(known[1]).suspect(known[0], sp.Speed.measured(timing))

    def compare(self, record: CaseRecord) -> None:
        """The gate's verdict on the record against the baselines or the live reference (nothing to compare in an
        update run or in a reference environment's worker)."""
        r = record.result
        if not self.options.judge:
            record.status = "measured"
            return
        if self.live is not None:
            if record.reference is None:
                record.verdict = gate.reference_failed(record.reference_error)
            else:
                o, absent = self.options, "the reference environment measured none of it"
                context = Context(dict(bl.DEFAULT_TOLERANCES), o.strict_transcripts, True, o.fail_on_change, absent)
                record.verdict = gate.judge(record.reference, r, context)
            record.status = record.verdict.status
            return
        if self.options.update_baselines:
            record.status = "updated"
            return
        reference = self.baselines()
        expected = reference.result(r.case_id, r.config)
        if expected is None:
            record.status = "missing"
            record.verdict = gate.missing(
                f"no baseline for {r.case_id} in {self.options.baselines_path}: what it obtained is "
                f"written to {self.options.obtained_path}; accept it with --ptq-update-baselines"
            )
            return
        context = Context(
            reference.tolerances(r.case_id),
            self.options.strict_transcripts,
            reference.same_profile(r.case_id),
            self.options.fail_on_change,
        )
        record.verdict = gate.judge(expected, r, context)
        record.status = record.verdict.status

    # ------------------------------------------------------------------ writing baselines
    def finish(self, interrupted: bool = False) -> list[str]:
        """Write baselines (update flow) or the obtained file (``recording.finish``); end a live reference."""
        from whisper_ptq_bench import recording

        try:
            return recording.finish(self, interrupted)
        finally:
            for worker in self.shared.workers():
                worker.close()
