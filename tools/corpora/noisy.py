"""``real-other`` and ``synth-other``: clean utterances with pink noise or babble, described by ``mix`` blocks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tools.corpora.common import read_pcm, write_manifest
from whisper_ptq_bench.data.mix import gain_for_snr, mix_int16, noise_segment, pcm_sha256

MIX_PLAN = (("pink", 5.0), ("babble", 10.0))  # even-indexed utterances get pink at 5 dB, odd babble at 10 dB
DESCRIPTION = "{clean} with pink noise at 5 dB SNR (even-indexed utterances) or babble at 10 dB SNR (odd-indexed)"


def mix_offset(utt_id: str, track_len: int) -> int:
    """Where utterance ``utt_id``'s noise starts in a track: the first 48 bits of sha256(id), modulo its length."""
    return int(hashlib.sha256(utt_id.encode("utf-8")).hexdigest()[:12], 16) % track_len


def noisy_entry(entry: dict, clean_name: str, pcm: np.ndarray, index: int, tracks: dict[str, np.ndarray]) -> dict:
    """The manifest entry of clean ``entry`` (the ``index``-th, audio ``pcm``) mixed by MIX_PLAN."""
    kind, snr = MIX_PLAN[index % 2]
    track = tracks[kind]
    offset = mix_offset(entry["id"], track.size)
    gain = gain_for_snr(pcm, noise_segment(track, offset, pcm.size), snr)
    mixed = mix_int16(pcm, track, offset, gain)
    noisy = dict(entry)
    noisy.update(
        file=f"../{clean_name}/{entry['file']}",
        sha256=pcm_sha256(mixed),
        source=f"{entry['source']}; mixed with {kind} noise at {snr:g} dB SNR",
        mix={"noise": f"../noise/{kind}.flac", "offset": offset, "gain": gain, "snr_db": snr, "kind": kind},
    )
    return noisy


def build_noisy(
    out: Path,
    clean_name: str,
    name: str,
    description: str,
    clean: list[dict],
    tracks: dict[str, np.ndarray],
    tools: dict,
) -> list[dict]:
    entries = [
        noisy_entry(entry, clean_name, read_pcm(out / clean_name / entry["file"]), i, tracks)
        for i, entry in enumerate(clean)
    ]
    write_manifest(out / name, name, description, "pcm-s16le", tools, entries, derived_from=clean_name)
    return entries
