"""Debian ``asterisk-core-sounds-en-wav``: Allison Smith's English telephony prompts (8 kHz), with the prompt script.

The script (``core-sounds-en.txt.gz`` of ``asterisk-core-sounds-en``) gives each prompt's text. Kept: prompts of
three words or more that are read from the script as written. Dropped, each with its reason: by rule
(``rule_out``) silences, annotated sounds, short prompts, spelled letters, keys written as symbols, fragments
ending in '...' and prompts over 30 s; then those both fp32 Whisper models hear differently from the script
(``SCREEN_DROP``, recomputed by ``python -m tools.corpora.screen``) and those whose script is wrong (``ERRATA``).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import soundfile as sf

from tools.corpora.common import BuildError
from tools.corpora.plan import Dropped, Notice, RealItem, RealPlan

WAV_PACKAGE = "asterisk-core-sounds-en-wav"
TEXT_PACKAGE = "asterisk-core-sounds-en"
# The screening below was made on exactly these recordings and this script.
PINS = {WAV_PACKAGE: "1.6.1-1", TEXT_PACKAGE: "1.6.1-1"}
SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
SCRIPT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
COPYRIGHT = Path("/usr/share/doc/asterisk-core-sounds-en-wav/copyright")
MIN_WORDS = 3
MAX_SECONDS = 30.0
LICENSE = (
    "CC-BY-SA-3.0 (Asterisk core sound prompts, recorded by Allison Smith, financial contributions by Digium, "
    "Inc.; resampled from 8 kHz to 16 kHz: derived audio stays under CC-BY-SA-3.0; "
    "licence text in licenses/asterisk-core-sounds-en.copyright)"
)
SCRIPT_LINE = re.compile(r"([^\s:;][^\s:]*):\s*(.*)")
ANNOTATION = re.compile(r"[\[\]()<>]")  # [beep tone], (1 second of silence), <beep ascending>, (note: ...)
KEY_SYMBOL = re.compile(r"[#*]")
WORD = re.compile(r"[A-Za-z0-9]")  # a word has a letter or digit: "..." is not one
LETTER = re.compile(r"[A-Za-z]\.?")

# Prompts that both tiny.en and base (fp32, greedy) transcribe at a WER over SCREEN_WER against the script,
# after Whisper's English normalizer; each was then checked by eye against both hypotheses (printed by
# ``python -m tools.corpora.screen``, which recomputes this list and compares). name: reason.
SCREEN_WER = 0.34
SCREEN_DROP = {
    "is-set-to": (
        "a fragment spliced between other prompts: both models hear 'is that too?' in 'is set to', whose words "
        "are not recoverable out of context"
    ),
    "queue-quantity2": (
        "both models hear 'colors waiting to speak with the representatives': 'callers' out of context, and "
        "'the representatives' where the script says 'a representative'"
    ),
    "to-rerecord-it": "a fragment: the models hear 'do we record it?' and 'to be recorded' for 'to re-record it'",
    "vm-incorrect-mailbox": (
        "both models hear 'login and correct. mailbox' for 'login incorrect. mailbox?' (3 words, 2 errors each)"
    ),
}
# Prompts whose script is not what is said, seen by eye in the screen's output (``--all`` prints every prompt
# either model gets wrong) although the rule above keeps them: the transcript would be wrong. name: reason.
ERRATA = {
    "conf-adminmenu-menu8": "the script misspells 'unmute' as 'umute'",
    "queue-periodic-announce": "the script misspells 'representatives' as 'represenatives'",
    "unidentified-no-callback": "the script misspells 'unidentified' as 'Un-indentified' and 'withheld' as 'witheld'",
    "pbx-invalid": (
        "both models hear 'I am sorry, but that's not a valid extension', while the prompt 'invalid', with the "
        "same script, is heard without 'but': this recording says more than its script"
    ),
    "pbx-invalidpark": (
        "both models hear 'I am sorry, but there is no call parked', as in 'pbx-invalid': the recording says more "
        "than its script"
    ),
}


def parse_script(text: str) -> list[tuple[str, str]]:
    """``core-sounds-en.txt`` -> [(prompt name, text with whitespace collapsed)] in file order; ``;`` comments and
    blank lines skipped."""
    prompts = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        m = SCRIPT_LINE.fullmatch(line.strip())
        if not m:
            raise BuildError(f"core-sounds-en.txt line {n} not understood: {line!r}")
        prompts.append((m.group(1), " ".join(m.group(2).split())))
    return prompts


def rule_out(name: str, text: str, seconds: float | None) -> str | None:
    """Why prompt ``name`` (script ``text``, recording of ``seconds``; None when there is no recording) is not read
    speech with an exact transcript, by the static rules; None when it is a candidate."""
    if seconds is None:
        return "no recording of that name in asterisk-core-sounds-en-wav"
    if name.startswith("silence/"):
        return "a stretch of silence, not speech"
    if ANNOTATION.search(text):
        return "the script describes a sound or annotates the reading ([...], (...), <...>) instead of giving only the words said"
    words = [w for w in text.split() if WORD.search(w)]
    if len(words) < MIN_WORDS:
        return f"fewer than {MIN_WORDS} words"
    if all(LETTER.fullmatch(w) for w in words):
        return "spelled-out letters, not words (Whisper writes them as one acronym, which the normalizer leaves whole)"
    if KEY_SYMBOL.search(text):
        return "the script writes a telephone key as '#' or '*', which the reader says as a word"
    if text.endswith("..."):
        return (
            "a fragment that another prompt completes (its script ends in '...'; Whisper's English normalizer "
            "keeps a '.' token for that final '...', an error for every transcript)"
        )
    if seconds > MAX_SECONDS:
        return f"{seconds:.1f} s, over the corpora's {MAX_SECONDS:g} s limit"
    return None


def check_pins(debs: dict[str, str]) -> None:
    for package, version in PINS.items():
        if debs.get(package) != version:
            raise BuildError(
                f"{package} {debs.get(package) or 'is not installed'}: the Asterisk prompts were screened on "
                f"{version} (rerun python -m tools.corpora.screen and update SCREEN_DROP for another version)"
            )


def item(name: str, text: str, debs: dict[str, str], sounds: Path, script: Path) -> RealItem:
    wav = sounds / f"{name}.wav"
    return RealItem(
        f"asterisk-{name.replace('/', '-')}",
        wav,
        text,
        f"{WAV_PACKAGE}=={debs[WAV_PACKAGE]} (Debian) {wav} (8 kHz, resampled)",
        f"Asterisk core sound prompt {name!r} (read by Allison Smith)",
        LICENSE,
        f"{TEXT_PACKAGE}=={debs[TEXT_PACKAGE]} (Debian) {script}",
        speaker="asterisk-allison",
    )


def candidates(
    debs: dict[str, str], sounds: Path | None = None, script: Path | None = None
) -> tuple[list[tuple[str, RealItem]], list[Dropped]]:
    """The prompts the static rules keep (name, item), before the Whisper screen; and the ones they drop. The
    installed packages' files (SOUNDS, SCRIPT) unless others are given."""
    sounds = SOUNDS if sounds is None else sounds
    script = SCRIPT if script is None else script
    kept, dropped, short = [], [], []
    for name, text in parse_script(gzip.decompress(script.read_bytes()).decode("utf-8")):
        wav = sounds / f"{name}.wav"
        seconds = None
        if wav.is_file():
            info = sf.info(str(wav))
            seconds = info.frames / info.samplerate
        why = rule_out(name, text, seconds)
        if why is None:
            kept.append((name, item(name, text, debs, sounds, script)))
        elif why.startswith("fewer than"):
            short.append(name)
        else:
            dropped.append(Dropped(f"{TEXT_PACKAGE} prompt {name!r} ({text!r})", why))
    if short:
        dropped.append(
            Dropped(
                f"{TEXT_PACKAGE}: {len(short)} prompts of one or two words ({short[0]}, ..., {short[-1]})",
                f"fewer than {MIN_WORDS} words: single words, digits, letters and phonetic-alphabet words",
            )
        )
    return kept, dropped


def plan(
    debs: dict[str, str], sounds: Path | None = None, script: Path | None = None, copyright: Path | None = None
) -> RealPlan:
    """The kept prompts (static rules, then SCREEN_DROP) and the licence notice; the installed files by default."""
    copyright = COPYRIGHT if copyright is None else copyright
    check_pins(debs)
    if "CC-BY-SA-3.0" not in copyright.read_text(encoding="utf-8"):
        raise BuildError(f"{copyright}: not the CC-BY-SA-3.0 notice of the Asterisk sounds")
    kept, dropped = candidates(debs, sounds, script)
    decided = {**SCREEN_DROP, **ERRATA}
    stale = sorted(set(decided) - {name for name, _ in kept})
    if stale or set(SCREEN_DROP) & set(ERRATA):
        raise BuildError(f"SCREEN_DROP and ERRATA must name distinct candidates; not candidates: {stale}")
    result = RealPlan(dropped=dropped, notices=[Notice("asterisk-core-sounds-en.copyright", copyright)])
    for name, it in kept:
        if name in decided:
            result.dropped.append(Dropped(f"{TEXT_PACKAGE} prompt {name!r} ({it.text!r})", decided[name]))
        else:
            result.items.append(it)
    return result
