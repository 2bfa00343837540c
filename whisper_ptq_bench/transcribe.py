"""The one batched transcription helper every case uses: features once per corpus, greedy decoding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from whisper_ptq_bench.data.corpus import SAMPLE_RATE, Corpus

#: Decoding stops at this many tokens per second of audio (plus a margin), so that a broken quantized
#: model that never emits end-of-text costs seconds instead of 448 decoder steps per utterance.
TOKENS_PER_SECOND_CAP = 8
TOKEN_MARGIN = 16


@dataclass
class FeatureBatches:
    """Log-mel features of a corpus, split in batches; computed once per (corpus, processor, batch size)."""

    corpus: str
    ids: list[str]
    batches: list  # torch tensors (batch, n_mels, 3000)
    max_new_tokens: list[int]
    audio_seconds: float
    batch_size: int

    def __len__(self) -> int:
        return len(self.ids)


_FEATURE_CACHE: dict[tuple, FeatureBatches] = {}


def features(processor, corpus: Corpus, batch_size: int) -> FeatureBatches:
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    fe = processor.feature_extractor
    key = (corpus.name, corpus.content_hash, fe.feature_size, fe.n_samples, batch_size)
    if key in _FEATURE_CACHE:
        return _FEATURE_CACHE[key]
    utts = list(corpus)
    batches, caps = [], []
    for start in range(0, len(utts), batch_size):
        chunk = utts[start : start + batch_size]
        audio = [u.audio for u in chunk]
        longest = max(len(a) for a in audio) / SAMPLE_RATE
        if longest > 30.0:
            raise ValueError(
                f"utterance {max(chunk, key=lambda u: len(u.audio)).id!r} of corpus {corpus.name!r} lasts "
                f"{longest:.1f} s; Whisper transcribes at most 30 s without long-form segmentation"
            )
        feats = fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        batches.append(feats)
        caps.append(min(440, int(math.ceil(longest * TOKENS_PER_SECOND_CAP)) + TOKEN_MARGIN))
    fb = FeatureBatches(corpus.name, [u.id for u in utts], batches, caps, corpus.seconds, batch_size)
    _FEATURE_CACHE[key] = fb
    return fb


def input_dtype(model):
    """The dtype the encoder's first convolution expects (it stays in floating point in every scope)."""
    return model.model.encoder.conv1.weight.dtype


def generate_batch(model, generation_config, feats, max_new_tokens: int, device: str = "cpu"):
    """One greedy ``generate`` call; the bare operation the harness times."""
    import torch

    with torch.no_grad():  # not inference_mode: some quantized tensors refuse it
        return model.generate(
            input_features=feats.to(device=device, dtype=input_dtype(model)),
            generation_config=generation_config,
            max_new_tokens=max_new_tokens,
        )


def transcribe(model, generation_config, tokenizer, fb: FeatureBatches, device: str = "cpu") -> list[str]:
    """Transcribe every batch; returns one text per utterance in corpus order."""
    import torch

    torch.manual_seed(0)
    texts: list[str] = []
    for feats, cap in zip(fb.batches, fb.max_new_tokens):
        ids = generate_batch(model, generation_config, feats, cap, device)
        texts.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return texts


def check_outputs(texts: list[str]) -> str | None:
    """A reason when a transcription is broken as a whole (every transcript empty), else None."""
    if texts and all(not t.strip() for t in texts):
        return f"every one of the {len(texts)} transcripts is empty"
    return None


def logits_finite(model, fb: FeatureBatches, device: str = "cpu") -> bool:
    """One forward pass on the first batch with the start token: are the logits finite?"""
    import torch

    feats = fb.batches[0][:1].to(device=device, dtype=input_dtype(model))
    start = model.generation_config.decoder_start_token_id
    with torch.no_grad():
        out = model(input_features=feats, decoder_input_ids=torch.tensor([[start]], device=device))
    return bool(np.isfinite(out.logits.float().cpu().numpy()).all())
