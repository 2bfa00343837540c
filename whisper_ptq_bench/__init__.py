"""whisper-ptq-bench: a pytest regression benchmark for post-training quantization of Whisper.

How data flows through one case (``{model}/{corpus}/{config}``):

1. ``configs`` names the configuration (library, scheme, method, granularity, bits); ``data`` and ``models``
   give the corpus and the fp32 checkpoint (offline sources by default, the hub when asked).
2. ``measure`` does the work behind public functions: ``quantize`` (through ``backends``: what each library
   quantizes, ``scope``; its size, ``size``), ``encode`` / ``transcribe`` (``transcribe``), the teacher-forced
   pass (``fidelity``), the fixed workload timed in interleaved rounds (``speed``) and its kernel path.
3. ``runner.Harness`` only orchestrates: it calls ``measure`` for each case and assembles one
   ``result.Result`` (typed parts: inputs, scope, weights, size, outputs, transcripts, speed, kernel path).
   ``result.KEYS`` declares, once, which fields are portable and which belong to a machine profile; the
   baselines entry, ``extra_info`` and the summary row (``record``) are views of that one result.
4. A reference yields a ``Result`` for a case id: ``baselines.BaselineReference`` (baselines.json read back
   into the same type) or ``live.LiveReference`` (the same case measured by ``worker`` in another Python
   environment, side by side). ``gate.judge(reference, candidate)`` runs the checks registered in ``checks``
   (each with a stable id) and returns a verdict: identical, changed or regressed.
5. ``plugin`` is the pytest side (options, the benchmark fixture, the session summary of ``summary``);
   ``recording`` writes baselines (atomically, ``atomic``); ``report`` reads the benchmark JSON back.
   ``drill`` injects the ``regressions`` catalogue into the real libraries and credits each by check id;
   ``perf`` measures the harness and the speed check's power; ``upgrade`` builds two environments and runs the
   main job across them.

Layering (tests/test_layering.py): imports form no cycle, no module imports another's private names, only ``cli``
imports ``drill``, ``perf`` and ``upgrade``, and nothing imports ``plugin``, ``cli`` or ``worker``.
"""

__version__ = "0.1.0"
