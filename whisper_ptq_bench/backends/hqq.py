"""HQQ (half-quadratic quantization): 8/4/3/2/1-bit affine weights per group, no calibration data.

HQQ's ``AutoHQQHFModel`` does not recognise Whisper's layout, so each Linear of the scope is replaced
by an ``HQQLinear`` directly (the same layer the HF integration builds).
"""

from __future__ import annotations

from whisper_ptq_bench.backends.base import Backend, register, replace_module

_BITS = {"int8": 8, "int4": 4, "int3": 3, "int2": 2, "int1": 1}
#: GPU inference kernels of HQQ, chosen with option backend=...; CPU always runs the pure PyTorch path.
GPU_BACKENDS = ("torchao_int4", "gemlite", "bitblas")
#: The dtype each kernel computes in. HQQ's layers do not cast their input, so the whole model runs in it:
#: torchao_int4 (torch's tinygemm) takes bfloat16 only, gemlite and bitblas float16. Without a kernel the
#: layers compute in float32 like the rest of the model (a float16 layer in a float32 model fails).
KERNEL_DTYPES = {"torchao_int4": "bfloat16", "gemlite": "float16", "bitblas": "float16"}


@register
class Hqq(Backend):
    name = "hqq"
    module = "hqq"
    requirement = "hqq"
    options = {"backend": ("|".join(GPU_BACKENDS), f"an HQQ GPU kernel backend: {', '.join(GPU_BACKENDS)}")}

    def unsupported(self, config, device):
        if config.scheme != "weight-only":
            return "hqq: weight-only quantization only (no activation quantization)"
        if config.weight not in _BITS:
            return f"hqq: weights {config.weight} are not offered (int8, int4, int3, int2, int1)"
        if config.method != "asymmetric":
            return "hqq: scales and zero points are fitted per group, so the method is asymmetric"
        if config.granularity == "per-tensor":
            return "hqq: quantizes per group or per channel, not per tensor"
        if config.granularity == "per-group" and config.group_size % 8:
            return f"hqq: group size {config.group_size} must be a multiple of 8"
        kernel = config.option("backend")
        if kernel is not None:
            if not device.startswith("cuda"):
                return f"hqq: the {kernel} backend needs a CUDA device"
            odd_group = config.granularity == "per-group" and config.group_size not in (32, 64, 128, 256)
            if kernel == "torchao_int4" and (config.weight != "int4" or odd_group):
                return "hqq: the torchao_int4 backend is int4 with group size 32, 64, 128 or 256 (or per channel)"
            if kernel == "bitblas" and config.weight not in ("int4", "int2", "int1"):
                return "hqq: the bitblas backend takes int4, int2 or int1 weights"
        return None

    def quantize(self, model, config, scope, device, calibrate=None):
        import torch
        from hqq.core.quantize import BaseQuantizeConfig, HQQBackend, HQQLinear

        HQQLinear.set_backend(HQQBackend.PYTORCH)
        group = config.group_size if config.granularity == "per-group" else None
        qcfg = BaseQuantizeConfig(nbits=_BITS[config.weight], group_size=group, axis=1)
        kernel = config.option("backend")
        dtype = getattr(torch, KERNEL_DTYPES.get(kernel, "float32"))
        model.to(dtype)
        for name in scope:
            layer = HQQLinear(model.get_submodule(name), qcfg, compute_dtype=dtype, device=device, del_orig=True)
            replace_module(model, name, layer)
        if kernel:
            from hqq.utils.patching import prepare_for_inference

            prepare_for_inference(model, backend=kernel)
        return model

    def describe(self, module):
        meta = getattr(module, "meta", None)
        if meta is None or "nbits" not in meta:
            return None
        group = meta.get("group_size")
        return f"int{meta['nbits']} {'g' + str(group) if group else 'per-channel'} asym (HQQ, axis {meta.get('axis')})"

    def dequantize(self, module):
        from hqq.core.quantize import HQQLinear

        if not isinstance(module, HQQLinear):
            return None
        return module.dequantize().float().cpu()
