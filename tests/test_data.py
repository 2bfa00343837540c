"""Corpora: manifests checked, bad audio and text refused by utterance, LibriSpeech through `datasets`."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pytest
import soundfile as sf

from whisper_ptq_bench.data import corpus as corpus_mod
from whisper_ptq_bench.data.corpus import Corpus, Utterance, check_text, prepare_audio
from whisper_ptq_bench.data.librispeech import load_librispeech
from whisper_ptq_bench.data.mix import gain_for_snr, mix_int16, noise_segment, pcm_sha256
from whisper_ptq_bench.data.offline import load_offline
from whisper_ptq_bench.errors import CorpusError

RATE = 16_000


def tone(seconds=1.0, freq=220.0, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_corpus(root, name="toy", n=3, mix=False):
    d = root / name
    (d / "audio").mkdir(parents=True)
    utts = []
    for i in range(n):
        path = d / "audio" / f"u{i}.flac"
        sf.write(path, tone(0.5 + i * 0.25, 200 + 50 * i), RATE, subtype="PCM_16")
        utts.append(
            {
                "id": f"u{i}",
                "file": f"audio/u{i}.flac",
                "text": f"utterance number {i}",
                "duration": 0.5 + i * 0.25,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "source": "test tones",
                "license": "CC0",
            }
        )
    (d / "manifest.json").write_text(json.dumps({"schema": 1, "name": name, "utterances": utts}))
    return d


def test_manifest_corpus_loads_and_hash_tracks_content(tmp_path):
    make_corpus(tmp_path)
    c = load_offline("toy", tmp_path)
    assert [u.id for u in c] == ["u0", "u1", "u2"]
    assert c.utterances[0].audio.dtype == np.float32
    assert abs(c.seconds - 2.25) < 1e-3 and c.n_words == 9
    h = c.content_hash
    manifest = json.loads((tmp_path / "toy" / "manifest.json").read_text())
    manifest["utterances"][1]["text"] = "utterance number one"
    (tmp_path / "toy" / "manifest.json").write_text(json.dumps(manifest))
    assert load_offline("toy", tmp_path).content_hash != h
    assert c.subset(2).content_hash != h and len(c.subset(2)) == 2


def test_missing_file_names_the_utterance(tmp_path):
    d = make_corpus(tmp_path)
    (d / "audio" / "u1.flac").unlink()
    with pytest.raises(CorpusError, match="utterance 'u1' of corpus 'toy'.*missing"):
        load_offline("toy", tmp_path)


def test_changed_file_fails_its_hash(tmp_path):
    d = make_corpus(tmp_path)
    sf.write(d / "audio" / "u2.flac", tone(0.5, 999), RATE, subtype="PCM_16")
    with pytest.raises(CorpusError, match="utterance 'u2'.*sha256"):
        load_offline("toy", tmp_path)


def test_malformed_manifest_names_line_and_column(tmp_path):
    d = make_corpus(tmp_path)
    (d / "manifest.json").write_text('{"utterances": [\n  {"id": "u0",,}\n]}')
    with pytest.raises(CorpusError, match="line 2, column"):
        load_offline("toy", tmp_path)


def test_non_utf8_manifest_and_text(tmp_path):
    d = make_corpus(tmp_path)
    (d / "manifest.json").write_bytes(b'{"utterances": [{"text": "caf\xe9"}]}')
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_offline("toy", tmp_path)
    with pytest.raises(CorpusError, match="utterance 'x'.*not UTF-8"):
        check_text(b"caf\xe9", "x")


def test_empty_reference_and_empty_audio_name_the_utterance():
    with pytest.raises(CorpusError, match="utterance 'e1'.*empty"):
        check_text("   ", "e1")
    with pytest.raises(CorpusError, match="utterance 'e2'.*empty"):
        prepare_audio(np.zeros(0, np.float32), RATE, "e2")


def test_stereo_is_downmixed_and_other_rates_resampled_once(caplog):
    stereo = np.stack([tone(), tone()], axis=1)
    assert prepare_audio(stereo, RATE, "s").shape == (RATE,)
    corpus_mod._resample_notices.clear()
    with caplog.at_level(logging.WARNING):
        a = prepare_audio(tone(1.0, rate=44_100), 44_100, "r1", corpus="c")
        b = prepare_audio(tone(1.0, rate=44_100), 44_100, "r2", corpus="c")
    assert a.shape == b.shape == (RATE,)
    assert sum("resampling" in r.message for r in caplog.records) == 1


def test_too_low_rate_and_non_finite_audio_are_refused():
    with pytest.raises(CorpusError, match="too low"):
        prepare_audio(tone(rate=4000), 4000, "low")
    bad = tone()
    bad[10] = np.nan
    with pytest.raises(CorpusError, match="NaN"):
        prepare_audio(bad, RATE, "nan")


def test_corpus_refuses_duplicate_ids():
    u = Utterance("same", "a b", "s", "l", lambda: tone())
    with pytest.raises(CorpusError, match="repeats"):
        Corpus("dup", [u, u])


# --------------------------------------------------------------------------- noise mixing


def test_mix_reaches_the_requested_snr_and_is_reproducible():
    rng = np.random.default_rng(0)
    clean = (tone(2.0) * 32767).astype(np.int16)
    noise = rng.integers(-8000, 8000, size=RATE * 3, dtype=np.int16)
    seg = noise_segment(noise, 12345, clean.size)
    gain = gain_for_snr(clean, seg, 5.0)
    mixed = mix_int16(clean, noise, 12345, gain)
    residual = mixed.astype(np.float64) - clean
    snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(residual**2))
    assert abs(snr - 5.0) < 0.05
    assert pcm_sha256(mix_int16(clean, noise, 12345, gain)) == pcm_sha256(mixed)


def test_mixed_entry_checks_its_pcm_hash(tmp_path):
    d = make_corpus(tmp_path, "clean")
    noise_path = tmp_path / "noise.flac"
    rng = np.random.default_rng(1)
    noise = rng.integers(-3000, 3000, size=RATE * 2, dtype=np.int16)
    sf.write(noise_path, noise, RATE, subtype="PCM_16")
    clean, _ = sf.read(d / "audio" / "u0.flac", dtype="int16")
    mixed = mix_int16(clean, noise, 7, 0.5)
    other = tmp_path / "other"
    other.mkdir()
    entry = {
        "id": "u0",
        "file": "../clean/audio/u0.flac",
        "text": "utterance number 0",
        "duration": 0.5,
        "sha256": pcm_sha256(mixed),
        "source": "test",
        "license": "CC0",
        "mix": {"noise": "../noise.flac", "offset": 7, "gain": 0.5, "snr_db": 5, "kind": "random"},
    }
    (other / "manifest.json").write_text(json.dumps({"utterances": [entry]}))
    c = load_offline("other", tmp_path)
    assert np.array_equal((c.utterances[0].audio * 32768).astype(np.int16), mixed)
    entry["mix"]["gain"] = 0.6
    (other / "manifest.json").write_text(json.dumps({"utterances": [entry]}))
    with pytest.raises(CorpusError, match="mixed audio has sha256"):
        _ = load_offline("other", tmp_path).utterances[0].audio


# --------------------------------------------------------------------------- LibriSpeech schema


@pytest.fixture
def local_librispeech(tmp_path):
    """A small dataset in LibriSpeech's schema, laid out as a hub dataset repo with 'clean' and 'other' configs."""
    import io

    import datasets

    for condition in ("clean", "other"):
        rows = {"file": [], "audio": [], "text": [], "speaker_id": [], "chapter_id": [], "id": []}
        for i in range(4):
            buf = io.BytesIO()
            sf.write(buf, tone(0.5 + 0.1 * i, 300 + i), RATE, format="FLAC")
            rows["file"].append(f"{i}.flac")
            rows["audio"].append({"bytes": buf.getvalue(), "path": f"{i}.flac"})
            rows["text"].append(f"{condition.upper()} SENTENCE NUMBER {i}")
            rows["speaker_id"].append(100 + i)
            rows["chapter_id"].append(7)
            rows["id"].append(f"{100 + i}-7-{i:04d}")
        ds = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(sampling_rate=RATE, decode=False))
        (tmp_path / condition).mkdir()
        ds.to_parquet(str(tmp_path / condition / "test-00000.parquet"))
    (tmp_path / "README.md").write_text(
        "---\nconfigs:\n- config_name: clean\n  data_files:\n  - split: test\n    path: clean/test-*.parquet\n"
        "- config_name: other\n  data_files:\n  - split: test\n    path: other/test-*.parquet\n---\n"
    )
    return tmp_path


def test_librispeech_schema_through_datasets(local_librispeech):
    c = load_librispeech("librispeech-other", path=str(local_librispeech), max_utterances=3)
    assert [u.id for u in c] == ["100-7-0000", "101-7-0001", "102-7-0002"]
    assert c.utterances[0].text == "other sentence number 0"
    assert c.utterances[1].audio.shape == (int(0.6 * RATE),)
    assert "speaker 101" in c.utterances[1].source
    full = load_librispeech("librispeech-clean", path=str(local_librispeech))
    assert len(full) == 4 and full.content_hash != c.content_hash


def test_librispeech_unreachable_says_what_to_do(monkeypatch, tmp_path):
    """The real hub code path, with the hub client told it is offline (as on an air-gapped runner)."""
    import datasets
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    with pytest.raises(CorpusError, match="offline corpora"):
        load_librispeech("librispeech-clean", max_utterances=2)


def test_unknown_corpus_names_the_known_ones():
    from whisper_ptq_bench.data import expand

    with pytest.raises(CorpusError, match="known"):
        expand("read,bogus")


def test_all_means_every_evaluation_corpus_and_never_the_calibration_split():
    from whisper_ptq_bench.data import expand, load_corpus

    assert expand("all") == ["hard", "read-clean", "read-other", "synth-clean", "synth-other"]
    calibration = load_corpus("calibration")
    for name in expand("all"):
        evaluation = load_corpus(name)
        assert not {u.id for u in calibration} & {u.id for u in evaluation}
        assert not {u.text for u in calibration} & {u.text for u in evaluation}
