"""Which modules a configuration quantized, to what, and what stayed in floating point; measured size."""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass, field

#: Default scope: every nn.Linear of the encoder and decoder layers. Convolutions, embeddings,
#: positional tables, layer norms and the output projection (proj_out, tied to the embeddings) stay float.
DEFAULT_SCOPE = ("model.encoder.layers.*", "model.decoder.layers.*")


def select(model, patterns=DEFAULT_SCOPE, exclude=()) -> list[str]:
    """Names of the nn.Linear modules matching any pattern (fnmatch) and no exclude pattern."""
    import torch

    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and any(fnmatch.fnmatchcase(name, p) for p in patterns)
        and not any(fnmatch.fnmatchcase(name, p) for p in exclude)
    ]
    if not names:
        raise ValueError(f"scope patterns {list(patterns)} (excluding {list(exclude)}) match no nn.Linear of the model")
    return names


@dataclass(frozen=True)
class ModuleEntry:
    name: str
    kind: str  # class of the fp32 module
    params: int
    format: str  # what it is now: e.g. "int4 g64 asym (HQQ)", or "float32"


@dataclass
class ScopeReport:
    requested: list[str]
    quantized: list[ModuleEntry] = field(default_factory=list)
    floating: list[ModuleEntry] = field(default_factory=list)

    @property
    def beyond(self) -> list[str]:
        """Modules the library changed although the scope did not ask for them."""
        asked = set(self.requested)
        return [m.name for m in self.quantized if m.name not in asked]

    @property
    def missed(self) -> list[str]:
        """Modules in scope that the library left in floating point."""
        done = {m.name for m in self.quantized}
        return [n for n in self.requested if n not in done]

    def summary(self) -> dict:
        formats = Counter(m.format for m in self.quantized)
        return {
            "quantized_modules": len(self.quantized),
            "quantized_params": sum(m.params for m in self.quantized),
            "float_modules": len(self.floating),
            "float_params": sum(m.params for m in self.floating),
            "formats": dict(formats.most_common()),
            "float_kinds": dict(Counter(m.kind for m in self.floating).most_common()),
            "beyond_scope": self.beyond,
            "missed": self.missed,
        }

    def line(self) -> str:
        s = self.summary()
        text = (
            f"{s['quantized_modules']} modules quantized ({s['quantized_params'] / 1e6:.2f}M params: "
            + "; ".join(f"{n}x {f}" for f, n in s["formats"].items())
            + f"), {s['float_modules']} float ({s['float_params'] / 1e6:.2f}M params)"
        )
        if self.beyond:
            text += f"; BEYOND SCOPE: {', '.join(self.beyond[:5])}{'...' if len(self.beyond) > 5 else ''}"
        if self.missed:
            text += (
                f"; NOT QUANTIZED though in scope: {', '.join(self.missed[:5])}{'...' if len(self.missed) > 5 else ''}"
            )
        return text


def _own_params(module) -> list:
    return list(module.parameters(recurse=False))


def unwrap(module):
    inner = getattr(module, "module", None)  # torch.ao QuantWrapper
    return inner if inner is not None and type(module).__name__ == "QuantWrapper" else module


def plain(t) -> bool:
    import torch

    return type(t) in (torch.Tensor, torch.nn.Parameter)


def inspect(reference, quantized, requested: list[str], backend) -> ScopeReport:
    """Compare every parameter-holding module of ``reference`` with its counterpart in ``quantized``."""
    report = ScopeReport(requested=list(requested))
    seen: set[int] = set()
    for name, ref in reference.named_modules():
        params = _own_params(ref)
        if not params:
            continue
        count = sum(p.numel() for p in params if id(p) not in seen)
        seen.update(id(p) for p in params)
        try:
            mod = unwrap(quantized.get_submodule(name))
        except AttributeError:
            report.quantized.append(ModuleEntry(name, type(ref).__name__, count, "replaced (module no longer present)"))
            continue
        fmt = backend.describe(mod)
        if fmt is None:
            qparams = _own_params(mod)
            changed = (
                type(mod) is not type(ref)
                or any(not plain(p) for p in qparams)
                or any(getattr(p, "dtype", None) != getattr(r, "dtype", None) for p, r in zip(qparams, params))
            )
            if changed:
                fmt = f"{type(mod).__name__} ({', '.join(sorted({str(getattr(p, 'dtype', '?')) for p in qparams})) or 'no params'})"
        if fmt is None:
            report.floating.append(
                ModuleEntry(name, type(ref).__name__, count, str(params[0].dtype).removeprefix("torch."))
            )
        else:
            report.quantized.append(ModuleEntry(name, type(ref).__name__, count, fmt))
    return report
