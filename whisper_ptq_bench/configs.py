"""QuantConfig: one point of the design space (scheme, method, granularity, bit-width) for one library.

``QuantConfig.id`` is the pytest parameter id, the key in baselines.json and the ``-k`` handle:

    {backend}.{scheme}-{weight}[.a-{activation}][.{granularity}][.{method}][.{option}=value...]

e.g. ``hqq.w-int4.g64.asym``, ``torch-ao.dyn-int8.a-int8.channel.sym``, ``bnb.w-nf4.g64.sym.dq=1``;
the fp32 reference is ``fp32``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from whisper_ptq_bench.errors import ConfigError

SCHEMES = {"none": "", "weight-only": "w", "dynamic": "dyn", "static": "static"}
_SCHEME_BY_CODE = {v: k for k, v in SCHEMES.items() if v}
METHODS = {"symmetric": "sym", "asymmetric": "asym"}
_METHOD_BY_CODE = {v: k for k, v in METHODS.items()}
GRANULARITIES = ("per-tensor", "per-channel", "per-group")
#: weight format -> bits per weight element (before scales)
WEIGHT_FORMATS = {
    "fp32": 32,
    "fp16": 16,
    "fp8": 8,
    "int8": 8,
    "int4": 4,
    "int3": 3,
    "int2": 2,
    "int1": 1,
    "nf4": 4,
    "fp4": 4,
}
CODEBOOK_FORMATS = {"nf4", "fp4"}
FLOAT_FORMATS = {"fp32", "fp16"}
ACTIVATION_FORMATS = ("int8", "fp8", "fp16")
_TOKEN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_OPTION_VALUE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class QuantConfig:
    """A validated, hashable quantization configuration."""

    backend: str
    weight: str
    scheme: str = "weight-only"
    activation: str | None = None
    granularity: str | None = None
    group_size: int | None = None
    method: str | None = None
    options: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self):
        if not isinstance(self.backend, str) or not _TOKEN.match(self.backend):
            raise ConfigError(f"backend: {self.backend!r} is not a lowercase name such as 'hqq' or 'torch-ao'")
        if self.weight not in WEIGHT_FORMATS:
            raise ConfigError(f"weight: {self.weight!r} is not a weight format; choose one of {sorted(WEIGHT_FORMATS)}")
        if self.scheme not in SCHEMES:
            raise ConfigError(f"scheme: {self.scheme!r} is not one of {sorted(SCHEMES)}")
        if (self.backend == "none") != (self.scheme == "none"):
            raise ConfigError("scheme: 'none' goes with backend 'none' (the fp32 reference) and only with it")
        if self.scheme == "none" and self.weight != "fp32":
            raise ConfigError(f"weight: the unquantized reference keeps fp32 weights, not {self.weight!r}")
        if self.scheme in ("dynamic", "static"):
            if self.activation not in ACTIVATION_FORMATS:
                raise ConfigError(
                    f"activation: scheme {self.scheme!r} quantizes activations, so activation must be one of "
                    f"{list(ACTIVATION_FORMATS)}, not {self.activation!r}"
                )
        elif self.activation is not None:
            raise ConfigError(
                f"activation: scheme {self.scheme!r} keeps activations in floating point; drop activation={self.activation!r}"
            )
        if self.weight in FLOAT_FORMATS:
            if self.granularity is not None or self.method is not None or self.group_size is not None:
                raise ConfigError(f"granularity/method: {self.weight} weights are not scaled, so neither applies")
        else:
            if self.granularity not in GRANULARITIES:
                raise ConfigError(
                    f"granularity: {self.weight} weights need one of {list(GRANULARITIES)}, not {self.granularity!r}"
                )
            if self.granularity == "per-group":
                if not isinstance(self.group_size, int) or isinstance(self.group_size, bool) or self.group_size < 1:
                    raise ConfigError(
                        f"group_size: per-group granularity needs a positive integer group size, not {self.group_size!r}"
                    )
            elif self.group_size is not None:
                raise ConfigError(
                    f"group_size: only per-group granularity takes a group size (granularity is {self.granularity!r})"
                )
            if self.method not in METHODS:
                raise ConfigError(
                    f"method: {self.weight} weights need 'symmetric' or 'asymmetric', not {self.method!r}"
                )
            if self.weight in CODEBOOK_FORMATS | {"fp8"} and self.method != "symmetric":
                raise ConfigError(
                    f"method: {self.weight} is scaled by an absolute maximum, so it is symmetric by construction"
                )
        opts = dict(self.options)
        if len(opts) != len(self.options):
            raise ConfigError(f"options: a key is repeated in {self.options!r}")
        for key, value in self.options:
            if not _TOKEN.match(str(key)) or not _OPTION_VALUE.match(str(value)):
                raise ConfigError(
                    f"options: {key!r}={value!r} must be lowercase-name=alphanumeric (no dots or slashes)"
                )
        if tuple(sorted(self.options)) != tuple(self.options):
            object.__setattr__(self, "options", tuple(sorted(self.options)))

    # ------------------------------------------------------------------ derived
    @property
    def bits(self) -> int:
        return WEIGHT_FORMATS[self.weight]

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    @property
    def id(self) -> str:
        if self.scheme == "none":
            return "fp32"
        parts = [self.backend, f"{SCHEMES[self.scheme]}-{self.weight}"]
        if self.activation:
            parts.append(f"a-{self.activation}")
        if self.granularity == "per-group":
            parts.append(f"g{self.group_size}")
        elif self.granularity:
            parts.append(self.granularity.removeprefix("per-"))
        if self.method:
            parts.append(METHODS[self.method])
        parts += [f"{k}={v}" for k, v in self.options]
        return ".".join(parts)

    def __str__(self) -> str:
        return self.id

    def axes(self) -> dict:
        """The design axes as a flat dict (for reports and benchmark extra_info)."""
        return {
            "backend": self.backend,
            "scheme": self.scheme,
            "method": self.method or "-",
            "granularity": (f"per-group({self.group_size})" if self.granularity == "per-group" else self.granularity)
            or "-",
            "weight": self.weight,
            "bits": self.bits,
            "activation": self.activation or "-",
            "options": dict(self.options),
        }

    @classmethod
    def from_id(cls, text: str) -> QuantConfig:
        """Parse an id back into a config; the message names the part that does not parse."""
        if text == "fp32":
            return REFERENCE
        parts = text.split(".")
        if len(parts) < 2:
            raise ConfigError(
                f"config id {text!r}: expected '{{backend}}.{{scheme}}-{{weight}}...', e.g. 'hqq.w-int4.g64.asym'"
            )
        backend, head, rest = parts[0], parts[1], parts[2:]
        code, _, weight = head.partition("-")
        if code not in _SCHEME_BY_CODE:
            raise ConfigError(f"config id {text!r}: scheme code {code!r} is not one of {sorted(_SCHEME_BY_CODE)}")
        kwargs: dict = {"backend": backend, "scheme": _SCHEME_BY_CODE[code], "weight": weight}
        options = []
        for part in rest:
            if part.startswith("a-") and "activation" not in kwargs:
                kwargs["activation"] = part[2:]
            elif part in ("tensor", "channel"):
                kwargs["granularity"] = f"per-{part}"
            elif re.fullmatch(r"g\d+", part):
                kwargs["granularity"], kwargs["group_size"] = "per-group", int(part[1:])
            elif part in _METHOD_BY_CODE:
                kwargs["method"] = _METHOD_BY_CODE[part]
            elif "=" in part:
                key, _, value = part.partition("=")
                options.append((key, value))
            else:
                raise ConfigError(
                    f"config id {text!r}: part {part!r} is not an activation, granularity, method or option"
                )
        cfg = cls(**kwargs, options=tuple(options))
        if cfg.id != text:
            raise ConfigError(f"config id {text!r} is not in canonical form; write it as {cfg.id!r}")
        return cfg


REFERENCE = QuantConfig(backend="none", weight="fp32", scheme="none")


# The matrices. Each axis the study varied is varied here with the others held fixed:
# scheme (dyn/static/w), method (sym/asym), granularity (tensor/channel/g32/g64/g128), bits (8..1, nf4, fp4, fp8).
SMOKE = [
    "fp32",
    "torch-ao.dyn-int8.a-int8.tensor.sym",
    "torchao.w-int8.channel.sym",
    "quanto.w-int8.channel.sym",
    "hqq.w-int4.g64.asym",
    "bnb.w-nf4.g64.sym",
]
DEFAULT = [
    "fp32",
    # PyTorch eager (torch.ao.quantization): dynamic vs static, sym vs asym, tensor vs channel, int8 vs fp16
    "torch-ao.dyn-int8.a-int8.tensor.sym",
    "torch-ao.dyn-int8.a-int8.tensor.asym",
    "torch-ao.dyn-int8.a-int8.channel.sym",
    "torch-ao.dyn-fp16.a-fp16",
    "torch-ao.static-int8.a-int8.tensor.sym",
    "torch-ao.static-int8.a-int8.tensor.asym",
    "torch-ao.static-int8.a-int8.channel.sym",
    # torchao: int8 dynamic, int8 weight-only (tensor vs channel), intx weight-only (sym vs asym)
    "torchao.dyn-int8.a-int8.channel.sym",
    "torchao.w-int8.channel.sym",
    "torchao.w-int8.tensor.sym",
    "torchao.w-int4.g32.sym",
    "torchao.w-int4.g32.asym",
    # Optimum-Quanto: weights int8/int4/fp8, and int8 weights with calibrated int8 activations
    "quanto.w-int8.channel.sym",
    "quanto.w-int4.g128.asym",
    "quanto.w-fp8.channel.sym",
    "quanto.static-int8.a-int8.channel.sym",
    # HQQ: bits 8..2 at g64, and the group size axis at 4 bits
    "hqq.w-int8.g64.asym",
    "hqq.w-int4.g32.asym",
    "hqq.w-int4.g64.asym",
    "hqq.w-int4.g128.asym",
    "hqq.w-int3.g64.asym",
    "hqq.w-int2.g64.asym",
    # bitsandbytes: LLM.int8 with/without outlier threshold, nf4/fp4, double quantization
    "bnb.dyn-int8.a-int8.channel.sym.threshold=6",
    "bnb.dyn-int8.a-int8.channel.sym.threshold=0",
    "bnb.w-nf4.g64.sym",
    "bnb.w-nf4.g64.sym.dq=1",
    "bnb.w-fp4.g64.sym",
]
FULL_EXTRA = [
    "torchao.w-int4.g128.asym",
    "torchao.w-int8.g64.sym",
    "torchao.w-int2.g32.asym",
    "quanto.w-int2.g128.asym",
    "quanto.static-fp8.a-fp8.channel.sym",
    "hqq.w-int8.g32.asym",
    "hqq.w-int3.g32.asym",
    "hqq.w-int2.g32.asym",
    "hqq.w-int2.g16.asym",
    "hqq.w-int1.g64.asym",
    "hqq.w-int4.channel.asym",
    "bnb.w-fp4.g64.sym.dq=1",
    "torchao.w-int4.g128.asym.kernel=tinygemm",
]
MATRICES = {"smoke": SMOKE, "default": DEFAULT, "full": DEFAULT + FULL_EXTRA}


def matrix(name: str) -> list[QuantConfig]:
    """The configurations of a named matrix, or of a comma list of ids."""
    if name in MATRICES:
        ids = MATRICES[name]
    else:
        ids = [p.strip() for p in name.split(",") if p.strip()]
        if not ids:
            raise ConfigError(f"--ptq-matrix: {name!r} is neither {sorted(MATRICES)} nor a comma list of config ids")
    configs = [QuantConfig.from_id(i) for i in ids]
    if REFERENCE not in configs:
        configs.insert(0, REFERENCE)  # speed and WER differences are measured against it
    return list(dict.fromkeys(configs))
