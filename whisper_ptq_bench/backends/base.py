"""The backend protocol and its registry: one module per quantization library."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Callable
from typing import ClassVar

from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.errors import ConfigError

#: A calibration pass: runs the (prepared) model over the calibration split, teacher-forced.
Calibrate = Callable[[object], None]

_REGISTRY: dict[str, Backend] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make a backend findable by its ``name``."""
    if cls.name in _REGISTRY:
        raise RuntimeError(f"backend {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def get_backend(name: str) -> Backend:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"backend: no backend named {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def backends() -> dict[str, Backend]:
    """Every registered backend by name (the package ``__init__`` imports each backend module once)."""
    return dict(_REGISTRY)


def validate(configs) -> None:
    """Refuse, before anything runs, configurations of an unknown backend or with options it does not read."""
    for config in configs:
        get_backend(config.backend).check_options(config)


class Backend:
    """One quantization library behind the suite's protocol.

    A backend says whether it can run (``unavailable``), whether it supports a configuration on a
    device (``unsupported``), quantizes the modules named in ``scope`` of a model copy in place
    (``quantize``), describes the modules it produced (``describe``) and reads their weights back
    (``dequantize``).

    ``dequantize(module) -> torch.Tensor | None`` returns the float32 weight matrix, of shape
    (out_features, in_features) and on the CPU, that a module produced by this backend's ``quantize``
    effectively multiplies its input with: the quantized weight expanded by the library's own
    dequantization code where the library has one. It returns None for a module this backend did not
    produce (a plain ``nn.Linear`` among them); the base class always returns None.
    """

    name: ClassVar[str]
    #: the ``key=value`` options of a config id this backend reads: key -> (regex of valid values, meaning)
    options: ClassVar[dict[str, tuple[str, str]]] = {}
    #: import name of the library, and what pip installs to get it
    module: ClassVar[str | None] = None
    requirement: ClassVar[str] = ""

    def kernel_dependent(self, config: QuantConfig) -> bool:
        """Whether ``config``'s outputs depend on which kernels the machine's CPU selects, so that they are
        compared only against a baseline of the same machine profile. Quantized activations run integer
        kernels chosen per CPU; weight-only configurations that dequantize into float matmuls do not."""
        return config.activation is not None

    def check_options(self, config: QuantConfig) -> None:
        """ConfigError naming the option when ``config`` carries one this backend does not read, or a bad value:
        an ignored option would make the case id claim a configuration that did not run."""
        known = ", ".join(f"{k} ({meaning})" for k, (_, meaning) in sorted(self.options.items())) or "none"
        for key, value in config.options:
            if key not in self.options:
                raise ConfigError(f"config {config.id}: {self.name} has no option {key!r}; its options: {known}")
            if not re.fullmatch(self.options[key][0], value):
                raise ConfigError(
                    f"config {config.id}: option {key}={value!r} is not valid for {self.name}; {key} is {self.options[key][1]}"
                )

    def needs_calibration(self, config: QuantConfig) -> bool:
        """Whether ``quantize`` needs a calibration pass: static schemes observe activations."""
        return config.scheme == "static"

    def version(self) -> str:
        if not self.module:
            return ""
        try:
            return importlib.metadata.version(self.requirement.split("[")[0].split("=")[0].split(">")[0])
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def unavailable(self) -> str | None:
        """None when the library imports; else a reason that says what to install."""
        if self.module and importlib.util.find_spec(self.module) is None:
            return f"{self.name}: library {self.module!r} is not installed (pip install {self.requirement})"
        return None

    def unsupported(self, config: QuantConfig, device: str) -> str | None:
        """None when ``config`` runs here; else the reason it is skipped."""
        raise NotImplementedError

    def quantize(self, model, config: QuantConfig, scope: list[str], device: str, calibrate: Calibrate | None = None):
        """Quantize the modules named in ``scope``; return the quantized model (same object or a new one)."""
        raise NotImplementedError

    def describe(self, module) -> str | None:
        """The format of a module this library produced (e.g. 'int4 g64 asym'), None if not one of its own."""
        return None

    def dequantize(self, module):
        """The float32 (out_features, in_features) CPU weight ``module`` computes with; None if not one of its own."""
        return None


def replace_module(model, name: str, new) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
