"""LibriSpeech test-clean / test-other through `datasets` (hub users), and any dataset of the same schema."""

from __future__ import annotations

import io
import os

import numpy as np

from whisper_ptq_bench.data.corpus import Corpus, Utterance, check_text, prepare_audio
from whisper_ptq_bench.errors import CorpusError

HUB_DATASET = "openslr/librispeech_asr"
CONDITIONS = {"librispeech-clean": "clean", "librispeech-other": "other"}
LICENSE = "CC-BY-4.0 (LibriSpeech, openslr.org/12)"


def load_librispeech(
    name: str, *, path: str | None = None, max_utterances: int | None = None, streaming: bool | None = None
) -> Corpus:
    """Load the test split of LibriSpeech ``clean`` or ``other``.

    ``path`` defaults to the hub dataset (or ``$WHISPER_PTQ_BENCH_LIBRISPEECH``); a local directory in
    the same schema (audio, text, id, speaker_id, chapter_id) goes through the same ``datasets`` path.
    ``max_utterances`` keeps the first N utterances of the split's fixed order.
    """
    if name not in CONDITIONS:
        raise CorpusError(f"unknown LibriSpeech corpus {name!r}; use one of {sorted(CONDITIONS)}")
    import datasets

    path = path or os.environ.get("WHISPER_PTQ_BENCH_LIBRISPEECH") or HUB_DATASET
    if streaming is None:
        streaming = path == HUB_DATASET and max_utterances is not None
    try:
        ds = datasets.load_dataset(path, CONDITIONS[name], split="test", streaming=streaming)
    except Exception as err:  # datasets raises many kinds (ConnectionError, FileNotFoundError, DatasetNotFoundError...)
        raise CorpusError(
            f"could not load {name} from {path!r} ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            "without hub access use the offline corpora (read-clean, read-other, synth-clean, synth-other) "
            "or point WHISPER_PTQ_BENCH_LIBRISPEECH at a local copy"
        ) from err
    missing = {"audio", "text", "id"} - set(ds.column_names or ds.features or [])
    if missing:
        raise CorpusError(f"dataset {path!r} lacks the LibriSpeech columns {sorted(missing)}")
    # decode ourselves with soundfile: no dependency on the torchcodec/ffmpeg audio stack
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    utterances = []
    for row in ds:
        if max_utterances is not None and len(utterances) >= max_utterances:
            break
        utt_id = str(row["id"])
        utterances.append(
            Utterance(
                id=utt_id,
                text=check_text(row["text"], utt_id, name).lower(),
                source=f"{path}:{CONDITIONS[name]}/test speaker {row.get('speaker_id', '?')} chapter {row.get('chapter_id', '?')}",
                license=LICENSE,
                speaker=str(row.get("speaker_id", "")),
                _loader=_decoder(row["audio"], utt_id, name),
            )
        )
    return Corpus(name, utterances, description=f"LibriSpeech test-{CONDITIONS[name]} via datasets ({path})")


def _decoder(audio: dict, utt_id: str, corpus: str):
    payload = dict(audio)

    def load() -> np.ndarray:
        import soundfile as sf

        data = payload.get("bytes")
        source = io.BytesIO(data) if data else payload.get("path")
        if source is None:
            raise CorpusError(f"utterance {utt_id!r} of corpus {corpus!r}: row has neither audio bytes nor a path")
        try:
            samples, rate = sf.read(source, dtype="float32", always_2d=False)
        except (RuntimeError, sf.LibsndfileError) as err:
            raise CorpusError(f"utterance {utt_id!r} of corpus {corpus!r}: audio does not decode ({err})") from None
        return prepare_audio(samples, rate, utt_id, corpus=corpus)

    return load
