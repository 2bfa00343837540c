"""The offline corpora shipped with the package: FLAC files described by a manifest per corpus.

The corpora and their manifests are written by the maintainers' builder, ``python -m tools.corpora`` run from a
checkout (``tools/corpora``; not installed with the package).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from whisper_ptq_bench.data.corpus import Corpus, Utterance, check_text, prepare_audio
from whisper_ptq_bench.digest import file_sha256
from whisper_ptq_bench.errors import CorpusError

CORPORA_DIR = Path(__file__).with_name("corpora")  # shipped with the package


def corpora_dir() -> Path:
    """The directory of offline corpora: $WHISPER_PTQ_BENCH_CORPORA, else the one shipped."""
    return Path(os.environ.get("WHISPER_PTQ_BENCH_CORPORA") or CORPORA_DIR)


MANIFEST = "manifest.json"
MANIFEST_FIELDS = ("id", "file", "text", "duration", "sha256", "source", "license")


def offline_corpus_names(root: Path | None = None) -> list[str]:
    root = root or corpora_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{MANIFEST}"))


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path}: corpus manifest is missing") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path}: manifest is not UTF-8 ({err})") from None
    except json.JSONDecodeError as err:
        raise CorpusError(
            f"{path}: manifest does not parse at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("utterances"), list):
        raise CorpusError(f"{path}: manifest must be an object with a list 'utterances'")
    for i, entry in enumerate(manifest["utterances"]):
        missing = [f for f in MANIFEST_FIELDS if f not in entry]
        if missing:
            raise CorpusError(f"{path}: utterance #{i} ({entry.get('id', '?')!r}) lacks fields {missing}")
    return manifest


def load_offline(name: str, root: Path | None = None, *, verify: bool = True) -> Corpus:
    """Load a shipped corpus; each file (or mixed PCM) is checked against the manifest's sha256 before use.

    An entry with a ``mix`` block is derived: its clean FLAC plus a noise track at a stored offset and
    gain, mixed in integer PCM (``whisper_ptq_bench.data.mix``); its sha256 is that of the mixed PCM.
    """
    root = root or corpora_dir()
    directory = root / name
    if not directory.is_dir():
        raise CorpusError(
            f"unknown offline corpus {name!r}; shipped corpora: {', '.join(offline_corpus_names(root)) or 'none'}"
        )
    manifest = read_manifest(directory)
    utterances = []
    for entry in manifest["utterances"]:
        utt_id = str(entry["id"])
        path = (directory / entry["file"]).resolve()
        if not path.is_file():
            raise CorpusError(f"utterance {utt_id!r} of corpus {name!r}: file {path} listed in the manifest is missing")
        mix = entry.get("mix")
        if mix is not None:
            noise = (directory / str(mix.get("noise", ""))).resolve()
            if not noise.is_file():
                raise CorpusError(f"utterance {utt_id!r} of corpus {name!r}: noise track {noise} is missing")
            loader = _mixed_loader(
                path, noise, int(mix["offset"]), float(mix["gain"]), utt_id, name, entry["sha256"] if verify else None
            )
        else:
            if verify:
                got = file_sha256(path)
                if got != entry["sha256"]:
                    raise CorpusError(
                        f"utterance {utt_id!r} of corpus {name!r}: {path} has sha256 {got[:16]}..., "
                        f"the manifest says {str(entry['sha256'])[:16]}...; the file was changed or damaged"
                    )
            loader = flac_loader(path, utt_id, name)
        utterances.append(
            Utterance(
                id=utt_id,
                text=check_text(entry["text"], utt_id, name),
                source=str(entry["source"]),
                license=str(entry["license"]),
                speaker=str(entry.get("speaker", "")),
                digest=str(entry["sha256"]),
                _loader=loader,
            )
        )
    return Corpus(name, utterances, description=str(manifest.get("description", "")))


def _read(path: Path, utt_id: str, corpus: str, dtype: str):
    import soundfile as sf

    try:
        return sf.read(str(path), dtype=dtype, always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise CorpusError(f"utterance {utt_id!r} of corpus {corpus!r}: {path} does not decode ({err})") from None


def flac_loader(path: Path, utt_id: str, corpus: str):
    def load():
        samples, rate = _read(path, utt_id, corpus, "float32")
        return prepare_audio(samples, rate, utt_id, corpus=corpus)

    return load


_NOISE_CACHE: dict[Path, object] = {}


def _mixed_loader(clean: Path, noise: Path, offset: int, gain: float, utt_id: str, corpus: str, sha256: str | None):
    def load():
        from whisper_ptq_bench.data.mix import mix_int16, pcm_sha256

        samples, rate = _read(clean, utt_id, corpus, "int16")
        if noise not in _NOISE_CACHE:
            _NOISE_CACHE[noise] = _read(noise, utt_id, corpus, "int16")
        track, noise_rate = _NOISE_CACHE[noise]
        if samples.ndim != 1 or track.ndim != 1 or rate != noise_rate:
            raise CorpusError(
                f"utterance {utt_id!r} of corpus {corpus!r}: clean audio and noise must both be mono at one rate"
            )
        mixed = mix_int16(samples, track, offset, gain)
        if sha256 is not None and pcm_sha256(mixed) != sha256:
            raise CorpusError(
                f"utterance {utt_id!r} of corpus {corpus!r}: mixed audio has sha256 {pcm_sha256(mixed)[:16]}..., "
                f"the manifest says {sha256[:16]}...; the clean file, the noise track or the mix changed"
            )
        return prepare_audio(mixed.astype("float32") / 32768.0, rate, utt_id, corpus=corpus)

    return load
