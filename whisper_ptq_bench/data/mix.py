"""Reproducible noise mixing in integer PCM: the noisy corpora are derived from clean FLAC and noise tracks.

Only elementwise IEEE operations are used (no reductions), so the mixed samples are bit-identical on
every platform and their sha256 can be pinned in the manifest.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np


def noise_segment(noise: np.ndarray, offset: int, length: int) -> np.ndarray:
    """``length`` samples of the noise track from ``offset``, wrapping around its end."""
    if noise.size == 0:
        raise ValueError("noise track is empty")
    idx = (np.arange(length, dtype=np.int64) + int(offset)) % noise.size
    return noise[idx]


def gain_for_snr(clean: np.ndarray, noise_seg: np.ndarray, snr_db: float) -> float:
    """Gain that puts the noise ``snr_db`` below the clean power; rounded to 6 significant digits (stored)."""
    p_clean = float(np.mean(clean.astype(np.float64) ** 2))
    p_noise = float(np.mean(noise_seg.astype(np.float64) ** 2))
    if p_noise == 0.0:
        raise ValueError("noise segment is silent")
    gain = math.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10)))
    return float(f"{gain:.6g}")


def mix_int16(clean: np.ndarray, noise: np.ndarray, offset: int, gain: float) -> np.ndarray:
    """clean + round(gain * noise[offset:]) in int16, clipped."""
    if clean.dtype != np.int16 or noise.dtype != np.int16:
        raise TypeError("mix_int16 takes int16 PCM")
    seg = noise_segment(noise, offset, clean.size).astype(np.float64)
    mixed = clean.astype(np.int32) + np.rint(seg * float(gain)).astype(np.int32)
    return np.clip(mixed, -32768, 32767).astype(np.int16)


def pcm_sha256(samples: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(samples, dtype="<i2").tobytes()).hexdigest()
