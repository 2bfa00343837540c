"""torchao ``quantize_`` configurations: int8 dynamic, int8 weight-only, intx weight-only, int4 (CUDA)."""

from __future__ import annotations

from whisper_ptq_bench.backends.base import Backend, register

_INTX = {"int8": 8, "int4": 4, "int3": 3, "int2": 2, "int1": 1}


@register
class TorchAo(Backend):
    name = "torchao"
    module = "torchao"
    requirement = "torchao"
    options = {"kernel": ("tinygemm", "tinygemm: Int4WeightOnlyConfig's CUDA kernel")}

    def unsupported(self, config, device):
        kernel = config.option("kernel")
        if kernel == "tinygemm":
            if not device.startswith("cuda"):
                return "torchao: Int4WeightOnlyConfig (tinygemm kernel) needs a CUDA device"
            if not (config.scheme == "weight-only" and config.weight == "int4" and config.granularity == "per-group"):
                return "torchao: the tinygemm kernel is int4 weight-only per-group"
            return None
        if config.scheme == "dynamic":
            if (
                config.weight == "int8"
                and config.activation == "int8"
                and config.method == "symmetric"
                and config.granularity in ("per-tensor", "per-channel")
            ):
                return None
            return f"torchao: Int8DynamicActivationInt8WeightConfig is int8 symmetric per-tensor/per-channel, not {config.id}"
        if config.scheme == "weight-only":
            if config.weight == "int8" and config.method == "symmetric":
                return None
            if config.weight in _INTX and config.granularity in ("per-group", "per-channel"):
                return None
            return f"torchao: no weight-only configuration for {config.id}"
        return f"torchao: scheme {config.scheme} is not offered (static needs a calibration flow torchao does not ship for Linear)"

    def _config(self, config):
        import torch
        from torchao.quantization import (
            Int4WeightOnlyConfig,
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
            IntxWeightOnlyConfig,
            MappingType,
            PerAxis,
            PerGroup,
            PerRow,
            PerTensor,
        )

        if config.option("kernel") == "tinygemm":
            # The format is named: since 0.13 torchao's default int4 format changes between releases (0.18:
            # "plain", which needs the mslk package), and the option means torch's tinygemm kernel.
            import dataclasses

            if "int4_packing_format" not in {f.name for f in dataclasses.fields(Int4WeightOnlyConfig)}:
                return Int4WeightOnlyConfig(group_size=config.group_size)  # before 0.13: tinygemm's layout only
            return Int4WeightOnlyConfig(group_size=config.group_size, int4_packing_format="tile_packed_to_4d")
        gran = {"per-tensor": PerTensor(), "per-channel": PerRow()}.get(config.granularity)
        if config.scheme == "dynamic":
            return Int8DynamicActivationInt8WeightConfig(granularity=gran)
        if config.weight == "int8":
            if config.granularity == "per-group":
                return Int8WeightOnlyConfig(granularity=PerGroup(config.group_size))
            return Int8WeightOnlyConfig(granularity=gran)
        mapping = MappingType.SYMMETRIC if config.method == "symmetric" else MappingType.ASYMMETRIC
        granularity = PerGroup(config.group_size) if config.granularity == "per-group" else PerAxis(0)
        return IntxWeightOnlyConfig(
            weight_dtype=getattr(torch, f"int{_INTX[config.weight]}"), granularity=granularity, mapping_type=mapping
        )

    def quantize(self, model, config, scope, device, calibrate=None):
        import torch
        from torchao.quantization import quantize_

        wanted = set(scope)
        if config.option("kernel") == "tinygemm":
            # tinygemm packs bfloat16 weights only; it casts activations to bfloat16 and its output back
            for name in scope:
                model.get_submodule(name).to(torch.bfloat16)
        quantize_(model, self._config(config), filter_fn=lambda module, fqn: fqn in wanted)
        return model

    def describe(self, module):
        import torch

        weight = getattr(module, "weight", None)
        if weight is None or type(weight) in (torch.Tensor, torch.nn.Parameter):
            return None
        inner = getattr(weight, "original_weight_tensor", weight)  # activation-quantized wrappers hold the weight
        name = type(inner).__name__
        parts = [name]
        for attr in ("block_size", "dtype", "target_dtype"):
            if hasattr(inner, attr) and attr != "dtype":
                parts.append(f"{attr}={list(getattr(inner, attr)) if attr == 'block_size' else getattr(inner, attr)}")
        if inner is not weight:
            parts.append("dynamic activations")
        return " ".join(parts)

    def dequantize(self, module):
        from torchao.utils import TorchAOBaseTensor

        weight = getattr(module, "weight", None)
        if not isinstance(weight, TorchAOBaseTensor):
            return None
        inner = getattr(weight, "original_weight_tensor", weight)  # activation-quantized wrappers hold the weight
        return inner.dequantize().float().cpu()
