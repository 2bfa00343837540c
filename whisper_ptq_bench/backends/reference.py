"""The unquantized fp32 reference."""

from __future__ import annotations

from whisper_ptq_bench.backends.base import Backend, register


@register
class Reference(Backend):
    name = "none"

    def unsupported(self, config, device):
        return None

    def quantize(self, model, config, scope, device, calibrate=None):
        return model

    def dequantize(self, module):
        """None: the reference quantizes nothing, so no module is one of its own."""
        return None
