"""Quantization backends, one module per library, found through a registry."""

from whisper_ptq_bench.backends.base import Backend, Calibrate, backends, get_backend, register

__all__ = ["Backend", "Calibrate", "backends", "get_backend", "register"]
