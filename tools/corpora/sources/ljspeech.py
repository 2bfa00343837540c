"""TTS (Coqui) sdist: the LJ Speech clips of its tests (LJ001-0001 to LJ001-0032), transcribed by their metadata.csv."""

from __future__ import annotations

import re
from pathlib import Path

from tools.corpora.common import BuildError, sdist_dir, sdist_label
from tools.corpora.plan import Dropped, RealItem, RealPlan

PACKAGE = "TTS"
LJ_DIR = "tests/data/ljspeech"
CLIPS = tuple(f"LJ001-{i:04d}" for i in range(1, 33))
# The TTS package (MPL-2.0) carries the clips without a word on their licence; the dataset's publisher puts
# LJ Speech in the public domain (https://keithito.com/LJ-Speech-Dataset/).
LICENSE = (
    "public domain (LJ Speech Dataset, as stated by its publisher at keithito.com/LJ-Speech-Dataset; "
    "not stated in the TTS package)"
)
ORIGIN = "LJ Speech Dataset clip {clip} (LibriVox recording read by Linda Johnson)"
# Whisper's English normalizer (the benchmark's scoring) deletes whatever stands in parentheses or brackets,
# so spoken words there would count as insertions in every transcript.
BRACKETED = re.compile(r"[()\[\]]")


def parse_metadata(text: str) -> dict[str, str]:
    """LJ Speech ``metadata.csv`` (``id|transcription|normalized transcription``, no quoting) -> {id: text}: the
    normalized column (numbers and abbreviations spelled out as read), else the transcription where a row has
    only two columns."""
    rows = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) not in (2, 3) or not cols[0] or not cols[-1].strip():
            raise BuildError(f"metadata.csv line {n}: expected id|text|normalized text, got {line!r}")
        if cols[0] in rows:
            raise BuildError(f"metadata.csv line {n}: {cols[0]} is listed twice")
        rows[cols[0]] = " ".join(cols[-1].split())
    return rows


def plan(work: Path, fetch: bool) -> RealPlan:
    root = sdist_dir(work, PACKAGE, fetch=fetch) / LJ_DIR
    label = sdist_label(PACKAGE)
    texts = parse_metadata((root / "metadata.csv").read_text(encoding="utf-8"))
    if sorted(texts) != list(CLIPS):
        raise BuildError(f"{label} {LJ_DIR}/metadata.csv lists {sorted(texts)}, expected {CLIPS[0]}..{CLIPS[-1]}")
    result = RealPlan()
    for clip in CLIPS:
        if BRACKETED.search(texts[clip]):
            result.dropped.append(
                Dropped(
                    f"{label} {LJ_DIR}/wavs/{clip}.wav ({texts[clip]!r})",
                    "it reads words the text puts in parentheses, which Whisper's English normalizer deletes from the "
                    "reference: they would count as insertions in every transcript",
                )
            )
            continue
        result.items.append(
            RealItem(
                f"ljspeech-{clip.lower()}",
                root / "wavs" / f"{clip}.wav",
                texts[clip],
                f"{label} {LJ_DIR}/wavs/{clip}.wav (22.05 kHz, resampled)",
                ORIGIN.format(clip=clip),
                LICENSE,
                f"{label} {LJ_DIR}/metadata.csv (normalized column)",
                speaker="ljspeech",
            )
        )
    return result
