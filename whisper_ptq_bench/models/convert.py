"""Build a transformers Whisper directory from a CTranslate2 checkpoint, cached by source hash."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisper_ptq_bench.digest import file_sha256
from whisper_ptq_bench.errors import CheckpointError
from whisper_ptq_bench.models import ct2

log = logging.getLogger(__name__)

CACHE_FORMAT = 3  # bump when the converted layout changes: older caches are rebuilt
_STAMP = "whisper_ptq_bench.json"


@dataclass(frozen=True)
class Ct2Source:
    """Where a CT2 checkpoint lies: model.bin (possibly split), config.json, tokenizer.json."""

    name: str
    parts: tuple[Path, ...]
    config: Path
    tokenizer: Path
    sha256: str | None = None  # of the concatenated model.bin; None: not pinned (a user's own dir)
    part_sha256: tuple[str, ...] = ()


def default_cache_dir() -> Path:
    root = os.environ.get("WHISPER_PTQ_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "whisper-ptq-bench"
    )
    return Path(root)


def verify(source: Ct2Source) -> str:
    """Check each part and the whole against pinned hashes; return the sha256 of the whole."""
    for path in (*source.parts, source.config, source.tokenizer):
        if not path.is_file():
            raise CheckpointError(path, "file of the checkpoint is missing; reinstall the package that carries it")
    for path, expected in zip(source.parts, source.part_sha256):
        got = file_sha256(path)
        if got != expected:
            raise CheckpointError(
                path, f"sha256 {got} does not match the pinned {expected}: the file is damaged or of another release"
            )
    whole = file_sha256(*source.parts)
    if source.sha256 and whole != source.sha256:
        where = source.parts[0] if len(source.parts) == 1 else f"{source.parts[0]} + {len(source.parts) - 1} more parts"
        raise CheckpointError(
            where,
            f"sha256 {whole} does not match the pinned {source.sha256}: the file is damaged or of another release",
        )
    return whole


def convert(source: Ct2Source, out_dir: Path, source_sha256: str) -> None:
    """Write a transformers directory (safetensors, configs, tokenizer) for ``source`` into ``out_dir``."""
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperTokenizer

    label = (
        str(source.parts[0])
        if len(source.parts) == 1
        else f"{source.parts[0].parent}/model.bin ({len(source.parts)} parts)"
    )
    model = ct2.parse_model_bin(ct2.read_parts(source.parts), source=label)
    tensors = ct2.to_transformers(model, source=label)
    ct2_config = ct2.read_config_json(source.config)
    try:
        tokenizer = WhisperTokenizer(tokenizer_file=str(source.tokenizer))
    except Exception as err:  # tokenizers raises its own exception types
        raise CheckpointError(source.tokenizer, f"tokenizer.json does not load: {err}") from None

    sd = tensors.state_dict
    vocab = sd["model.decoder.embed_tokens.weight"].shape[0]
    ids = _special_ids(tokenizer, source.tokenizer)
    multilingual = vocab >= 51865  # OpenAI's rule: the multilingual vocabulary has 51865+ tokens
    d_model = sd["model.encoder.conv1.weight"].shape[0]
    config = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=sd["model.encoder.conv1.weight"].shape[1],
        d_model=d_model,
        encoder_layers=ct2.layer_count(sd, "encoder"),
        decoder_layers=ct2.layer_count(sd, "decoder"),
        encoder_attention_heads=tensors.encoder_heads,
        decoder_attention_heads=tensors.decoder_heads,
        encoder_ffn_dim=sd["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=sd["model.decoder.layers.0.fc1.weight"].shape[0],
        max_source_positions=sd["model.encoder.embed_positions.weight"].shape[0],
        max_target_positions=sd["model.decoder.embed_positions.weight"].shape[0],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        tie_word_embeddings=tensors.tied_output,
    )
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        skeleton = WhisperForConditionalGeneration(config)
    expected = {k for k in skeleton.state_dict() if not (tensors.tied_output and k == "proj_out.weight")}
    missing = sorted(expected - sd.keys())
    extra = sorted(sd.keys() - expected)
    if missing or extra:
        raise CheckpointError(
            label, f"checkpoint does not fill a Whisper of this shape: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for key, value in sd.items():
        want = tuple(skeleton.state_dict()[key].shape)
        if value.shape != want:
            raise CheckpointError(
                label, f"tensor {key} has shape {list(value.shape)}, the derived config needs {list(want)}"
            )

    gen = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        max_length=config.max_target_positions,
        suppress_tokens=ct2_config.get("suppress_ids", []),
        begin_suppress_tokens=ct2_config.get("suppress_ids_begin", [220, ids["<|endoftext|>"]]),
        no_timestamps_token_id=ids["<|notimestamps|>"],
        is_multilingual=multilingual,
        return_timestamps=False,
    )
    heads = ct2_config.get("alignment_heads")
    if heads:
        gen.alignment_heads = [list(map(int, h)) for h in heads]
    if multilingual:
        lang_ids = ct2_config.get("lang_ids") or []
        gen.lang_to_id = {tokenizer.convert_ids_to_tokens(int(i)): int(i) for i in lang_ids}
        gen.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
        if "<|en|>" not in gen.lang_to_id:
            gen.lang_to_id["<|en|>"] = ids["<|en|>"]
        gen.language = "en"
        gen.task = "transcribe"

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: torch.from_numpy(np.array(v, copy=True)) for k, v in sd.items()},
        str(out_dir / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config.save_pretrained(out_dir)
    gen.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(out_dir)
    stamp = {
        "cache_format": CACHE_FORMAT,
        "source": source.name,
        "source_sha256": source_sha256,
        "binary_version": model.binary_version,
        "spec_revision": model.spec_revision,
        "safetensors_sha256": file_sha256(out_dir / "model.safetensors"),
        "files": _file_hashes(out_dir),
    }
    (out_dir / _STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")


def _special_ids(tokenizer, path: Path) -> dict[str, int]:
    names = ["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>", "<|transcribe|>", "<|translate|>", "<|en|>"]
    vocab = tokenizer.get_vocab()
    lost = [n for n in names if n not in vocab]
    if lost:
        raise CheckpointError(path, f"tokenizer.json lacks Whisper's special tokens {lost}")
    return {n: vocab[n] for n in names}


def cached_dir(source: Ct2Source, cache_dir: Path | None = None) -> Path:
    """Return a valid converted directory for ``source``, converting (again) when absent, stale or corrupt."""
    whole = verify(source)
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    target = root / "models" / f"{source.name}-{whole[:16]}-v{CACHE_FORMAT}"
    problem = _stale(target, whole)
    if problem is None:
        return target
    if target.exists():
        log.warning("rebuilding converted checkpoint %s: %s", target, problem)
    root.joinpath("models").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{source.name}-", dir=root / "models"))
    try:
        convert(source, tmp, whole)
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)  # atomic: a concurrent reader sees the old or the new directory
        except OSError:
            if _stale(target, whole) is not None:  # another process won the race with a bad result
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _stale(target: Path, whole: str) -> str | None:
    stamp_path = target / _STAMP
    if not stamp_path.is_file():
        return "no conversion stamp" if target.exists() else "not converted yet"
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return f"stamp unreadable ({err})"
    if stamp.get("cache_format") != CACHE_FORMAT:
        return f"cache format {stamp.get('cache_format')} != {CACHE_FORMAT}"
    if stamp.get("source_sha256") != whole:
        return "source checkpoint changed"
    recorded = stamp.get("files")
    if not isinstance(recorded, dict) or "model.safetensors" not in recorded:
        return "stamp lists no file hashes"
    present = _file_hashes(target)
    for name, sha in sorted(recorded.items()):
        if name not in present:
            return f"{name} missing"
        if present[name] != sha:
            return f"{name} does not match its recorded hash (edited or corrupt)"
    extra = sorted(set(present) - set(recorded))
    if extra:
        return f"files not written by the conversion: {extra}"
    return None


def _file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file the conversion wrote (all of them change what the model outputs or how it is read)."""
    return {f.name: file_sha256(f) for f in sorted(directory.iterdir()) if f.is_file() and f.name != _STAMP}


def source_from_dir(directory: Path, name: str | None = None) -> Ct2Source:
    """A user's own CT2 directory (model.bin or model.bin.part*), not pinned to a hash."""
    directory = Path(directory)
    parts: Sequence[Path]
    if (directory / "model.bin").is_file():
        parts = [directory / "model.bin"]
    else:
        parts = sorted(directory.glob("model.bin.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1] or 0))
    if not parts:
        raise CheckpointError(directory, "no model.bin (or model.bin.part1, part2, ...) in this directory")
    return Ct2Source(
        name=name or directory.name,
        parts=tuple(parts),
        config=directory / "config.json",
        tokenizer=directory / "tokenizer.json",
    )
