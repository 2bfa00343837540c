"""Write a randomly initialised Whisper of a real shape (tiny ... large-v3) as a local model directory.

    python -m tools.random_whisper TOKENIZER_DIR OUT_DIR --shape small

For GPU runners without hub access (and without the offline packages): the quantization paths, kernels and
timings of a configuration depend on the layer shapes, not on trained weights, so a random model of the
study's shape exercises them at their real size. Its transcripts are noise; its WER means nothing.
``TOKENIZER_DIR`` is any transformers Whisper directory (e.g. the offline tiny.en the suite converts): its
tokenizer, feature-extractor and generation files are copied, and its vocabulary size is kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

# (d_model, encoder/decoder layers, attention heads, ffn dim, mel bins): openai/whisper-* configs
SHAPES = {
    "tiny": (384, 4, 6, 1536, 80),
    "base": (512, 6, 8, 2048, 80),
    "small": (768, 12, 12, 3072, 80),
    "medium": (1024, 24, 16, 4096, 80),
    "large-v3": (1280, 32, 20, 5120, 128),
}
#: what is not copied from TOKENIZER_DIR: the architecture (rewritten) and the weights (random)
NOT_COPIED = ("config.json", "*.safetensors", "*.safetensors.index.json", "*.bin", "model.bin.part*")


def write(tokenizer_dir: Path, out: Path, shape: str, seed: int = 0) -> Path:
    """The directory ``out`` holding a ``shape`` Whisper with seeded random weights and ``tokenizer_dir``'s files."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    if shape not in SHAPES:
        raise SystemExit(f"--shape {shape!r}: choose one of {', '.join(SHAPES)}")
    source = tokenizer_dir / "config.json"
    if not source.is_file():
        raise SystemExit(f"{tokenizer_dir}: no config.json; give a transformers Whisper directory")
    d_model, layers, heads, ffn, mels = SHAPES[shape]
    config = WhisperConfig(**json.loads(source.read_text()))
    config.update(
        {
            "d_model": d_model,
            "encoder_layers": layers,
            "decoder_layers": layers,
            "encoder_attention_heads": heads,
            "decoder_attention_heads": heads,
            "encoder_ffn_dim": ffn,
            "decoder_ffn_dim": ffn,
            "num_mel_bins": mels,
            "num_hidden_layers": layers,
        }
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for path in sorted(tokenizer_dir.iterdir()):  # tokenizer, feature extractor, generation config
        if path.is_file() and not any(path.match(pattern) for pattern in NOT_COPIED):
            shutil.copyfile(path, out / path.name)
    for name in ("preprocessor_config.json", "processor_config.json"):  # large-v3 takes 128 mel bins
        path = out / name
        if mels != 80 and path.is_file():
            features = json.loads(path.read_text())
            (features.get("feature_extractor") or features)["feature_size"] = mels
            path.write_text(json.dumps(features, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.random_whisper", description=__doc__.split("\n\n")[0])
    parser.add_argument("tokenizer_dir", type=Path, help="a transformers Whisper directory (tokenizer, features)")
    parser.add_argument("out", type=Path, help="directory to write")
    parser.add_argument("--shape", default="small", help=f"one of {', '.join(SHAPES)} (default: small)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = write(args.tokenizer_dir, args.out, args.shape, args.seed)
    print(f"wrote a random {args.shape} Whisper to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
