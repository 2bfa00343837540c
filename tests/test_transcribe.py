"""Batching: utterances grouped by duration, encoder in chunks, transcripts back in corpus order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_ptq_bench.data.corpus import SAMPLE_RATE, Corpus, Utterance
from whisper_ptq_bench.transcribe import (
    FeatureBatches,
    batching,
    default_encoder_batch_size,
    features,
    generate_batch,
    transcribe,
    with_cap,
)


class _Extractor:
    """Stands in for WhisperFeatureExtractor: one row per utterance holding its length in samples."""

    feature_size, n_samples = 1, 30 * SAMPLE_RATE

    def __call__(self, audio, sampling_rate, return_tensors):
        import torch

        class Out:
            input_features = torch.tensor([[[float(len(a))]] for a in audio])

        return Out()


class _Processor:
    feature_extractor = _Extractor()


def _corpus(lengths: list[int], name: str) -> Corpus:
    utts = [
        Utterance(f"u{i}", f"text {i}", "test", "CC0", (lambda n=n: np.zeros(n, dtype=np.float32)))
        for i, n in enumerate(lengths)
    ]
    return Corpus(name, utts)


@given(st.lists(st.integers(1, 30 * SAMPLE_RATE), min_size=1, max_size=30), st.integers(1, 9), st.integers(0, 10**9))
def test_batches_group_by_duration_and_cover_every_utterance_once(lengths, batch_size, salt):
    fb = features(_Processor(), _corpus(lengths, f"prop-{salt}-{len(lengths)}"), batch_size)
    assert sorted(fb.order) == list(range(len(lengths)))  # a permutation: nothing lost, nothing twice
    in_batches = [int(row[0, 0]) for b in fb.batches for row in b]
    assert in_batches == [lengths[i] for i in fb.order]
    assert in_batches == sorted(lengths, reverse=True)  # longest first, so a batch's lengths are close
    assert all(len(b) <= batch_size for b in fb.batches) and sum(len(b) for b in fb.batches) == len(lengths)
    assert fb.ids == [f"u{i}" for i in range(len(lengths))]  # ids stay in corpus order


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=40, unique=True), st.randoms(use_true_random=False))
def test_in_corpus_order_inverts_the_batch_order(values, rnd):
    order = list(range(len(values)))
    rnd.shuffle(order)
    fb = FeatureBatches("c", [f"u{i}" for i in range(len(values))], [], [], 0.0, 1, order)
    assert fb.in_corpus_order([str(values[i]) for i in order]) == [str(v) for v in values]
    with pytest.raises(ValueError, match="texts for"):
        fb.in_corpus_order([])


def test_encoder_chunk_defaults_and_description():
    assert default_encoder_batch_size("cpu") == 2
    assert default_encoder_batch_size("cuda:0") is None
    assert batching(8, 2) == "batch 8 by duration, encoder 2"
    assert batching(8, None) == batching(8, 64) == "batch 8 by duration, encoder 8"


def test_batched_chunked_transcripts_equal_one_by_one_in_corpus_order(tiny_en, read_clean):
    """fp32 greedy decoding does not depend on the batch: batch 1, batch 8 with the encoder over the whole
    batch and batch 8 with the encoder in chunks of 2 give the same text for every utterance."""
    subset = Corpus("read-clean-12", read_clean.utterances[:12])
    args = (tiny_en.model, tiny_en.generation_config, tiny_en.processor.tokenizer)
    one = transcribe(*args, features(tiny_en.processor, subset, 1))
    many = features(tiny_en.processor, subset, 8)
    assert many.order != list(range(12))  # the test means something only if batching reorders
    assert transcribe(*args, many, "cpu", None) == one
    assert transcribe(*args, many, "cpu", 2) == one
    # corpus order, checked against each utterance transcribed on its own, outside the batching code
    for k in (0, 5, 11):
        utt = subset.utterances[k]
        feats = tiny_en.processor.feature_extractor(
            utt.audio, sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features
        ids = tiny_en.model.generate(input_features=feats, generation_config=with_cap(tiny_en.generation_config, 200))
        assert one[k] == tiny_en.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()


def test_each_utterance_stops_at_its_own_cap_whatever_its_batch(tiny_en, read_clean):
    """A sequence capped at 2 new tokens stops there while its batch-mate decodes on, exactly as it would alone."""
    tok = tiny_en.processor.tokenizer
    utts = sorted(read_clean.utterances, key=lambda u: -len(u.audio))[:2]  # two long ones: neither ends by 2 tokens
    feats = tiny_en.processor.feature_extractor(
        [u.audio for u in utts], sampling_rate=SAMPLE_RATE, return_tensors="pt"
    ).input_features
    both = generate_batch(tiny_en.model, tiny_en.generation_config, feats, [2, 40])
    alone = generate_batch(tiny_en.model, tiny_en.generation_config, feats[:1], [2])
    other = generate_batch(tiny_en.model, tiny_en.generation_config, feats[1:], [40])
    texts = [t.strip() for t in tok.batch_decode(both, skip_special_tokens=True)]
    assert texts[0] == tok.batch_decode(alone, skip_special_tokens=True)[0].strip()
    assert texts[1] == tok.batch_decode(other, skip_special_tokens=True)[0].strip()
    assert (
        len(tok.encode(texts[0], add_special_tokens=False)) <= 2 < len(tok.encode(texts[1], add_special_tokens=False))
    )
