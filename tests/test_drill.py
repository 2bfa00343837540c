"""The regression drill: injected regressions turn their cases red, named by the check that saw them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from whisper_ptq_bench import drill
from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.regressions import by_name


@pytest.mark.slow
def test_a_fast_subset_of_the_drill_is_caught_by_the_checks_that_should_see_it(tiny_en, recorder):
    recorder = recorder(4)
    options = recorder.options
    for config in ("fp32", "hqq.w-int4.g64.asym", "quanto.w-int8.channel.sym"):
        recorder.run_case("tiny.en", "read-clean", QuantConfig.from_id(config))
    recorder.finish()
    # this subset targets weights, outputs and scope; speed on 4 utterances and 2 rounds is left to the drill itself
    data = json.loads(options.baselines_path.read_text())
    data["tolerances"]["speed"] = 100.0
    options.baselines_path.write_text(json.dumps(data))

    # one regression per kind of evidence: a changed weight error, a module left in float, fp32's outputs
    chosen = [by_name(n) for n in ("hqq-optimizer-off", "quanto-skip-mlp", "whisper-attn-double-scaling")]
    lines: list[str] = []
    rows = drill.run(
        chosen, dataclasses.replace(options, update_baselines=False), echo=lines.append, models={"tiny.en": tiny_en}
    )
    by_reg = {r.regression: r for r in rows}
    controls = [line for line in lines if line.startswith("control")]
    assert controls and all(line.endswith("green") for line in controls), controls  # unpatched: all green
    assert by_reg["hqq-optimizer-off"].verdict == "caught" and "weights" in by_reg["hqq-optimizer-off"].checks
    skip = by_reg["quanto-skip-mlp"]
    assert "weights" in skip.checks and "no longer quantized" in skip.message and "fc1" in skip.message
    attention = by_reg["whisper-attn-double-scaling"]
    assert attention.case.endswith("/fp32") and "output" in attention.checks and "reference NLL" in attention.message
    assert drill.score(rows) == (3, 3)
    table = drill.table(rows)
    assert "caught 3 of 3 regressions (100%)" in table and "hqq-optimizer-off" in table


def test_unknown_regression_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="hqq-optimizer-off"):
        drill.select(["no-such-regression"])


def test_each_failure_is_credited_to_the_check_that_found_it_whatever_its_wording():
    from whisper_ptq_bench import gate
    from whisper_ptq_bench.checks import REGRESSED, Outcome
    from whisper_ptq_bench.record import CaseRecord
    from whisper_ptq_bench.result import Result

    outcomes = [
        Outcome("weights", REGRESSED, failure="64 module(s) changed format"),
        Outcome("output", REGRESSED, failure="something unforeseen"),
        Outcome("output", REGRESSED, failure="reference NLL rose"),
        Outcome("size", REGRESSED, failure="more bytes"),
        Outcome("speed", "changed", change="3.0% faster", detail="speed 0.970x its baseline"),
    ]

    class Harness:
        def run_case(self, model, corpus, config):
            return CaseRecord(Result("m/c/fp32", config), gate.Verdict(outcomes), "failed")

    checks, failures, error, _, shortcut = drill._run(Harness(), "m", "c", QuantConfig.from_id("fp32"))
    assert checks == ["weights", "output", "size"] and len(failures) == 4 and error is None and shortcut == ""
