"""Measuring one configuration: quantize a copy of the fp32 model (scope, size, weight error per module),
transcribe a corpus end to end, the fixed speed workload and the calibration pass. Public functions of the
inputs they are given; the harness decides what to cache and when to call them."""

from __future__ import annotations

import copy
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from whisper_ptq_bench import fidelity as fd
from whisper_ptq_bench import scope as sc
from whisper_ptq_bench import size
from whisper_ptq_bench.backends import get_backend
from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.errors import BenchError
from whisper_ptq_bench.metrics import WerResult
from whisper_ptq_bench.transcribe import FeatureBatches, calibration_samples, decode, features


class QuantizationFailed(BenchError):
    """A library raised, or produced NaN logits or empty transcripts: the case errors with the library named."""


def _phase(phases, name: str):
    return phases(name) if phases is not None else nullcontext()


@dataclass
class Quantized:
    """A quantized copy of the fp32 model with what quantizing it measured."""

    config: QuantConfig
    model: Any = None
    scope: sc.ScopeReport | None = None
    serialized_bytes: int = 0
    tensor_bytes: int = 0
    weights: dict = field(default_factory=dict)  # module -> (relative error of the dequantized weight, format)
    digests: dict = field(default_factory=dict)  # module -> digest of its dequantized weight


@dataclass
class Reference:
    """fp32 on one corpus: transcripts, WER, end-to-end seconds, and the encoder outputs per batch that the
    teacher-forced comparison reuses."""

    texts: list[str]
    seconds: float
    wer: WerResult
    encoded: list
    scored: list | None = None  # fp32 teacher-forced log-probabilities at the scored positions (fidelity.py)


def on_device(model, device: str):
    return model.to(device) if device != "cpu" else model


def quantize(reference, config: QuantConfig, requested: list[str], device: str, calibrate=None, phases=None):
    """Quantize a copy of ``reference`` (the fp32 model) for ``config`` and measure its scope, size and weight
    error per module. Any library error becomes :class:`QuantizationFailed` naming the library and its version.
    ``phases(name)`` (optional) is a context manager that times each step."""
    backend = get_backend(config.backend)
    q = Quantized(config)
    try:
        with _phase(phases, "quantize"):
            model = on_device(copy.deepcopy(reference), device)
            q.model = backend.quantize(model, config, requested, device, calibrate)
            q.model.eval()
        with _phase(phases, "size"):
            q.scope = sc.inspect(reference, q.model, requested, backend)
            q.serialized_bytes = size.serialized_bytes(q.model)
            q.tensor_bytes = size.tensor_bytes(q.model)
        with _phase(phases, "weights"):
            formats = {m.name: m.format for m in q.scope.quantized}
            q.weights = fd.weight_errors(reference, q.model, backend, formats, q.digests)
    except Exception as err:  # any library error: the case errors with it, the session goes on
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        raise QuantizationFailed(
            f"{config.id}: {config.backend} ({backend.requirement} {backend.version()}) raised {detail}"
        ) from err
    return q


def fp32_sizes(model) -> tuple[int, int]:
    """Serialized bytes of the fp32 model and of its fp16 copy (what compression is measured against)."""
    import torch

    return size.serialized_bytes(model), size.serialized_bytes(copy.deepcopy(model).to(torch.float16))


def encode(model, fb: FeatureBatches, device: str, encoder_chunk: int | None):
    """The encoder over every batch (kept for the teacher-forced pass and for decoding), and its seconds."""
    start = time.perf_counter()
    encoded = fd.encoder_outputs(model, fb, device, encoder_chunk)
    return encoded, time.perf_counter() - start


def decode_texts(model, loaded, fb: FeatureBatches, encoded: list, device: str):
    """Greedy decoding over the encoder outputs: transcripts in corpus order, and the seconds it took."""
    start = time.perf_counter()
    texts = decode(model, loaded.generation_config, loaded.processor.tokenizer, fb, encoded, device)
    return texts, time.perf_counter() - start


def transcribe(model, loaded, fb: FeatureBatches, device: str, encoder_chunk: int | None):
    """Encoder over every batch, then greedy decoding: (encoder outputs per batch, transcripts in corpus order,
    end-to-end seconds)."""
    encoded, encoding = encode(model, fb, device, encoder_chunk)
    texts, decoding = decode_texts(model, loaded, fb, encoded, device)
    return encoded, texts, encoding + decoding


#: KV-cached decoder steps of the workload whose kernel path is recorded (each step dispatches the same operators)
PATH_STEPS = 2


def workload(loaded, calibration_corpus, steps: int) -> fd.Workload:
    """The fixed speed workload of a model: the calibration split's longest utterance (the same whatever corpora
    run), encoder plus ``steps`` KV-cached decoder steps over its reference tokens."""
    fb = features(loaded.processor, calibration_corpus, 1)
    texts = [u.text for u in calibration_corpus]
    tokens = fd.reference_tokens(loaded.processor.tokenizer, loaded.generation_config, texts)
    return fd.Workload.build(fb, tokens, 1, steps)


def calibration(loaded, calibration_corpus, device: str, phases=None):
    """A teacher-forced pass over the calibration corpus (disjoint from every evaluation corpus), for static
    schemes to observe activations."""
    import torch

    samples = calibration_samples(loaded.processor, loaded.generation_config, calibration_corpus)

    def calibrate(model) -> None:
        dtype = model.model.encoder.conv1.weight.dtype
        with _phase(phases, "calibrate"), torch.no_grad():  # nested in "quantize": reported as its part
            for feats, ids in samples:
                model(input_features=feats.to(device=device, dtype=dtype), decoder_input_ids=ids.to(device))

    return calibrate


def kernel_path(work: fd.Workload, model, device: str) -> dict[str, int]:
    """The operators one run of ``work`` dispatches, with their call counts (``torch.profiler``): what a library's
    kernel path is made of, so that a fallback (an int8 GEMM turned dequantize + matmul, an extra dequantize per
    call) shows as operators added and removed, not only as time. Run it on a warmed-up model: lazily built
    kernels and caches are not part of the path."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        work.run(model, device)
    return {e.key: int(e.count) for e in prof.key_averages() if "::" in e.key}
