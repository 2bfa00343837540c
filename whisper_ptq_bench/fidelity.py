"""Deterministic, continuous fidelity signals: dequantized-weight error per module and teacher-forced
output divergence from fp32 per utterance. Neither depends on greedy decoding, so a tiny numeric
difference moves them a tiny amount instead of flipping a transcript."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from whisper_ptq_bench.transcribe import FeatureBatches, encode, input_dtype, prompt_ids, reference_tokens

__all__ = ["prompt_ids", "reference_tokens"]  # the teacher-forcing input, defined with transcription

# ----------------------------------------------------------------------------- weights


def relative_error(dequantized, reference) -> float:
    """||W_q - W|| / ||W|| (Frobenius), in float64: the weight's relative RMS quantization error."""
    ref = reference.detach().to("cpu").double()
    diff = dequantized.detach().to("cpu").double() - ref
    norm = float(ref.norm())
    return float(diff.norm()) / norm if norm else float(diff.norm())


def digest(tensor) -> str:
    """The first 16 hex digits of the sha256 of a tensor's float32 bytes (bit-identical tensors, equal digests)."""
    import torch

    data = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
    return hashlib.sha256(data.tobytes()).hexdigest()[:16]


def weight_errors(reference, quantized, backend, formats: dict[str, str], digests: dict | None = None) -> dict:
    """For every module the scope report calls quantized: [relative error, format] of its dequantized weight;
    ``digests`` (when given) gets each dequantized weight's digest.

    A module the backend cannot dequantize gets error None (its format still gates); a NaN error says the
    library produced non-finite weights."""
    from whisper_ptq_bench.scope import unwrap

    out: dict[str, list] = {}
    for name, fmt in formats.items():
        try:
            module = unwrap(quantized.get_submodule(name))
            ref = reference.get_submodule(name).weight
        except AttributeError:
            out[name] = [None, fmt]
            continue
        deq = backend.dequantize(module)
        if deq is None:
            out[name] = [None, fmt]
            continue
        if deq.shape != ref.shape:
            raise ValueError(
                f"{name}: the dequantized weight has shape {tuple(deq.shape)}, the fp32 one {tuple(ref.shape)}"
            )
        error = relative_error(deq, ref) if bool(deq.isfinite().all()) else float("nan")
        out[name] = [error, fmt]
        if digests is not None:
            digests[name] = digest(deq)
    return out


# ----------------------------------------------------------------------------- outputs


@dataclass
class TeacherForced:
    """Per utterance (corpus order): mean KL(fp32 || config) over its predicted positions, top-1 agreement
    with fp32, the negative log-likelihood of the reference tokens (nats per token), and the digest of its
    log-probabilities at the scored positions (equal digests: bit-identical outputs). ``log_probs`` keeps those
    log-probabilities per utterance when asked for (comparing two environments' outputs)."""

    ids: list[str]
    kl: list[float]
    top1: list[float]
    nll: list[float]
    tokens: list[int]
    digests: list[str] = field(default_factory=list)
    log_probs: dict | None = None

    def mean(self, name: str) -> float:
        """Token-weighted corpus mean of ``kl``, ``top1`` or ``nll``."""
        values, weights = np.asarray(getattr(self, name), dtype=np.float64), np.asarray(self.tokens, dtype=np.float64)
        return float((values * weights).sum() / weights.sum())

    def finite(self) -> bool:
        return bool(np.isfinite(self.kl).all() and np.isfinite(self.nll).all())

    def as_dict(self) -> dict:
        return {
            "kl": self.mean("kl"),
            "top1": self.mean("top1"),
            "nll": self.mean("nll"),
            "per_utterance": {i: [k, t, n] for i, k, t, n in zip(self.ids, self.kl, self.top1, self.nll)},
        }


def encoder_outputs(model, fb: FeatureBatches, device: str, chunk: int | None) -> list:
    """The encoder's output for every batch (batch order), computed ``chunk`` utterances at a time."""
    import torch

    out = []
    with torch.no_grad():
        for feats in fb.batches:
            x = feats.to(device=device, dtype=input_dtype(model))
            out.append(encode(model, x, chunk or len(x)))
    return out


def decoder_log_probs(model, encoded, tokens: list[list[int]], device: str):
    """Teacher-forced log-probabilities (batch, positions, vocab) in float32 and the (batch, positions) mask of
    positions that predict a real token (text or end-of-text, not the prompt and not padding)."""
    import torch

    longest = max(len(t) for t in tokens)
    ids = torch.full((len(tokens), longest), tokens[0][-1], dtype=torch.long)
    mask = torch.zeros((len(tokens), longest - 1), dtype=torch.bool)
    for row, seq in enumerate(tokens):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq) - 1] = True
    with torch.no_grad():
        logits = model(encoder_outputs=encoded, decoder_input_ids=ids[:, :-1].to(device)).logits
    return torch.log_softmax(logits.float().cpu(), dim=-1), ids[:, 1:], mask


def _scored(model, encoded: list, fb: FeatureBatches, tokens: list[list[int]], prompt_len: int, device: str):
    """Per batch: (log-probabilities at the scored positions (n, vocab), their target tokens (n,), the corpus
    position of the utterance each scored position belongs to (n,))."""
    import torch

    out, start = [], 0
    for enc, feats in zip(encoded, fb.batches):
        positions = fb.order[start : start + len(feats)]
        start += len(feats)
        lp, target, mask = decoder_log_probs(model, enc, [tokens[p] for p in positions], device)
        mask[:, : prompt_len - 1] = False
        owner = torch.tensor(positions).unsqueeze(1).expand_as(mask)
        out.append((lp[mask], target[mask], owner[mask]))
    return out


def reference_log_probs(
    reference, ref_encoded: list, fb: FeatureBatches, tokens: list[list[int]], prompt_len: int, device: str
):
    """fp32's teacher-forced log-probabilities at the scored positions; computed once per corpus and reused."""
    return _scored(reference, ref_encoded, fb, tokens, prompt_len, device)


def teacher_forced(
    model,
    encoded: list,
    ref_scored: list,
    fb: FeatureBatches,
    tokens: list[list[int]],
    prompt_len: int,
    device: str,
    keep: bool = False,
) -> TeacherForced:
    """Compare ``model`` with fp32 (``reference_log_probs``) on the same reference tokens, utterance by utterance.

    ``encoded`` is the model's encoder output per batch (``encoder_outputs``); ``tokens`` are per utterance in
    corpus order. Positions before the end of the prompt are not scored, nor utterances over 30 s (``fb.long``);
    ``keep`` keeps each utterance's log-probabilities."""
    import torch

    n = len(fb.ids)
    sums = torch.zeros((3, n), dtype=torch.float64)
    count = torch.zeros(n, dtype=torch.float64)
    digests: dict[int, str] = {}
    kept: dict[str, object] = {}
    for (lq, target, owner), (lp, _, _) in zip(_scored(model, encoded, fb, tokens, prompt_len, device), ref_scored):
        for p in owner.unique().tolist():  # an utterance's scored positions are contiguous, in order
            rows = lq[owner == p]
            digests[p] = digest(rows)
            if keep:
                kept[fb.ids[p]] = rows
        kl = (lp.exp() * (lp - lq)).sum(-1)  # KL(fp32 || config) per position
        agree = (lp.argmax(-1) == lq.argmax(-1)).double()
        nll = -lq.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        for row, values in enumerate((kl.double(), agree, nll.double())):
            sums[row].index_add_(0, owner, values)
        count.index_add_(0, owner, torch.ones(len(owner), dtype=torch.float64))
    scored = sorted(fb.windowed)  # utterances over 30 s have no single encoder window: not scored
    if bool((count[scored] == 0).any()):
        raise ValueError("an utterance has no scored token position (empty reference text?)")
    kl, top1, nll = ((sums[row][scored] / count[scored]).tolist() for row in range(3))
    ids = [fb.ids[p] for p in scored]
    return TeacherForced(
        ids, kl, top1, nll, [int(c) for c in count[scored]], [digests[p] for p in scored], kept if keep else None
    )


def divergence(reference: dict, candidate: dict) -> dict[str, tuple[float, float]]:
    """Per utterance of both: (mean KL(reference || candidate) over its scored positions, top-1 agreement) between
    two sets of log-probabilities of the same model on the same tokens (e.g. one configuration in two
    environments)."""
    import torch

    out = {}
    for utt, lq in candidate.items():
        if utt not in reference:
            continue
        lp = torch.as_tensor(reference[utt], dtype=torch.float32)
        kl = (lp.exp() * (lp - lq)).sum(-1).double().mean()
        agree = (lp.argmax(-1) == lq.argmax(-1)).double().mean()
        out[utt] = (float(kl), float(agree))
    return out


# ----------------------------------------------------------------------------- fixed workload


@dataclass
class Workload:
    """A fixed amount of model work, the same for every configuration: the encoder over ``feats`` and
    ``steps`` incremental (KV-cached) decoder steps over fixed tokens, as greedy decoding runs them."""

    feats: object  # (batch, n_mels, frames)
    tokens: object  # (batch, steps + 1) long

    @classmethod
    def build(cls, fb: FeatureBatches, tokens: list[list[int]], batch: int, steps: int) -> Workload:
        import torch

        feats = fb.batches[0][:batch]
        rows = [tokens[p] for p in fb.order[:batch]]
        fill = rows[0][-1]
        ids = torch.full((len(rows), steps + 1), fill, dtype=torch.long)
        for r, seq in enumerate(rows):
            seq = seq[: steps + 1]
            ids[r, : len(seq)] = torch.tensor(seq)
        return cls(feats, ids)

    def describe(self) -> str:
        return f"encoder over {self.feats.shape[0]} utterance(s) + {self.tokens.shape[1] - 1} KV-cached decoder steps"

    def run(self, model, device: str) -> None:
        import torch

        with torch.no_grad():
            x = self.feats.to(device=device, dtype=input_dtype(model))
            enc = model.get_encoder()(x)
            ids = self.tokens.to(device)
            key = cache_argument(model)
            past = None
            for step in range(ids.shape[1] - 1):
                out = model(
                    encoder_outputs=enc, decoder_input_ids=ids[:, step : step + 1], use_cache=True, **{key: past}
                )
                past = getattr(out, key, None) or out.past_key_values
            if device.startswith("cuda"):
                torch.cuda.synchronize()


def cache_argument(model) -> str:
    """The keyword this transformers version takes for the decoder's KV cache (``cache`` since 5.x)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
