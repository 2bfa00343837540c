"""bitsandbytes: LLM.int8 (with and without the outlier threshold), nf4 and fp4 with optional double quantization."""

from __future__ import annotations

from whisper_ptq_bench.backends.base import Backend, register, replace_module

_BLOCKSIZES = (64, 128, 256, 512, 1024, 2048, 4096)


@register
class BitsAndBytes(Backend):
    name = "bnb"
    module = "bitsandbytes"
    requirement = "bitsandbytes"
    options = {
        "threshold": (r"\d+", "LLM.int8's outlier threshold, a whole number (0: no outliers kept in fp16)"),
        "dq": (r"[01]", "double quantization of the 4-bit absmax scales, 0 or 1"),
    }

    def unsupported(self, config, device):
        if config.weight == "int8":
            if config.scheme != "dynamic" or config.activation != "int8":
                return "bnb: LLM.int8 quantizes activations dynamically (vector-wise), so int8 needs scheme dynamic with int8 activations"
            if config.granularity != "per-channel" or config.method != "symmetric":
                return "bnb: LLM.int8 weights are per output row (channel), absmax-symmetric"
            if config.option("dq") is not None:
                return "bnb: dq (double quantization) applies to the 4-bit formats, not LLM.int8"
            return None
        if config.weight in ("nf4", "fp4"):
            if config.scheme != "weight-only":
                return "bnb: 4-bit formats are weight-only"
            if config.granularity != "per-group" or config.group_size not in _BLOCKSIZES:
                return f"bnb: 4-bit formats use absmax blocks of {list(_BLOCKSIZES)}, not {config.granularity} {config.group_size}"
            if config.option("threshold") is not None:
                return "bnb: threshold (LLM.int8's outlier threshold) applies to int8, not the 4-bit formats"
            return None
        return f"bnb: weights {config.weight} are not offered (int8, nf4, fp4)"

    def kernel_dependent(self, config) -> bool:
        """Always: on CPUs with AVX512-BF16 bitsandbytes repacks 4-bit weights for a bf16 kernel at the first
        forward, elsewhere it runs float32; LLM.int8 quantizes activations."""
        return True

    def quantize(self, model, config, scope, device, calibrate=None):
        import bitsandbytes as bnb
        import torch

        for name in scope:
            lin = model.get_submodule(name)
            has_bias = lin.bias is not None
            if config.weight == "int8":
                new = bnb.nn.Linear8bitLt(
                    lin.in_features,
                    lin.out_features,
                    bias=has_bias,
                    has_fp16_weights=False,
                    threshold=float(config.option("threshold", "6")),
                )
                new.weight = bnb.nn.Int8Params(lin.weight.data.clone(), requires_grad=False, has_fp16_weights=False)
            else:
                new = bnb.nn.Linear4bit(
                    lin.in_features,
                    lin.out_features,
                    bias=has_bias,
                    compute_dtype=torch.float32,
                    compress_statistics=config.option("dq") == "1",
                    quant_type=config.weight,
                )
                new.weight = bnb.nn.Params4bit(
                    lin.weight.data.clone(),
                    requires_grad=False,
                    quant_type=config.weight,
                    blocksize=config.group_size,
                    compress_statistics=config.option("dq") == "1",
                )
            if has_bias:
                new.bias = torch.nn.Parameter(lin.bias.data.clone(), requires_grad=False)
            replace_module(model, name, new.to(device))  # moving the parameters quantizes them
        return model

    def describe(self, module):
        import bitsandbytes as bnb

        if isinstance(module, bnb.nn.Linear8bitLt):
            return f"int8 per-row absmax (LLM.int8, outlier threshold {module.state.threshold:g})"
        if isinstance(module, bnb.nn.Linear4bit):
            state = module.weight.quant_state
            if state is None:
                return "4-bit (not yet quantized)"
            return f"{state.quant_type} block {state.blocksize}{' double-quant' if state.nested else ''}"
        return None

    def dequantize(self, module):
        import bitsandbytes as bnb

        if isinstance(module, bnb.nn.Linear8bitLt):
            # CB is the int8 weight data; SCB (row absmax) sits on the weight until the first forward
            # (init_8bit_state) moves it to module.state
            scb = module.weight.SCB if module.weight.SCB is not None else module.state.SCB
            return (module.weight.data.float() * scb.float()[:, None] / 127).cpu()
        if isinstance(module, bnb.nn.Linear4bit):
            data, state = module.weight.data, module.weight.quant_state
            if getattr(state, "packing_format_for_cpu", False):
                data, state = _unpack_cpu_layout(data, state)
            return bnb.functional.dequantize_4bit(data, state).float().cpu()
        return None


def _unpack_cpu_layout(data, state):
    """Undo the AVX512-BF16 layout that Linear4bit's first CPU forward repacks the weight into.

    That layout keeps the block absmax de-nested, in bfloat16, as a (blocks per row, rows) matrix: the
    scales the kernel multiplies with. bitsandbytes' inverse restores the packed codes; the absmax is
    flattened here, because the inverse leaves it transposed (and re-quantizes it when it was nested).
    """
    import copy

    import torch
    from bitsandbytes.functional import QuantState, _convert_weight_packed_for_cpu_inverse

    plain = copy.copy(state)  # the inverse sets attributes on the state it is given
    plain.original_nested = False
    codes, _ = _convert_weight_packed_for_cpu_inverse(data, plain)
    absmax = state.absmax.T.reshape(-1).float()
    return codes, QuantState(
        absmax=absmax,
        shape=state.shape,
        code=state.code,
        blocksize=state.blocksize,
        quant_type=state.quant_type,
        dtype=torch.float32,
    )
