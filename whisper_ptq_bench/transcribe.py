"""The one batched transcription helper every case uses: features once per corpus, greedy decoding.

Batches group utterances of similar duration (longest first), so that a batch's greedy decode does not
run many steps for one long utterance while its short ones wait; transcripts come back in corpus order.
The encoder, whose input is always the 30 s window, runs in chunks of ``encoder_batch_size`` utterances
(on CPU a small chunk keeps its activations in cache and is faster per utterance than the whole batch);
the decoder then runs over the whole batch.

Utterances longer than Whisper's 30 s window are transcribed the way Whisper users do it: transformers'
sequential long-form generation over the untruncated features, with timestamps (which it requires) and the
same greedy settings, one utterance at a time. They have no single encoder window, so the teacher-forced
comparison (``fidelity.py``) scores the utterances that fit the window and names the ones it leaves out.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from whisper_ptq_bench.data.corpus import SAMPLE_RATE, Corpus

#: Decoding of an utterance stops at this many tokens per second of its audio (plus a margin), so that a
#: broken quantized model that never emits end-of-text costs seconds instead of 448 decoder steps. The cap
#: is the utterance's own, not its batch's, so that no transcript depends on the batch it sits in.
TOKENS_PER_SECOND_CAP = 8
TOKEN_MARGIN = 16
#: Whisper's input window; longer utterances go through long-form generation.
WINDOW_SECONDS = 30.0
#: Encoder chunk on CPU, measured fastest per utterance on 2 cores (``whisper-ptq-bench perf``).
CPU_ENCODER_BATCH_SIZE = 2


def default_encoder_batch_size(device: str) -> int | None:
    """Encoder chunk for ``device``: a small one on CPU; None (the whole batch) on accelerators."""
    return CPU_ENCODER_BATCH_SIZE if device == "cpu" else None


def batching(batch_size: int, encoder_batch_size: int | None) -> str:
    """How utterances are grouped; recorded with every baseline, since batch composition can change
    what a quantized model outputs (dynamic activation scales are computed over the whole input)."""
    enc = min(encoder_batch_size or batch_size, batch_size)
    return f"batch {batch_size} by duration, encoder {enc}"


@dataclass
class FeatureBatches:
    """Log-mel features of a corpus, split in batches; computed once per (corpus, processor, batch size).

    ``ids`` are in corpus order; ``order`` lists the corpus positions in batch order: first those in
    ``batches`` (utterances within the 30 s window), then those in ``long`` (each alone, untruncated)."""

    corpus: str
    ids: list[str]
    batches: list  # torch tensors (batch, n_mels, 3000)
    caps: list[list[int]]  # per batch, each utterance's decoding cap in new tokens
    audio_seconds: float
    batch_size: int
    order: list[int]
    long: list = field(default_factory=list)  # per utterance over 30 s: (features (1, n_mels, frames), cap)

    @property
    def windowed(self) -> list[int]:
        """Corpus positions of the utterances in ``batches`` (batch order)."""
        return self.order[: len(self.order) - len(self.long)]

    @property
    def long_ids(self) -> list[str]:
        return [self.ids[p] for p in self.order[len(self.order) - len(self.long) :]]

    def __len__(self) -> int:
        return len(self.ids)

    def in_corpus_order(self, texts: list[str]) -> list[str]:
        """``texts`` given in batch order, returned in corpus order."""
        if len(texts) != len(self.order):
            raise ValueError(f"{len(texts)} texts for {len(self.order)} utterances of corpus {self.corpus!r}")
        out = [""] * len(texts)
        for position, text in zip(self.order, texts):
            out[position] = text
        return out


_FEATURE_CACHE: dict[tuple, FeatureBatches] = {}


def features(processor, corpus: Corpus, batch_size: int) -> FeatureBatches:
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    fe = processor.feature_extractor
    key = (corpus.name, corpus.content_hash, fe.feature_size, fe.n_samples, batch_size)
    if key in _FEATURE_CACHE:
        return _FEATURE_CACHE[key]
    utts = list(corpus)
    longest_first = sorted(range(len(utts)), key=lambda i: -len(utts[i].audio))  # stable: ties keep corpus order
    limit = int(WINDOW_SECONDS * SAMPLE_RATE)
    windowed = [i for i in longest_first if len(utts[i].audio) <= limit]
    over = sorted(i for i in longest_first if len(utts[i].audio) > limit)
    batches, caps, long = [], [], []
    for start in range(0, len(windowed), batch_size):
        audio = [utts[i].audio for i in windowed[start : start + batch_size]]
        batches.append(fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features)
        caps.append([token_cap(len(a) / SAMPLE_RATE) for a in audio])
    for i in over:
        feats = fe([utts[i].audio], sampling_rate=SAMPLE_RATE, return_tensors="pt", truncation=False, padding="longest")
        long.append((feats.input_features, token_cap(WINDOW_SECONDS)))
    fb = FeatureBatches(
        corpus.name, [u.id for u in utts], batches, caps, corpus.seconds, batch_size, windowed + over, long
    )
    _FEATURE_CACHE[key] = fb
    return fb


def token_cap(seconds: float) -> int:
    """New tokens an utterance of ``seconds`` may decode before it is cut off as a runaway."""
    return min(440, int(math.ceil(seconds * TOKENS_PER_SECOND_CAP)) + TOKEN_MARGIN)


def input_dtype(model):
    """The dtype the encoder's first convolution expects (it stays in floating point in every scope)."""
    return model.model.encoder.conv1.weight.dtype


def with_cap(generation_config, max_new_tokens: int):
    """A copy of ``generation_config`` that stops after ``max_new_tokens`` (passing both is deprecated)."""
    gen = copy.copy(generation_config)
    gen.max_new_tokens = max_new_tokens
    return gen


def capped(generation_config, caps: list[int]) -> dict:
    """``generate`` keyword arguments that stop each sequence of a batch at its own cap."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class PerSequenceCap(StoppingCriteria):  # transformers caps a whole call only (max_new_tokens)
        def __init__(self):
            self.prompt, self.limit = None, None

        def __call__(self, input_ids, scores, **kwargs):
            import torch

            if self.prompt is None:  # first call: the prompt and one new token
                self.prompt = input_ids.shape[1] - 1
                self.limit = torch.tensor(caps, device=input_ids.device)
            return (input_ids.shape[1] - self.prompt) >= self.limit

    return {
        "generation_config": with_cap(generation_config, max(caps)),
        "stopping_criteria": StoppingCriteriaList([PerSequenceCap()]),
    }


def encode(model, feats, chunk: int):
    """The encoder's output for a batch of features, computed ``chunk`` utterances at a time."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    encoder = model.get_encoder()
    hidden = torch.cat([encoder(feats[i : i + chunk]).last_hidden_state for i in range(0, len(feats), chunk)])
    return BaseModelOutput(last_hidden_state=hidden)


def generate_batch(
    model, generation_config, feats, caps: list[int], device: str = "cpu", encoder_batch_size: int | None = None
):
    """One greedy ``generate`` call over a batch, its encoder run in chunks; the operation the harness times."""
    import torch

    with torch.no_grad():  # not inference_mode: some quantized tensors refuse it
        x = feats.to(device=device, dtype=input_dtype(model))
        kwargs = capped(generation_config, caps)
        if not encoder_batch_size or encoder_batch_size >= len(x):
            return model.generate(input_features=x, **kwargs)
        return model.generate(encoder_outputs=encode(model, x, encoder_batch_size), **kwargs)


def decode(model, generation_config, tokenizer, fb: FeatureBatches, encoded: list, device: str = "cpu") -> list[str]:
    """Greedy decoding of every batch from its precomputed encoder output, then the long utterances (long-form);
    one text per utterance, corpus order."""
    import torch

    torch.manual_seed(0)
    texts: list[str] = []
    with torch.no_grad():
        for enc, caps in zip(encoded, fb.caps):
            ids = model.generate(encoder_outputs=enc, **capped(generation_config, caps))
            texts.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
    texts += long_form(model, generation_config, tokenizer, fb, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return fb.in_corpus_order(texts)


def long_form(model, generation_config, tokenizer, fb: FeatureBatches, device: str = "cpu") -> list[str]:
    """Transcripts of the utterances over 30 s (``fb.long``), by transformers' sequential long-form generation:
    30 s windows that advance by the last predicted timestamp, greedy, each window capped like a 30 s utterance."""
    import torch

    texts = []
    with torch.no_grad():
        for feats, cap in fb.long:
            gen = with_cap(generation_config, cap)
            gen.return_timestamps = True  # long-form generation needs the timestamp tokens
            x = feats.to(device=device, dtype=input_dtype(model))
            ids = model.generate(
                input_features=x,
                attention_mask=torch.ones(x.shape[0], x.shape[-1], dtype=torch.long, device=device),
                generation_config=gen,
                return_timestamps=True,
            )
            texts.append(tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip())
    return texts


def transcribe(
    model, generation_config, tokenizer, fb: FeatureBatches, device: str = "cpu", encoder_batch_size: int | None = None
) -> list[str]:
    """Transcribe every batch; returns one text per utterance in corpus order."""
    import torch

    torch.manual_seed(0)
    texts: list[str] = []
    for feats, caps in zip(fb.batches, fb.caps):
        ids = generate_batch(model, generation_config, feats, caps, device, encoder_batch_size)
        texts.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
    texts += long_form(model, generation_config, tokenizer, fb, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return fb.in_corpus_order(texts)


def check_outputs(texts: list[str]) -> str | None:
    """A reason when a transcription is broken as a whole (every transcript empty), else None."""
    if texts and all(not t.strip() for t in texts):
        return f"every one of the {len(texts)} transcripts is empty"
    return None


# ----------------------------------------------------------------------------- teacher-forcing input


def prompt_ids(generation_config) -> list[int]:
    """The decoder prompt of English transcription without timestamps (multilingual models name the language)."""
    gen = generation_config
    prompt = [gen.decoder_start_token_id]
    if getattr(gen, "is_multilingual", False):
        prompt += [gen.lang_to_id["<|en|>"], gen.task_to_id["transcribe"]]
    prompt.append(gen.no_timestamps_token_id)
    return prompt


def reference_tokens(tokenizer, generation_config, texts: list[str]) -> list[list[int]]:
    """Prompt + the reference text's tokens + end-of-text, per utterance: the fixed teacher-forcing input."""
    prompt = prompt_ids(generation_config)
    eot = generation_config.eos_token_id
    return [prompt + tokenizer.encode(" " + t, add_special_tokens=False) + [eot] for t in texts]


def calibration_samples(processor, generation_config, corpus: Corpus) -> list[tuple]:
    """(features (1, n_mels, frames), decoder ids (1, tokens)) per utterance of ``corpus`` within the 30 s window:
    the teacher-forced input of a static configuration's calibration pass."""
    import torch

    fb = features(processor, corpus, 1)
    tokens = reference_tokens(processor.tokenizer, generation_config, [u.text for u in corpus])
    return [(feats, torch.tensor([tokens[i]])) for feats, i in zip(fb.batches, fb.windowed)]
