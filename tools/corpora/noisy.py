"""The ``-other`` corpora: clean utterances with pink noise or babble, described by ``mix`` blocks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tools.corpora.common import read_pcm, write_manifest
from whisper_ptq_bench.data.mix import gain_for_snr, mix_int16, noise_segment, pcm_sha256

MixPlan = tuple[tuple[str, float], ...]  # (noise kind, SNR in dB) for even- and odd-indexed utterances
MIX_PLAN: MixPlan = (("pink", 5.0), ("babble", 10.0))  # synth-other: pink at 5 dB (even index), babble at 10 dB (odd)
# read-other: chosen by measurement (docs/corpora.md) so that fp32 tiny.en's WER is about twice its read-clean WER
READ_MIX_PLAN: MixPlan = (("pink", 12.0), ("babble", 17.0))


def describe(clean: str, plan: MixPlan) -> str:
    """A noisy corpus' description: its clean corpus and its plan."""
    (even, even_snr), (odd, odd_snr) = plan
    noun = {"pink": "pink noise", "babble": "babble"}
    return (
        f"{clean} with {noun[even]} at {even_snr:g} dB SNR (even-indexed utterances) "
        f"or {noun[odd]} at {odd_snr:g} dB SNR (odd-indexed)"
    )


def mix_offset(utt_id: str, track_len: int) -> int:
    """Where utterance ``utt_id``'s noise starts in a track: the first 48 bits of sha256(id), modulo its length."""
    return int(hashlib.sha256(utt_id.encode("utf-8")).hexdigest()[:12], 16) % track_len


def mixed_pcm(
    utt_id: str, pcm: np.ndarray, index: int, tracks: dict[str, np.ndarray], plan: MixPlan = MIX_PLAN
) -> tuple[np.ndarray, int, float]:
    """The ``index``-th clean utterance ``utt_id`` (audio ``pcm``) mixed by ``plan``: (mixed int16, offset, gain)."""
    kind, snr = plan[index % 2]
    track = tracks[kind]
    offset = mix_offset(utt_id, track.size)
    gain = gain_for_snr(pcm, noise_segment(track, offset, pcm.size), snr)
    return mix_int16(pcm, track, offset, gain), offset, gain


def noisy_entry(
    entry: dict, clean_name: str, pcm: np.ndarray, index: int, tracks: dict[str, np.ndarray], plan: MixPlan = MIX_PLAN
) -> dict:
    """The manifest entry of clean ``entry`` (the ``index``-th, audio ``pcm``) mixed by ``plan``."""
    kind, snr = plan[index % 2]
    mixed, offset, gain = mixed_pcm(entry["id"], pcm, index, tracks, plan)
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
    plan: MixPlan = MIX_PLAN,
) -> list[dict]:
    entries = [
        noisy_entry(entry, clean_name, read_pcm(out / clean_name / entry["file"]), i, tracks, plan)
        for i, entry in enumerate(clean)
    ]
    write_manifest(out / name, name, description, "pcm-s16le", tools, entries, derived_from=clean_name)
    return entries
