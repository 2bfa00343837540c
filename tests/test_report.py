"""The report command: loading and merging pytest-benchmark shards, errors, Markdown/HTML content, Pareto plots.

The JSON files under tests/data/report/ are hand-made fixtures in pytest-benchmark's format; their
numbers are invented for these tests and are not measurements.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench import report
from whisper_ptq_bench.cli import main
from whisper_ptq_bench.errors import BaselineError

DATA = Path(__file__).parent / "data" / "report"
SHARD_A, SHARD_B, SHARD_GPU = DATA / "shard-a.json", DATA / "shard-b.json", DATA / "shard-c-gpu.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The report of the three fixture shards, written once for the module."""
    out = tmp_path_factory.mktemp("report")
    results = report.load([SHARD_A, SHARD_B, SHARD_GPU])
    paths = report.write_report(results, out, title="Fixture report")
    return out, paths


@pytest.fixture(scope="module")
def markdown(written):
    return (written[0] / "report.md").read_text(encoding="utf-8")


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row, honouring escaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = re.search(r"^#{1,4} ", text[start + len(heading) :], flags=re.M)
    return text[start : start + len(heading) + (nxt.start() if nxt else len(text))]


def _entry(case: str, extra_info: dict | None = None) -> dict:
    return {
        "name": f"test_quantization[{case}]",
        "param": case,
        "stats": {"median": 1.0, "rounds": 1},
        "extra_info": extra_info or {},
    }


def _write_results(path: Path, entries: list[dict], unmeasured: list[dict] | None = None, ours: bool = True) -> Path:
    """A results file as ``pytest --benchmark-json`` writes it; with ``ours``, with the key the suite's plugin
    always adds (``whisper_ptq_bench.unmeasured``: the cases that ended before they were timed)."""
    data = {
        "machine_info": {},
        "commit_info": {},
        "benchmarks": entries,
        "datetime": "2025-01-01T00:00:00",
        "version": "5.1.0",
    }
    if ours:
        data["whisper_ptq_bench"] = {"unmeasured": unmeasured or []}
    path.write_text(json.dumps(data))
    return path


# --------------------------------------------------------------------------- loading and merging


def test_merge_of_shards_keeps_every_case_in_order():
    results = report.load([SHARD_A, SHARD_B])
    ids = [c.case_id for c in results.cases]
    assert len(ids) == len(set(ids)) == 11
    assert ids[0] == "tiny.en/read-clean/fp32"
    assert ids[-1] == "tiny.en/read-other/quanto.w-int4.g128.asym"
    assert {c.source for c in results.cases} == {str(SHARD_A), str(SHARD_B)}
    assert [s.path for s in results.shards] == [str(SHARD_A), str(SHARD_B)]
    assert len(results.environments) == 1


def test_identical_case_in_two_files_is_kept_once():
    results = report.load([SHARD_A, SHARD_A])
    assert len(results.cases) == 7


def test_conflicting_duplicate_case_is_an_error():
    with pytest.raises(report.ReportError) as err:
        report.load([SHARD_A, DATA / "conflict.json"])
    message = str(err.value)
    assert "tiny.en/read-clean/hqq.w-int4.g64.asym" in message
    assert str(SHARD_A) in message and "conflict.json" in message


def test_conflicting_duplicate_case_exits_2(tmp_path, capsys):
    assert main(["report", str(SHARD_A), str(DATA / "conflict.json"), "--out", str(tmp_path / "out")]) == 2
    assert "appears twice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_case_without_extra_info_is_known_by_its_benchmark_name(tmp_path):
    shard = report.load_results(
        _write_results(tmp_path / "r.json", [{"name": "test_quantization[base/read-other/hqq.w-int4.g64.asym]"}])
    )
    (case,) = shard.cases
    assert (case.model, case.corpus, case.config) == ("base", "read-other", "hqq.w-int4.g64.asym")
    assert case.verdict == "error" and case.wer is None and case.size_mb is None
    assert case.axes["weight"] == "int4"  # parsed from the id when extra_info has no axes


def test_hub_model_ids_with_slashes_split_correctly():
    assert report.split_case_id("openai/whisper-small/read-clean/fp32") == (
        "openai/whisper-small",
        "read-clean",
        "fp32",
    )


@pytest.mark.parametrize(
    ("case_id", "parts"),
    [
        ("tiny.en/read-clean/zz.w-int4.g8", ("tiny.en", "read-clean", "zz.w-int4.g8")),  # config id does not parse
        ("read-clean/fp32", ("", "read-clean", "fp32")),
        ("fp32", ("", "", "fp32")),
        ("/read-clean/fp32", ("", "read-clean", "fp32")),
    ],
)
def test_ids_the_baselines_parser_refuses_are_still_reported(case_id, parts, tmp_path):
    """The report parses ids with baselines.split_case_id, but an id it refuses is kept with what it says."""
    with pytest.raises(BaselineError):
        bl.split_case_id(case_id)
    assert report.split_case_id(case_id) == parts
    (case,) = report.load_results(_write_results(tmp_path / "r.json", [_entry(case_id)])).cases
    assert (case.model, case.corpus, case.config) == parts and case.verdict == "error"


def test_environments_differing_across_shards_are_reported(markdown):
    results = report.load([SHARD_A, SHARD_B, SHARD_GPU])
    envs = results.environments
    assert len(envs) == 2
    assert envs[1][1] == [str(SHARD_GPU)]
    env = _section(markdown, "## Environment")
    assert "2 different environments (differing: device, torch)" in env
    assert "| torch | **2.5.1** | **2.6.0** |" in env


def test_batching_is_stated_and_a_mix_is_flagged(tmp_path):
    one = {"batching": "batch 8 by duration, encoder 2"}
    path = _write_results(
        tmp_path / "a.json", [_entry("tiny.en/read-clean/fp32", one), _entry("tiny.en/read-other/fp32", one)]
    )
    report.write_report(report.load([path]), tmp_path / "one")
    text = (tmp_path / "one" / "report.md").read_text(encoding="utf-8")
    assert "Batching: batch 8 by duration, encoder 2." in text and "different batchings" not in text
    other = _write_results(
        tmp_path / "b.json", [_entry("tiny.en/synth-clean/fp32", {"batching": "batch 1 by duration, encoder 1"})]
    )
    report.write_report(report.load([path, other]), tmp_path / "two")
    text = (tmp_path / "two" / "report.md").read_text(encoding="utf-8")
    assert "2 different batchings (batch 1 by duration, encoder 1; batch 8 by duration, encoder 2)" in text


# --------------------------------------------------------------------------- what the harness writes


def _harness_case(case_id: str, config_id: str, status: str = "ok", **over):
    """A case record as the harness fills it for a measured case (the WER scored by metrics.score)."""
    from whisper_ptq_bench import result as rs
    from whisper_ptq_bench.configs import QuantConfig
    from whisper_ptq_bench.metrics import paired_bootstrap, score
    from whisper_ptq_bench.record import CaseRecord
    from whisper_ptq_bench.speed import Speed

    model, corpus, _ = case_id.rsplit("/", 2)
    config = QuantConfig.from_id(config_id)
    ids = ["u1", "u2", "u3"]
    refs = ["the cat sat on the mat", "hello world", "quantization keeps the words"]
    fp32 = score(ids, refs, refs)
    wer = score(ids, refs, ["the cat sat on a mat", "hello world", "quantization keeps the word"])
    delta = {**paired_bootstrap(fp32.error_vector(), wer.error_vector(), wer.word_vector()).as_dict(), "fp32_wer": 0.0}
    scope = {
        "quantized_modules": 24,
        "quantized_params": 20_000_000,
        "float_modules": 10,
        "float_params": 1_500_000,
        "formats": {"HQQLinear(int4)": 24},
        "float_kinds": {"LayerNorm": 10},
        "beyond_scope": [],
        "missed": [],
    }
    fields = dict(
        case_id=case_id,
        config=config,
        model=model,
        corpus={"name": corpus, "hash": "0123abcd", "utterances": 3, "words": 12, "minutes": 0.25},
        inputs=rs.Inputs("0123abcd", "f" * 64, "batch 8 by duration, encoder 2"),
        transcripts=rs.Transcripts.measured({"u1": "the cat sat on a mat"}, wer, fp32, delta, ()),
        end_to_end=rs.EndToEnd(2.5, 0.1667, 1.6, 512_000_000),
        size=rs.Size(48_250_000, 0.6512, 47_000_000, 0.3),
        scope=rs.Scope("24 modules quantized", scope),
        weights=rs.Weights(
            {
                "model.encoder.layers.0.fc1": (0.0912, "int4 g64 asym (HQQ, axis 1)"),
                "model.decoder.layers.0.fc1": (0.0876, "int4 g64 asym (HQQ, axis 1)"),
            }
        ),
        outputs=rs.Outputs(0.0231, 0.97, 1.31, {"u1": (0.02, 0.97, 1.3)}),
        speed=Speed(0.8, (0.78, 0.83), 5, rounds_this_case=5),
        environment={"python": "3.11", "torch": "2.5.1", "device": "cpu"},
        profile="cpu-00000001",
    )
    fields.update(over)
    return CaseRecord(rs.Result(**fields), status=status)


def test_case_result_extra_info_is_reported(tmp_path):
    """The JSON the plugin writes: CaseRecord.extra_info() as a benchmark's extra_info; WER, size, verdict shown."""
    case_id = "tiny.en/read-clean/hqq.w-int4.g64.asym"
    result = _harness_case(case_id, "hqq.w-int4.g64.asym")
    info = json.loads(json.dumps(result.extra_info()))  # through JSON, as pytest-benchmark stores it
    entry = {
        "name": f"test_quantization[{case_id}]",
        "param": case_id,
        "extra_info": info,
        "stats": {"min": 2.4, "max": 2.6, "mean": 2.5, "median": 2.5, "rounds": 5, "iterations": 1},
    }
    results = report.load([_write_results(tmp_path / "r.json", [entry])])
    (case,) = results.cases
    assert (case.model, case.corpus, case.config) == ("tiny.en", "read-clean", "hqq.w-int4.g64.asym")
    assert case.verdict == "pass" and case.wer == pytest.approx(2 / 12, abs=1e-6)  # 2 errors in 12 words, rounded
    assert case.size_mb == 48.25 and case.kernel_speedup == 1.25 and case.weight_error == pytest.approx(0.0894)
    report.write_report(results, tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    row = next(_cells(ln) for ln in md.splitlines() if ln.startswith("| `hqq.w-int4.g64.asym`"))
    assert row[1:6] == ["HQQ", "weight-only", "asymmetric", "per-group(64)", "4 (int4)"]
    assert row[6] == "16.67%" and row[7] == "+16.67"  # WER and its change against fp32 (0% here)
    assert row[9:] == ["48.25", "65.1%", "8.94%", "0.0231", "0.167", "1.25×", "1.60×", "pass"]
    assert "1 cases from 1 results file(s): 1 passed, 0 failed baseline checks, 0 errored" in md
    assert "3 utterances, 12 words, 0.25 min of audio, hash 0123abcd." in md
    assert "| `hqq.w-int4.g64.asym` | 24 | 20.00 | HQQLinear(int4) ×24 | 10 (LayerNorm 10) | 1.50 | — | — |" in md
    assert "Batching: batch 8 by duration, encoder 2." in md
    assert "Baseline status of the measured cases: 1 ok." in md


def test_unmeasured_cases_are_reported_as_errored_or_skipped(tmp_path):
    """Cases that ended before they were timed are not among the benchmarks but under whisper_ptq_bench.unmeasured."""
    measured = "tiny.en/read-clean/fp32"
    errored = _harness_case(
        "tiny.en/read-clean/bnb.w-nf4.g64.sym",
        "bnb.w-nf4.g64.sym",
        status="errored",
        transcripts=None,
        speed=None,
        outputs=None,
        size=None,
        error="QuantizationError: bitsandbytes needs a CUDA device",
    )
    skipped = {
        "case": "tiny.en/read-other/torchao.w-int8.channel.sym",
        "model": "tiny.en",
        "corpus": {"name": "read-other"},
        "config": "torchao.w-int8.channel.sym",
        "verdict": "skipped",
        "reason": "torchao is not installed",
    }
    info = json.loads(json.dumps(_harness_case(measured, "fp32").extra_info()))
    path = _write_results(
        tmp_path / "r.json",
        [{"name": f"test_quantization[{measured}]", "extra_info": info, "stats": {"median": 2.5, "rounds": 5}}],
        unmeasured=[json.loads(json.dumps(errored.extra_info())), skipped],
    )
    results = report.load([path])
    assert [(c.case_id, c.verdict) for c in results.cases] == [
        (measured, "pass"),
        (errored.case_id, "error"),
        (skipped["case"], "skipped"),
    ]
    report.write_report(results, tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert (
        "3 cases from 1 results file(s): 1 passed, 0 failed baseline checks, 1 errored before measuring, 1 skipped"
        in md
    )
    failed = _section(md, "## Failed, errored and skipped cases")
    assert f"- `{errored.case_id}`" in failed and "errored before it was measured" in failed
    assert "QuantizationError: bitsandbytes needs a CUDA device" in failed
    assert f"- `{skipped['case']}`" in failed and f"skipped: torchao is not installed ({path})" in failed
    assert measured not in failed


def test_unmeasured_key_must_hold_case_records(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"benchmarks": [], "whisper_ptq_bench": {"unmeasured": [{"wer": 0.1}]}}))
    with pytest.raises(report.ReportError, match="must be a list of case records"):
        report.load_results(path)


# --------------------------------------------------------------------------- bad input: exit 2 and a message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("does-not-exist.json", "no such file"),
        ("invalid.json", "not JSON"),
        ("not-benchmark.json", "not a pytest-benchmark results file"),
    ],
)
def test_unusable_results_file_exits_2_naming_it(name, expected, tmp_path, capsys):
    path = DATA / name
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and expected in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_every_unusable_file_is_named(tmp_path, capsys):
    assert main(["report", str(DATA / "invalid.json"), str(SHARD_A), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "invalid.json: not JSON" in err
    assert f"{tmp_path}: is a directory" in err


def test_non_utf8_file_is_not_json(tmp_path):
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"benchmarks": ["\xe9"]}')
    with pytest.raises(report.ReportError, match="latin1.json: not JSON"):
        report.load_results(bad)


def test_entry_without_name_is_rejected(tmp_path):
    with pytest.raises(report.ReportError, match=r"benchmarks\[0\]"):
        report.load_results(_write_results(tmp_path / "r.json", [{"stats": {}}]))


def test_benchmarks_of_another_project_are_refused(tmp_path):
    """pytest-benchmark output, but none of its benchmarks carries a case: not a file of this suite."""
    entries = [
        {
            "name": "test_sort[1000]",
            "param": "1000",
            "stats": {"median": 0.002, "rounds": 100},
            "extra_info": {"size": 1000},
        },
        {"name": "test_parse", "stats": {"median": 0.01, "rounds": 10}, "extra_info": {}},
    ]
    path = _write_results(tmp_path / "other.json", entries, ours=False)
    with pytest.raises(report.ReportError, match="not of whisper-ptq-bench") as err:
        report.load([path])
    assert str(path) in str(err.value)


def test_no_subcommand_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "report" in capsys.readouterr().err


# --------------------------------------------------------------------------- Markdown


def test_markdown_results_table_rows_and_columns(markdown):
    clean = _section(markdown, "#### Corpus read-clean")
    lines = [ln for ln in clean.splitlines() if ln.startswith("|")]
    header = _cells(lines[0])
    assert header == [
        "Config",
        "Library",
        "Scheme",
        "Method",
        "Granularity",
        "Bits (format)",
        "WER",
        "Δ WER vs fp32 (pts)",
        "95% CI (pts)",
        "Size (MB)",
        "Compression",
        "Weight error",
        "KL vs fp32",
        "RTF",
        "Kernel speed-up",
        "E2E speed-up",
        "Verdict",
    ]
    rows = {r[0]: r for r in map(_cells, lines[2:])}
    assert list(rows)[0] == "`fp32`"  # fp32 first
    assert rows["`fp32`"][6:9] == ["5.00%", "reference", "—"]
    hqq = rows["`hqq.w-int4.g64.asym`"]
    assert hqq[1:6] == ["HQQ", "weight-only", "asymmetric", "per-group(64)", "4 (int4)"]
    assert hqq[6:] == ["7.50%", "+2.50", "[+0.00, +5.00]", "61.90", "59.0%", "—", "—", "0.139", "—", "0.80×", "pass"]
    assert rows["`torch-ao.dyn-int8.a-int8.tensor.sym`"][2] == "dynamic (int8 act.)"
    assert rows["`bnb.w-nf4.g64.sym`"][7] == "**+5.00**"  # the interval excludes 0: flagged
    assert rows["`bnb.w-nf4.g64.sym`"][-1] == "**✗ regressed**"
    assert rows["`quanto.w-int4.g128.asym`"][6] == "—" and rows["`quanto.w-int4.g128.asym`"][-1] == "**✗ error**"
    assert "fp32 WER 5.00%" in clean and "40 words" in clean


def test_markdown_tables_are_well_formed(markdown):
    blocks = re.findall(r"(?:^\|.*\|$\n?)+", markdown, flags=re.M)
    assert len(blocks) >= 6
    for block in blocks:
        lines = block.strip().splitlines()
        assert re.fullmatch(r"\|( ---:? \|)+", lines[1]), lines[1]
        widths = {len(_cells(line)) for line in lines}
        assert len(widths) == 1, block


def test_markdown_sections(markdown):
    assert (
        "![WER change against compression for tiny.en on read-clean, read-other](pareto-tiny.en-read.png)" in markdown
    )
    both = _section(markdown, "#### Clean against other (read-clean / read-other)")
    assert "| `hqq.w-int4.g64.asym` | 7.50% | 13.16% | +5.66 | 1.75× |" in both
    scope = _section(markdown, "### tiny.en · quantization scope")
    assert "**⚠ 1: proj_out**" in scope and "**⚠ 1: model.decoder.layers.3.fc2**" in scope
    assert "HQQLinear(int4) ×96" in scope
    changes = _section(markdown, "### Failed checks")
    assert "`tiny.en/read-clean/bnb.w-nf4.g64.sym`" in changes and "exceeds the baseline" in changes
    assert "transcripts changed against the baseline: u2" in _section(markdown, "### Warnings")
    failed = markdown[markdown.index("## Failed, errored and skipped cases") :]
    assert "`tiny.en/read-clean/quanto.w-int4.g128.asym`" in failed and "errored before it was measured" in failed
    assert "size 61.20 MB" in failed  # partial extra_info is used
    assert "13 cases from 3 results file(s): 10 passed, 1 failed baseline checks, 2 errored" in markdown


def test_sort_by_library_groups_libraries():
    ids = ["fp32", "hqq.w-int4.g64.asym", "torchao.w-int8.channel.sym", "hqq.w-int2.g64.asym", "zz.w-int4.g8.sym"]
    assert report.order_configs(ids, "library") == [
        "fp32",
        "torchao.w-int8.channel.sym",
        "hqq.w-int4.g64.asym",
        "hqq.w-int2.g64.asym",
        "zz.w-int4.g8.sym",
    ]
    assert report.order_configs(list(reversed(ids)), "config")[:2] == ["fp32", "torchao.w-int8.channel.sym"]


def test_corpus_family():
    assert report.corpus_family("read-clean") == ("read", "clean")
    assert report.corpus_family("librispeech-other") == ("librispeech", "other")
    assert report.corpus_family("noise") == ("noise", None)


# --------------------------------------------------------------------------- Pareto front


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([], []),
        ([(1, 1)], [0]),
        ([(3, 1), (1, 3), (2, 2), (3, 3)], [1, 2, 0]),
        ([(1, 5), (1, 4)], [1]),  # same size: the lower WER dominates
        ([(2, 4), (1, 4)], [1]),  # same WER: the smaller size dominates
        ([(1, 4), (1, 4), (2, 5)], [0, 1]),  # identical points are both on the front
        ([(5, 1), (1, 5), (3, 3), (3, 3), (4, 4)], [1, 2, 3, 0]),
        ([(1, math.nan), (None, 1), (2, 2), (math.inf, 0)], [2]),  # missing/non-finite values are skipped
    ],
)
def test_pareto_front(points, front):
    assert report.pareto_front(points) == front


# --------------------------------------------------------------------------- files


def test_png_plots_are_written_and_valid(written):
    out, paths = written
    pngs = sorted(p.name for p in paths if p.suffix == ".png")
    assert pngs == ["pareto-tiny.en-read.png", "pareto-tiny.en-synth.png"]
    for name in pngs:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE
        assert data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 600 and height > 400
        assert len(data) > 20_000  # a drawn figure, not an empty canvas


# --------------------------------------------------------------------------- the Pareto plot's content

# (config, size MB, WER change vs fp32 in points): the shape of a real tiny.en run, with the int8 configs
# crowded within 0.2 MB and a few points of WER of each other, coincident points, and collapsed configs
CROWDED = [
    ("torch-ao.dyn-int8.a-int8.tensor.sym", 101.607, 1.99),
    ("torch-ao.dyn-int8.a-int8.tensor.asym", 101.607, 2.33),
    ("torch-ao.dyn-int8.a-int8.channel.sym", 102.181, 1.66),
    ("torch-ao.dyn-fp16.a-fp16", 151.151, 0.0),
    ("torch-ao.static-int8.a-int8.tensor.sym", 101.664, 200.66),
    ("torch-ao.static-int8.a-int8.tensor.asym", 101.664, 90.7),
    ("torch-ao.static-int8.a-int8.channel.sym", 102.237, 164.45),
    ("torchao.dyn-int8.a-int8.channel.sym", 101.771, 0.66),
    ("torchao.w-int8.channel.sym", 101.769, 0.0),
    ("torchao.w-int8.tensor.sym", 101.6, 0.0),
    ("torchao.w-int4.g32.sym", 104.179, 3.65),
    ("torchao.w-int4.g32.asym", 104.179, 15.61),
    ("quanto.w-int8.channel.sym", 101.753, -0.33),
    ("quanto.w-int4.g128.asym", 94.413, 3.32),
    ("quanto.w-fp8.channel.sym", 101.753, -0.33),
    ("quanto.static-int8.a-int8.channel.sym", 101.753, 0.0),
    ("hqq.w-int8.g64.asym", 103.978, 0.33),
    ("hqq.w-int4.g32.asym", 97.785, 5.32),
    ("hqq.w-int4.g64.asym", 95.72, 0.66),
    ("hqq.w-int4.g128.asym", 94.688, 2.99),
    ("hqq.w-int3.g64.asym", 94.078, 15.95),
    ("hqq.w-int2.g64.asym", 91.592, 77.41),
    ("bnb.dyn-int8.a-int8.channel.sym.threshold=6", 101.732, 0.33),
    ("bnb.dyn-int8.a-int8.channel.sym.threshold=0", 101.732, -0.33),
    ("bnb.w-nf4.g64.sym", 94.403, 2.99),
    ("bnb.w-nf4.g64.sym.dq=1", 93.743, 2.66),
    ("bnb.w-fp4.g64.sym", 94.403, 4.65),
]
FP32_MB, FP32_WER = 151.102, 0.2326


def _plot_case(corpus: str, config: str, size: float | None, delta_pts: float | None, compression: bool = True):
    info: dict = {"wer": FP32_WER + (delta_pts or 0) / 100}
    if size is not None:
        info["size_mb"] = size
        if compression:
            info["compression"] = 1 - size / FP32_MB
    if delta_pts is not None:
        info["wer_delta_vs_fp32"] = {"delta": delta_pts / 100, "ci95": [0, 0]}
    return report.Case(f"tiny.en/{corpus}/{config}", "tiny.en", corpus, config, "test", info=info)


def _crowded_panels(compression: bool = True, shift: float = 0.0):
    panels = []
    for corpus, sign in (("read-clean", 1), ("read-other", -1)):
        cases = [_plot_case(corpus, "fp32", FP32_MB, 0.0, compression)]
        cases += [
            _plot_case(corpus, cid, size, delta * (sign if delta < 10 else 1) + shift, compression)
            for cid, size, delta in CROWDED
        ]
        panels.append((corpus, cases))
    return panels


def _labels(fig) -> dict:
    """Panel axes -> their point labels (matplotlib Text)."""
    from whisper_ptq_bench.report.plots import LABEL_GID

    return {
        ax: [t for t in ax.texts if t.get_gid() == LABEL_GID]
        for ax in fig.axes
        if ax.get_ylabel().startswith("WER change vs fp32")
    }


@pytest.mark.parametrize(
    "panels",
    [
        pytest.param(_crowded_panels(), id="crowded"),
        pytest.param(_crowded_panels(shift=0.5), id="crowded-shifted"),
        pytest.param(_crowded_panels(compression=False), id="compression-derived"),
        pytest.param(_crowded_panels()[:1], id="one-panel"),
    ],
)
def test_pareto_labels_never_overlap_and_every_point_is_labelled(panels):
    from whisper_ptq_bench.report.plots import pareto_figure

    fig = pareto_figure(panels, "t")
    renderer = fig.canvas.get_renderer()
    labels = _labels(fig)
    assert len(labels) == len(panels)
    for ax, texts in labels.items():
        assert "no room to label" not in ax.get_title(loc="left")
        frame = ax.get_window_extent(renderer)
        boxes = [t.get_window_extent(renderer) for t in texts]
        for i, box in enumerate(boxes):
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            assert not any(box.overlaps(other) for other in boxes[i + 1 :]), texts[i].get_text()
        words = " ".join(t.get_text() for t in texts).replace(",", " ").replace("\n", " ").split()
        keys = {int(w) for w in words if w.isdigit()}
        assert keys == set(range(1, len(CROWDED) + 1))  # every point is labelled by name or key number
        assert "fp32" in words


def test_pareto_axes_fit_the_data_and_name_the_front_fp32_and_off_scale_points():
    from whisper_ptq_bench.report.plots import pareto_figure

    fig = pareto_figure(_crowded_panels()[:1], "t")
    ((ax, texts),) = _labels(fig).items()
    text = "\n".join(t.get_text() for t in texts)
    low, high = ax.get_xlim()
    assert 28 < low < 31.05 and 39.4 < high < 42  # compression: the quantized configs, no forced zero
    low, high = ax.get_ylim()
    assert -2 < low < -0.33 and 15.95 < high < 20  # the collapsed configs do not flatten the rest
    assert "compression" in ax.get_xlabel() and "WER change vs fp32" in ax.get_ylabel()
    # the front (least size for its WER change) by name; the clipped points with their value
    for name in ("hqq.w-int4.g64.asym", "bnb.w-nf4.g64.sym.dq=1", "torchao.w-int8.tensor.sym"):
        assert re.search(rf"^\d+ {re.escape(name)}\b", text, re.M), name
    assert re.search(r"^5 torch-ao\.static-int8\.a-int8\.tensor\.sym ↑ \+200\.7 pp$", text, re.M) or re.search(
        r"^5 ↑ \+200\.7 pp$", text, re.M
    )
    assert re.search(r"hqq\.w-int2\.g64\.asym ↑ \+77\.4 pp", text)
    assert re.search(r"^fp32 ← 0\.0%", text, re.M)  # fp32 is far left of the quantized configs: on the frame
    # the other points by their key number, listed under the panels
    assert re.search(r"^(\d+, )*17(, \d+)*$", text, re.M)
    key = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts if "hqq.w-int8.g64.asym" in t.get_text())
    assert re.search(r"^17  hqq\.w-int8\.g64\.asym$", key, re.M)


def test_pareto_plot_falls_back_to_size_and_counts_what_it_cannot_draw():
    from whisper_ptq_bench.report.plots import pareto_figure

    cases = [
        _plot_case("read-clean", cid, size, delta, compression=False) for cid, size, delta in CROWDED[8:12]
    ]  # no fp32 and no compression: x is the size
    cases.append(_plot_case("read-clean", "hqq.w-int4.g64.asym", None, 1.0))  # no size: not plotted, not counted
    cases.append(_plot_case("read-clean", "hqq.w-int2.g64.asym", 91.6, None, compression=False))  # no WER change
    fig = pareto_figure([("read-clean", cases)], "t")
    ((ax, texts),) = _labels(fig).items()
    assert ax.get_xlabel().startswith("size (MB)")
    low, high = ax.get_xlim()
    assert 95 < low < 101.6 and 104.179 < high < 110
    assert "1 measured case(s) without a size or WER change vs fp32 not drawn" in ax.get_title(loc="left")
    # the front (the smallest at the least WER change) by name, the others by number
    assert sorted(t.get_text() for t in texts) == ["1", "2 torchao.w-int8.tensor.sym", "3", "4"]
    assert not [t for a in fig.axes for t in a.texts if "hqq.w-int2" in t.get_text()]  # not drawn: not in the key
    empty = pareto_figure([("read-clean", []), ("read-other", cases[:1])], "t")
    assert len(_labels(empty)) == 2


def test_outputs_leave_no_temporary_files(written):
    out, paths = written
    assert {p.name for p in paths} >= {"report.md", "report.html"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize("step", ["write", "fsync", "replace"])
def test_report_is_replaced_atomically(step, tmp_path, monkeypatch):
    """A write of report.md that fails midway (half written, not synced, not renamed) leaves the previous
    report.md whole and no temporary file behind."""
    out = tmp_path / "out"
    report.write_report(report.load([SHARD_GPU]), out, title="Old")
    before = {name: (out / name).read_bytes() for name in ("report.md", "report.html")}
    new_md = b"# New\n"  # how the new report.md begins: the failure is injected there, after the plots

    if step == "write":  # the temporary file receives half of the text, then the disk is full
        real_fdopen = os.fdopen

        class HalfWriter(io.BufferedWriter):
            def write(self, data):
                if not bytes(data).startswith(new_md):
                    return super().write(data)
                super().write(bytes(data)[: len(data) // 2])
                raise OSError(errno.ENOSPC, "injected: no space left on device")

        monkeypatch.setattr(
            os,
            "fdopen",
            lambda fd, mode="r", *a, **k: (
                HalfWriter(io.FileIO(fd, "wb")) if mode == "wb" else real_fdopen(fd, mode, *a, **k)
            ),
        )
    elif step == "fsync":
        real_fsync = os.fsync

        def fsync(fd):
            if os.pread(fd, len(new_md), 0) == new_md:
                raise OSError(errno.EIO, "injected: fsync failed")
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    else:
        real_replace = os.replace

        def replace(src, dst):
            if Path(dst).name == "report.md":
                assert Path(src).read_bytes().startswith(new_md)  # the new text was complete in the temporary file
                raise OSError(errno.EIO, "injected: rename failed")
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="injected"):
        report.write_report(report.load([SHARD_A, SHARD_B]), out, title="New")
    assert (out / "report.md").read_bytes() == before["report.md"]
    assert before["report.md"].startswith(b"# Old\n")
    assert (out / "report.html").read_bytes() == before["report.html"]  # written after report.md: not reached
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_atomic_write_refuses_a_read_only_file(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    path.write_text("old")
    monkeypatch.setattr(os, "access", lambda p, mode: False)  # as for a chmod a-w file, even as root
    with pytest.raises(PermissionError, match="read-only") as err:
        report.atomic_write(path, "new")
    assert err.value.filename == str(path)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_html_is_self_contained_and_references_plots(written):
    text = (written[0] / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<img src="pareto-tiny.en-read.png"' in text
    assert "<title>Fixture report</title>" in text
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text)  # nothing fetched from elsewhere


def test_html_escapes_config_ids(tmp_path):
    evil = "hqq.w-int4<script>alert(1)</script>"
    info = {
        "case": f"tiny.en/read-clean/{evil}",
        "model": "tiny.en",
        "config": evil,
        "wer": 0.1,
        "size_mb": 50.0,
        "speedup_vs_fp32": 1.2,
        "verdict": "pass",
    }
    path = _write_results(tmp_path / "r.json", [_entry(f"tiny.en/read-clean/{evil}", info)])
    paths = report.write_report(report.load([path]), tmp_path / "out", title="A <b> title")
    text = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in text and "<b>" not in text
    assert "hqq.w-int4&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "A &lt;b&gt; title" in text
    assert any(p.suffix == ".png" for p in paths)
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert f"`{evil}`" in md  # a code span: shown literally on GitHub
    assert "# A &lt;b&gt; title" in md


def test_cli_success_prints_paths_and_replaces_old_report(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("old")
    assert main(["report", str(SHARD_GPU), "--out", str(out), "--title", "T", "--sort", "library"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "pareto-tiny.en-synth.png"), str(out / "report.md"), str(out / "report.html")]
    assert (out / "report.md").read_text().startswith("# T\n")


def test_module_entry_point(tmp_path):
    shutil.copy(SHARD_GPU, tmp_path / "gpu.json")
    proc = subprocess.run(
        [sys.executable, "-m", "whisper_ptq_bench.cli", "report", "gpu.json", "missing.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "missing.json: no such file" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "report").exists()


def test_side_by_side_verdicts_are_counted_and_what_changed_is_listed(tmp_path):
    """The report carries the three verdicts the summary opens with, and the changes of the changed cases."""

    def case(config, verdict, changes=(), failures=()):
        return _entry(
            f"tiny.en/read-clean/{config}",
            {
                "case": f"tiny.en/read-clean/{config}",
                "wer": 0.05,
                "verdict": "fail" if failures else "pass",
                "failures": list(failures),
                "comparison": {"verdict": verdict, "changes": list(changes), "failed": ["output"] if failures else []},
                "reference": {"environment": "env-1", "error": None, "library_warnings": [], "transcription": "reused"},
            },
        )

    path = _write_results(
        tmp_path / "sbs.json",
        [
            case("fp32", "identical"),
            case("hqq.w-int4.g64.asym", "identical"),
            case("torch-ao.dyn-int8.a-int8.tensor.sym", "changed", ["output: KL 0.0200 -> 0.0210 (+5.0%)"]),
            case("bnb.w-nf4.g64.sym", "regressed", failures=["output: KL rose"]),
        ],
    )
    report.write_report(report.load([path]), tmp_path / "out", title="Side by side")
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    section = _section(text, "## Changes against the reference environment")
    assert "2 identical, 1 changed, 1 regressed" in section
    changed = _section(text, "### What changed (within tolerance)")
    assert "torch-ao.dyn-int8.a-int8.tensor.sym" in changed and "0.0210 (+5.0%)" in changed
    assert "hqq.w-int4.g64.asym" not in changed
    rows = {r[0]: r for r in map(_cells, [line for line in text.splitlines() if line.startswith("| `")])}
    assert rows["`hqq.w-int4.g64.asym`"][-1] == "identical"
    assert rows["`torch-ao.dyn-int8.a-int8.tensor.sym`"][-1] == "changed"
    assert rows["`bnb.w-nf4.g64.sym`"][-1] == "**✗ regressed**"
