"""Machine profile: what selects kernels (CPU model, instruction-set features, threads; or GPU name and
compute capability). Speed, and the outputs of activation-quantized configurations, depend on it, so they
are gated only against a baseline of the same profile; weight error, size and weight-only outputs are
portable."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

#: CPU flags that decide which kernels torch, oneDNN/fbgemm and the quantization libraries dispatch to.
KERNEL_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "sve",
    "i8mm",
)


CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo(path: Path = CPUINFO) -> tuple[str, set[str]]:
    model, flags = "", set()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model or platform.processor() or platform.machine(), flags


def profile(device: str = "cpu", cpuinfo: Path = CPUINFO) -> dict:
    """The machine profile of ``device`` as a small readable dict."""
    import torch

    if device.startswith("cuda"):
        dev = torch.device(device)
        major, minor = torch.cuda.get_device_capability(dev)
        return {"device": "cuda", "gpu": torch.cuda.get_device_name(dev), "capability": f"{major}.{minor}"}
    model, flags = _cpuinfo(cpuinfo)
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "unknown")()
    return {
        "device": "cpu",
        "arch": platform.machine(),
        "cpu": model,
        "kernels": capability,
        "flags": " ".join(f for f in KERNEL_FLAGS if f in flags),
        "threads": torch.get_num_threads(),
    }


def profile_key(prof: dict) -> str:
    """A short stable key: the device kind plus a hash of the whole profile."""
    blob = json.dumps(prof, sort_keys=True).encode()
    return f"{prof.get('device', 'cpu')}-{hashlib.sha256(blob).hexdigest()[:8]}"


def describe(prof: dict) -> str:
    if prof.get("device") == "cuda":
        return f"{prof.get('gpu')} (compute capability {prof.get('capability')})"
    return f"{prof.get('cpu')} [{prof.get('kernels')}; {prof.get('flags') or 'no SIMD flags'}], {prof.get('threads')} threads"
