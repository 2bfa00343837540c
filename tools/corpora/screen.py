"""Screen the Asterisk prompts with fp32 Whisper: the prompts both models hear differently from their script.

    python -m tools.corpora.screen            # prints the SCREEN_DROP candidates and compares with sources/asterisk.py

Every prompt the static rules of ``sources/asterisk.py`` keep is converted as the builder converts it (sox, 16 kHz
FLAC) and transcribed by ``tiny.en`` and ``base`` (fp32, greedy, the benchmark's own transcription and scoring:
``measure.py``). A prompt is listed when its WER against the script, after Whisper's English normalizer, is over
``asterisk.SCREEN_WER`` for both models. Each listed prompt's reason in ``SCREEN_DROP`` was written after reading
its script against both hypotheses; this script checks that SCREEN_DROP names exactly the listed prompts (exit 1 if
not) and prints, per prompt, the text and both hypotheses to judge by. ``--all`` prints every prompt either model
gets wrong (where the ``ERRATA`` of sources/asterisk.py were found), marked DROP, ERRATA or keep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.corpora.common import DEFAULT_WORK, ensure_apt, to_flac
from tools.corpora.measure import MODELS, transcribe_corpus
from tools.corpora.sources import asterisk
from whisper_ptq_bench.data.corpus import Corpus, Utterance
from whisper_ptq_bench.data.offline import flac_loader  # the package's decoder, its errors included
from whisper_ptq_bench.metrics import score


def screened(wers: dict[str, list[float]], threshold: float) -> list[str]:
    """Prompts whose per-utterance WER is over ``threshold`` for every model: {name: [WER per model]} -> names."""
    return [name for name, per_model in wers.items() if all(w > threshold for w in per_model)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.corpora.screen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch cache (default: %(default)s)")
    parser.add_argument("--all", action="store_true", help="print every prompt with an error, not only the listed")
    args = parser.parse_args(argv)
    debs = ensure_apt((asterisk.WAV_PACKAGE, asterisk.TEXT_PACKAGE, "sox"))
    asterisk.check_pins(debs)
    kept, _ = asterisk.candidates(debs)
    audio = args.work / "screen-asterisk"
    utts = []
    for name, it in kept:
        flac = audio / f"{it.id}.flac"
        if not flac.is_file():
            to_flac(it.path, flac)
        utts.append(Utterance(name, it.text, it.source, it.license, flac_loader(flac, it.id, "asterisk screen")))
    corpus = Corpus("asterisk-candidates", utts)
    names, texts = [u.id for u in corpus], [u.text for u in corpus]
    results = {model: score(names, texts, transcribe_corpus(model, corpus)) for model in MODELS}
    wers = {
        n: [results[m].utterances[i].errors / results[m].utterances[i].words for m in MODELS]
        for i, n in enumerate(names)
    }
    listed = screened(wers, asterisk.SCREEN_WER)
    for model in MODELS:
        print(f"{model}: WER {100 * results[model].wer:.1f} % on {len(names)} candidate prompts")
    for i, name in enumerate(names):
        if name in listed or name in asterisk.ERRATA or (args.all and any(wers[name])):
            mark = "DROP" if name in listed else "ERRATA" if name in asterisk.ERRATA else "keep"
            print(f"{mark:<6} {name!r}: WER " + " / ".join(f"{m} {w:.2f}" for m, w in zip(MODELS, wers[name])))
            print(f"     text:    {texts[i]!r}")
            for m in MODELS:
                print(f"     {m + ':':<8} {results[m].utterances[i].hypothesis!r}")
    print(f"{len(listed)} of {len(names)} prompts over WER {asterisk.SCREEN_WER} for both models: {listed}")
    if sorted(listed) != sorted(asterisk.SCREEN_DROP):
        print(
            f"SCREEN_DROP differs: missing {sorted(set(listed) - set(asterisk.SCREEN_DROP))}, "
            f"extra {sorted(set(asterisk.SCREEN_DROP) - set(listed))}"
        )
        return 1
    print("SCREEN_DROP in sources/asterisk.py names exactly these prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
