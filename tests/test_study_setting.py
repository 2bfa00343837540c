"""The study's own setting end to end, offline: a model given as a hub id (served from a local hub cache through
the unpatched ``from_pretrained``) or as a local directory, LibriSpeech's schema through ``datasets`` with an
utterance longer than Whisper's 30 s window, baselines recorded and then checked, errored cases reported."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
from whisper_ptq_bench.configs import MATRICES  # noqa: E402

HUB_ID = "local-org/whisper-tiny.en"
REVISION = "0123456789abcdef0123456789abcdef01234567"
SMOKE_CONFIGS = 6  # configs.SMOKE, fp32 included
# fp32, an activation-quantized and a weight-only configuration: each kind of case meets the long utterance
HUB_MATRIX = "fp32,torch-ao.dyn-int8.a-int8.tensor.sym,hqq.w-int4.g64.asym"


@pytest.fixture(scope="module")
def converted(tiny_en):
    """The transformers directory the offline tiny.en converts to (cached on disk)."""
    from whisper_ptq_bench.models import OFFLINE
    from whisper_ptq_bench.models.convert import cached_dir

    return cached_dir(OFFLINE["tiny.en"].source())


@pytest.fixture(scope="module")
def hub_cache(converted, tmp_path_factory):
    """A hub cache in the layout huggingface_hub reads (refs/main -> snapshots/<revision>/files)."""
    root = tmp_path_factory.mktemp("hf") / "hub"
    repo = root / ("models--" + HUB_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    for f in converted.iterdir():
        if f.is_file() and f.suffix in (".json", ".safetensors", ".txt"):
            shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return root


@pytest.fixture(scope="module")
def long_librispeech(tmp_path_factory):
    """A dataset in LibriSpeech's schema: two real utterances as they are and one of > 35 s made by joining
    read-clean utterances (with short pauses), so its reference is the joined texts."""
    import datasets

    from whisper_ptq_bench.data import load_corpus

    real = list(load_corpus("read-clean"))
    gap = np.zeros(4000, dtype=np.float32)
    pieces, texts, seconds = [], [], 0.0
    for utt in sorted(real, key=lambda u: u.id):
        if seconds > 35.0:
            break
        pieces += [utt.audio, gap]
        texts.append(utt.text)
        seconds += (len(utt.audio) + len(gap)) / 16000
    rows = {"file": [], "audio": [], "text": [], "speaker_id": [], "chapter_id": [], "id": []}
    for i, (audio, text) in enumerate(
        [(np.concatenate(pieces), " ".join(texts)), (real[-1].audio, real[-1].text), (real[-2].audio, real[-2].text)]
    ):
        buf = io.BytesIO()
        sf.write(buf, audio, 16000, format="FLAC")
        rows["file"].append(f"{i}.flac")
        rows["audio"].append({"bytes": buf.getvalue(), "path": f"{i}.flac"})
        rows["text"].append(text.upper())
        rows["speaker_id"].append(1)
        rows["chapter_id"].append(2)
        rows["id"].append(f"1-2-{i:04d}")
    root = tmp_path_factory.mktemp("librispeech")
    ds = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(sampling_rate=16000, decode=False))
    (root / "clean").mkdir()
    ds.to_parquet(str(root / "clean" / "test-00000.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: clean\n  data_files:\n  - split: test\n    path: clean/test-*.parquet\n---\n"
    )
    return root, seconds, " ".join(texts)


@pytest.fixture
def project(run_imports, pytester):
    shutil.copy(ROOT / "benchmarks" / "test_quantization.py", pytester.path / "test_quantization.py")
    return pytester


def bench(pytester, model: str, corpus: str, *extra, fresh: bool = False):
    """A benchmark run: in a fresh process with ``fresh`` (the hub variables are read when libraries load)."""
    return (pytester.runpytest_subprocess if fresh else pytester.runpytest_inprocess)(
        "--benchmark-only",
        f"--ptq-model={model}",
        f"--ptq-corpus={corpus}",
        "--ptq-matrix=smoke",
        "--ptq-max-utterances=3",
        "--ptq-rounds=2",
        "-p",
        "no:cacheprovider",
        *extra,
    )


def relaxed_speed(path: Path) -> None:
    """Speed between two runs of a test on a shared machine: only gross slowdowns count here (the speed check
    itself is tested in test_gate.py and by the drill)."""
    data = json.loads(path.read_text())
    data["tolerances"]["speed"] = 2.0
    path.write_text(json.dumps(data))


def record_then_check(
    project, model: str, corpus: str, matrix: str = "smoke", configs: int = SMOKE_CONFIGS, fresh: bool = False
) -> dict:
    """Record baselines for ``matrix``, then check a second run against them: the model spec must name the same
    cases and fingerprint in both runs. The check run covers fp32 and the first quantized configuration (a
    case absent from a run is not judged), which is what a changed fingerprint or case id would turn red."""
    baselines = project.path / "B.json"
    first = bench(
        project,
        model,
        corpus,
        f"--ptq-matrix={matrix}",
        "--ptq-update-baselines",
        f"--ptq-baselines={baselines}",
        f"--benchmark-json={project.path / 'first.json'}",
        fresh=fresh,
    )
    first.assert_outcomes(passed=configs)
    assert baselines.is_file(), first.stdout.str()
    relaxed_speed(baselines)
    checked = (MATRICES[matrix] if matrix in MATRICES else matrix.split(","))[:2]
    second = bench(
        project, model, corpus, f"--ptq-matrix={','.join(checked)}", f"--ptq-baselines={baselines}", fresh=fresh
    )
    second.assert_outcomes(passed=len(checked))
    assert second.ret == 0 and "ok" in second.stdout.str()
    return json.loads(baselines.read_text())


@pytest.mark.slow
def test_hub_id_from_a_local_hub_cache_with_a_long_utterance_records_and_checks(
    project, hub_cache, long_librispeech, monkeypatch
):
    dataset, seconds, reference = long_librispeech
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("WHISPER_PTQ_BENCH_LIBRISPEECH", str(dataset))
    data = record_then_check(project, HUB_ID, "librispeech-clean", HUB_MATRIX, 3, fresh=True)
    fp32 = data["cases"][f"{HUB_ID}/librispeech-clean/fp32"]
    assert fp32["model_fingerprint"] == f"hub:{HUB_ID}@{REVISION}"  # the snapshot's revision, from the cache
    assert len(data["cases"]) == 3 and all(c.startswith(HUB_ID + "/") for c in data["cases"])
    # the 35 s utterance was transcribed (long-form, past the first window) and scored: fp32 gets most words right
    from whisper_ptq_bench.metrics import score

    long_text = fp32["transcripts"]["1-2-0000"]
    assert seconds > 35 and len(long_text.split()) > 0.8 * len(reference.split())
    assert score(["1-2-0000"], [reference], [long_text]).wer < 0.3
    from whisper_ptq_bench.baselines import expected_view

    for cid, case in data["cases"].items():
        [profile] = case["profiles"]
        view, _ = expected_view(case, profile)  # kernel-dependent configurations keep outputs per profile
        assert view["transcripts"]["1-2-0000"].strip(), cid  # every configuration transcribed it
        assert set(view["output"]["per_utterance"]) == {"1-2-0001", "1-2-0002"}, cid  # the long one not teacher-forced


@pytest.mark.slow
def test_local_directory_spec_records_and_checks(project, converted, tmp_path):
    directory = tmp_path / "my models" / "tiny-en"
    shutil.copytree(converted, directory)
    data = record_then_check(project, str(directory), "read-clean", "fp32", 1)
    assert set(data["cases"]) == {f"{directory}/read-clean/fp32"}
    fingerprint = data["cases"][f"{directory}/read-clean/fp32"]["model_fingerprint"]
    # the sha256 of the directory's weights and jsons, computed here independently of the package
    digest = hashlib.sha256()
    for f in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.json")):
        digest.update(f.read_bytes())
    assert fingerprint == digest.hexdigest()


def test_long_utterance_features_go_long_form(tiny_en):
    """Utterances over 30 s are kept whole (untruncated features) and out of the 30 s batches."""
    from whisper_ptq_bench.data.corpus import Corpus, Utterance
    from whisper_ptq_bench.transcribe import features

    def utt(i, seconds):
        return Utterance(
            id=f"u{i}",
            text="a",
            source="test",
            license="test",
            _loader=lambda: np.zeros(int(seconds * 16000), dtype=np.float32),
        )

    fb = features(tiny_en.processor, Corpus("long-test", [utt(0, 3), utt(1, 41.5), utt(2, 29.9), utt(3, 31)]), 8)
    assert fb.long_ids == ["u1", "u3"] and sorted(fb.windowed) == [0, 2]
    assert [f.shape[-1] for f, _ in fb.long] == [4150, 3100]  # 100 frames per second, not cut at 3000
    assert fb.in_corpus_order(["a", "b", "c", "d"]) == ["b", "c", "a", "d"]
