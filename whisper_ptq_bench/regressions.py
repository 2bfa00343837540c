"""A catalogue of dependency regressions, injected into the real installed libraries in-process.

Each :class:`Regression` monkeypatches the library's own functions, classes, constants or op
namespaces, on exactly the code paths the backends of :mod:`whisper_ptq_bench.backends` call, so a
benchmark run inside ``with regression.patch():`` behaves as if a broken release of that library
were installed.  Every patch restores the exact previous objects on exit, also when the body raises.

    from whisper_ptq_bench.regressions import by_name
    with by_name("hqq-nan-smallest-range").patch():
        ...  # quantize and evaluate: the weight/output gates of the listed configs should turn red

``configs`` lists the ids of the DEFAULT matrix a regression should turn red, ``expect`` the signals
that should see it ("weight", "output", "speed", "size", "scope").
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from whisper_ptq_bench.configs import DEFAULT

KINDS = (
    "scale-rounding",
    "codebook",
    "block-size-default",
    "option-default",
    "left-in-float",
    "per-channel-to-tensor",
    "slow-fallback",
    "dequant-gemm",
    "nan-degenerate",
    "attention-numerics",
    "larger-size",
    "scope",
    "activation-numerics",
)
SIGNALS = ("weight", "output", "speed", "size", "scope")
LIBRARIES = ("torch", "transformers", "optimum-quanto", "hqq", "bitsandbytes", "torchao")


@dataclass(frozen=True)
class Regression:
    """One injected regression of a dependency; ``patch()`` returns the context manager that applies it."""

    name: str
    kind: str
    library: str
    configs: tuple[str, ...]
    models_on: str
    expect: str
    patch: Callable[[], contextlib.AbstractContextManager]

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"regression {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.library not in LIBRARIES:
            raise ValueError(f"regression {self.name}: library {self.library!r} is not one of {LIBRARIES}")
        unknown = [s for s in self.signals if s not in SIGNALS]
        if unknown or not self.signals:
            raise ValueError(f"regression {self.name}: expect {self.expect!r} names no signal of {SIGNALS}")
        if not self.configs:
            raise ValueError(f"regression {self.name}: configs is empty")

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.expect.split(",") if s.strip())


# ----------------------------------------------------------------------------- patch helpers

_MISSING = object()


@contextlib.contextmanager
def _swap(owner, name: str, new) -> Iterator[object]:
    """Set ``owner.name = new``; on exit put back the raw previous object (or delete it if there was none)."""
    old = vars(owner).get(name, _MISSING)
    setattr(owner, name, new)
    try:
        yield old
    finally:
        if old is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, old)


@contextlib.contextmanager
def _swap_item(mapping, key, new) -> Iterator[object]:
    """Set ``mapping[key] = new``; on exit put back the previous value (or remove the key)."""
    old = mapping.get(key, _MISSING)
    mapping[key] = new
    try:
        yield old
    finally:
        if old is _MISSING:
            mapping.pop(key, None)
        else:
            mapping[key] = old


@contextlib.contextmanager
def _emptied(mapping) -> Iterator[None]:
    """Empty a cache dict for the duration; on exit drop what was cached meanwhile and restore the old entries."""
    saved = dict(mapping)
    mapping.clear()
    try:
        yield
    finally:
        mapping.clear()
        mapping.update(saved)


def _module(name: str):
    return importlib.import_module(name)


class _OpPacket:
    """Stands in for ``torch.ops.<ns>.<op>``: ``.default`` is replaced, everything else is the real packet's."""

    def __init__(self, real, default):
        self._real = real
        self.default = default

    def __call__(self, *args, **kwargs):
        return self.default(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


@contextlib.contextmanager
def _swap_op(namespace: str, op: str, make: Callable[[object], Callable]) -> Iterator[None]:
    """Route ``torch.ops.<namespace>.<op>.default`` through ``make(real_packet)``."""
    import torch

    ns = getattr(torch.ops, namespace)
    real = getattr(ns, op)  # materialises the packet in the namespace's __dict__
    with _swap(ns, op, _OpPacket(real, make(real))):
        yield


# ----------------------------------------------------------------------------- hqq


@contextlib.contextmanager
def _hqq_base_config(change: Callable[[dict], None]) -> Iterator[None]:
    """Wrap hqq.core.quantize.BaseQuantizeConfig (and its alias hqq_base_quant_config) to edit weight_quant_params."""
    q = _module("hqq.core.quantize")
    original = q.hqq_base_quant_config

    def base_quant_config(*args, **kwargs):
        config = original(*args, **kwargs)
        change(config["weight_quant_params"])
        return config

    with _swap(q, "BaseQuantizeConfig", base_quant_config), _swap(q, "hqq_base_quant_config", base_quant_config):
        yield


def _hqq_zero_rounding():
    """hqq.core.quantize.BaseQuantizeConfig: the zero point is rounded at every bit-width (round_zero=True), not only at 4 bits."""

    def change(params):
        params["round_zero"] = True

    return _hqq_base_config(change)


def _hqq_optimizer_off():
    """hqq.core.quantize.BaseQuantizeConfig: the proximal zero-point optimizer defaults to off (optimize=False)."""

    def change(params):
        params["optimize"] = False

    return _hqq_base_config(change)


#: share of the groups (smallest max-min range first) that get a NaN scale
NAN_GROUP_FRACTION = 0.01


@contextlib.contextmanager
def _hqq_nan_smallest_range() -> Iterator[None]:
    """hqq.core.quantize.Quantizer.quantize: the groups with the smallest range get a NaN scale and zero."""
    import torch

    q = _module("hqq.core.quantize")
    original = q.Quantizer.quantize  # bound to the class

    def quantize(cls, tensor, *args, **kwargs):
        W_q, meta = original(tensor, *args, **kwargs)
        group_size, axis = meta["group_size"], meta["axis"]
        W = tensor.detach().float()
        if group_size is not None:
            W = W.reshape([-1, group_size]) if axis == 1 else W.reshape([group_size, -1])
        span = (W.amax(dim=axis, keepdim=True) - W.amin(dim=axis, keepdim=True)).reshape(-1)
        if span.numel() == meta["scale"].numel():
            count = max(1, int(NAN_GROUP_FRACTION * span.numel()))
            worst = torch.topk(span, count, largest=False).indices
            for key in ("scale", "zero"):
                value = meta[key].clone()
                value.view(-1)[worst.to(value.device)] = float("nan")
                meta[key] = value
        return W_q, meta

    with _swap(q.Quantizer, "quantize", classmethod(quantize)):
        yield


@contextlib.contextmanager
def _hqq_redundant_dequant() -> Iterator[None]:
    """hqq.core.quantize.HQQLinear.matmul: the weight is dequantized three times per call (same result, more work).
    Dequantizing twice made the fixed workload (encoder-dominated, where the matmul outweighs dequantization)
    only 1.13x slower in the machine's usual state: under the 20% the speed check exists to catch."""
    import torch

    q = _module("hqq.core.quantize")

    def matmul(self, x, transpose=True):
        self.dequantize()
        self.dequantize()
        weight = self.dequantize()
        return torch.matmul(x, weight.t() if transpose else weight)

    with _swap(q.HQQLinear, "matmul", matmul):
        yield


@contextlib.contextmanager
def _hqq_meta_float64() -> Iterator[None]:
    """hqq.core.quantize.HQQLinear.state_dict: scales and zero points are serialized as float64."""
    import torch

    q = _module("hqq.core.quantize")
    original = q.HQQLinear.state_dict

    def state_dict(self, *args, **kwargs):
        state = original(self, *args, **kwargs)
        for key in ("scale", "zero"):
            value = state.get(key)
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                state[key] = value.to(torch.float64)
                if "destination" in kwargs and "prefix" in kwargs:
                    kwargs["destination"][kwargs["prefix"] + key] = state[key]
        return state

    with _swap(q.HQQLinear, "state_dict", state_dict):
        yield


# ----------------------------------------------------------------------------- bitsandbytes

#: the NF4 code-book entry the codebook regression changes, and its new value (-0.6961928... -> -0.6361928...)
NF4_INDEX, NF4_VALUE = 1, -0.6361928009986877


@contextlib.contextmanager
def _bnb_nf4_code_value() -> Iterator[None]:
    """One NF4 code value changes everywhere the CPU path reads the table, for quantize and dequantize alike.

    bitsandbytes.functional.get_4bit_type (QuantState.code; the quantize_4bit bucket bounds through
    backends.utils._get_4bit_code and its caches), backends.utils._NF4_QUANT_TABLE / CODE["nf4"], and the
    CPU dequantize_4bit kernel (whose C code holds its own copy of the table), replaced by a table lookup.
    Linear4bit layers built meanwhile skip the AVX512-BF16 repacking, whose fused gemv also hardcodes it.
    """
    import torch

    F = _module("bitsandbytes.functional")
    utils = _module("bitsandbytes.backends.utils")
    default_ops = _module("bitsandbytes.backends.default.ops")
    modules = _module("bitsandbytes.nn.modules")
    original = F.get_4bit_type

    def get_4bit_type(typename, device=None, blocksize=64):
        code = original(typename, device=device, blocksize=blocksize)
        if typename == "nf4":
            code = code.clone()
            code[NF4_INDEX] = NF4_VALUE
        return code

    table = utils._NF4_QUANT_TABLE.clone()
    table[NF4_INDEX] = NF4_VALUE

    def make_dequantize_4bit(real):
        def dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype):
            if quant_type != "nf4":
                return real.default(A, absmax, blocksize, quant_type, shape, dtype)
            packed = (A if A.dtype == torch.uint8 else A.view(torch.uint8)).reshape(-1)
            codes = torch.stack((packed >> 4, packed & 0xF), dim=-1).reshape(-1).long()
            n = 1
            for d in shape:
                n *= d
            values = utils._get_4bit_code("nf4", packed.device)[codes][:n]
            padded = -(-n // blocksize) * blocksize
            values = torch.nn.functional.pad(values, (0, padded - n)).view(-1, blocksize) * absmax.float().view(-1, 1)
            return values.reshape(-1)[:n].reshape(-1, *shape[1:]).to(dtype)

        return dequantize_4bit

    with contextlib.ExitStack() as stack:
        stack.enter_context(_swap_op("bitsandbytes", "dequantize_4bit", make_dequantize_4bit))
        stack.enter_context(_swap(F, "get_4bit_type", get_4bit_type))
        stack.enter_context(_swap(utils, "_NF4_QUANT_TABLE", table))
        stack.enter_context(_swap_item(utils.CODE, "nf4", table))
        stack.enter_context(_emptied(utils._code_4bit_cache))
        stack.enter_context(_swap(modules, "has_avx512bf16", lambda: False))
        stack.callback(default_ops._get_4bit_quantize_bounds.cache_clear)
        default_ops._get_4bit_quantize_bounds.cache_clear()
        yield


#: the block size the 4-bit quantizer silently uses instead of the requested one
BNB_FORCED_BLOCKSIZE = 128


@contextlib.contextmanager
def _bnb_blocksize_128() -> Iterator[None]:
    """bitsandbytes.functional.quantize_4bit ignores the requested blocksize and uses 128 (Params4bit._quantize calls it)."""
    F = _module("bitsandbytes.functional")
    original = F.quantize_4bit

    def quantize_4bit(A, absmax=None, out=None, blocksize=None, *args, **kwargs):
        return original(A, absmax, out, BNB_FORCED_BLOCKSIZE, *args, **kwargs)

    with _swap(F, "quantize_4bit", quantize_4bit):
        yield


#: every n-th absmax block (starting at the second) stores its predecessor's absmax
BNB_BAD_BLOCK_STRIDE = 16


@contextlib.contextmanager
def _bnb_absmax_wrong_blocks() -> Iterator[None]:
    """torch.ops.bitsandbytes.quantize_4bit: some blocks store the absmax of the block before them."""

    def make_quantize_4bit(real):
        def quantize_4bit(A, blocksize, quant_type, quant_storage):
            packed, absmax = real.default(A, blocksize, quant_type, quant_storage)
            absmax = absmax.clone()
            bad = absmax[1::BNB_BAD_BLOCK_STRIDE]
            absmax[1::BNB_BAD_BLOCK_STRIDE] = absmax[0::BNB_BAD_BLOCK_STRIDE][: bad.numel()].clone()
            return packed, absmax

        return quantize_4bit

    with _swap_op("bitsandbytes", "quantize_4bit", make_quantize_4bit):
        yield


# ----------------------------------------------------------------------------- optimum-quanto

#: module names (last component) quanto leaves in float under the left-in-float regression
QUANTO_SKIPPED = ("fc1", "fc2")


@contextlib.contextmanager
def _bnb_outliers_in_int8() -> Iterator[None]:
    """bitsandbytes::int8_mixed_scaled_mm quantizes the outlier columns to int8 with the rest instead of multiplying
    them in floating point: LLM.int8 computes as with threshold 0 while its modules still say threshold 6."""
    import torch

    def make(real):
        def int8_mixed_scaled_mm(A, CA, CB, SCA, SCB, outlier_cols=None, bias=None):
            if outlier_cols is None or not outlier_cols.numel():
                return real.default(A, CA, CB, SCA, SCB, outlier_cols, bias)
            CA, SCA, _ = torch.ops.bitsandbytes.int8_vectorwise_quant.default(A.to(torch.float16), 0.0)
            output = torch.ops.bitsandbytes.int8_scaled_mm.default(CA, CB, SCA, SCB, bias=bias, dtype=A.dtype)
            return output, A[:, outlier_cols].contiguous()

        return int8_mixed_scaled_mm

    with _swap_op("bitsandbytes", "int8_mixed_scaled_mm", make):
        yield


@contextlib.contextmanager
def _quanto_skip_mlp() -> Iterator[None]:
    """optimum.quanto.quantize._quantize_submodule skips the fc1/fc2 Linear layers although they are included."""
    qz = _module("optimum.quanto.quantize")
    original = qz._quantize_submodule

    def _quantize_submodule(model, name, module, *args, **kwargs):
        if name.rsplit(".", 1)[-1] in QUANTO_SKIPPED:
            return None
        return original(model, name, module, *args, **kwargs)

    with _swap(qz, "_quantize_submodule", _quantize_submodule):
        yield


@contextlib.contextmanager
def _quanto_int_zeropoint() -> Iterator[None]:
    """optimum.quanto AffineOptimizer.__call__ rounds the float shift to an integer zero point (zeropoint=True)."""
    opt = _module("optimum.quanto.tensor.optimizers.affine_optimizer")
    original = opt.AffineOptimizer.__call__

    def __call__(self, base, qtype, axis, group_size=None, zeropoint=False):
        return original(self, base, qtype, axis, group_size, True)

    with _swap(opt.AffineOptimizer, "__call__", __call__):
        yield


# ----------------------------------------------------------------------------- torchao


@contextlib.contextmanager
def _torchao_perrow_as_pertensor() -> Iterator[None]:
    """torchao quant_api: Int8WeightOnlyConfig / Int8DynamicActivationInt8WeightConfig quantize PerRow weights per tensor."""
    api = _module("torchao.quantization.quant_api")
    from torchao.quantization import PerRow, PerTensor

    weight_only, dynamic = (
        api._int8_weight_only_quantize_tensor,
        api._int8_dynamic_activation_int8_weight_quantize_tensor,
    )

    def weight_only_tensor(weight, config):
        if isinstance(config.granularity, PerRow):
            config = dataclasses.replace(config, granularity=PerTensor())
        return weight_only(weight, config)

    def dynamic_tensor(weight, config):
        act, wgt = api.Int8Tensor._normalize_granularity(config.granularity)
        if isinstance(wgt, PerRow):
            config = dataclasses.replace(config, granularity=[act, PerTensor()])
        return dynamic(weight, config)

    with (
        _swap(api, "_int8_weight_only_quantize_tensor", weight_only_tensor),
        _swap(api, "_int8_dynamic_activation_int8_weight_quantize_tensor", dynamic_tensor),
    ):
        yield


@contextlib.contextmanager
def _torchao_filter_ignored() -> Iterator[None]:
    """torchao quant_api.quantize_: the caller's filter_fn is dropped for the default _is_linear (proj_out converted too)."""
    api = _module("torchao.quantization.quant_api")
    original = api._replace_with_custom_fn_if_matches_filter

    def replace(model, replacement_fn, filter_fn, *args, **kwargs):
        return original(model, replacement_fn, api._is_linear, *args, **kwargs)

    with _swap(api, "_replace_with_custom_fn_if_matches_filter", replace):
        yield


# ----------------------------------------------------------------------------- torch (torch.ao.quantization)


@contextlib.contextmanager
def _torch_ao_dequant_gemm() -> Iterator[None]:
    """torch.ao.nn.quantized.dynamic.Linear.forward: int8 weights are dequantized and multiplied in fp32."""
    import torch

    dyn = _module("torch.ao.nn.quantized.dynamic.modules.linear")
    original = dyn.Linear.forward

    def forward(self, x):
        if self._packed_params.dtype != torch.qint8:
            return original(self, x)
        weight, bias = self._weight_bias()
        return torch.nn.functional.linear(x, weight.dequantize(), bias).to(x.dtype)

    with _swap(dyn.Linear, "forward", forward):
        yield


@contextlib.contextmanager
def _torch_ao_qconfig_dict_ignored() -> Iterator[None]:
    """torch.ao.quantization.quantize.propagate_qconfig_: a per-name qconfig dict is applied to every nn.Linear."""
    import torch

    qmod = _module("torch.ao.quantization.quantize")
    original = qmod.propagate_qconfig_

    def propagate_qconfig_(module, qconfig_dict=None, prepare_custom_config_dict=None):
        if qconfig_dict and all(isinstance(k, str) for k in qconfig_dict):
            qconfig_dict = {torch.nn.Linear: next(iter(qconfig_dict.values()))}
        return original(module, qconfig_dict, prepare_custom_config_dict)

    with _swap(qmod, "propagate_qconfig_", propagate_qconfig_):
        yield


# ----------------------------------------------------------------------------- transformers


@contextlib.contextmanager
def _whisper_attn_double_scaling() -> Iterator[None]:
    """transformers' sdpa attention function (AttentionInterface._global_mapping["sdpa"]) and Whisper's
    eager_attention_forward drop the explicit ``scaling=1.0``, so the default 1/sqrt(head_dim) is applied
    on top of the query scaling Whisper already did."""
    whisper = _module("transformers.models.whisper.modeling_whisper")
    mu = _module("transformers.modeling_utils")
    mapping = mu.AttentionInterface._global_mapping
    sdpa, eager = mapping["sdpa"], whisper.eager_attention_forward

    def unscaled(function):
        def attention(module, query, key, value, attention_mask, *args, scaling=None, **kwargs):
            return function(module, query, key, value, attention_mask, *args, scaling=None, **kwargs)

        return attention

    with _swap_item(mapping, "sdpa", unscaled(sdpa)), _swap(whisper, "eager_attention_forward", unscaled(eager)):
        yield


# ----------------------------------------------------------------------------- the catalogue

_HQQ = tuple(c for c in DEFAULT if c.startswith("hqq."))
_BNB4 = ("bnb.w-nf4.g64.sym", "bnb.w-nf4.g64.sym.dq=1", "bnb.w-fp4.g64.sym")
_QUANTO = tuple(c for c in DEFAULT if c.startswith("quanto."))
_TORCHAO = tuple(c for c in DEFAULT if c.startswith("torchao."))
_TORCH_AO_DYN8 = (
    "torch-ao.dyn-int8.a-int8.channel.sym",
    "torch-ao.dyn-int8.a-int8.tensor.sym",
    "torch-ao.dyn-int8.a-int8.tensor.asym",
)


def _first(first: str, group: tuple[str, ...]) -> tuple[str, ...]:
    return (first, *(c for c in group if c != first))


CATALOGUE: tuple[Regression, ...] = (
    Regression(
        name="hqq-zero-rounding",
        kind="scale-rounding",
        library="hqq",
        configs=("hqq.w-int3.g64.asym", "hqq.w-int2.g64.asym", "hqq.w-int8.g64.asym"),
        models_on="HQQ's zero-point rounding (round_zero, taken from AutoAWQ, dropbox/hqq#10) is a per-bit-width "
        "BaseQuantizeConfig default ('True if nbits == 4 else False'); here a release rounds at every bit-width.",
        expect="weight",
        patch=_hqq_zero_rounding,
    ),
    Regression(
        name="hqq-optimizer-off",
        kind="option-default",
        library="hqq",
        configs=_first("hqq.w-int4.g64.asym", tuple(c for c in _HQQ if c != "hqq.w-int8.g64.asym")),
        models_on="hqq's BaseQuantizeConfig defaults flipped between releases (quant_zero True -> False, axis 0 -> 1 by "
        "0.2.x; transformers#29637 documents the old ones); here the optimize default flips to off.",
        expect="weight,output",
        patch=_hqq_optimizer_off,
    ),
    Regression(
        name="hqq-nan-smallest-range",
        kind="nan-degenerate",
        library="hqq",
        configs=_first("hqq.w-int4.g64.asym", _HQQ),
        models_on="HQQ 0.2.7.post1, where near-constant (smallest-range) groups came out of Quantizer.quantize with "
        "NaN scales/zero points.",
        expect="weight,output",
        patch=_hqq_nan_smallest_range,
    ),
    Regression(
        name="hqq-redundant-dequant",
        kind="slow-fallback",
        library="hqq",
        configs=_first("hqq.w-int4.g64.asym", _HQQ),
        models_on="hqq's no-cache matmul paths ('No cache: less memory, slower', HQQMatmulNoCache* behind "
        "HQQBackend.PYTORCH), which re-dequantize on every call; here the weight is dequantized three times per call.",
        expect="speed",
        patch=_hqq_redundant_dequant,
    ),
    Regression(
        name="hqq-meta-float64",
        kind="larger-size",
        library="hqq",
        configs=_first("hqq.w-int4.g64.asym", _HQQ),
        models_on="hqq dropping its 8-bit quantized zero/scale meta-data ('Quantizing zeros/scales is deprecated'), "
        "which stores the meta-data at full precision; here it is saved as float64, the numbers unchanged.",
        expect="size",
        patch=_hqq_meta_float64,
    ),
    Regression(
        name="bnb-nf4-code-value",
        kind="codebook",
        library="bitsandbytes",
        configs=("bnb.w-nf4.g64.sym", "bnb.w-nf4.g64.sym.dq=1"),
        models_on="bitsandbytes keeping separate hand-typed copies of the NF4 table for the CPU/XPU path "
        "(backends/utils.py _NF4_QUANT_TABLE, functional.get_4bit_type, the C kernels), where one mistyped "
        "value changes a release's code book.",
        expect="weight,output",
        patch=_bnb_nf4_code_value,
    ),
    Regression(
        name="bnb-blocksize-128",
        kind="block-size-default",
        library="bitsandbytes",
        configs=_first("bnb.w-nf4.g64.sym.dq=1", _BNB4),
        models_on="bitsandbytes' ROCm builds (ROCm/bitsandbytes#23: 'if HIP_ENVIRONMENT: blocksize = 128' in "
        "quantize_4bit), which silently quantized 4-bit weights in blocks of 128 whatever blocksize was asked.",
        expect="weight",
        patch=_bnb_blocksize_128,
    ),
    Regression(
        name="bnb-absmax-wrong-blocks",
        kind="scale-rounding",
        library="bitsandbytes",
        configs=_first("bnb.w-fp4.g64.sym", _BNB4),
        models_on="bitsandbytes#1157 (fixed in #1160): the 4-bit quantize kernel for blocksize 4096 ran with the wrong "
        "data-type template and produced wrong blocks (cf. #565); here some blocks keep a neighbour's absmax.",
        expect="weight,output",
        patch=_bnb_absmax_wrong_blocks,
    ),
    Regression(
        name="bnb-outliers-in-int8",
        kind="activation-numerics",
        library="bitsandbytes",
        configs=("bnb.dyn-int8.a-int8.channel.sym.threshold=6",),
        models_on="bitsandbytes#1594, which rewrote LLM.int8()'s sparse decomposition into one mixed int8/fp16 op "
        "('This step is missing right now' for the transposed outlier zeroing); here the op sends the outlier "
        "columns through int8 with the rest, so threshold 6 computes as threshold 0. Weights, scope and size are "
        "unchanged: only the outputs show it.",
        expect="output",
        patch=_bnb_outliers_in_int8,
    ),
    Regression(
        name="quanto-skip-mlp",
        kind="left-in-float",
        library="optimum-quanto",
        configs=_QUANTO,
        models_on="transformers#25105: the computed list of modules not to convert was wrong for some models "
        "(e.g. a whole 'transformer' prefix), so layers that should have been quantized silently stayed in float.",
        expect="scope,weight,size",
        patch=_quanto_skip_mlp,
    ),
    Regression(
        name="quanto-int-zeropoint",
        kind="scale-rounding",
        library="optimum-quanto",
        configs=("quanto.w-int4.g128.asym",),
        models_on="optimum-quanto's switch between integer zero points and float shifts for 2/4-bit weights "
        "(optimum-quanto#131/#133: rounding the zero point measurably changed quantization accuracy).",
        expect="weight",
        patch=_quanto_int_zeropoint,
    ),
    Regression(
        name="torchao-perrow-as-pertensor",
        kind="per-channel-to-tensor",
        library="torchao",
        configs=("torchao.w-int8.channel.sym", "torchao.dyn-int8.a-int8.channel.sym"),
        models_on="pytorch/ao#2760: Float8DynamicActivationFloat8WeightConfig defaulted to PerTensor where PerRow "
        "scaling was expected; here the int8 configs' PerRow weights are quantized per tensor.",
        expect="weight,output",
        patch=_torchao_perrow_as_pertensor,
    ),
    Regression(
        name="torchao-filter-ignored",
        kind="scope",
        library="torchao",
        configs=_first("torchao.w-int8.tensor.sym", _TORCHAO),
        models_on="transformers#25105, where the skip list missed ChatGLM's output head so the head was quantized; "
        "here torchao's quantize_ drops the caller's filter_fn for its default _is_linear and converts proj_out.",
        expect="scope,weight,output",
        patch=_torchao_filter_ignored,
    ),
    Regression(
        name="torch-ao-dequant-gemm",
        kind="dequant-gemm",
        library="torch",
        configs=_TORCH_AO_DYN8,
        models_on="int8 linear paths that dequantize the weight and run an fp32 GEMM instead of the int8 kernel "
        "(pytorch#62804 'int8 linear is slower than fp32 linear'; optimum-quanto#180's float32 fallback).",
        expect="output,speed",
        patch=_torch_ao_dequant_gemm,
    ),
    Regression(
        name="torch-ao-qconfig-dict-ignored",
        kind="scope",
        library="torch",
        configs=(*_TORCH_AO_DYN8, "torch-ao.dyn-fp16.a-fp16"),
        models_on="targets chosen by module type instead of name (Samsung/TICO#972: quantize_lm_head=False ignored, "
        "the tied lm_head quantized); here quantize_dynamic's per-name qconfig dict acts as {nn.Linear: qconfig}.",
        expect="scope,weight,output",
        patch=_torch_ao_qconfig_dict_ignored,
    ),
    Regression(
        name="whisper-attn-double-scaling",
        kind="attention-numerics",
        library="transformers",
        configs=tuple(DEFAULT),
        models_on="transformers#38277/#38290 (attention refactor): OPT's attention scaling was applied twice once "
        "sdpa created its default scale; Whisper's 'original order of scaling' (#38235) avoids it with scaling=1.0.",
        expect="output",
        patch=_whisper_attn_double_scaling,
    ),
)

_BY_NAME = {r.name: r for r in CATALOGUE}


def by_name(name: str) -> Regression:
    """The catalogue entry called ``name``; a ValueError lists the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"no regression named {name!r}; known: {', '.join(sorted(_BY_NAME))}") from None
