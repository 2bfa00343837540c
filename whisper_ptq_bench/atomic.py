"""Atomic file replacement: readers of a file the suite writes see the old content or the new, never half."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class ReadOnlyError(PermissionError):
    """The file exists and is not writable: it is left alone rather than replaced behind its owner's back."""


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to a temporary file beside ``path``, flush and fsync it,
    then rename it over ``path``; returns ``path``.

    An existing file that is not writable is refused (:class:`ReadOnlyError`, naming ``path``); a
    directory where no temporary file can be made raises the :class:`OSError`, naming the directory. A
    replaced file keeps its permission bits; a new one gets the umask's (not ``mkstemp``'s 0600). On
    any error, an interrupt included, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if path.exists() and not os.access(path, os.W_OK):
        raise ReadOnlyError(errno.EACCES, "the file is read-only", str(path))
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(directory)) from None  # the same subclass, naming the directory
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
