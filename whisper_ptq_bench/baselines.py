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
from whisper_ptq_bench.result import KEYS, PORTABLE, PROFILE, Outputs, Result, parse_speed, rounded, validate_entry

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
    "speed_pair": 0.1,  # the same against a live reference environment, timed in alternating rounds (fails beyond 3/4)
    "speed_noise": 0.02,  # a paired speed ratio within this of 1 is no change
    "speed_p": 0.01,  # a paired speed difference is claimed only below this signed-rank p-value
    "compression": 0.0005,  # absolute drop of the compression fraction tolerated (serialization jitter)
}
TOP_KEYS = {"schema", "tolerances", "environments", "profiles", "cases"}
#: keys of a case entry, and of its per-profile parts (result.py says where each measurement belongs)
PORTABLE_KEYS = {k for k, where in KEYS.items() if where != PROFILE} | {"environment", "tolerances", "profiles"}
PROFILE_KEYS = {k for k, where in KEYS.items() if where != PORTABLE} | {"environment"}
REQUIRED_CASE_KEYS = {"compression", "corpus_hash", "environment", "weights"}


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


def _check_fields(entry: dict, allowed: set[str], where: str) -> None:
    if "environment" in entry and not isinstance(entry["environment"], str):
        raise BaselineError(f"{where}: environment must be a string, not {entry['environment']!r}")
    validate_entry(entry, allowed, where)


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


def dumps(data: dict) -> str:
    validate(data)
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def merge(data: dict, entries: Iterable[tuple]) -> dict:
    """Put (case id, portable part, profile part, environment, (profile key, profile)) into ``data``; the parts
    are ``Result.entry()`` split by ``result.split`` (rounded as the file keeps them).

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
        new = rounded({**portable, "environment": key})
        if "tolerances" in old:
            new["tolerances"] = old["tolerances"]
        profiles = dict(old.get("profiles", {}))
        earlier = profiles.get(pkey, {})
        if "speed" in bound and "speed" in earlier and earlier.get("environment") == key:
            # same machine profile, same libraries: the costs it measured in machine states this recording did
            # not see stay (a recording sees the state the machine is in for its few rounds)
            now, before = (parse_speed(e, f"case {cid!r}") for e in (bound, earlier))
            bound = {**bound, "speed": now.with_states(before).entry()}
        profiles[pkey] = rounded({**bound, "environment": key})
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


def expected_view(entry: dict, profile: str) -> tuple[dict, bool]:
    """The portable part of a baseline entry merged with the part recorded on ``profile`` (if any)."""
    merged = {k: v for k, v in entry.items() if k != "profiles"}
    part = entry.get("profiles", {}).get(profile)
    if part:
        merged.update(part)
    return merged, part is not None


def peers(entry: dict, profile: str, machines: dict | None, machine: dict | None) -> list[tuple[str, dict]]:
    """(profile key, teacher-forced output) recorded for this case on the other machine profiles of this device kind
    and architecture: what an activation-quantized case on a new profile is compared with, at ``kl_across``."""
    if not machines or not machine:
        return []
    out = []
    for key, part in sorted(entry.get("profiles", {}).items()):
        other = machines.get(key) or {}
        if key == profile or "output" not in part:
            continue
        if other.get("device") == machine.get("device") and other.get("arch") == machine.get("arch"):
            out.append((key, part["output"]))
    return out


class BaselineReference:
    """baselines.json as the reference of a run: for a case id, the result its entry holds for this machine
    profile (the portable part merged with this profile's part), with the outputs recorded on the other profiles
    of this device kind and architecture; and the tolerances it is compared at."""

    def __init__(self, data: dict, profile: str, machine: dict | None, path: Path | str = "baselines.json"):
        self.data, self.profile, self.machine, self.path = data, profile, machine, path

    def has(self, case_id: str) -> bool:
        return case_id in self.data.get("cases", {})

    def result(self, case_id: str, config: QuantConfig) -> Result | None:
        entry = self.data.get("cases", {}).get(case_id)
        if entry is None:
            return None
        view, _ = expected_view(entry, self.profile)
        where = f"{self.path}: case {case_id!r}"
        elsewhere = tuple(
            (key, Outputs.parse({"output": out}, where))
            for key, out in peers(entry, self.profile, self.data.get("profiles"), self.machine)
        )
        return Result.from_entry(case_id, config, view, where, elsewhere=elsewhere)

    def same_profile(self, case_id: str) -> bool:
        return self.profile in self.data.get("cases", {}).get(case_id, {}).get("profiles", {})

    def tolerances(self, case_id: str) -> dict:
        return tolerances(self.data, case_id)
