"""Every backend quantizes exactly the requested scope of a small Whisper; scope and size are measured."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from whisper_ptq_bench import scope as sc
from whisper_ptq_bench import size
from whisper_ptq_bench.backends import backends, get_backend
from whisper_ptq_bench.configs import REFERENCE, QuantConfig, matrix
from whisper_ptq_bench.errors import ConfigError

FEATS = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(1))
IDS = torch.tensor([[2, 5, 7, 9]])


def calibrate(model):
    with torch.no_grad():
        model(input_features=FEATS.to(model.model.encoder.conv1.weight.dtype), decoder_input_ids=IDS)


CPU_CASES = [c for c in matrix("full") if c != REFERENCE]


@pytest.mark.parametrize("config", CPU_CASES, ids=[c.id for c in CPU_CASES])
def test_backend_quantizes_exactly_the_scope(small, config):
    backend = get_backend(config.backend)
    reason = backend.unavailable() or backend.unsupported(config, "cpu")
    if reason:
        pytest.skip(reason)
    model = copy.deepcopy(small)
    requested = sc.select(model)
    quantized = backend.quantize(
        model, config, requested, "cpu", calibrate if backend.needs_calibration(config) else None
    )
    report = sc.inspect(small, quantized, requested, backend)
    assert report.missed == [] and report.beyond == []
    assert {m.name for m in report.quantized} == set(requested)
    assert all(
        m.kind in {"Conv1d", "Embedding", "LayerNorm", "WhisperPositionalEmbedding", "Linear"} for m in report.floating
    )
    assert "proj_out" not in {m.name for m in report.quantized}
    fp32 = size.serialized_bytes(small)
    assert 0 < size.serialized_bytes(quantized) and size.tensor_bytes(quantized) > 0
    if config.bits <= 8 and config.option("kernel") is None and not config.id.startswith("torchao.w-int"):
        assert size.serialized_bytes(quantized) < fp32  # 8 bits and below must save bytes (torchao intx stores int8)
    with torch.no_grad():
        out = quantized(input_features=FEATS, decoder_input_ids=IDS).logits
    assert out.shape == (1, 4, 600) and torch.isfinite(out).all()


def test_reference_quantizes_nothing(small):
    """The reference backend, asked to quantize (even the whole default scope), leaves every module float32
    with its weights bit for bit, so the fp32 outputs the cases are measured against are the model's own."""
    backend = get_backend(REFERENCE.backend)
    assert backend.name == "none" and backend.unsupported(REFERENCE, "cpu") is None
    model = copy.deepcopy(small)
    requested = sc.select(model)
    quantized = backend.quantize(
        model, REFERENCE, requested, "cpu", calibrate if backend.needs_calibration(REFERENCE) else None
    )
    report = sc.inspect(small, quantized, requested, backend)
    assert report.quantized == [] and report.beyond == []
    assert report.missed == requested  # nothing in scope was touched
    assert {m.name for m in report.floating} >= set(requested)
    assert {m.format for m in report.floating} == {"float32"}
    reference, result = small.state_dict(), quantized.state_dict()
    assert result.keys() == reference.keys()
    for key, value in reference.items():
        assert result[key].dtype == value.dtype and torch.equal(result[key], value), key
    with torch.no_grad():
        expected = small(input_features=FEATS, decoder_input_ids=IDS).logits
        out = quantized(input_features=FEATS, decoder_input_ids=IDS).logits
    assert torch.equal(out, expected)


def test_whatever_a_library_quantizes_beyond_the_scope_is_reported(small):
    """torch's quantize_dynamic over the Linear class (not names) also takes proj_out: the report says so."""
    model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(small), {torch.nn.Linear}, dtype=torch.qint8)
    requested = sc.select(small)
    report = sc.inspect(small, model, requested, get_backend("torch-ao"))
    assert report.beyond == ["proj_out"]
    assert "BEYOND SCOPE: proj_out" in report.line()


def test_scope_patterns_select_and_exclude(small):
    enc = sc.select(small, ("model.encoder.layers.*",), ("*.fc2",))
    assert enc and all(n.startswith("model.encoder.layers.") and not n.endswith("fc2") for n in enc)
    with pytest.raises(ValueError, match="match no nn.Linear"):
        sc.select(small, ("nothing.*",))


def test_a_missing_library_is_a_skip_reason_that_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hqq" else real(name, *a))
    assert get_backend("hqq").unavailable() == "hqq: library 'hqq' is not installed (pip install hqq)"


def test_registry_holds_every_library_and_refuses_unknown_names():
    assert set(backends()) >= {"none", "torch-ao", "torchao", "quanto", "hqq", "bnb"}
    with pytest.raises(ConfigError, match="no backend named 'tensorrt'"):
        get_backend("tensorrt")


@pytest.mark.parametrize(
    "config_id, device, fragment",
    [
        ("torch-ao.dyn-int8.a-int8.tensor.sym", "cuda", "CPU only"),
        ("torchao.w-int4.g128.asym.kernel=tinygemm", "cpu", "needs a CUDA device"),
        ("hqq.w-int4.g64.asym.backend=torchao_int4", "cpu", "needs a CUDA device"),
        ("quanto.w-int4.g64.asym", "cpu", "group of 128"),
        ("bnb.w-nf4.g48.sym", "cpu", "absmax blocks"),
        ("hqq.w-int4.tensor.asym", "cpu", "not per tensor"),
        ("hqq.w-int3.g64.asym.backend=torchao_int4", "cuda", "torchao_int4 backend is int4"),
        ("hqq.w-int4.g16.asym.backend=torchao_int4", "cuda", "group size 32, 64, 128 or 256"),
        ("hqq.w-int8.g64.asym.backend=bitblas", "cuda", "bitblas backend takes int4, int2 or int1"),
    ],
)
def test_unsupported_configurations_say_why(config_id, device, fragment):
    config = QuantConfig.from_id(config_id)
    assert fragment in get_backend(config.backend).unsupported(config, device)


@pytest.mark.parametrize("kernel, dtype", [(None, torch.float32), ("torchao_int4", torch.bfloat16)])
def test_hqq_layers_compute_in_the_dtype_the_whole_model_runs_in(small, monkeypatch, kernel, dtype):
    """HQQ's layers do not cast their input: a float16 layer in a float32 model fails at its first matmul (what
    CUDA runs did before), and torchao_int4 takes bfloat16 only. The kernel swap itself needs CUDA; here it is
    recorded, and the model must already run in the kernel's dtype through HQQ's own PyTorch path."""
    import hqq.utils.patching

    swapped = []
    monkeypatch.setattr(hqq.utils.patching, "prepare_for_inference", lambda model, backend: swapped.append(backend))
    config = QuantConfig.from_id("hqq.w-int4.g64.asym" + (f".backend={kernel}" if kernel else ""))
    model = copy.deepcopy(small)
    quantized = get_backend("hqq").quantize(model, config, sc.select(model), "cpu", None)
    assert swapped == ([kernel] if kernel else [])
    layers = [m for m in quantized.modules() if type(m).__name__ == "HQQLinear"]
    assert layers and {m.compute_dtype for m in layers} == {dtype}
    assert {p.dtype for p in quantized.parameters() if p.is_floating_point()} <= {dtype}
    with torch.no_grad():
        out = quantized(input_features=FEATS.to(dtype), decoder_input_ids=IDS).logits
    assert torch.isfinite(out).all()


def test_torchao_tinygemm_names_its_packing_format():
    """torchao's default int4 format changes between releases (0.18: "plain", which needs the mslk package and
    failed on an H200); the tinygemm option must ask for tinygemm's format itself."""
    import dataclasses

    from torchao.quantization import Int4WeightOnlyConfig

    made = get_backend("torchao")._config(QuantConfig.from_id("torchao.w-int4.g128.asym.kernel=tinygemm"))
    assert isinstance(made, Int4WeightOnlyConfig) and made.group_size == 128
    if "int4_packing_format" in {f.name for f in dataclasses.fields(Int4WeightOnlyConfig)}:
        assert made.int4_packing_format == "tile_packed_to_4d"


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device: GPU paths (bnb/quanto/hqq/torchao CUDA kernels) run on GPU runners",
)
@pytest.mark.parametrize(
    "config_id",
    [
        "bnb.w-nf4.g64.sym",
        "bnb.dyn-int8.a-int8.channel.sym.threshold=6",
        "quanto.w-int4.g128.asym",
        "torchao.w-int4.g128.asym.kernel=tinygemm",
        "hqq.w-int4.g64.asym",
        "hqq.w-int4.g64.asym.backend=torchao_int4",
    ],
)
def test_gpu_backends_quantize_on_cuda(small, config_id):
    config = QuantConfig.from_id(config_id)
    backend = get_backend(config.backend)
    reason = backend.unavailable() or backend.unsupported(config, "cuda")
    if reason:
        pytest.skip(reason)
    model = copy.deepcopy(small).to("cuda")
    quantized = backend.quantize(model, config, sc.select(model), "cuda", None)
    with torch.no_grad():
        out = quantized(
            input_features=FEATS.to("cuda", quantized.model.encoder.conv1.weight.dtype),
            decoder_input_ids=IDS.to("cuda"),
        ).logits
    assert torch.isfinite(out).all()
