"""baselines.json: read, validate, and update atomically (under a lock, for xdist workers)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from whisper_ptq_bench.atomic import ReadOnlyError, atomic_write
from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.errors import BaselineError, ConfigError
from whisper_ptq_bench.speed import with_states

SCHEMA = 2
DEFAULT_TOLERANCES = {
    "wer": 0.01,  # absolute WER (0.01 = one point) a case may rise before the bootstrap is asked
    "alpha": 0.05,  # one-sided significance level of the paired bootstraps (WER, output)
    "broken": 0.2,  # a baseline this far above fp32's WER is broken: its WER warns instead of failing
    "weight": 0.01,  # relative change of a module's dequantized-weight error tolerated
    "kl": 0.05,  # relative rise of the teacher-forced KL divergence from fp32 tolerated
    "kl_across": 0.3,  # the same against another machine profile (activation-quantized outputs recorded elsewhere only)
    "nll": 0.002,  # absolute rise (nats per token) of the reference negative log-likelihood tolerated
    "speed": 0.2,  # slowdown on the fixed workload the speed check exists to catch (fails beyond three quarters of it)
    "compression": 0.0005,  # absolute drop of the compression fraction tolerated (serialization jitter)
}
TOP_KEYS = {"schema", "tolerances", "environments", "profiles", "cases"}
PORTABLE_KEYS = {
    "wer",
    "words",
    "compression",
    "size_bytes",
    "corpus_hash",
    "model_fingerprint",
    "fingerprint",
    "transcripts",
    "environment",
    "tolerances",
    "scope",
    "batching",
    "weights",
    "output",
    "fp32_wer",
    "profiles",
}
PROFILE_KEYS = {"speed", "rtf", "speedup", "environment", "output", "wer", "words", "transcripts", "fingerprint"}
REQUIRED_CASE_KEYS = {"compression", "corpus_hash", "environment", "weights"}
_ROUND = {"wer": 6, "fp32_wer": 6, "compression": 5, "speedup": 3, "rtf": 4}


def case_id_parts(case_id: str) -> tuple[str, ...]:
    """The ``/``-separated parts of a case id, unchecked: at most three, split from the right, since the model
    may hold ``/`` (hub ids, paths) and corpus and config ids never do."""
    return tuple(case_id.rsplit("/", 2))


def split_case_id(case_id: str) -> tuple[str, str, QuantConfig]:
    """``{model}/{corpus}/{config id}`` -> parts (see :func:`case_id_parts`); all three must be non-empty and
    the config id must parse."""
    parts = case_id_parts(case_id)
    if len(parts) != 3 or not all(parts):
        raise BaselineError(f"case id {case_id!r} is not of the form '{{model}}/{{corpus}}/{{config id}}'")
    try:
        config = QuantConfig.from_id(parts[2])
    except ConfigError as err:
        raise BaselineError(f"case id {case_id!r} matches no configuration: {err}") from None
    return parts[0], parts[1], config


def case_id(model: str, corpus: str, config: QuantConfig) -> str:
    """The one way a case id is written (the inverse of ``split_case_id``)."""
    return f"{model}/{corpus}/{config.id}"


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
        hint = (
            " (schema 1 kept no weight, output or per-machine speed baselines: record them with --ptq-update-baselines)"
            if data.get("schema") == 1
            else ""
        )
        raise BaselineError(
            f"{path}: schema version {data.get('schema')!r} is not supported (this suite reads schema {SCHEMA}){hint}"
        )
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
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise BaselineError(f"{path}: 'profiles' must be an object")
    for cid, entry in cases.items():
        split_case_id(cid)
        where = f"{path}: case {cid!r}"
        if not isinstance(entry, dict):
            raise BaselineError(f"{where} must be an object")
        _check_fields(entry, PORTABLE_KEYS, where)
        missing = REQUIRED_CASE_KEYS - set(entry)
        if missing:
            raise BaselineError(f"{where}: missing keys {sorted(missing)}")
        if entry["environment"] not in envs:
            raise BaselineError(f"{where}: environment {entry['environment']!r} is not among 'environments'")
        _check_tolerances(entry.get("tolerances", {}), f"{where}: tolerances")
        parts = entry.get("profiles", {})
        if not isinstance(parts, dict):
            raise BaselineError(f"{where}: profiles must be an object")
        for key, part in parts.items():
            pwhere = f"{where}: profile {key!r}"
            if key not in profiles:
                raise BaselineError(f"{pwhere} is not among the top-level 'profiles'")
            if not isinstance(part, dict):
                raise BaselineError(f"{pwhere} must be an object")
            _check_fields(part, PROFILE_KEYS, pwhere)
            if part.get("environment") not in envs:
                raise BaselineError(f"{pwhere}: environment {part.get('environment')!r} is not among 'environments'")


def _number(value, where: str, key: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise BaselineError(f"{where}: {key} must be a finite number, not {value!r}")


def _check_fields(entry: dict, allowed: set[str], where: str) -> None:
    unknown = set(entry) - allowed
    if unknown:
        raise BaselineError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")
    for key in ("wer", "compression", "rtf", "speedup", "fp32_wer"):
        if key in entry:
            _number(entry[key], where, key)
    if "transcripts" in entry and (
        not isinstance(entry["transcripts"], dict) or not all(isinstance(v, str) for v in entry["transcripts"].values())
    ):
        raise BaselineError(f"{where}: transcripts must map utterance ids to text")
    for key in ("batching", "scope", "corpus_hash", "fingerprint", "model_fingerprint", "environment"):
        if key in entry and not isinstance(entry[key], str):
            raise BaselineError(f"{where}: {key} must be a string, not {entry[key]!r}")
    weights = entry.get("weights", {})
    if not isinstance(weights, dict):
        raise BaselineError(f"{where}: weights must map module names to [relative error, format]")
    for name, value in weights.items():
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)):
            raise BaselineError(f"{where}: weights[{name!r}] must be [relative error or null, format], not {value!r}")
        _number(value[0], where, f"weights[{name!r}] error", allow_none=True)
    if "output" in entry:
        out = entry["output"]
        if not isinstance(out, dict) or not isinstance(out.get("per_utterance"), dict):
            raise BaselineError(f"{where}: output must hold per_utterance {{id: [kl, top1, nll]}}")
        for utt, triple in out["per_utterance"].items():
            if not (isinstance(triple, list) and len(triple) == 3):
                raise BaselineError(f"{where}: output per_utterance[{utt!r}] must be [kl, top1, nll]")
            for value in triple:
                _number(value, where, f"output per_utterance[{utt!r}]")
    if "speed" in entry:
        speed = entry["speed"]
        if not isinstance(speed, dict) or "cost" not in speed:
            raise BaselineError(f"{where}: speed must hold the relative cost on the fixed workload ('cost')")
        _number(speed["cost"], where, "speed cost")
        if speed["cost"] <= 0:
            raise BaselineError(f"{where}: speed cost must be positive, not {speed['cost']!r}")
        if "state" in speed:
            _number(speed["state"], where, "speed state")
            if speed["state"] <= 0:
                raise BaselineError(f"{where}: speed state (memory/compute balance) must be positive")
        others = speed.get("others", [])
        if not isinstance(others, list):
            raise BaselineError(f"{where}: speed others must be a list of {{state, cost, ci95, rounds}}")
        for i, other in enumerate(others):
            if not isinstance(other, dict) or not {"state", "cost"} <= set(other):
                raise BaselineError(f"{where}: speed others[{i}] must hold 'state' and 'cost'")
            for key in ("state", "cost"):
                _number(other[key], where, f"speed others[{i}] {key}")
                if other[key] <= 0:
                    raise BaselineError(f"{where}: speed others[{i}] {key} must be positive, not {other[key]!r}")


def _check_tolerances(tol, where: str) -> None:
    if not isinstance(tol, dict):
        raise BaselineError(f"{where} must be an object")
    for key, value in tol.items():
        if key not in DEFAULT_TOLERANCES:
            raise BaselineError(f"{where}: unknown tolerance {key!r} (known: {sorted(DEFAULT_TOLERANCES)})")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise BaselineError(f"{where}: {key} must be a finite non-negative number, not {value!r}")


def empty() -> dict:
    return {"schema": SCHEMA, "tolerances": dict(DEFAULT_TOLERANCES), "environments": {}, "profiles": {}, "cases": {}}


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


def preflight(path: Path, *, write: bool) -> dict:
    """Read and validate the baselines before any case runs; with ``write``, also check that the file can be
    replaced (so that an update run never measures everything and then loses it)."""
    path = Path(path)
    data = load(path)
    if write:
        directory = path.parent if str(path.parent) else Path(".")
        if path.exists():
            try:  # opened for writing, not written: refused for read-only and immutable files, even for root
                with open(path, "r+b"):
                    pass
            except OSError as err:
                raise BaselineError(
                    f"{path}: cannot be rewritten ({err.strerror}); make it writable (chmod u+w, chattr -i) or choose "
                    "another --ptq-baselines"
                ) from None
        try:  # the atomic write creates a temporary file beside it
            with tempfile.NamedTemporaryFile(dir=directory, prefix=f".{path.name}.probe-"):
                pass
        except OSError as err:
            raise BaselineError(
                f"{path}: cannot write in {directory} ({err.strerror}); choose another --ptq-baselines"
            ) from None
    return data


def tolerances(data: dict, case_id: str) -> dict:
    tol = dict(DEFAULT_TOLERANCES)
    tol.update(data.get("tolerances", {}))
    tol.update(data.get("cases", {}).get(case_id, {}).get("tolerances", {}))
    return tol


def env_key(env: dict) -> str:
    blob = json.dumps(env, sort_keys=True).encode()
    return "env-" + hashlib.sha256(blob).hexdigest()[:10]


def _sig(x, digits: int = 6):
    """``x`` to ``digits`` significant digits (baselines stay readable and diff-friendly)."""
    if not isinstance(x, float) or x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def _round(entry: dict) -> dict:
    out = dict(entry)
    for key, digits in _ROUND.items():
        if key in out and isinstance(out[key], float):
            out[key] = round(out[key], digits)
    if "weights" in out:
        out["weights"] = {m: [_sig(e), f] for m, (e, f) in out["weights"].items()}
    if "output" in out:
        o = out["output"]
        out["output"] = {
            **{k: _sig(v) for k, v in o.items() if k != "per_utterance"},
            "per_utterance": {u: [_sig(x) for x in v] for u, v in o["per_utterance"].items()},
        }
    if "speed" in out:
        sp = out["speed"]
        out["speed"] = {
            "cost": round(sp["cost"], 4),
            "ci95": [round(x, 4) for x in sp["ci95"]],
            "rounds": sp["rounds"],
            "workload": sp.get("workload", ""),
        }
        if sp.get("state") is not None:  # the machine's memory/compute balance the cost was measured in
            out["speed"]["state"] = round(sp["state"], 4)
            others = [  # the cost in further states (this recording's, or kept from one of the same environment)
                {"state": round(o["state"], 4), "cost": round(o["cost"], 4)}
                | {"ci95": [round(x, 4) for x in o.get("ci95", [])], "rounds": o.get("rounds", 0)}
                for o in sp.get("others", [])
            ]
            if others:
                out["speed"]["others"] = others
    return out


def dumps(data: dict) -> str:
    validate(data)
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def merge(data: dict, entries: Iterable[tuple]) -> dict:
    """Put (case id, portable part, profile part, environment, (profile key, profile)) into ``data``.

    The portable part replaces the case's portable fields; the profile part replaces that profile's
    entry and leaves other profiles' entries alone; hand-set per-case tolerances survive. Unused
    environments and profiles are dropped."""
    data = json.loads(json.dumps(data))  # deep copy
    data.setdefault("profiles", {})
    for cid, portable, bound, env, (pkey, prof) in entries:
        key = env_key(env)
        data.setdefault("environments", {})[key] = env
        data["profiles"][pkey] = prof
        old = data.setdefault("cases", {}).get(cid, {})
        new = _round({**portable, "environment": key})
        if "tolerances" in old:
            new["tolerances"] = old["tolerances"]
        profiles = dict(old.get("profiles", {}))
        earlier = profiles.get(pkey, {})
        if "speed" in bound and "speed" in earlier and earlier.get("environment") == key:
            # same machine profile, same libraries: the costs it measured in machine states this recording did
            # not see stay (a recording sees the state the machine is in for its few rounds)
            bound = {**bound, "speed": with_states(bound["speed"], earlier["speed"])}
        profiles[pkey] = _round({**bound, "environment": key})
        new["profiles"] = profiles
        data["cases"][cid] = new
    return _prune(data)


def _prune(data: dict) -> dict:
    """Drop environments and profiles no case refers to."""
    cases = data.get("cases", {}).values()
    used = {c["environment"] for c in cases} | {p["environment"] for c in cases for p in c.get("profiles", {}).values()}
    data["environments"] = {k: v for k, v in data.get("environments", {}).items() if k in used}
    used_profiles = {k for c in cases for k in c.get("profiles", {})}
    data["profiles"] = {k: v for k, v in data.get("profiles", {}).items() if k in used_profiles}
    return data


def combine(data: dict, other: dict) -> dict:
    """``data`` with ``other``'s cases folded in: the shards of one recording (e.g. one per backend on GPU
    runners). A case in both takes ``other``'s portable fields and the union of the two files' profiles (other's
    entry where both have one); hand-set per-case tolerances survive; top-level tolerances stay ``data``'s."""
    data = json.loads(json.dumps(data))
    data.setdefault("environments", {}).update(other.get("environments", {}))
    data.setdefault("profiles", {}).update(other.get("profiles", {}))
    cases = data.setdefault("cases", {})
    for cid, entry in other.get("cases", {}).items():
        old = cases.get(cid, {})
        new = json.loads(json.dumps(entry))
        new["profiles"] = {**old.get("profiles", {}), **entry.get("profiles", {})}
        if "tolerances" in old and "tolerances" not in entry:
            new["tolerances"] = old["tolerances"]
        cases[cid] = new
    data = _prune(data)
    validate(data)
    return data


def update(path: Path, entries: list[tuple[str, dict, dict]], *, timeout: float = 120) -> dict:
    """Merge ``entries`` into the file at ``path`` under an exclusive lock (safe across xdist workers)."""
    from filelock import FileLock, Timeout

    path = Path(path)
    lock = FileLock(str(path) + ".lock")
    try:
        with lock.acquire(timeout=timeout):
            merged = merge(load(path), entries)
            try:
                atomic_write(path, dumps(merged))
            except ReadOnlyError:
                raise BaselineError(
                    f"{path}: the file is read-only; make it writable (chmod u+w) to update baselines"
                ) from None
            except OSError as err:
                if err.filename != str(path.parent):
                    raise
                raise BaselineError(f"{path}: cannot write in {err.filename} ({err.strerror})") from None
    except Timeout:
        raise BaselineError(
            f"{path}: another process held {path}.lock for {timeout:.0f} s; nothing was written"
        ) from None
    return merged
