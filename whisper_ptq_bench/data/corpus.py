"""Corpora: ordered utterances of 16 kHz mono float32 audio with reference text and a content hash."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from whisper_ptq_bench.errors import CorpusError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_resample_notices: set[str] = set()


@dataclass(frozen=True)
class Utterance:
    """One utterance; ``audio`` is loaded on first access and kept."""

    id: str
    text: str
    source: str
    license: str
    _loader: Callable[[], np.ndarray] = field(repr=False, compare=False)
    speaker: str = ""
    digest: str = ""  # sha256 of the audio file, when a manifest pins it (saves decoding to hash)

    @cached_property
    def audio(self) -> np.ndarray:
        return self._loader()

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def n_words(self) -> int:
        return len(self.text.split())


def prepare_audio(samples: np.ndarray, sample_rate: int, utt_id: str, *, corpus: str = "") -> np.ndarray:
    """Return 16 kHz mono float32 audio: stereo is downmixed, another rate is resampled (said once per corpus)."""
    where = f"utterance {utt_id!r}" + (f" of corpus {corpus!r}" if corpus else "")
    audio = np.asarray(samples)
    if audio.size == 0:
        raise CorpusError(f"{where}: the audio is empty")
    if audio.ndim == 2:  # soundfile gives (frames, channels)
        audio = audio.mean(axis=1)
    elif audio.ndim != 1:
        raise CorpusError(f"{where}: audio has {audio.ndim} dimensions; expected (samples,) or (samples, channels)")
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max)
    audio = audio.astype(np.float32, copy=False)
    if not np.isfinite(audio).all():
        raise CorpusError(f"{where}: the audio holds NaN or infinite samples")
    if sample_rate != SAMPLE_RATE:
        if sample_rate < 8_000:
            raise CorpusError(
                f"{where}: sample rate {sample_rate} Hz is too low for speech recognition; give 16 kHz audio"
            )
        import soxr  # the maintained libsoxr binding: high-quality, deterministic resampling

        key = corpus or utt_id
        if key not in _resample_notices:
            _resample_notices.add(key)
            log.warning(
                "resampling %s from %d Hz to %d Hz", f"corpus {corpus!r}" if corpus else where, sample_rate, SAMPLE_RATE
            )
        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(audio)


def check_text(text, utt_id: str, corpus: str = "") -> str:
    where = f"utterance {utt_id!r}" + (f" of corpus {corpus!r}" if corpus else "")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorpusError(f"{where}: the reference text is not UTF-8 ({err})") from None
    if not isinstance(text, str) or not text.strip():
        raise CorpusError(f"{where}: the reference text is empty")
    return " ".join(text.split())


@dataclass
class Corpus:
    """An ordered list of utterances; ``content_hash`` changes whenever any audio or text does."""

    name: str
    utterances: list[Utterance]
    description: str = ""

    def __post_init__(self):
        ids = [u.id for u in self.utterances]
        if not ids:
            raise CorpusError(f"corpus {self.name!r} has no utterances")
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise CorpusError(f"corpus {self.name!r} repeats utterance ids {sorted(dup)[:5]}")

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self):
        return iter(self.utterances)

    @cached_property
    def content_hash(self) -> str:
        """sha256 over ids, texts and audio (or the manifest's file hashes); the first 12 hex digits."""
        digest = hashlib.sha256(self.name.encode())
        for utt in self.utterances:
            digest.update(utt.id.encode() + b"\0" + utt.text.encode() + b"\0")
            if utt.digest:
                digest.update(utt.digest.encode())
            else:
                digest.update(np.ascontiguousarray(utt.audio, dtype=np.float32).tobytes())
        return digest.hexdigest()[:12]

    @property
    def n_words(self) -> int:
        return sum(u.n_words for u in self.utterances)

    @property
    def seconds(self) -> float:
        return sum(u.duration for u in self.utterances)

    def subset(self, max_utterances: int | None) -> Corpus:
        """``max_utterances`` utterances spread evenly over the corpus order (deterministic, every source kept)."""
        if not max_utterances or max_utterances >= len(self.utterances):
            return self
        if max_utterances < 1:
            raise CorpusError(f"--ptq-max-utterances must be a positive integer, got {max_utterances}")
        n = len(self.utterances)
        picks = sorted({i * n // max_utterances for i in range(max_utterances)})
        return Corpus(self.name, [self.utterances[i] for i in picks], self.description)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "hash": self.content_hash,
            "utterances": len(self),
            "words": self.n_words,
            "minutes": round(self.seconds / 60, 2),
        }
