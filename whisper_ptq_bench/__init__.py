"""whisper-ptq-bench: a pytest regression benchmark for post-training quantization of Whisper."""

__version__ = "0.1.0"
