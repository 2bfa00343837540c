"""Corpora by name: the shipped offline corpora and LibriSpeech through `datasets`."""

from __future__ import annotations

from functools import cache

from whisper_ptq_bench.data.corpus import SAMPLE_RATE, Corpus, Utterance, prepare_audio
from whisper_ptq_bench.data.librispeech import CONDITIONS as LIBRISPEECH
from whisper_ptq_bench.data.librispeech import load_librispeech
from whisper_ptq_bench.data.offline import load_offline, offline_corpus_names
from whisper_ptq_bench.errors import CorpusError

__all__ = ["SAMPLE_RATE", "Corpus", "Utterance", "corpus_names", "load_corpus", "prepare_audio"]

CALIBRATION = "calibration"
#: "clean" and "other" conditions of each family, for the clean-vs-noisy contrast.
PAIRS = {
    "read": ("read-clean", "read-other"),
    "synth": ("synth-clean", "synth-other"),
    "librispeech": ("librispeech-clean", "librispeech-other"),
}


def corpus_names() -> list[str]:
    return offline_corpus_names() + sorted(LIBRISPEECH)


def expand(spec: str) -> list[str]:
    """``real`` -> both conditions, ``all`` -> every offline corpus, else a comma list of names."""
    names: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part == "all":  # every offline evaluation corpus (calibration is for static quantization only)
            names += [n for n in offline_corpus_names() if n != CALIBRATION]
        elif part in PAIRS:
            names += list(PAIRS[part])
        else:
            names.append(part)
    known = set(corpus_names())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CorpusError(
            f"unknown corpus {unknown[0]!r}; known: {', '.join(corpus_names())}, or the groups {', '.join(PAIRS)}, all"
        )
    return list(dict.fromkeys(names))


@cache
def load_corpus(name: str, max_utterances: int | None = None) -> Corpus:
    """Load (once per process) the corpus ``name``, keeping its first ``max_utterances`` utterances."""
    if name in LIBRISPEECH:
        return load_librispeech(name, max_utterances=max_utterances)
    return load_offline(name).subset(max_utterances)
