"""Import CTranslate2 (faster-whisper) Whisper checkpoints into transformers, without the CT2 runtime.

The CT2 runtime only runs its own kernels; the suite needs the weights as a transformers
``WhisperForConditionalGeneration`` so that every quantization library can act on them. CT2 has no
exporter back to transformers, hence this reader. Format: ``ctranslate2/specs/model_spec.py``
(``_serialize``) and ``src/models/model.cc`` (``Model::load``) of CTranslate2.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from whisper_ptq_bench.errors import CheckpointError

#: Binary versions this reader understands (CTranslate2 writes 6 since 3.0).
SUPPORTED_BINARY_VERSIONS = range(1, 7)
#: Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_ITEM_SIZE_DTYPES = {4: "float32", 2: "int16", 1: "int8"}  # binary versions < 4
_FLOAT_DTYPES = {"float32", "float16", "bfloat16"}


@dataclass
class Ct2Model:
    """The content of a model.bin: header, named arrays and aliases."""

    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)


def read_parts(parts: Sequence[Path | str]) -> bytes:
    """Concatenate split parts of a model.bin; a missing part is named."""
    chunks = []
    for part in map(Path, parts):
        if not part.is_file():
            raise CheckpointError(part, "part of the checkpoint is missing (is the package that carries it installed?)")
        chunks.append(part.read_bytes())
    return b"".join(chunks)


class _Cursor:
    """Reads little-endian fields, naming the file and offset on a short read."""

    def __init__(self, data: bytes, source: str):
        self.data = memoryview(data)
        self.offset = 0
        self.source = source

    def take(self, size: int, what: str) -> memoryview:
        end = self.offset + size
        if size < 0 or end > len(self.data):
            raise CheckpointError(
                self.source,
                f"file is truncated: reading {what} needs {size} bytes at offset {self.offset}, "
                f"but the file has {len(self.data)} bytes; reinstall the package that carries it",
            )
        view = self.data[self.offset : end]
        self.offset = end
        return view

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size, what))[0]

    def string(self, what: str) -> str:
        length = self.unpack("H", f"the length of {what}")
        raw = bytes(self.take(length, what))
        if not raw.endswith(b"\0"):
            raise CheckpointError(self.source, f"{what} at offset {self.offset - length} is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as err:
            raise CheckpointError(self.source, f"{what} is not UTF-8 ({err})") from None


def parse_model_bin(data: bytes, source: str = "model.bin") -> Ct2Model:
    """Parse the bytes of a CTranslate2 model.bin (all binary versions 1-6)."""
    cur = _Cursor(data, source)
    version = cur.unpack("I", "the binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise CheckpointError(
            source,
            f"binary version {version} is not supported (this importer reads versions "
            f"{SUPPORTED_BINARY_VERSIONS.start}-{SUPPORTED_BINARY_VERSIONS.stop - 1}); "
            "a newer CTranslate2 converter wrote it, or the file is not a model.bin",
        )
    spec_name, revision = "", 1
    if version >= 2:
        spec_name = cur.string("the spec name")
        revision = cur.unpack("I", "the spec revision")
    count = cur.unpack("I", "the variable count")
    variables: dict[str, np.ndarray] = {}
    for index in range(count):
        name = cur.string(f"the name of variable {index}")
        rank = cur.unpack("B", f"the rank of {name}")
        shape = tuple(cur.unpack("I", f"a dimension of {name}") for _ in range(rank))
        if version >= 4:
            type_id = cur.unpack("B", f"the dtype of {name}")
            if type_id >= len(_DTYPES):
                raise CheckpointError(source, f"variable {name!r} has unknown dtype id {type_id}")
            dtype = _DTYPES[type_id]
            num_bytes = cur.unpack("I", f"the byte count of {name}")
        else:
            item_size = cur.unpack("B", f"the item size of {name}")
            if item_size not in _ITEM_SIZE_DTYPES:
                raise CheckpointError(source, f"variable {name!r} has unknown item size {item_size}")
            dtype = _ITEM_SIZE_DTYPES[item_size]
            num_bytes = cur.unpack("I", f"the element count of {name}") * item_size
        raw = cur.take(num_bytes, f"the data of {name}")
        variables[name] = _to_array(raw, dtype, shape, name, source)
    aliases: dict[str, str] = {}
    if version >= 3:
        for index in range(cur.unpack("I", "the alias count")):
            alias = cur.string(f"alias {index}")
            aliases[alias] = cur.string(f"the target of alias {alias!r}")
    trailing = len(cur.data) - cur.offset
    if trailing:
        raise CheckpointError(source, f"{trailing} unexpected bytes after the last alias; the file is damaged")
    return Ct2Model(version, spec_name, revision, variables, aliases)


def _to_array(raw: memoryview, dtype: str, shape: tuple[int, ...], name: str, source: str) -> np.ndarray:
    expected = int(np.prod(shape, dtype=np.int64)) if shape else 1
    width = 2 if dtype in ("float16", "bfloat16", "int16") else (1 if dtype == "int8" else 4)
    if expected * width != len(raw):
        raise CheckpointError(
            source,
            f"variable {name!r} of shape {list(shape)} and dtype {dtype} holds {len(raw)} bytes, expected {expected * width}",
        )
    if dtype == "bfloat16":  # numpy has no bfloat16: widen the 16 high bits to float32
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape).copy()
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


# --------------------------------------------------------------------------- name mapping

_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/(.+)$")
_NORM = {"gamma": "weight", "beta": "bias"}
# Per-layer sub-paths of CTranslate2 -> transformers module names (fused linears handled apart).
_LAYER_MAP = {
    "self_attention/layer_norm": "self_attn_layer_norm",
    "self_attention/linear_1": "self_attn.out_proj",
    "attention/layer_norm": "encoder_attn_layer_norm",
    "attention/linear_0": "encoder_attn.q_proj",
    "attention/linear_2": "encoder_attn.out_proj",
    "ffn/layer_norm": "final_layer_norm",
    "ffn/linear_0": "fc1",
    "ffn/linear_1": "fc2",
}
_TOP_MAP = {
    "encoder/conv1": "model.encoder.conv1",
    "encoder/conv2": "model.encoder.conv2",
    "encoder/layer_norm": "model.encoder.layer_norm",
    "decoder/layer_norm": "model.decoder.layer_norm",
}


@dataclass
class WhisperTensors:
    """transformers state dict of a Whisper, plus the shape facts read from the checkpoint."""

    state_dict: dict[str, np.ndarray]
    encoder_heads: int
    decoder_heads: int
    tied_output: bool


def _leaf(suffix: str) -> str:
    return _NORM.get(suffix, suffix)


def to_transformers(ct2: Ct2Model, source: str = "model.bin") -> WhisperTensors:
    """Map every CT2 tensor to its transformers name; unknown names and gaps are errors."""
    if ct2.spec_name and ct2.spec_name != "WhisperSpec":
        raise CheckpointError(source, f"spec {ct2.spec_name!r} is not a Whisper model (expected 'WhisperSpec')")
    variables = dict(ct2.variables)
    for alias, target in ct2.aliases.items():
        if target not in variables:
            raise CheckpointError(source, f"alias {alias!r} points at missing variable {target!r}")
        if alias != "decoder/projection/weight":  # the converter stores equal tensors once and aliases the rest
            variables[alias] = variables[target]
    for name, value in variables.items():
        if value.ndim and value.dtype.name not in _FLOAT_DTYPES and not name.endswith("_scale"):
            raise CheckpointError(
                source,
                f"variable {name!r} is stored as {value.dtype.name}: the checkpoint is already quantized; "
                "the suite needs a float16/float32 checkpoint as its fp32 reference",
            )
    out: dict[str, np.ndarray] = {}
    scalars: dict[str, np.ndarray] = {}

    def put(key: str, value: np.ndarray) -> None:
        out[key] = np.ascontiguousarray(value, dtype=np.float32)

    for name, value in variables.items():
        if value.ndim == 0:  # flags and numbers (num_heads, pre_norm, alignment_heads...): config, not weights
            scalars[name] = value
            continue
        if name.endswith("_scale"):
            raise CheckpointError(
                source, f"variable {name!r} is a quantization scale: the checkpoint is already quantized"
            )
        head, _, leaf = name.rpartition("/")
        match = _LAYER.match(head)
        if match:
            side, index, sub = match.groups()
            prefix = f"model.{side}.layers.{index}"
            if sub == "self_attention/linear_0":
                q, k, v = _split(value, 3, name, source)
                put(f"{prefix}.self_attn.q_proj.{leaf}", q)
                put(f"{prefix}.self_attn.v_proj.{leaf}", v)
                if leaf == "weight":
                    put(f"{prefix}.self_attn.k_proj.weight", k)
                continue
            if sub == "attention/linear_1" and side == "decoder":
                k, v = _split(value, 2, name, source)
                put(f"{prefix}.encoder_attn.v_proj.{leaf}", v)
                if leaf == "weight":
                    put(f"{prefix}.encoder_attn.k_proj.weight", k)
                continue
            if sub in _LAYER_MAP and not (side == "encoder" and sub.startswith("attention/")):
                put(f"{prefix}.{_LAYER_MAP[sub]}.{_leaf(leaf)}", value)
                continue
        elif head in _TOP_MAP:
            put(f"{_TOP_MAP[head]}.{_leaf(leaf)}", value)
            continue
        elif name == "encoder/position_encodings/encodings":
            put("model.encoder.embed_positions.weight", value)
            continue
        elif name == "decoder/position_encodings/encodings":
            put("model.decoder.embed_positions.weight", value)
            continue
        elif name == "decoder/embeddings/weight":
            put("model.decoder.embed_tokens.weight", value)
            continue
        elif name == "decoder/projection/weight":
            put("proj_out.weight", value)
            continue
        raise CheckpointError(
            source,
            f"unknown variable {name!r} (shape {list(value.shape)}): not part of a Whisper checkpoint this importer maps",
        )

    tied = ct2.aliases.get("decoder/projection/weight") == "decoder/embeddings/weight"
    if "proj_out.weight" in out:
        tied = np.array_equal(out["proj_out.weight"], out.get("model.decoder.embed_tokens.weight"))
        if tied:
            del out["proj_out.weight"]
    elif not tied:
        raise CheckpointError(
            source, "no output projection: neither decoder/projection/weight nor its alias to the embeddings"
        )
    if "model.encoder.conv1.weight" not in out:
        raise CheckpointError(source, "missing variable 'encoder/conv1/weight'")
    d_model = out["model.encoder.conv1.weight"].shape[0]
    return WhisperTensors(
        state_dict=out,
        encoder_heads=_heads(scalars, "encoder/num_heads", d_model),
        decoder_heads=_heads(scalars, "decoder/num_heads", d_model),
        tied_output=tied,
    )


def _split(value: np.ndarray, parts: int, name: str, source: str) -> list[np.ndarray]:
    if value.shape[0] % parts:
        raise CheckpointError(
            source, f"fused variable {name!r} of shape {list(value.shape)} does not split into {parts}"
        )
    return np.split(value, parts, axis=0)


def _heads(scalars: dict[str, np.ndarray], key: str, d_model: int) -> int:
    if key in scalars:
        return int(scalars[key])
    return max(1, d_model // 64)  # Whisper's head width is 64 in every released size


def layer_count(state_dict: dict[str, np.ndarray], side: str) -> int:
    indices = {int(k.split(".")[3]) for k in state_dict if k.startswith(f"model.{side}.layers.")}
    if indices != set(range(len(indices))):
        raise CheckpointError("model.bin", f"{side} layers are not numbered 0..N-1: {sorted(indices)}")
    return len(indices)


def read_config_json(path: Path) -> dict:
    """The CT2 config.json, with the fields Whisper generation needs."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            path, "config.json is missing; reinstall the package that carries the checkpoint"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(path, f"config.json does not parse: {err}") from None
    if not isinstance(config, dict):
        raise CheckpointError(path, f"config.json must hold an object, found {type(config).__name__}")
    for key in ("suppress_ids", "suppress_ids_begin"):
        if key in config and not (isinstance(config[key], list) and all(isinstance(i, int) for i in config[key])):
            raise CheckpointError(path, f"config.json field {key!r} must be a list of token ids")
    return config
