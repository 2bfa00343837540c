"""The CTranslate2 importer, proven with independent tools: ctranslate2's converter and faster-whisper."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct

import numpy as np
import pytest
import torch

from whisper_ptq_bench.errors import CheckpointError
from whisper_ptq_bench.models import ct2 as ct2mod
from whisper_ptq_bench.models import load
from whisper_ptq_bench.models.convert import Ct2Source, cached_dir, source_from_dir, verify

ctranslate2 = pytest.importorskip(
    "ctranslate2", reason="the round-trip proof needs ctranslate2 (pip install ctranslate2)"
)


@pytest.fixture(scope="module")
def small_whisper(tmp_path_factory, tiny_en):
    """A small randomly initialised transformers Whisper with tiny.en's tokenizer, saved to disk."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    base = tiny_en.model.config
    config = WhisperConfig(
        vocab_size=base.vocab_size,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=base.pad_token_id,
        bos_token_id=base.bos_token_id,
        eos_token_id=base.eos_token_id,
        decoder_start_token_id=base.decoder_start_token_id,
    )
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # random non-zero biases everywhere, so a dropped or misplaced bias shows
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("small-whisper")
    model.generation_config = tiny_en.generation_config
    model.save_pretrained(out)
    tiny_en.processor.save_pretrained(out)
    return model, out


def _convert(src, dst, quantization=None):
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(src), copy_files=["tokenizer.json"]).convert(
        str(dst), quantization=quantization, force=True
    )
    return dst


def test_round_trip_through_ctranslate2_converter_is_bit_identical(small_whisper, tmp_path):
    model, src = small_whisper
    ct2_dir = _convert(src, tmp_path / "ct2")
    loaded = load(str(ct2_dir), cache_dir=tmp_path / "cache")
    ours = loaded.model.state_dict()
    theirs = model.state_dict()
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key
    feats = torch.randn(2, 80, 3000)
    ids = torch.tensor([[model.config.decoder_start_token_id, 50362, 400, 1000]] * 2)
    with torch.no_grad():
        a = model(input_features=feats, decoder_input_ids=ids).logits
        b = loaded.model(input_features=feats, decoder_input_ids=ids).logits
    assert torch.equal(a, b)


def test_float16_checkpoint_imports_as_exactly_the_rounded_weights(small_whisper, tmp_path):
    model, src = small_whisper
    ct2_dir = _convert(src, tmp_path / "ct2-fp16", quantization="float16")
    loaded = load(str(ct2_dir), cache_dir=tmp_path / "cache")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value.half().float()), key


def test_quantized_int8_checkpoint_is_refused_with_reason(small_whisper, tmp_path):
    _, src = small_whisper
    ct2_dir = _convert(src, tmp_path / "ct2-int8", quantization="int8")
    with pytest.raises(CheckpointError, match="already quantized"):
        load(str(ct2_dir), cache_dir=tmp_path / "cache")


def test_offline_models_load_with_english_generation_configs(tiny_en):
    base = load("base")
    assert tiny_en.generation_config.is_multilingual is False
    assert base.generation_config.is_multilingual is True
    assert base.generation_config.language == "en" and base.generation_config.task == "transcribe"
    for loaded in (tiny_en, base):
        assert loaded.model.training is False
        assert next(loaded.model.parameters()).dtype == torch.float32
        assert loaded.generation_config.return_timestamps is False
        assert (
            loaded.model.get_output_embeddings().weight.data_ptr()
            == loaded.model.model.decoder.embed_tokens.weight.data_ptr()
        )


@pytest.mark.slow
def test_agrees_with_faster_whisper_on_real_speech(tiny_en, read_clean):
    """The imported tiny.en and faster-whisper's engine on the same checkpoint, fed the same log-mel
    features, decode greedily without timestamps to the same words (WER of one against the other <= 1%).

    Same features: faster-whisper's own front end (its mel filterbank, padding and segmenting) differs
    from transformers', which says nothing about the weights under test."""
    faster_whisper = pytest.importorskip("faster_whisper", reason="pip install faster-whisper")
    from whisper_ptq_bench.metrics import score
    from whisper_ptq_bench.models import OFFLINE
    from whisper_ptq_bench.transcribe import features, transcribe

    speech = read_clean.subset(24)  # every source, spread over the corpus
    fb = features(tiny_en.processor, speech, 8)
    ours = transcribe(tiny_en.model, tiny_en.generation_config, tiny_en.processor.tokenizer, fb)
    directory = OFFLINE["tiny.en"].source().parts[0].parent
    engine = faster_whisper.WhisperModel(str(directory), device="cpu", compute_type="float32", cpu_threads=2).model
    gen = tiny_en.generation_config
    prompt = [gen.decoder_start_token_id, gen.no_timestamps_token_id]
    theirs = []
    for feats in fb.batches:
        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats.numpy()))
        results = engine.generate(
            batch, [prompt] * feats.shape[0], beam_size=1, max_length=448, suppress_blank=True, suppress_tokens=[-1]
        )
        theirs += [
            tiny_en.processor.tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True).strip() for r in results
        ]
    theirs = fb.in_corpus_order(theirs)  # batches are grouped by duration; ours come back in corpus order
    agreement = score(fb.ids, theirs, ours)
    print(f"faster-whisper agreement on {len(speech)} utterances, {agreement.words} words: WER {agreement.wer:.2%}")
    assert agreement.wer <= 0.01


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def tiny_en_source():
    from whisper_ptq_bench.models import OFFLINE

    return OFFLINE["tiny.en"].source()


def _copy_source(src: Ct2Source, tmp_path, data: bytes | None = None) -> Ct2Source:
    d = tmp_path / "ckpt"
    d.mkdir(exist_ok=True)
    (d / "model.bin").write_bytes(data if data is not None else src.parts[0].read_bytes())
    shutil.copy(src.config, d / "config.json")
    shutil.copy(src.tokenizer, d / "tokenizer.json")
    return source_from_dir(d, name="copy")


def test_truncated_model_bin_names_file_and_offset(tiny_en_source, tmp_path):
    data = tiny_en_source.parts[0].read_bytes()
    src = _copy_source(tiny_en_source, tmp_path, data[: len(data) // 3])
    with pytest.raises(CheckpointError) as err:
        cached_dir(src, tmp_path / "cache")
    assert "model.bin" in str(err.value) and "truncated" in str(err.value) and "offset" in str(err.value)


def test_missing_part_is_named(tmp_path):
    from whisper_ptq_bench.models import OFFLINE

    base = OFFLINE["base"].source()
    gone = tmp_path / "model.bin.part2"
    src = Ct2Source("base", (base.parts[0], gone), base.config, base.tokenizer, base.sha256, base.part_sha256)
    with pytest.raises(CheckpointError, match="model.bin.part2"):
        verify(src)


def test_wrong_hash_is_refused_before_use(tiny_en_source, tmp_path):
    src = _copy_source(tiny_en_source, tmp_path)
    pinned = Ct2Source(src.name, src.parts, src.config, src.tokenizer, sha256="0" * 64)
    with pytest.raises(CheckpointError, match="does not match the pinned"):
        cached_dir(pinned, tmp_path / "cache")


def _write_bin(path, variables, aliases=(), version=6, spec="WhisperSpec"):
    def s(text):
        raw = text.encode()
        return struct.pack("<H", len(raw) + 1) + raw + b"\0"

    out = struct.pack("<I", version) + s(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, arr in variables:
        arr = np.asarray(arr)
        type_id = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}[arr.dtype.name]
        out += s(name) + struct.pack("<B", arr.ndim) + b"".join(struct.pack("<I", d) for d in arr.shape)
        out += struct.pack("<B", type_id) + struct.pack("<I", arr.nbytes) + arr.tobytes()
    out += struct.pack("<I", len(aliases)) + b"".join(s(a) + s(b) for a, b in aliases)
    path.write_bytes(out)


def test_unknown_variable_name_is_named(tiny_en_source, tmp_path):
    model = ct2mod.parse_model_bin(tiny_en_source.parts[0].read_bytes())
    variables = list(model.variables.items()) + [("encoder/mystery/weight", np.ones((2, 2), np.float16))]
    src = _copy_source(tiny_en_source, tmp_path)
    _write_bin(src.parts[0], variables, model.aliases.items())
    with pytest.raises(CheckpointError, match="unknown variable 'encoder/mystery/weight'"):
        cached_dir(src, tmp_path / "cache")


def test_extra_scalars_and_older_binary_versions_are_accepted(tiny_en_source, tmp_path, tiny_en):
    """A converter that writes extra scalar flags, or binary version 5, still imports to the same weights."""
    model = ct2mod.parse_model_bin(tiny_en_source.parts[0].read_bytes())
    variables = list(model.variables.items()) + [("decoder/some_new_flag", np.array(1, np.int8))]
    src = _copy_source(tiny_en_source, tmp_path)
    _write_bin(src.parts[0], variables, model.aliases.items(), version=5)
    loaded = load(str(src.parts[0].parent), cache_dir=tmp_path / "cache")
    for key, value in tiny_en.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_config_json_that_does_not_parse_names_the_file(tiny_en_source, tmp_path):
    src = _copy_source(tiny_en_source, tmp_path)
    src.config.write_text('{"suppress_ids": [1, 2,')
    with pytest.raises(CheckpointError) as err:
        cached_dir(src, tmp_path / "cache")
    assert "config.json" in str(err.value) and "does not parse" in str(err.value)


def test_newer_binary_version_is_refused(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(struct.pack("<I", 99) + b"\0" * 16)
    with pytest.raises(CheckpointError, match="binary version 99 is not supported"):
        ct2mod.parse_model_bin(path.read_bytes(), source=str(path))


@pytest.mark.parametrize(
    "name,edit",
    [
        ("config.json", lambda t: t.replace('"activation_function": "gelu"', '"activation_function": "relu"')),
        ("generation_config.json", lambda t: t.replace('"no_timestamps_token_id"', '"no_timestamps_token_idx"')),
        ("tokenizer.json", lambda t: t[:-200]),
    ],
)
def test_an_edited_cached_file_is_detected_and_rebuilt(tiny_en_source, tmp_path, name, edit, caplog):
    """Every file of the converted checkpoint is verified, not only the weights: an edited config would load
    silently and change the outputs under an unchanged fingerprint."""
    directory = cached_dir(tiny_en_source, tmp_path / "cache")
    original = (directory / name).read_text()
    edited = edit(original)
    assert edited != original
    (directory / name).write_text(edited)
    with caplog.at_level("WARNING"):
        rebuilt = cached_dir(tiny_en_source, tmp_path / "cache")
    assert f"{name} does not match its recorded hash" in caplog.text
    assert (rebuilt / name).read_text() == original


def test_a_file_added_to_the_cache_is_detected(tiny_en_source, tmp_path, caplog):
    directory = cached_dir(tiny_en_source, tmp_path / "cache")
    (directory / "special_tokens_map.json.bak").write_text("{}")
    with caplog.at_level("WARNING"):
        rebuilt = cached_dir(tiny_en_source, tmp_path / "cache")
    assert "files not written by the conversion" in caplog.text
    assert not (rebuilt / "special_tokens_map.json.bak").exists()


def test_corrupt_cache_is_rebuilt(tiny_en_source, tmp_path):
    directory = cached_dir(tiny_en_source, tmp_path / "cache")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    rebuilt = cached_dir(tiny_en_source, tmp_path / "cache")
    assert (
        json.loads((rebuilt / "whisper_ptq_bench.json").read_text())["safetensors_sha256"]
        == hashlib.sha256((rebuilt / "model.safetensors").read_bytes()).hexdigest()
    )
    assert load("tiny.en", cache_dir=tmp_path / "cache").n_params > 0
