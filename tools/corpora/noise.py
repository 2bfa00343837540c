"""The noise tracks (``noise/``): sox pink noise, and babble summed in integers from the six calibration voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.corpora.common import BUILT_BY, SAMPLE_RATE, BuildError, json_text, read_pcm, run, to_flac
from tools.corpora.synth import TEXT_LICENSE, VOICES
from whisper_ptq_bench.data.mix import noise_segment
from whisper_ptq_bench.digest import file_sha256

NOISE_SECONDS = 60
BABBLE_PEAK = 16384  # babble is scaled (in integers) to this peak: -6 dBFS
BABBLE_STAGGER = 10 * SAMPLE_RATE  # voice k's loop starts k * 10 s into its material


def babble(by_voice: dict[str, list[np.ndarray]], length: int) -> tuple[np.ndarray, list[str]]:
    """One stream per voice (that voice's utterances concatenated in order and looped, voice k starting
    k * BABBLE_STAGGER samples into its material), the first six voices in VOICES order summed in int64 and
    scaled to a peak of BABBLE_PEAK by integer floor division. Returns (int16 track, the six voices)."""
    voices = [v.name for v in VOICES if v.name in by_voice]
    if len(voices) < 6:
        raise BuildError(f"babble needs six voices in the calibration corpus, got {voices}")
    total = np.zeros(length, dtype=np.int64)
    for k, voice in enumerate(voices[:6]):
        material = np.concatenate(by_voice[voice])
        total += noise_segment(material, (k * BABBLE_STAGGER) % material.size, length).astype(np.int64)
    peak = int(np.max(np.abs(total)))
    return np.floor_divide(total * BABBLE_PEAK, peak).astype(np.int16), voices[:6]


def build_noise(out: Path, work: Path, calibration: list[dict], tools: dict) -> dict[str, np.ndarray]:
    noise_dir = out / "noise"
    noise_dir.mkdir(parents=True, exist_ok=True)
    # pink: sox's pink noise generator, repeatable with -R; 32-bit WAV, then 16-bit FLAC without dither
    pink_wav = work / "noise" / "pink.wav"
    pink_wav.parent.mkdir(parents=True, exist_ok=True)
    run(["sox", "-R", "-n", "-r", str(SAMPLE_RATE), "-c", "1", str(pink_wav), "synth", str(NOISE_SECONDS), "pinknoise"])
    to_flac(pink_wav, noise_dir / "pink.flac")

    # babble: calibration material only, so it is in no evaluation corpus
    by_voice: dict[str, list[np.ndarray]] = {}
    for entry in calibration:
        by_voice.setdefault(entry["speaker"], []).append(read_pcm(out / "calibration" / entry["file"]))
    track, voices = babble(by_voice, NOISE_SECONDS * SAMPLE_RATE)
    babble_wav = work / "noise" / "babble.wav"
    import soundfile as sf

    sf.write(str(babble_wav), track, SAMPLE_RATE, subtype="PCM_16")
    to_flac(babble_wav, noise_dir / "babble.flac")

    tracks = {}
    info = {}
    for kind in ("pink", "babble"):
        path = noise_dir / f"{kind}.flac"
        tracks[kind] = read_pcm(path)
        info[kind] = {
            "file": f"{kind}.flac",
            "duration": round(tracks[kind].size / SAMPLE_RATE, 3),
            "sha256": file_sha256(path),
        }
    info["pink"]["made_by"] = (
        f"sox -R -n -r {SAMPLE_RATE} -c 1 pink.wav synth {NOISE_SECONDS} pinknoise (32-bit WAV); "
        f"sox -R -D pink.wav -t flac -r {SAMPLE_RATE} -c 1 -b 16 -e signed-integer -C 8 pink.flac"
    )
    info["pink"]["license"] = "MIT (generated for this project)"
    info["babble"]["made_by"] = (
        "sum of six streams, one per voice of the calibration corpus (its utterances concatenated in corpus order "
        f"and looped, voice k starting k*{BABBLE_STAGGER} samples in), in int64, scaled by floor(x*{BABBLE_PEAK}/peak)"
    )
    info["babble"]["voices"] = voices
    info["babble"]["license"] = f"{TEXT_LICENSE}; voices as in the calibration corpus"
    (noise_dir / "noise.json").write_text(
        json_text({"schema": 1, "sample_rate": SAMPLE_RATE, "built_by": BUILT_BY, "tools": tools, "tracks": info}),
        encoding="utf-8",
    )
    return tracks
