"""The harness: one session object that loads once, quantizes each configuration once, and runs cases."""

from __future__ import annotations

import copy
import importlib.metadata
import logging
import platform
import time
import traceback
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench import fidelity as fd
from whisper_ptq_bench import gate, machine, size
from whisper_ptq_bench import scope as sc
from whisper_ptq_bench import speed as sp
from whisper_ptq_bench.backends import get_backend
from whisper_ptq_bench.checks import Obtained, SpeedCheck
from whisper_ptq_bench.configs import REFERENCE, QuantConfig
from whisper_ptq_bench.data import load_corpus
from whisper_ptq_bench.errors import BaselineError, BenchError
from whisper_ptq_bench.metrics import (
    PeakMemory,
    WerResult,
    paired_bootstrap,
    rtf,
    score,
    transcript_fingerprint,
)
from whisper_ptq_bench.transcribe import (
    FeatureBatches,
    batching,
    calibration_samples,
    check_outputs,
    decode,
    default_encoder_batch_size,
    features,
)

log = logging.getLogger(__name__)

LIBRARIES = ("torch", "transformers", "optimum-quanto", "hqq", "bitsandbytes", "torchao")


def environment(device: str) -> dict:
    env = {"python": platform.python_version(), "device": device_name(device)}
    for lib in LIBRARIES:
        try:
            env[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            env[lib] = "not installed"
    return env


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu:{platform.machine()}"


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


class QuantizationFailed(BenchError):
    pass


@dataclass
class Quantized:
    config: QuantConfig
    model: Any = None
    scope: sc.ScopeReport | None = None
    serialized_bytes: int = 0
    tensor_bytes: int = 0
    weights: dict = field(default_factory=dict)  # module -> [relative error of the dequantized weight, format]
    error: str | None = None


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
class CaseResult:
    case_id: str
    model: str
    corpus: str
    config: QuantConfig
    corpus_summary: dict
    wer: WerResult | None = None
    delta: dict | None = None  # paired bootstrap vs fp32 in this session
    seconds: float = 0.0  # end-to-end: encoder over the corpus + greedy decoding
    speedup: float = 1.0  # end-to-end, against fp32's end-to-end time in this session (reported, not gated)
    rtf: float = 0.0
    serialized_bytes: int = 0
    tensor_bytes: int = 0
    compression: float = 0.0
    compression_vs_fp16: float = 0.0
    peak_memory: int = 0  # bytes: RSS on CPU, max allocated on CUDA, during the timed transcription
    scope: dict | None = None
    scope_line: str = ""
    transcripts: dict[str, str] = field(default_factory=dict)
    changed_vs_fp32: list[str] = field(default_factory=list)
    weights: dict = field(default_factory=dict)
    output: dict | None = None
    speed: dict | None = None
    fp32_wer: float | None = None
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    library_warnings: list[str] = field(default_factory=list)
    error: str | None = None
    baseline_status: str = ""  # "ok", "failed", "missing", "updated", "errored"
    environment: dict = field(default_factory=dict)
    profile: str = ""
    batching: str = ""

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        return "fail" if self.failures else "pass"

    def extra_info(self) -> dict:
        info = {
            "case": self.case_id,
            "model": self.model,
            "corpus": self.corpus_summary,
            "config": self.config.id,
            "axes": self.config.axes(),
            "size_bytes": self.serialized_bytes,
            "tensor_bytes": self.tensor_bytes,
            "size_mb": round(self.serialized_bytes / 1e6, 3),
            "compression": round(self.compression, 5),
            "compression_vs_fp16": round(self.compression_vs_fp16, 5),
            "seconds": round(self.seconds, 4),
            "rtf": round(self.rtf, 5),
            "rtfx": round(1 / self.rtf, 3) if self.rtf else None,
            "speedup_vs_fp32": round(self.speedup, 4),
            "speed": self.speed,
            "kernel_speedup_vs_fp32": round(1 / self.speed["cost"], 4) if self.speed else None,
            "weights": self.weights,
            "weight_error_mean": _mean_weight_error(self.weights),
            "output": None if self.output is None else {k: v for k, v in self.output.items() if k != "per_utterance"},
            "peak_memory_mb": round(self.peak_memory / 1e6, 1),
            "peak_memory_kind": "cuda max allocated"
            if self.environment.get("device", "").startswith("cuda")
            else "process RSS",
            "scope": self.scope,
            "scope_line": self.scope_line,
            "transcripts_changed_vs_fp32": len(self.changed_vs_fp32),
            "verdict": self.verdict,
            "error": self.error,
            "failures": self.failures,
            "warnings": self.warnings,
            "notes": self.notes,
            "library_warnings": self.library_warnings,
            "baseline": self.baseline_status,
            "environment": self.environment,
            "profile": self.profile,
            "batching": self.batching,
        }
        if self.wer is not None:
            info["wer"] = round(self.wer.wer, 6)
            info["wer_counts"] = self.wer.counts()
            info["transcripts"] = self.transcripts
        if self.delta is not None:
            info["wer_delta_vs_fp32"] = self.delta
        return info


def _mean_weight_error(weights: dict) -> float | None:
    errors = [e for e, _ in weights.values() if e is not None]
    return round(sum(errors) / len(errors), 6) if errors else None


#: Libraries whose warnings a case collects (the next upgrade's breakage is announced there first).
RADAR = ("torch", "transformers", "optimum", "hqq", "bitsandbytes", "torchao")


@contextmanager
def radar(out: list[str]):
    """Record the warnings the quantization stack emits inside the block, one line per distinct warning."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                where = str(w.filename).replace("\\", "/")
                lib = next((name for name in RADAR if f"/{name}/" in where), None)
                if lib is None:
                    continue
                line = f"{lib}: {w.category.__name__}: {str(w.message).strip().splitlines()[0][:200]}"
                if line not in out:
                    out.append(line)


class Harness:
    """Session state and the steps of a case. Loads each fp32 model, corpus and fp32 reference once,
    quantizes each configuration once, and leaves every verdict to ``gate.judge``."""

    def __init__(self, options: Options):
        self.options = options
        self.models: dict[str, Any] = {}
        self.corpora: dict[str, Any] = {}
        self.references: dict[tuple[str, str], Reference] = {}
        self.fp32_sizes: dict[str, tuple[int, int]] = {}
        self.workloads: dict[str, fd.Workload] = {}
        self.timings: dict[tuple, sp.Timing] = {}  # per (model, configuration): steady rounds of its cases so far
        self.readings: list[float] = []  # the machine-state reading of every timed round of the session
        self.tokens: dict[tuple[str, str], list[list[int]]] = {}
        self._quantized: Quantized | None = None
        self._quantized_key: tuple | None = None
        self._failed: dict[tuple, str] = {}
        self.phases: dict[str, float] = defaultdict(float)
        self.results: list[CaseResult] = []
        self.env = environment(options.device)
        self.machine = machine.profile(options.device)
        self.profile = machine.profile_key(self.machine)
        self._baselines: dict | None = None
        self.baseline_error: str | None = None

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
                    _ = (
                        utterance.audio
                    )  # decoded and checked against its manifest hash now, not in the middle of a case
            except BenchError as err:
                raise BenchError(f"--ptq-corpus (or PTQ_CORPUS): {err}") from None

    # ------------------------------------------------------------------ phases
    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] += time.perf_counter() - start

    # ------------------------------------------------------------------ inputs
    def model(self, name: str):
        if name not in self.models:
            from whisper_ptq_bench.models import load

            with self.phase("load"):
                self.models[name] = load(name)
        return self.models[name]

    def corpus(self, name: str):
        """The run's subset of corpus ``name``, loaded once (a hub dataset would otherwise be re-read per call)."""
        if name not in self.corpora:
            with self.phase("load"):
                self.corpora[name] = load_corpus(name, self.options.max_utterances or None)
        return self.corpora[name]

    def features(self, model_name: str, corpus_name: str) -> FeatureBatches:
        loaded, corpus = self.model(model_name), self.corpus(corpus_name)
        with self.phase("features"):
            return features(loaded.processor, corpus, self.options.batch_size)

    def reference_tokens(self, model_name: str, corpus_name: str) -> list[list[int]]:
        """Prompt + reference text + end-of-text per utterance: the teacher-forcing input of every configuration."""
        key = (model_name, corpus_name)
        if key not in self.tokens:
            loaded = self.model(model_name)
            texts = [
                u.text
                for u in (
                    self.corpus(corpus_name)
                    if corpus_name != self.options.calibration_corpus
                    else load_corpus(corpus_name)
                )
            ]
            self.tokens[key] = fd.reference_tokens(loaded.processor.tokenizer, loaded.generation_config, texts)
        return self.tokens[key]

    def baselines(self) -> dict:
        if self._baselines is None:
            try:
                self._baselines = bl.load(self.options.baselines_path)
            except BenchError as err:
                self.baseline_error = str(err)
                raise
        return self._baselines

    def _on_device(self, model):
        if self.options.device != "cpu":
            return model.to(self.options.device)
        return model

    # ------------------------------------------------------------------ fp32
    def fp32_size(self, model_name: str) -> tuple[int, int]:
        if model_name not in self.fp32_sizes:
            import torch

            model = self.model(model_name).model
            with self.phase("size"):
                fp32 = size.serialized_bytes(model)
                fp16 = size.serialized_bytes(copy.deepcopy(model).to(torch.float16))
            self.fp32_sizes[model_name] = (fp32, fp16)
        return self.fp32_sizes[model_name]

    def reference(self, model_name: str, corpus_name: str) -> Reference:
        """fp32 on a corpus: encoder outputs, transcripts, WER and end-to-end time; computed once."""
        key = (model_name, corpus_name)
        if key not in self.references:
            loaded = self.model(model_name)
            model = self._on_device(loaded.model)
            encoded, texts, seconds = self._transcribe(
                model, loaded, self.features(model_name, corpus_name), "reference"
            )
            corpus = self.corpus(corpus_name)
            wer = score([u.id for u in corpus], [u.text for u in corpus], texts)
            self.references[key] = Reference(texts, seconds, wer, encoded)
        return self.references[key]

    def _transcribe(self, model, loaded, fb: FeatureBatches, phase: str):
        """Encoder over every batch (kept for the teacher-forced pass), then greedy decoding; end-to-end seconds."""
        device = self.options.device
        with self.phase(phase):
            start = time.perf_counter()
            encoded = fd.encoder_outputs(model, fb, device, self.options.encoder_chunk)
            texts = decode(model, loaded.generation_config, loaded.processor.tokenizer, fb, encoded, device)
            seconds = time.perf_counter() - start
        return encoded, texts, seconds

    def workload(self, model_name: str) -> fd.Workload:
        """The fixed speed workload of a model: the calibration split's longest utterance (the same whatever
        corpora run), encoder plus ``workload_steps`` KV-cached decoder steps over its reference tokens."""
        if model_name not in self.workloads:
            loaded = self.model(model_name)
            corpus = load_corpus(self.options.calibration_corpus)
            fb = features(loaded.processor, corpus, 1)
            tokens = fd.reference_tokens(loaded.processor.tokenizer, loaded.generation_config, [u.text for u in corpus])
            self.workloads[model_name] = fd.Workload.build(fb, tokens, 1, self.options.workload_steps)
        return self.workloads[model_name]

    # ------------------------------------------------------------------ quantization
    def calibration(self, model_name: str):
        """A teacher-forced pass over the calibration corpus (disjoint from every evaluation corpus)."""
        import torch

        loaded = self.model(model_name)
        corpus = load_corpus(self.options.calibration_corpus)
        samples = calibration_samples(loaded.processor, loaded.generation_config, corpus)
        device = self.options.device

        def calibrate(model) -> None:
            dtype = model.model.encoder.conv1.weight.dtype
            with self.phase("calibrate"), torch.no_grad():  # nested in "quantize": reported as its part
                for feats, ids in samples:
                    model(input_features=feats.to(device=device, dtype=dtype), decoder_input_ids=ids.to(device))

        return calibrate

    def quantized(self, model_name: str, config: QuantConfig) -> Quantized:
        """The quantized copy for ``config`` with its scope, size and weight errors; kept until another is asked for."""
        key = (model_name, config)
        if key in self._failed:
            raise QuantizationFailed(self._failed[key])
        if self._quantized_key == key and self._quantized is not None:
            return self._quantized
        self._quantized = self._quantized_key = None  # free the previous copy first
        loaded = self.model(model_name)
        backend = get_backend(config.backend)
        requested = (
            [] if config == REFERENCE else sc.select(loaded.model, self.options.scope, self.options.scope_exclude)
        )
        q = Quantized(config)
        try:
            with self.phase("quantize"):
                model = self._on_device(copy.deepcopy(loaded.model))
                calibrate = self.calibration(model_name) if backend.needs_calibration(config) else None
                q.model = backend.quantize(model, config, requested, self.options.device, calibrate)
                q.model.eval()
            with self.phase("size"):
                q.scope = sc.inspect(loaded.model, q.model, requested, backend)
                q.serialized_bytes = size.serialized_bytes(q.model)
                q.tensor_bytes = size.tensor_bytes(q.model)
            with self.phase("weights"):
                q.weights = fd.weight_errors(
                    loaded.model, q.model, backend, {m.name: m.format for m in q.scope.quantized}
                )
        except Exception as err:  # any library error: the case errors with it, the session goes on
            detail = "".join(traceback.format_exception_only(type(err), err)).strip()
            message = f"{config.id}: {config.backend} ({backend.requirement} {backend.version()}) raised {detail}"
            self._failed[key] = message
            log.debug("quantization failed", exc_info=True)
            raise QuantizationFailed(message) from err
        self._quantized, self._quantized_key = q, key
        return q

    # ------------------------------------------------------------------ a case
    def run_case(self, model_name: str, corpus_name: str, config: QuantConfig, benchmark=None) -> CaseResult:
        """Run one case; its verdict is in ``failures``/``warnings``/``notes``; a library error raises
        ``QuantizationFailed`` after the result is marked errored."""
        loaded = self.model(model_name)
        corpus = self.corpus(corpus_name)
        result = CaseResult(
            bl.case_id(model_name, corpus_name, config),
            model_name,
            corpus_name,
            config,
            corpus.summary(),
            environment=self.env,
            profile=self.profile,
            batching=self.options.batching,
        )
        self.results.append(result)
        try:
            with radar(result.library_warnings):
                self._run(result, loaded, corpus, config, benchmark)
        except QuantizationFailed as err:
            result.error, result.baseline_status = str(err), "errored"
            if benchmark is not None:
                benchmark.extra_info.update(result.extra_info())
            raise
        if benchmark is not None:
            benchmark.extra_info.update(result.extra_info())
        return result

    def _run(self, result: CaseResult, loaded, corpus, config: QuantConfig, benchmark) -> None:
        model_name, corpus_name, device = result.model, result.corpus, self.options.device
        backend = get_backend(config.backend)
        who = f"{config.id}: {backend.requirement or 'fp32'} {backend.version()}".rstrip()
        fb = self.features(model_name, corpus_name)
        # 1. quantize (once per configuration): scope, size and weight error per module
        q = self.quantized(model_name, config)
        fp32_bytes, fp16_bytes = self.fp32_size(model_name)
        result.serialized_bytes, result.tensor_bytes = q.serialized_bytes, q.tensor_bytes
        result.compression = 1 - q.serialized_bytes / fp32_bytes
        result.compression_vs_fp16 = 1 - q.serialized_bytes / fp16_bytes
        result.scope, result.scope_line, result.weights = q.scope.summary(), q.scope.line(), q.weights
        # 2. fp32 on this corpus (once per session), then this configuration end to end
        ref = self.reference(model_name, corpus_name)
        with PeakMemory(device) as memory:
            if config == REFERENCE:
                encoded, texts, seconds = ref.encoded, ref.texts, ref.seconds
            else:
                encoded, texts, seconds = self._transcribe(q.model, loaded, fb, "transcribe")
        result.peak_memory = memory.peak
        # 3. teacher-forced output fidelity against fp32 on the reference tokens
        tokens, prompt_len = (
            self.reference_tokens(model_name, corpus_name),
            len(fd.prompt_ids(loaded.generation_config)),
        )
        with self.phase("fidelity"):
            if ref.scored is None:
                ref.scored = fd.reference_log_probs(
                    self._on_device(loaded.model), ref.encoded, fb, tokens, prompt_len, device
                )
            tf = fd.teacher_forced(q.model, encoded, ref.scored, fb, tokens, prompt_len, device)
        if not tf.finite():
            raise QuantizationFailed(f"{who} produced NaN or infinite logits")
        broken = check_outputs(texts)
        if broken:
            raise QuantizationFailed(f"{who}: {broken}")
        result.output = tf.as_dict()
        if fb.long:
            result.notes.append(
                f"output fidelity: {len(fb.long)} utterance(s) over 30 s transcribed long-form, not teacher-forced "
                f"({', '.join(fb.long_ids[:5])}{' ...' if len(fb.long) > 5 else ''})"
            )
        # 4. kernel speed: the fixed workload, interleaved with fp32
        work = self.workload(model_name)
        fp32_model = self._on_device(loaded.model)
        key = (model_name, config)
        earlier = self.timings.get(key)
        with self.phase("timing"):

            def measure(first: bool, rounds: int) -> sp.Timing:  # the case's first rounds are pytest-benchmark's
                return sp.interleaved(
                    lambda: work.run(fp32_model, device),
                    lambda: work.run(q.model, device),
                    rounds,
                    benchmark if first else None,
                    work.describe(),
                    warm_up=earlier is None,
                    probe=sp.balance if device == "cpu" else None,
                )

            timing = sp.time_case(
                measure,
                self.options.rounds,
                earlier,
                lambda t: self._other_state(result, t),
                lambda t: self._speed_suspect(result, t),
            )
        self.readings += timing.balance
        if timing.steady:
            self.timings[key] = sp.pooled(earlier, timing)
        result.speed = {**sp.pooled(earlier, timing).as_dict(), "rounds_this_case": len(timing.config)}
        # 5. scoring and the verdict
        with self.phase("scoring"):
            result.seconds, result.rtf = seconds, rtf(seconds, fb.audio_seconds)
            result.transcripts = dict(zip(fb.ids, texts))
            result.wer = score(fb.ids, [u.text for u in corpus], texts)
            result.speedup = ref.seconds / seconds if seconds else float("nan")
            iv = paired_bootstrap(ref.wer.error_vector(), result.wer.error_vector(), result.wer.word_vector())
            result.fp32_wer = ref.wer.wer
            result.delta = {**iv.as_dict(), "fp32_wer": ref.wer.wer}
            result.changed_vs_fp32 = [i for i, a, b in zip(fb.ids, ref.texts, texts) if a != b]
            self.compare(result)

    # ------------------------------------------------------------------ baselines
    def _speed_baseline(self, r: CaseResult) -> tuple[dict, float] | None:
        """This profile's baseline of the case's speed and its tolerance, when there is one to judge against."""
        if self.options.update_baselines:
            return None
        try:
            data = self.baselines()
        except BenchError:
            return None
        entry = data.get("cases", {}).get(r.case_id)
        if not entry:
            return None
        expected, _ = gate.expected_view(entry, self.profile)
        return (expected, bl.tolerances(data, r.case_id)["speed"]) if "speed" in expected else None

    def _other_state(self, r: CaseResult, timing: sp.Timing) -> bool:
        """Were fewer than two of ``timing``'s rounds in the machine state of the case's baseline? When recording:
        in the session's home state (the one most of its rounds so far were in), so that a baseline is not
        recorded in a state the machine is seldom in."""
        if self.options.update_baselines:
            found = sp.states(self.readings + timing.balance)
            return len(found) > 1 and len(timing.in_state(found[0][0]).fp32) < 2
        known = self._speed_baseline(r)
        probe = Obtained(r.case_id, None, 0.0, "", "", {}, speed=timing.as_dict())
        return known is not None and SpeedCheck.not_judged(probe, known[0]) is not None

    def _speed_suspect(self, r: CaseResult, timing: sp.Timing) -> bool:
        """Does ``timing`` look slower than this profile's baseline of the case (``SpeedCheck.suspect``)?"""
        known = self._speed_baseline(r)
        if known is None:
            return False
        probe = Obtained(r.case_id, None, 0.0, "", "", {}, speed=timing.as_dict())
        return SpeedCheck(known[1]).suspect(probe, known[0])

    def obtained_entry(self, r: CaseResult) -> dict:
        return {
            "wer": r.wer.wer,
            "words": r.wer.words,
            "fp32_wer": r.fp32_wer,
            "compression": r.compression,
            "size_bytes": r.serialized_bytes,
            "speed": r.speed,
            "speedup": r.speedup,
            "rtf": r.rtf,
            "corpus_hash": r.corpus_summary["hash"],
            "model_fingerprint": self.model(r.model).fingerprint,
            "fingerprint": transcript_fingerprint(list(r.transcripts.values())),
            "transcripts": r.transcripts,
            "weights": r.weights,
            "output": r.output,
            "scope": r.scope_line,
            "batching": r.batching,
        }

    def compare(self, r: CaseResult) -> None:
        if self.options.update_baselines:
            r.baseline_status = "updated"
            return
        data = self.baselines()
        expected = data.get("cases", {}).get(r.case_id)
        if expected is None:
            r.baseline_status = "missing"
            r.failures.append(
                f"no baseline for {r.case_id} in {self.options.baselines_path}: what it obtained is written to "
                f"{self.options.obtained_path}; accept it with --ptq-update-baselines"
            )
            return
        obtained = Obtained(
            r.case_id,
            r.wer,
            r.compression,
            r.corpus_summary["hash"],
            self.model(r.model).fingerprint,
            r.transcripts,
            r.batching,
            r.weights,
            r.output,
            r.speed,
        )
        verdict = gate.judge(
            obtained,
            r.config,
            expected,
            bl.tolerances(data, r.case_id),
            self.profile,
            self.options.strict_transcripts,
            data.get("profiles"),
            self.machine,
        )
        r.failures += verdict.failures
        r.warnings += verdict.warnings
        r.notes += verdict.notes
        r.baseline_status = verdict.status

    def entries(self, results: list[CaseResult]) -> list[tuple]:
        """Baseline entries of ``results``; each case's speed is the configuration's pooled rounds of the whole
        session (every case of a configuration times the same workload on the same quantized model)."""
        out = []
        for r in results:
            entry = self.obtained_entry(r)
            pooled = self.timings.get((r.model, r.config))
            if pooled is not None:
                entry["speed"] = pooled.as_dict()
            portable, bound = gate.split_entry(entry, r.config)
            out.append((r.case_id, portable, bound, r.environment, (self.profile, self.machine)))
        return out

    def finish(self, interrupted: bool = False) -> list[str]:
        """Write baselines (update flow) or the obtained file; returns lines for the session summary.

        An interrupted update writes nothing into the baselines (a half-finished matrix is not a baseline) and
        a failed write is an error; in both cases what was measured is left in the obtained file."""
        lines = []
        done = [r for r in self.results if r.wer is not None and not r.error]
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
                for r in done:
                    r.baseline_status = "not written"
                bl.update(obtained, self.entries(done))
                raise BaselineError(
                    f"the baselines could not be written ({err}); the {len(done)} measured case(s) are in {obtained}"
                ) from None
            lines.append(
                f"updated {len(done)} case(s) in {self.options.baselines_path} (machine profile {self.profile})"
            )
        missing = [r for r in done if r.baseline_status == "missing"]
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
