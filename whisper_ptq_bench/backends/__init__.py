"""Quantization backends, one module per library, found through a registry.

Importing a backend module registers it (``@register``); the registry is exactly the modules imported here.
"""

from whisper_ptq_bench.backends import bnb, hqq, quanto, reference, torch_ao, torchao  # noqa: F401  (registration)
from whisper_ptq_bench.backends.base import Backend, Calibrate, backends, get_backend, register, validate

__all__ = ["Backend", "Calibrate", "backends", "get_backend", "register", "validate"]
