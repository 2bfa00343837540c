"""sha256 digests of files: one helper for checkpoints, corpora and caches."""

from __future__ import annotations

import hashlib
import os


def file_sha256(*paths: str | os.PathLike) -> str:
    """Hex sha256 of the concatenation of ``paths`` (one file, or a checkpoint as its parts form it)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            hashlib.file_digest(handle, lambda: digest)  # feeds this file into the running digest
    return digest.hexdigest()
