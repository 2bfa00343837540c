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
from whisper_ptq_bench.errors import BaselineError, BenchError
from whisper_ptq_bench.measure import QuantizationFailed
from whisper_ptq_bench.metrics import PeakMemory, WerResult, paired_bootstrap, rtf, score
from whisper_ptq_bench.result import (
    CaseRecord,
    EndToEnd,
    Inputs,
    Outputs,
    Result,
    Scope,
    Size,
    Transcripts,
    Weights,
    split,
)
from whisper_ptq_bench.transcribe import FeatureBatches, batching, check_outputs, default_encoder_batch_size, features

__all__ = ["CaseSpec", "Harness", "Options", "QuantizationFailed", "Shared", "changed_inputs"]

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
class Reference:
    """fp32 on one corpus: transcripts, WER, end-to-end seconds, and the encoder outputs per batch that the
    teacher-forced comparison reuses."""

    texts: list[str]
    seconds: float
    wer: WerResult
    encoded: list
    scored: list | None = None  # fp32 teacher-forced log-probabilities at the scored positions (fidelity.py)


@dataclass
class Shared:
    """What harnesses of one process may share: loaded fp32 models, fixed workloads and fp32 references per
    (model, corpus). The drill runs its patched cases on the models and references of its control run."""

    models: dict[str, Any] = field(default_factory=dict)
    workloads: dict[str, fd.Workload] = field(default_factory=dict)
    references: dict[tuple[str, str], Reference] = field(default_factory=dict)


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

    def workload(self, model_name: str) -> fd.Workload:
        if model_name not in self.shared.workloads:
            corpus = load_corpus(self.options.calibration_corpus)
            self.shared.workloads[model_name] = measure.workload(
                self.model(model_name), corpus, self.options.workload_steps
            )
        return self.shared.workloads[model_name]

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
    def run_case(self, model_name: str, corpus_name: str, config: QuantConfig, benchmark=None) -> CaseRecord:
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
                self.measure_case(record, benchmark)
        except QuantizationFailed as err:
            record.result = replace(record.result, error=str(err))
            record.status = "errored"
            if benchmark is not None:
                benchmark.extra_info.update(record.extra_info())
            raise
        self.compare(record)
        if benchmark is not None:
            benchmark.extra_info.update(record.extra_info())
        return record

    def measure_case(self, record: CaseRecord, benchmark=None) -> None:
        """Measure ``record``'s case into ``record.result``, part after part (an error leaves the parts so far)."""
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
            weights=Weights({m: tuple(v) for m, v in q.weights.items()}),
            size=Size(
                q.serialized_bytes,
                1 - q.serialized_bytes / fp32_bytes,
                q.tensor_bytes,
                1 - q.serialized_bytes / fp16_bytes,
            ),
        )
        # 2. fp32 on this corpus (once per session), then this configuration end to end
        ref = self.reference(model_name, corpus_name)
        with PeakMemory(device) as memory:
            if config == REFERENCE:
                encoded, texts, seconds = ref.encoded, ref.texts, ref.seconds
            else:
                with self.phase("transcribe"):
                    encoded, texts, seconds = measure.transcribe(
                        q.model, loaded, fb, device, self.options.encoder_chunk
                    )
        # 3. teacher-forced output fidelity against fp32 on the reference tokens
        tokens, prompt_len = (
            self.reference_tokens(model_name, corpus_name),
            len(fd.prompt_ids(loaded.generation_config)),
        )
        with self.phase("fidelity"):
            if ref.scored is None:
                ref.scored = fd.reference_log_probs(
                    self.on_device(loaded.model), ref.encoded, fb, tokens, prompt_len, device
                )
            tf = fd.teacher_forced(q.model, encoded, ref.scored, fb, tokens, prompt_len, device)
        r = record.result = replace(r, end_to_end=EndToEnd(0.0, 0.0, 1.0, memory.peak))
        if not tf.finite():
            raise QuantizationFailed(f"{who} produced NaN or infinite logits")
        broken = check_outputs(texts)
        if broken:
            raise QuantizationFailed(f"{who}: {broken}")
        notes = ()
        if fb.long:
            notes = (
                f"output fidelity: {len(fb.long)} utterance(s) over 30 s transcribed long-form, not teacher-forced "
                f"({', '.join(fb.long_ids[:5])}{' ...' if len(fb.long) > 5 else ''})",
            )
        r = record.result = replace(r, outputs=Outputs.of(tf.as_dict()), notes=notes)
        # 4. kernel speed: the fixed workload, interleaved with fp32
        timing = self.time(r, benchmark)
        # 5. scoring
        with self.phase("scoring"):
            scored = score(fb.ids, [u.text for u in corpus], texts)
            iv = paired_bootstrap(ref.wer.error_vector(), scored.error_vector(), scored.word_vector())
            changed = [i for i, a, b in zip(fb.ids, ref.texts, texts) if a != b]
            transcripts = Transcripts.measured(
                dict(zip(fb.ids, texts)), scored, ref.wer, {**iv.as_dict(), "fp32_wer": ref.wer.wer}, changed
            )
            e2e = EndToEnd(
                seconds, rtf(seconds, fb.audio_seconds), ref.seconds / seconds if seconds else float("nan"), memory.peak
            )
            record.result = replace(r, speed=timing, transcripts=transcripts, end_to_end=e2e)

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
        """The gate's verdict on the record against the baselines (nothing to compare in an update run)."""
        r = record.result
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
            reference.tolerances(r.case_id), self.options.strict_transcripts, reference.same_profile(r.case_id)
        )
        record.verdict = gate.judge(expected, r, context)
        record.status = record.verdict.status

    # ------------------------------------------------------------------ writing baselines
    def entries(self, records: list[CaseRecord]) -> list[tuple]:
        """Baseline entries of ``records``; each case's speed is the configuration's pooled rounds of the whole
        session (every case of a configuration times the same workload on the same quantized model)."""
        out = []
        for record in records:
            r = record.result
            entry = r.entry()
            pooled = self.timings.get((r.model, r.config))
            if pooled is not None:
                entry["speed"] = sp.Speed.measured(pooled).entry()
            portable, bound = split(entry, get_backend(r.config.backend).kernel_dependent(r.config))
            out.append((r.case_id, portable, bound, r.environment, (self.profile, self.machine)))
        return out

    def finish(self, interrupted: bool = False) -> list[str]:
        """Write baselines (update flow) or the obtained file; returns lines for the session summary.

        An interrupted update writes nothing into the baselines (a half-finished matrix is not a baseline) and
        a failed write is an error; in both cases what was measured is left in the obtained file."""
        lines = []
        done = [c for c in self.results if c.result.transcripts is not None and not c.result.error]
        if not done:
            return lines
        obtained = self.options.obtained_path
        if self.options.update_baselines and interrupted:
            bl.update(obtained, self.entries(done))
            return [
                f"interrupted: {self.options.baselines_path} left untouched; the {len(done)} case(s) measured are in {obtained}"
            ]
        if self.options.update_baselines:
            try:
                bl.update(self.options.baselines_path, self.entries(done))
            except (BenchError, OSError) as err:
                for c in done:
                    c.status = "not written"
                bl.update(obtained, self.entries(done))
                raise BaselineError(
                    f"the baselines could not be written ({err}); the {len(done)} measured case(s) are in {obtained}"
                ) from None
            lines.append(
                f"updated {len(done)} case(s) in {self.options.baselines_path} (machine profile {self.profile})"
            )
        missing = [c for c in done if c.status == "missing"]
        if missing:
            bl.update(obtained, self.entries(missing))
            lines.append(f"{len(missing)} case(s) without a baseline written to {obtained}")
        return lines


def changed_inputs(options: Options, cases: list[tuple[str, str, QuantConfig]], data: dict) -> list[str]:
    """Cases an update would re-record on other inputs than their baseline's: another corpus subset (or corpus
    content) or another batching. Such a replacement needs ``--ptq-replace-inputs``."""
    out, hashes = [], {}
    for model, corpus, config in cases:
        entry = data.get("cases", {}).get(bl.case_id(model, corpus, config))
        if not entry:
            continue
        if corpus not in hashes:
            c = load_corpus(corpus, options.max_utterances or None)
            hashes[corpus] = (c.summary()["hash"], len(c))
        digest, n = hashes[corpus]
        if entry.get("corpus_hash") not in (None, digest):
            out.append(
                f"{bl.case_id(model, corpus, config)}: corpus {corpus} differs ({n} utterance(s) now; "
                f"--ptq-max-utterances {options.max_utterances or 0})"
            )
        elif entry.get("batching") not in (None, options.batching):
            out.append(f"{bl.case_id(model, corpus, config)}: batching {entry['batching']!r} -> {options.batching!r}")
    return out
