"""Optimum-Quanto: int8/int4/int2/float8 weights, optionally with calibrated int8/float8 activations."""

from __future__ import annotations

from whisper_ptq_bench.backends.base import Backend, register

_WEIGHTS = {"int8": "qint8", "int4": "qint4", "int2": "qint2", "fp8": "qfloat8"}
_ACTS = {"int8": "qint8", "fp8": "qfloat8"}


@register
class Quanto(Backend):
    name = "quanto"
    module = "optimum.quanto"
    requirement = "optimum-quanto"

    def unsupported(self, config, device):
        if config.weight not in _WEIGHTS:
            return f"quanto: weights {config.weight} are not offered (int8, int4, int2, fp8)"
        if config.scheme == "dynamic":
            return "quanto: activations are quantized statically (calibrated), not dynamically"
        if config.scheme == "static" and config.activation not in _ACTS:
            return f"quanto: activations {config.activation} are not offered (int8, fp8)"
        if config.weight in ("int8", "fp8"):
            if config.granularity != "per-channel" or config.method != "symmetric":
                return "quanto: 8-bit weights are quantized per output channel, symmetrically"
        else:
            if config.granularity != "per-group" or config.method != "asymmetric" or config.group_size != 128:
                return "quanto: 2/4-bit weights are quantized per group of 128 (fewer when the width needs), asymmetrically"
        return None

    def quantize(self, model, config, scope, device, calibrate=None):
        from optimum import quanto

        weights = getattr(quanto, _WEIGHTS[config.weight])
        activations = getattr(quanto, _ACTS[config.activation]) if config.scheme == "static" else None
        quanto.quantize(model, weights=weights, activations=activations, include=list(scope))
        if activations is not None:
            if calibrate is None:
                raise ValueError("quanto activation quantization needs a calibration pass")
            with quanto.Calibration():
                calibrate(model)
        quanto.freeze(model)
        return model

    def describe(self, module):
        qtype = getattr(module, "weight_qtype", None)
        if qtype is None:
            return None
        text = f"{qtype.name}"
        group = getattr(module, "weight_group_size", None)
        text += f" g{group}" if group else " per-channel"
        act = getattr(module, "activation_qtype", None)
        if act is not None:
            text += f", {act.name} activations (static)"
        return text

    def dequantize(self, module):
        from optimum.quanto import QModuleMixin

        if not isinstance(module, QModuleMixin) or module.weight_qtype is None:
            return None
        return module.qweight.dequantize().float().cpu()
