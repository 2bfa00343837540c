"""The quantization stack a run measures: its libraries and their versions, and the warnings they emit."""

from __future__ import annotations

import importlib.metadata
import platform
from contextlib import contextmanager

#: The libraries whose upgrades the suite gates: distribution name -> import name (where their warnings come from).
LIBRARIES = {
    "torch": "torch",
    "transformers": "transformers",
    "optimum-quanto": "optimum",
    "hqq": "hqq",
    "bitsandbytes": "bitsandbytes",
    "torchao": "torchao",
}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu:{platform.machine()}"


def environment(device: str) -> dict:
    """Python, the device and the version of every library of :data:`LIBRARIES` ("not installed" when absent)."""
    env = {"python": platform.python_version(), "device": device_name(device)}
    for lib in LIBRARIES:
        try:
            env[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            env[lib] = "not installed"
    return env


@contextmanager
def radar(out: list[str]):
    """Record the warnings the quantization stack emits inside the block, one line per distinct warning."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                where = str(w.filename).replace("\\", "/")
                lib = next((name for name in LIBRARIES.values() if f"/{name}/" in where), None)
                if lib is None:
                    continue
                line = f"{lib}: {w.category.__name__}: {str(w.message).strip().splitlines()[0][:200]}"
                if line not in out:
                    out.append(line)
