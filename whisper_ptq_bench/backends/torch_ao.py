"""PyTorch eager-mode quantization (torch.ao.quantization): dynamic int8/fp16 and static int8."""

from __future__ import annotations

from whisper_ptq_bench.backends.base import Backend, register, replace_module


@register
class TorchEager(Backend):
    name = "torch-ao"
    module = "torch"
    requirement = "torch"

    def unsupported(self, config, device):
        if device != "cpu":
            return "torch-ao: eager-mode quantized kernels (fbgemm/x86) run on CPU only"
        if config.scheme == "weight-only":
            return "torch-ao: eager mode has no weight-only scheme (use torchao for that)"
        if config.scheme == "dynamic":
            if config.weight == "fp16" and config.activation == "fp16":
                return None
            if (
                config.weight == "int8"
                and config.activation == "int8"
                and config.granularity in ("per-tensor", "per-channel")
            ):
                return None
            return f"torch-ao: dynamic supports int8 (per-tensor/per-channel) or fp16 weights, not {config.id}"
        if config.scheme == "static":
            if (
                config.weight == "int8"
                and config.activation == "int8"
                and config.granularity in ("per-tensor", "per-channel")
            ):
                return None
            return f"torch-ao: static supports int8 weights and activations per-tensor/per-channel, not {config.id}"
        return f"torch-ao: unsupported scheme {config.scheme}"

    def _weight_observer(self, config):
        import torch
        from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

        sym = config.method == "symmetric"
        if config.granularity == "per-channel":
            scheme = torch.per_channel_symmetric if sym else torch.per_channel_affine
            return PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=scheme)
        scheme = torch.per_tensor_symmetric if sym else torch.per_tensor_affine
        return MinMaxObserver.with_args(dtype=torch.qint8, qscheme=scheme)

    def quantize(self, model, config, scope, device, calibrate=None):
        import torch
        from torch.ao.quantization import QConfig, float16_dynamic_qconfig, quantize_dynamic
        from torch.ao.quantization.observer import MinMaxObserver, default_dynamic_quant_observer

        if config.scheme == "dynamic":
            if config.weight == "fp16":
                qconfig = float16_dynamic_qconfig
                dtype = torch.float16
            else:
                qconfig = QConfig(activation=default_dynamic_quant_observer, weight=self._weight_observer(config))
                dtype = torch.qint8
            return quantize_dynamic(model, {name: qconfig for name in scope}, dtype=dtype, inplace=True)

        # static: wrap each Linear in Quant/DeQuant stubs, observe on the calibration split, convert
        from torch.ao.quantization import QuantWrapper, convert, prepare

        if calibrate is None:
            raise ValueError("torch-ao static quantization needs a calibration pass")
        if config.method == "symmetric":  # quint8 symmetric: zero point 128, full range
            act = MinMaxObserver.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric)
        else:  # fbgemm's recommended reduce_range avoids int16 accumulation overflow
            act = MinMaxObserver.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=True)
        qconfig = QConfig(activation=act, weight=self._weight_observer(config))
        for name in scope:
            wrapper = QuantWrapper(model.get_submodule(name))
            wrapper.qconfig = qconfig
            replace_module(model, name, wrapper)
        prepare(model, inplace=True)
        calibrate(model)
        convert(model, inplace=True)
        return model

    def describe(self, module):
        import torch

        qmod = getattr(module, "module", module)  # a QuantWrapper holds the quantized Linear in .module
        if isinstance(qmod, torch.ao.nn.quantized.dynamic.Linear):
            dtype = qmod._packed_params.dtype
            if dtype == torch.float16:
                return "fp16 weights, dynamic fp16"
            w = qmod.weight()
            return f"int8 {_qscheme(w)}, dynamic int8 activations"
        if isinstance(qmod, torch.ao.nn.quantized.Linear):
            return f"int8 {_qscheme(qmod.weight())}, static int8 activations"
        return None

    def dequantize(self, module):
        import torch

        from whisper_ptq_bench.scope import unwrap

        qmod = unwrap(module)  # static modules sit inside a QuantWrapper
        if not isinstance(qmod, torch.ao.nn.quantized.Linear):  # the dynamic Linear is a subclass
            return None
        w = qmod.weight()  # a quantized int8 tensor, or (dynamic fp16) the fp16 weight unpacked as float
        return (w.dequantize() if w.is_quantized else w).float().cpu()


def _qscheme(w) -> str:
    import torch

    return {
        torch.per_tensor_symmetric: "per-tensor sym",
        torch.per_tensor_affine: "per-tensor asym",
        torch.per_channel_symmetric: "per-channel sym",
        torch.per_channel_affine: "per-channel asym",
    }.get(w.qscheme(), str(w.qscheme()))
