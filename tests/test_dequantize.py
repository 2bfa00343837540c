"""Every backend's ``dequantize`` returns the weight its quantized modules compute with.

For each configuration one small random Whisper is quantized once (a module-scoped fixture), put in eval
mode as the harness does, and run once. Then, for every module in scope, the dequantized weight is checked for form
(float32, CPU, the fp32 weight's shape, finite), against the module's own forward, and against the fp32
weight with error ranges that follow from the format's bit width.
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from whisper_ptq_bench import scope as sc
from whisper_ptq_bench.backends import backends, get_backend
from whisper_ptq_bench.configs import QuantConfig

CONFIG_IDS = [
    "torch-ao.dyn-fp16.a-fp16",
    "torch-ao.dyn-int8.a-int8.tensor.sym",
    "torch-ao.dyn-int8.a-int8.channel.sym",
    "torch-ao.static-int8.a-int8.tensor.sym",
    "torchao.dyn-int8.a-int8.channel.sym",
    "torchao.w-int8.channel.sym",
    "torchao.w-int8.tensor.sym",
    "torchao.w-int4.g32.sym",
    "torchao.w-int4.g32.asym",
    "quanto.w-int8.channel.sym",
    "quanto.w-int4.g128.asym",
    "quanto.w-fp8.channel.sym",
    "quanto.static-int8.a-int8.channel.sym",
    "hqq.w-int8.g64.asym",
    "hqq.w-int4.g64.asym",
    "hqq.w-int3.g64.asym",
    "bnb.dyn-int8.a-int8.channel.sym.threshold=6",
    "bnb.w-nf4.g64.sym",
    "bnb.w-nf4.g64.sym.dq=1",
    "bnb.w-fp4.g64.sym",
]

#: 32 encoder positions (64 mel frames) instead of 1500: the Linear shapes are those of test_backends' model,
#: the forward passes are ~50x cheaper
SOURCE_POSITIONS = 32
_GEN = torch.Generator().manual_seed(1)
FEATS = torch.randn(2, 80, 2 * SOURCE_POSITIONS, generator=_GEN)
IDS = torch.randint(3, 600, (2, 8), generator=_GEN)


def quanto_group_size(in_features: int) -> int | None:
    """The group size quanto picks for 2/4-bit weights (optimum/quanto/nn/qmodule.py, QModuleMixin)."""
    group = 128
    if in_features > group:
        while in_features % group and group > 32:
            group -= 32
        if in_features % group == 0:
            return group
    return None


def calibrate(model):
    with torch.no_grad():
        model(input_features=FEATS, decoder_input_ids=IDS)


def _rel(a, b) -> float:
    """||a - b|| / ||b|| (Frobenius)."""
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The matrices are tiny: one thread beats two, and by far when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=600,
        num_mel_bins=80,
        d_model=128,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=256,
        decoder_ffn_dim=256,
        max_source_positions=SOURCE_POSITIONS,
        max_target_positions=64,
        pad_token_id=1,
        bos_token_id=1,
        eos_token_id=1,
        decoder_start_token_id=2,
    )
    return WhisperForConditionalGeneration(config).eval()


@pytest.fixture(scope="module")
def layer_inputs(small):
    """What each Linear in scope receives in the fp32 model on the calibration batch: the activations the
    static configurations calibrated their ranges on, so activation quantization does not clip them."""
    seen = {}
    hooks = [
        small.get_submodule(name).register_forward_pre_hook(lambda m, args, name=name: seen.setdefault(name, args[0]))
        for name in sc.select(small)
    ]
    try:
        calibrate(small)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.fixture(scope="module", params=CONFIG_IDS)
def quantized(request, small):
    config = QuantConfig.from_id(request.param)
    backend = get_backend(config.backend)
    reason = backend.unavailable() or backend.unsupported(config, "cpu")
    if reason:
        pytest.skip(reason)
    model = copy.deepcopy(small)
    names = sc.select(model)
    model = backend.quantize(model, config, names, "cpu", calibrate if backend.needs_calibration(config) else None)
    model.eval()
    before = {name: backend.dequantize(model.get_submodule(name)) for name in names}
    calibrate(model)  # the first forward: some libraries move or repack their state there
    weights = {name: backend.dequantize(model.get_submodule(name)) for name in names}
    return SimpleNamespace(config=config, backend=backend, model=model, names=names, before=before, weights=weights)


def _bnb_cpu_layout(module) -> bool:
    """bitsandbytes' Linear4bit repacks itself on its first eval forward on an AVX512-BF16 CPU."""
    state = getattr(getattr(module, "weight", None), "quant_state", None)
    return getattr(state, "packing_format_for_cpu", False)


# ---------------------------------------------------------------------------------------------- 1. form


def test_dequantize_is_a_finite_float32_cpu_matrix_of_the_weights_shape(quantized, small):
    for name in quantized.names:
        w = quantized.weights[name]
        ref = small.get_submodule(name).weight
        assert type(w) is torch.Tensor, name  # a plain tensor: no quantized subclass, no Parameter
        assert w.dtype == torch.float32 and w.device.type == "cpu" and w.shape == ref.shape, name
        assert torch.isfinite(w).all(), name


def test_dequantize_reads_the_same_weight_before_and_after_the_first_forward(quantized):
    for name in quantized.names:
        module = quantized.model.get_submodule(name)
        before, after = quantized.before[name], quantized.weights[name]
        if _bnb_cpu_layout(module):
            # the repacked layout keeps each block's absmax in bfloat16 (8 significant bits): every weight
            # moves by at most the bfloat16 unit roundoff 2^-8 of itself (plus float32 rounding)
            assert ((after - before).abs() <= 2**-8 * before.abs() + 1e-7).all(), name
        else:
            assert torch.equal(after, before), name


def test_only_the_producing_backend_claims_a_module(quantized):
    others = [b for name, b in backends().items() if name != quantized.config.backend]
    for name in quantized.names:
        module = quantized.model.get_submodule(name)
        assert all(b.dequantize(module) is None for b in others), name


# ---------------------------------------------------------------------------------------------- 2. forward

#: float32 products summed over <= 256 terms in another order than F.linear: a few ulps of the result
FLOAT_TOL = 1e-5
#: fp16 activations would round each input to 11 significant bits (unit roundoff 2^-11; fbgemm's fp16
#: dynamic Linear keeps them in float32, measured 3e-7); four unit roundoffs
FP16_TOL = 2**-9
#: the AVX512-BF16 kernel of bitsandbytes' 4-bit Linear rounds the input, the block scales and the output
#: to bfloat16 (unit roundoff 2^-8 each; measured 0.25-0.3% RMS); twice the unit roundoff
BF16_TOL = 2**-7


def _int8_activation_tol(x) -> float:
    """Bound on the RMS relative output error that int8 activation quantization causes.

    Rounding to a grid of step D moves each input by at most D/2, uniformly: RMS D/sqrt(12). The coarsest
    grid among these configurations is fbgemm's per-tensor affine one with reduce_range (7 bits: 127 steps
    over max(x) - min(x) <= 2 max|x|), so D <= 2 max|x| / 127 and the RMS input error relative to rms(x)
    is at most c / (127 sqrt(3)), c = max|x| / rms(x) the crest factor (2.7-7.4 for these layer inputs:
    1.2-3.3%). A random input error passes through the product W x with about its relative size
    (measured: 0.2-1.03 times that figure); twice the figure leaves room for the factor. Finer grids
    (8 bits, per row or per token) err less: measured 1.0-2.7% at most per configuration.
    """
    crest = (x.abs().max() / x.pow(2).mean().sqrt()).item()
    return 2 * crest / (127 * math.sqrt(3))


def test_the_module_computes_with_the_dequantized_weight(quantized, small, layer_inputs):
    config = quantized.config
    for name in quantized.names:
        module = quantized.model.get_submodule(name)
        x = layer_inputs[name]
        with torch.no_grad():
            got = module(x)
        want = F.linear(x, quantized.weights[name], small.get_submodule(name).bias)
        if config.activation == "int8":
            tol = _int8_activation_tol(x)
        elif config.activation == "fp16":
            tol = FP16_TOL
        elif _bnb_cpu_layout(module):
            tol = BF16_TOL
        else:
            tol = FLOAT_TOL
        assert _rel(got, want) <= tol, (name, _rel(got, want), tol)


# ---------------------------------------------------------------------------------------------- 3. error


def _uniform_grid_error(w, config) -> float:
    """RMS error, relative to rms(w), of rounding w to nearest on a uniform grid per group.

    A b-bit grid has 2^b - 1 steps across the span it covers: 2 absmax (symmetric) or max - min
    (asymmetric) of the group. Weights spread over many steps land uniformly within a step: error RMS
    step / sqrt(12).
    """
    rows, cols = w.shape
    if config.granularity == "per-tensor":
        group = rows * cols
    elif config.backend == "quanto":  # quanto picks its own group for 2/4 bits, per row for 8
        group = (config.group_size and quanto_group_size(cols)) or cols
    elif config.granularity == "per-group":
        group = config.group_size
    else:
        group = cols
    g = w.reshape(-1, group)
    span = 2 * g.abs().amax(1) if config.method == "symmetric" else g.amax(1) - g.amin(1)
    step = span / (2**config.bits - 1)
    return ((step.pow(2).mean() / 12).sqrt() / w.pow(2).mean().sqrt()).item()


#: ||W_deq - W|| / ||W|| by bit width, for formats with 2^b levels per group (integer grids, nf4, fp4).
#: 2^b - 1 steps across a group's range R leave an RMS error R / ((2^b - 1) sqrt(12)). The weights are drawn
#: normally (Whisper's init); such groups of 32 to 65536 values span R = 4 to 10 standard deviations, so
#: the error is 0.45-1.1% of rms(W) at 8 bits, 7.7-19% at 4 bits, 16-41% at 3 bits. Non-uniform 4-bit
#: levels (nf4, fp4) place the same 16 values differently: within a small factor of the uniform error.
BIT_BANDS = {8: (0.001, 0.02), 4: (0.01, 0.30), 3: (0.05, 0.60)}


def test_dequantized_error_follows_from_the_bit_width(quantized, small):
    config = quantized.config
    for name in quantized.names:
        ref = small.get_submodule(name).weight.detach()
        err = _rel(quantized.weights[name], ref)
        if config.weight == "fp16":
            # 11 significant bits: each weight within 2^-11 of itself (subnormal ones, below 6.1e-5, within
            # 2^-25), so the RMS error is at most 2^-11 of rms(W)
            assert 0 < err <= 2**-11, (name, err)
        elif config.weight == "fp8":
            # e4m3 scaled per row: 4 significant bits, each weight within 2^-4 of itself; rounding
            # continuous values to 4 significant bits leaves far more than 2^-8
            assert 2**-8 < err <= 2**-4, (name, err)
        else:
            lo, hi = BIT_BANDS[config.bits]
            assert lo < err < hi, (name, err, lo, hi)
        if config.weight.startswith("int"):
            # the group spans of this very matrix give the uniform-rounding error: with >= 16k weights the
            # mean squared error sits within ~1% of its expectation; scales and zeros fitted to the weights
            # (HQQ) land a few % below it, rounded zero points and uneven integer ranges a few % above
            expected = _uniform_grid_error(ref, config)
            assert 0.8 * expected < err < 1.25 * expected, (name, err, expected)


def _one_layer_error(small, config_id, name="model.encoder.layers.0.fc1") -> float:
    config = QuantConfig.from_id(config_id)
    backend = get_backend(config.backend)
    reason = backend.unavailable() or backend.unsupported(config, "cpu")
    if reason:
        pytest.skip(reason)
    model = backend.quantize(copy.deepcopy(small), config, [name], "cpu")
    return _rel(backend.dequantize(model.get_submodule(name)), small.get_submodule(name).weight.detach())


@pytest.mark.parametrize(
    "finer, coarser",
    [
        ("hqq.w-int4.g64.asym", "hqq.w-int3.g64.asym"),
        ("hqq.w-int8.g64.asym", "hqq.w-int4.g64.asym"),
        ("torchao.w-int8.channel.sym", "torchao.w-int4.g128.sym"),
        ("quanto.w-int8.channel.sym", "quanto.w-int4.g128.asym"),
        ("bnb.w-nf4.g64.sym", "bnb.w-fp4.g64.sym"),
    ],
)
def test_fewer_levels_mean_a_larger_error(small, finer, coarser):
    """One bit fewer halves the levels and doubles the step, on the same library and group. nf4's levels
    are the quantiles of a normal distribution, fp4's are not: on normally drawn weights nf4 errs less."""
    assert _one_layer_error(small, finer) < _one_layer_error(small, coarser)


# ---------------------------------------------------------------------------------------------- 4. foreign


@pytest.mark.parametrize("backend_name", sorted(backends()))
def test_a_plain_linear_is_not_dequantized(backend_name):
    assert get_backend(backend_name).dequantize(torch.nn.Linear(8, 4)) is None


# ---------------------------------------------------------------------------------------------- bnb int8


def test_bnb_int8_weight_is_cb_times_scb_over_127_as_in_its_int8_matmul():
    """The weight bitsandbytes' own int8 matmul applies is CB * SCB / 127, row by row.

    int8_scaled_mm multiplies the int8 codes exactly in int32 (int8_linear_matmul), then rescales by the
    row absmax of both sides over 127^2 (int8_mm_dequant). With the activations dequantized the same way
    (CA * SCA / 127), that is F.linear with the dequantized weight, up to the rescaling constant:
    bitsandbytes multiplies by 6.200124e-05 where 1/127^2 = 6.2000124e-05, 1.8e-5 too much; 1e-4 bounds
    that and float32 rounding.
    """
    config = QuantConfig.from_id("bnb.dyn-int8.a-int8.channel.sym.threshold=0")
    backend = get_backend(config.backend)
    reason = backend.unavailable() or backend.unsupported(config, "cpu")
    if reason:
        pytest.skip(reason)
    import bitsandbytes.functional as bf

    torch.manual_seed(3)
    model = backend.quantize(torch.nn.Sequential(torch.nn.Linear(96, 48)), config, ["0"], "cpu").eval()
    module = model[0]
    w = backend.dequantize(module)
    x = torch.randn(5, 96).half()
    ca, sca, _ = bf.int8_vectorwise_quant(x)
    x_deq = ca.float() * sca[:, None] / 127
    # the op Linear8bitLt's forward calls (there with float16 output), here with float32 output
    cb, scb = module.weight.data, module.weight.SCB
    library = torch.ops.bitsandbytes.int8_scaled_mm.default(ca, cb, sca, scb, dtype=torch.float32)
    assert _rel(library, F.linear(x_deq, w)) < 1e-4
    with torch.no_grad():  # the module's forward: same int8 product, bias added, result in float16
        out = module(x.float()).float()
    assert _rel(out, F.linear(x_deq, w, module.bias)) < 2**-10
    assert torch.equal(backend.dequantize(module), w)  # the forward moved CB/SCB into module.state
