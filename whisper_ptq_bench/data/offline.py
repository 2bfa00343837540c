"""The offline corpora shipped with the package: FLAC files described by a manifest per corpus."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from whisper_ptq_bench.data.corpus import Corpus, Utterance, check_text, prepare_audio
from whisper_ptq_bench.errors import CorpusError

CORPORA_DIR = Path(__file__).with_name("corpora")
MANIFEST = "manifest.json"
MANIFEST_FIELDS = ("id", "file", "text", "duration", "sha256", "source", "license")


def offline_corpus_names(root: Path = CORPORA_DIR) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{MANIFEST}"))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
        raise CorpusError(f"{path}: manifest does not parse at line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("utterances"), list):
        raise CorpusError(f"{path}: manifest must be an object with a list 'utterances'")
    for i, entry in enumerate(manifest["utterances"]):
        missing = [f for f in MANIFEST_FIELDS if f not in entry]
        if missing:
            raise CorpusError(f"{path}: utterance #{i} ({entry.get('id', '?')!r}) lacks fields {missing}")
    return manifest


def load_offline(name: str, root: Path = CORPORA_DIR, *, verify: bool = True) -> Corpus:
    """Load a shipped corpus; each file is checked against the manifest's sha256 before use."""
    directory = root / name
    if not directory.is_dir():
        raise CorpusError(f"unknown offline corpus {name!r}; shipped corpora: {', '.join(offline_corpus_names(root)) or 'none'}")
    manifest = read_manifest(directory)
    utterances = []
    for entry in manifest["utterances"]:
        utt_id = str(entry["id"])
        path = directory / entry["file"]
        if not path.is_file():
            raise CorpusError(f"utterance {utt_id!r} of corpus {name!r}: file {path} listed in the manifest is missing")
        if verify:
            got = file_sha256(path)
            if got != entry["sha256"]:
                raise CorpusError(
                    f"utterance {utt_id!r} of corpus {name!r}: {path} has sha256 {got[:16]}..., "
                    f"the manifest says {str(entry['sha256'])[:16]}...; the file was changed or damaged"
                )
        utterances.append(
            Utterance(
                id=utt_id,
                text=check_text(entry["text"], utt_id, name),
                source=str(entry["source"]),
                license=str(entry["license"]),
                speaker=str(entry.get("speaker", "")),
                digest=str(entry["sha256"]),
                _loader=_flac_loader(path, utt_id, name),
            )
        )
    return Corpus(name, utterances, description=str(manifest.get("description", "")))


def _flac_loader(path: Path, utt_id: str, corpus: str):
    def load():
        import soundfile as sf

        try:
            samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
        except (RuntimeError, sf.LibsndfileError) as err:
            raise CorpusError(f"utterance {utt_id!r} of corpus {corpus!r}: {path} does not decode ({err})") from None
        return prepare_audio(samples, rate, utt_id, corpus=corpus)

    return load
