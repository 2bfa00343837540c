"""Errors the suite raises on bad input: each names the input and what to do about it."""

from __future__ import annotations


class BenchError(Exception):
    """Base class of every error the suite raises on purpose."""


class ModelLoadError(BenchError):
    """A model spec could not be resolved or loaded."""


class CheckpointError(ModelLoadError):
    """A CTranslate2 checkpoint is missing, damaged or of an unknown form."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CorpusError(BenchError):
    """A corpus, manifest or utterance is unusable."""


class ConfigError(BenchError, ValueError):
    """A quantization configuration is invalid."""


class BaselineError(BenchError):
    """baselines.json is unreadable, malformed or cannot be written."""


class PrimitiveError(BenchError, ValueError):
    """Reference quantization primitives were given input they cannot represent."""
