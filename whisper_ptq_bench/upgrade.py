"""``whisper-ptq-bench upgrade``: build the environment an upgrade replaces and the one it makes, and run the main
job side by side in them (the candidate's session against the reference's worker) on this machine.

    whisper-ptq-bench upgrade transformers==5.25.0            # the pins, and the pins with transformers 5.25.0
    whisper-ptq-bench upgrade --latest                        # the pins, and the newest quantization stack
    whisper-ptq-bench upgrade --reference-pins base.txt --candidate-pins requirements/pinned.txt   # a pull request

Each environment is a venv under ``--envs`` (default ``.ptq-envs/``), named by the hash of what was asked of pip,
and reused while that is the same (by either role: the pins are one pair's reference and another's candidate); the checkout's package is installed into each (editable). Everything after
``--`` goes to pytest (e.g. ``-- --ptq-matrix smoke``).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from pathlib import Path

from whisper_ptq_bench.environment import LIBRARIES
from whisper_ptq_bench.errors import BenchError


class UpgradeError(BenchError):
    """An environment could not be built, or the checkout is not one of this project."""


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    """The distribution a requirement line names (``transformers==5.25.0`` -> ``transformers``)."""
    match = _NAME.match(spec)
    if not match:
        raise UpgradeError(f"{spec!r} is not a requirement (write it as pip does, e.g. transformers==5.25.0)")
    return canonical(match.group(1))


def pins_without(text: str, names: set[str]) -> str:
    """A constraints file's text without the lines that pin ``names`` (which the candidate upgrades)."""
    keep = []
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if stripped and requirement_name(stripped) in names:
            continue
        keep.append(line)
    return "\n".join(keep) + "\n"


@dataclass
class Env:
    """One environment: the constraints it is built under and the requirements pip is asked for on top."""

    role: str  # "reference" or "candidate"
    constraints: str  # the text of the constraints file
    requirements: list[str] = field(default_factory=list)  # installed after the package, under the constraints
    upgrade: list[str] = field(default_factory=list)  # `pip install --upgrade` of these last (--latest)

    def key(self) -> str:
        blob = "\n".join([self.constraints, *self.requirements, "--upgrade", *self.upgrade, sys.version])
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def directory(self, root: Path) -> Path:
        """Named by the request alone, so the pins built as one pair's candidate are another's reference."""
        return root / f"env-{self.key()}"

    def python(self, root: Path) -> Path:
        return self.directory(root) / "bin" / "python"


def plan(
    checkout: Path,
    requirements: list[str],
    latest: bool,
    reference_pins: Path | None,
    candidate_pins: Path | None,
) -> tuple[Env, Env]:
    """(reference, candidate) environments: the reference under its pins; the candidate under its pins (the same by
    default) with the named requirements upgraded, or the newest quantization stack with ``latest``."""
    default = checkout / "requirements" / "pinned.txt"
    ref_text = _read(reference_pins or default)
    cand_text = _read(candidate_pins or reference_pins or default)
    if not requirements and not latest and candidate_pins is None:
        raise UpgradeError(
            "name what to upgrade (e.g. transformers==5.25.0), or --latest, or --candidate-pins FILE "
            "(the candidate's pins)"
        )
    upgraded = {requirement_name(r) for r in requirements}
    stack = [lib for lib in LIBRARIES if lib != "torch"]  # torch stays the CPU build the pins name
    if latest:
        upgraded |= {canonical(lib) for lib in stack}
    if latest:  # the newest stack resolves its own dependencies: only torch stays pinned (the CPU build)
        cand_text = "".join(line + "\n" for line in cand_text.splitlines() if line.strip().startswith("torch=="))
    candidate = Env("candidate", pins_without(cand_text, upgraded), list(requirements), stack if latest else [])
    return Env("reference", ref_text), candidate


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise UpgradeError(f"{path}: cannot be read ({err.strerror})") from None


def install_commands(env: Env, checkout: Path, directory: Path) -> list[list[str]]:
    """The pip commands that build ``env`` in ``directory`` (its constraints file written beside it)."""
    python = str(directory / "bin" / "python")
    constraints = str(directory / "constraints.txt")
    pip = [python, "-m", "pip", "install", "-q", "-c", constraints]
    cpu = checkout / "requirements" / "cpu.txt"
    commands = [pip + ["-r", str(cpu), "-e", f"{checkout}[offline]"]]
    if env.requirements:
        commands.append(pip + env.requirements)
    if env.upgrade:
        commands.append(pip + ["--upgrade", *env.upgrade])
    return commands


def build(env: Env, checkout: Path, root: Path, echo=print) -> Path:
    """The environment's interpreter, built (or reused when it was built from the same request)."""
    directory = env.directory(root)
    python = directory / "bin" / "python"
    done = directory / ".built"
    if done.exists() and python.exists():
        echo(f"{env.role}: reusing {directory}")
        return python
    echo(f"{env.role}: building {directory}")
    venv.create(directory, with_pip=True, clear=True)
    (directory / "constraints.txt").write_text(env.constraints, encoding="utf-8")
    for command in install_commands(env, checkout, directory):
        echo("  " + shlex.join(command))
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode:
            raise UpgradeError(
                f"building the {env.role} environment failed ({shlex.join(command[3:])}):\n{run.stderr.strip()[-3000:]}"
            )
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    (directory / "freeze.txt").write_text(freeze, encoding="utf-8")
    done.write_text("ok\n")
    return python


def checkout_root(start: Path) -> Path:
    """The project checkout holding ``start`` (pyproject.toml and benchmarks/): where the main job lives."""
    for candidate in [start, *start.parents]:
        if (candidate / "benchmarks").is_dir() and (candidate / "pyproject.toml").is_file():
            return candidate
    raise UpgradeError(f"{start}: not inside a whisper-ptq-bench checkout (no benchmarks/ and pyproject.toml)")


def main(
    requirements: list[str],
    latest: bool,
    reference_pins: Path | None,
    candidate_pins: Path | None,
    envs: Path | None,
    pytest_args: list[str],
    dry_run: bool = False,
    echo=print,
) -> int:
    checkout = checkout_root(Path.cwd())
    root = (envs or checkout / ".ptq-envs").resolve()
    reference, candidate = plan(checkout, requirements, latest, reference_pins, candidate_pins)
    command = [
        str(candidate.python(root)),
        "-m",
        "pytest",
        str(checkout / "benchmarks"),
        "--benchmark-only",
        f"--ptq-against={reference.python(root)}",
        *pytest_args,
    ]
    if dry_run:
        for env in (reference, candidate):
            for line in install_commands(env, checkout, env.directory(root)):
                echo(shlex.join(line))
        echo(shlex.join(command))
        return 0
    root.mkdir(parents=True, exist_ok=True)
    build(reference, checkout, root, echo)
    build(candidate, checkout, root, echo)
    echo(shlex.join(command))
    return subprocess.run(command, cwd=checkout).returncode
