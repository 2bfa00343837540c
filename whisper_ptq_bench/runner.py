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
from typing import Any

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench import scope as sc
from whisper_ptq_bench.backends import get_backend
from whisper_ptq_bench.checks import Obtained, SameInputCheck, TranscriptCheck, checks_for
from whisper_ptq_bench.configs import REFERENCE, QuantConfig
from whisper_ptq_bench.data import load_corpus
from whisper_ptq_bench.errors import BenchError
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
    check_outputs,
    default_encoder_batch_size,
    features,
    generate_batch,
    logits_finite,
    transcribe,
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
    rounds: int = 1
    device: str = "cpu"
    scope: tuple[str, ...] = sc.DEFAULT_SCOPE
    scope_exclude: tuple[str, ...] = ()
    calibration_corpus: str = "calibration"
    strict_transcripts: bool = False
    update_baselines: bool = False
    baselines_path: Path = Path("baselines.json")
    obtained_path: Path = Path("baselines.obtained.json")

    @property
    def encoder_chunk(self) -> int | None:
        return self.encoder_batch_size or default_encoder_batch_size(self.device)

    @property
    def batching(self) -> str:
        return batching(self.batch_size, self.encoder_chunk)


class QuantizationFailed(BenchError):
    pass


@dataclass
class Quantized:
    config: QuantConfig
    model: Any = None
    scope: sc.ScopeReport | None = None
    serialized_bytes: int = 0
    tensor_bytes: int = 0
    error: str | None = None


@dataclass
class Reference:
    texts: list[str]
    seconds: float
    wer: WerResult


@dataclass
class CaseResult:
    case_id: str
    model: str
    corpus: str
    config: QuantConfig
    corpus_summary: dict
    wer: WerResult | None = None
    delta: dict | None = None  # paired bootstrap vs fp32 in this session
    seconds: float = 0.0
    rounds: list[float] = field(default_factory=list)
    speedup: float = 1.0
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
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    baseline_status: str = ""  # "ok", "failed", "missing", "updated"
    environment: dict = field(default_factory=dict)
    batching: str = ""

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
            "rounds_s": [round(r, 4) for r in self.rounds],
            "rtf": round(self.rtf, 5),
            "rtfx": round(1 / self.rtf, 3) if self.rtf else None,
            "speedup_vs_fp32": round(self.speedup, 4),
            "peak_memory_mb": round(self.peak_memory / 1e6, 1),
            "peak_memory_kind": "cuda max allocated" if self.environment.get("device", "").startswith("cuda") else "process RSS",
            "scope": self.scope,
            "scope_line": self.scope_line,
            "transcripts_changed_vs_fp32": len(self.changed_vs_fp32),
            "verdict": "fail" if self.failures else "pass",
            "failures": self.failures,
            "warnings": self.warnings,
            "baseline": self.baseline_status,
            "environment": self.environment,
            "batching": self.batching,
        }
        if self.wer is not None:
            info["wer"] = round(self.wer.wer, 6)
            info["wer_counts"] = self.wer.counts()
            info["transcripts"] = self.transcripts
        if self.delta is not None:
            info["wer_delta_vs_fp32"] = self.delta
        return info


class Harness:
    """Session state: fp32 models, corpora and features once; each configuration quantized once."""

    def __init__(self, options: Options):
        self.options = options
        self.models: dict[str, Any] = {}
        self.references: dict[tuple[str, str], Reference] = {}
        self.fp32_sizes: dict[str, tuple[int, int]] = {}
        self._quantized: Quantized | None = None
        self._quantized_key: tuple | None = None
        self._failed: dict[tuple, str] = {}
        self.phases: dict[str, float] = defaultdict(float)
        self.results: list[CaseResult] = []
        self.env = environment(options.device)
        self._baselines: dict | None = None
        self.baseline_error: str | None = None

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
        with self.phase("load"):
            return load_corpus(name, self.options.max_utterances or None)

    def features(self, model_name: str, corpus_name: str) -> FeatureBatches:
        loaded, corpus = self.model(model_name), self.corpus(corpus_name)
        with self.phase("features"):
            return features(loaded.processor, corpus, self.options.batch_size)

    def baselines(self) -> dict:
        if self._baselines is None:
            try:
                self._baselines = bl.load(self.options.baselines_path)
            except BenchError as err:
                self.baseline_error = str(err)
                raise
        return self._baselines

    # ------------------------------------------------------------------ fp32
    def fp32_size(self, model_name: str) -> tuple[int, int]:
        if model_name not in self.fp32_sizes:
            import torch

            model = self.model(model_name).model
            with self.phase("size"):
                fp32 = sc.serialized_bytes(model)
                fp16 = sc.serialized_bytes(copy.deepcopy(model).to(torch.float16))
            self.fp32_sizes[model_name] = (fp32, fp16)
        return self.fp32_sizes[model_name]

    def reference(self, model_name: str, corpus_name: str) -> Reference:
        """fp32 transcripts and time of a corpus: computed once (by the fp32 case, or here on demand)."""
        key = (model_name, corpus_name)
        if key not in self.references:
            loaded = self.model(model_name)
            fb = self.features(model_name, corpus_name)
            model = self._on_device(loaded.model)
            self._warm_up(model, loaded, fb)
            times, texts = [], []
            with self.phase("reference"):
                for _ in range(max(1, self.options.rounds)):
                    start = time.perf_counter()
                    texts = transcribe(model, loaded.generation_config, loaded.processor.tokenizer, fb, self.options.device, self.options.encoder_chunk)
                    times.append(time.perf_counter() - start)
            self._store_reference(model_name, corpus_name, texts, sorted(times)[len(times) // 2])
        return self.references[key]

    def _store_reference(self, model_name: str, corpus_name: str, texts: list[str], seconds: float) -> None:
        corpus = self.corpus(corpus_name)
        wer = score([u.id for u in corpus], [u.text for u in corpus], texts)
        self.references[(model_name, corpus_name)] = Reference(texts, seconds, wer)

    def _on_device(self, model):
        if self.options.device != "cpu":
            return model.to(self.options.device)
        return model

    def _warm_up(self, model, loaded, fb: FeatureBatches) -> None:
        with self.phase("warm-up"):
            generate_batch(model, loaded.generation_config, fb.batches[0][:1], [4], self.options.device)

    # ------------------------------------------------------------------ quantization
    def calibration(self, model_name: str):
        """A teacher-forced pass over the calibration corpus (disjoint from every evaluation corpus)."""
        import torch

        loaded = self.model(model_name)
        corpus = load_corpus(self.options.calibration_corpus)
        fb = features(loaded.processor, corpus, 1)
        gen = loaded.generation_config
        prompt = [gen.decoder_start_token_id]
        if getattr(gen, "is_multilingual", False):
            prompt += [gen.lang_to_id["<|en|>"], gen.task_to_id["transcribe"]]
        prompt.append(gen.no_timestamps_token_id)
        tok = loaded.processor.tokenizer
        device = self.options.device
        samples = [
            (feats, torch.tensor([prompt + tok.encode(" " + u.text, add_special_tokens=False) + [gen.eos_token_id]]))
            for feats, u in zip(fb.batches, (corpus.utterances[i] for i in fb.order))
        ]

        def calibrate(model) -> None:
            dtype = model.model.encoder.conv1.weight.dtype
            with torch.no_grad():
                for feats, ids in samples:
                    model(input_features=feats.to(device=device, dtype=dtype), decoder_input_ids=ids.to(device))

        return calibrate

    def _timed_calibration(self, model_name: str):
        inner = self.calibration(model_name)

        def calibrate(model) -> None:
            with self.phase("calibrate"):  # nested in "quantize": reported as its part
                inner(model)

        return calibrate

    def quantized(self, model_name: str, config: QuantConfig) -> Quantized:
        """The quantized copy for ``config``; kept until another configuration is asked for."""
        key = (model_name, config)
        if key in self._failed:
            raise QuantizationFailed(self._failed[key])
        if self._quantized_key == key and self._quantized is not None:
            return self._quantized
        self._quantized = self._quantized_key = None  # free the previous copy first
        loaded = self.model(model_name)
        backend = get_backend(config.backend)
        q = Quantized(config)
        try:
            with self.phase("quantize"):
                model = self._on_device(copy.deepcopy(loaded.model))
                requested = [] if config == REFERENCE else sc.select(model, self.options.scope, self.options.scope_exclude)
                calibrate = self._timed_calibration(model_name) if backend.needs_calibration(config) else None
                q.model = backend.quantize(model, config, requested, self.options.device, calibrate)
                q.model.eval()
            with self.phase("size"):
                q.scope = sc.inspect(loaded.model, q.model, requested, backend)
                q.serialized_bytes = sc.serialized_bytes(q.model)
                q.tensor_bytes = sc.tensor_bytes(q.model)
        except Exception as err:  # any library error: the case fails with it, the session goes on
            detail = "".join(traceback.format_exception_only(type(err), err)).strip()
            message = f"{config.id}: {config.backend} ({backend.requirement} {backend.version()}) raised {detail}"
            self._failed[key] = message
            log.debug("quantization failed", exc_info=True)
            raise QuantizationFailed(message) from err
        self._quantized, self._quantized_key = q, key
        return q

    # ------------------------------------------------------------------ a case
    def run_case(self, model_name: str, corpus_name: str, config: QuantConfig, benchmark=None) -> CaseResult:
        case_id = f"{model_name}/{corpus_name}/{config.id}"
        loaded = self.model(model_name)
        corpus = self.corpus(corpus_name)
        fb = self.features(model_name, corpus_name)
        result = CaseResult(
            case_id, model_name, corpus_name, config, corpus.summary(), environment=self.env, batching=self.options.batching
        )
        self.results.append(result)
        backend = get_backend(config.backend)
        q = self.quantized(model_name, config)
        result.serialized_bytes, result.tensor_bytes = q.serialized_bytes, q.tensor_bytes
        fp32_bytes, fp16_bytes = self.fp32_size(model_name)
        result.compression = 1 - q.serialized_bytes / fp32_bytes
        result.compression_vs_fp16 = 1 - q.serialized_bytes / fp16_bytes
        result.scope, result.scope_line = q.scope.summary(), q.scope.line()
        if config != REFERENCE:
            self.reference(model_name, corpus_name)  # before timing: never inside a timed region

        with self.phase("check-logits"):
            finite = logits_finite(q.model, fb, self.options.device)
        if not finite:
            raise QuantizationFailed(
                f"{config.id}: {backend.requirement} {backend.version()} produced NaN or infinite logits"
            )
        self._warm_up(q.model, loaded, fb)
        times: list[float] = []
        out: list[list[str]] = [[]]

        def timed() -> None:
            start = time.perf_counter()
            out[0] = transcribe(q.model, loaded.generation_config, loaded.processor.tokenizer, fb, self.options.device, self.options.encoder_chunk)
            times.append(time.perf_counter() - start)

        with self.phase("timing"), PeakMemory(self.options.device) as memory:
            if benchmark is not None:
                benchmark.pedantic(timed, rounds=max(1, self.options.rounds), iterations=1, warmup_rounds=0)
            if not times:  # benchmark disabled: still measure once
                timed()
        texts = out[0]
        broken = check_outputs(texts)
        if broken:
            raise QuantizationFailed(f"{config.id}: {backend.requirement} {backend.version()}: {broken}")
        result.rounds = times
        result.seconds = sorted(times)[len(times) // 2]
        result.rtf = rtf(result.seconds, fb.audio_seconds)
        result.peak_memory = memory.peak
        result.transcripts = dict(zip(fb.ids, texts))
        with self.phase("scoring"):
            result.wer = score(fb.ids, [u.text for u in corpus], texts)
            if config == REFERENCE:
                self._store_reference(model_name, corpus_name, texts, result.seconds)
            ref = self.references[(model_name, corpus_name)]
            result.speedup = ref.seconds / result.seconds if result.seconds else float("nan")
            iv = paired_bootstrap(ref.wer.error_vector(), result.wer.error_vector(), result.wer.word_vector())
            result.delta = {**iv.as_dict(), "fp32_wer": ref.wer.wer}
            result.changed_vs_fp32 = [i for i, a, b in zip(fb.ids, ref.texts, texts) if a != b]
            self.compare(result)
        if benchmark is not None:
            benchmark.extra_info.update(result.extra_info())
        return result

    # ------------------------------------------------------------------ baselines
    def obtained_entry(self, r: CaseResult) -> dict:
        return {
            "wer": r.wer.wer,
            "words": r.wer.words,
            "compression": r.compression,
            "size_bytes": r.serialized_bytes,
            "speedup": r.speedup,
            "rtf": r.rtf,
            "corpus_hash": r.corpus_summary["hash"],
            "model_fingerprint": self.model(r.model).fingerprint,
            "fingerprint": transcript_fingerprint(list(r.transcripts.values())),
            "transcripts": r.transcripts,
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
            r.case_id, r.wer, r.compression, r.speedup, r.corpus_summary["hash"], self.model(r.model).fingerprint, r.transcripts, r.batching
        )
        same = SameInputCheck().fails(obtained, expected)
        if same:
            r.failures.append(same)
            r.baseline_status = "failed"
            return
        tol = bl.tolerances(data, r.case_id)
        for check in checks_for(tol, self.options.strict_transcripts):
            message = check.fails(obtained, expected)
            if message:
                r.failures.append(message)
        if not self.options.strict_transcripts:
            transcripts = TranscriptCheck(False)
            changes = transcripts.changed(obtained, expected)
            if changes:
                r.warnings.append(transcripts.message(changes))
        r.baseline_status = "failed" if r.failures else "ok"

    def finish(self) -> list[str]:
        """Write baselines (update flow) or the obtained file; returns lines for the session summary."""
        lines = []
        done = [r for r in self.results if r.wer is not None]
        if not done:
            return lines
        entries = [(r.case_id, self.obtained_entry(r), r.environment) for r in done]
        if self.options.update_baselines:
            bl.update(self.options.baselines_path, entries)
            lines.append(f"updated {len(entries)} case(s) in {self.options.baselines_path}")
        missing = [e for e, r in zip(entries, done) if r.baseline_status == "missing"]
        if missing:
            bl.update(self.options.obtained_path, missing)
            lines.append(f"{len(missing)} case(s) without a baseline written to {self.options.obtained_path}")
        return lines
