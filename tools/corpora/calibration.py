"""The ``calibration`` corpus: single sentences, spoken like synth-clean, that share no text with any evaluation corpus."""

from __future__ import annotations

import re
from pathlib import Path

from tools.corpora.common import TEXTS_DIR, BuildError
from tools.corpora.synth import build_synth, read_groups

DESCRIPTION = "Calibration sentences for static activation quantization (no text shared with any evaluation corpus)"


def calibration_groups(texts_dir: Path = TEXTS_DIR) -> list[list[str]]:
    """Every sentence of ``calibration_sentences.txt`` as an utterance of its own."""
    return [[s] for g in read_groups(texts_dir / "calibration_sentences.txt") for s in g]


def word_ngrams(sentences: list[str], n: int = 6) -> set[tuple[str, ...]]:
    """The word n-grams of the sentences: lower case, anything but letters, digits and apostrophes a space."""
    words = re.sub(r"[^a-z0-9' ]", " ", " ".join(sentences).lower()).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def check_calibration_disjoint(calib: list[list[str]], evaluation: list[list[str]], n: int = 6) -> None:
    """BuildError when a calibration utterance shares a run of ``n`` words with the evaluation texts."""
    eval_grams = set().union(*(word_ngrams(g, n) for g in evaluation))
    for g in calib:
        shared = word_ngrams(g, n) & eval_grams
        if shared:
            raise BuildError(
                f"calibration sentence {g[0]!r} shares text with synth-clean: {' '.join(sorted(shared)[0])!r}"
            )


def build_calibration(
    out: Path, work: Path, groups: list[list[str]], tools: dict, versions: dict[str, str]
) -> list[dict]:
    return build_synth(out, work, "calibration", DESCRIPTION, groups, "calib", tools, versions)
