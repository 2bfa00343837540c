"""WER after Whisper's normalizer, and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_ptq_bench.metrics import normalize, paired_bootstrap, rtf, score, transcript_fingerprint


def test_normalizer_maps_numbers_spellings_and_punctuation():
    assert normalize("Mr. Smith paid $10 for colour prints!") == normalize(
        "mister smith paid ten dollars for color prints"
    )


def test_per_utterance_counts_and_corpus_wer():
    result = score(
        ["a", "b"],
        ["the cat sat on the mat", "hello world"],
        ["the cat sat on mat today", ""],
    )
    a, b = result.utterances
    assert (a.errors, a.words) == (2, 6)  # "the mat" -> "mat today": two edits
    assert (b.substitutions, b.deletions, b.insertions, b.words) == (0, 2, 0, 2)
    assert result.wer == pytest.approx(4 / 8)  # total errors / total words, not the mean of 2/6 and 2/2


def test_empty_reference_after_normalization_is_an_error_naming_the_utterance():
    with pytest.raises(ValueError, match="u7"):
        score(["u7"], ["[laughter]"], ["ha"])


words = st.lists(st.sampled_from(["one", "two", "three", "four", "cat", "dog"]), min_size=1, max_size=12)


@given(st.lists(st.tuples(words, words), min_size=1, max_size=6))
def test_wer_is_zero_iff_hypotheses_equal_references(pairs):
    refs = [" ".join(r) for r, _ in pairs]
    hyps = [" ".join(h) for _, h in pairs]
    ids = [str(i) for i in range(len(pairs))]
    assert (score(ids, refs, hyps).wer == 0) == all(normalize(r) == normalize(h) for r, h in zip(refs, hyps))
    assert score(ids, refs, refs).wer == 0


@given(st.lists(st.integers(0, 20), min_size=2, max_size=30), st.integers(0, 10_000))
def test_bootstrap_of_identical_systems_is_exactly_zero(errors, seed):
    e = np.array(errors)
    w = e + 5
    iv = paired_bootstrap(e, e, w, seed=seed)
    assert iv.delta == iv.low == iv.high == 0.0
    assert iv.p_value == 1.0


@given(st.lists(st.integers(0, 20), min_size=2, max_size=30), st.integers(1, 5))
def test_bootstrap_interval_contains_the_point_estimate_and_is_seeded(errors, extra):
    a = np.array(errors)
    b = a + extra  # strictly worse on every utterance
    w = a + 10
    iv = paired_bootstrap(a, b, w, seed=3)
    assert iv.low <= iv.delta <= iv.high
    assert iv.low > 0 and iv.p_value == 0.0
    assert paired_bootstrap(a, b, w, seed=3) == iv


def test_bootstrap_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        paired_bootstrap(np.array([1, 2]), np.array([1]), np.array([3, 3]))


def test_fingerprint_and_rtf():
    assert transcript_fingerprint(["a", "b"]) != transcript_fingerprint(["ab"])
    assert rtf(2.0, 10.0) == 0.2


def test_peak_memory_sees_a_transient_allocation():
    """64 MB of fresh anonymous pages (mmap, so no allocator can hand back pages already resident),
    every page written, held for 50 ms and released before the block ends: the peak still shows it."""
    import mmap
    import time

    from whisper_ptq_bench.metrics import PeakMemory, current_rss_bytes

    size, page = 64 * 1024 * 1024, mmap.PAGESIZE
    before = current_rss_bytes()
    with PeakMemory("cpu", interval=0.005) as memory:
        block = mmap.mmap(-1, size)
        for offset in range(0, size, page):
            block[offset] = 1
        time.sleep(0.05)
        block.close()
    assert memory.peak >= before + 48 * 1024 * 1024
