"""fp32 Whisper WER on built corpora (or on candidate noise mixes), with the package's own transcription and scoring.

    python -m tools.corpora.measure read-clean read-other                      # tiny.en and base, fp32
    python -m tools.corpora.measure read-clean --mix pink:5,babble:10 --mix pink:10,babble:15

Each corpus is transcribed as the benchmark transcribes it (``whisper_ptq_bench.transcribe``: greedy, the
offline model's default generation settings, batches of 8 by duration) and scored with its metrics (Whisper's
English normalizer, then jiwer). ``--mix`` scores the clean corpus mixed in memory by a candidate plan (kind:SNR
per utterance parity, as ``noisy.py`` mixes), to choose the SNRs of a ``-other`` corpus without rebuilding it.
Used by ``screen.py``; the figures in docs/corpora.md were measured with it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from tools.corpora.common import DEFAULT_OUT, read_pcm
from tools.corpora.noisy import mixed_pcm
from whisper_ptq_bench.data.corpus import Corpus, prepare_audio
from whisper_ptq_bench.data.offline import load_offline
from whisper_ptq_bench.metrics import WerResult, score

MODELS = ("tiny.en", "base")
BATCH_SIZE = 8  # the benchmark's default (runner.Options.batch_size)


def transcribe_corpus(model_name: str, corpus: Corpus) -> list[str]:
    """fp32 transcripts of every utterance (corpus order), exactly as the benchmark's reference run makes them."""
    from whisper_ptq_bench.models import load
    from whisper_ptq_bench.transcribe import default_encoder_batch_size, features, transcribe

    loaded = load(model_name)
    fb = features(loaded.processor, corpus, BATCH_SIZE)
    return transcribe(
        loaded.model,
        loaded.generation_config,
        loaded.processor.tokenizer,
        fb,
        encoder_batch_size=default_encoder_batch_size("cpu"),
    )


def wer_of(model_name: str, corpus: Corpus) -> WerResult:
    hyps = transcribe_corpus(model_name, corpus)
    return score([u.id for u in corpus], [u.text for u in corpus], hyps)


def parse_mix(spec: str) -> tuple[tuple[str, float], ...]:
    """``pink:5,babble:10`` -> (("pink", 5.0), ("babble", 10.0)): the plan for even and odd utterances."""
    plan = []
    for part in spec.split(","):
        kind, _, snr = part.partition(":")
        if kind not in ("pink", "babble") or not snr:
            raise SystemExit(f"--mix: expected KIND:SNR[,KIND:SNR] with KIND pink or babble, got {spec!r}")
        plan.append((kind, float(snr)))
    return tuple(plan)


def mixed_corpus(out: Path, clean_name: str, plan: tuple[tuple[str, float], ...]) -> Corpus:
    """``clean_name`` mixed in memory by ``plan``: the audio ``noisy.py`` would write for it."""
    clean = load_offline(clean_name, out)
    tracks = {kind: read_pcm(out / "noise" / f"{kind}.flac") for kind, _ in plan}
    label = "+".join(f"{k}{s:g}" for k, s in plan)
    utts = []
    for i, u in enumerate(clean):

        def load(u=u, i=i):
            pcm = read_pcm(out / clean_name / "audio" / f"{u.id}.flac")
            mixed, _, _ = mixed_pcm(u.id, pcm, i, tracks, plan)
            return prepare_audio(mixed.astype("float32") / 32768.0, 16000, u.id)

        utts.append(replace(u, digest="", _loader=load))
    return Corpus(f"{clean_name}@{label}", utts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.corpora.measure", description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="+", help="built corpora to score (names under --out)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="corpora directory (default: %(default)s)")
    parser.add_argument("--models", default=",".join(MODELS), help="offline models (default: %(default)s)")
    parser.add_argument(
        "--mix", action="append", default=[], help="also score each clean corpus mixed by this plan (repeatable)"
    )
    parser.add_argument("--per-utterance", action="store_true", help="print every utterance's errors")
    args = parser.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        for name in args.corpora:
            variants = [load_offline(name, args.out)]
            variants += [mixed_corpus(args.out, name, parse_mix(spec)) for spec in args.mix]
            for corpus in variants:
                result = wer_of(model, corpus)
                rows.append(
                    f"{model:<8} {corpus.name:<32} {len(corpus):>4} utts {result.words:>5} words  "
                    f"WER {100 * result.wer:5.1f} %"
                )
                print(rows[-1], flush=True)
                if args.per_utterance:
                    for u in result.utterances:
                        if u.errors:
                            print(f"  {u.id}: {u.errors}/{u.words}  ref={u.reference!r}  hyp={u.hypothesis!r}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
