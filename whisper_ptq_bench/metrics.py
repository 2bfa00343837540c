"""Metrics: WER (jiwer after Whisper's English normalizer), paired bootstrap intervals, speed, memory."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _normalizer():
    # whisper-normalizer packages OpenAI's EnglishTextNormalizer (numbers, spellings, punctuation)
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    return " ".join(_normalizer()(text).split())


@dataclass(frozen=True)
class UttScore:
    """Alignment counts of one utterance after normalization."""

    id: str
    reference: str
    hypothesis: str
    substitutions: int
    deletions: int
    insertions: int
    words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


@dataclass(frozen=True)
class WerResult:
    utterances: tuple[UttScore, ...] = field(repr=False)

    @property
    def errors(self) -> int:
        return sum(u.errors for u in self.utterances)

    @property
    def words(self) -> int:
        return sum(u.words for u in self.utterances)

    @property
    def wer(self) -> float:
        """Corpus WER: total errors over total reference words (not a mean of per-utterance WERs)."""
        return self.errors / self.words if self.words else 0.0

    def counts(self) -> dict[str, int]:
        return {
            "substitutions": sum(u.substitutions for u in self.utterances),
            "deletions": sum(u.deletions for u in self.utterances),
            "insertions": sum(u.insertions for u in self.utterances),
            "words": self.words,
        }

    def error_vector(self) -> np.ndarray:
        return np.array([u.errors for u in self.utterances], dtype=np.int64)

    def word_vector(self) -> np.ndarray:
        return np.array([u.words for u in self.utterances], dtype=np.int64)


def score(ids: Sequence[str], references: Sequence[str], hypotheses: Sequence[str]) -> WerResult:
    """Per-utterance substitutions, deletions and insertions with jiwer, after normalization."""
    import jiwer

    if not (len(ids) == len(references) == len(hypotheses)):
        raise ValueError(f"score(): {len(ids)} ids, {len(references)} references, {len(hypotheses)} hypotheses")
    out = []
    for utt_id, ref, hyp in zip(ids, references, hypotheses):
        r, h = normalize(ref), normalize(hyp)
        if not r:
            raise ValueError(f"utterance {utt_id!r}: the reference is empty after normalization ({ref!r})")
        if h:
            m = jiwer.process_words(r, h)
            s, d, i = m.substitutions, m.deletions, m.insertions
        else:  # jiwer refuses an empty hypothesis: every reference word is deleted
            s, d, i = 0, len(r.split()), 0
        out.append(UttScore(utt_id, ref, hyp, s, d, i, len(r.split())))
    return WerResult(tuple(out))


@dataclass(frozen=True)
class Interval:
    """A paired-bootstrap estimate of a difference b - a (for WER: in absolute WER, 0.01 = one point)."""

    delta: float
    low: float
    high: float
    p_value: float  # fraction of resamples in which b is not worse than a (a one-sided p-value for "b worse")
    resamples: int

    def as_dict(self) -> dict:
        return {"delta": self.delta, "ci95": [self.low, self.high], "p": self.p_value, "resamples": self.resamples}


def resampled(statistic, *arrays: np.ndarray, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """``statistic`` over ``resamples`` paired bootstrap resamples: the same rows of every array, drawn with
    replacement (seeded); ``statistic`` gets each array as (resamples, n) and returns one value per resample."""
    n = len(arrays[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    return statistic(*(a[idx] for a in arrays))


def paired_bootstrap(
    errors_a: np.ndarray, errors_b: np.ndarray, words: np.ndarray, *, resamples: int = 2000, seed: int = 0
) -> Interval:
    """sum(b - a) / sum(words) with its 95% percentile interval, resampling utterances with replacement (the same
    indices for both systems); WER(b) - WER(a) when a and b count errors per utterance."""
    errors_a, errors_b, words = (np.asarray(x, dtype=np.float64) for x in (errors_a, errors_b, words))
    n = len(words)
    if not (len(errors_a) == len(errors_b) == n) or n == 0:
        raise ValueError("paired_bootstrap needs equally long, non-empty per-utterance vectors")
    delta = (errors_b.sum() - errors_a.sum()) / words.sum()

    def change(a, b, w):
        total = w.sum(axis=1)
        total[total == 0] = 1.0
        return (b.sum(axis=1) - a.sum(axis=1)) / total

    d = resampled(change, errors_a, errors_b, words, resamples=resamples, seed=seed)
    low, high = np.percentile(d, [2.5, 97.5])
    return Interval(float(delta), float(low), float(high), float(np.mean(d <= 0)), resamples)


def mean_difference(old: np.ndarray, new: np.ndarray, weights: np.ndarray, *, resamples: int = 2000, seed: int = 0):
    """Weighted mean of ``new - old`` per utterance with its 95% paired-bootstrap interval; ``p_value`` is the
    fraction of resamples in which the difference is <= 0 (one-sided, for "new is higher")."""
    d = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    means = resampled(lambda d, w: (d * w).sum(axis=1) / w.sum(axis=1), d, weights, resamples=resamples, seed=seed)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(
        float((d * weights).sum() / weights.sum()), float(low), float(high), float(np.mean(means <= 0)), resamples
    )


def transcript_fingerprint(hypotheses: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for h in hypotheses:
        digest.update(h.encode() + b"\0")
    return digest.hexdigest()[:16]


def rtf(seconds: float, audio_seconds: float) -> float:
    """Real-time factor: processing seconds per second of audio (lower is faster); RTFx is its inverse."""
    return seconds / audio_seconds if audio_seconds else float("nan")


def current_rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


class PeakMemory:
    """Peak memory while the block runs: resident set size sampled by a thread on CPU (every
    ``interval`` s), ``torch.cuda.max_memory_allocated`` on CUDA. ``peak`` is in bytes."""

    def __init__(self, device: str = "cpu", interval: float = 0.02):
        self.device, self.interval, self.peak = device, interval, 0

    def __enter__(self):
        import threading

        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._stop = threading.Event()
        self.peak = current_rss_bytes()

        def sample() -> None:
            while not self._stop.wait(self.interval):
                self.peak = max(self.peak, current_rss_bytes())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            import torch

            self.peak = int(torch.cuda.max_memory_allocated(self.device))
            return False
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_bytes())
        return False
