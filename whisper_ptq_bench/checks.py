"""Regression checks: small objects whose ``fails()`` returns a message, or None when the case holds."""

from __future__ import annotations

from dataclasses import dataclass

from whisper_ptq_bench.metrics import WerResult, paired_bootstrap, score


def pts(x: float) -> str:
    return f"{x * 100:+.2f}"


@dataclass
class Obtained:
    """What a case measured, in the terms the checks compare."""

    case_id: str
    wer: WerResult
    compression: float
    speedup: float
    corpus_hash: str
    model_fingerprint: str
    transcripts: dict[str, str]
    batching: str | None = None


@dataclass
class WerCheck:
    """WER may not rise more than ``tolerance``; a rise fails only if the paired bootstrap finds it significant."""

    tolerance: float
    alpha: float
    seed: int = 0

    def interval(self, obtained: Obtained, expected: dict):
        ids = [u.id for u in obtained.wer.utterances]
        refs = [u.reference for u in obtained.wer.utterances]
        old = score(ids, refs, [expected["transcripts"].get(i, "") for i in ids])
        return old, paired_bootstrap(old.error_vector(), obtained.wer.error_vector(), obtained.wer.word_vector(), seed=self.seed)

    def fails(self, obtained: Obtained, expected: dict) -> str | None:
        old, iv = self.interval(obtained, expected)
        rise = obtained.wer.wer - old.wer
        significant = iv.p_worse < self.alpha and iv.low > 0
        if rise > self.tolerance and significant:
            worst = sorted(
                ((u.errors - o.errors, u) for u, o in zip(obtained.wer.utterances, old.utterances)), key=lambda t: -t[0]
            )
            names = ", ".join(f"{u.id} (+{d})" for d, u in worst[:5] if d > 0)
            return (
                f"WER rose {pts(rise)} points ({old.wer:.2%} -> {obtained.wer.wer:.2%}), beyond the tolerance of "
                f"{self.tolerance * 100:.2f}; paired bootstrap 95% CI [{pts(iv.low)}, {pts(iv.high)}] points, "
                f"p={iv.p_worse:.4f}; utterances with more errors: {names}"
            )
        return None


@dataclass
class CompressionCheck:
    """Compression (fraction of the fp32 size saved) may not drop."""

    tolerance: float

    def fails(self, obtained: Obtained, expected: dict) -> str | None:
        if obtained.compression < expected["compression"] - self.tolerance:
            return (
                f"compression dropped from {expected['compression']:.2%} to {obtained.compression:.2%} of the fp32 size "
                "saved: the library now stores more bytes for this configuration"
            )
        return None


@dataclass
class SpeedCheck:
    """The speed-up over fp32 (same session) may not fall below baseline x (1 - tolerance)."""

    tolerance: float

    def fails(self, obtained: Obtained, expected: dict) -> str | None:
        floor = expected["speedup"] * (1 - self.tolerance)
        if obtained.speedup < floor:
            return (
                f"speed-up over fp32 fell from {expected['speedup']:.2f}x to {obtained.speedup:.2f}x "
                f"(floor {floor:.2f}x at tolerance {self.tolerance:.0%})"
            )
        return None


@dataclass
class SameInputCheck:
    """A baseline is comparable only on the same corpus content, the same fp32 weights and the same batching
    (batch composition changes what dynamically quantized models output)."""

    def fails(self, obtained: Obtained, expected: dict) -> str | None:
        if expected["corpus_hash"] != obtained.corpus_hash:
            return (
                f"the corpus changed (content hash {expected['corpus_hash']} in the baseline, {obtained.corpus_hash} now): "
                "the baseline is not comparable; rerun with --ptq-update-baselines once the change is intended"
            )
        if expected.get("model_fingerprint") and expected["model_fingerprint"] != obtained.model_fingerprint:
            return (
                f"the fp32 weights changed (fingerprint {expected['model_fingerprint'][:12]} in the baseline, "
                f"{obtained.model_fingerprint[:12]} now); rerun with --ptq-update-baselines once intended"
            )
        if expected.get("batching") and obtained.batching and expected["batching"] != obtained.batching:
            return (
                f"the baseline was recorded with {expected['batching']!r} and this run uses {obtained.batching!r}: "
                "not comparable; rerun with the baseline's --ptq-batch-size/--ptq-encoder-batch-size, "
                "or accept the change with --ptq-update-baselines"
            )
        return None


@dataclass
class TranscriptCheck:
    """Transcripts that changed are listed even when WER holds; a failure only in strict mode."""

    strict: bool

    def changed(self, obtained: Obtained, expected: dict) -> list[tuple[str, str, str, str]]:
        refs = {u.id: u.reference for u in obtained.wer.utterances}
        old = expected["transcripts"]
        return [(i, refs.get(i, ""), old.get(i, "<absent>"), new) for i, new in obtained.transcripts.items() if old.get(i) != new]

    def message(self, changes) -> str:
        lines = [f"{len(changes)} transcript(s) changed:"]
        for utt, ref, old, new in changes[:10]:
            lines.append(f"  {utt}: reference {ref!r}\n      old {old!r}\n      new {new!r}")
        if len(changes) > 10:
            lines.append(f"  ... and {len(changes) - 10} more")
        return "\n".join(lines)

    def fails(self, obtained: Obtained, expected: dict) -> str | None:
        changes = self.changed(obtained, expected)
        return self.message(changes) if changes and self.strict else None


def checks_for(tol: dict, strict_transcripts: bool) -> list:
    return [
        SameInputCheck(),
        WerCheck(tol["wer"], tol["alpha"]),
        CompressionCheck(tol["compression"]),
        SpeedCheck(tol["speedup"]),
        TranscriptCheck(strict_transcripts),
    ]
