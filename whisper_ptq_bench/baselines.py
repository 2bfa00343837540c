"""baselines.json: read, validate, and update atomically (under a lock, for xdist workers)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.errors import BaselineError, ConfigError

SCHEMA = 1
DEFAULT_TOLERANCES = {
    "wer": 0.01,  # absolute WER (0.01 = one point) a case may rise before the bootstrap is asked
    "alpha": 0.05,  # one-sided significance level of the paired bootstrap
    "speedup": 0.4,  # relative drop of the speed-up over fp32 tolerated (timings on shared CPUs are noisy)
    "compression": 0.0005,  # absolute drop of the compression fraction tolerated (serialization jitter)
}
TOP_KEYS = {"schema", "tolerances", "environments", "cases"}
CASE_KEYS = {
    "wer", "words", "compression", "size_bytes", "speedup", "rtf", "corpus_hash", "model_fingerprint",
    "fingerprint", "transcripts", "environment", "tolerances", "scope", "batching",
}
REQUIRED_CASE_KEYS = {"wer", "compression", "speedup", "corpus_hash", "fingerprint", "transcripts", "environment"}
_ROUND = {"wer": 6, "compression": 5, "speedup": 3, "rtf": 4}


def split_case_id(case_id: str) -> tuple[str, str, QuantConfig]:
    """``{model}/{corpus}/{config id}`` -> parts; the config id must parse."""
    parts = case_id.split("/")
    if len(parts) != 3 or not all(parts):
        raise BaselineError(f"case id {case_id!r} is not of the form '{{model}}/{{corpus}}/{{config id}}'")
    try:
        config = QuantConfig.from_id(parts[2])
    except ConfigError as err:
        raise BaselineError(f"case id {case_id!r} matches no configuration: {err}") from None
    return parts[0], parts[1], config


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed")


def parse(text: str, path: Path | str = "baselines.json") -> dict:
    """Parse and validate; every message names the file and the offending key or position."""
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as err:
        raise BaselineError(f"{path}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except ValueError as err:
        match = re.search(r"\b(NaN|-?Infinity)\b", text)
        where = ""
        if match:
            line = text.count("\n", 0, match.start()) + 1
            where = f" at line {line}"
        raise BaselineError(f"{path}: {err}{where}; baselines hold finite numbers only") from None
    validate(data, path)
    return data


def validate(data, path: Path | str = "baselines.json") -> None:
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: the top level must be an object")
    if data.get("schema") != SCHEMA:
        raise BaselineError(f"{path}: schema version {data.get('schema')!r} is not supported (this suite reads schema {SCHEMA})")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise BaselineError(f"{path}: unknown top-level keys {sorted(unknown)} (allowed: {sorted(TOP_KEYS)})")
    _check_tolerances(data.get("tolerances", {}), f"{path}: tolerances")
    envs = data.get("environments", {})
    if not isinstance(envs, dict):
        raise BaselineError(f"{path}: 'environments' must be an object")
    cases = data.get("cases", {})
    if not isinstance(cases, dict):
        raise BaselineError(f"{path}: 'cases' must be an object")
    for case_id, entry in cases.items():
        split_case_id(case_id)
        where = f"{path}: case {case_id!r}"
        if not isinstance(entry, dict):
            raise BaselineError(f"{where} must be an object")
        unknown = set(entry) - CASE_KEYS
        if unknown:
            raise BaselineError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(CASE_KEYS)})")
        missing = REQUIRED_CASE_KEYS - set(entry)
        if missing:
            raise BaselineError(f"{where}: missing keys {sorted(missing)}")
        for key in ("wer", "compression", "speedup"):
            value = entry[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise BaselineError(f"{where}: {key} must be a finite number, not {value!r}")
        if not isinstance(entry["transcripts"], dict) or not all(isinstance(v, str) for v in entry["transcripts"].values()):
            raise BaselineError(f"{where}: transcripts must map utterance ids to text")
        for key in ("batching", "scope", "corpus_hash", "fingerprint"):
            if key in entry and not isinstance(entry[key], str):
                raise BaselineError(f"{where}: {key} must be a string, not {entry[key]!r}")
        if entry["environment"] not in envs:
            raise BaselineError(f"{where}: environment {entry['environment']!r} is not among 'environments'")
        _check_tolerances(entry.get("tolerances", {}), f"{where}: tolerances")


def _check_tolerances(tol, where: str) -> None:
    if not isinstance(tol, dict):
        raise BaselineError(f"{where} must be an object")
    for key, value in tol.items():
        if key not in DEFAULT_TOLERANCES:
            raise BaselineError(f"{where}: unknown tolerance {key!r} (known: {sorted(DEFAULT_TOLERANCES)})")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise BaselineError(f"{where}: {key} must be a finite non-negative number, not {value!r}")


def empty() -> dict:
    return {"schema": SCHEMA, "tolerances": dict(DEFAULT_TOLERANCES), "environments": {}, "cases": {}}


def load(path: Path) -> dict:
    """The baselines at ``path``; an absent file is an empty baseline set (every case then lacks one)."""
    path = Path(path)
    if not path.exists():
        return empty()
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise BaselineError(f"{path}: cannot be read ({err.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BaselineError(f"{path}: not UTF-8 ({err})") from None
    return parse(text, path)


def tolerances(data: dict, case_id: str) -> dict:
    tol = dict(DEFAULT_TOLERANCES)
    tol.update(data.get("tolerances", {}))
    tol.update(data.get("cases", {}).get(case_id, {}).get("tolerances", {}))
    return tol


def env_key(env: dict) -> str:
    blob = json.dumps(env, sort_keys=True).encode()
    return "env-" + hashlib.sha256(blob).hexdigest()[:10]


def _round(entry: dict) -> dict:
    out = dict(entry)
    for key, digits in _ROUND.items():
        if key in out and isinstance(out[key], float):
            out[key] = round(out[key], digits)
    return out


def dumps(data: dict) -> str:
    validate(data)
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def merge(data: dict, entries: Iterable[tuple[str, dict, dict]]) -> dict:
    """Put (case id, entry, environment) into ``data``; other cases stay untouched; unused environments go."""
    data = json.loads(json.dumps(data))  # deep copy
    for case_id, entry, env in entries:
        key = env_key(env)
        data.setdefault("environments", {})[key] = env
        old = data.setdefault("cases", {}).get(case_id, {})
        new = _round({**entry, "environment": key})
        if "tolerances" in old:  # hand-set per-case tolerances survive an update
            new["tolerances"] = old["tolerances"]
        data["cases"][case_id] = new
    used = {c["environment"] for c in data["cases"].values()}
    data["environments"] = {k: v for k, v in data["environments"].items() if k in used}
    return data


def atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it over: readers see old or new, never half."""
    path = Path(path)
    if path.exists() and not os.access(path, os.W_OK):
        raise BaselineError(f"{path}: the file is read-only; make it writable (chmod u+w) to update baselines")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise BaselineError(f"{path}: cannot write in {directory} ({err.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:  # mkstemp makes 0600; a new baselines file gets the usual umask-derived mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def update(path: Path, entries: list[tuple[str, dict, dict]], *, timeout: float = 120) -> dict:
    """Merge ``entries`` into the file at ``path`` under an exclusive lock (safe across xdist workers)."""
    from filelock import FileLock, Timeout

    path = Path(path)
    lock = FileLock(str(path) + ".lock")
    try:
        with lock.acquire(timeout=timeout):
            merged = merge(load(path), entries)
            atomic_write(path, dumps(merged))
    except Timeout:
        raise BaselineError(f"{path}: another process held {path}.lock for {timeout:.0f} s; nothing was written") from None
    return merged
