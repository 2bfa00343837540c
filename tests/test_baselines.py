"""baselines.json: validation messages, atomic and locked updates, and every regression check firing."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench.checks import Context, InputsCheck, SizeCheck, TranscriptCheck, WerCheck
from whisper_ptq_bench.configs import QuantConfig, matrix
from whisper_ptq_bench.errors import BaselineError
from whisper_ptq_bench.metrics import score
from whisper_ptq_bench.result import Inputs, Result, Size, Transcripts, split

ENV = {"python": "3.11", "torch": "2.13.0", "device": "cpu:x86_64"}
PROFILE = ("cpu-00000001", {"device": "cpu", "cpu": "Test CPU", "threads": 2})
CASE = "tiny.en/read-clean/hqq.w-int4.g64.asym"


def entry(**over):
    e = {
        "wer": 0.05,
        "words": 100,
        "fp32_wer": 0.05,
        "compression": 0.3,
        "size_bytes": 1000,
        "speedup": 1.2,
        "rtf": 0.1,
        "corpus_hash": "abc",
        "model_fingerprint": "f" * 64,
        "fingerprint": "x",
        "transcripts": {"u1": "hello"},
        "scope": "64 modules",
        "weights": {"model.encoder.layers.0.fc1": [0.09, "int4 g64 asym (HQQ, axis 1)"]},
        "output": {"kl": 0.05, "top1": 0.9, "nll": 1.3, "per_utterance": {"u1": [0.05, 0.9, 1.3]}},
        "speed": {"cost": 0.8, "ci95": [0.78, 0.83], "rounds": 5, "workload": "w"},
    }
    e.update(over)
    return e


def rec(case=CASE, env=ENV, profile=PROFILE, **over):
    """(case id, portable part, profile part, environment, profile) as the harness hands them to merge/update."""
    portable, bound = split(entry(**over), bl.split_case_id(case)[2].activation is not None)
    return (case, portable, bound, env, profile)


def write(path, data):
    path.write_text(json.dumps(data))
    return path


def valid():
    return bl.merge(bl.empty(), [rec()])


def test_round_trip_is_sorted_rounded_and_reviewable(tmp_path):
    data = bl.merge(bl.empty(), [rec(wer=0.123456789, speedup=1.23456)])
    text = bl.dumps(data)
    assert bl.parse(text) == json.loads(text)
    case = json.loads(text)["cases"][CASE]
    assert case["wer"] == 0.123457 and case["profiles"][PROFILE[0]]["speedup"] == 1.235
    assert case["environment"] in json.loads(text)["environments"]
    assert text.index('"cases"') < text.index('"environments"') < text.index('"schema"')  # sorted keys


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "baselines.json"
    path.write_text('{\n  "schema": 2,\n  "cases": {,}\n}')
    with pytest.raises(BaselineError) as err:
        bl.load(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value) and "column" in str(err.value)


def test_unknown_schema_version(tmp_path):
    data = valid()
    data["schema"] = 99
    with pytest.raises(BaselineError, match="schema version 99"):
        bl.load(write(tmp_path / "b.json", data))


def test_unknown_keys_are_named(tmp_path):
    data = valid()
    data["cases"][CASE]["wer_typo"] = 1
    with pytest.raises(BaselineError, match="wer_typo"):
        bl.load(write(tmp_path / "b.json", data))
    data = valid()
    data["extra"] = {}
    with pytest.raises(BaselineError, match="extra"):
        bl.load(write(tmp_path / "b.json", data))


def test_nan_is_refused_with_its_line(tmp_path):
    text = bl.dumps(valid()).replace('"wer": 0.05', '"wer": NaN')
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(BaselineError, match=r"NaN is not allowed at line \d+"):
        bl.load(path)


def test_case_id_that_matches_no_configuration(tmp_path):
    data = valid()
    data["cases"]["tiny.en/read-clean/hqq.w-int9.g64.asym"] = data["cases"].pop(CASE)
    with pytest.raises(BaselineError, match="matches no configuration"):
        bl.load(write(tmp_path / "b.json", data))
    data = valid()
    data["cases"]["just-a-name"] = data["cases"].pop(CASE)
    with pytest.raises(BaselineError, match="model.*corpus.*config"):
        bl.load(write(tmp_path / "b.json", data))


def test_missing_file_is_an_empty_baseline_set(tmp_path):
    assert bl.load(tmp_path / "absent.json")["cases"] == {}


def test_update_leaves_other_cases_and_hand_set_tolerances_untouched(tmp_path):
    path = tmp_path / "b.json"
    other = "tiny.en/read-other/fp32"
    data = bl.merge(bl.empty(), [rec(), rec(other, wer=0.2)])
    data["cases"][CASE]["tolerances"] = {"wer": 0.02}
    path.write_text(bl.dumps(data))
    before = json.loads(path.read_text())["cases"][other]
    bl.update(path, [rec(wer=0.07, env={**ENV, "torch": "2.14.0"})])
    after = json.loads(path.read_text())
    assert after["cases"][other] == before
    assert after["cases"][CASE]["wer"] == 0.07 and after["cases"][CASE]["tolerances"] == {"wer": 0.02}
    assert len(after["environments"]) == 2
    assert (
        bl.tolerances(after, CASE)["wer"] == 0.02 and bl.tolerances(after, other)["wer"] == bl.DEFAULT_TOLERANCES["wer"]
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_read_only_baselines_give_a_clear_message_and_stay_intact(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(bl.dumps(valid()))
    path.chmod(stat.S_IRUSR)
    with pytest.raises(BaselineError, match="read-only"):
        bl.update(path, [rec(wer=0.5)])
    assert json.loads(path.read_text())["cases"][CASE]["wer"] == 0.05


def test_read_only_is_detected_even_as_root(tmp_path, monkeypatch):
    path = tmp_path / "b.json"
    path.write_text(bl.dumps(valid()))
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    with pytest.raises(BaselineError, match="read-only"):
        bl.update(path, [rec(wer=0.5)])
    assert json.loads(path.read_text())["cases"][CASE]["wer"] == 0.05
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _worker(args):
    path, index = args
    case = f"tiny.en/read-clean/hqq.w-int{[8, 4, 3, 2][index % 4]}.g{32 * (1 + index // 4)}.asym"
    bl.update(path, [rec(case, wer=index / 100)])
    return case


def test_concurrent_updates_lose_no_entry(tmp_path):
    path = str(tmp_path / "b.json")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        cases = pool.map(_worker, [(path, i) for i in range(12)])
    data = bl.load(path)
    assert set(data["cases"]) == set(cases)


# --------------------------------------------------------------------------- checks


HQQ = QuantConfig.from_id("hqq.w-int4.g64.asym")
GOOD = ["the cat sat on the mat", "a dog ran in the park", "birds fly south in winter", "we eat bread and jam"] * 5


def obtained(hyps, compression=0.3, corpus="abc", batching=None) -> Result:
    ids = [f"u{i}" for i in range(len(GOOD))]
    scored = score(ids, GOOD, hyps)
    transcripts = Transcripts.measured(dict(zip(ids, hyps)), scored, scored, None, ())
    return Result(
        CASE, HQQ, inputs=Inputs(corpus, "f" * 64, batching), size=Size(1000, compression), transcripts=transcripts
    )


def base_entry(**over) -> Result:
    """The baseline of ``GOOD`` transcripts, read back from its entry as the gate reads it."""
    good = obtained(GOOD)
    return Result.from_entry(
        CASE, HQQ, entry(transcripts=good.transcripts.texts, wer=good.transcripts.wer, **over), "b"
    )


def fails(check, candidate: Result, reference: Result, strict=False) -> str | None:
    return check.compare(reference, candidate, Context(bl.DEFAULT_TOLERANCES, strict)).failure


def test_wer_check_fires_on_a_significant_rise_and_names_utterances():
    bad = obtained(["the cat sat", "a dog ran", "birds fly", "we eat"] * 5)
    message = fails(WerCheck(0.01, 0.05, 0.2), bad, base_entry())
    assert message and "WER rose" in message and "95% CI" in message and "u0" in message


def test_wer_check_holds_for_a_rise_that_is_not_significant():
    hyps = list(GOOD)
    hyps[0] = "the cat sat on a mat"  # one error in one utterance: above a tiny tolerance, not significant
    assert fails(WerCheck(0.001, 0.05, 0.2), obtained(hyps), base_entry()) is None


def test_wer_check_holds_within_tolerance_even_if_significant():
    hyps = [h.replace("the", "a", 1) for h in GOOD]
    assert fails(WerCheck(0.5, 0.05, 0.2), obtained(hyps), base_entry()) is None
    assert fails(WerCheck(0.01, 0.05, 0.2), obtained(hyps), base_entry()) is not None


def test_compression_check_fires_when_compression_drops():
    assert fails(SizeCheck(0.0005), obtained(GOOD, compression=0.25), base_entry())
    assert fails(SizeCheck(0.0005), obtained(GOOD, compression=0.3), base_entry()) is None


def test_a_compression_change_within_tolerance_names_the_bytes_it_moved_by():
    """hqq 0.2.6 -> 0.2.8.post1 moved serialized sizes by a few kilobytes: equal at two decimals of a percent."""
    reference = replace(obtained(GOOD, compression=0.377390), size=Size(94_077_744, 0.377390))
    candidate = replace(obtained(GOOD, compression=0.377450), size=Size(94_068_700, 0.377450))
    outcome = SizeCheck(0.0005).compare(reference, candidate, Context(bl.DEFAULT_TOLERANCES, False))
    assert outcome.failure is None and outcome.change
    assert "94,077,744 -> 94,068,700 bytes" in outcome.change and "-9,044" in outcome.change
    same = SizeCheck(0.0005).compare(reference, reference, Context(bl.DEFAULT_TOLERANCES, False))
    assert same.change is None
    few = replace(reference, size=Size(94_077_744 - 64, 0.377390))  # one bias stored without its Parameter wrapper
    moved = SizeCheck(0.0005).compare(reference, few, Context(bl.DEFAULT_TOLERANCES, False))
    assert moved.status == "changed" and "-64)" in moved.change  # equal compression at 5 digits, not identical


def test_transcript_check_lists_changes_and_fails_only_when_strict():
    hyps = list(GOOD)
    hyps[3] = "we eat toast and jam"
    o = obtained(hyps)
    assert fails(TranscriptCheck(), o, base_entry()) is None
    assert "u3" in TranscriptCheck().compare(base_entry(), o, Context(bl.DEFAULT_TOLERANCES)).warning
    changes = TranscriptCheck.changed(base_entry(), o)
    assert changes == [("u3", "we eat bread and jam", "we eat bread and jam", "we eat toast and jam")]
    assert "u3" in fails(TranscriptCheck(), o, base_entry(), strict=True)


def test_changed_corpus_is_not_compared():
    assert "corpus changed" in fails(InputsCheck(), obtained(GOOD, corpus="other"), base_entry())


def test_other_batching_is_not_compared():
    """Batch composition changes dynamically quantized outputs, so a baseline holds for its batching only."""
    same = obtained(GOOD, batching="batch 8 by duration, encoder 2")
    assert fails(InputsCheck(), same, base_entry(batching="batch 8 by duration, encoder 2")) is None
    other = fails(InputsCheck(), same, base_entry(batching="batch 4 by duration, encoder 2"))
    assert "'batch 4 by duration, encoder 2'" in other and "not comparable" in other and "--ptq-batch-size" in other
    assert fails(InputsCheck(), same, base_entry()) is None  # a baseline that did not record it


def _speed(state, cost, others=()):
    return {"cost": cost, "ci95": [cost * 0.98, cost * 1.02], "rounds": 3, "workload": "w", "state": state} | (
        {"others": list(others)} if others else {}
    )


def test_a_recording_in_another_machine_state_keeps_the_earlier_states_cost_only_with_the_same_libraries():
    first = bl.merge(bl.empty(), [rec(speed=_speed(3.1, 1.2))])
    second = bl.merge(first, [rec(speed=_speed(1.6, 1.45))])  # same machine profile and environment
    [part] = second["cases"][CASE]["profiles"].values()
    assert part["speed"]["state"] == 1.6 and part["speed"]["cost"] == 1.45
    assert [(o["state"], o["cost"]) for o in part["speed"]["others"]] == [(3.1, 1.2)]
    third = bl.merge(second, [rec(speed=_speed(3.0, 1.21))])  # back in the first state: replaced, the second kept
    [part] = third["cases"][CASE]["profiles"].values()
    assert (part["speed"]["state"], part["speed"]["cost"]) == (3.0, 1.21)
    assert [(o["state"], o["cost"]) for o in part["speed"]["others"]] == [(1.6, 1.45)]
    upgraded = bl.merge(second, [rec(env={**ENV, "torch": "2.14.0"}, speed=_speed(3.1, 1.3))])
    [part] = upgraded["cases"][CASE]["profiles"].values()
    assert "others" not in part["speed"]  # other libraries: an earlier state's cost says nothing about them
    bl.validate(json.loads(bl.dumps(third)))


@pytest.mark.parametrize(
    ("others", "message"),
    [
        ({"state": 1.6}, "must be a list"),
        ([{"state": 1.6}], "others[0] must hold 'state' and 'cost'"),
        ([{"state": 0, "cost": 1.0}], "others[0] state must be positive"),
        ([{"state": 1.6, "cost": "x"}], "others[0] cost"),
    ],
)
def test_malformed_costs_of_other_machine_states_are_named(tmp_path, others, message):
    data = valid()
    [part] = data["cases"][CASE]["profiles"].values()
    part["speed"] = {**_speed(3.1, 1.2), "others": others}
    with pytest.raises(BaselineError, match=re.escape(message)):
        bl.load(write(tmp_path / "baselines.json", data))


def test_batching_must_be_text(tmp_path):
    data = bl.merge(bl.empty(), [rec(batching=8)])
    with pytest.raises(BaselineError, match="batching must be a string"):
        bl.load(write(tmp_path / "b.json", data))


def test_sharded_recordings_fold_into_one_file_per_profile(tmp_path):
    """GPU shards record one backend each, possibly on two device profiles; baselines-merge unites them."""
    from whisper_ptq_bench.cli import main

    gpu_a = ("cuda-aaaa0001", {"device": "cuda", "gpu": "H100", "capability": "9.0"})
    gpu_b = ("cuda-bbbb0002", {"device": "cuda", "gpu": "H200", "capability": "9.0"})
    other = "tiny.en/read-clean/bnb.w-nf4.g64.sym"
    out = write(tmp_path / "out.json", bl.merge(bl.empty(), [rec(profile=gpu_a)]))
    data = json.loads(out.read_text())
    data["cases"][CASE]["tolerances"] = {"wer": 0.02}  # hand-set: survives
    write(out, data)
    one = write(tmp_path / "one.json", bl.merge(bl.empty(), [rec(profile=gpu_b, wer=0.07)]))
    two = write(tmp_path / "two.json", bl.merge(bl.empty(), [rec(case=other, profile=gpu_b)]))
    assert main(["baselines-merge", str(out), str(one), str(two)]) == 0
    merged = bl.load(out)
    assert set(merged["cases"]) == {CASE, other}
    assert set(merged["cases"][CASE]["profiles"]) == {"cuda-aaaa0001", "cuda-bbbb0002"}
    assert merged["cases"][CASE]["wer"] == 0.07 and merged["cases"][CASE]["tolerances"] == {"wer": 0.02}
    assert set(merged["profiles"]) == {"cuda-aaaa0001", "cuda-bbbb0002"}


def test_baselines_merge_refuses_a_missing_or_malformed_shard_and_writes_nothing(tmp_path, capsys):
    from whisper_ptq_bench.cli import main

    out = write(tmp_path / "out.json", valid())
    before = out.read_bytes()
    (tmp_path / "bad.json").write_text('{"schema": 2, "cases": {')
    assert main(["baselines-merge", str(out), str(tmp_path / "bad.json")]) == 2
    assert "malformed JSON" in capsys.readouterr().err
    assert main(["baselines-merge", str(out), str(tmp_path / "absent.json")]) == 2
    assert "absent.json: no such baselines file" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_the_committed_baselines_hold_what_it_takes_to_say_identical_for_every_default_case():
    """Every case of the default matrix in the shipped baselines.json carries, on each profile it was recorded on,
    a digest per utterance of its outputs, a digest per quantized module of its weights and its kernel path: without
    them a run can say only "within tolerance", never "identical" (re-record with --ptq-update-baselines)."""
    data = bl.load(Path(__file__).resolve().parents[1] / "baselines.json")
    for corpus in ("read-clean", "read-other"):
        for config in matrix("default"):
            case = bl.case_id("tiny.en", corpus, config)
            entry = data["cases"].get(case)
            assert entry is not None, f"{case}: no baseline"
            for name, profile in entry["profiles"].items():
                # per-utterance outputs are portable (weight-only) or per profile (activation-quantized)
                utterances = set(entry.get("output", profile.get("output", {})).get("per_utterance", {}))
                assert utterances and set(profile.get("output_digest", {})) == utterances, (case, name)
                assert set(profile.get("weights_digest", {})) == set(entry.get("weights", {})), (case, name)
                assert profile.get("kernels"), (case, name)
