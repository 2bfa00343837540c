"""The patches of the regression catalogue: each a context manager that monkeypatches a real installed library
(its functions, classes, constants or op namespaces, with ``unittest.mock.patch``) on exactly the code paths the
backends call, and restores the exact previous objects on exit, also when the body raises."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterator
from unittest.mock import patch


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
    with patch.object(ns, op, _OpPacket(real, make(real))):
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

    with (
        patch.object(q, "BaseQuantizeConfig", base_quant_config),
        patch.object(q, "hqq_base_quant_config", base_quant_config),
    ):
        yield


def hqq_zero_rounding():
    """hqq.core.quantize.BaseQuantizeConfig: the zero point is rounded at every bit-width (round_zero=True), not only at 4 bits."""

    def change(params):
        params["round_zero"] = True

    return _hqq_base_config(change)


def hqq_optimizer_off():
    """hqq.core.quantize.BaseQuantizeConfig: the proximal zero-point optimizer defaults to off (optimize=False)."""

    def change(params):
        params["optimize"] = False

    return _hqq_base_config(change)


#: share of the groups (smallest max-min range first) that get a NaN scale
NAN_GROUP_FRACTION = 0.01


@contextlib.contextmanager
def hqq_nan_smallest_range() -> Iterator[None]:
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

    with patch.object(q.Quantizer, "quantize", classmethod(quantize)):
        yield


@contextlib.contextmanager
def hqq_redundant_dequant() -> Iterator[None]:
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

    with patch.object(q.HQQLinear, "matmul", matmul):
        yield


@contextlib.contextmanager
def hqq_meta_float64() -> Iterator[None]:
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

    with patch.object(q.HQQLinear, "state_dict", state_dict):
        yield


# ----------------------------------------------------------------------------- bitsandbytes

#: the NF4 code-book entry the codebook regression changes, and its new value (-0.6961928... -> -0.6361928...)
NF4_INDEX, NF4_VALUE = 1, -0.6361928009986877


@contextlib.contextmanager
def bnb_nf4_code_value() -> Iterator[None]:
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
        stack.enter_context(patch.object(F, "get_4bit_type", get_4bit_type))
        stack.enter_context(patch.object(utils, "_NF4_QUANT_TABLE", table))
        stack.enter_context(patch.dict(utils.CODE, {"nf4": table}))
        stack.enter_context(patch.dict(utils._code_4bit_cache, clear=True))
        stack.enter_context(patch.object(modules, "has_avx512bf16", lambda: False))
        stack.callback(default_ops._get_4bit_quantize_bounds.cache_clear)
        default_ops._get_4bit_quantize_bounds.cache_clear()
        yield


#: the block size the 4-bit quantizer silently uses instead of the requested one
BNB_FORCED_BLOCKSIZE = 128


@contextlib.contextmanager
def bnb_blocksize_128() -> Iterator[None]:
    """bitsandbytes.functional.quantize_4bit ignores the requested blocksize and uses 128 (Params4bit._quantize calls it)."""
    F = _module("bitsandbytes.functional")
    original = F.quantize_4bit

    def quantize_4bit(A, absmax=None, out=None, blocksize=None, *args, **kwargs):
        return original(A, absmax, out, BNB_FORCED_BLOCKSIZE, *args, **kwargs)

    with patch.object(F, "quantize_4bit", quantize_4bit):
        yield


#: every n-th absmax block (starting at the second) stores its predecessor's absmax
BNB_BAD_BLOCK_STRIDE = 16


@contextlib.contextmanager
def bnb_absmax_wrong_blocks() -> Iterator[None]:
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
def bnb_outliers_in_int8() -> Iterator[None]:
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
def quanto_skip_mlp() -> Iterator[None]:
    """optimum.quanto.quantize._quantize_submodule skips the fc1/fc2 Linear layers although they are included."""
    qz = _module("optimum.quanto.quantize")
    original = qz._quantize_submodule

    def _quantize_submodule(model, name, module, *args, **kwargs):
        if name.rsplit(".", 1)[-1] in QUANTO_SKIPPED:
            return None
        return original(model, name, module, *args, **kwargs)

    with patch.object(qz, "_quantize_submodule", _quantize_submodule):
        yield


@contextlib.contextmanager
def quanto_int_zeropoint() -> Iterator[None]:
    """optimum.quanto AffineOptimizer.__call__ rounds the float shift to an integer zero point (zeropoint=True)."""
    opt = _module("optimum.quanto.tensor.optimizers.affine_optimizer")
    original = opt.AffineOptimizer.__call__

    def __call__(self, base, qtype, axis, group_size=None, zeropoint=False):
        return original(self, base, qtype, axis, group_size, True)

    with patch.object(opt.AffineOptimizer, "__call__", __call__):
        yield


# ----------------------------------------------------------------------------- torchao


@contextlib.contextmanager
def torchao_perrow_as_pertensor() -> Iterator[None]:
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
        patch.object(api, "_int8_weight_only_quantize_tensor", weight_only_tensor),
        patch.object(api, "_int8_dynamic_activation_int8_weight_quantize_tensor", dynamic_tensor),
    ):
        yield


@contextlib.contextmanager
def torchao_filter_ignored() -> Iterator[None]:
    """torchao quant_api.quantize_: the caller's filter_fn is dropped for the default _is_linear (proj_out converted too)."""
    api = _module("torchao.quantization.quant_api")
    original = api._replace_with_custom_fn_if_matches_filter

    def replace(model, replacement_fn, filter_fn, *args, **kwargs):
        return original(model, replacement_fn, api._is_linear, *args, **kwargs)

    with patch.object(api, "_replace_with_custom_fn_if_matches_filter", replace):
        yield


# ----------------------------------------------------------------------------- torch (torch.ao.quantization)


@contextlib.contextmanager
def torch_ao_dequant_gemm() -> Iterator[None]:
    """torch.ao.nn.quantized.dynamic.Linear.forward: int8 weights are dequantized and multiplied in fp32."""
    import torch

    dyn = _module("torch.ao.nn.quantized.dynamic.modules.linear")
    original = dyn.Linear.forward

    def forward(self, x):
        if self._packed_params.dtype != torch.qint8:
            return original(self, x)
        weight, bias = self._weight_bias()
        return torch.nn.functional.linear(x, weight.dequantize(), bias).to(x.dtype)

    with patch.object(dyn.Linear, "forward", forward):
        yield


@contextlib.contextmanager
def torch_ao_qconfig_dict_ignored() -> Iterator[None]:
    """torch.ao.quantization.quantize.propagate_qconfig_: a per-name qconfig dict is applied to every nn.Linear."""
    import torch

    qmod = _module("torch.ao.quantization.quantize")
    original = qmod.propagate_qconfig_

    def propagate_qconfig_(module, qconfig_dict=None, prepare_custom_config_dict=None):
        if qconfig_dict and all(isinstance(k, str) for k in qconfig_dict):
            qconfig_dict = {torch.nn.Linear: next(iter(qconfig_dict.values()))}
        return original(module, qconfig_dict, prepare_custom_config_dict)

    with patch.object(qmod, "propagate_qconfig_", propagate_qconfig_):
        yield


# ----------------------------------------------------------------------------- transformers


@contextlib.contextmanager
def whisper_attn_double_scaling() -> Iterator[None]:
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

    with (
        patch.dict(mapping, {"sdpa": unscaled(sdpa)}),
        patch.object(whisper, "eager_attention_forward", unscaled(eager)),
    ):
        yield
